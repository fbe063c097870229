"""One feature's edge cases (a one-column BlockStats) and CovarianceAccumulator against numpy, one pass
against merges.

BlockStats against numpy per column, its merges, the exact/KLL quantiles and the window CDF:
tests/test_block_stats.py."""
import json
import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from udfs.histogram import equal_width_edges
from udfs.stats import BlockStats, CovarianceAccumulator

EDGES = equal_width_edges(-2.0, 2.0, 8)


def _one_feature(edges, values=None) -> BlockStats:
    """A one-column BlockStats on ``edges``, updated with ``values`` if given."""
    stats = BlockStats([edges])
    if values is not None:
        stats.update(np.asarray(values, dtype=float).reshape(-1, 1))
    return stats


def test_values_on_edges_go_to_the_upper_bin_and_last_edge_to_overflow():
    stats = _one_feature([0.0, 1.0, 2.0], [-0.5, 0.0, 1.0, 1.5, 2.0, 7.0])
    assert stats.histogram_counts()[0].tolist() == [1, 1, 2, 2]


def test_nan_and_inf_are_counted_not_folded_in():
    stats = _one_feature(EDGES, [1.0, np.nan, np.inf, -np.inf, 3.0, np.nan])
    result = stats.results()[0]
    assert (result["missing"], result["rejected"]) == (2, 2)
    assert result["count"] == 2 and result["mean"] == 2.0 and result["max"] == 3.0
    assert sum(stats.histogram_counts()[0]) == 2


def test_undefined_statistics_are_none_and_result_is_strict_json():
    empty = _one_feature(EDGES).results()[0]
    assert empty["count"] == 0
    assert all(empty[key] is None for key in ("mean", "min", "max", "stddev", "stddev_pop", "variance", "p50", "iqr"))
    result = _one_feature(EDGES, [0.5]).results()[0]
    assert result["stddev"] is None and result["variance"] is None
    assert result["stddev_pop"] == 0.0 and result["p50"] == 0.5
    for document in (empty, result):
        json.dumps(document, allow_nan=False)


def test_feature_stats_state_stays_small_on_large_windows():
    stats = _one_feature(EDGES)
    rng = np.random.default_rng(3)
    for _ in range(100):
        stats.update(rng.normal(size=(5000, 1)))
    assert stats.results()[0]["count"] == 500_000
    assert len(pickle.dumps(stats)) < 20_000  # one KLL sketch of about 3 k items, whatever n


def test_covariance_and_correlation_match_numpy():
    rng = np.random.default_rng(4)
    rows = rng.normal(size=(700, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 2.0]]) + 10.0
    accumulators = []
    for part in np.array_split(rows, [5, 6, 300, 301]):
        accumulator = CovarianceAccumulator(3)
        accumulator.update(part)
        accumulators.append(accumulator)
    merged = accumulators[0]
    for accumulator in accumulators[1:]:
        merged.merge(accumulator)
    np.testing.assert_allclose(merged.covariance(), np.cov(rows, rowvar=False), rtol=1e-10)
    np.testing.assert_allclose(merged.correlation(), np.corrcoef(rows, rowvar=False), rtol=1e-10)
    result = merged.result()
    assert result["count"] == 700
    np.testing.assert_allclose(result["covariance"], np.cov(rows, rowvar=False), rtol=1e-10)
    json.dumps(result, allow_nan=False)


def test_covariance_rejects_invalid_rows_and_reports_undefined_correlation_as_none():
    accumulator = CovarianceAccumulator(2)
    accumulator.update(np.array([[1.0, 5.0], [2.0, 5.0], [np.nan, 5.0], [3.0, np.inf]]))
    result = accumulator.result()
    assert result["count"] == 2 and result["rejected"] == 2
    assert result["correlation"][0][0] == 1.0
    assert result["correlation"][0][1] is None and result["covariance"][1][1] == 0.0
    assert CovarianceAccumulator(2).result()["covariance"] == [[None, None], [None, None]]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(2, 200), cuts=st.lists(st.integers(0, 200), max_size=5))
def test_covariance_merging_any_split_equals_np_cov(seed, rows, cuts):
    data = np.random.default_rng(seed).normal(size=(rows, 3)) * [1.0, 100.0, 0.01] + [0.0, 1e4, -5.0]
    merged = CovarianceAccumulator(3)
    for part in np.split(data, sorted(c for c in cuts if c <= rows)):
        accumulator = CovarianceAccumulator(3)
        accumulator.update(part)
        merged.merge(accumulator)
    np.testing.assert_allclose(merged.covariance(), np.cov(data, rowvar=False), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(merged.correlation(), np.corrcoef(data, rowvar=False), rtol=1e-8, atol=1e-10)
