"""Histogram binning shared by the baseline and the window statistics.

The drift layout of a histogram on ``edges`` (length ``k + 1`` for ``k`` bins) is the count vector
``[underflow, bin_1, ..., bin_k, overflow]`` of length ``len(edges) + 1``:

* underflow: values ``x < edges[0]``;
* bin ``i`` (1-based): ``edges[i-1] <= x < edges[i]`` (half-open, like every bin);
* overflow: values ``x >= edges[-1]``.

No finite value is ever dropped. Baselines put the training maximum inside the last bin by nudging the
last edge one ulp above the maximum (:func:`quantile_edges`, :func:`equal_width_edges`), so every bin
stays half-open and the baseline itself has empty underflow and overflow.
"""
from __future__ import annotations

import numpy as np


MIN_BINS, MAX_BINS = 5, 50


def default_bin_count(reference_size: int) -> int:
    """Bins for a reference of ``m`` rows: ``clip(round(2 * m ** (2/5)), 5, 50)``.

    ``2 m^{2/5}`` is Moore's rule for equiprobable chi-square cells (Moore 1986, in D'Agostino &
    Stephens, *Goodness-of-Fit Techniques*, ch. 3): it grows slower than the ``m^{1/2}`` at which each
    cell's count would stop growing, so the per-bin reference noise keeps shrinking while the bins
    resolve finer shape. 120 rows give 14 bins (about 9 rows each), 1,000 give 32, and 50 is reached
    at about 3,100 rows; 5 bins at least keep some shape for tiny references, 50 at most keep the
    stats records small.
    """
    return int(np.clip(round(2.0 * reference_size ** 0.4), MIN_BINS, MAX_BINS))


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Equal-frequency edges: ``min``, then midway below each training quantile ``i / bins``, then one ulp
    above ``max``.

    With ``v_i = quantile(values, i / bins, method="inverted_cdf")`` for ``i = 1..bins-1`` (a training
    value: the one of rank ``ceil(i m / bins)``), each inner edge is ``(v_i^- + v_i) / 2``, ``v_i^-`` the
    largest training value below ``v_i``: so ``v_i`` opens its bin and every bin holds about ``m / bins``
    rows. Edges sit between training values, never on one, so a discrete or rounded feature's atoms
    lie inside bins, where a little noise in the served values cannot tip them across an edge. Ties that
    fill several quantiles give one edge (fewer bins, still strictly increasing). A constant feature
    gets the single bin ``[value, value + ulp)``.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    values = np.asarray(values, dtype=float)
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError("need finite values")
    distinct = np.unique(values)
    opening = np.unique(np.quantile(values, np.arange(1, bins) / bins, method="inverted_cdf"))
    opening = opening[opening > distinct[0]]
    below = distinct[np.searchsorted(distinct, opening) - 1]
    return np.unique(np.concatenate([distinct[:1], (below + opening) / 2, [np.nextafter(distinct[-1], np.inf)]]))


def equal_width_edges(lo: float, hi: float, bins: int) -> np.ndarray:
    """``bins`` equal-width bins over ``[lo, hi]``, the last edge moved one ulp above ``hi``.

    ``edges = linspace(lo, hi, bins + 1)`` then ``edges[-1] = nextafter(hi, +inf)``, so that
    ``hi`` falls in the last half-open bin. A constant feature (``hi == lo``) gets the unit span
    ``[lo, lo + 1]`` so the bins keep a positive width.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
        raise ValueError(f"need finite lo <= hi, got [{lo}, {hi}]")
    if hi == lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    edges[-1] = np.nextafter(hi, np.inf)
    return edges


def layout_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of the finite ``values`` in the drift layout ``[underflow, bin_1..bin_k, overflow]`` (int64):
    slot ``searchsorted(edges, x, side="right")`` for each ``x`` (a one-column `BlockLayout`)."""
    values = np.asarray(values, dtype=float).ravel()
    ordered = np.sort(values[np.isfinite(values)])
    return BlockLayout([edges]).counts(ordered[None, :], np.array([len(ordered)]))


def bin_centres(edges: np.ndarray) -> np.ndarray:
    """Mid-points of the ``len(edges) - 1`` bins."""
    edges = np.asarray(edges, dtype=float)
    return (edges[:-1] + edges[1:]) / 2.0


