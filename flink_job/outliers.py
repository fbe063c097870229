"""Per-instance outlier step, as SQL: bounds from `udfs.outliers`, inlined as constants at plan time.

Every instance is checked on arrival by a JVM filter (no window, no Python); each violating value
becomes one alert ``(model, request_id, feature, value, rule, threshold, request_time)``:
rule ``sigma`` (outside ``mean +- k std`` of the baseline; threshold = the bound crossed) and, with
``outliers.range``, ``min`` / ``max`` (outside the baseline's range). The egress step adds ``detected_at``.
"""
from __future__ import annotations

from dataclasses import dataclass

from udfs.baseline import Baseline
from udfs.outliers import sigma_bounds

from flink_job.config import MonitorSpec
from flink_job.parse import INSTANCES_VIEW, sql_string
from flink_job.watermarks import ROWTIME

KIND = "outlier"


def double_literal(value: float) -> str:
    """A SQL DOUBLE literal that round-trips ``value`` exactly (a plain ``1.5`` would be DECIMAL)."""
    text = repr(float(value))
    return text if "e" in text else text + "E0"


@dataclass(frozen=True)
class Rule:
    """One check of one feature: a value outside [lower, upper] violates it."""

    feature_index: int
    feature: str
    name_below: str  # the rule name reported for a value under lower
    name_above: str
    lower: float
    upper: float


def rules(spec: MonitorSpec, baseline: Baseline) -> list[Rule]:
    """The configured rules for every feature, bounds from the baseline."""
    found = []
    for j, name in enumerate(spec.input.features):
        feature = baseline.features[name]
        if spec.outliers.sigma is not None:
            lower, upper = sigma_bounds(feature.mean, feature.std, spec.outliers.sigma)
            found.append(Rule(j, name, "sigma", "sigma", float(lower), float(upper)))
        if spec.outliers.range:
            found.append(Rule(j, name, "min", "max", feature.min, feature.max))
    return found


def _rule_sql(spec: MonitorSpec, rule: Rule) -> str:
    value, lower, upper = f"f{rule.feature_index}", double_literal(rule.lower), double_literal(rule.upper)
    below = f"{value} < {lower}"
    name = (sql_string(rule.name_below) if rule.name_below == rule.name_above
            else f"CASE WHEN {below} THEN {sql_string(rule.name_below)} ELSE {sql_string(rule.name_above)} END")
    payload = (f"JSON_OBJECT(KEY 'model' VALUE {sql_string(spec.model.name)}, KEY 'request_id' VALUE request_id, "
               f"KEY 'feature' VALUE {sql_string(rule.feature)}, KEY 'value' VALUE {value}, KEY 'rule' VALUE {name}, "
               f"KEY 'threshold' VALUE CASE WHEN {below} THEN {lower} ELSE {upper} END, "
               f"KEY 'request_time' VALUE request_time_ms)")
    key = sql_string(f"{spec.model.name}/{rule.feature}")
    return (f"SELECT {sql_string(KIND)} AS kind, {key} AS k, {payload} AS payload, {ROWTIME} FROM {INSTANCES_VIEW} "
            f"WHERE {below} OR {value} > {upper}")


def outliers_sql(spec: MonitorSpec, baseline: Baseline) -> str | None:
    """(kind, k, payload, rowtime) alert rows, or None when no rule is configured."""
    selects = [_rule_sql(spec, rule) for rule in rules(spec, baseline)]
    return " UNION ALL ".join(selects) if selects else None
