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


def _violation_sql(rule: Rule) -> str:
    value = f"f{rule.feature_index}"
    return f"({value} < {double_literal(rule.lower)} OR {value} > {double_literal(rule.upper)})"


def _alert_entry_sql(spec: MonitorSpec, rule: Rule) -> str:
    """The alert of one rule as a ``ROW(kind, k, payload)``, NULL when the value does not violate it."""
    value, lower, upper = f"f{rule.feature_index}", double_literal(rule.lower), double_literal(rule.upper)
    below = f"{value} < {lower}"
    name = (sql_string(rule.name_below) if rule.name_below == rule.name_above
            else f"CASE WHEN {below} THEN {sql_string(rule.name_below)} ELSE {sql_string(rule.name_above)} END")
    payload = (f"JSON_OBJECT(KEY 'model' VALUE {sql_string(spec.model.name)}, KEY 'request_id' VALUE request_id, "
               f"KEY 'feature' VALUE {sql_string(rule.feature)}, KEY 'value' VALUE {value}, KEY 'rule' VALUE {name}, "
               f"KEY 'threshold' VALUE CASE WHEN {below} THEN {lower} ELSE {upper} END, "
               f"KEY 'request_time' VALUE request_time_ms)")
    key = sql_string(f"{spec.model.name}/{rule.feature}")
    return f"CASE WHEN {_violation_sql(rule)} THEN ROW({sql_string(KIND)}, {key}, {payload}) END"


def outliers_sql(spec: MonitorSpec, baseline: Baseline) -> str | None:
    """(kind, k, payload, rowtime) alert rows, or None when no rule is configured.

    One pass over the instances: those violating any rule are kept, and an array with one entry per
    rule (NULL where the rule holds) is unnested into one alert per violated rule."""
    found = rules(spec, baseline)
    if not found:
        return None
    entries = ", ".join(_alert_entry_sql(spec, rule) for rule in found)
    any_violation = " OR ".join(_violation_sql(rule) for rule in found)
    return (f"SELECT a.kind, a.k, a.payload, i.{ROWTIME} FROM (SELECT * FROM {INSTANCES_VIEW} WHERE {any_violation}) "
            f"AS i CROSS JOIN UNNEST(ARRAY[{entries}]) AS a(kind, k, payload) WHERE a.kind IS NOT NULL")
