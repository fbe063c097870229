"""P-values of the drift tests (uniform under their null, consistent with the thresholds), their control across a
window (against scipy), the model verdict's false-alarm rate, and alert episodes."""
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from udfs import calibration, discovery, drift, two_sample
from udfs.baseline import Baseline, FeatureBaseline
from udfs.window_drift import MetricRule, WindowDrift

IRIS = Path(__file__).resolve().parents[1] / "examples" / "iris"


@pytest.fixture(scope="module")
def iris():
    return Baseline.load(IRIS / "baseline.json")


def _null_windows(feature, window_size, draws, seed):
    """Fresh draws of the spacings null (a seed the calibration never uses)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(window_size, rng.dirichlet(calibration.slot_concentrations(feature), size=draws))


@pytest.mark.parametrize("metric", ["js", "hellinger", "psi", "chi2", "wasserstein"])
@pytest.mark.parametrize("window_size", [300, 2500])  # between grid points: the null is interpolated
def test_histogram_p_values_are_uniform_under_the_null(iris, metric, window_size):
    feature = iris.features["sepal_length"]
    curves = calibration.threshold_curves(iris, metric, 0.01)
    windows = _null_windows(feature, window_size, 3000, seed=window_size + 17)
    values = drift.compute(metric, windows, feature.histogram_counts(), feature.edges)
    p_values = curves.p_values("sepal_length", np.full(len(values), window_size), values)
    assert stats.kstest(p_values, "uniform").pvalue > 1e-3
    assert np.mean(p_values <= 0.01) == pytest.approx(0.01, abs=0.007)


@pytest.mark.parametrize("metric", ["js", "kl", "wasserstein", "chi2"])
def test_p_values_agree_with_the_thresholds(iris, metric):
    """``p <= rate`` exactly when the value is over the threshold, but for values between the two order
    statistics the threshold interpolates (Monte-Carlo ties): rare, and only right at the threshold."""
    rate = 0.01
    curves = calibration.threshold_curves(iris, metric, rate)
    rng = np.random.default_rng(3)
    for name, feature in iris.features.items():
        sizes = rng.integers(20, 20_000, 400)
        thresholds = curves.of(name, sizes)
        values = thresholds * rng.uniform(0.5, 1.5, len(sizes))
        p_values = curves.p_values(name, sizes, values)
        disagree = (p_values <= rate) != (values > thresholds)
        assert disagree.mean() < 0.02, (name, disagree.mean())
        assert np.all(np.abs(values[disagree] / thresholds[disagree] - 1) < 0.05)


def test_two_sample_p_values_equal_scipy_and_are_uniform():
    rng = np.random.default_rng(8)
    ks, cvm = [], []
    for _ in range(1500):
        sample, window = np.sort(rng.normal(size=150)), rng.normal(size=90)
        cdf = two_sample.empirical_cdf(window)
        ks.append(float(two_sample.ks_p_value(150, 90, two_sample.ks_statistic(cdf, 90, 0.0, sample))))
        cvm.append(float(two_sample.cvm_p_value(150, 90, two_sample.cvm_statistic(cdf, 90, 0.0, sample))))
        if len(ks) <= 50:
            assert ks[-1] == pytest.approx(stats.ks_2samp(window, sample, method="asymp").pvalue, rel=1e-9)
            assert cvm[-1] == pytest.approx(stats.cramervonmises_2samp(window, sample, method="asymptotic").pvalue,
                                            rel=1e-6, abs=1e-9)
    assert stats.kstest(cvm, "uniform").pvalue > 1e-3
    assert np.mean(np.array(ks) <= 0.05) <= 0.06  # KS's asymptotic null: conservative on a lattice of D


def test_two_sample_p_values_agree_with_their_thresholds():
    n = np.array([5, 40, 333, 5000])
    for name, threshold in (("ks", two_sample.ks_threshold), ("cvm", two_sample.cvm_threshold)):
        p_value = calibration.TEST_P_VALUES[name]
        limits = threshold(700, n, 0.01)
        np.testing.assert_allclose(p_value(700, n, limits), 0.01, rtol=1e-4)
        assert np.all(p_value(700, n, limits * 1.01) < 0.01) and np.all(p_value(700, n, limits * 0.99) > 0.01)


def test_missing_rate_p_values_match_their_thresholds_and_are_conservative():
    rng = np.random.default_rng(4)
    values = rng.normal(size=500)
    values[:40] = np.nan
    feature = FeatureBaseline.from_values(values)
    totals = rng.integers(1, 3000, 2000)
    r = rng.beta(feature.missing + 1, feature.count + 1, len(totals))  # the posterior the null integrates over
    missing = rng.binomial(totals, r)
    gaps = np.asarray(drift.missing_rate(missing, totals, feature.missing_rate), dtype=float)
    p_values = calibration.missing_rate_p_values(feature, totals, gaps)
    for rate in (0.01, 0.05):
        thresholds = calibration.missing_rate_thresholds(feature, totals, rate)
        assert np.array_equal(p_values <= rate, gaps > thresholds)
        assert np.mean(p_values <= rate) <= rate + 3 * np.sqrt(rate / len(totals))


def test_window_drift_gives_p_values_to_auto_thresholds_only(iris):
    names = list(iris.features)
    rules = [MetricRule("js", None), MetricRule("hellinger", 0.1), MetricRule("ks", None), MetricRule("missing_rate", None)]
    curves = {"js": calibration.threshold_curves(iris, "js", 0.01)}
    math = WindowDrift(iris, names, rules, curves)
    histograms = [iris.features[name].histogram_counts() for name in names]
    counts = np.array([h.sum() for h in histograms])
    results = math.evaluate(np.arange(4), counts, histograms, {"ks": np.full(4, 0.05)}, np.zeros(4))
    assert np.all(np.isnan(results["hellinger"].p_values))
    for name in ("js", "ks", "missing_rate"):
        assert np.all((results[name].p_values > 0) & (results[name].p_values <= 1)), name
    expected = [curves["js"].p_values(name, [c], [v])[0] for name, c, v in zip(names, counts, results["js"].values)]
    np.testing.assert_allclose(results["js"].p_values, expected)


@pytest.mark.parametrize("method", ["bh", "by"])
def test_control_equals_scipy_false_discovery_control(method):
    rng = np.random.default_rng(12)
    for _ in range(200):
        m = int(rng.integers(1, 400))
        p = np.where(rng.random(m) < 0.1, rng.random(m) * 1e-3, rng.random(m))
        expected = stats.false_discovery_control(p, method=method) <= 0.05
        assert np.array_equal(discovery.control(p, method, 0.05), expected)
        found = discovery.control(p, method, 0.05).any()
        assert found == (discovery.global_p_value(p, method) <= 0.05)


def test_bonferroni_and_untested_values():
    p = np.array([0.001, np.nan, 0.004, 0.3])
    np.testing.assert_array_equal(discovery.control(p, "bonferroni", 0.01), [True, False, False, False])
    assert discovery.global_p_value(p, "bonferroni") == pytest.approx(0.003)
    assert discovery.global_p_value([np.nan], "bh") is None
    verdict = discovery.window_verdict(p, [False, True, True, False], "bh", 0.01)
    np.testing.assert_array_equal(verdict.discoveries, [True, True, True, False])  # the fixed threshold: its flag
    assert verdict.tests == 3 and verdict.drift


@pytest.mark.parametrize("method", ["bh", "by", "bonferroni"])
def test_model_verdict_false_alarm_rate_on_null_windows_is_at_most_q(method):
    rng = np.random.default_rng(21)
    windows, q = 4000, 0.05
    alarms = sum(discovery.window_verdict(rng.random(300), np.zeros(300), method, q).drift for _ in range(windows))
    assert stats.binomtest(alarms, windows, q, alternative="greater").pvalue > 1e-3, alarms / windows


def _run(episodes, flags_by_window, feature="f1"):
    events = []
    for i, flag in enumerate(flags_by_window):
        events += episodes.step(i * 10, {feature: ["js"]} if flag else {})
    return [(e["event"], e["first_window"], e["last_window"], e["windows"]) for e in events]


def test_episode_opens_on_k_of_m_and_closes_after_quiet_windows():
    episodes = discovery.Episodes(k=2, m=3, close=3, window_ms=10)
    events = _run(episodes, [1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0])
    assert events == [("open", 30, 50, 2), ("update", 30, 60, 3), ("close", 30, 60, 3)]
    assert episodes.subjects == {}


def test_a_lone_discovery_opens_nothing_and_missing_windows_count_as_quiet():
    episodes = discovery.Episodes(k=2, m=3, close=2, window_ms=10)
    assert episodes.step(0, {"a": ["psi"]}) == [] and episodes.step(40, {"a": ["js"]}) == []  # 3 windows apart
    opened = episodes.step(50, {"a": ["js"], discovery.MODEL: ["js"]}) + episodes.step(60, {discovery.MODEL: ["kl"]})
    assert [(e["event"], e["scope"], e["feature"]) for e in opened] == [("open", "feature", "a"), ("open", "model", None)]
    assert opened[1]["metrics"] == ["js", "kl"] and set(episodes.active()) == {None, "a"}
    closed = episodes.step(200, {})  # 13 windows later, none between
    assert [(e["event"], e["feature"], e["last_window"]) for e in closed] == [("close", "a", 50), ("close", None, 60)]


@pytest.mark.parametrize("metric", ["js", "psi", "wasserstein"])
def test_p_values_beyond_the_draws_follow_the_null_tail(iris, metric):
    """Past the largest of the 4,000 null draws the p-values extrapolate (an exponential tail): against 400,000
    fresh null windows, the extrapolated p-values at their 1e-4 and 2e-5 points are right within a factor 3."""
    feature = iris.features["petal_width"]
    curves = calibration.threshold_curves(iris, metric, 0.01)
    windows = _null_windows(feature, 512, 400_000, seed=99)
    null = np.sort(drift.compute(metric, windows, feature.histogram_counts(), feature.edges))
    for tail in (1e-4, 2e-5):
        value = null[int(len(null) * (1 - tail))]
        p_value = curves.p_values("petal_width", [512], [value])[0]
        assert tail / 3 < p_value < tail * 3, (tail, p_value)
    assert curves.p_values("petal_width", [512, 512], null[-2:] * [1, 2]).tolist() == sorted(
        curves.p_values("petal_width", [512, 512], null[-2:] * [1, 2]).tolist(), reverse=True)


def test_outlier_rate_counts_values_beyond_the_sigma_bounds_and_keeps_its_rate():
    from udfs.outliers import beyond_count, sigma_bounds, violations

    rng = np.random.default_rng(6)
    feature = FeatureBaseline.from_values(rng.standard_t(5, 3000))
    lower, upper = (float(b) for b in sigma_bounds(feature.mean, feature.std, 3.0))
    window = rng.standard_t(5, 400)
    assert beyond_count(two_sample.empirical_cdf(window), 400, 0.0, lower, upper) == violations(window, lower, upper).sum()
    math = WindowDrift(Baseline({"x": feature}), ["x"], [MetricRule("outlier_rate", None, 0.01, sigma=3.0)], {})
    sizes = rng.integers(50, 3000, 3000)
    nominal = rng.beta(violations(feature.sample, lower, upper).sum() + 1,
                       len(feature.sample) - violations(feature.sample, lower, upper).sum() + 1, len(sizes))
    beyond = rng.binomial(sizes, nominal)  # the null the test assumes: the population's share as the sample knows it
    result = math.evaluate(np.zeros(len(sizes), dtype=int), sizes, [np.zeros(1)] * len(sizes),
                           {"outlier_rate": beyond.astype(float)})["outlier_rate"]
    np.testing.assert_allclose(result.values, beyond / sizes)
    assert np.array_equal(result.p_values <= 0.01, result.values > result.thresholds)
    assert np.mean(result.p_values <= 0.01) <= 0.01 + 3 * np.sqrt(0.01 / len(sizes))
    shifted = math.evaluate(np.zeros(1, dtype=int), [400], [np.zeros(1)],
                            {"outlier_rate": [float(violations(window + 1.5 * feature.std, lower, upper).sum())]})["outlier_rate"]
    assert shifted.p_values[0] < 1e-3  # a +1.5 sd shift: many more values beyond +3 sd


def test_method_none_keeps_the_per_test_thresholds():
    p = np.array([0.2, np.nan, 0.004])
    verdict = discovery.window_verdict(p, [True, False, False], "none", 0.05)
    np.testing.assert_array_equal(verdict.discoveries, [True, False, False])  # the flags, whatever the p-values
    assert verdict.drift and verdict.tests == 2 and verdict.p_value == pytest.approx(0.008)  # Bonferroni's
    with pytest.raises(ValueError, match="unknown control method"):
        discovery.control(p, "holm", 0.05)
