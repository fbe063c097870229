"""The Java parse functions (jvm/udfs) against the reference decoder `contract.formats.decode`.

Thousands of records per format, valid and mutated (keys deleted, values swapped for every JSON type,
NaN/Infinity/1e999, truncated text, requests turned into responses or label messages and back), go through
``mmon_parse`` in one Flink job under four schemas at once: numeric and categorical features with a
categorical output and ground truth (`MIXED`, the functions `flink_job.parse.register_functions` registers
from a spec and baselines), the same without ground truth, four numeric features with a numeric output and
ground truth, and four numeric features without an output. Each result must be what `formats.decode` gives
for the same record and schema: the same dead-letter reason, or the same id, time, kind (request, response or
label message) and values, the Java codes read back through the vocabularies and the record's labels.
``mmon_request_time_ms`` must give the request time the rowtime column uses.
"""
from __future__ import annotations

import json
import math
import random
import time
from types import SimpleNamespace
from typing import Any, NamedTuple, Optional

import numpy as np
import pytest
from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment

from contract import formats

from udfs.baseline import Baseline, CategoricalBaseline, OutputBaseline

from streams import iris

from flink_job import java_functions, jvm, parse, source

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]

N_FEATURES = 4
MUTANTS_PER_FORMAT = 1500
DEFAULTS = ((None, None), ("kafka-key-7", 1_800_000_123_456))
T_MS = 1_800_000_000_123
SCHEMA = DataTypes.ROW([DataTypes.FIELD("i", DataTypes.INT()), DataTypes.FIELD("payload", DataTypes.STRING()),
                        DataTypes.FIELD("default_id", DataTypes.STRING()),
                        DataTypes.FIELD("default_time_ms", DataTypes.BIGINT())])

# the mixed schema: its spec and baselines as the config and `udfs.baseline` give them (a stand-in spec)
Feature = NamedTuple("Feature", [("name", str), ("type", str)])
Output = NamedTuple("Output", [("name", str), ("type", str)])
MIXED_SPEC = SimpleNamespace(input=SimpleNamespace(features=(
    Feature("x1", "numeric"), Feature("color", "categorical"), Feature("x2", "numeric"), Feature("size", "categorical"))),
    output=Output("prediction", "categorical"), ground_truth=SimpleNamespace(metrics=("accuracy",)),
    versions=SimpleNamespace(cloudevent_attribute="endpoint"))
UNLABELLED_SPEC = SimpleNamespace(**{**vars(MIXED_SPEC), "ground_truth": None})
MIXED_BASELINE = Baseline(
    features={"color": CategoricalBaseline.from_values(["red"] * 5 + ["green"] * 4 + ["blue"] * 3 + ["teal"],
                                                       max_categories=3),
              "size": CategoricalBaseline.from_values(["1"] * 4 + ["2"] * 3 + ["10"] * 2 + ["3"])},
    output=OutputBaseline("prediction", CategoricalBaseline.from_values(["setosa"] * 3 + ["versicolor"] * 2 + ["0"])))
MIXED = formats.Schema.from_spec(MIXED_SPEC)
UNLABELLED = formats.Schema.from_spec(UNLABELLED_SPEC)
NUMERIC_NAMES = ("sl", "sw", "pl", "pw")
NUMERIC_OUT = formats.Schema(NUMERIC_NAMES, ("numeric",) * 4, "score", "numeric", ground_truth=True)
NUMERIC = formats.Schema(NUMERIC_NAMES, ("numeric",) * 4)


class Case(NamedTuple):
    """A schema under test: the Python one, the Java functions' names and each column's vocabulary."""
    schema: formats.Schema
    parse_function: str
    time_function: str
    vocabularies: tuple  # per feature (empty for a numeric one), then the output's


def _vocabulary(feature: Any) -> tuple:
    return tuple(feature.vocabulary) if hasattr(feature, "vocabulary") else ()


MIXED_VOCABULARIES = (*(_vocabulary(MIXED_BASELINE.features.get(name)) for name in MIXED.features),
                      _vocabulary(MIXED_BASELINE.output.feature))
CASES = (
    Case(MIXED, parse.PARSE_FUNCTION, parse.TIME_FUNCTION, MIXED_VOCABULARIES),
    Case(UNLABELLED, "mmon_parse_unlabelled", "mmon_time_unlabelled", MIXED_VOCABULARIES),
    Case(NUMERIC_OUT, "mmon_parse_numeric_out", "mmon_time_numeric_out", ((),) * 5),
    Case(NUMERIC, "mmon_parse_numeric", "mmon_time_numeric", ((),) * 5),
)
MIXED_CASE, UNLABELLED_CASE, NUMERIC_OUT_CASE, NUMERIC_CASE = range(4)

VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2, 4, 1.5, 1e308, -0.0, 10.0, 2.5, "", "x", "1.0", "request", "response", "label",
    "labels", formats.CLOUDEVENT_LABEL_TYPE, {"type": "label"}, {"time": 1_800_000_000_123, "type": "label"},
    {"labels": ["setosa"]},
    "FP64", "INT8", "BYTES", "red", "teal", "purple", "10", "setosa", "x1", "color", "inputs", "outputs",
    formats.CLOUDEVENT_REQUEST_TYPE, formats.CLOUDEVENT_RESPONSE_TYPE, "2027-01-15T08:00:00.5+01:00",
    "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "1800000000123", 1_800_000_000, 1_800_000_000.0005,
    1_800_000_000_123, 5e10, 1e11, [], {}, [1, 2, 3, 4], [[1, 2, 3, 4]], [[1, 2, 3]], [[1, 2, 3, 4], [5, 6, 7]],
    [["1", 2, 3, 4]], [[None, 2, 3, 4]], [[1, "red", 2, 10]], [[1, "red", 2, 2.5]], [{"x1": 1, "color": "blue"}],
    [{"sl": 1, "pw": None}], {"x1": 2, "size": 3}, [["setosa", 1]], ["setosa", None, 0], [0.5, 1], [1], [2, 1],
    [1, 1], ["red", None], [None, None], [{"name": "color", "shape": [1], "datatype": "BYTES", "data": ["red"]}],
    [{"name": "sl", "shape": [1, 1], "datatype": "FP32", "data": [1]}],
    [[math.nan, 2, 3, 4]], [[1, 2, math.inf, 4]], [[1, 2, 3, [4]]], [2, 4], [1, 4], [0, 4], [2.0, 4],
    [True, 4], math.nan, math.inf, -math.inf, {"time": 1_800_000_000_123}, {"instances": [[1, 2, 3, 4]]},
    {"predictions": ["setosa"]}, "r" * formats.MAX_CATEGORY_CHARS, "r" * (formats.MAX_CATEGORY_CHARS + 1),
    "\U0001F600" * formats.MAX_CATEGORY_CHARS, "\U0001F600" * (formats.MAX_CATEGORY_CHARS + 1),
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
    choice = rng.randrange(5)
    if choice == 0:
        return text[:rng.randrange(len(text))]
    if choice == 1:
        return text.replace("0.", "1e999 ", 1) if "0." in text else text + "x"
    if choice == 2:
        return text + rng.choice((" ", "\n", " {}", ",", "]"))
    if choice == 3:  # a request read as a response and back
        swaps = (('"request"', '"response"'), ('"response"', '"request"'), ("inference.request", "inference.response"),
                 ("inference.response", "inference.request"), ('"instances"', '"predictions"'),
                 ('"predictions"', '"instances"'), ('"inputs"', '"outputs"'), ('"outputs"', '"inputs"'),
                 ('"label"', '"response"'), ('"response"', '"label"'), ("inference.label", "inference.request"),
                 ("io.mmon.inference.label", formats.CLOUDEVENT_RESPONSE_TYPE), ('"labels"', '"predictions"'),
                 ('"predictions"', '"labels"'), (',"type":"label"', ""), ('"time":', '"type":"label","time":'),
                 ('"specversion":"1.0",', ""), ('"BYTES"', '"FP64"'), ('"FP64"', '"BYTES"'), ('"shape":[', '"shape":[1,'))
        old, new = rng.choice(swaps)
        return text.replace(old, new, 1)
    return rng.choice(("", "[]", "null", "42", '"text"', "{}", "{", "NaN", '{"a":NaN}', text.replace("0.", "+Infinity ", 1),
                       text.replace("0.", "-Infinity ", 1), text.replace("0.", "INF ", 1), text.replace("0.", "-INF ", 1),
                       text.replace("0.", "1" + "0" * 400 + " ", 1), text.replace("0.", "-NaN ", 1)))


COLORS = ("red", "green", "blue", "teal")
SIZES = ("1", "2", "3", "10")
PREDICTIONS = ("setosa", "versicolor", "0", "virginica", "", 0, 1, 7, 2.0, -0.0, 1e300, 0.25, -3.5, None)


