"""Drift step: a vectorised pandas UDF over closed windows; the math is `udfs.drift`.

Each Arrow batch of window-statistics rows arrives as pandas Series; per feature, the windows'
drift-layout histograms are stacked into one (windows x slots) matrix and every configured metric is
computed against the baseline histogram in one `udfs.drift.compute` call. The threshold per
(feature, metric) is the configured number, or for ``auto`` the `udfs.calibration.ThresholdCurves`
read at that window's count (an interpolation per row). The curves are calibrated once, where the job
is built, and travel with the function: the worker starts with nothing to compute, so the first
window's drift records do not wait for a Monte-Carlo calibration. The two-sample tests ``ks`` and ``cvm``
arrive already computed (the stats row's ``tests`` column: the window step holds the window's CDF); their
``auto`` threshold is the test's own two-sample null at the training-sample size ``m`` and the window's
count (`udfs.calibration.TEST_THRESHOLDS`, one vectorised call per feature and test), no simulation. The
UDF returns, per window, the JSON drift records to emit (all of them with ``emit_all``, else only those
over the threshold), one format for every metric; the SQL unnests them.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf

from udfs import drift as drift_math
from udfs.baseline import Baseline
from udfs.calibration import TEST_THRESHOLDS, ThresholdCurves, threshold_curves

from flink_job.config import DriftMetricSpec, MonitorSpec
from flink_job.parse import sql_string

KIND = "drift"
UDF_NAME = "mmon_drift_records"


def calibrate(spec: MonitorSpec, baseline: Baseline) -> dict[str, ThresholdCurves]:
    """The threshold curves of every ``threshold: auto`` histogram metric, by metric name (the two-sample
    tests need none: `_thresholds`)."""
    return {metric: threshold_curves(baseline, metric, config.false_alarm_rate, normalize=config.normalize)
            for metric, config in spec.drift.metrics.items()
            if config.threshold == "auto" and metric not in drift_math.TESTS}


def _thresholds(curves: dict[str, ThresholdCurves], baseline: Baseline, feature: str, metric: str,
                config: DriftMetricSpec, counts: np.ndarray) -> np.ndarray:
    """The threshold of ``metric`` for each window of ``feature`` with these ``counts``."""
    counts = np.maximum(counts, 1)
    if config.threshold != "auto":
        return np.full(len(counts), float(config.threshold))
    if metric in TEST_THRESHOLDS:
        m = len(baseline.features[feature].sample)
        return np.asarray(TEST_THRESHOLDS[metric](m, counts, config.false_alarm_rate), dtype=float)
    return curves[metric].of(feature, counts)


def _values(metric: str, config: DriftMetricSpec, reference, observed: np.ndarray, tests: list[dict]) -> np.ndarray:
    """``metric`` of each window: a histogram metric from ``observed`` (windows x slots), a two-sample test
    read from the window step's ``tests`` (NaN for a window without values)."""
    if metric in drift_math.TESTS:
        return np.array([np.nan if row.get(metric) is None else row[metric] for row in tests], dtype=float)
    normalize_by = reference.std if (metric == "wasserstein" and config.normalize) else None
    return np.atleast_1d(drift_math.compute(metric, observed, reference.histogram_counts(), reference.edges,
                                            normalize_by))


def drift_records(spec: MonitorSpec, baseline: Baseline, curves: dict[str, ThresholdCurves], features: pd.Series,
                  window_start: pd.Series, window_end: pd.Series, counts: pd.Series,
                  histograms: pd.Series, tests: pd.Series) -> list[list[str]]:
    """For each window row, the JSON drift records (without ``emitted_at``) to emit; ``curves`` from
    `calibrate`, ``tests`` the stats rows' two-sample statistics (JSON objects)."""
    out: list[list[str]] = [[] for _ in range(len(features))]
    for feature, rows in features.groupby(features).groups.items():
        rows = np.asarray(rows)
        reference = baseline.features[feature]
        observed = np.stack([np.asarray(histograms.iloc[i], dtype=float) for i in rows])
        window_tests = [json.loads(tests.iloc[i] or "{}") for i in rows]
        window_counts = np.array([int(counts.iloc[i]) for i in rows])
        for metric, config in spec.drift.metrics.items():
            values = _values(metric, config, reference, observed, window_tests)
            thresholds = _thresholds(curves, baseline, feature, metric, config, window_counts)
            for i, value, threshold, count in zip(rows, values, thresholds, window_counts):
                count, threshold = int(count), float(threshold)
                over = bool(value > threshold)
                if over or spec.drift.emit_all:
                    out[i].append(json.dumps({
                        "model": spec.model.name, "feature": feature, "window_start": int(window_start.iloc[i]),
                        "window_end": int(window_end.iloc[i]), "metric": metric, "value": float(value),
                        "threshold": threshold, "drift": over, "count": count}, separators=(",", ":")))
    return out


class DriftRecords(ScalarFunction):
    """``(feature, window_start, window_end, count, histogram, tests) -> ARRAY<STRING>`` on pandas Series."""

    def __init__(self, spec: MonitorSpec, baseline: Baseline):
        self.spec, self.baseline = spec, baseline
        self.curves = calibrate(spec, baseline)

    def eval(self, features, window_start, window_end, counts, histograms, tests):
        return pd.Series(drift_records(self.spec, self.baseline, self.curves, features, window_start, window_end,
                                       counts, histograms, tests))


def drift_udf(spec: MonitorSpec, baseline: Baseline):
    """The pandas UDF of `DriftRecords`."""
    return udf(DriftRecords(spec, baseline), result_type=DataTypes.ARRAY(DataTypes.STRING()), func_type="pandas")


def drift_sql(stats_table: str, model: str) -> str:
    """(kind, key, payload) drift rows from the window-statistics table."""
    key = f"CONCAT({sql_string(model + '/')}, feature, '/', JSON_VALUE(d.payload, '$.metric'))"
    return (f"SELECT '{KIND}' AS kind, {key} AS k, d.payload FROM ("
            f"SELECT feature, {UDF_NAME}(feature, window_start, window_end, `count`, histogram, tests) AS records "
            f"FROM {stats_table}) AS s CROSS JOIN UNNEST(s.records) AS d(payload)")
