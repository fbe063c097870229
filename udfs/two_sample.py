"""Two-sample tests between a window and the training data: Kolmogorov-Smirnov and Cramér-von Mises.

The window is seen only through its CDF, ``window_cdf(points) -> fraction of window values <= point``
(exact, or read from the window's quantile sketch), of shape ``points.shape`` for one window or
``(windows, len(points))`` for a batch; the training data through the baseline's sorted ``sample``
(:attr:`udfs.baseline.FeatureBaseline.sample`, ``m`` values, CDF ``G_m``). A sketch answers ranks to
within ``epsilon * n`` (``epsilon`` its normalised rank error, 0 when exact); the statistics below take
off what that error could have added, so a flag is never caused by the sketch alone.

Both statistics are evaluated only at the distinct sample values ``u_1 < ... < u_J`` and just below them
(``nextafter(u_j, -inf)``): between two sample values ``G_m`` is constant and ``F_n`` non-decreasing,
which is all the tests need. With ``epsilon = 0`` they equal ``scipy.stats.ks_2samp`` and
``scipy.stats.cramervonmises_2samp`` on the raw values (no ties between window and sample).

Thresholds (``threshold: auto``) are the tests' own two-sample nulls for continuous data at
``rate`` with sizes ``m`` and ``n``; with ties the tests are conservative.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
from scipy.optimize import brentq
from scipy.special import gammaln, kv
from scipy.stats import kstwo

WindowCdf = Callable[[np.ndarray], np.ndarray]


def empirical_cdf(samples) -> WindowCdf:
    """The exact ``window_cdf`` of one window (1-D ``samples``) or of each row of a 2-D batch."""
    ordered = np.sort(np.asarray(samples, dtype=float), axis=-1)
    if ordered.ndim == 1:
        return lambda points: np.searchsorted(ordered, points, side="right") / len(ordered)
    return lambda points: np.stack([np.searchsorted(row, points, side="right") for row in ordered]) / ordered.shape[-1]


def _sample_steps(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct sample values ``u_j``, ``G_m(u_j)`` and the left limits ``G_m(u_j^-) = G_m(u_{j-1})``."""
    sample = np.asarray(sample, dtype=float)
    points = np.unique(sample)
    at = np.searchsorted(sample, points, side="right") / len(sample)
    return points, at, np.concatenate([[0.0], at[:-1]])


def ks_statistic(window_cdf: WindowCdf, n, epsilon: float, sample: np.ndarray):
    """Two-sample Kolmogorov-Smirnov distance, less the sketch's rank error.

    .. math:: D = \\sup_x |F_n(x) - G_m(x)| = \\max_j \\max(|F_n(u_j) - G_m(u_j)|, |F_n(u_j^-) - G_m(u_j^-)|)

    returned as ``max(D - epsilon, 0)``: since ``|F_sketch - F_n| <= epsilon`` everywhere, the exact
    ``D`` is at least that. ``n`` (the window size) is not needed by KS; it keeps the signature of
    :func:`cvm_statistic`. A float for one window, else one value per window.
    """
    points, at, below = _sample_steps(sample)
    gap = np.maximum(np.abs(window_cdf(points) - at), np.abs(window_cdf(np.nextafter(points, -np.inf)) - below))
    return np.maximum(gap.max(axis=-1) - epsilon, 0.0)


def cvm_statistic(window_cdf: WindowCdf, n, epsilon: float, sample: np.ndarray):
    """Two-sample Cramér-von Mises ``T`` (Anderson 1962; scipy's ``cramervonmises_2samp`` statistic).

    With ``N = n + m`` and ``d = F_n - G_m`` summed over the pooled points (right-continuous CDFs):

    .. math:: T = \\frac{nm}{N^2} \\Big[\\sum_{\\text{sample } y} d(y)^2 + \\sum_{\\text{window } w} d(w)^2\\Big]

    The window points are not stored, but between two sample values ``G_m = g`` is constant and the
    ``K = n (F_n(u_{j+1}^-) - F_n(u_j))`` window points there carry ``F_n = a + t/n`` (``a = F_n(u_j)``,
    ``t = 1..K``), so with ``c = a - g``:

    .. math:: \\sum_{t=1}^{K} (c + t/n)^2 = K c^2 + c K (K + 1) / n + K (K + 1)(2K + 1) / (6 n^2)

    (window points equal to a sample value ``u_j`` count ``d(u_j)^2`` each). The sketch's error enters as
    the L2 triangle inequality over the ``N`` pooled points, ``T_{lower} = \\frac{nm}{N^2}
    \\max(\\sqrt{T N^2 / (nm)} - \\epsilon \\sqrt N, 0)^2`` (first order: the sketch also places the window
    points). A float for one window, else one value per window.
    """
    points, at, below = _sample_steps(sample)
    m = len(sample)
    cdf_at, cdf_below = window_cdf(points), window_cdf(np.nextafter(points, -np.inf))
    on_sample = (m * (at - below) * np.square(cdf_at - at)).sum(axis=-1)
    squares = on_sample + _window_point_squares(cdf_at, cdf_below, at, n)
    scale = n * m / (n + m) ** 2
    return scale * np.square(np.maximum(np.sqrt(squares) - epsilon * np.sqrt(n + m), 0.0))


