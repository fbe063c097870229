"""Mergeable window statistics: one accumulator per block of feature columns, one for the covariance.

Both are small picklable objects (numpy arrays and a few numbers) that take whole numpy batches, so a
Flink window keeps them in keyed state and merges partial results. Moments combine exactly with the
parallel update of Chan, Golub and LeVeque (1979): for parts ``a`` and ``b`` with ``n = n_a + n_b`` and
``d = mean_b - mean_a``::

    mean = mean_a + d * n_b / n
    M2   = M2_a + M2_b + d**2 * n_a * n_b / n          (M2 = sum of squared deviations)

per column (`BlockStats`: ``n``, ``mean``, ``M2`` are vectors, ``d**2`` elementwise), and for co-moments
``C = sum (x - mean_x)(y - mean_y)`` the same with ``d**2`` replaced by the outer product ``d_x d_y``
(`CovarianceAccumulator`).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from udfs.histogram import BlockLayout
from udfs.quantiles import EXACT_LIMIT, KLL_K, BlockQuantiles, WindowCdf

PERCENTILES = (0.25, 0.50, 0.75)


def _chan_combine(n_a, mean_a, m2_a, n_b, mean_b, m2_b, cross=np.multiply):
    """Combine (count, mean, M2) of two parts (see the module docstring).

    Counts and means are scalars or per-column vectors; ``cross(d, d)`` is ``d**2`` elementwise
    (per-column moments) or ``np.multiply.outer`` (co-moment matrices). An empty part leaves the other
    unchanged: ``n_b / n`` is taken as 0 when ``n == 0``.
    """
    n = n_a + n_b
    share_b = n_b / np.maximum(n, 1)
    delta = mean_b - mean_a
    mean = mean_a + delta * share_b
    m2 = m2_a + m2_b + cross(delta, delta) * (n_a * share_b)
    return n, mean, m2


def _column_moments(columns: np.ndarray, finite: np.ndarray):
    """Per column (row of the feature-major batch) over its finite entries: count, mean,
    M2 = sum (x - mean)**2, min, max. An empty column has mean 0, M2 0, min +inf and max -inf (the
    identities of the merge)."""
    all_finite = bool(finite.all())

    def filled(values: np.ndarray, fill: float) -> np.ndarray:
        return values if all_finite else np.where(finite, values, fill)

    count = finite.sum(axis=1)
    mean = filled(columns, 0.0).sum(axis=1) / np.maximum(count, 1)
    deviation = filled(columns - mean[:, None], 0.0)
    m2 = np.einsum("ij,ij->i", deviation, deviation)
    low = filled(columns, np.inf).min(axis=1, initial=np.inf)
    high = filled(columns, -np.inf).max(axis=1, initial=-np.inf)
    return count, mean, m2, low, high


def _optional(value: float) -> Optional[float]:
    """A float for JSON, or None when the value is undefined (NaN)."""
    return None if np.isnan(value) else float(value)


class BlockStats:
    """Window statistics of a block of feature columns, column ``j`` binned on its own ``edges[j]``.

    ``update(matrix)`` takes an (instances x features) batch and reduces every column in one vectorised
    pass over a feature-major copy, then sorts each column once: the histogram then takes one binary
    search per edge (`udfs.histogram.BlockLayout.counts`) and the KLL sketches, whose compactions sort,
    run about three times faster on sorted input (KLL's error bound holds for any input order). Per column: NaN is a missing value, counted in ``missing``; +-inf is counted in ``rejected``;
    neither is folded into any statistic. ``merge(other)`` combines two blocks on the same edges: exactly
    for counts, moments, extremes and histograms, and for percentiles exactly in the exact regime and
    within the KLL rank error otherwise (see :mod:`udfs.quantiles`: ``exact_limit`` rows, ``kll_k``).
    """

    __slots__ = ("layout", "n", "mean", "m2", "min", "max", "counts", "missing", "rejected", "quantiles")

    def __init__(self, edges, exact_limit: int = EXACT_LIMIT, kll_k: int = KLL_K):
        self.layout = BlockLayout(edges)
        width = self.layout.n_columns
        self.n = np.zeros(width, dtype=np.int64)
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)
        self.min = np.full(width, np.inf)
        self.max = np.full(width, -np.inf)
        self.counts = np.zeros(self.layout.n_slots, dtype=np.int64)
        self.missing = np.zeros(width, dtype=np.int64)
        self.rejected = np.zeros(width, dtype=np.int64)
        self.quantiles = BlockQuantiles(width, exact_limit, kll_k)

    @property
    def n_features(self) -> int:
        return self.layout.n_columns

    def update(self, matrix) -> None:
        """Add a batch: an (instances x n_features) array-like of numbers (1-D for a one-feature block)."""
        matrix = np.asarray(matrix, dtype=float)
        if matrix.ndim == 1 and self.n_features == 1:
            matrix = matrix[:, None]
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(f"expected an (instances x {self.n_features}) batch, got shape {matrix.shape}")
        columns = np.ascontiguousarray(matrix.T)  # feature-major: every reduction runs along contiguous memory
        finite = np.isfinite(columns)
        missing = np.isnan(columns).sum(axis=1)
        self.missing += missing
        self.rejected += columns.shape[1] - finite.sum(axis=1) - missing
        count, mean, m2, low, high = _column_moments(columns, finite)
        self.n, self.mean, self.m2 = _chan_combine(self.n, self.mean, self.m2, count, mean, m2)
        np.minimum(self.min, low, out=self.min)
        np.maximum(self.max, high, out=self.max)
        ordered = np.sort(columns if finite.all() else np.where(finite, columns, np.nan), axis=1)  # NaN last
        self.counts += self.layout.counts(ordered, count)
        self.quantiles.update(ordered)

    def merge(self, other: "BlockStats") -> None:
        """Fold ``other`` (same edges) into this block; ``other`` is left unchanged."""
        if self.layout != other.layout:
            raise ValueError("cannot merge BlockStats built on different edges")
        self.n, self.mean, self.m2 = _chan_combine(self.n, self.mean, self.m2, other.n, other.mean, other.m2)
        np.minimum(self.min, other.min, out=self.min)
        np.maximum(self.max, other.max, out=self.max)
        self.counts += other.counts
        self.missing += other.missing
        self.rejected += other.rejected
        self.quantiles.merge(other.quantiles)

    def histogram_counts(self) -> list[np.ndarray]:
        """Per feature, the counts in the drift layout ``[underflow, bin_1..bin_k, overflow]``."""
        return self.layout.split(self.counts.copy())

    def cdf(self, feature: int) -> WindowCdf:
        """The window CDF of one feature (``cdf(points)``, ``n``, ``epsilon``) for two-sample tests."""
        return self.quantiles.cdf(feature)

    def results(self) -> list[dict]:
        """Per feature, JSON-ready statistics; every value is an int, a float, a list or None (never NaN).

        ``count, mean, min, max`` (None when the window has no finite value), ``stddev`` and
        ``variance`` (sample, ddof=1: ``M2 / (n - 1)``; None when count < 2), ``stddev_pop`` (ddof=0:
        ``sqrt(M2 / n)``; None when count is 0), ``p25, p50, p75, iqr = p75 - p25`` (None when empty),
        ``histogram`` = ``{"edges", "counts" (the k inner bins), "underflow", "overflow"}``, ``missing``
        (NaN values) and ``rejected`` (+-inf values).
        """
        n = self.n
        present = n > 0
        variance = np.where(n > 1, self.m2 / np.maximum(n - 1, 1), np.nan)
        stddev_pop = np.where(present, np.sqrt(self.m2 / np.maximum(n, 1)), np.nan)
        p25, p50, p75 = self.quantiles.quantiles(PERCENTILES).T
        columns = {
            "mean": np.where(present, self.mean, np.nan), "min": np.where(present, self.min, np.nan),
            "max": np.where(present, self.max, np.nan), "stddev": np.sqrt(variance), "stddev_pop": stddev_pop,
            "variance": variance, "p25": p25, "p50": p50, "p75": p75, "iqr": p75 - p25,
        }
        histograms = self.histogram_counts()
        return [{
            "count": int(n[j]),
            **{name: _optional(values[j]) for name, values in columns.items()},
            "histogram": {
                "edges": self.layout.edges(j).tolist(),
                "counts": histograms[j][1:-1].tolist(),
                "underflow": int(histograms[j][0]),
                "overflow": int(histograms[j][-1]),
            },
            "missing": int(self.missing[j]),
            "rejected": int(self.rejected[j]),
        } for j in range(self.n_features)]


class CovarianceAccumulator:
    """Mergeable sample covariance and Pearson correlation of ``n_features`` features.

    ``update(rows)`` takes a 2-D batch (rows x features); a row holding any NaN or inf is rejected as a
    whole (counted in ``rejected``), so every accepted row contributes to every pair.
    """

    __slots__ = ("n_features", "n", "mean", "comoment", "rejected")

    def __init__(self, n_features: int):
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        self.n_features = n_features
        self.n = 0
        self.mean = np.zeros(n_features)
        self.comoment = np.zeros((n_features, n_features))
        self.rejected = 0

    def update(self, rows: np.ndarray) -> None:
        """Add a batch of rows, shape ``(m, n_features)``."""
        rows = np.asarray(rows, dtype=float).reshape(-1, self.n_features)
        finite = np.isfinite(rows).all(axis=1)
        self.rejected += int(len(rows) - finite.sum())
        rows = rows[finite]
        if len(rows) == 0:
            return
        batch_mean = rows.mean(axis=0)
        centred = rows - batch_mean
        self.n, self.mean, self.comoment = _chan_combine(
            self.n, self.mean, self.comoment, len(rows), batch_mean, centred.T @ centred, np.multiply.outer)

    def merge(self, other: "CovarianceAccumulator") -> None:
        """Fold ``other`` (same number of features) into this accumulator."""
        if other.n_features != self.n_features:
            raise ValueError(f"cannot merge {other.n_features} features into {self.n_features}")
        self.n, self.mean, self.comoment = _chan_combine(
            self.n, self.mean, self.comoment, other.n, other.mean, other.comoment, np.multiply.outer)
        self.rejected += other.rejected

    def covariance(self) -> np.ndarray:
        """Sample covariance ``C / (n - 1)`` (all NaN when n < 2)."""
        if self.n < 2:
            return np.full_like(self.comoment, np.nan)
        return self.comoment / (self.n - 1)

    def correlation(self) -> np.ndarray:
        """Pearson correlation ``C_xy / sqrt(C_xx C_yy)`` (diagonal exactly 1); NaN where a feature has zero variance."""
        scale = np.sqrt(np.diag(self.comoment))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = self.comoment / np.multiply.outer(scale, scale)
        corr[~np.isfinite(corr)] = np.nan
        np.fill_diagonal(corr, np.where(scale > 0, 1.0, np.nan))
        return np.clip(corr, -1.0, 1.0) if self.n >= 2 else np.full_like(corr, np.nan)

    def result(self) -> dict:
        """``{"count", "covariance", "correlation", "rejected"}``; matrices as nested lists, None where undefined."""
        return {
            "count": self.n,
            "covariance": _matrix(self.covariance()),
            "correlation": _matrix(self.correlation()),
            "rejected": self.rejected,
        }


def _matrix(values: np.ndarray) -> list[list[Optional[float]]]:
    return [[_optional(v) for v in row] for row in values]
