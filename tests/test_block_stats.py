"""BlockStats (a block of feature columns, each on its own edges) against numpy column by column; merges in
any split; exact percentiles up to the exact limit, then KLL within its documented rank error."""
import json
import pickle

import numpy as np
import pytest
from datasketches import kll_doubles_sketch
from hypothesis import given, settings
from hypothesis import strategies as st

from udfs.histogram import equal_width_edges
from udfs.quantiles import EXACT_LIMIT, KLL_K
from udfs.stats import PERCENTILES, BlockStats

EDGES = [
    equal_width_edges(-2.0, 2.0, 8),
    equal_width_edges(0.0, 50.0, 20),
    np.array([-10.0, -1.0, -0.5, 0.0, 0.1, 3.0]),  # irregular bins
    np.array([0.0, 1.0]),  # a single bin
]
SCALES = np.array([1.0, 20.0, 2.0, 0.3])
OFFSETS = np.array([0.0, 25.0, -0.5, 0.5])
EPSILON = kll_doubles_sketch.get_normalized_rank_error(KLL_K, False)


def _matrix(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, len(EDGES))) * SCALES + OFFSETS


def _expected_layout(values, edges):
    """Independent reference for the drift layout, via np.histogram on the in-range values."""
    inside = values[(values >= edges[0]) & (values < edges[-1])]
    return [int((values < edges[0]).sum()), *np.histogram(inside, edges)[0].tolist(), int((values >= edges[-1]).sum())]


def _assert_column_matches_numpy(result, column, edges):
    """One feature's result against numpy on the column's finite values (percentiles exactly)."""
    values = column[np.isfinite(column)]
    assert result["count"] == len(values)
    assert result["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert result["stddev"] == pytest.approx(values.std(ddof=1), rel=1e-12)
    assert result["stddev_pop"] == pytest.approx(values.std(ddof=0), rel=1e-12)
    assert result["variance"] == pytest.approx(values.var(ddof=1), rel=1e-12)
    assert (result["min"], result["max"]) == (values.min(), values.max())
    p25, p50, p75 = np.percentile(values, [25, 50, 75])
    assert (result["p25"], result["p50"], result["p75"]) == (p25, p50, p75)
    assert result["iqr"] == p75 - p25
    histogram = result["histogram"]
    assert [histogram["underflow"], *histogram["counts"], histogram["overflow"]] == _expected_layout(values, edges)
    assert histogram["edges"] == np.asarray(edges, dtype=float).tolist()
    assert result["missing"] == np.isnan(column).sum() and result["rejected"] == np.isinf(column).sum()


def _max_rank_error(values, estimates, probs):
    """Largest distance, as a share of n, between ``q`` and the rank interval of each estimate."""
    ordered = np.sort(values)
    low = np.searchsorted(ordered, estimates, "left") / len(values)
    high = np.searchsorted(ordered, estimates, "right") / len(values)
    return float(np.max(np.maximum(0.0, np.maximum(low - probs, probs - high))))


def test_every_column_matches_numpy_on_its_own_edges():
    matrix = _matrix(1500, seed=1)
    block = BlockStats(EDGES)
    block.update(matrix)
    for j, (result, counts) in enumerate(zip(block.results(), block.histogram_counts())):
        _assert_column_matches_numpy(result, matrix[:, j], EDGES[j])
        assert counts.tolist() == _expected_layout(matrix[:, j], EDGES[j])


def test_nan_is_missing_inf_is_rejected_per_column():
    matrix = _matrix(400, seed=2)
    rng = np.random.default_rng(3)
    matrix[rng.random(matrix.shape) < 0.1] = np.nan
    matrix[rng.random(matrix.shape) < 0.05] = np.inf
    matrix[rng.random(matrix.shape) < 0.05] = -np.inf
    matrix[:, 3] = np.nan  # one feature entirely missing
    block = BlockStats(EDGES)
    for part in np.array_split(matrix, 3):
        block.update(part)
    results = block.results()
    for j in range(3):
        _assert_column_matches_numpy(results[j], matrix[:, j], EDGES[j])
        assert sum(block.histogram_counts()[j]) == np.isfinite(matrix[:, j]).sum()
    empty = results[3]
    assert (empty["count"], empty["missing"], empty["rejected"]) == (0, 400, 0)
    assert all(empty[key] is None for key in ("mean", "min", "max", "stddev", "stddev_pop", "variance",
                                              "p25", "p50", "p75", "iqr"))
    json.dumps(results, allow_nan=False)


def test_missing_values_equal_numpy_nan_functions():
    """The JVM sends NaN for a missing value: counted in ``missing``, left out of every statistic as numpy's
    nan-functions leave it out, and out of the histogram and the CDF."""
    matrix = _matrix(1500, seed=9)
    matrix[np.random.default_rng(9).random(matrix.shape) < [0.0, 0.05, 0.3, 0.9]] = np.nan
    block = BlockStats(EDGES)
    for part in np.array_split(matrix, 3):
        block.update(part)
    for j, result in enumerate(block.results()):
        column = matrix[:, j]
        assert (result["missing"], result["rejected"]) == (np.isnan(column).sum(), 0)
        assert result["count"] == np.count_nonzero(~np.isnan(column)) == block.cdf(j).n == sum(block.histogram_counts()[j])
        assert result["mean"] == pytest.approx(np.nanmean(column), rel=1e-12)
        assert result["variance"] == pytest.approx(np.nanvar(column, ddof=1), rel=1e-12)
        assert result["stddev_pop"] == pytest.approx(np.nanstd(column), rel=1e-12)
        assert (result["min"], result["max"]) == (np.nanmin(column), np.nanmax(column))
        assert [result["p25"], result["p50"], result["p75"]] == np.nanpercentile(column, [25, 50, 75]).tolist()


def test_an_empty_block_reports_none_and_is_strict_json():
    results = BlockStats(EDGES).results()
    assert [r["count"] for r in results] == [0] * len(EDGES)
    assert all(r["p50"] is None and r["mean"] is None for r in results)
    json.dumps(results, allow_nan=False)


def _assert_merges_equal_one_pass(edges, matrix: np.ndarray, cuts: list[int], reverse: bool) -> None:
    """Blocks of ``matrix`` split at ``cuts``, pickled and merged in either order, equal one pass over it."""
    one_pass = BlockStats(edges)
    one_pass.update(matrix)
    blocks = []
    for part in np.split(matrix, sorted(c for c in cuts if c <= len(matrix))):
        block = BlockStats(edges)
        block.update(part)
        blocks.append(block)
    if reverse:
        blocks.reverse()
    merged = blocks[0]
    for block in blocks[1:]:
        merged.merge(pickle.loads(pickle.dumps(block)))
    for expected, got in zip(one_pass.results(), merged.results()):
        for key in ("count", "histogram", "missing", "rejected", "min", "max", "p25", "p50", "p75"):
            assert got[key] == expected[key], key
        for key in ("mean", "stddev", "variance"):
            if expected[key] is None:
                assert got[key] is None
            else:
                assert got[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(0, 300), cuts=st.lists(st.integers(0, 300), max_size=6),
       reverse=st.booleans(), missing=st.floats(0.0, 0.3))
def test_merging_any_split_equals_one_pass(seed, rows, cuts, reverse, missing):
    matrix = _matrix(rows, seed)
    matrix[np.random.default_rng(seed).random(matrix.shape) < missing] = np.nan
    _assert_merges_equal_one_pass(EDGES, matrix, cuts, reverse)


@settings(max_examples=40, deadline=None)
@given(data=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=0, max_size=300),
       cuts=st.lists(st.integers(0, 300), max_size=6), reverse=st.booleans())