def _window_point_squares(cdf_at, cdf_below, at, n):
    """``sum d(w)^2`` over the window points: those on a sample value ``u_j``, then those in each gap."""
    on_values = (n * (cdf_at - cdf_below) * np.square(cdf_at - at)).sum(axis=-1)
    start = np.concatenate([np.zeros_like(cdf_at[..., :1]), cdf_at], axis=-1)  # F_n(u_j), F_n(-inf) = 0
    end = np.concatenate([cdf_below, np.ones_like(cdf_at[..., :1])], axis=-1)  # F_n(u_{j+1}^-), F_n(inf) = 1
    gaps = _progression_squares(start - np.concatenate([[0.0], at]), n * np.maximum(end - start, 0.0), n)
    return on_values + gaps.sum(axis=-1)


def _progression_squares(c, count, n):
    """``sum_{t=1}^{K} (c + t/n)^2`` in closed form, ``K = count`` (any non-negative real)."""
    return count * c ** 2 + c * count * (count + 1) / n + count * (count + 1) * (2 * count + 1) / (6 * n ** 2)


def ks_threshold(m: int, n, rate: float):
    """Critical ``D`` of the two-sample KS test at ``rate`` for sizes ``m`` and ``n`` (array ``n`` allowed).

    scipy's asymptotic two-sample null (``ks_2samp(method="asymp")``): ``D`` is distributed as the
    one-sample statistic of the effective size ``round(m n / (m + n))``, so the threshold is
    ``kstwo.isf(rate, round(m n / (m + n)))``.
    """
    n = np.asarray(n, dtype=float)
    effective = np.maximum(np.round(m * n / (m + n)), 1).astype(int)
    return np.vectorize(_kstwo_isf, otypes=[float])(rate, effective)


@lru_cache(maxsize=4096)
def _kstwo_isf(rate: float, size: int) -> float:
    """``kstwo.isf`` (about 15 ms a call), remembered: jobs and benchmarks ask for the same few sizes."""
    return float(kstwo.isf(rate, size))


def cvm_limit_cdf(x: float) -> float:
    """CDF of the limiting Cramér-von Mises law (Csörgő & Faraway 1996, eq. 1.3):

    .. math:: F(x) = \\frac{1}{\\pi^{3/2}\\sqrt x} \\sum_{k \\ge 0} \\frac{\\Gamma(k + 1/2)}{k!} \\sqrt{4k + 1}
              \\, e^{-y_k} K_{1/4}(y_k), \\quad y_k = (4k + 1)^2 / (16 x)
    """
    k = np.arange(20)
    y = (4 * k + 1) ** 2 / (16 * x)
    terms = np.exp(gammaln(k + 0.5) - gammaln(k + 1)) * np.sqrt(4 * k + 1) * np.exp(-y) * kv(0.25, y)
    return float(terms.sum() / (np.pi ** 1.5 * np.sqrt(x)))


def cvm_threshold(m: int, n, rate: float):
    """Critical ``T`` of the two-sample CVM test at ``rate`` (array ``n`` allowed).

    scipy's asymptotic two-sample null (Anderson 1962): with ``N = m + n`` and ``k = m n``,
    ``E[T] = (1 + 1/N) / 6``, ``Var[T] = (N + 1)(4kN - 3(m^2 + n^2) - 2k) / (45 N^2 \\cdot 4k)`` and
    ``1/6 + (T - E[T]) / sqrt(45 Var[T])`` follows the limiting law, whose upper ``rate`` point ``z``
    (:func:`cvm_limit_cdf`) gives ``T = E[T] + sqrt(45 Var[T]) (z - 1/6)``.
    """
    mean, deviation = _cvm_moments(m, np.asarray(n, dtype=float))
    limit_point = brentq(lambda x: 1.0 - cvm_limit_cdf(x) - rate, 0.01, 10.0)
    return mean + deviation * (limit_point - 1 / 6)


def ks_p_value(m: int, n, statistic):
    """The two-sample KS test's p-value of ``statistic`` at sizes ``m`` and ``n`` (arrays allowed): the null of
    :func:`ks_threshold`, ``kstwo.sf(D, round(m n / (m + n)))``, scipy's ``ks_2samp(method="asymp")``. NaN
    where the statistic is (a window without values)."""
    n, statistic = np.asarray(n, dtype=float), np.asarray(statistic, dtype=float)
    effective = np.maximum(np.round(m * n / (m + n)), 1)
    return np.where(np.isnan(statistic), np.nan, kstwo.sf(np.nan_to_num(statistic), effective))


def cvm_p_value(m: int, n, statistic):
    """The two-sample CVM test's p-value of ``statistic`` at sizes ``m`` and ``n`` (arrays allowed): the
    asymptotic null of :func:`cvm_threshold` (scipy's ``cramervonmises_2samp(method="asymptotic")``)."""
    n, statistic = np.asarray(n, dtype=float), np.asarray(statistic, dtype=float)
    mean, deviation = _cvm_moments(m, n)
    limit = 1 / 6 + (np.nan_to_num(statistic) - mean) / deviation
    tail = np.vectorize(lambda x: 1.0 - cvm_limit_cdf(x) if x > 1e-3 else 1.0, otypes=[float])(limit)
    return np.where(np.isnan(statistic), np.nan, np.clip(tail, 0.0, 1.0))


def _cvm_moments(m: int, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``E[T]`` and ``sqrt(45 Var[T])`` of the two-sample CVM statistic (Anderson 1962; :func:`cvm_threshold`)."""
    total, product = m + n, m * n
    mean = (1 + 1 / total) / 6
    variance = (total + 1) * (4 * product * total - 3 * (m ** 2 + n ** 2) - 2 * product) / (45 * total ** 2 * 4 * product)
    return mean, np.sqrt(45 * variance)
