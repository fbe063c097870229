"""`udfs.comparison`: two versions' windows compared, cross-checked against `udfs.drift`, scipy and seeded nulls."""
import numpy as np
import pytest
from scipy import stats

from udfs import comparison, drift
from udfs.baseline import FeatureBaseline
from udfs.performance import ClassificationWindow, RegressionWindow
from udfs.window_drift import MetricRule

AUTO = [MetricRule(name, None, 0.05) for name in ("kl", "js", "psi", "hellinger", "chi2")]


def _binom_bound(trials: int, rate: float) -> int:
    """The most flags a calibrated test may raise in ``trials`` null windows (99.9 % binomial quantile)."""
    return int(stats.binom.ppf(0.999, trials, rate))


@pytest.fixture(scope="module")
def feature() -> FeatureBaseline:
    return FeatureBaseline.from_values(np.random.default_rng(3).normal(0, 1, 500), bins=8)


def _binned(feature: FeatureBaseline, values: np.ndarray) -> np.ndarray:
    """The drift-layout counts of ``values`` on the feature's edges (underflow, bins, overflow)."""
    return np.bincount(np.searchsorted(feature.edges, values, side="right"), minlength=len(feature.edges) + 1)


def test_values_equal_the_drift_metrics_of_the_candidate_against_the_stable_version(feature):
    rng = np.random.default_rng(5)
    stable, candidate = _binned(feature, rng.normal(0, 1, 300)), _binned(feature, rng.normal(0.4, 1, 200))
    spacing = np.diff(drift.support_points(feature.edges))
    rules = AUTO + [MetricRule("wasserstein", None, 0.05, normalize=True), MetricRule("js", 0.5)]
    results = comparison.histogram_drift(stable, candidate, rules, spacing, feature.std)
    for result, rule in zip(results, rules):
        normalize_by = feature.std if rule.normalize else None
        expected = drift.compute(rule.name, candidate, stable, feature.edges, normalize_by)
        assert result.value == pytest.approx(expected, rel=1e-12)
        assert result.flagged == (result.value > result.threshold)
    centres = drift.support_points(feature.edges)
    assert results[5].value * feature.std == pytest.approx(stats.wasserstein_distance(centres, centres, candidate, stable))
    assert results[-1].threshold == 0.5
    assert all(r.flagged for r in results[:6])  # a shift of 0.4 sd in 200 values


def test_permutation_splits_keep_the_pooled_counts_and_sizes():
    stable, candidate = np.array([5, 0, 7, 1]), np.array([2, 3, 0, 0])
    first, second = comparison.permutation_splits(stable, candidate, draws=500)
    assert (first + second == stable + candidate).all()
    assert (first.sum(axis=1) == 13).all() and (second.sum(axis=1) == 5).all()
    again = comparison.permutation_splits(stable, candidate, draws=500)[0]
    assert (again == first).all()  # seeded by the sizes


@pytest.mark.parametrize("shift", [0.0, 1.5])
def test_two_versions_of_one_model_are_flagged_within_the_rate(feature, shift):
    """The null: both versions' windows from one distribution (the baseline's, or one drifted from it by 1.5 sd:
    the permutation threshold needs neither), many windows; each metric within the binomial bound."""
    rng = np.random.default_rng(17)
    windows, rate = 300, 0.05
    rules = [MetricRule(rule.name, None, rate) for rule in AUTO] + [MetricRule("wasserstein", None, rate)]
    spacing = np.diff(drift.support_points(feature.edges))
    flags = {rule.name: 0 for rule in rules}
    for _ in range(windows):
        n1, n2 = rng.integers(20, 400, size=2)
        stable = _binned(feature, rng.normal(shift, 1, n1))
        candidate = _binned(feature, rng.normal(shift, 1, n2))
        for result in comparison.histogram_drift(stable, candidate, rules, spacing, draws=2000):
            flags[result.metric] += result.flagged
    assert max(flags.values()) <= _binom_bound(windows, rate), flags
    assert min(flags.values()) >= 3, flags  # not trivially silent


def test_a_categorical_candidate_that_never_predicts_a_class_is_flagged():
    stable = np.array([100, 80, 60, 0, 0])  # three classes, other, unseen
    candidate = np.array([60, 50, 0, 0, 0])
    results = comparison.histogram_drift(stable, candidate, AUTO)
    assert all(r.flagged for r in results)
    same = comparison.histogram_drift(stable, np.array([50, 41, 29, 0, 0]), AUTO)
    assert not any(r.flagged for r in same)


