"""Drift thresholds calibrated to the window size: ``threshold: auto``.

A drift metric between a window and the baseline is never 0 even without drift, because both
histograms are finite samples; how large it gets by chance depends on how many values the window holds.
:func:`drift_thresholds` returns, per feature, the value that a window of ``window_size`` values drawn
from the baseline's own distribution exceeds with probability ``false_alarm_rate``.

The null is two-sample. The baseline histogram is itself an estimate from ``count`` training rows, so
each Monte-Carlo draw compares a baseline-sized multinomial sample with a window-sized one, both from
the smoothed baseline distribution (the drift layout with :data:`udfs.drift.DEFAULT_PSEUDO_COUNT` added
to every slot, underflow and overflow included, then normalised)::

    pi     = (baseline slots + a) / sum(baseline slots + a)
    b ~ Multinomial(count, pi),   w ~ Multinomial(window_size, pi)
    threshold = quantile_{1 - false_alarm_rate} of metric(w, b)

Treating the baseline histogram as exact (a one-sample null) ignores its own noise: on Iris, JS at 1 %
for 4,000-value windows comes out near 0.0016 that way against about 0.067 here, so the naive
threshold would flag nearly every window.

Cost: per feature, :data:`DRAWS` baseline draws, paired with :data:`DRAWS` window draws on each of the
:data:`GRID` window sizes (powers of two; one loop iteration per grid size, not per draw), computed
once per (baseline, metric, rate, normalize) with the vectorised metrics, seeded and so reproducible.
A larger window can only lessen the sampling noise, so the grid is made non-increasing in the window
size (a running minimum, which also irons out Monte-Carlo wiggles). Other window sizes interpolate
linearly in (log size, log threshold); sizes beyond the grid take the nearest grid value: on Iris the
thresholds level off from about 4,000 values on, where the baseline's own 120-row noise dominates.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from udfs import drift
from udfs.baseline import Baseline

GRID = 2 ** np.arange(2, 17)  # window sizes 4 .. 65,536
DRAWS = 2000
SEED = 20_21_0611
_CACHE_SIZE = 32
_cache: "OrderedDict[tuple, dict[str, np.ndarray]]" = OrderedDict()


@dataclass(frozen=True)
class ThresholdCurves:
    """Per feature, the calibrated thresholds on the :data:`GRID` window sizes; small and picklable,
    so a job computes them once at start and ships them to its workers."""

    values: dict[str, np.ndarray]

    def at(self, window_size: int) -> dict[str, float]:
        """Per-feature threshold ``{feature: float}`` for a window of ``window_size`` values."""
        if window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        log_size = np.log(window_size)
        return {name: float(np.exp(np.interp(log_size, np.log(GRID), np.log(values))))
                for name, values in self.values.items()}


def threshold_curves(baseline: Baseline, metric: str, false_alarm_rate: float = 0.01, *,
                     normalize: bool = False) -> ThresholdCurves:
    """The calibrated `ThresholdCurves` of ``metric`` at ``false_alarm_rate`` for every feature.

    ``metric`` is a name in :data:`udfs.drift.METRICS`; ``normalize=True`` calibrates the Wasserstein
    distance divided by the baseline std (unit-free), matching ``wasserstein(..., normalize_by=std)``.
    The first call for a (baseline, metric, rate, normalize) computes the grid (about 0.2-1 s for the
    four Iris features, depending on machine load); later calls return it from a cache.
    """
    if not 0 < false_alarm_rate < 1:
        raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}")
    if metric not in drift.METRICS:
        raise ValueError(f"unknown drift metric {metric!r} (known: {', '.join(drift.METRICS)})")
    if normalize and metric != "wasserstein":
        raise ValueError(f"normalize applies to wasserstein only, not {metric}")
    return ThresholdCurves(_threshold_grid(baseline, metric, false_alarm_rate, normalize))


def drift_thresholds(baseline: Baseline, metric: str, window_size: int, false_alarm_rate: float = 0.01,
                     *, normalize: bool = False) -> dict[str, float]:
    """Per-feature threshold ``{feature: float}`` for a window of ``window_size`` values: the
    `threshold_curves` of ``metric`` read at ``window_size`` (tens of microseconds once calibrated)."""
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    return threshold_curves(baseline, metric, false_alarm_rate, normalize=normalize).at(window_size)


def _threshold_grid(baseline: Baseline, metric: str, rate: float, normalize: bool) -> dict[str, np.ndarray]:
    key = (baseline.fingerprint, metric, rate, normalize)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    grid = {name: _feature_grid(feature, metric, rate, normalize, index)
            for index, (name, feature) in enumerate(baseline.features.items())}
    _cache[key] = grid
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return grid


def _feature_grid(feature, metric: str, rate: float, normalize: bool, index: int) -> np.ndarray:
    """The ``1 - rate`` quantile of the two-sample null for every grid window size (positive floats)."""
    slots = feature.histogram_counts().astype(float) + drift.DEFAULT_PSEUDO_COUNT
    pi = slots / slots.sum()
    normalize_by = feature.std if normalize and feature.std > 0 else None
    rng = np.random.default_rng([SEED, index])
    baseline_draws = rng.multinomial(feature.count, pi, size=DRAWS)
    thresholds = np.empty(len(GRID))
    for i, size in enumerate(GRID):
        window_draws = rng.multinomial(size, pi, size=DRAWS)
        values = drift.compute(metric, window_draws, baseline_draws, feature.edges, normalize_by)
        thresholds[i] = np.quantile(values, 1.0 - rate)
    return np.maximum(np.minimum.accumulate(thresholds), np.finfo(float).tiny)