def interpolated_quantiles(edges: np.ndarray, counts: np.ndarray, probs) -> list[float]:
    """Quantiles of a histogram, with each bin's mass spread uniformly over the bin.

    ``counts`` are the ``k`` inner-bin counts and ``C_i = (counts_1 + ... + counts_i) / total`` the
    cumulative shares. For ``0 < q <= 1`` the bin ``i`` is the first with ``C_i >= q`` and the result is
    ``edges[i-1] + (q - C_{i-1}) / (C_i - C_{i-1}) * (edges[i] - edges[i-1])``. Used only when a
    baseline arrives without percentiles (the thesis format).
    """
    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts, dtype=float)
    cdf = np.concatenate([[0.0], np.cumsum(counts)]) / counts.sum()
    probs = np.asarray(probs, dtype=float)
    upper = np.clip(np.searchsorted(cdf, probs, side="left"), 1, len(counts))
    share = (probs - cdf[upper - 1]) / np.maximum(cdf[upper] - cdf[upper - 1], np.finfo(float).tiny)
    values = edges[upper - 1] + np.clip(share, 0.0, 1.0) * (edges[upper] - edges[upper - 1])
    return [float(v) for v in values]


class BlockLayout:
    """The drift layouts of a block of columns, each on its own edges, end to end in one flat vector.

    Column ``j`` on edges ``e_j`` owns the ``len(e_j) + 1`` slots starting at
    ``offset_j = sum_{i<j} (len(e_i) + 1)``, in the drift layout of the module docstring. Counting works
    on each column's values sorted: with ``b_j[i] = #{x < e_j[i]}`` (one binary search per edge, not
    per value) the slot counts are the differences::

        [b_j[0], b_j[1] - b_j[0], ..., b_j[-1] - b_j[-2], n_j - b_j[-1]]

    i.e. exactly ``bincount(searchsorted(e_j, x, side="right"))``. Edges are kept in an
    (n_columns x max edges) array padded with +inf (``b = n_j`` there, so padded slots count 0).
    """

    __slots__ = ("padded_edges", "edge_counts")

    def __init__(self, edges):
        columns = [np.asarray(column, dtype=float) for column in edges]
        for j, column in enumerate(columns):
            if column.ndim != 1 or len(column) < 2 or np.any(np.diff(column) <= 0):
                raise ValueError(f"edges of column {j} must be a strictly increasing 1-D array of at least 2 values")
        self.edge_counts = np.array([len(column) for column in columns], dtype=np.intp)
        self.padded_edges = np.full((len(columns), self.edge_counts.max(initial=0)), np.inf)
        for j, column in enumerate(columns):
            self.padded_edges[j, :len(column)] = column

    @property
    def n_columns(self) -> int:
        return len(self.edge_counts)

    @property
    def n_slots(self) -> int:
        """Total number of flat slots: ``sum_j (len(e_j) + 1)``."""
        return int(self.edge_counts.sum()) + self.n_columns

    def edges(self, column: int) -> np.ndarray:
        """The edges ``e_j`` of one column (a view)."""
        return self.padded_edges[column, :self.edge_counts[column]]

    def counts(self, ordered: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
        """Flat int64 counts of an (n_columns x values) batch whose rows are sorted ascending; only the
        first ``n_valid[j]`` values of row ``j`` count (sort NaN last to leave them out)."""
        below = np.empty(self.padded_edges.shape, dtype=np.int64)
        for j, (row, n) in enumerate(zip(ordered, n_valid)):
            below[j] = np.searchsorted(row[:n], self.padded_edges[j], side="left")
        cumulative = np.column_stack([np.zeros(self.n_columns, dtype=np.int64), below, n_valid])
        own_slots = np.arange(cumulative.shape[1] - 1) <= self.edge_counts[:, None]
        return np.diff(cumulative, axis=1)[own_slots]

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """Per-column views of a flat vector (each of length ``len(e_j) + 1``)."""
        return np.split(flat, np.cumsum(self.edge_counts + 1)[:-1])

    def __eq__(self, other) -> bool:
        return (isinstance(other, BlockLayout) and np.array_equal(self.edge_counts, other.edge_counts)
                and np.array_equal(self.padded_edges, other.padded_edges))