def test_missing_rate_threshold_is_the_exact_permutation_quantile():
    rule = MetricRule(drift.MISSING_RATE, None, 0.05)
    result = comparison.missing_rate_drift(12, 200, 30, 150, rule)
    assert result.value == pytest.approx(abs(30 / 150 - 12 / 200))
    missing, t1, t2 = 42, 200, 150
    x = np.arange(0, missing + 1)
    gaps = np.abs((missing - x) / t2 - x / t1)
    pmf = stats.hypergeom.pmf(x, t1 + t2, missing, t1)
    assert pmf[gaps > result.threshold].sum() <= 0.05
    below = gaps[gaps < result.threshold].max()
    assert pmf[gaps > below].sum() > 0.05  # the smallest such gap
    assert result.flagged
    assert not comparison.missing_rate_drift(20, 200, 16, 150, rule).flagged


def test_missing_rate_of_one_model_within_the_rate():
    rng = np.random.default_rng(23)
    windows, rate = 2000, 0.05
    rule = MetricRule(drift.MISSING_RATE, None, rate)
    flags = 0
    for _ in range(windows):
        t1, t2 = rng.integers(10, 300, size=2)
        flags += comparison.missing_rate_drift(rng.binomial(t1, 0.2), t1, rng.binomial(t2, 0.2), t2, rule).flagged
    assert 0.3 * windows * rate <= flags <= _binom_bound(windows, rate)


def test_accuracy_interval_is_newcombes_published_example():
    """Newcombe (1998), Statistics in Medicine 17, table II, example (a): 56/70 against 48/80, method 10:
    0.2000 (0.0524, 0.3339) at 95 %; example (b), 9/10 against 3/10: 0.6000 (0.1705, 0.8090)."""
    result = comparison.accuracy_difference(48, 80, 56, 70, 0.05)
    assert result.delta == pytest.approx(0.2)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    small = comparison.accuracy_difference(3, 10, 9, 10, 0.05)
    assert (small.ci_low, small.ci_high) == pytest.approx((0.1705, 0.8090), abs=5e-5)
    assert result.verdict == "better"
    assert comparison.accuracy_difference(56, 70, 48, 80, 0.05).verdict == "worse"


def test_mae_interval_equals_scipys_welch_interval():
    rng = np.random.default_rng(29)
    residuals = [rng.normal(0, 1, 120), rng.normal(0.3, 1.5, 80)]
    windows = []
    for r in residuals:
        window = RegressionWindow()
        window.update(r, np.zeros_like(r))
        windows.append(window)
    result = comparison.window_difference("mae", windows[0], windows[1], 0.05)
    expected = stats.ttest_ind(np.abs(residuals[1]), np.abs(residuals[0]), equal_var=False).confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == pytest.approx((expected.low, expected.high), rel=1e-9)
    assert result.delta == pytest.approx(np.abs(residuals[1]).mean() - np.abs(residuals[0]).mean())
    assert result.verdict == "worse"


def test_rmse_interval_covers_the_true_difference_at_its_level():
    rng = np.random.default_rng(31)
    trials, rate, misses = 1000, 0.1, 0
    for _ in range(trials):
        windows = []
        for sd in (1.0, 1.2):
            window = RegressionWindow()
            window.update(rng.normal(0, sd, 150), np.zeros(150))
            windows.append(window)
        result = comparison.window_difference("rmse", windows[0], windows[1], rate)
        misses += not result.ci_low <= 0.2 <= result.ci_high
    assert 0.5 * trials * rate <= misses <= _binom_bound(trials, rate)


def test_identical_classifiers_are_judged_worse_within_half_the_rate():
    rng = np.random.default_rng(37)
    trials, rate, worse = 2000, 0.1, 0
    for _ in range(trials):
        windows = []
        for n in rng.integers(30, 300, size=2):
            window = ClassificationWindow(["a", "b"])
            truth = rng.integers(0, 2, n)
            predicted = np.where(rng.random(n) < 0.9, truth, 1 - truth)
            window.update(np.array(["a", "b"], dtype=object), predicted, truth)
            windows.append(window)
        worse += comparison.window_difference("accuracy", windows[0], windows[1], rate).verdict == "worse"
    assert worse <= _binom_bound(trials, rate / 2)


def test_verdict_orientation():
    assert comparison.verdict("accuracy", 0.01, 0.2) == "better"
    assert comparison.verdict("mae", 0.01, 0.2) == "worse"
    assert comparison.verdict("rmse", -0.3, -0.1) == "better"
    assert comparison.verdict("accuracy", -0.1, 0.2) == "no_evidence"
    with pytest.raises(ValueError, match="not compared"):
        comparison.window_difference("bias", RegressionWindow(), RegressionWindow(), 0.05)
