"""Distances between a window histogram ``p`` and the baseline histogram ``q``.

Both are *counts* in the drift layout ``[underflow, bin_1..bin_k, overflow]`` (length ``len(edges) + 1``,
see :mod:`udfs.histogram`). Every function takes 1-D arrays (one histogram) or 2-D arrays (windows x
bins, broadcast against each other: typically many windows against one baseline) and returns a float
or a 1-D array with one value per row; no Python loop runs over rows.

Normalisation: ``p_hat = p / sum(p)``. KL and PSI need every bin positive, so they smooth explicitly:
``pseudo_count`` (default 0.5, the Krichevsky-Trofimov / Jeffreys prior) is added to every count of
both histograms, underflow and overflow included, before normalising::

    p_tilde_i = (p_i + a) / (sum(p) + a * B)        (B = number of slots)

No bin is ever skipped. JS, Hellinger and Wasserstein are finite with empty bins and use ``p_hat``
unsmoothed. A row with no mass at all (an all-zero histogram) has no distribution: JS, Hellinger and
Wasserstein return NaN for it; KL and PSI compare the smoothed (then uniform) histogram.

The two-sample tests ``ks`` and ``cvm`` (:data:`TESTS`, :mod:`udfs.two_sample`) compare the window's CDF
with the baseline's training sample instead; :data:`METRIC_NAMES` lists every name.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from scipy.special import rel_entr

from udfs import two_sample
from udfs.histogram import bin_centres

DEFAULT_PSEUDO_COUNT = 0.5


def _as_pair(p, q) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(f"histograms differ in length: {p.shape[-1]} vs {q.shape[-1]}")
    if np.any(p < 0) or np.any(q < 0):
        raise ValueError("histogram counts must be non-negative")
    return p, q


def _normalised(counts: np.ndarray) -> np.ndarray:
    """``counts / sum(counts)`` along the last axis; all-zero rows become NaN."""
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / total


def _smoothed(counts: np.ndarray, pseudo_count: float) -> np.ndarray:
    """``(counts + a) / (sum(counts) + a * B)``: strictly positive for ``a > 0``."""
    if pseudo_count <= 0:
        raise ValueError(f"pseudo_count must be positive, got {pseudo_count}")
    return _normalised(counts + pseudo_count)


def _scalar_if_1d(values: np.ndarray):
    return float(values) if values.ndim == 0 else values


def kl_divergence(p, q, pseudo_count: float = DEFAULT_PSEUDO_COUNT):
    """Kullback-Leibler divergence of the window from the baseline, natural log, smoothed.

    .. math:: D_{KL}(\\tilde p \\| \\tilde q) = \\sum_i \\tilde p_i \\ln(\\tilde p_i / \\tilde q_i)

    with ``p_tilde, q_tilde`` the pseudo-count-smoothed distributions (module docstring). In [0, inf),
    always finite.
    """
    p, q = _as_pair(p, q)
    p_tilde, q_tilde = _smoothed(p, pseudo_count), _smoothed(q, pseudo_count)
    return _scalar_if_1d(rel_entr(p_tilde, q_tilde).sum(axis=-1))


def psi(p, q, pseudo_count: float = DEFAULT_PSEUDO_COUNT):
    """Population Stability Index, natural log, smoothed.

    .. math:: PSI = \\sum_i (\\tilde p_i - \\tilde q_i) \\ln(\\tilde p_i / \\tilde q_i)
              = D_{KL}(\\tilde p \\| \\tilde q) + D_{KL}(\\tilde q \\| \\tilde p)

    Symmetric, in [0, inf), always finite.
    """
    p, q = _as_pair(p, q)
    p_tilde, q_tilde = _smoothed(p, pseudo_count), _smoothed(q, pseudo_count)
    return _scalar_if_1d(((p_tilde - q_tilde) * np.log(p_tilde / q_tilde)).sum(axis=-1))


def js_divergence(p, q):
    """Jensen-Shannon divergence in base 2, in [0, 1]; no smoothing needed.

    .. math:: JS = \\tfrac12 D_{KL}(\\hat p \\| m) + \\tfrac12 D_{KL}(\\hat q \\| m), \\quad
              m = \\tfrac12 (\\hat p + \\hat q), \\quad \\text{logs base 2}

    Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2``. Symmetric.
    """
    p, q = _as_pair(p, q)
    p_hat, q_hat = _normalised(p), _normalised(q)
    m = (p_hat + q_hat) / 2.0
    js = (rel_entr(p_hat, m) + rel_entr(q_hat, m)).sum(axis=-1) / (2.0 * np.log(2.0))
    return _scalar_if_1d(np.clip(js, 0.0, 1.0))


def hellinger(p, q):
    """Hellinger distance, in [0, 1]; no smoothing needed.

    .. math:: H(\\hat p, \\hat q) = \\sqrt{\\tfrac12 \\sum_i (\\sqrt{\\hat p_i} - \\sqrt{\\hat q_i})^2}
              = \\sqrt{1 - \\sum_i \\sqrt{\\hat p_i \\hat q_i}}
    """
    p, q = _as_pair(p, q)
    diff = np.sqrt(_normalised(p)) - np.sqrt(_normalised(q))
    return _scalar_if_1d(np.sqrt(0.5 * np.square(diff).sum(axis=-1)))


def support_points(edges) -> np.ndarray:
    """Where Wasserstein places each slot's mass: ``[edges[0], centres..., edges[-1]]``.

    Inner bins sit at their centres; underflow at the first edge and overflow at the last, the nearest
    point any such value can be. W1 is therefore a lower bound when values fall outside the edges.
    """
    edges = np.asarray(edges, dtype=float)
    return np.concatenate([edges[:1], bin_centres(edges), edges[-1:]])


def cdf_gaps(p, q) -> np.ndarray:
    """``|P_j - Q_j|`` for the slots ``j = 0..B-2``: the gaps between the cumulative shares of ``p_hat`` and
    ``q_hat`` (the last slot's are both 1). Wasserstein weighs them with the support's spacing."""
    p, q = _as_pair(p, q)
    return np.abs(np.cumsum(_normalised(p) - _normalised(q), axis=-1)[..., :-1])


def wasserstein(p, q, edges, normalize_by=None):
    """1-D Wasserstein-1 (earth mover's) distance, in the feature's units.

    With the slot masses placed at ``s = support_points(edges)`` and ``P_j, Q_j`` the cumulative shares
    of ``p_hat, q_hat`` up to slot ``j`` (:func:`cdf_gaps`):

    .. math:: W_1 = \\int |F_p(x) - F_q(x)| dx = \\sum_{j=0}^{B-2} |P_j - Q_j| (s_{j+1} - s_j)

    the gaps ``s_{j+1} - s_j`` being the real half-bin widths of the neighbouring bins. For mass inside
    the edges this equals ``scipy.stats.wasserstein_distance(centres, centres, p, q)``.
    ``normalize_by`` (positive: a scalar, or one value per row, typically the baseline standard deviation)
    divides the result, making it unit-free.
    """
    p, q = _as_pair(p, q)
    points = support_points(edges)
    if p.shape[-1] != len(points):
        raise ValueError(f"histograms have {p.shape[-1]} slots; edges of length {len(points) - 1} need {len(points)}")
    distance = cdf_gaps(p, q) @ np.diff(points)
    if normalize_by is not None:
        distance = distance / np.asarray(normalize_by, dtype=float)
    return _scalar_if_1d(np.asarray(distance))


def _with_edges(metric: Callable) -> Callable:
    """Adapt a histogram-only metric to the common signature; it has no units to normalise."""
    def adapted(p, q, edges, normalize_by=None):
        if normalize_by is not None:
            raise ValueError(f"normalize_by applies to wasserstein only, not {metric.__name__}")
        return metric(p, q)
    return adapted


METRICS: dict[str, Callable] = {
    "wasserstein": wasserstein,
    "kl": _with_edges(kl_divergence),
    "js": _with_edges(js_divergence),
    "psi": _with_edges(psi),
    "hellinger": _with_edges(hellinger),
}
"""Every histogram metric by its spec name, with the common signature ``(p, q, edges, normalize_by=None)``."""

TESTS: dict[str, Callable] = {"ks": two_sample.ks_statistic, "cvm": two_sample.cvm_statistic}
"""The two-sample tests by spec name, signature ``(window_cdf, n, epsilon, sample)``
(:mod:`udfs.two_sample`): they read the window's CDF, not its histogram."""

METRIC_NAMES: tuple[str, ...] = (*METRICS, *TESTS)
"""Every drift metric name a monitor spec may use: the single list."""


def compute(metric: str, p, q, edges, normalize_by: Optional[float] = None):
    """Histogram metric ``metric`` (a key of :data:`METRICS`) of window ``p`` against baseline ``q``."""
    if metric in TESTS:
        raise ValueError(f"{metric} is a two-sample test on the window's CDF: call udfs.drift.TESTS[{metric!r}]")
    try:
        function = METRICS[metric]
    except KeyError:
        raise ValueError(f"unknown drift metric {metric!r} (known: {', '.join(METRIC_NAMES)})") from None
    return function(p, q, edges, normalize_by)
