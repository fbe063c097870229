"""Per-value outlier rules against baseline statistics, vectorised with numpy broadcasting.

``values`` may be 1-D (one feature) or 2-D (rows x features) with per-feature bounds broadcast along the
last axis. A value violates a rule when it lies strictly outside ``[lower, upper]``; NaN never violates
(invalid values are rejected before, with a reason). The bounds are computable on their own
(:func:`sigma_bounds`) so a caller can compare elsewhere (e.g. on the JVM side).
"""
from __future__ import annotations

import numpy as np


def sigma_bounds(mean, std, k: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """``(mean - k * std, mean + k * std)`` per feature."""
    mean = np.asarray(mean, dtype=float)
    spread = k * np.asarray(std, dtype=float)
    return mean - spread, mean + spread


def violations(values, lower, upper) -> np.ndarray:
    """Boolean mask: True where ``value < lower`` or ``value > upper``."""
    values = np.asarray(values, dtype=float)
    return (values < lower) | (values > upper)


def sigma_rule(values, mean, std, k: float = 3.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance-based rule of the thesis: a value further than ``k`` baseline std from the baseline mean.

    Returns ``(mask, lower, upper)`` with ``lower, upper = sigma_bounds(mean, std, k)``.
    """
    lower, upper = sigma_bounds(mean, std, k)
    return violations(values, lower, upper), lower, upper


def range_rule(values, lo, hi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A value outside the baseline range ``[lo, hi]`` (unseen in training). Returns ``(mask, lo, hi)``."""
    lower, upper = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    return violations(values, lower, upper), lower, upper


def beyond_count(window_cdf, n: int, epsilon: float, lower: float, upper: float) -> float:
    """How many of a window's ``n`` values lie beyond ``[lower, upper]``, from its CDF (`udfs.two_sample.WindowCdf`):
    ``n (F(lower^-) + 1 - F(upper))``, less what a sketch's rank error ``epsilon`` could have added on each side
    (exact when ``epsilon`` is 0: windows of up to 2,048 values), so that a sketch never adds outliers."""
    below = float(window_cdf(np.array([np.nextafter(lower, -np.inf)]))[0])
    above = 1.0 - float(window_cdf(np.array([upper]))[0])
    return round(float(n * (max(below - epsilon, 0.0) + max(above - epsilon, 0.0))), 9)  # exact counts stay whole
