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


CATEGORICAL_RULES = [MetricRule("kl", None, 0.05), MetricRule("js", 0.02), MetricRule("psi", None),
                     MetricRule("hellinger", None), MetricRule("chi2", None), MetricRule("missing_rate", None, 0.05)]


def test_categorical_columns_and_missing_rates_equal_one_column_at_a_time():
    from udfs.baseline import CategoricalBaseline, OutputBaseline
    from udfs.calibration import missing_rate_thresholds

    rng = np.random.default_rng(5)
    colours = rng.choice(["red", "green", "blue", "teal", None], 300, p=[0.4, 0.3, 0.2, 0.05, 0.05])
    size = rng.normal(3, 1, 300)
    size[:12] = np.nan
    baseline = Baseline({"colour": CategoricalBaseline.from_values(colours, max_categories=3),
                         "size": FeatureBaseline.from_values(size, bins=6)},
                        output=OutputBaseline("label", CategoricalBaseline.from_values(rng.choice(["x", "y"], 300))))
    names = ["colour", "size", "label"]
    rules = CATEGORICAL_RULES
    curves = {rule.name: threshold_curves(baseline, rule.name, rule.false_alarm_rate)
              for rule in rules if rule.threshold is None and rule.name in drift.LAYOUT_METRICS}
    math = WindowDrift(baseline, names, rules, curves)
    features = rng.integers(0, 3, 30)
    histograms = [rng.integers(0, 20, len(baseline.columns[names[f]].histogram_counts())) for f in features]
    counts = np.array([h.sum() for h in histograms])
    missing = rng.integers(0, 15, 30)
    results = math.evaluate(features, counts, histograms, {}, missing)
    for i, f in enumerate(features):
        column = baseline.columns[names[f]]
        reference = column.histogram_counts()
        for rule in rules:
            values, thresholds, _ = results[rule.name]
            if rule.name == "missing_rate":
                assert values[i] == pytest.approx(drift.missing_rate(missing[i], counts[i] + missing[i], column.missing_rate))
                assert thresholds[i] == missing_rate_thresholds(column, counts[i] + missing[i], 0.05)
                continue
            assert values[i] == pytest.approx(drift.compute(rule.name, histograms[i], reference), rel=1e-12)
            expected = rule.threshold if rule.threshold is not None else curves[rule.name].of(names[f], [counts[i]])[0]
            assert thresholds[i] == pytest.approx(expected, rel=1e-12)
