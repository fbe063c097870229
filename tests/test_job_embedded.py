"""The monitoring job end to end, embedded: one real Flink mini-cluster run on a small staged stream
(plus malformed, late and multi-instance lines; tests/embedded_run.py), every output checked against
numpy / udfs recomputed from the input. The spec adds the two-sample tests (ks, cvm) to the example's
five histogram metrics."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from udfs import drift as drift_math
from udfs import two_sample
from udfs.calibration import TEST_THRESHOLDS
from udfs.outliers import sigma_bounds

from embedded_run import STAGE_SIZE, WINDOW_MS

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def run(embedded_run):
    return embedded_run


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
    metrics = {*drift_math.METRICS, *drift_math.TESTS}  # the spec's: the five histogram metrics, ks and cvm
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