def _categorical(rng: random.Random, known: tuple) -> Any:
    return rng.choice((*known, *known, "purple", "", "x y", 1, 10, 7, -3, 2.0, 1e1, -0.0, 1e20, 2**70, None))


def _numeric(rng: random.Random) -> Any:
    return rng.choice((None, rng.randint(-5, 5), round(rng.gauss(0, 10), 3), round(rng.gauss(0, 10), 3), 1e300))


def _mixed_rows(rng: random.Random, n: int) -> list:
    rows = []
    for _ in range(n):
        values = [_numeric(rng), _categorical(rng, COLORS), _numeric(rng), _categorical(rng, SIZES)]
        if rng.random() < 0.4:  # an object instance, keys in any order, some missing, some extra
            row = dict(rng.sample(list(zip(MIXED.features, values)), rng.choice((4, 4, 3))))
            if rng.random() < 0.3:
                row["extra"] = rng.choice((1, "x", None, 2.5))
            rows.append(row)
        else:
            rows.append(values)
    return rows


def _records(fmt: str, rng: random.Random) -> list[tuple[str, Optional[str], Optional[int]]]:
    stream = iris.generate(seed=3, stage_size=40, rates=(50.0,) * 5)
    records = []
    for i in range(MUTANTS_PER_FORMAT):
        n = rng.choice((1, 1, 2, 3))
        time_ms = T_MS + i if rng.random() < 0.8 else rng.choice((1_800_000_000, 1_799_999_999))  # seconds
        time_ms = time_ms if fmt != formats.KSERVE_V1 else T_MS + i
        kind = rng.random()
        if kind < 0.35:  # numeric instances, sometimes with a missing value (the all-numeric path)
            rows = stream.instances[i % len(stream): i % len(stream) + n].tolist()
            if rng.random() < 0.2:
                rows[0][rng.randrange(N_FEATURES)] = None
            named = NUMERIC if fmt == formats.OIP_V2 and rng.random() < 0.3 else None
            text = formats.encode(fmt, f"req-{i}", time_ms, rows, schema=named)
        elif kind < 0.75:  # numbers, text and nulls, lists and objects
            rows = _mixed_rows(rng, n)
            plain = all(isinstance(r, list) and not any(isinstance(v, str) for v in r) for r in rows)
            named = None if plain and rng.random() < 0.5 else MIXED
            text = formats.encode(fmt, f"req-{i}", time_ms, rows, schema=named if fmt == formats.OIP_V2 else None)
        else:  # a response or a label message
            values = [rng.choice(PREDICTIONS) for _ in range(n)]
            label = rng.random() < 0.5
            text = (formats.encode_label if label else formats.encode_response)(fmt, f"req-{i}", time_ms, values)
            if fmt == formats.KSERVE_V1 and rng.random() < 0.2:  # a plain body
                text = json.dumps({"labels" if label else "predictions": values})
        mutation = rng.random()
        if mutation < 0.55:
            text = json.dumps(_mutated(json.loads(text), rng), separators=(",", ":"), allow_nan=True)
        elif mutation < 0.8:
            text = _text_mutation(text, rng)
        default_id, default_time = rng.choice(DEFAULTS)
        records.append((text, default_id, default_time))
    return records


def _expected(case: Case, fmt: str, raw: str, default_id, default_time) -> tuple:
    """(reason,) or (None, id, time, response, truth, values: n x k, a response's or a label message's n x 1) by
    `formats.decode`."""
    try:
        parsed = formats.decode(fmt, raw, default_id=default_id, default_time_ms=default_time, schema=case.schema)
    except formats.FormatError as err:
        return (err.reason,)
    if isinstance(parsed, formats.ParsedRequest):
        return (None, parsed.request_id, parsed.time_ms, False, False, parsed.instances)
    response = isinstance(parsed, formats.ParsedResponse)
    return (None, parsed.request_id, parsed.time_ms, response, not response, [[v] for v in parsed[2]])


class Result(NamedTuple):
    reason: Optional[str]
    request_id: Optional[str]
    time_ms: Optional[int]
    instances: Optional[bytes]
    labels: Optional[list]
    response: Optional[bool]
    truth: Optional[bool]
    rowtime_ms: Optional[int]


FIELDS = ("reason", "request_id", "time_ms", "instances", "labels", "response", "truth")


def _result(row, case: int) -> Result:
    """Case ``case``'s fields of a result row (i, then each case's FIELDS, then each case's time)."""
    base = 1 + len(FIELDS) * case
    return Result(*row[base:base + len(FIELDS)], row[1 + len(FIELDS) * len(CASES) + case])


