"""CategoricalStats against pandas value_counts per window, fed as the JVM feeds it (a dictionary and
int32 codes per sub-batch); merges in any split; the sketch regime bounded and within its error."""
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from udfs.categorical import EXACT_DISTINCT, CategoricalStats, CategoryLayout

CATEGORIES = ["c0", "c1", "c2", "c3", "c4"]
OTHER_VALUES = ["o0", "o1", "o2"]
LAYOUT = CategoryLayout(CATEGORIES, OTHER_VALUES)
NAMES = np.array(CATEGORIES + OTHER_VALUES + [f"new{i}" for i in range(30)], dtype=object)
WEIGHTS = 1.0 / np.arange(1, len(NAMES) + 1)  # Zipf-like: categories common, new values rare


def _column(rng, size, missing_share=0.1) -> pd.Series:
    """Values drawn from NAMES, a share missing (None)."""
    values = rng.choice(NAMES, size, p=WEIGHTS / WEIGHTS.sum())
    values[rng.random(size) < missing_share] = None
    return pd.Series(values, dtype=object)


def _feed(stats: CategoricalStats, column: pd.Series, sub_batches: int, rng) -> None:
    """Each sub-batch as the JVM sends it: its distinct strings in any order, int32 codes, -1 missing."""
    for part in np.array_split(column.to_numpy(), sub_batches):
        codes, dictionary = pd.factorize(part)
        order = rng.permutation(len(dictionary))
        shuffled = np.full(len(codes), -1, dtype=np.int32)
        shuffled[codes >= 0] = np.argsort(order)[codes[codes >= 0]]
        stats.update(dictionary[order], shuffled)


def _window(column: pd.Series, sub_batches: int = 3, seed: int = 0, **kwargs) -> CategoricalStats:
    stats = CategoricalStats(LAYOUT, **kwargs)
    _feed(stats, column, sub_batches, np.random.default_rng(seed))
    return stats


def _expected(column: pd.Series, top_k: int = 10) -> dict:
    counts = column.value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    by_slot = [int(counts.get(c, 0)) for c in CATEGORIES]
    other = int(counts[counts.index.isin(OTHER_VALUES)].sum())
    unseen = int(counts[~counts.index.isin(CATEGORIES + OTHER_VALUES)].sum())
    return {"count": int(column.notna().sum()), "missing": int(column.isna().sum()), "distinct": column.nunique(),
            "exact": True, "unseen": unseen, "top": [[value, int(n)] for value, n in ranked[:top_k]],
            "histogram": {"categories": CATEGORIES, "counts": by_slot, "other": other, "unseen": unseen}}


def test_every_window_equals_pandas_value_counts():
    rng = np.random.default_rng(1)
    for size, sub_batches, top_k in [(3000, 3, 10), (500, 7, 3), (40, 2, 10), (0, 1, 10)]:
        column = _column(rng, size)
        stats = _window(column, sub_batches, seed=size, top_k=top_k)
        expected = _expected(column, top_k)
        assert stats.result() == expected
        assert stats.histogram_counts().tolist() == [*expected["histogram"]["counts"], expected["histogram"]["other"],
                                                     expected["unseen"]]


def test_all_missing_and_repeated_dictionary_entries():
    stats = CategoricalStats(LAYOUT)
    stats.update(np.array([], dtype=object), np.full(4, -1, dtype=np.int32))
    assert (stats.result()["count"], stats.result()["missing"], stats.result()["top"]) == (0, 4, [])
    stats.update(["c1", "c1", "zz", "o2"], np.array([0, 1, 1, 2, -1], dtype=np.int32))  # "c1" twice in a dictionary
    assert stats.result()["top"] == [["c1", 3], ["zz", 1]]
    assert stats.histogram_counts().tolist() == [0, 3, 0, 0, 0, 0, 1]
    assert stats.result()["missing"] == 5


def _assert_merges_equal_one_pass(column: pd.Series, cuts: list[int], reverse: bool, exact_limit: int) -> None:
    one_pass = _window(column, 1, exact_limit=exact_limit)
    parts = np.split(column.to_numpy(), sorted(c for c in cuts if c <= len(column)))
    windows = [_window(pd.Series(part, dtype=object), 2, seed=i, exact_limit=exact_limit) for i, part in enumerate(parts)]
    if reverse:
        windows.reverse()
    merged = windows[0]
    for window in windows[1:]:
        merged.merge(pickle.loads(pickle.dumps(window)))
    got, expected = merged.result(), one_pass.result()
    assert merged.histogram_counts().tolist() == one_pass.histogram_counts().tolist()
    for key in ("count", "missing", "unseen", "histogram"):
        assert got[key] == expected[key], key
    if one_pass.is_exact:
        assert got == expected


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(0, 400), cuts=st.lists(st.integers(0, 400), max_size=6),
       reverse=st.booleans(), missing=st.floats(0.0, 0.5))