def test_one_column_of_any_values_merges_like_one_pass(data, cuts, reverse):
    """Mostly outside the edges (underflow and overflow), any floats the strategy finds."""
    _assert_merges_equal_one_pass([equal_width_edges(-2.0, 2.0, 8)], np.array(data, dtype=float).reshape(-1, 1),
                                  cuts, reverse)


def test_percentiles_are_exact_up_to_the_limit_then_from_kll():
    matrix = _matrix(EXACT_LIMIT + 1, seed=4)
    block = BlockStats(EDGES)
    block.update(matrix[:EXACT_LIMIT])
    assert block.quantiles.is_exact
    assert [r["p50"] for r in block.results()] == np.percentile(matrix[:EXACT_LIMIT], 50, axis=0).tolist()
    block.update(matrix[EXACT_LIMIT:])
    assert not block.quantiles.is_exact
    assert [r["count"] for r in block.results()] == [EXACT_LIMIT + 1] * len(EDGES)


def test_kll_regime_within_the_documented_rank_error_after_random_merges():
    """Windows of 3 sub-batches of 3,000 rows, merged in random order: percentiles and CDF within epsilon."""
    rng = np.random.default_rng(5)
    matrix = _matrix(60_000, seed=5)
    matrix[:, 2] = rng.lognormal(0.0, 1.5, len(matrix))
    windows = []
    for window in np.array_split(matrix, 7):
        block = BlockStats(EDGES)
        for batch in np.array_split(window, 3):
            block.update(batch)
        windows.append(pickle.loads(pickle.dumps(block)))
    merged = windows[0]
    for index in rng.permutation(np.arange(1, len(windows))):
        merged.merge(windows[index])
    assert EPSILON <= 0.01
    probs = np.array(PERCENTILES)
    for j, result in enumerate(merged.results()):
        column = matrix[:, j]
        estimates = [result[f"p{round(100 * q)}"] for q in probs]
        assert _max_rank_error(column, estimates, probs) <= EPSILON
        cdf = merged.cdf(j)
        assert (cdf.n, cdf.epsilon) == (len(column), EPSILON)
        points = np.quantile(column, np.linspace(0.005, 0.995, 199))
        exact = np.searchsorted(np.sort(column), points, "right") / len(column)
        assert np.max(np.abs(cdf(points) - exact)) <= EPSILON


