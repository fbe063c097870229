"""`udfs.window_drift`: the batch of rows of many features equals `udfs.drift` and the calibrated curves
applied one feature and one window at a time."""
import numpy as np
import pytest

from udfs import drift, two_sample
from udfs.baseline import Baseline, FeatureBaseline
from udfs.calibration import threshold_curves
from udfs.window_drift import MetricRule, WindowDrift


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    rng = np.random.default_rng(7)
    features = {"a": FeatureBaseline.from_values(rng.normal(0, 1, 400), bins=8),
                "b": FeatureBaseline.from_values(rng.exponential(2, 300), bins=12),
                "c": FeatureBaseline.from_values(rng.normal(5, 3, 400), bins=8, binning="equal-width")}
    return Baseline(features)


RULES = [MetricRule("wasserstein", None, 0.01, normalize=True), MetricRule("kl", None, 0.05), MetricRule("js", 0.02),
         MetricRule("psi", None), MetricRule("hellinger", None), MetricRule("chi2", None),
         MetricRule("ks", None, 0.05), MetricRule("cvm", 0.3)]


def test_rows_of_mixed_features_equal_one_feature_at_a_time(baseline):
    names = list(baseline.features)
    curves = {rule.name: threshold_curves(baseline, rule.name, rule.false_alarm_rate, normalize=rule.normalize)
              for rule in RULES if rule.threshold is None and rule.name not in drift.TESTS}
    math = WindowDrift(baseline, names, RULES, curves)
    rng = np.random.default_rng(11)
    features = rng.integers(0, len(names), 40)
    histograms = [rng.integers(0, 30, len(baseline.features[names[f]].edges) + 1) for f in features]
    histograms[3] = np.zeros_like(histograms[3])  # an empty window: NaN values, thresholds at size 1
    counts = np.array([h.sum() for h in histograms])
    tests = {"ks": rng.random(40), "cvm": rng.random(40)}
    results = math.evaluate(features, counts, histograms, tests)
    for i, f in enumerate(features):
        reference = baseline.features[names[f]]
        for rule in RULES:
            value, threshold = results[rule.name][0][i], results[rule.name][1][i]
            if rule.name in drift.TESTS:
                expected = tests[rule.name][i]
            else:
                normalize_by = reference.std if rule.normalize else None
                expected = drift.compute(rule.name, histograms[i], reference.histogram_counts(), reference.edges,
                                         normalize_by)
            np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-15, equal_nan=True)
            if rule.threshold is not None:
                assert threshold == rule.threshold
            elif rule.name in drift.TESTS:
                assert threshold == pytest.approx(float(two_sample.ks_threshold(len(reference.sample), max(counts[i], 1),
                                                                                rule.false_alarm_rate)), rel=1e-12)
            else:
                expected_threshold = curves[rule.name].of(names[f], [max(counts[i], 1)])[0]
                assert threshold == pytest.approx(expected_threshold, rel=1e-12)
    assert np.isnan(results["js"][0][3]) and not np.isnan(results["kl"][0][3])


def test_thresholds_clamp_beyond_the_calibration_grid(baseline):
    names = list(baseline.features)
    curves = {"hellinger": threshold_curves(baseline, "hellinger", 0.01)}
    math = WindowDrift(baseline, names, [MetricRule("hellinger", None)], curves)
    counts = np.array([1, 2, 4, 10**6])
    features = np.zeros(4, dtype=int)
    histograms = [np.ones(len(baseline.features["a"].edges) + 1)] * 4
    thresholds = math.evaluate(features, counts, histograms, {})["hellinger"][1]
    np.testing.assert_allclose(thresholds, curves["hellinger"].of("a", counts), rtol=1e-12)