def _actual(row, case: int = NUMERIC_CASE) -> tuple:
    """(reason,) or (None, id, time, response, truth, values), the values decoded: NaN is None, a categorical
    code its vocabulary's value or its label."""
    result = _result(row, case)
    if result.reason is not None:
        return (result.reason,)
    schema, vocabularies = CASES[case].schema, CASES[case].vocabularies
    output = result.response or result.truth  # predictions or labels: the output's one column
    columns = (schema.output_type,) if output else schema.types
    vocabularies = vocabularies[-1:] if output else vocabularies[:-1]
    labels = list(result.labels or ())
    matrix = np.frombuffer(bytes(result.instances), dtype="<f8").reshape(-1, len(columns))
    values = []
    for row_values in matrix.tolist():
        decoded = []
        for value, kind, vocabulary in zip(row_values, columns, vocabularies):
            if math.isnan(value):
                decoded.append(None)
            elif kind == formats.NUMERIC:
                decoded.append(value)
            else:
                code = int(value)
                assert code == value
                decoded.append(vocabulary[code] if code >= 0 else labels[-code - 1])
        values.append(decoded)
    return (None, result.request_id, result.time_ms, result.response, result.truth, values)


def _first_unseen(values: list, case: Case, output: bool) -> list:
    """The record's categorical values outside the vocabularies (``output``: a response's or a label message's,
    in the output's), each once, in first-seen order."""
    kinds = (case.schema.output_type,) if output else case.schema.types
    vocabularies = case.vocabularies[-1:] if output else case.vocabularies[:-1]
    seen: list = []
    for row in values:
        for value, kind, vocabulary in zip(row, kinds, vocabularies):
            if kind == formats.CATEGORICAL and value is not None and value not in vocabulary and value not in seen:
                seen.append(value)
    return seen


@pytest.fixture(scope="module")
def t_env() -> TableEnvironment:
    env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    env.get_config().set("pipeline.jars", jvm.UDFS_JAR.as_uri())
    env.get_config().set("parallelism.default", "1")
    parse.register_functions(env, parse.java_schema(MIXED_SPEC, MIXED_BASELINE))
    package = java_functions.package()
    for case in CASES[1:]:
        schema = case.schema
        if schema == UNLABELLED:
            java = parse.java_schema(UNLABELLED_SPEC, MIXED_BASELINE)
        else:
            output = {} if schema.output_name is None else {"output_name": schema.output_name,
                                                            "output_type": schema.output_type,
                                                            "ground_truth": schema.ground_truth}
            java = package.FeatureSchema.fromJson(json.dumps({"names": schema.features, "types": schema.types,
                                                              "vocabularies": [[]] * schema.width, **output}))
        env._j_tenv.createTemporarySystemFunction(case.parse_function, package.ParseRequest(java))
        env._j_tenv.createTemporarySystemFunction(case.time_function, package.RequestTimeMs(java))
    source.register_functions(env)
    return env