def test_merging_any_split_equals_one_pass(seed, rows, cuts, reverse, missing):
    column = _column(np.random.default_rng(seed), rows, missing)
    _assert_merges_equal_one_pass(column, cuts, reverse, exact_limit=EXACT_DISTINCT)


@pytest.mark.parametrize("cuts", [[100], [1900], [1000, 1200]])
def test_merges_across_the_exact_bound_keep_every_count(cuts):
    """A bound of 12 distinct values: exact windows merge past it, exact into sketch and sketch into exact."""
    column = _column(np.random.default_rng(2), 2000)
    _assert_merges_equal_one_pass(column, cuts, reverse=False, exact_limit=12)
    _assert_merges_equal_one_pass(column, cuts, reverse=True, exact_limit=12)


def test_sketch_regime_is_bounded_and_within_the_documented_error():
    """A postcode-like feature: 3 windows of 150,000 values, 120,000 distinct each plus three heavy hitters
    and the baseline's categories; merged. Counts, missing and the layout stay exact, distinct is within
    the CPC bounds (3 sigma), top finds the heavy hitters within the sketch's epsilon, state stays small."""
    rng = np.random.default_rng(3)
    windows, columns = [], []
    for w in range(3):
        rare = np.array([f"pc{w}-{i}" for i in range(120_000)], dtype=object)
        heavy = rng.choice(np.array(["h0", "h1", "h2", "c0", "o1"], dtype=object), 30_000, p=[0.35, 0.25, 0.2, 0.12, 0.08])
        column = pd.Series(rng.permutation(np.concatenate([rare, heavy])), dtype=object)
        column[rng.random(len(column)) < 0.02] = None
        stats = _window(column, sub_batches=5, seed=w)
        assert not stats.is_exact and len(pickle.dumps(stats)) < 40_000
        windows.append(pickle.loads(pickle.dumps(stats)))
        columns.append(column)
    merged = windows[0]
    for window in windows[1:]:
        merged.merge(window)
    column = pd.concat(columns, ignore_index=True)
    expected, got = _expected(column), merged.result()
    for key in ("count", "missing", "unseen", "histogram"):
        assert got[key] == expected[key], key
    true_distinct = column.nunique()
    assert merged.distinct_sketch.get_lower_bound(3) <= true_distinct <= merged.distinct_sketch.get_upper_bound(3)
    assert abs(got["distinct"] - true_distinct) <= 3 * 0.69 / 64 * true_distinct  # ICON estimator, lg_k 12
    epsilon = 3.5 / 2**10 * got["count"]
    truth = column.value_counts()
    assert [value for value, _ in got["top"]] == ["h0", "h1", "h2", "c0", "o1"]
    assert all(abs(count - truth[value]) <= epsilon for value, count in got["top"])
    assert got["exact"] is False and len(pickle.dumps(merged)) < 40_000


def test_a_distinct_estimate_never_exceeds_the_window_count():
    """Issue 20: a window of 2,500 values, all different, made CPC estimate 2,504 distinct values (2,505 for these
    names): more than the window holds. The estimate is capped at the present values' count, missing ones aside."""
    values = np.array([f"v{i}" for i in range(2_500)] + [None] * 40, dtype=object)
    stats = _window(pd.Series(values, dtype=object), sub_batches=4)
    assert not stats.is_exact and stats.distinct_sketch.get_estimate() > 2_500  # the sketch over-estimates here
    got = stats.result()
    assert (got["count"], got["missing"], got["distinct"]) == (2_500, 40, 2_500)


def test_bad_input_is_refused():
    stats = CategoricalStats(LAYOUT)
    with pytest.raises(ValueError, match="codes must lie in"):
        stats.update(["a"], np.array([0, 1], dtype=np.int32))
    with pytest.raises(ValueError, match="1-D integer array"):
        stats.update(["a"], np.array([0.0]))
    with pytest.raises(ValueError, match="different baselines"):
        stats.merge(CategoricalStats(CategoryLayout(CATEGORIES)))
    with pytest.raises(ValueError, match="distinct"):
        CategoryLayout(["a", "b"], ["a"])
