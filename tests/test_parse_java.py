"""The Java parse functions (jvm/udfs) against the reference decoder `flink_job.formats.decode`.

Thousands of records per format, valid and mutated (keys deleted, values swapped for every JSON type,
NaN/Infinity/1e999, truncated text), go through ``mmon_parse`` in one Flink job; each result must be
what `formats.decode` gives for the same record: the same dead-letter reason, or the same id, time and
instances. ``mmon_request_time_ms`` must give the request time the rowtime column uses.
"""
from __future__ import annotations

import json
import math
import random
import time
from typing import Any, Optional

import numpy as np
import pytest
from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment

from benchmarks import iris_stream
from flink_job import formats, parse, pipeline, source

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]

N_FEATURES = 4
MUTANTS_PER_FORMAT = 1500
DEFAULTS = ((None, None), ("kafka-key-7", 1_800_000_123_456))
T_MS = 1_800_000_000_123
SCHEMA = DataTypes.ROW([DataTypes.FIELD("i", DataTypes.INT()), DataTypes.FIELD("payload", DataTypes.STRING()),
                        DataTypes.FIELD("default_id", DataTypes.STRING()),
                        DataTypes.FIELD("default_time_ms", DataTypes.BIGINT())])

VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2, 4, 1.5, 1e308, -0.0, "", "x", "1.0", "request", "FP64", "INT8", "BYTES",
    formats.CLOUDEVENT_REQUEST_TYPE, "2027-01-15T08:00:00.5+01:00", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z",
    "1800000000123", 1_800_000_000, 1_800_000_000.0005, 1_800_000_000_123, 5e10, 1e11, [], {}, [1, 2, 3, 4],
    [[1, 2, 3, 4]], [[1, 2, 3]], [[1, 2, 3, 4], [5, 6, 7]], [["1", 2, 3, 4]], [[None, 2, 3, 4]],
    [[math.nan, 2, 3, 4]], [[1, 2, math.inf, 4]], [[1, 2, 3, [4]]], [2, 4], [1, 4], [0, 4], [2.0, 4],
    [True, 4], math.nan, math.inf, -math.inf, {"time": 1_800_000_000_123}, {"instances": [[1, 2, 3, 4]]},
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key/index path into a decoded JSON document."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found.append(prefix + (key,))
        found.extend(_paths(child, prefix + (key,)))
    return found


def _mutated(document: Any, rng: random.Random) -> Any:
    """A deep copy with one path deleted, or replaced by a value of another kind."""
    document = json.loads(json.dumps(document))
    path = rng.choice(_paths(document))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if rng.random() < 0.25:
        del parent[path[-1]]
    else:
        parent[path[-1]] = json.loads(json.dumps(rng.choice(VALUES), allow_nan=True))
    return document


def _text_mutation(text: str, rng: random.Random) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        return text[:rng.randrange(len(text))]
    if choice == 1:
        return text.replace("0.", "1e999 ", 1) if "0." in text else text + "x"
    if choice == 2:
        return text + rng.choice((" ", "\n", " {}", ",", "]"))
    return rng.choice(("", "[]", "null", "42", '"text"', "{}", "{", "NaN", '{"a":NaN}', text.replace("0.", "+Infinity ", 1),
                       text.replace("0.", "-Infinity ", 1), text.replace("0.", "INF ", 1), text.replace("0.", "-INF ", 1),
                       text.replace("0.", "1" + "0" * 400 + " ", 1), text.replace("0.", "-NaN ", 1)))


