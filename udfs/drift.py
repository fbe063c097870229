"""Distances between a window histogram ``p`` and the baseline histogram ``q``.

Both are *counts* in a feature's drift layout: ``[underflow, bin_1..bin_k, overflow]`` for a numeric
feature (length ``len(edges) + 1``, see :mod:`udfs.histogram`), ``[c_1..c_K, other, unseen]`` for a
categorical one (:mod:`udfs.categorical`). Every function takes 1-D arrays (one histogram) or 2-D arrays
(windows x slots, broadcast against each other: typically many windows against one baseline) and returns
a float or a 1-D array with one value per row; no Python loop runs over rows. Only Wasserstein reads
the slots' positions (the numeric edges); the others treat the slots as unordered, so they apply to both
layouts unchanged.

Normalisation: ``p_hat = p / sum(p)``. KL, PSI and chi2 need every baseline slot positive, so they smooth
explicitly: ``pseudo_count`` (default 0.5, the Krichevsky-Trofimov / Jeffreys prior) is added to every
count (KL and PSI: of both histograms; chi2: of the baseline), underflow, overflow and unseen included,
before normalising::

    p_tilde_i = (p_i + a) / (sum(p) + a * B)        (B = number of slots)

No slot is ever skipped. JS, Hellinger and Wasserstein are finite with empty slots and use ``p_hat``
unsmoothed. A row with no mass at all (an all-zero histogram) has no distribution: JS, Hellinger,
Wasserstein and chi2 return NaN for it; KL and PSI compare the smoothed (then uniform) histogram.

The two-sample tests ``ks`` and ``cvm`` (:data:`TESTS`, :mod:`udfs.two_sample`) compare the window's CDF
with the baseline's training sample instead, and ``missing_rate`` compares the share of missing values;
:data:`METRIC_NAMES` lists every name and :data:`METRICS_BY_TYPE` which apply to which feature type.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from scipy.special import rel_entr

from contract.spec import CATEGORICAL, NUMERIC, NUMERIC_ONLY_METRICS

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


def chi2(p, q, pseudo_count: float = DEFAULT_PSEUDO_COUNT):
    """Pearson's chi-square statistic of the window counts against the baseline frequencies.

    .. math:: X^2 = \\sum_i (p_i - n \\tilde q_i)^2 / (n \\tilde q_i), \\quad n = \\sum_i p_i

    with ``q_tilde`` the baseline smoothed as in the module docstring, so that a slot empty in the
    baseline (a categorical feature's ``unseen``, a numeric feature's underflow and overflow) expects
    ``n a / (sum(q) + a B)`` values and the statistic stays finite. Equals
    ``scipy.stats.chisquare(p, n * q_tilde).statistic``. Not a distance: without drift it is about
    ``chi2(B - 1) * (1 + n / m)`` (the window and the ``m`` training values both sampled), and with drift
    it grows in proportion to ``n``. NaN for an empty window.
    """
    p, q = _as_pair(p, q)
    expected = p.sum(axis=-1, keepdims=True) * _smoothed(q, pseudo_count)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _scalar_if_1d((np.square(p - expected) / expected).sum(axis=-1))


def missing_rate(missing, total, baseline_rate):
    """``|missing / total - baseline_rate|``: how far the window's share of missing values is from the
    baseline's (``total`` = present + missing values of the window). Broadcasts; NaN where ``total`` is 0."""
    missing, total = np.asarray(missing, dtype=float), np.asarray(total, dtype=float)
    if np.any(missing < 0) or np.any(missing > total):
        raise ValueError("missing counts must lie in [0, total]")
    with np.errstate(invalid="ignore", divide="ignore"):
        return _scalar_if_1d(np.abs(missing / total - baseline_rate))


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
"""The default histogram metrics by spec name, with the common signature ``(p, q, edges, normalize_by=None)``."""

OPT_IN_METRICS: dict[str, Callable] = {"chi2": _with_edges(chi2)}
"""Histogram metrics computed only on request, same signature: ``chi2`` (a test statistic, growing with
the window size under drift)."""

LAYOUT_METRICS: dict[str, Callable] = {**METRICS, **OPT_IN_METRICS}
"""Every metric computed from drift-layout counts (:func:`compute`)."""

TESTS: dict[str, Callable] = {"ks": two_sample.ks_statistic, "cvm": two_sample.cvm_statistic}
"""The two-sample tests by spec name, signature ``(window_cdf, n, epsilon, sample)``
(:mod:`udfs.two_sample`): they read the window's CDF, not its histogram."""

MISSING_RATE = "missing_rate"
"""The metric of the share of missing values (:func:`missing_rate`), for features of every type."""

OUTLIER_RATE = "outlier_rate"
"""The metric of the share of values beyond the sigma bounds (`udfs.outliers.beyond_count` in the window step), for
numeric features: their tails against the training sample's (`udfs.calibration.outlier_rate_thresholds`)."""

METRIC_NAMES: tuple[str, ...] = (*METRICS, *TESTS, *OPT_IN_METRICS, MISSING_RATE, OUTLIER_RATE)
"""Every drift metric name a monitor spec may use: the single list."""

NUMERIC_ONLY: tuple[str, ...] = NUMERIC_ONLY_METRICS
"""The metrics that need ordered values (edges, a CDF): refused for a categorical feature."""

CATEGORICAL_METRICS: tuple[str, ...] = tuple(name for name in METRIC_NAMES if name not in NUMERIC_ONLY)

METRICS_BY_TYPE: dict[str, tuple[str, ...]] = {NUMERIC: METRIC_NAMES, CATEGORICAL: CATEGORICAL_METRICS}
"""The metric names that apply to a feature (or output) of each type."""


def compute(metric: str, p, q, edges=None, normalize_by: Optional[float] = None):
    """Histogram metric ``metric`` (a key of :data:`LAYOUT_METRICS`) of window ``p`` against baseline ``q``;
    ``edges`` (a numeric feature's) only Wasserstein needs."""
    if metric in TESTS:
        raise ValueError(f"{metric} is a two-sample test on the window's CDF: call udfs.drift.TESTS[{metric!r}]")
    if metric == MISSING_RATE:
        raise ValueError("missing_rate compares missing counts, not histograms: call udfs.drift.missing_rate")
    if metric == OUTLIER_RATE:
        raise ValueError("outlier_rate counts values beyond the sigma bounds: call udfs.outliers.beyond_count")
    try:
        function = LAYOUT_METRICS[metric]
    except KeyError:
        raise ValueError(f"unknown drift metric {metric!r} (known: {', '.join(METRIC_NAMES)})") from None
    if edges is None and metric == "wasserstein":
        raise ValueError("wasserstein needs a numeric feature's edges (a categorical feature has none)")
    return function(p, q, edges, normalize_by)
