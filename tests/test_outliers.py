"""Outlier rules: vectorised over rows x features, checked against a plain per-value loop."""
import numpy as np

from udfs.outliers import range_rule, sigma_bounds, sigma_rule

MEAN = np.array([5.845, 3.065, 3.7391667, 1.1966667])
STD = np.array([0.8685784, 0.42715594, 1.8221004, 0.7820393])


def test_sigma_rule_matches_a_per_value_loop():
    rows = np.random.default_rng(5).normal(MEAN, 2.5 * STD, size=(500, 4))
    mask, lower, upper = sigma_rule(rows, MEAN, STD, k=3.0)
    expected = [[abs(rows[i, j] - MEAN[j]) > 3.0 * STD[j] for j in range(4)] for i in range(len(rows))]
    assert mask.tolist() == expected
    assert 0 < mask.sum() < mask.size
    np.testing.assert_allclose(lower, MEAN - 3.0 * STD)
    np.testing.assert_allclose(upper, MEAN + 3.0 * STD)


def test_bounds_are_reachable_alone_and_shared_with_the_rule():
    lower, upper = sigma_bounds(MEAN, STD, 2.0)
    _, rule_lower, rule_upper = sigma_rule(np.zeros(4), MEAN, STD, 2.0)
    assert lower.tolist() == rule_lower.tolist() and upper.tolist() == rule_upper.tolist()


def test_values_on_the_bounds_are_not_outliers_and_nan_never_is():
    lower, upper = sigma_bounds(0.0, 1.0, 3.0)
    mask, _, _ = sigma_rule(np.array([lower, upper, np.nextafter(upper, 9.0), -3.5, np.nan]), 0.0, 1.0)
    assert mask.tolist() == [False, False, True, True, False]


def test_range_rule_broadcasts_per_feature():
    values = np.array([[4.3, 2.0, 7.0, 0.1], [4.4, 4.5, 1.0, 2.5]])
    mask, lo, hi = range_rule(values, [4.4, 2.0, 1.0, 0.1], [7.9, 4.4, 6.9, 2.5])
    assert mask.tolist() == [[True, False, True, False], [False, True, False, False]]
    assert lo.tolist() == [4.4, 2.0, 1.0, 0.1] and hi.tolist() == [7.9, 4.4, 6.9, 2.5]
