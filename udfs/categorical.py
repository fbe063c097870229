"""Window statistics of one categorical feature: exact value counts up to a bound, DataSketches beyond.

**Input.** Per sub-batch, what the JVM sends for the feature: a *dictionary* of the distinct strings in
the sub-batch and an int ``codes`` array, one entry per instance, indexing the dictionary (-1 = missing).
`value_counts` turns that into (names, counts, missing) with one ``np.bincount``; nothing loops over
the instances in Python.

**Drift layout.** `CategoryLayout` maps values to the slots ``[c_1..c_K, other, unseen]``: the
baseline's ``K`` categories, ``other`` for a value the baseline lumped into its other-bucket *and still
names* (:attr:`udfs.baseline.CategoricalBaseline.other_values`), ``unseen`` for every other present
value. These slot counts are exact in both regimes: each update maps its dictionary (not its instances)
to slots with one binary search.

**Exact regime.** While the window holds at most ``exact_limit`` distinct values (default
:data:`EXACT_DISTINCT` = 2,048) it keeps every value with its count (sorted by value, so a sub-batch
folds in with binary searches): ``distinct`` is exact and ``top`` the ``top_k`` most frequent values,
ties by value (string order). At 2,048 values of 20 characters the exact state pickles to 64 kB, already
several times the sketches' (4 kB for a window of 120,000 different values, 15 kB for a Zipf-like one of
11,000), so the bound keeps a window's state at that order whatever the feature's cardinality (a
postcode, a user agent).

**Sketch regime.** Past the bound the values move to two Apache DataSketches sketches, and the state
stays bounded however many distinct values arrive:

* ``distinct``: a CPC sketch of ``lg_k`` :data:`CPC_LG_K` = 12 (about 2.5 kB); its estimate has a
  relative standard error of about ``0.6 / sqrt(2**12)`` = 0.9 % (0.69 / 64 = 1.1 % after merges),
  within ``get_lower_bound(3)``/``get_upper_bound(3)`` at about 99.7 %, and is capped at the window's
  count of present values (2,500 values all different were estimated 2,505);
* ``top``: a frequent-items sketch of ``lg_max_k`` :data:`FREQUENT_LG_MAX_K` = 10 (at most 768 values
  tracked), whose count estimates are off by at most ``epsilon * N``, ``epsilon = 3.5 / 2**10`` = 0.34 %
  of the window's present values; ``top`` then lists only values provably above that error
  (``NO_FALSE_POSITIVES``), most frequent first, so a window of all-different values has an empty top.

Feeding the sketches is one sketch update per *distinct* value of a sub-batch (the bindings take no
arrays), never per instance. ``merge`` is exact for counts, missing and the layout in both regimes, and
for the values while both sides are exact and their union stays within the bound.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from datasketches import cpc_sketch, cpc_union, frequent_items_error_type, frequent_strings_sketch

EXACT_DISTINCT = 2048
TOP_K = 10
CPC_LG_K = 12
FREQUENT_LG_MAX_K = 10


def value_counts(dictionary, codes) -> tuple[np.ndarray, np.ndarray, int]:
    """``(names, counts, missing)`` of a sub-batch: the dictionary entries that occur (object array, in
    dictionary order) with their int64 counts, and the number of missing (-1) codes."""
    dictionary = np.asarray(dictionary, dtype=object).reshape(-1)
    codes = np.asarray(codes)
    if codes.ndim != 1 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be a 1-D integer array, got {codes.dtype} of shape {codes.shape}")
    if codes.size and (codes.min() < -1 or codes.max() >= len(dictionary)):
        raise ValueError(f"codes must lie in [-1, {len(dictionary)}) for a dictionary of {len(dictionary)}")
    present = codes[codes >= 0]
    per_entry = np.bincount(present, minlength=len(dictionary))
    used = np.flatnonzero(per_entry)
    return dictionary[used], per_entry[used].astype(np.int64), len(codes) - len(present)


def lookup(ordered: np.ndarray, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``names`` is, or would be inserted, in the ascending object array ``ordered``, and
    whether it is there: one binary search per name."""
    position = np.searchsorted(ordered, names)
    found = np.zeros(len(names), dtype=bool)
    inside = position < len(ordered)
    found[inside] = ordered[position[inside]] == names[inside]
    return position, found


