"""The monitoring job end to end, embedded: real Flink mini-cluster runs on small staged streams (plus
malformed, late and multi-instance lines; tests/embedded_run.py), every output checked against numpy /
udfs recomputed from the input. Each check runs on two runs: the Iris example (4 features, parallelism 1)
and a 128-feature model (parallelism 2, the window state in 3 shards). Both add the two-sample tests
(ks, cvm) to the five histogram metrics and emit every drift value."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import stats as scipy_stats

from contract import outputs

from udfs import drift as drift_math
from udfs import two_sample
from udfs.calibration import TEST_THRESHOLDS
from udfs.outliers import sigma_bounds

from window_checks import assert_stats_equal_numpy

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]


@pytest.fixture(scope="module", params=["embedded_run", "wide_run"], ids=["iris", "wide128"])
def run(request):
    """A session run, with its instances' rows by window (``windows``: window start -> matrix)."""
    run = request.getfixturevalue(request.param)
    rows_by_window: dict[int, list[list[float]]] = {}
    for _, t, row in _instances(run):
        rows_by_window.setdefault(t - t % run["window_ms"], []).append(row)
    return {**run, "windows": {start: np.array(rows) for start, rows in rows_by_window.items()}}


def _instances(run):
    """(request_id, time_ms, row) of every monitored instance."""
    return [(rid, t, row) for rid, t, rows in run["requests"] for row in rows]