def _run(t_env: TableEnvironment, fmt: str, records: list, message_time: bool = True,
         max_future_skew_ms: Optional[int] = None, wall_clock: bool = False,
         max_record_bytes: Optional[int] = None) -> list:
    """Every record through every case's functions: rows (i, each case's FIELDS, each case's time)."""
    table = t_env.from_elements([(i, raw, default_id, default_time) for i, (raw, default_id, default_time)
                                 in enumerate(records)], SCHEMA)
    t_env.create_temporary_view("records", table)
    flag = "TRUE" if message_time else "FALSE"
    skew = "NULL" if max_future_skew_ms is None else str(max_future_skew_ms)
    clock = "TRUE" if wall_clock else "FALSE"
    cap = "NULL" if max_record_bytes is None else str(max_record_bytes)
    arguments = (f"(payload, {parse.sql_string(fmt)}, {flag}, default_id, default_time_ms, CAST({skew} AS BIGINT), "
                 f"{clock}, CAST({cap} AS INT))")
    calls = [f"{case.parse_function}{arguments} AS p{c}" for c, case in enumerate(CASES)]
    calls += [f"{case.time_function}{arguments} AS t{c}" for c, case in enumerate(CASES)]
    fields = [f"r.p{c}.{field}" for c in range(len(CASES)) for field in FIELDS]  # flat: PyFlink's collect
    fields += [f"r.t{c}" for c in range(len(CASES))]                              # fails on NULLs inside a ROW
    query = f"SELECT i, {', '.join(fields)} FROM (SELECT i, {', '.join(calls)} FROM records) AS r"
    with t_env.sql_query(query).execute().collect() as results:
        rows = sorted(results, key=lambda row: row[0])
    t_env.drop_temporary_view("records")
    return rows


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_java_parser_agrees_with_the_reference_decoder(t_env, fmt):
    records = _records(fmt, random.Random(fmt))
    rows = _run(t_env, fmt, records)
    assert len(rows) == len(records)
    for c, case in enumerate(CASES):
        expected = [_expected(case, fmt, raw, d_id, d_time) for raw, d_id, d_time in records]
        actual = [_actual(row, c) for row in rows]
        disagreements = [(raw, want, got) for (raw, _, _), want, got in zip(records, expected, actual) if want != got]
        assert not disagreements, (case.schema, disagreements[:5])
        reasons = {result[0] for result in actual}
        assert None in reasons and len(reasons) >= 7, (case.schema, reasons)  # the corpus reaches most reasons
        for row, got in zip(rows, actual):
            result = _result(row, c)
            # the rowtime column's time is the parse step's; none for a dead-lettered record
            assert result.rowtime_ms == (result.time_ms if result.reason is None else None)
            if result.reason is None:  # labels: each value outside the vocabularies once, in first-seen order
                assert list(result.labels or ()) == _first_unseen(got[5], case, got[3] or got[4])
            else:
                assert (result.instances, result.labels, result.response, result.truth) == (None, None, False, False)
        kinds = {(got[3], got[4], bool(_result(row, c).labels)) for row, got in zip(rows, actual) if got[0] is None}
        assert any(response for response, _, _ in kinds) == (case.schema.output_name is not None)  # responses read
        assert any(truth for _, truth, _ in kinds) == case.schema.ground_truth  # label messages read
        if c == MIXED_CASE:  # unseen categorical values on requests, responses and label messages
            assert {(False, False, True), (True, False, True), (False, True, True), (False, False, False)} <= kinds


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_future_times_are_dead_lettered_and_give_the_rowtime_no_time(t_env, fmt):
    now = int(time.time() * 1000)
    rows = [[5.0, 3.0, 1.5, 0.2]]
    records = [(formats.encode(fmt, f"r{i}", t, rows), None, None)
               for i, t in enumerate((now - 60_000, now + 60_000, now + 3_600_000, 32_503_680_000_000))]
    live = _run(t_env, fmt, records, max_future_skew_ms=300_000, wall_clock=True)
    assert [_actual(row)[0] for row in live] == [None, None, formats.FUTURE_TIME, formats.FUTURE_TIME]
    assert [_result(row, NUMERIC_CASE).rowtime_ms for row in live] == [now - 60_000, now + 60_000, None, None]


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_a_record_over_the_cap_is_too_large_as_the_reference_decoder_says(t_env, fmt):
    """``too_large`` before any other check (a line over the cap is not even JSON-checked), counted in UTF-8
    bytes (the categorical value's two-byte character), the rowtime given no time; at the cap a record parses."""
    line = formats.encode(fmt, "r1", T_MS, [[5.0, "r\u00e9d", 1.5, "1"]], schema=MIXED)
    size = len(line.encode())
    records = [(line, None, None), (line + "x", None, None), ("{" * size, None, None), ("{" * (size + 1), None, None)]
    rows = _run(t_env, fmt, records, max_record_bytes=size)
    expected = [_expected(CASES[MIXED_CASE], fmt, raw, None, None) for raw, _, _ in records]
    assert formats.decode(fmt, line, schema=MIXED, max_record_bytes=size).request_id == "r1"
    for raw, _, _ in records[1::2]:
        with pytest.raises(formats.FormatError, match=f"^too_large: {size + 1} bytes, limit {size}$"):
            formats.decode(fmt, raw, schema=MIXED, max_record_bytes=size)
    assert [_actual(row, MIXED_CASE)[0] for row in rows] == [None, formats.TOO_LARGE, formats.BAD_JSON, formats.TOO_LARGE]
    assert [e[0] for e in expected] == [None, formats.BAD_JSON, formats.BAD_JSON, formats.BAD_JSON]  # uncapped
    assert [_result(row, MIXED_CASE).rowtime_ms for row in rows] == [T_MS, None, None, None]


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
    assert _actual(good) == (None, "a", 1_900_000_000_000, False, False, rows)
    assert _actual(bad) == (None, "a", 1_900_000_000_001, False, False, rows)
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
