"""Histogram binning shared by the baseline and the window statistics.

The drift layout of a histogram on ``edges`` (length ``k + 1`` for ``k`` bins) is the count vector
``[underflow, bin_1, ..., bin_k, overflow]`` of length ``len(edges) + 1``:

* underflow: values ``x < edges[0]``;
* bin ``i`` (1-based): ``edges[i-1] <= x < edges[i]`` (half-open, like every bin);
* overflow: values ``x >= edges[-1]``.

No finite value is ever dropped. Baselines put the training maximum inside the last bin by nudging the
last edge one ulp above the maximum (:func:`equal_width_edges`), so every bin stays half-open and the
baseline itself has empty underflow and overflow.
"""
from __future__ import annotations

import numpy as np


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
    """Counts of finite ``values`` in the drift layout ``[underflow, bin_1..bin_k, overflow]`` (int64)."""
    slots = np.searchsorted(edges, values, side="right")
    return np.bincount(slots, minlength=len(edges) + 1).astype(np.int64)


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
