"""Drift step: the drift tests of a closed window's rows; the math is `udfs.window_drift`.

A window's statistics rows (one per column, gathered by `flink_job.alerts` until the window has closed) go
to `udfs.window_drift.WindowDrift` whole: every configured metric of every row in a few array
operations, whatever the number of features, each against its feature's baseline histogram. The
threshold per row is the configured number, or for ``auto`` the feature's
`udfs.calibration.ThresholdCurves` read at that window's count. The curves are calibrated once, where
the job is built, and travel with the function: the worker starts with nothing to compute, so the first
window's drift records do not wait for a Monte-Carlo calibration. The two-sample tests ``ks`` and ``cvm``
arrive already computed (the stats row's ``tests`` column: the window step holds the window's CDF); their
``auto`` threshold is the test's own two-sample null at the training-sample size and the window's count,
no simulation. Each result carries its p-value from the same null (none for a fixed threshold), which
`flink_job.alerts` controls across the window's tests (``drift.control``); `drift_records` gives the JSON drift
records to emit (all of them with ``emit_all``, else those over their threshold or discovered), one format for
every metric.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from contract import outputs
from contract.spec import MonitorSpec

from udfs import calibration_cache
from udfs import drift as drift_math
from udfs.baseline import Baseline
from udfs.calibration import ThresholdCurves
from udfs.window_drift import MetricResult, MetricRule, WindowDrift


def calibrate(spec: MonitorSpec, baseline: Baseline) -> dict[str, ThresholdCurves]:
    """The threshold curves of every ``threshold: auto`` histogram metric, by metric name (the two-sample
    tests need none: their null is known in closed form); cached beside the baseline (`udfs.calibration_cache`),
    so only a job's first start with this baseline runs the simulation."""
    folder = calibration_cache.folder_for(spec.baseline)
    return {metric: calibration_cache.threshold_curves(baseline, metric, config.false_alarm_rate,
                                                       normalize=config.normalize, folder=folder)
            for metric, config in spec.drift.metrics.items()
            if config.threshold == "auto" and metric in drift_math.LAYOUT_METRICS}


def metric_rules(spec: MonitorSpec) -> list[MetricRule]:
    """The spec's drift metrics as `udfs.window_drift.MetricRule` (``auto`` as no fixed threshold)."""
    return [MetricRule(name, None if config.threshold == "auto" else float(config.threshold), config.false_alarm_rate,
                       config.normalize, spec.outliers.sigma) for name, config in spec.drift.metrics.items()]


def window_drift(spec: MonitorSpec, baseline: Baseline) -> WindowDrift:
    """The drift math for the spec's features and metrics, calibrated (`calibrate`)."""
    return WindowDrift(baseline, spec.columns, metric_rules(spec), calibrate(spec, baseline))


def _test_statistics(tests: Sequence[str], names: list[str]) -> dict[str, np.ndarray]:
    """The rows' two-sample statistics by test name (NaN where a window had no values)."""
    rows = [json.loads(text or "{}") for text in tests] if names else []
    return {name: np.array([np.nan if row.get(name) is None else row[name] for row in rows], dtype=float)
            for name in names}


@dataclass(frozen=True)
class WindowRows:
    """A window's stats rows (one per column), the drift step's input: parallel sequences of the columns' names,
    window bounds, present and missing counts, drift-layout histograms and two-sample statistics (JSON)."""

    features: Sequence[str]
    window_start: Sequence[int]
    window_end: Sequence[int]
    counts: Sequence[int]
    missing: Sequence[int]
    histograms: Sequence[Sequence[int]]
    tests: Sequence[str]


def evaluate(spec: MonitorSpec, math: WindowDrift, rows: WindowRows) -> dict[str, MetricResult]:
    """Every configured metric of every row (`udfs.window_drift.WindowDrift.evaluate`): value, threshold, p-value."""
    indices = np.array([math.index[name] for name in rows.features], dtype=int)
    test_names = [name for name in spec.drift.metrics if name in (*drift_math.TESTS, drift_math.OUTLIER_RATE)]
    return math.evaluate(indices, np.array([int(c) for c in rows.counts]), list(rows.histograms),
                         _test_statistics(rows.tests, test_names), np.asarray(rows.missing, dtype=float))


def drift_records(spec: MonitorSpec, rows: WindowRows, results: Mapping[str, MetricResult],
                  discoveries: Optional[Mapping[str, np.ndarray]] = None,
                  version: Optional[str] = None) -> list[list[tuple[str, str]]]:
    """For each row, the drift records (without ``emitted_at``) to emit, each as (metric, JSON record), so that
    the caller keys it without parsing it again: every metric with ``emit_all``, else
    those over their threshold or discovered (``discoveries``: per metric, each row's discovery under
    ``drift.control``; without it, a discovery is a flag); ``version`` the rows' model version (the spec's
    ``model.version`` when omitted)."""
    out: list[list[tuple[str, str]]] = [[] for _ in range(len(rows.features))]
    for metric, (values, thresholds, p_values) in results.items():
        over = values > thresholds
        found = over if discoveries is None else discoveries[metric]
        emitted = range(len(out)) if spec.drift.emit_all else np.flatnonzero(over | found)
        for i in emitted:
            record = {"model": spec.model.name, "version": version or spec.model.version, "feature": rows.features[i],
                      "window_start": int(rows.window_start[i]), "window_end": int(rows.window_end[i]), "metric": metric,
                      "value": None if np.isnan(values[i]) else float(values[i]),  # a window without values
                      "threshold": float(thresholds[i]), "drift": bool(over[i]), "count": int(rows.counts[i]),
                      "p_value": None if np.isnan(p_values[i]) else float(p_values[i]), "discovery": bool(found[i])}
            if metric == drift_math.MISSING_RATE:
                record["missing"] = int(rows.missing[i])
            out[i].append((metric, outputs.record_json(record)))
    return out
