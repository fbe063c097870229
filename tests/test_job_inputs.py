"""The embedded job end to end on its other two input formats, and its Prometheus metrics while it runs.

- ``kserve-v1`` and ``oip-v2``: one real mini-cluster run per format (``mmon run`` in a subprocess) on
  a small staged stream written in that format (some requests merged into multi-instance requests),
  followed by malformed and edge-case lines. `formats.decode` is the oracle for every line: the
  instances it accepts must reach the windows and the outlier rule, the lines it rejects must reach the
  dead letter with its reason. Each extra line gets a tumbling window of its own after the stream, so
  a line the job gets wrong shows up in its own test case and leaves the stream's checks alone.
- Prometheus: a longer run with ``--metrics-port``, scraped while it runs until the job's ``mmon``
  counters hold the values the input implies.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
import yaml

from contract import formats, outputs

from udfs.baseline import Baseline
from udfs.outliers import sigma_bounds

from streams import iris

from devtools.processes import stop_group
from devtools.services import free_port

from prometheus_scrape import scrape, total
from window_checks import assert_stats_equal_numpy

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "iris" / "monitor.yaml"
WINDOW_MS = 5_000
DELAY_MS = 1_000
RATES = (32.0, 61.0, 30.0, 61.0, 32.0)  # requests/s per stage: about 19 s of event time, 4-5 windows
STAGE_SIZE = 150
SEED = 23
MULTI = {40: 2, 170: 3, 330: 2, 480: 3, 650: 2}  # stream position -> instances merged into that request
CASE_OFFSET_MS = 1_234  # a case's time within its own window
JOB_TIMEOUT_S = 420

OK_ROW = [5.1, 3.5, 1.4, 0.2]
OK_ROW_2 = [6.3, 2.9, 5.6, 1.8]
OK_ROW_3 = [5.8, 2.7, 4.1, 1.0]
NAN, INF = float("nan"), float("inf")
DROP = object()  # a key to remove from the encoded message


# ------------------------------------------------------------------------------------ extra lines

@dataclass(frozen=True)
class Case:
    """One extra input line: ``reason`` is what `formats.decode` says of it (None: a valid request;
    the fixture checks it), ``line(request_id, time_ms)`` writes it."""

    name: str
    reason: Optional[str]
    line: Callable[[str, int], str]


def _compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))  # NaN / Infinity written as such on purpose


def _changed(obj: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if value is DROP:
            del obj[key]
        else:
            obj[key] = value
    return obj


def _ce(rid: str, t: int, rows=(OK_ROW,), **changes) -> str:
    """A CloudEvent as `formats.encode` writes it, holding ``rows`` (any values), with top-level keys
    replaced or dropped."""
    obj = json.loads(formats.encode(formats.KSERVE_V1, rid, t, [OK_ROW]))
    obj["data"]["instances"] = [list(row) for row in rows]
    return _compact(_changed(obj, changes))


def _ce_data(rid: str, t: int, data) -> str:
    return _ce(rid, t, data=data)


def _ce_time(rid: str, t: int, text: Callable[[int], str]) -> str:
    return _ce(rid, t, time=text(t))


def _rfc3339(t: int, fraction: str, zone: str, shift_ms: int = 0) -> str:
    """``t`` as RFC 3339 wall time shifted by ``shift_ms`` (to go with a ``zone`` offset), seconds only."""
    stamp = formats.format_rfc3339_ms(t + shift_ms)[:19]
    return f"{stamp}{fraction}{zone}"


KSERVE_CASES = (
    Case("bad_json_truncated", formats.BAD_JSON, lambda rid, t: _ce(rid, t)[:-7]),
    Case("bad_json_top_level_array", formats.BAD_JSON, lambda rid, t: f"[{_ce(rid, t)}]"),
    Case("bad_envelope_specversion", formats.BAD_ENVELOPE, lambda rid, t: _ce(rid, t, specversion="0.3")),
    Case("bad_envelope_specversion_number", formats.BAD_ENVELOPE, lambda rid, t: _ce(rid, t, specversion=1.0)),
    Case("bad_envelope_data_list", formats.BAD_ENVELOPE, lambda rid, t: _ce(rid, t, data=[OK_ROW])),
    Case("bad_envelope_data_missing", formats.BAD_ENVELOPE, lambda rid, t: _ce(rid, t, data=DROP)),
    Case("not_request_response", formats.NOT_REQUEST,
         lambda rid, t: _ce(rid, t, type="org.kubeflow.serving.inference.response")),
    Case("not_request_type_missing", formats.NOT_REQUEST, lambda rid, t: _ce(rid, t, type=DROP)),
    Case("bad_id_missing", formats.BAD_ID, lambda rid, t: _ce(rid, t, id=DROP)),
    Case("bad_id_empty", formats.BAD_ID, lambda rid, t: _ce(rid, t, id="")),
    Case("bad_id_number", formats.BAD_ID, lambda rid, t: _ce(rid, t, id=17)),
    # plain KServe v1 bodies: no id and no time, and a file has no Kafka key to stand in for the id
    Case("plain_body_one_instance", formats.BAD_ID, lambda rid, t: _compact({"instances": [OK_ROW]})),
    Case("plain_body_two_instances", formats.BAD_ID, lambda rid, t: _compact({"instances": [OK_ROW, OK_ROW_2]})),
    Case("plain_body_three_instances", formats.BAD_ID,
         lambda rid, t: _compact({"instances": [OK_ROW, OK_ROW_2, OK_ROW_3]})),
    Case("bad_time_text", formats.BAD_TIME, lambda rid, t: _ce(rid, t, time="yesterday")),
    Case("bad_time_number", formats.BAD_TIME, lambda rid, t: _ce(rid, t, time=t)),
    Case("bad_time_missing", formats.BAD_TIME, lambda rid, t: _ce(rid, t, time=DROP)),
    Case("bad_time_no_zone", formats.BAD_TIME, lambda rid, t: _ce_time(rid, t, lambda t: _rfc3339(t, ".000", ""))),
    Case("no_instances_empty", formats.NO_INSTANCES, lambda rid, t: _ce_data(rid, t, {"instances": []})),
    Case("no_instances_missing", formats.NO_INSTANCES, lambda rid, t: _ce_data(rid, t, {"inputs": [OK_ROW]})),
    Case("bad_instance_string", formats.BAD_INSTANCE,
         lambda rid, t: _ce_data(rid, t, {"instances": [[5.1, "3.5", 1.4, 0.2]]})),
    Case("bad_instance_bool", formats.BAD_INSTANCE,  # (a null is a missing value: tests/test_job_penguins.py)
         lambda rid, t: _ce_data(rid, t, {"instances": [OK_ROW, [5.1, True, 1.4, 0.2]]})),
    Case("bad_instance_flat", formats.BAD_INSTANCE, lambda rid, t: _ce_data(rid, t, {"instances": OK_ROW})),
    Case("wrong_feature_count_three", formats.WRONG_FEATURE_COUNT,
         lambda rid, t: _ce(rid, t, rows=[[5.1, 3.5, 1.4]])),
    Case("wrong_feature_count_multi", formats.WRONG_FEATURE_COUNT,
         lambda rid, t: _ce(rid, t, rows=[OK_ROW, OK_ROW_2, OK_ROW_3 + [0.1]])),
    Case("non_finite_nan", formats.NON_FINITE, lambda rid, t: _ce(rid, t, rows=[[5.1, NAN, 1.4, 0.2]])),
    Case("non_finite_multi_infinity", formats.NON_FINITE,
         lambda rid, t: _ce(rid, t, rows=[OK_ROW, [5.1, 3.5, -INF, 0.2], OK_ROW_2])),
    # valid requests no encoder here writes, each in a window of its own
    Case("valid_integer_values", None, lambda rid, t: _ce_data(rid, t, {"instances": [[5, 3, 1, 0]]})),
    Case("valid_three_instances", None, lambda rid, t: _ce(rid, t, rows=[OK_ROW, OK_ROW_2, OK_ROW_3])),
    Case("valid_time_without_fraction", None, lambda rid, t: _ce_time(rid, t, lambda t: _rfc3339(t, "", "Z"))),
    # same instant as t, written at offset -01:00: a job that ignored the offset would see it an hour early
    Case("valid_time_with_offset", None,
         lambda rid, t: _ce_time(rid, t, lambda t: _rfc3339(t, formats.format_rfc3339_ms(t)[19:23], "-01:00",
                                                            shift_ms=-3_600_000))),
    # last: a job misreading the fraction could put this request in the future and make later lines late
    Case("valid_time_microseconds", None,
         lambda rid, t: _ce_time(rid, t, lambda t: formats.format_rfc3339_ms(t)[:23] + "456Z")),
)


def _oip(rid: str, t: int, rows=(OK_ROW,), tensor: Optional[dict] = None, **changes) -> str:
    """An OIP v2 request as `formats.encode` writes it, holding ``rows`` (any values), with top-level and
    tensor keys replaced or dropped."""
    obj = json.loads(formats.encode(formats.OIP_V2, rid, t, [OK_ROW]))
    obj["inputs"][0].update(shape=[len(rows), len(rows[0])], data=[v for row in rows for v in row])
    _changed(obj["inputs"][0], tensor or {})
    return _compact(_changed(obj, changes))


def _oip_tensor(rid: str, t: int, **tensor) -> str:
    return _oip(rid, t, tensor=tensor)


OIP_CASES = (
    Case("bad_json_truncated", formats.BAD_JSON, lambda rid, t: _oip(rid, t)[:-3]),
    Case("bad_json_scalar", formats.BAD_JSON, lambda rid, t: "42"),
    Case("bad_envelope_two_tensors", formats.BAD_ENVELOPE,
         lambda rid, t: _oip(rid, t, inputs=json.loads(_oip(rid, t))["inputs"] * 2)),
    Case("bad_envelope_inputs_object", formats.BAD_ENVELOPE,
         lambda rid, t: _oip(rid, t, inputs=json.loads(_oip(rid, t))["inputs"][0])),
    Case("bad_envelope_inputs_missing", formats.BAD_ENVELOPE, lambda rid, t: _oip(rid, t, inputs=DROP)),
    Case("bad_envelope_tensor_list", formats.BAD_ENVELOPE, lambda rid, t: _oip(rid, t, inputs=[[OK_ROW]])),
    Case("bad_envelope_parameters_text", formats.BAD_ENVELOPE, lambda rid, t: _oip(rid, t, parameters="fast")),
    Case("bad_id_missing", formats.BAD_ID, lambda rid, t: _oip(rid, t, id=DROP)),
    Case("bad_id_empty", formats.BAD_ID, lambda rid, t: _oip(rid, t, id="")),
    Case("bad_id_number", formats.BAD_ID, lambda rid, t: _oip(rid, t, id=17)),
    Case("bad_time_missing", formats.BAD_TIME, lambda rid, t: _oip(rid, t, parameters=DROP)),
    Case("bad_time_negative", formats.BAD_TIME, lambda rid, t: _oip(rid, t, parameters={"time": -t})),
    Case("bad_time_boolean", formats.BAD_TIME, lambda rid, t: _oip(rid, t, parameters={"time": True})),
    Case("bad_datatype_bytes", formats.BAD_DATATYPE, lambda rid, t: _oip_tensor(rid, t, datatype="BYTES")),
    Case("bad_datatype_missing", formats.BAD_DATATYPE, lambda rid, t: _oip_tensor(rid, t, datatype=DROP)),
    Case("bad_shape_too_few_values", formats.BAD_SHAPE, lambda rid, t: _oip_tensor(rid, t, shape=[2, 4])),
    Case("bad_shape_one_dimension", formats.BAD_SHAPE, lambda rid, t: _oip_tensor(rid, t, shape=[4])),
    Case("bad_shape_zero_rows", formats.BAD_SHAPE, lambda rid, t: _oip_tensor(rid, t, shape=[0, 4], data=[])),
    Case("bad_instance_string", formats.BAD_INSTANCE,
         lambda rid, t: _oip_tensor(rid, t, data=[5.1, "3.5", 1.4, 0.2])),
    Case("wrong_feature_count_three", formats.WRONG_FEATURE_COUNT,
         lambda rid, t: _oip(rid, t, rows=[[5.1, 3.5, 1.4]])),
    Case("wrong_feature_count_multi", formats.WRONG_FEATURE_COUNT,
         lambda rid, t: _oip(rid, t, rows=[[5.1, 3.5, 1.4], [6.3, 2.9, 5.6]])),
    Case("wrong_feature_count_three_wide", formats.WRONG_FEATURE_COUNT,
         lambda rid, t: _oip(rid, t, rows=[r + [0.1] for r in (OK_ROW, OK_ROW_2, OK_ROW_3)])),
    Case("non_finite_nan", formats.NON_FINITE, lambda rid, t: _oip(rid, t, rows=[[5.1, NAN, 1.4, 0.2]])),
    Case("non_finite_multi_infinity", formats.NON_FINITE,
         lambda rid, t: _oip(rid, t, rows=[OK_ROW, [5.1, 3.5, INF, 0.2], OK_ROW_2])),
    Case("valid_three_instances", None, lambda rid, t: _oip(rid, t, rows=[OK_ROW, OK_ROW_2, OK_ROW_3])),
    Case("valid_fp32", None, lambda rid, t: _oip_tensor(rid, t, datatype="FP32")),
    Case("valid_int64_integers", None, lambda rid, t: _oip_tensor(rid, t, datatype="INT64", data=[5, 3, 1, 0])),
    Case("valid_time_in_seconds", None, lambda rid, t: _oip(rid, t, parameters={"time": t / 1000})),
)

CASES = {formats.KSERVE_V1: KSERVE_CASES, formats.OIP_V2: OIP_CASES}
FORMATS_UNDER_TEST = tuple(CASES)

# Cases the job gets wrong today (xfail strict, so a fix turns them into failures to remove from here).
KNOWN_BUGS: dict[tuple[str, str], str] = {}


def _case_params():
    params = []
    for fmt, cases in CASES.items():
        for case in cases:
            bug = KNOWN_BUGS.get((fmt, case.name))
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            params.append(pytest.param(fmt, case.name, id=f"{fmt}-{case.name}", marks=marks))
    return params


# ---------------------------------------------------------------------------------------- the runs

def _spec(tmp: Path, fmt: str) -> dict:
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["baseline"] = str(EXAMPLE.parent / spec["baseline"])
    spec["input"]["format"] = fmt
    spec["window"].update(duration=f"{WINDOW_MS}ms", watermark_delay=f"{DELAY_MS}ms")
    spec["job"]["metrics_port"] = 0
    (tmp / "monitor.yaml").write_text(yaml.safe_dump(spec))
    return spec


def _stream_requests() -> list[tuple[str, int, list[list[float]]]]:
    """The staged stream as (id, time, rows), with the requests at `MULTI` holding the next rows too."""
    stream = iris.generate(seed=SEED, stage_size=STAGE_SIZE, rates=RATES)
    singles = list(zip(stream.ids.tolist(), stream.time_ms.tolist(), stream.instances.tolist()))
    requests, i = [], 0
    while i < len(singles):
        k = MULTI.get(i, 1)
        rid, t, _ = singles[i]
        requests.append((rid, t, [row for _, _, row in singles[i:i + k]]))
        i += k
    return requests


def _load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _run_job(fmt: str, tmp: Path) -> dict:
    spec = _spec(tmp, fmt)
    n_features = len(spec["input"]["features"])
    requests = _stream_requests()
    lines = [formats.encode(fmt, rid, t, rows) for rid, t, rows in requests]
    case_base = (requests[-1][1] // WINDOW_MS + 2) * WINDOW_MS  # one empty window between stream and cases
    cases = {}
    for k, case in enumerate(CASES[fmt]):
        rid, t = f"case-{k:02d}", case_base + k * WINDOW_MS + CASE_OFFSET_MS
        raw = case.line(rid, t)
        line_no = len(lines) + 1
        lines.append(raw)
        cases[case.name] = {"line_no": line_no, "request_id": rid, "time_ms": t, "raw": raw,
                            "window_start": t // WINDOW_MS * WINDOW_MS}
    assert len(set(lines)) == len(lines)

    # the oracle: formats.decode on every line, exactly as the job reads it from a file (no Kafka defaults)
    accepted, rejected = {}, {}
    for line_no, raw in enumerate(lines, start=1):
        try:
            accepted[line_no] = formats.decode(fmt, raw, n_features=n_features)
        except formats.FormatError as err:
            rejected[line_no] = err.reason
    assert len(rejected) == sum(1 for c in CASES[fmt] if c.reason)  # the stream itself is all valid
    for case in CASES[fmt]:  # each case holds the reason it claims
        info = cases[case.name]
        assert rejected.get(info["line_no"]) == case.reason, (case.name, info["raw"])
        if case.reason is None:  # in its own window (a time without milliseconds is truncated)
            assert accepted[info["line_no"]].time_ms // WINDOW_MS * WINDOW_MS == info["window_start"], case.name
    specific = {formats.KSERVE_V1: {formats.NOT_REQUEST, formats.NO_INSTANCES},
                formats.OIP_V2: {formats.BAD_DATATYPE, formats.BAD_SHAPE}}[fmt]
    assert set(rejected.values()) == specific | {formats.BAD_JSON, formats.BAD_ENVELOPE, formats.BAD_ID, formats.BAD_TIME,
                                                 formats.BAD_INSTANCE, formats.WRONG_FEATURE_COUNT, formats.NON_FINITE}

    path = (tmp / "input.jsonl").resolve()
    path.write_text("\n".join(lines) + "\n")
    out, log_path = tmp / "out", tmp / "job.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmon.cli", "run", "--config", str(tmp / "monitor.yaml"),
             "--input", str(path), "--output", str(out)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        proc.wait(timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        return {"error": f"mmon run ({fmt}) still running after {JOB_TIMEOUT_S} s:\n{log_path.read_text()[-4000:]}"}
    if proc.returncode != 0:
        return {"error": f"mmon run ({fmt}) exited {proc.returncode}:\n{log_path.read_text()[-4000:]}"}
    return {
        "fmt": fmt, "path": path, "lines": lines, "n_stream_lines": len(requests),
        "accepted": accepted, "rejected": rejected, "cases": cases, "case_base": case_base,
        **{kind: _load(out / outputs.FILE_NAMES[kind]) for kind in (outputs.STATS, outputs.OUTLIERS, outputs.DEAD_LETTER)},
        "baseline": Baseline.load(spec["baseline"]), "features": tuple(spec["input"]["features"]),
    }


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """``job(fmt)``: the outputs of the one `mmon run` on that format (run on first use, then cached)."""
    runs = {}

    def get(fmt: str) -> dict:
        if fmt not in runs:
            runs[fmt] = _run_job(fmt, tmp_path_factory.mktemp(f"job-{fmt}"))
        if "error" in runs[fmt]:
            pytest.fail(runs[fmt]["error"], pytrace=False)
        return runs[fmt]

    return get


def _source(run: dict, line_no: int) -> str:
    return f"{run['path']}:{line_no}"


def _instances(run: dict, line_nos) -> list[tuple[str, int, list[float]]]:
    """(request id, time, row) of every instance `formats.decode` accepted on those lines."""
    return [(req.request_id, req.time_ms, row) for n in line_nos if n in run["accepted"]
            for req in [run["accepted"][n]] for row in req.instances]


def _stream_line_nos(run: dict) -> range:
    return range(1, run["n_stream_lines"] + 1)


# ------------------------------------------------------------------------------- format end to end

@pytest.mark.parametrize("fmt", FORMATS_UNDER_TEST)
def test_stream_stats_equal_numpy_per_window(job, fmt):
    run = job(fmt)
    instances = _instances(run, _stream_line_nos(run))
    by_window = {}
    for _, t, row in instances:
        by_window.setdefault(t // WINDOW_MS * WINDOW_MS, []).append(row)
    stream_stats = [r for r in run["stats"] if r["window_start"] < run["case_base"]]
    assert sorted((r["feature"], r["window_start"]) for r in stream_stats) == sorted(
        (f, w) for f in run["features"] for w in by_window)  # each (feature, window) exactly once
    assert len(by_window) >= 4
    for record in stream_stats:
        assert record["model"] == "iris"
        j = run["features"].index(record["feature"])
        assert_stats_equal_numpy(record, np.array([row[j] for row in by_window[record["window_start"]]]), WINDOW_MS)


@pytest.mark.parametrize("fmt", FORMATS_UNDER_TEST)
def test_no_window_beyond_the_stream_and_the_extra_lines(job, fmt):
    run = job(fmt)
    stream_windows = {t // WINDOW_MS * WINDOW_MS for _, t, _ in _instances(run, _stream_line_nos(run))}
    case_windows = {case["window_start"] for case in run["cases"].values()}
    assert {r["window_start"] for r in run["stats"]} <= stream_windows | case_windows


@pytest.mark.parametrize("fmt", FORMATS_UNDER_TEST)
def test_every_stream_instance_is_windowed_multi_instance_requests_included(job, fmt):
    run = job(fmt)
    stream_lines = _stream_line_nos(run)
    multi = [n for n in stream_lines if len(run["accepted"][n].instances) > 1]
    assert len(multi) == len(MULTI) and {len(run["accepted"][n].instances) for n in multi} == {2, 3}
    windowed = sum(r["count"] for r in run["stats"]
                   if r["feature"] == run["features"][0] and r["window_start"] < run["case_base"])
    assert windowed == len(_instances(run, stream_lines)) == STAGE_SIZE * 5


@pytest.mark.parametrize("fmt", FORMATS_UNDER_TEST)
def test_outlier_alerts_equal_the_sigma_rule(job, fmt):
    run = job(fmt)
    baseline, features = run["baseline"], run["features"]
    lower, upper = sigma_bounds([baseline.features[f].mean for f in features],
                                [baseline.features[f].std for f in features], 3.0)
    expected = Counter()
    for rid, t, row in _instances(run, run["accepted"]):
        for j, value in enumerate(row):
            if value < lower[j] or value > upper[j]:
                expected[(rid, features[j], value, float(lower[j] if value < lower[j] else upper[j]), t)] += 1
    alerted = Counter((a["request_id"], a["feature"], a["value"], a["threshold"], a["request_time"])
                      for a in run["outliers"])
    assert all(a["rule"] == "sigma" and a["model"] == "iris" for a in run["outliers"])
    assert alerted == expected
    assert sum(expected.values()) > 10  # the outlier stages really were checked


@pytest.mark.parametrize("fmt", FORMATS_UNDER_TEST)
def test_dead_letters_only_for_lines_the_reference_decoder_rejects(job, fmt):
    run = job(fmt)
    sources = {_source(run, n): n for n in range(1, len(run["lines"]) + 1)}
    for record in run["dead_letter"]:
        assert record["source"] in sources, record  # names a line of the input file
        line_no = sources[record["source"]]
        assert line_no in run["rejected"], (record, "formats.decode accepts this line")
        assert record["raw"] == run["lines"][line_no - 1]
        assert record["at"] >= 1_600_000_000_000
    assert not [r for r in run["dead_letter"] if sources[r["source"]] in _stream_line_nos(run)]


@pytest.mark.parametrize("fmt, name", _case_params())
def test_extra_line(job, fmt, name):
    """One extra line: dead-lettered once with `formats.decode`'s reason, or monitored in its own window."""
    run = job(fmt)
    case = run["cases"][name]
    dead = [r for r in run["dead_letter"] if r["source"] == _source(run, case["line_no"])]
    window = [r for r in run["stats"] if r["window_start"] == case["window_start"]]
    reason = run["rejected"].get(case["line_no"])
    if reason is not None:
        assert [(r["reason"], r["raw"]) for r in dead] == [(reason, case["raw"])]
        assert window == []  # none of its instances reached the windows
    else:
        assert dead == []
        rows = np.array(run["accepted"][case["line_no"]].instances)
        assert sorted(r["feature"] for r in window) == sorted(run["features"])
        for record in window:
            assert_stats_equal_numpy(record, rows[:, run["features"].index(record["feature"])], WINDOW_MS)


