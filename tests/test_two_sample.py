"""KS and CVM from the window's CDF equal scipy's two-sample statistics; their thresholds are scipy's nulls."""
import numpy as np
import pytest
from scipy import stats

from udfs import drift, two_sample

RNG = np.random.default_rng(2026)
SIZES = [(2, 3), (7, 5), (120, 200), (1000, 4000), (10_000, 300)]


@pytest.mark.parametrize("m, n", SIZES)
def test_statistics_equal_scipy_on_raw_values(m, n):
    sample = np.sort(RNG.normal(size=m))
    window = RNG.normal(0.3, 1.2, size=n)
    cdf = two_sample.empirical_cdf(window)
    assert two_sample.ks_statistic(cdf, n, 0.0, sample) == pytest.approx(
        stats.ks_2samp(window, sample).statistic, abs=1e-9)
    assert two_sample.cvm_statistic(cdf, n, 0.0, sample) == pytest.approx(
        stats.cramervonmises_2samp(window, sample).statistic, abs=1e-9)


def test_a_batch_of_windows_gives_one_value_per_window():
    sample = np.sort(RNG.lognormal(size=300))
    windows = RNG.lognormal(0.1, 1.0, size=(6, 250))
    cdf = two_sample.empirical_cdf(windows)
    np.testing.assert_allclose(two_sample.ks_statistic(cdf, 250, 0.0, sample),
                               [stats.ks_2samp(w, sample).statistic for w in windows], atol=1e-12)
    np.testing.assert_allclose(two_sample.cvm_statistic(cdf, 250, 0.0, sample),
                               [stats.cramervonmises_2samp(w, sample).statistic for w in windows], atol=1e-9)


def test_ks_with_ties_equals_scipy():
    sample = np.sort(RNG.poisson(4.0, size=500).astype(float))
    window = RNG.poisson(4.4, size=800).astype(float)
    assert two_sample.ks_statistic(two_sample.empirical_cdf(window), 800, 0.0, sample) == pytest.approx(
        stats.ks_2samp(window, sample).statistic, abs=1e-12)


def test_sketch_error_is_taken_off_conservatively():
    """A CDF off by up to epsilon never yields a larger KS than the exact one."""
    sample = np.sort(RNG.normal(size=400))
    window = RNG.normal(0.2, 1.0, size=3000)
    exact_cdf = two_sample.empirical_cdf(window)
    exact = two_sample.ks_statistic(exact_cdf, 3000, 0.0, sample)
    epsilon = 0.01
    for seed in range(20):
        noise = np.random.default_rng(seed)
        sketched = lambda points: np.clip(exact_cdf(points) + noise.uniform(-epsilon, epsilon, np.shape(points)), 0, 1)
        assert two_sample.ks_statistic(sketched, 3000, epsilon, sample) <= exact + 1e-12
    assert two_sample.ks_statistic(exact_cdf, 3000, epsilon, sample) == pytest.approx(exact - epsilon)
    assert two_sample.ks_statistic(exact_cdf, 3000, 1.0, sample) == 0.0
    shrunk = two_sample.cvm_statistic(exact_cdf, 3000, epsilon, sample)
    assert 0 < shrunk < two_sample.cvm_statistic(exact_cdf, 3000, 0.0, sample)


def test_limit_law_matches_the_published_critical_values():
    """Upper-tail points of the limiting Cramér-von Mises law (Anderson & Darling 1952, Table 1)."""
    for tail, point in [(0.10, 0.34730), (0.05, 0.46136), (0.01, 0.74346), (0.001, 1.16786)]:
        assert 1.0 - two_sample.cvm_limit_cdf(point) == pytest.approx(tail, rel=2e-3)


@pytest.mark.parametrize("m, n", [(120, 200), (1000, 4000), (10_000, 1000)])
def test_thresholds_decide_as_scipy_p_values(m, n):
    """Flag (statistic > threshold) exactly when scipy's asymptotic p-value is below the rate."""
    rate = 0.05
    ks_limit, cvm_limit = two_sample.ks_threshold(m, n, rate), two_sample.cvm_threshold(m, n, rate)
    agree_ks = agree_cvm = 0
    for shift in np.linspace(0.0, 0.4, 40):
        sample, window = RNG.normal(size=m), RNG.normal(shift * np.sqrt(1 / m + 1 / n) * 4, 1.0, size=n)
        ks = stats.ks_2samp(window, sample, method="asymp")
        cvm = stats.cramervonmises_2samp(window, sample, method="asymptotic")
        agree_ks += (ks.statistic > ks_limit) == (ks.pvalue < rate)
        agree_cvm += (cvm.statistic > cvm_limit) == (cvm.pvalue < rate)
    assert agree_ks == agree_cvm == 40
    assert stats.kstwo.sf(ks_limit, round(m * n / (m + n))) == pytest.approx(rate, rel=1e-6)


def test_thresholds_are_vectorised_over_window_sizes():
    sizes = np.array([4, 100, 5000])
    np.testing.assert_allclose(two_sample.ks_threshold(300, sizes, 0.01),
                               [two_sample.ks_threshold(300, int(n), 0.01) for n in sizes])
    np.testing.assert_allclose(two_sample.cvm_threshold(300, sizes, 0.01),
                               [two_sample.cvm_threshold(300, int(n), 0.01) for n in sizes])


def test_tests_are_metric_names_but_not_histogram_metrics():
    assert drift.METRIC_NAMES == ("wasserstein", "kl", "js", "psi", "hellinger", "ks", "cvm", "chi2", "missing_rate",
                                  "outlier_rate")
    assert drift.TESTS == {"ks": two_sample.ks_statistic, "cvm": two_sample.cvm_statistic}
    with pytest.raises(ValueError, match="two-sample test on the window's CDF"):
        drift.compute("ks", np.ones(3), np.ones(3), np.array([0.0, 1.0]))
