"""The monitoring job end to end, embedded: one real Flink mini-cluster run on a small staged stream
(plus malformed, late and multi-instance lines), every output checked against numpy / udfs recomputed
from the input. The spec adds the two-sample tests (ks, cvm) to the example's five histogram metrics."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats as scipy_stats

from benchmarks import iris_stream
from flink_job import formats
from udfs import drift as drift_math
from udfs import two_sample
from udfs.baseline import Baseline
from udfs.calibration import TEST_THRESHOLDS
from udfs.outliers import sigma_bounds

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "iris" / "monitor.yaml"
WINDOW_MS = 5_000
DELAY_MS = 1_000
RATES = (32.0, 61.0, 30.0, 61.0, 32.0)  # requests/s per stage: the drift stage spans whole windows
STAGE_SIZE = 300
MULTI_AT = 100  # the multi-instance request replaces this stream position


def _bad_lines(t_ms: int) -> dict[str, str]:
    """One malformed line per dead-letter reason the reference decoder gives, keyed by that reason."""
    ok = [5.1, 3.5, 1.4, 0.2]
    lines = {
        formats.BAD_JSON: "this is not json",
        formats.BAD_ENVELOPE: json.dumps({"type": "request", "id": "x1", "time": t_ms, "payload": [ok]}),
        formats.NOT_REQUEST: json.dumps({"type": "response", "id": "x2", "time": t_ms, "payload": {"instances": [ok]}}),
        formats.BAD_ID: json.dumps({"type": "request", "time": t_ms, "payload": {"instances": [ok]}}),
        formats.BAD_TIME: json.dumps({"type": "request", "id": "x3", "payload": {"instances": [ok]}}),
        formats.NO_INSTANCES: json.dumps({"type": "request", "id": "x4", "time": t_ms, "payload": {"instances": []}}),
        formats.BAD_INSTANCE: json.dumps({"type": "request", "id": "x5", "time": t_ms,
                                          "payload": {"instances": [[5.1, "3.5", 1.4, 0.2]]}}),
        formats.WRONG_FEATURE_COUNT: json.dumps({"type": "request", "id": "x6", "time": t_ms,
                                                 "payload": {"instances": [[5.1, 3.5, 1.4]]}}),
        formats.NON_FINITE: '{"type":"request","id":"x7","time":%d,"payload":{"instances":[[5.1,NaN,1.4,0.2]]}}' % t_ms,
    }
    for reason, line in lines.items():  # the fixture itself must agree with the reference decoder
        with pytest.raises(formats.FormatError) as err:
            formats.decode(formats.THESIS, line, n_features=4)
        assert err.value.reason == reason
    return lines


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Write the spec and input, run `mmon run` once, load every output file."""
    tmp = tmp_path_factory.mktemp("job")
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["baseline"] = str(EXAMPLE.parent / spec["baseline"])
    spec["window"].update(duration=f"{WINDOW_MS}ms", watermark_delay=f"{DELAY_MS}ms")
    spec["job"]["metrics_port"] = 0
    spec["drift"]["metrics"].update(ks={"threshold": "auto", "false_alarm_rate": 0.01},
                                    cvm={"threshold": "auto", "false_alarm_rate": 0.01})
    (tmp / "monitor.yaml").write_text(yaml.safe_dump(spec))

    stream = iris_stream.generate(seed=11, stage_size=STAGE_SIZE,
                                  rates=RATES)
    lines = [formats.encode(formats.THESIS, i, t, [row]) for i, t, row in
             zip(stream.ids.tolist(), stream.time_ms.tolist(), stream.instances.tolist())]
    requests = [(i, t, [row]) for i, t, row in zip(stream.ids.tolist(), stream.time_ms.tolist(),
                                                    stream.instances.tolist())]
    multi_rows = [requests[MULTI_AT][2][0], requests[MULTI_AT + 1][2][0]]
    requests[MULTI_AT] = (requests[MULTI_AT][0], requests[MULTI_AT][1], multi_rows)
    lines[MULTI_AT] = formats.encode(formats.THESIS, *requests[MULTI_AT])
    middle = int(stream.time_ms[len(stream) // 2])
    bad = _bad_lines(middle)
    late_line = formats.encode(formats.THESIS, "late-1", int(stream.time_ms[0]), [requests[0][2][0]])
    tail = list(bad.values()) + [late_line]
    (tmp / "input.jsonl").write_text("\n".join(lines + tail) + "\n")

    out = tmp / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "flink_job.cli", "run", "--config", str(tmp / "monitor.yaml"),
         "--input", str(tmp / "input.jsonl"), "--output", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def load(name):
        return [json.loads(line) for line in (out / name).read_text().splitlines()]

    return {
        "stdout": proc.stdout, "requests": requests, "bad": bad, "n_lines": len(lines) + len(tail),
        "first_bad_line": len(lines) + 1, "late_line": len(lines) + len(tail),
        "stats": load("stats.jsonl"), "outliers": load("outliers.jsonl"), "drift": load("drift.jsonl"),
        "dead": load("dead_letter.jsonl"), "covariance": load("covariance.jsonl"),
        "summary": json.loads((out / "summary.json").read_text()),
        "baseline": Baseline.load(spec["baseline"]), "features": tuple(spec["input"]["features"]),
    }


def _instances(run):
    """(request_id, time_ms, row) of every monitored instance."""
    return [(rid, t, row) for rid, t, rows in run["requests"] for row in rows]


def _window_values(run, start: int, feature_index: int) -> np.ndarray:
    return np.array([row[feature_index] for _, t, row in _instances(run) if start <= t < start + WINDOW_MS])


def test_every_window_is_emitted_including_the_last(run):
    times = np.array([t for _, t, _ in _instances(run)])
    expected = set(range(int(times.min()) // WINDOW_MS * WINDOW_MS, int(times.max()) + 1, WINDOW_MS))
    for feature in run["features"]:
        starts = [r["window_start"] for r in run["stats"] if r["feature"] == feature]
        assert sorted(starts) == sorted(expected), feature  # each window once, the last one included
    assert all(r["window_end"] - r["window_start"] == WINDOW_MS for r in run["stats"])


def test_stats_equal_numpy_on_the_same_windows(run):
    for record in run["stats"]:
        j = run["features"].index(record["feature"])
        x = _window_values(run, record["window_start"], j)
        assert record["count"] == len(x)
        assert record["mean"] == pytest.approx(x.mean(), rel=1e-12)
        assert record["stddev"] == pytest.approx(x.std(ddof=1), rel=1e-9)
        assert (record["min"], record["max"]) == (x.min(), x.max())
        edges = np.array(record["histogram"]["edges"])
        assert edges.tolist() == run["baseline"].features[record["feature"]].edges.tolist()
        inside = x[(x >= edges[0]) & (x < edges[-1])]
        assert record["histogram"]["counts"] == np.histogram(inside, edges)[0].tolist()
        assert record["histogram"]["underflow"] == int((x < edges[0]).sum())
        assert record["histogram"]["overflow"] == int((x >= edges[-1]).sum())
        for name, q in (("p25", 0.25), ("p50", 0.5), ("p75", 0.75)):
            rank = (x <= record[name]).mean()  # documented rank error: at most 1% of n
            assert abs(rank - q) <= 0.01 + 1 / len(x), (name, rank)
        assert record["iqr"] == pytest.approx(record["p75"] - record["p25"])
        assert record["emitted_at"] > 1_600_000_000_000


def test_every_violating_value_alerted_exactly_once(run):
    baseline, features = run["baseline"], run["features"]
    lower, upper = sigma_bounds([baseline.features[f].mean for f in features],
                                [baseline.features[f].std for f in features], 3.0)
    expected = {}
    for rid, t, row in _instances(run):
        for j, value in enumerate(row):
            if value < lower[j] or value > upper[j]:
                expected.setdefault((rid, features[j]), []).append((value, float(lower[j] if value < lower[j] else upper[j]), t))
    alerted = {}
    for alert in run["outliers"]:
        assert alert["rule"] == "sigma" and alert["model"] == "iris"
        alerted.setdefault((alert["request_id"], alert["feature"]), []).append(
            (alert["value"], alert["threshold"], alert["request_time"]))
        assert alert["detected_at"] >= 1_600_000_000_000
    assert sorted(alerted) == sorted(expected)
    for key, values in expected.items():
        assert sorted(alerted[key]) == sorted(values), key  # thresholds are inlined exactly
    assert len(expected) > 20  # the stream's outlier stages really were checked


def test_drift_values_equal_udfs_drift_on_the_window_histograms(run):
    by_window = {(r["feature"], r["window_start"]): r for r in run["stats"]}
    metrics = set(drift_math.METRIC_NAMES)
    assert len(run["drift"]) == len(run["stats"]) * len(metrics)  # emit_all: every (window, metric)
    assert {r["metric"] for r in run["drift"]} == metrics
    for record in (r for r in run["drift"] if r["metric"] in drift_math.METRICS):
        stats = by_window[(record["feature"], record["window_start"])]
        hist = stats["histogram"]
        observed = np.array([hist["underflow"], *hist["counts"], hist["overflow"]], dtype=float)
        reference = run["baseline"].features[record["feature"]]
        expected = drift_math.compute(record["metric"], observed, reference.histogram_counts(), reference.edges)
        assert record["value"] == pytest.approx(float(expected), rel=1e-9, abs=1e-12)
        assert record["drift"] == (record["value"] > record["threshold"])
        assert record["count"] == stats["count"]
        assert record["window_end"] == record["window_start"] + WINDOW_MS


def test_two_sample_tests_equal_udfs_and_scipy_on_the_window_values(run):
    """ks and cvm from the window step's CDF (exact: every window here holds < 2,048 values, epsilon 0)
    equal udfs.two_sample on the raw window values, ks also scipy's ks_2samp; auto thresholds are the
    tests' own nulls at (m, n). (scipy's cramervonmises_2samp averages the ranks of ties, which Iris's
    training values have, so cvm is checked against udfs.two_sample only.)"""
    records = [r for r in run["drift"] if r["metric"] in drift_math.TESTS]
    assert len(records) == 2 * len(run["stats"])
    for record in records:
        j = run["features"].index(record["feature"])
        x = _window_values(run, record["window_start"], j)
        sample = run["baseline"].features[record["feature"]].sample
        expected = drift_math.TESTS[record["metric"]](two_sample.empirical_cdf(x), len(x), 0.0, sample)
        assert record["value"] == pytest.approx(float(expected), rel=1e-9, abs=1e-12)
        if record["metric"] == "ks":
            assert record["value"] == pytest.approx(scipy_stats.ks_2samp(x, sample).statistic, abs=1e-9)
        assert record["count"] == len(x) < 2_048
        assert record["threshold"] == pytest.approx(float(TEST_THRESHOLDS[record["metric"]](len(sample), len(x), 0.01)),
                                                    rel=1e-12)
        assert record["drift"] == (record["value"] > record["threshold"])


def test_drift_stage_windows_are_flagged(run):
    stages_by_window = {}
    for (rid, t, _), stage in zip(run["requests"], np.repeat(np.arange(1, 6), STAGE_SIZE)):
        stages_by_window.setdefault(t // WINDOW_MS * WINDOW_MS, []).append(int(stage))
    mostly_drift = {w for w, stages in stages_by_window.items() if np.mean(np.array(stages) == 3) > 0.5}
    assert mostly_drift, "some window holds mostly drift-stage requests"
    flagged = {(r["feature"], r["window_start"]) for r in run["drift"] if r["metric"] == "wasserstein" and r["drift"]}
    for window in mostly_drift:
        assert any((f, window) in flagged for f in run["features"]), window


def test_malformed_and_late_lines_dead_lettered_with_their_reasons(run):
    dead = {r["source"]: r for r in run["dead"]}
    label = [r for r in run["dead"]][0]["source"].rsplit(":", 1)[0]
    for offset, (reason, line) in enumerate(run["bad"].items()):
        record = dead[f"{label}:{run['first_bad_line'] + offset}"]
        assert (record["reason"], record["raw"]) == (reason, line)
        assert record["at"] >= 1_600_000_000_000
    assert dead[f"{label}:{run['late_line']}"]["reason"] == "late"
    assert len(run["dead"]) == len(run["bad"]) + 1


def test_nothing_is_silently_dropped(run):
    windowed = sum(r["count"] for r in run["stats"] if r["feature"] == run["features"][0])
    n_instances = len(_instances(run))
    assert windowed == n_instances
    # lines in == monitored requests + dead letters (the multi-instance line holds two instances)
    assert run["n_lines"] == len(run["requests"]) + len(run["dead"])


def test_covariance_and_correlation_equal_numpy(run):
    assert {r["statistic"] for r in run["covariance"]} == {"covariance", "correlation"}
    for record in run["covariance"]:
        rows = np.array([row for _, t, row in _instances(run)
                         if record["window_start"] <= t < record["window_start"] + WINDOW_MS])
        expected = np.cov(rows.T) if record["statistic"] == "covariance" else np.corrcoef(rows.T)
        assert record["count"] == len(rows)
        assert np.allclose(np.array(record["matrix"], dtype=float), expected, rtol=1e-9, atol=1e-12)
        assert record["features"] == list(run["features"])


def test_summary_printed_and_written(run):
    summary = run["summary"]
    assert summary["instances"] == len(_instances(run))
    assert summary["outliers"] == len(run["outliers"])
    assert summary["late"] == 1 and summary["dead_letter"] == len(run["bad"]) + 1
    assert summary["windows"] == len(run["stats"]) // len(run["features"])
    assert "mmon run: done." in run["stdout"]


def test_accounting_identity_nothing_lost(run):
    """Every line read was monitored or dead-lettered; every accepted instance is in exactly one window."""
    summary = run["summary"]
    assert summary["records_read"] == run["n_lines"] == summary["requests_accepted"] + summary["dead_letter"]
    assert summary["instances_accepted"] == summary["instances"] == len(_instances(run))
    assert summary["accounted"] is True
