"""Per-column quantiles and CDFs of a block of feature columns: exact on small windows, KLL beyond.

**Exact regime.** While a window holds at most ``exact_limit`` rows (default 2,048) the block keeps the
values themselves (float64, feature-major, entries to skip as NaN). Percentiles are ``numpy.quantile``
of each column's non-NaN values, numpy's default ``linear`` method: for the ``n`` sorted values
``x_0 <= ... <= x_{n-1}`` and ``h = (n - 1) q``::

    Q(q) = x_floor(h) + (h - floor(h)) * (x_floor(h)+1 - x_floor(h))

and the CDF is exact, ``F(t) = #{x_i <= t} / n`` (rank error 0).

**Sketch regime.** Past ``exact_limit`` rows every column moves to an Apache DataSketches KLL doubles
sketch (Karnin, Lang and Liberty 2016; ``datasketches.kll_doubles_sketch``) of parameter ``k`` (default
``KLL_K = 350``). With probability 99 % every rank, quantile and CDF query is off by at most
``epsilon * n`` ranks, where ``epsilon = kll_doubles_sketch.get_normalized_rank_error(k, False)``::

    k = 350: epsilon = 0.77 % (single-sided: get_rank, get_quantile, get_cdf);
             0.97 % double-sided (get_pmf, a difference of two ranks)
    (k = 200, the library default: 1.33 % / 1.65 %)

so every query type stays within 1 % of ``n``. A quantile here is the smallest retained item whose
inclusive normalised rank reaches ``q`` (``get_quantiles(probs, inclusive=True)``); ``F(t)`` is
``get_cdf(points, inclusive=True)``, the estimated share of values ``<= t``. A sketch of ``n`` values
retains about ``3 k`` items whatever ``n`` (k = 350: 870 items, 7.0 kB serialised at n = 9,000;
1,040 items, 8.4 kB at n = 10**6). Merging keeps the bound
in any split and order (KLL merges are unbiased compactions), and the serialised form
(``serialize``/``deserialize``) is the one datasketches-java reads.

NaN entries are skipped in both regimes (the KLL sketch itself ignores NaN); callers map anything else
they want skipped (e.g. +-inf) to NaN first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from datasketches import kll_doubles_sketch

EXACT_LIMIT = 2048
KLL_K = 350


@dataclass(frozen=True)
class WindowCdf:
    """The CDF of one column's window values, for two-sample tests.

    ``cdf(points)`` is the share of the ``n`` values ``<= point`` (NaN for every point when ``n == 0``),
    each within ``epsilon`` of the true share (``epsilon == 0`` when exact; otherwise the KLL bound, at
    99 % confidence).
    """

    n: int
    epsilon: float
    sorted_values: Optional[np.ndarray] = None
    sketch: Optional[kll_doubles_sketch] = None

    def __call__(self, points) -> np.ndarray:
        points = np.asarray(points, dtype=float)
        if self.n == 0:
            return np.full(points.shape, np.nan)
        if self.sketch is None:
            return np.searchsorted(self.sorted_values, points, side="right") / self.n
        unique, inverse = np.unique(points, return_inverse=True)
        shares = np.asarray(self.sketch.get_cdf(unique.tolist(), True)[:-1])
        return shares[inverse].reshape(points.shape)


class BlockQuantiles:
    """Mergeable quantiles of ``n_columns`` columns: exact up to ``exact_limit`` values per column (rows
    of the window), then KLL(``k``). Batches come feature-major: (n_columns x values), one row per column."""

    __slots__ = ("n_columns", "exact_limit", "k", "values", "sketches")

    def __init__(self, n_columns: int, exact_limit: int = EXACT_LIMIT, k: int = KLL_K):
        self.n_columns = n_columns
        self.exact_limit = exact_limit
        self.k = k
        self.values: Optional[np.ndarray] = np.empty((n_columns, 0))
        self.sketches: Optional[list[kll_doubles_sketch]] = None

    @property
    def is_exact(self) -> bool:
        """True while the raw values are kept (quantiles and CDFs exact)."""
        return self.sketches is None

    def update(self, columns: np.ndarray) -> None:
        """Add an (n_columns x values) float64 batch; NaN entries are skipped."""
        if self.is_exact and self.values.shape[1] + columns.shape[1] <= self.exact_limit:
            self.values = np.concatenate([self.values, columns], axis=1)
            return
        self._to_sketches()
        for sketch, column in zip(self.sketches, columns):
            sketch.update(column)

    def merge(self, other: "BlockQuantiles") -> None:
        """Fold ``other`` (same columns) into this block; ``other`` is left unchanged."""
        if other.is_exact:
            self.update(other.values)
            return
        self._to_sketches()
        for sketch, other_sketch in zip(self.sketches, other.sketches):
            sketch.merge(other_sketch)

    def quantiles(self, probs) -> np.ndarray:
        """(n_columns x len(probs)) values at probabilities ``probs``; NaN for an empty column."""
        probs = np.asarray(probs, dtype=float)
        if self.is_exact:
            return _exact_quantiles(self.values, probs)
        return np.array([_sketch_quantiles(sketch, probs) for sketch in self.sketches]).reshape(-1, len(probs))

    def cdf(self, column: int) -> WindowCdf:
        """The `WindowCdf` of one column."""
        if self.is_exact:
            values = self.values[column]
            values = np.sort(values[~np.isnan(values)])
            return WindowCdf(len(values), 0.0, sorted_values=values)
        sketch = self.sketches[column]
        epsilon = sketch.normalized_rank_error(False) if sketch.is_estimation_mode() else 0.0
        return WindowCdf(sketch.n, epsilon, sketch=sketch)

    def _to_sketches(self) -> None:
        """Move from the exact regime to one KLL sketch per column (no-op once there)."""
        if not self.is_exact:
            return
        self.sketches = [kll_doubles_sketch(self.k) for _ in range(self.n_columns)]
        for sketch, column in zip(self.sketches, self.values):
            sketch.update(column)
        self.values = None

    def __getstate__(self):
        sketches = None if self.is_exact else [sketch.serialize() for sketch in self.sketches]
        return self.n_columns, self.exact_limit, self.k, self.values, sketches

    def __setstate__(self, state):
        self.n_columns, self.exact_limit, self.k, self.values, sketches = state
        self.sketches = None if sketches is None else [kll_doubles_sketch.deserialize(s) for s in sketches]


def _exact_quantiles(columns: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """``numpy.quantile`` of each column's non-NaN values: one call for all the complete columns, one per
    column holding NaN; NaN for an empty column."""
    result = np.full((len(columns), len(probs)), np.nan)
    incomplete = np.isnan(columns).any(axis=1)
    if columns.shape[1]:
        result[~incomplete] = np.quantile(columns[~incomplete], probs, axis=1).T
    for j in np.flatnonzero(incomplete):
        values = columns[j][~np.isnan(columns[j])]
        if len(values):
            result[j] = np.quantile(values, probs)
    return result


def _sketch_quantiles(sketch: kll_doubles_sketch, probs: np.ndarray) -> list[float]:
    """The sketch's quantiles (smallest item of inclusive rank >= q); NaN when empty."""
    return [np.nan] * len(probs) if sketch.is_empty() else sketch.get_quantiles(probs.tolist(), True)