def test_every_window_is_emitted_including_the_last(run):
    times = np.array([t for _, t, _ in _instances(run)])
    window_ms = run["window_ms"]
    expected = set(range(int(times.min()) // window_ms * window_ms, int(times.max()) + 1, window_ms))
    assert set(run["windows"]) == expected  # no gap in the stream: every window holds instances
    starts = Counter((r["feature"], r["window_start"]) for r in run["stats"])
    assert starts == {(f, w): 1 for f in run["features"] for w in expected}  # each once, the last one included


def test_stats_equal_numpy_on_the_same_windows(run):
    for record in run["stats"]:
        x = run["windows"][record["window_start"]][:, run["features"].index(record["feature"])]
        assert_stats_equal_numpy(record, x, run["window_ms"])
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
                                [baseline.features[f].std for f in features], run["sigma"])
    expected = {}
    for rid, t, row in _instances(run):
        for j, value in enumerate(row):
            if value < lower[j] or value > upper[j]:
                expected.setdefault((rid, features[j]), []).append((value, float(lower[j] if value < lower[j] else upper[j]), t))
    alerted = {}
    for alert in run["outliers"]:
        assert alert["rule"] == "sigma" and alert["model"] == run["model"]
        alerted.setdefault((alert["request_id"], alert["feature"]), []).append(
            (alert["value"], alert["threshold"], alert["request_time"]))
        assert alert["detected_at"] >= 1_600_000_000_000
    assert sorted(alerted) == sorted(expected)
    for key, values in expected.items():
        assert sorted(alerted[key]) == sorted(values), key  # thresholds are inlined exactly
    assert len(expected) > 20  # the stream's outlier stages really were checked


def test_drift_values_equal_udfs_drift_on_the_window_histograms(run):
    by_window = {(r["feature"], r["window_start"]): r for r in run["stats"]}
    assert len(run["drift"]) == len(run["stats"]) * len(run["metrics"])  # emit_all: every (window, metric)
    assert {r["metric"] for r in run["drift"]} == run["metrics"]
    for record in (r for r in run["drift"] if r["metric"] in drift_math.METRICS):
        stats = by_window[(record["feature"], record["window_start"])]
        hist = stats["histogram"]
        observed = np.array([hist["underflow"], *hist["counts"], hist["overflow"]], dtype=float)
        reference = run["baseline"].features[record["feature"]]
        expected = drift_math.compute(record["metric"], observed, reference.histogram_counts(), reference.edges)
        assert record["value"] == pytest.approx(float(expected), rel=1e-9, abs=1e-12)
        assert record["drift"] == (record["value"] > record["threshold"])
        assert record["count"] == stats["count"]
        assert record["window_end"] == record["window_start"] + run["window_ms"]


def test_two_sample_tests_equal_udfs_and_scipy_on_the_window_values(run):
    """ks and cvm from the window step's CDF (exact: every window here holds < 2,048 values, epsilon 0)
    equal udfs.two_sample on the raw window values, ks also scipy's ks_2samp; auto thresholds are the
    tests' own nulls at (m, n). (scipy's cramervonmises_2samp averages the ranks of ties, which Iris's
    training values have, so cvm is checked against udfs.two_sample only.)"""
    records = [r for r in run["drift"] if r["metric"] in drift_math.TESTS]
    assert len(records) == 2 * len(run["stats"])
    for record in records:
        x = run["windows"][record["window_start"]][:, run["features"].index(record["feature"])]
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
    """Every window holding mostly drift-stage requests is flagged by Wasserstein on a feature the stage moved."""
    stages_by_window = {}
    for (rid, t, _), stage in zip(run["requests"], run["stages"]):
        stages_by_window.setdefault(t // run["window_ms"] * run["window_ms"], []).append(int(stage))
    mostly_drift = {w for w, stages in stages_by_window.items() if np.mean(np.array(stages) == 3) > 0.5}
    assert mostly_drift, "some window holds mostly drift-stage requests"
    flagged = {(r["feature"], r["window_start"]) for r in run["drift"] if r["metric"] == "wasserstein" and r["drift"]}
    for window in mostly_drift:
        assert any((f, window) in flagged for f in run["drifted"]), window


def test_malformed_and_late_lines_dead_lettered_with_their_reasons(run):
    """Each extra line is dead-lettered once, with its reason, whole, and named ``input:LINE``."""
    dead = {r["source"]: (r["reason"], r["raw"]) for r in run["dead_letter"]}
    assert dead == run["expected_dead"] and len(run["dead_letter"]) == len(dead)
    assert all(r["at"] >= 1_600_000_000_000 for r in run["dead_letter"])


def test_nothing_is_silently_dropped(run):
    windowed = sum(r["count"] for r in run["stats"] if r["feature"] == run["features"][0])
    n_instances = len(_instances(run))
    assert windowed == n_instances
    # lines in == monitored requests + dead letters (the multi-instance line holds two instances)
    assert run["n_lines"] == len(run["requests"]) + len(run["dead_letter"])


def test_covariance_and_correlation_equal_numpy(embedded_run):
    run = embedded_run
    assert {r["statistic"] for r in run["covariance"]} == {"covariance", "correlation"}
    for record in run["covariance"]:
        rows = np.array([row for _, t, row in _instances(run)
                         if record["window_start"] <= t < record["window_start"] + run["window_ms"]])
        expected = np.cov(rows.T) if record["statistic"] == "covariance" else np.corrcoef(rows.T)
        assert record["count"] == len(rows)
        assert np.allclose(np.array(record["matrix"], dtype=float), expected, rtol=1e-9, atol=1e-12)
        assert record["features"] == list(run["features"])


def test_summary_printed_and_written(run):
    summary = run["summary"]
    assert summary["instances"] == len(_instances(run))
    assert summary["outliers"] == len(run["outliers"])
    assert summary["late"] == 1 and summary["dead_letter"] == len(run["bad"]) + 1
    assert summary["windows"] == len(run["stats"]) // len(run["features"]) == len(run["windows"])
    assert tuple(summary) == tuple(name for name in outputs.SUMMARY_FIELDS
                                   if name not in (outputs.RESPONSES_JOINED, outputs.LABELS_JOINED))
    assert "mmon run: done." in run["stdout"]


def test_accounting_identity_nothing_lost(run):
    """Every line read was monitored or dead-lettered; every accepted instance is in exactly one window."""
    summary = run["summary"]
    assert summary["records_read"] == run["n_lines"] == summary["requests_accepted"] + summary["dead_letter"]
    assert summary["instances_accepted"] == summary["instances"] == len(_instances(run))
    assert summary["accounted"] is True
