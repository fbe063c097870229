"""Drift metrics against scipy, on single histograms and on batches of windows, numeric and categorical
layouts; chi2, missing_rate and which metric applies to which feature type."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare, entropy, wasserstein_distance

from udfs import drift
from udfs.histogram import bin_centres

EDGES = np.array([0.0, 0.5, 1.5, 2.0, 4.0, 4.25])  # unequal widths on purpose
SLOTS = len(EDGES) + 1
RNG = np.random.default_rng(7)


def _random_counts(rows=None, empty_share=0.3):
    shape = (SLOTS,) if rows is None else (rows, SLOTS)
    counts = RNG.integers(0, 50, shape).astype(float)
    counts[RNG.random(shape) < empty_share] = 0.0
    counts[..., 2] += 1  # never an all-zero row
    return counts


def _smooth(counts, a=drift.DEFAULT_PSEUDO_COUNT):
    return (counts + a) / (counts + a).sum()


def test_js_equals_scipy_jensenshannon_squared():
    for _ in range(20):
        p, q = _random_counts(), _random_counts()
        expected = jensenshannon(p / p.sum(), q / q.sum(), base=2) ** 2
        assert drift.js_divergence(p, q) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_kl_and_psi_equal_scipy_entropy_on_smoothed_histograms():
    for _ in range(20):
        p, q = _random_counts(), _random_counts()
        p_tilde, q_tilde = _smooth(p), _smooth(q)
        assert drift.kl_divergence(p, q) == pytest.approx(entropy(p_tilde, q_tilde), rel=1e-9)
        expected_psi = entropy(p_tilde, q_tilde) + entropy(q_tilde, p_tilde)
        assert drift.psi(p, q) == pytest.approx(expected_psi, rel=1e-9)


def test_kl_pseudo_count_is_explicit():
    p, q = np.array([10.0, 0.0, 5.0]), np.array([0.0, 10.0, 5.0])
    assert drift.kl_divergence(p, q, pseudo_count=1.0) == pytest.approx(entropy(_smooth(p, 1.0), _smooth(q, 1.0)))
    assert drift.kl_divergence(p, q, pseudo_count=0.01) > drift.kl_divergence(p, q, pseudo_count=1.0)
    with pytest.raises(ValueError):
        drift.kl_divergence(p, q, pseudo_count=0.0)


def test_hellinger_matches_bhattacharyya_form():
    for _ in range(20):
        p, q = _random_counts(), _random_counts()
        p_hat, q_hat = p / p.sum(), q / q.sum()
        expected = np.sqrt(max(0.0, 1.0 - np.sqrt(p_hat * q_hat).sum()))
        assert drift.hellinger(p, q) == pytest.approx(expected, rel=1e-7, abs=1e-7)


def test_wasserstein_equals_scipy_on_bin_centres_for_mass_inside_the_edges():
    centres = bin_centres(EDGES)
    for _ in range(20):
        p, q = _random_counts(), _random_counts()
        p[[0, -1]] = q[[0, -1]] = 0.0
        expected = wasserstein_distance(centres, centres, p[1:-1], q[1:-1])
        assert drift.wasserstein(p, q, EDGES) == pytest.approx(expected, rel=1e-9)


def test_wasserstein_places_underflow_and_overflow_at_the_outer_edges():
    points = drift.support_points(EDGES)
    assert points[0] == EDGES[0] and points[-1] == EDGES[-1]
    p, q = _random_counts(), _random_counts()
    assert drift.wasserstein(p, q, EDGES) == pytest.approx(wasserstein_distance(points, points, p, q), rel=1e-9)
    only_overflow = np.zeros(SLOTS)
    only_overflow[-1] = 1.0
    first_bin = np.zeros(SLOTS)
    first_bin[1] = 1.0
    assert drift.wasserstein(only_overflow, first_bin, EDGES) == pytest.approx(EDGES[-1] - 0.25)


def test_wasserstein_normalize_by_divides_per_row():
    p, q = _random_counts(rows=3), _random_counts()
    sigma = np.array([0.5, 2.0, 4.0])
    np.testing.assert_allclose(drift.wasserstein(p, q, EDGES, normalize_by=sigma), drift.wasserstein(p, q, EDGES) / sigma)
    assert drift.wasserstein(p[0], q, EDGES, normalize_by=2.0) == pytest.approx(drift.wasserstein(p[0], q, EDGES) / 2.0)


@pytest.mark.parametrize("metric", sorted(drift.LAYOUT_METRICS))
def test_batches_of_windows_equal_row_by_row(metric):
    windows, baseline = _random_counts(rows=64), _random_counts()
    batch = drift.compute(metric, windows, baseline, EDGES)
    assert isinstance(batch, np.ndarray) and batch.shape == (64,)
    singles = [drift.compute(metric, row, baseline, EDGES) for row in windows]
    assert all(isinstance(value, float) for value in singles)
    np.testing.assert_allclose(batch, singles, rtol=1e-12)
    pairwise = drift.compute(metric, windows, np.tile(baseline, (64, 1)), EDGES)
    np.testing.assert_allclose(pairwise, batch, rtol=1e-12)


CATEGORY_BASELINE = np.array([40.0, 30.0, 20.0, 9.0, 5.0, 6.0, 0.0])  # [c_1..c_5, other, unseen]


def test_histogram_metrics_on_category_layouts_equal_scipy():
    """No edges: the slots are unordered; the baseline's unseen slot is 0, the windows' is not."""
    q = CATEGORY_BASELINE
    q_hat = q / q.sum()
    windows = RNG.multinomial(200, [0.3, 0.25, 0.2, 0.1, 0.05, 0.05, 0.05], size=20).astype(float)
    windows[:10, 3] = 0.0  # an empty category
    for p in windows:
        p_hat = p / p.sum()
        assert drift.compute("js", p, q) == pytest.approx(jensenshannon(p_hat, q_hat, base=2) ** 2, rel=1e-9)
        assert drift.compute("hellinger", p, q) == pytest.approx(np.sqrt(1.0 - np.sqrt(p_hat * q_hat).sum()), rel=1e-7)
        assert drift.compute("kl", p, q) == pytest.approx(entropy(_smooth(p), _smooth(q)), rel=1e-9)
        assert drift.compute("psi", p, q) == pytest.approx(entropy(_smooth(p), _smooth(q)) + entropy(_smooth(q), _smooth(p)),
                                                           rel=1e-9)
        assert drift.compute("chi2", p, q) == pytest.approx(chisquare(p, p.sum() * _smooth(q)).statistic, rel=1e-12)


def test_chi2_is_pearsons_statistic_smoothed_only_where_the_baseline_is_empty():
    """Without empty slots a tiny pseudo-count gives scipy's chisquare against the baseline frequencies; an
    unseen value against a baseline 0 stays finite; an empty window has no statistic."""
    p, q = np.array([30.0, 25.0, 20.0, 10.0, 15.0]), np.array([300.0, 200.0, 250.0, 150.0, 100.0])
    assert drift.chi2(p, q, pseudo_count=1e-9) == pytest.approx(chisquare(p, p.sum() * q / q.sum()).statistic, rel=1e-7)
    unseen = np.array([10.0, 10.0, 0.0, 0.0, 0.0, 0.0, 5.0])
    assert np.isfinite(drift.chi2(unseen, CATEGORY_BASELINE)) and drift.chi2(unseen, CATEGORY_BASELINE) > 100
    assert np.isnan(drift.chi2(np.zeros(7), CATEGORY_BASELINE))


def test_missing_rate_is_the_gap_between_the_shares_per_window():
    values = drift.missing_rate([0, 5, 10, 0], [100, 100, 50, 0], 0.05)
    np.testing.assert_allclose(values[:3], [0.05, 0.0, 0.15])
    assert np.isnan(values[3]) and isinstance(drift.missing_rate(3, 10, 0.5), float)
    with pytest.raises(ValueError, match=r"\[0, total\]"):
        drift.missing_rate([11], [10], 0.1)


def test_metric_names_by_feature_type():
    assert drift.NUMERIC_ONLY == ("wasserstein", "ks", "cvm", "outlier_rate")
    assert drift.METRICS_BY_TYPE == {"numeric": drift.METRIC_NAMES,
                                     "categorical": ("kl", "js", "psi", "hellinger", "chi2", "missing_rate")}
    assert set(drift.METRIC_NAMES) == {*drift.LAYOUT_METRICS, *drift.TESTS, drift.MISSING_RATE, drift.OUTLIER_RATE}
    assert not set(drift.OPT_IN_METRICS) & set(drift.METRICS)
    with pytest.raises(ValueError, match="a categorical feature has none"):
        drift.compute("wasserstein", CATEGORY_BASELINE, CATEGORY_BASELINE)
    with pytest.raises(ValueError, match="call udfs.drift.missing_rate"):
        drift.compute("missing_rate", CATEGORY_BASELINE, CATEGORY_BASELINE)
    with pytest.raises(ValueError, match="call udfs.outliers.beyond_count"):
        drift.compute("outlier_rate", CATEGORY_BASELINE, CATEGORY_BASELINE)


def test_bad_input_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="differ in length"):
        drift.js_divergence(np.ones(4), np.ones(5))
    with pytest.raises(ValueError, match="non-negative"):
        drift.hellinger(np.array([1.0, -1.0]), np.ones(2))
    with pytest.raises(ValueError, match="slots"):
        drift.wasserstein(np.ones(4), np.ones(4), EDGES)
    with pytest.raises(ValueError, match="unknown drift metric"):
        drift.compute("emd", np.ones(SLOTS), np.ones(SLOTS), EDGES)
    with pytest.raises(ValueError, match="wasserstein only"):
        drift.compute("js", np.ones(SLOTS), np.ones(SLOTS), EDGES, normalize_by=2.0)


def test_empty_window_gives_nan_only_where_documented():
    empty, baseline = np.zeros(SLOTS), _random_counts()
    assert np.isnan(drift.js_divergence(empty, baseline))
    assert np.isnan(drift.wasserstein(empty, baseline, EDGES))
    assert np.isfinite(drift.kl_divergence(empty, baseline)) and np.isfinite(drift.psi(empty, baseline))


counts_strategy = st.lists(st.integers(0, 10_000), min_size=SLOTS, max_size=SLOTS).filter(lambda c: sum(c) > 0)


@settings(max_examples=150, deadline=None)
@given(p=counts_strategy, q=counts_strategy, scale=st.integers(1, 50))
def test_metric_properties(p, q, scale):
    p, q = np.array(p, dtype=float), np.array(q, dtype=float)
    for metric in drift.METRICS:
        value = drift.compute(metric, p, q, EDGES)
        assert np.isfinite(value) and value >= 0.0, metric
        same = drift.compute(metric, p, p * scale, EDGES)  # identical distributions, different totals
        if metric in ("kl", "psi"):  # smoothing with a fixed pseudo-count depends on the totals
            assert drift.compute(metric, p, p.copy(), EDGES) == pytest.approx(0.0, abs=1e-12)
        else:
            assert same == pytest.approx(0.0, abs=1e-7), metric
    js = drift.js_divergence(p, q)
    assert js <= 1.0 and js == pytest.approx(drift.js_divergence(q, p), abs=1e-12)
    assert drift.hellinger(p, q) <= 1.0 + 1e-12
    assert drift.psi(p, q) == pytest.approx(drift.psi(q, p), rel=1e-9, abs=1e-12)
    assert drift.wasserstein(p, q, EDGES) <= EDGES[-1] - EDGES[0] + 1e-9


@settings(max_examples=100, deadline=None)
@given(p=st.lists(st.integers(0, 3), min_size=SLOTS, max_size=SLOTS),
       q=st.lists(st.integers(0, 3), min_size=SLOTS, max_size=SLOTS),
       a=st.floats(1e-6, 10.0))
def test_smoothing_never_yields_inf_or_nan(p, q, a):
    p, q = np.array(p, dtype=float), np.array(q, dtype=float)
    assert np.isfinite(drift.kl_divergence(p, q, pseudo_count=a))
    assert np.isfinite(drift.psi(p, q, pseudo_count=a))
