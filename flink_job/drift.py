"""Drift step: a vectorised pandas UDF over closed windows; the math is `udfs.window_drift`.

Each Arrow batch of window-statistics rows (one per feature and window) arrives as pandas Series and
goes to `udfs.window_drift.WindowDrift` whole: every configured metric of every row in a few array
operations, whatever the number of features, each against its feature's baseline histogram. The
threshold per row is the configured number, or for ``auto`` the feature's
`udfs.calibration.ThresholdCurves` read at that window's count. The curves are calibrated once, where
the job is built, and travel with the function: the worker starts with nothing to compute, so the first
window's drift records do not wait for a Monte-Carlo calibration. The two-sample tests ``ks`` and ``cvm``
arrive already computed (the stats row's ``tests`` column: the window step holds the window's CDF); their
``auto`` threshold is the test's own two-sample null at the training-sample size and the window's count,
no simulation. The UDF returns, per window row, the JSON drift records to emit (all of them with
``emit_all``, else only those over the threshold), one format for every metric; the SQL unnests them.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf

from contract import outputs
from contract.spec import MonitorSpec

from udfs import calibration_cache
from udfs import drift as drift_math
from udfs.baseline import Baseline
from udfs.calibration import ThresholdCurves
from udfs.window_drift import MetricRule, WindowDrift

from flink_job.parse import sql_string

UDF_NAME = "mmon_drift_records"


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
                       config.normalize) for name, config in spec.drift.metrics.items()]


def window_drift(spec: MonitorSpec, baseline: Baseline) -> WindowDrift:
    """The drift math for the spec's features and metrics, calibrated (`calibrate`)."""
    return WindowDrift(baseline, spec.columns, metric_rules(spec), calibrate(spec, baseline))


def _test_statistics(tests: pd.Series, names: list[str]) -> dict[str, np.ndarray]:
    """The rows' two-sample statistics by test name (NaN where a window had no values)."""
    rows = [json.loads(text or "{}") for text in tests] if names else []
    return {name: np.array([np.nan if row.get(name) is None else row[name] for row in rows], dtype=float)
            for name in names}


def drift_records(spec: MonitorSpec, math: WindowDrift, features: pd.Series, window_start: pd.Series,
                  window_end: pd.Series, counts: pd.Series, histograms: pd.Series, tests: pd.Series,
                  missing: pd.Series = None) -> list[list[str]]:
    """For each window row, the JSON drift records (without ``emitted_at``) to emit; ``math`` from
    `window_drift`, ``tests`` the stats rows' two-sample statistics (JSON objects), ``missing`` their
    missing values (``missing_rate``; none when omitted)."""
    out: list[list[str]] = [[] for _ in range(len(features))]
    names = features.tolist()
    starts, ends, sizes = window_start.tolist(), window_end.tolist(), [int(c) for c in counts]
    indices = np.array([math.index[name] for name in names], dtype=int)
    test_names = [name for name in spec.drift.metrics if name in drift_math.TESTS]
    absent = np.zeros(len(names)) if missing is None else missing.to_numpy(dtype=float)
    results = math.evaluate(indices, np.array(sizes), histograms.tolist(), _test_statistics(tests, test_names), absent)
    for metric, (values, thresholds) in results.items():
        over = values > thresholds
        rows = range(len(names)) if spec.drift.emit_all else np.flatnonzero(over)
        for i in rows:
            record = {"model": spec.model.name, "feature": names[i], "window_start": int(starts[i]),
                      "window_end": int(ends[i]), "metric": metric,
                      "value": None if np.isnan(values[i]) else float(values[i]),  # a window without values
                      "threshold": float(thresholds[i]), "drift": bool(over[i]), "count": sizes[i]}
            if metric == drift_math.MISSING_RATE:
                record["missing"] = int(absent[i])
            out[i].append(json.dumps(record, separators=(",", ":"), allow_nan=False))
    return out


class DriftRecords(ScalarFunction):
    """``(feature, window_start, window_end, count, missing, histogram, tests) -> ARRAY<STRING>`` on pandas Series."""

    def __init__(self, spec: MonitorSpec, baseline: Baseline):
        self.spec = spec
        self.math = window_drift(spec, baseline)

    def eval(self, features, window_start, window_end, counts, missing, histograms, tests):
        return pd.Series(drift_records(self.spec, self.math, features, window_start, window_end, counts, histograms,
                                       tests, missing))


def drift_udf(spec: MonitorSpec, baseline: Baseline):
    """The pandas UDF of `DriftRecords`."""
    return udf(DriftRecords(spec, baseline), result_type=DataTypes.ARRAY(DataTypes.STRING()), func_type="pandas")


def drift_sql(stats_table: str, model: str) -> str:
    """(kind, key, payload) drift rows from the window-statistics table's per-feature rows."""
    key = f"CONCAT({sql_string(model + '/')}, feature, '/', JSON_VALUE(d.payload, '$.metric'))"
    return (f"SELECT '{outputs.DRIFT}' AS kind, {key} AS k, d.payload FROM ("
            f"SELECT feature, {UDF_NAME}(feature, window_start, window_end, `count`, missing, histogram, tests) AS records "
            f"FROM {stats_table} WHERE kind = {sql_string(outputs.STATS)}) AS s CROSS JOIN UNNEST(s.records) AS d(payload)")