def _records(fmt: str, rng: random.Random) -> list[tuple[str, Optional[str], Optional[int]]]:
    stream = iris_stream.generate(seed=3, stage_size=40, rates=(50.0,) * 5)
    records = []
    for i in range(MUTANTS_PER_FORMAT):
        rows = stream.instances[i % len(stream): i % len(stream) + rng.choice((1, 1, 2, 3))].tolist()
        time_ms = T_MS + i if rng.random() < 0.8 else rng.choice((1_800_000_000, 1_799_999_999))  # seconds
        text = formats.encode(fmt, f"req-{i}", time_ms if fmt != formats.KSERVE_V1 else T_MS + i, rows)
        kind = rng.random()
        if kind < 0.6:
            text = json.dumps(_mutated(json.loads(text), rng), separators=(",", ":"), allow_nan=True)
        elif kind < 0.8:
            text = _text_mutation(text, rng)
        default_id, default_time = rng.choice(DEFAULTS)
        records.append((text, default_id, default_time))
    return records


def _expected(fmt: str, raw: str, default_id, default_time) -> tuple:
    try:
        request = formats.decode(fmt, raw, default_id=default_id, default_time_ms=default_time, n_features=N_FEATURES)
    except formats.FormatError as err:
        return (err.reason,)
    return (None, request.request_id, request.time_ms, request.instances)


def _actual(row) -> tuple:
    """(reason,) or (None, id, time, instances) from a result row (i, reason, id, time, instances, rowtime ms)."""
    if row[1] is not None:
        return (row[1],)
    return (None, row[2], row[3], np.frombuffer(bytes(row[4]), dtype="<f8").reshape(-1, N_FEATURES).tolist())


@pytest.fixture(scope="module")
def t_env() -> TableEnvironment:
    env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    env.get_config().set("pipeline.jars", pipeline.UDFS_JAR.as_uri())
    env.get_config().set("parallelism.default", "1")
    parse.register_functions(env)
    source.register_functions(env)
    return env


def _run(t_env: TableEnvironment, fmt: str, records: list, message_time: bool = True,
         max_future_skew_ms: Optional[int] = None, wall_clock: bool = False) -> list:
    table = t_env.from_elements([(i, raw, default_id, default_time) for i, (raw, default_id, default_time)
                                 in enumerate(records)], SCHEMA)
    t_env.create_temporary_view("records", table)
    flag = "TRUE" if message_time else "FALSE"
    skew = "NULL" if max_future_skew_ms is None else str(max_future_skew_ms)
    clock = "TRUE" if wall_clock else "FALSE"
    parsed, time_ms = (f"{function}(payload, {parse.sql_string(fmt)}, {N_FEATURES}, {flag}, default_id, "
                       f"default_time_ms, CAST({skew} AS BIGINT), {clock})"
                       for function in (parse.PARSE_FUNCTION, parse.TIME_FUNCTION))
    query = (f"SELECT i, r.p.reason, r.p.request_id, r.p.time_ms, r.p.instances, r.t "  # flat: PyFlink's collect
             f"FROM (SELECT i, {parsed} AS p, {time_ms} AS t FROM records) AS r")  # fails on NULLs inside a ROW
    with t_env.sql_query(query).execute().collect() as results:
        rows = sorted(results, key=lambda row: row[0])
    t_env.drop_temporary_view("records")
    return rows


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_java_parser_agrees_with_the_reference_decoder(t_env, fmt):
    records = _records(fmt, random.Random(fmt))
    rows = _run(t_env, fmt, records)
    assert len(rows) == len(records)
    disagreements = [(raw, _expected(fmt, raw, d_id, d_time), _actual(row))
                     for (raw, d_id, d_time), row in zip(records, rows)
                     if _expected(fmt, raw, d_id, d_time) != _actual(row)]
    assert not disagreements, disagreements[:5]
    reasons = {_actual(row)[0] for row in rows}
    assert None in reasons and len(reasons) >= 7, reasons  # the corpus reaches most reasons
    for row in rows:  # the rowtime column's time is the parse step's; none for a dead-lettered record
        assert row[5] == (row[3] if row[1] is None else None)


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_future_times_are_dead_lettered_and_give_the_rowtime_no_time(t_env, fmt):
    now = int(time.time() * 1000)
    rows = [[5.0, 3.0, 1.5, 0.2]]
    records = [(formats.encode(fmt, f"r{i}", t, rows), None, None)
               for i, t in enumerate((now - 60_000, now + 60_000, now + 3_600_000, 32_503_680_000_000))]
    live = _run(t_env, fmt, records, max_future_skew_ms=300_000, wall_clock=True)
    assert [_actual(row)[0] for row in live] == [None, None, formats.FUTURE_TIME, formats.FUTURE_TIME]
    assert [row[5] for row in live] == [now - 60_000, now + 60_000, None, None]


