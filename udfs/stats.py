"""Mergeable window statistics: one accumulator per feature, one for the covariance of all features.

Both are small picklable objects (numpy arrays and a few numbers) that take whole numpy batches, so a
Flink window keeps them in keyed state and merges partial results. Moments combine exactly with the
parallel update of Chan, Golub and LeVeque (1979): for parts ``a`` and ``b`` with ``n = n_a + n_b`` and
``d = mean_b - mean_a``::

    mean = mean_a + d * n_b / n
    M2   = M2_a + M2_b + d**2 * n_a * n_b / n          (M2 = sum of squared deviations)

and for co-moments ``C = sum (x - mean_x)(y - mean_y)`` the same with ``d`` replaced by the outer
product ``d_x d_y``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from udfs.histogram import layout_counts
from udfs.quantiles import DEFAULT_CAPACITY, QuantileSketch

PERCENTILES = (0.25, 0.50, 0.75)


def _chan_combine(n_a: int, mean_a, m2_a, n_b: int, mean_b, m2_b):
    """Combine (count, mean, M2) of two parts; works for scalars and for mean vectors / co-moment matrices."""
    n = n_a + n_b
    if n_b == 0:
        return n_a, mean_a, m2_a
    if n_a == 0:
        return n_b, mean_b, m2_b
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    m2 = m2_a + m2_b + np.multiply.outer(delta, delta) * (n_a * n_b / n)
    return n, mean, m2


def _optional(value: float) -> Optional[float]:
    """A float for JSON, or None when the value is undefined (NaN)."""
    return None if np.isnan(value) else float(value)


class FeatureStats:
    """Statistics of one feature over a window, on the baseline's histogram ``edges``.

    ``update(values)`` takes a 1-D batch; NaN and +-inf values are not folded in but counted in
    ``rejected``. ``merge(other)`` combines two accumulators on the same edges exactly (moments, extremes,
    histogram) and within the sketch's rank error (percentiles; exact while the merged count is at most
    ``quantile_capacity``, see :mod:`udfs.quantiles`).
    """

    __slots__ = ("edges", "n", "mean", "m2", "min", "max", "counts", "rejected_nan", "rejected_inf", "sketch")

    def __init__(self, edges, quantile_capacity: int = DEFAULT_CAPACITY):
        self.edges = np.asarray(edges, dtype=float)
        if self.edges.ndim != 1 or len(self.edges) < 2 or np.any(np.diff(self.edges) <= 0):
            raise ValueError("edges must be a strictly increasing 1-D array of at least 2 values")
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.counts = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.rejected_nan = 0
        self.rejected_inf = 0
        self.sketch = QuantileSketch(quantile_capacity)

    def update(self, values: np.ndarray) -> None:
        """Add a batch of values (any 1-D array-like of numbers)."""
        values = np.asarray(values, dtype=float).ravel()
        finite = np.isfinite(values)
        if not finite.all():
            nan = int(np.isnan(values).sum())
            self.rejected_nan += nan
            self.rejected_inf += int(len(values) - finite.sum()) - nan
            values = values[finite]
        if len(values) == 0:
            return
        batch_mean = float(values.mean())
        batch_m2 = float(np.square(values - batch_mean).sum())
        self.n, self.mean, self.m2 = _chan_combine(self.n, self.mean, self.m2, len(values), batch_mean, batch_m2)
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        self.counts += layout_counts(values, self.edges)
        self.sketch.update(values)

    def merge(self, other: "FeatureStats") -> None:
        """Fold ``other`` (same edges) into this accumulator."""
        if not np.array_equal(self.edges, other.edges):
            raise ValueError("cannot merge FeatureStats built on different edges")
        self.n, self.mean, self.m2 = _chan_combine(self.n, self.mean, self.m2, other.n, other.mean, other.m2)
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.counts += other.counts
        self.rejected_nan += other.rejected_nan
        self.rejected_inf += other.rejected_inf
        self.sketch.merge(other.sketch)

    def histogram_counts(self) -> np.ndarray:
        """Counts in the drift layout ``[underflow, bin_1..bin_k, overflow]`` (length ``len(edges) + 1``)."""
        return self.counts.copy()

    def result(self) -> dict:
        """JSON-ready statistics; every value is an int, a float, a list or None (never NaN).

        ``count, mean, min, max`` (None when the window has no finite value), ``stddev`` and
        ``variance`` (sample, ddof=1; None when count < 2), ``stddev_pop`` (ddof=0; None when count is 0),
        ``p25, p50, p75, iqr`` (None when empty), ``histogram`` = ``{"edges", "counts" (the k inner
        bins), "underflow", "overflow"}`` and ``rejected`` = ``{"nan": n, "inf": n}``.
        """
        n = self.n
        variance = self.m2 / (n - 1) if n > 1 else np.nan
        p25, p50, p75 = self.sketch.quantiles(PERCENTILES) or (None, None, None)
        return {
            "count": n,
            "mean": float(self.mean) if n else None,
            "min": float(self.min) if n else None,
            "max": float(self.max) if n else None,
            "stddev": _optional(np.sqrt(variance)),
            "stddev_pop": float(np.sqrt(self.m2 / n)) if n else None,
            "variance": _optional(variance),
            "p25": p25,
            "p50": p50,
            "p75": p75,
            "iqr": p75 - p25 if n else None,
            "histogram": {
                "edges": self.edges.tolist(),
                "counts": self.counts[1:-1].tolist(),
                "underflow": int(self.counts[0]),
                "overflow": int(self.counts[-1]),
            },
            "rejected": {"nan": self.rejected_nan, "inf": self.rejected_inf},
        }


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
            self.n, self.mean, self.comoment, len(rows), batch_mean, centred.T @ centred)

    def merge(self, other: "CovarianceAccumulator") -> None:
        """Fold ``other`` (same number of features) into this accumulator."""
        if other.n_features != self.n_features:
            raise ValueError(f"cannot merge {other.n_features} features into {self.n_features}")
        self.n, self.mean, self.comoment = _chan_combine(
            self.n, self.mean, self.comoment, other.n, other.mean, other.comoment)
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