def by_count(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The permutation ordering ``values`` by count, largest first, ties by value (string order)."""
    return np.lexsort((np.asarray(values, dtype=object), -np.asarray(counts)))


class CategoryLayout:
    """Slots ``[c_1..c_K, other, unseen]`` for a baseline's ``categories`` and the ``other_values`` it
    still names; any other value is unseen."""

    __slots__ = ("categories", "known", "known_slots")

    def __init__(self, categories: Sequence[str], other_values: Sequence[str] = ()):
        self.categories = tuple(categories)
        if not self.categories:
            raise ValueError("a layout needs at least one category")
        names = np.array([*self.categories, *other_values], dtype=object)
        slots = np.concatenate([np.arange(len(self.categories)), np.full(len(other_values), len(self.categories))])
        order = np.argsort(names)
        self.known, self.known_slots = names[order], slots[order].astype(np.intp)
        if np.any(self.known[1:] == self.known[:-1]):
            raise ValueError("categories and other values must be distinct")

    @property
    def n_slots(self) -> int:
        return len(self.categories) + 2

    def slots(self, names: np.ndarray) -> np.ndarray:
        """Each name's slot: its category's index, ``K`` (other) or ``K + 1`` (unseen)."""
        position, found = lookup(self.known, np.asarray(names, dtype=object))
        slots = np.full(len(position), self.n_slots - 1, dtype=np.intp)
        slots[found] = self.known_slots[position[found]]
        return slots

    def __eq__(self, other) -> bool:
        return (isinstance(other, CategoryLayout) and self.categories == other.categories
                and np.array_equal(self.known, other.known))


class CategoricalStats:
    """Mergeable window statistics of one categorical feature on a baseline's `CategoryLayout` (module
    docstring: exact up to ``exact_limit`` distinct values, then sketches)."""

    __slots__ = ("layout", "exact_limit", "top_k", "slot_counts", "missing", "values", "value_counts",
                 "distinct_sketch", "top_sketch")

    def __init__(self, layout: CategoryLayout, exact_limit: int = EXACT_DISTINCT, top_k: int = TOP_K):
        if exact_limit < 1 or top_k < 0:
            raise ValueError(f"need exact_limit >= 1 and top_k >= 0, got {exact_limit} and {top_k}")
        self.layout, self.exact_limit, self.top_k = layout, exact_limit, top_k
        self.slot_counts = np.zeros(layout.n_slots, dtype=np.int64)
        self.missing = 0
        self.values: Optional[np.ndarray] = np.empty(0, dtype=object)
        self.value_counts: Optional[np.ndarray] = np.empty(0, dtype=np.int64)
        self.distinct_sketch: Optional[cpc_sketch] = None
        self.top_sketch: Optional[frequent_strings_sketch] = None

    @property
    def is_exact(self) -> bool:
        """True while every distinct value is kept with its count."""
        return self.values is not None

    @property
    def count(self) -> int:
        """Present (non-missing) values."""
        return int(self.slot_counts.sum())

    def update(self, dictionary, codes) -> None:
        """Add a sub-batch: its ``dictionary`` of distinct strings and ``codes`` into it (-1 = missing)."""
        names, counts, missing = value_counts(dictionary, codes)
        self.missing += missing
        np.add.at(self.slot_counts, self.layout.slots(names), counts)
        self._add_values(names, counts)

    def merge(self, other: "CategoricalStats") -> None:
        """Fold ``other`` (same layout) into this window; ``other`` is left unchanged."""
        if self.layout != other.layout:
            raise ValueError("cannot merge CategoricalStats built on different baselines")
        self.slot_counts += other.slot_counts
        self.missing += other.missing
        if other.is_exact:
            self._add_values(other.values, other.value_counts)
            return
        self._to_sketches()
        union = cpc_union(CPC_LG_K)
        union.update(self.distinct_sketch)
        union.update(other.distinct_sketch)
        self.distinct_sketch = union.get_result()
        self.top_sketch.merge(other.top_sketch)

    def histogram_counts(self) -> np.ndarray:
        """The counts in the drift layout ``[c_1..c_K, other, unseen]`` (int64, a copy)."""
        return self.slot_counts.copy()

    def result(self) -> dict:
        """JSON-ready: ``count``, ``missing``, ``distinct`` (exact, or the CPC estimate), ``exact`` (whether
        ``distinct`` and ``top`` are exact), ``unseen``, ``top`` (``[[value, count], ...]``) and
        ``histogram`` = ``{"categories", "counts", "other", "unseen"}``."""
        slots = self.slot_counts
        return {
            "count": self.count, "missing": int(self.missing), "distinct": self._distinct(), "exact": self.is_exact,
            "unseen": int(slots[-1]), "top": self._top(),
            "histogram": {"categories": list(self.layout.categories), "counts": slots[:-2].tolist(),
                          "other": int(slots[-2]), "unseen": int(slots[-1])},
        }

    def _distinct(self) -> int:
        """Exact, or the CPC estimate capped at the present values' count (it may over-estimate, never the count)."""
        if self.is_exact:
            return len(self.values)
        return min(int(round(self.distinct_sketch.get_estimate())), self.count)

    def _top(self) -> list[list]:
        if self.is_exact:
            order = by_count(self.values, self.value_counts)[:self.top_k]
            return [[value, int(count)] for value, count in zip(self.values[order], self.value_counts[order])]
        items = self.top_sketch.get_frequent_items(frequent_items_error_type.NO_FALSE_POSITIVES)
        items.sort(key=lambda item: (-item[1], item[0]))
        return [[value, int(estimate)] for value, estimate, *_ in items[:self.top_k]]

    def _add_values(self, names: np.ndarray, counts: np.ndarray) -> None:
        if not self.is_exact:
            self._sketch(names, counts)
            return
        position, known = lookup(self.values, names)
        np.add.at(self.value_counts, position[known], counts[known])
        fresh, labels = np.unique(names[~known], return_inverse=True)  # a name repeated in a dictionary: once
        fresh_counts = np.zeros(len(fresh), dtype=np.int64)
        np.add.at(fresh_counts, labels, counts[~known])
        at = np.searchsorted(self.values, fresh)
        self.values, self.value_counts = np.insert(self.values, at, fresh), np.insert(self.value_counts, at, fresh_counts)
        if len(self.values) > self.exact_limit:
            self._to_sketches()

    def _to_sketches(self) -> None:
        """Move from exact counts to the sketches (no-op once there)."""
        if not self.is_exact:
            return
        self.distinct_sketch, self.top_sketch = cpc_sketch(CPC_LG_K), frequent_strings_sketch(FREQUENT_LG_MAX_K)
        self._sketch(self.values, self.value_counts)
        self.values = self.value_counts = None

    def _sketch(self, names: np.ndarray, counts: np.ndarray) -> None:
        """One sketch update per distinct value (the bindings take no arrays)."""
        for name, count in zip(names.tolist(), counts.tolist()):
            self.distinct_sketch.update(name)
            self.top_sketch.update(name, count)

    def __getstate__(self):
        sketches = None if self.is_exact else (self.distinct_sketch.serialize(), self.top_sketch.serialize())
        return (self.layout, self.exact_limit, self.top_k, self.slot_counts, self.missing, self.values,
                self.value_counts, sketches)

    def __setstate__(self, state):
        (self.layout, self.exact_limit, self.top_k, self.slot_counts, self.missing, self.values,
         self.value_counts, sketches) = state
        self.distinct_sketch = self.top_sketch = None
        if sketches is not None:
            self.distinct_sketch = cpc_sketch.deserialize(sketches[0])
            self.top_sketch = frequent_strings_sketch.deserialize(sketches[1])