def test_a_replayed_file_is_checked_against_its_own_latest_time(t_env):
    base = 1_900_000_000_000  # years after the wall clock: a replay's times lie anywhere
    times = (base, base + 1000, base + 3_600_000, base + 2000, base + 301_000)
    records = [(formats.encode(formats.THESIS, f"r{i}", t, [[5.0, 3.0, 1.5, 0.2]]), None, None)
               for i, t in enumerate(times)]
    rows = _run(t_env, formats.THESIS, records, max_future_skew_ms=300_000, wall_clock=False)
    assert [_actual(row)[0] for row in rows] == [None, None, formats.FUTURE_TIME, None, None]


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_kafka_time_mode_ignores_the_message_time(t_env, fmt):
    rows = [[5.0, 3.0, 1.5, 0.2]]
    with_time = formats.encode(fmt, "a", T_MS, rows)
    bad_time = with_time.replace(str(T_MS), "-5") if fmt != formats.KSERVE_V1 else with_time.replace(
        formats.format_rfc3339_ms(T_MS), "yesterday")
    [good, bad, missing_default] = _run(t_env, fmt, [(with_time, None, 1_900_000_000_000),
                                                     (bad_time, None, 1_900_000_000_001),
                                                     (with_time, None, None)], message_time=False)
    assert _actual(good) == (None, "a", 1_900_000_000_000, rows)
    assert _actual(bad) == (None, "a", 1_900_000_000_001, rows)
    assert _actual(missing_default) == (formats.BAD_TIME,)


EPOCH_MS = (0, 1, -1, 999, -86_400_001, 1_800_000_000_123, 1_800_000_000_999, 32_503_680_000_007)
LINES = {"1\t{\"a\": 1}": (1, '{"a": 1}'), "123456789012\tx\ty": (123_456_789_012, "x\ty"),
         "no tab": (None, "no tab"), "\tx": (None, "x"), "": (None, ""), "12a\tx": (None, "x")}


@pytest.mark.parametrize("zone", ["UTC", "America/St_Johns"])
def test_source_functions_epoch_ms_and_numbered_lines(t_env, zone):
    """``mmon_epoch_ms`` gives back the epoch milliseconds a TIMESTAMP_LTZ(3) (the Kafka record time) was
    made from, before 1970 and in a session zone half an hour off UTC included; ``mmon_line_number`` reads
    `source.number_lines`' prefix as a number (NULL without one) and ``mmon_line_text`` what follows it."""
    rows = [(i, ms, line) for i, (ms, line) in enumerate(zip(EPOCH_MS, [*LINES, *[""] * len(EPOCH_MS)]))]
    config = t_env.get_config()
    session_zone = config.get_local_timezone()
    config.set_local_timezone(zone)
    t_env.create_temporary_view("positions", t_env.from_elements(rows, ["i", "ms", "line"]))
    query = (f"SELECT i, {source.EPOCH_MS}(TO_TIMESTAMP_LTZ(ms, 3)), {source.LINE_NUMBER}(line), "
             f"{source.LINE_TEXT}(line) FROM positions")
    try:
        with t_env.sql_query(query).execute().collect() as results:
            got = sorted((tuple(row) for row in results), key=lambda row: row[0])
    finally:
        t_env.drop_temporary_view("positions")
        config.set_local_timezone(session_zone)
    assert [row[1] for row in got] == list(EPOCH_MS)
    assert [(row[2], row[3]) for row in got[:len(LINES)]] == list(LINES.values())
