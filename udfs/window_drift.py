"""Drift of a batch of closed windows of many features at once: every metric in a few array operations.

The drift step receives closed windows as rows of (feature, count, histogram, two-sample statistics),
typically one row per feature of each window. Looping over features costs a numpy call per feature
and metric (about 1 ms per feature and window at 128 features); here the rows of all features are
stacked into one (rows x slots) matrix per histogram length and set against the matching matrix of
baseline histograms, row by row, so a batch costs a few calls per metric whatever its width.

Values are those of `udfs.drift` (Wasserstein as ``cdf_gaps(p, q) . diff(support_points(edges))``,
per row with its feature's edges); thresholds are the fixed number, or for ``auto`` the feature's
`udfs.calibration.ThresholdCurves` read at the window's size (the same log-log interpolation on
`udfs.calibration.GRID`), or for the two-sample tests their own null at the training-sample size.
Categorical columns take part like numeric ones (their histograms are the category layout); ``missing_rate``
compares each row's missing share with its column's baseline rate, its ``auto`` threshold exact per window
size (`udfs.calibration.missing_rate_thresholds`).

Every ``auto`` result also has its p-value, from the same null as its threshold at the row's size
(`udfs.calibration.ThresholdCurves.p_values`, the two-sample tests' and the beta-binomial's closed forms);
a fixed threshold has none (NaN), and stays out of the control across tests (`udfs.discovery`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple, Optional, Sequence

import numpy as np

from udfs import drift
from udfs.baseline import Baseline
from udfs.baseline import NUMERIC
from udfs.calibration import (GRID, TEST_P_VALUES, TEST_THRESHOLDS, ThresholdCurves, exceedance_p_values,
                               interpolate_rows, missing_rate_p_values, missing_rate_thresholds, outlier_rate_p_values,
                               outlier_rate_thresholds)
from udfs.outliers import sigma_bounds


class MetricResult(NamedTuple):
    """One metric's result for each row: its value, threshold and p-value (NaN: a fixed threshold, or a
    window without values)."""

    values: np.ndarray
    thresholds: np.ndarray
    p_values: np.ndarray


@dataclass(frozen=True)
class MetricRule:
    """One configured metric: ``threshold`` a number, or None for ``auto`` at ``false_alarm_rate``;
    ``normalize``: Wasserstein divided by the baseline std; ``sigma``: ``outlier_rate``'s bounds, the baseline mean
    plus or minus ``sigma`` baseline std."""

    name: str
    threshold: Optional[float]
    false_alarm_rate: float = 0.01
    normalize: bool = False
    sigma: Optional[float] = None


class WindowDrift:
    """The drift metrics of ``rules`` for windows of ``features`` (columns of either type: features or the
    output, :attr:`udfs.baseline.Baseline.columns`) against ``baseline``; ``curves`` holds the calibrated
    curves of every ``auto`` histogram metric (`udfs.calibration.threshold_curves`)."""

    def __init__(self, baseline: Baseline, features: Sequence[str], rules: Sequence[MetricRule],
                 curves: Mapping[str, ThresholdCurves]):
        self.rules = tuple(rules)
        self.index = {name: i for i, name in enumerate(features)}
        self.columns = [baseline.columns[name] for name in features]
        references = [column.histogram_counts().astype(float) for column in self.columns]
        self.lengths = np.array([len(r) for r in references])
        self.references = _by_length(references, self.lengths)
        self.spacings = _by_length([np.diff(drift.support_points(c.edges)) if c.type == NUMERIC else np.zeros(len(r) - 1)
                                    for c, r in zip(self.columns, references)], self.lengths - 1)
        self.std = np.array([c.std if c.type == NUMERIC else 1.0 for c in self.columns])
        self.sample_sizes = np.array([len(c.sample) if c.type == NUMERIC else 0 for c in self.columns])
        self.missing_rates = np.array([c.missing_rate for c in self.columns])
        self.log_curves = {metric: np.log(np.stack([curve.values.get(name, np.ones(len(GRID))) for name in features]))
                           for metric, curve in curves.items()}
        self.nulls = {metric: _shared_tables([curve.nulls.get(name) for name in features])
                      for metric, curve in curves.items() if curve.nulls}

    def evaluate(self, features: np.ndarray, counts: np.ndarray, histograms: Sequence[np.ndarray],
                 tests: Mapping[str, np.ndarray], missing: Optional[np.ndarray] = None
                 ) -> dict[str, MetricResult]:
        """Per metric, the `MetricResult` (values, thresholds, p-values) of each row: ``features`` the rows' feature indices (`index`),
        ``counts`` their window sizes (present values), ``histograms`` their drift-layout counts, ``tests``
        the two-sample statistics by test name (NaN for a window without values), ``missing`` their missing
        values (``missing_rate`` only)."""
        features, counts = np.asarray(features, dtype=int), np.asarray(counts, dtype=float)
        values = {rule.name: np.full(len(features), np.nan) for rule in self.rules}
        for length, rows in _rows_by_value(self.lengths[features]).items():
            observed = np.stack([np.asarray(histograms[i], dtype=float) for i in rows])
            for rule in self.rules:
                if rule.name in drift.LAYOUT_METRICS:
                    values[rule.name][rows] = self._histogram_metric(rule, length, features[rows], observed)
        for rule in self.rules:
            if rule.name in drift.TESTS:
                values[rule.name] = np.asarray(tests[rule.name], dtype=float)
        results = {}
        for rule in self.rules:
            if rule.name == drift.MISSING_RATE:
                results[rule.name] = self._missing_rate(rule, features, counts, np.asarray(missing, dtype=float))
            elif rule.name == drift.OUTLIER_RATE:
                results[rule.name] = self._outlier_rate(rule, features, counts, np.asarray(tests[rule.name], dtype=float))
            else:
                sizes = np.maximum(counts, 1)
                results[rule.name] = MetricResult(values[rule.name], self._thresholds(rule, features, sizes),
                                                  self._p_values(rule, features, sizes, values[rule.name]))
        return results

    def _missing_rate(self, rule: MetricRule, features: np.ndarray, counts: np.ndarray,
                      missing: np.ndarray) -> MetricResult:
        """``missing_rate`` of each row, its threshold (fixed, or exact per column and window total) and p-value."""
        totals = counts + missing
        values = np.asarray(drift.missing_rate(missing, totals, self.missing_rates[features]), dtype=float)
        if rule.threshold is not None:
            return MetricResult(values, np.full(len(features), float(rule.threshold)), np.full(len(features), np.nan))
        thresholds, p_values = np.empty(len(features)), np.empty(len(features))
        for feature, rows in _rows_by_value(features).items():
            column = self.columns[feature]
            thresholds[rows] = missing_rate_thresholds(column, totals[rows], rule.false_alarm_rate)
            p_values[rows] = missing_rate_p_values(column, totals[rows], values[rows])
        return MetricResult(values, thresholds, p_values)

    def _outlier_rate(self, rule: MetricRule, features: np.ndarray, counts: np.ndarray,
                      beyond: np.ndarray) -> MetricResult:
        """``outlier_rate`` of each row (its share of values beyond the sigma bounds: ``beyond`` of ``counts``), its
        threshold (fixed, or exact per column and window size) and p-value (`udfs.calibration.outlier_rate_thresholds`)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(counts > 0, beyond / counts, np.nan)
        if rule.threshold is not None:
            return MetricResult(values, np.full(len(features), float(rule.threshold)), np.full(len(features), np.nan))
        thresholds, p_values = np.empty(len(features)), np.empty(len(features))
        for feature, rows in _rows_by_value(features).items():
            column = self.columns[feature]
            lower, upper = (float(bound) for bound in sigma_bounds(column.mean, column.std, rule.sigma))
            thresholds[rows] = outlier_rate_thresholds(column, lower, upper, counts[rows], rule.false_alarm_rate)
            p_values[rows] = outlier_rate_p_values(column, lower, upper, counts[rows], values[rows])
        return MetricResult(values, thresholds, p_values)

    def _histogram_metric(self, rule: MetricRule, length: int, features: np.ndarray,
                          observed: np.ndarray) -> np.ndarray:
        reference = self.references[length][features]
        if rule.name != "wasserstein":
            return np.atleast_1d(drift.compute(rule.name, observed, reference, None))
        distance = (drift.cdf_gaps(observed, reference) * self.spacings[length - 1][features]).sum(axis=-1)
        return distance / self.std[features] if rule.normalize else distance

    def _thresholds(self, rule: MetricRule, features: np.ndarray, counts: np.ndarray) -> np.ndarray:
        if rule.threshold is not None:
            return np.full(len(features), float(rule.threshold))
        if rule.name in TEST_THRESHOLDS:
            thresholds = np.empty(len(features))
            for m, rows in _rows_by_value(self.sample_sizes[features]).items():
                thresholds[rows] = TEST_THRESHOLDS[rule.name](int(m), counts[rows], rule.false_alarm_rate)
            return thresholds
        return np.exp(interpolate_rows(self.log_curves[rule.name][features], np.log(counts)))

    def _p_values(self, rule: MetricRule, features: np.ndarray, counts: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Each row's p-value under its threshold's null; NaN for a fixed threshold."""
        if rule.threshold is not None:
            return np.full(len(features), np.nan)
        if rule.name in TEST_P_VALUES:
            p_values = np.empty(len(features))
            for m, rows in _rows_by_value(self.sample_sizes[features]).items():
                p_values[rows] = TEST_P_VALUES[rule.name](int(m), counts[rows], values[rows])
            return p_values
        tables, table_of = self.nulls[rule.name]
        return exceedance_p_values(interpolate_rows(tables[table_of[features]], np.log(counts)), values)


def _by_length(rows: Sequence[np.ndarray], lengths: np.ndarray) -> dict[int, np.ndarray]:
    """Per distinct length, a (features x length) matrix holding the rows of that length (zeros elsewhere)."""
    matrices = {}
    for length in np.unique(lengths):
        matrix = np.zeros((len(rows), int(length)))
        for i in np.flatnonzero(lengths == length):
            matrix[i] = rows[i]
        matrices[int(length)] = matrix
    return matrices


def _rows_by_value(lengths: np.ndarray) -> dict[int, np.ndarray]:
    """Row indices grouped by their value (a histogram length, or a sample size)."""
    return {int(value): np.flatnonzero(lengths == value) for value in np.unique(lengths)}


def _shared_tables(nulls: Sequence[Optional[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct null tables of the columns (columns sharing a null share its array: stacked once) and
    each column's index among them (a column the metric does not apply to gets the first)."""
    index: dict[int, int] = {}
    tables: list[np.ndarray] = []
    for table in nulls:
        if table is not None and id(table) not in index:
            index[id(table)] = len(tables)
            tables.append(table)
    return np.stack(tables), np.array([index.get(id(table), 0) for table in nulls], dtype=int)