@pytest.mark.parametrize("sizes", [(1000, 1000), (3000, 10), (10, 3000), (3000, 3000)])
def test_merge_across_regimes_keeps_every_value(sizes):
    """Exact + exact over the limit, exact into sketch and sketch into exact: every value counted once."""
    parts = [_matrix(size, seed=size) for size in sizes]
    blocks = []
    for part in parts:
        block = BlockStats(EDGES)
        block.update(part)
        blocks.append(block)
    blocks[0].merge(blocks[1])
    total = sum(sizes)
    assert blocks[0].quantiles.is_exact == (total <= EXACT_LIMIT)
    assert all(blocks[0].cdf(j).n == total for j in range(len(EDGES)))
    assert all(r["count"] == total for r in blocks[0].results())
    assert blocks[1].cdf(0).n == sizes[1]  # the merged-in block is left unchanged


def test_exact_cdf_and_epsilon():
    matrix = _matrix(500, seed=6)
    matrix[::7, 1] = np.nan
    block = BlockStats(EDGES)
    block.update(matrix)
    points = np.array([[-1.0, 0.0], [25.0, 1e9]])
    for j in range(len(EDGES)):
        values = np.sort(matrix[:, j][np.isfinite(matrix[:, j])])
        cdf = block.cdf(j)
        assert (cdf.n, cdf.epsilon) == (len(values), 0.0)
        np.testing.assert_array_equal(cdf(points), np.searchsorted(values, points, "right") / len(values))
    assert np.isnan(BlockStats(EDGES).cdf(0)([0.0, 1.0])).all()


def test_pickle_round_trip_in_both_regimes():
    for rows in (100, 9000):
        block = BlockStats(EDGES)
        block.update(_matrix(rows, seed=rows))
        restored = pickle.loads(pickle.dumps(block))
        assert restored.results() == block.results()
        assert restored.quantiles.is_exact == block.quantiles.is_exact
        points = np.linspace(-3, 3, 11)
        np.testing.assert_array_equal(restored.cdf(0)(points), block.cdf(0)(points))


def test_state_of_a_wide_window_stays_compact():
    """1,000 features on 20 bins after 3 sub-batches of 3,000 rows: one KLL sketch (a few kB) per feature."""
    width = 1000
    block = BlockStats([equal_width_edges(-3.0, 3.0, 20)] * width)
    rng = np.random.default_rng(7)
    for _ in range(3):
        block.update(rng.normal(size=(3000, width)))
    assert len(pickle.dumps(block)) < 12_000 * width


def test_many_edges_and_values_on_edges():
    """Slots equal searchsorted(edges, x, "right") also with 300 edges next to 3; an edge value
    goes to the bin above it, the last edge to overflow."""
    fine = np.linspace(-3.0, 3.0, 301)
    block = BlockStats([fine, [0.0, 1.0, 2.0]])
    matrix = np.column_stack([np.concatenate([_matrix(997, seed=8)[:, 0], fine[[0, 150, 300]]]),
                              np.resize([-0.5, 0.0, 1.0, 1.5, 2.0, 7.0], 1000)])
    block.update(matrix)
    wide, narrow = block.histogram_counts()
    np.testing.assert_array_equal(wide, np.bincount(np.searchsorted(fine, matrix[:, 0], "right"), minlength=302))
    assert narrow.tolist() == np.bincount(np.searchsorted([0.0, 1.0, 2.0], matrix[:, 1], "right"), minlength=4).tolist()
    assert wide[-1] >= 1 and wide[151] >= 1


def test_different_edges_do_not_merge_and_width_is_checked():
    block = BlockStats(EDGES)
    with pytest.raises(ValueError, match="different edges"):
        block.merge(BlockStats(EDGES[::-1]))
    for shape in ((len(EDGES) + 1, len(EDGES) + 1), (len(EDGES),)):
        with pytest.raises(ValueError, match="instances x 4"):
            block.update(np.zeros(shape))
    with pytest.raises(ValueError, match="column 1"):
        BlockStats([[0.0, 1.0], [1.0, 1.0]])