# ------------------------------------------------------------------------------------- Prometheus

# 100,000 requests: ~25 s of processing on two cores; the checks below hold from ~60 % of it (after the drift
# stage's first alert), so the job is still running then. A much faster job would need a longer stream.
PROM_STAGE_SIZE = 20_000
PROM_DEADLINE_S = 240
LATE_AT = 15_000  # the late line's position: the watermark has long passed the stream's first window
PROM_BAD = ((formats.BAD_JSON, "{not json"), (formats.BAD_JSON, "[]"),
            (formats.NOT_REQUEST, formats.encode(formats.THESIS, "resp-1", 1_800_000_000_500, [OK_ROW])
             .replace('"type":"request"', '"type":"response"')),
            (formats.BAD_TIME, formats.encode(formats.THESIS, "t-1", 1, [OK_ROW]).replace('"time":1,', '"time":-1,')))
COUNTERS = ("instances_windowed", "windows_emitted", "late_events", "parse_errors", "drift_alerts",
            "reason_dead_letter", "version_feature_outliers", "version_feature_metric_drift_value_micros")


@pytest.mark.timeout(PROM_DEADLINE_S + 120)
def test_prometheus_reports_the_mmon_counters_while_the_job_runs(tmp_path):
    spec = _spec(tmp_path, formats.THESIS)
    features = tuple(spec["input"]["features"])
    stream = iris.generate(seed=SEED, stage_size=PROM_STAGE_SIZE, rates=iris.DEFAULT_RATES)
    requests = list(zip(stream.ids.tolist(), stream.time_ms.tolist(), stream.instances.tolist()))
    lines = [formats.encode(formats.THESIS, rid, t, [row]) for rid, t, row in requests]
    for reason, raw in PROM_BAD:
        with pytest.raises(formats.FormatError) as err:
            formats.decode(formats.THESIS, raw, n_features=len(features))
        assert err.value.reason == reason
    lines = [raw for _, raw in PROM_BAD] + lines
    lines.insert(LATE_AT, formats.encode(formats.THESIS, "late-1", requests[0][1], [requests[0][2]]))
    (tmp_path / "input.jsonl").write_text("\n".join(lines) + "\n")
    n_instances = len(requests)
    baseline = Baseline.load(spec["baseline"])
    lower, upper = sigma_bounds([baseline.features[f].mean for f in features],
                                [baseline.features[f].std for f in features], 3.0)
    outliers_by_feature = Counter(features[j] for _, _, row in requests for j, v in enumerate(row)
                                  if v < lower[j] or v > upper[j])
    n_windows = len({t // WINDOW_MS for _, t, _ in requests})
    dead_expected = Counter(reason for reason, _ in PROM_BAD)
    dead_expected["late"] += 1

    port = free_port()
    out = tmp_path / "out"
    log_path = tmp_path / "job.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmon.cli", "run", "--config", str(tmp_path / "monitor.yaml"),
             "--input", str(tmp_path / "input.jsonl"), "--output", str(out), "--metrics-port", str(port)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    history, last, floor, done = [], None, None, False
    started = time.monotonic()
    deadline = started + PROM_DEADLINE_S
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if floor is None and (out / "stats.jsonl").exists():
                # lower bounds from the outputs already written: the counters must catch up with them
                stats, alerts = _load(out / "stats.jsonl"), _load(out / "outliers.jsonl")
                if len(stats) >= 3 * len(features):
                    floor = {"instances_windowed": sum(r["count"] for r in stats if r["feature"] == features[0]),
                             "windows_emitted": len(stats),
                             "version_feature_outliers": Counter((a["version"], a["feature"]) for a in alerts)}
            found = scrape(port)
            if found:
                last = found
                if "instances_windowed" in found:  # absent before the first sub-batch and after the job's tasks end
                    history.append((time.monotonic() - started, total(found, "instances_windowed")))
                done = (floor is not None
                        and all(name in found for name in COUNTERS)
                        and {k[0]: v for k, v in found["reason_dead_letter"].items()} == dead_expected
                        and total(found, "parse_errors") == len(PROM_BAD)
                        and total(found, "late_events") == 1
                        and total(found, "instances_windowed") >= floor["instances_windowed"]
                        and total(found, "windows_emitted") >= floor["windows_emitted"]
                        and all(found["version_feature_outliers"].get(key, 0) >= n
                                for key, n in floor["version_feature_outliers"].items())
                        and total(found, "drift_alerts") > 0)
                if done:
                    break
            time.sleep(0.25)  # polling interval, not synchronisation
    finally:
        running = proc.poll() is None
        stop_group(proc)
    context = (f"after {time.monotonic() - started:.1f} s, job {'running' if running else 'ended'}; floor {floor}; "
               f"last scrape {json.dumps({k: {','.join(l): v for l, v in d.items()} for k, d in (last or {}).items()})}"
               f"\n{log_path.read_text()[-3000:]}")
    assert last is not None, "the Prometheus endpoint never answered: " + context
    assert done, context
    assert running, "the job must still be running when the counters are checked (raise PROM_STAGE_SIZE?): " + context

    seen = [v for _, v in history]
    assert seen == sorted(seen), "instances_windowed went down"
    assert 0 < seen[-1] <= n_instances
    assert total(last, "windows_emitted") <= n_windows * len(features)
    version = spec["model"]["version"]  # every request names none: the spec's
    for (of_version, feature), value in last["version_feature_outliers"].items():
        assert of_version == version and 0 < value <= outliers_by_feature[feature], feature
    drift_labels = set(last["version_feature_metric_drift_value_micros"])
    assert drift_labels == {(version, f, m) for f in features for m in spec["drift"]["metrics"]}
    assert all(v >= 0 for v in last["version_feature_metric_drift_value_micros"].values())
