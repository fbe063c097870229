"""Per-instance outlier step: the rules' bounds from `udfs.outliers`, checked in the JVM.

Every accepted instance is checked on arrival by the Java ``OutlierRules`` inside the router of
`flink_job.windows` (no window, no Python, one loop over the instance per rule whatever the width);
each violating value becomes one alert ``(model, request_id, feature, value, rule, threshold,
request_time)``: rule ``sigma`` (outside ``mean +- k std`` of the baseline; threshold = the bound
crossed) and, with ``outliers.range``, ``min`` / ``max`` (outside the baseline's range), both for numeric
features only; with ``outliers.unseen`` (the default), rule ``unseen`` for a categorical value (of a feature,
or the prediction) that the baseline never saw, its text as the value and no threshold. The egress step adds
``detected_at``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contract.spec import MonitorSpec

from udfs.baseline import CATEGORICAL, NUMERIC, Baseline
from udfs.outliers import sigma_bounds

from flink_job import java_functions


@dataclass(frozen=True)
class Rule:
    """One check over every feature: a value below ``lower[j]`` is reported as ``name_below``, above
    ``upper[j]`` as ``name_above``."""

    name_below: str
    name_above: str
    lower: np.ndarray
    upper: np.ndarray


UNSEEN = "unseen"


def rules(spec: MonitorSpec, baseline: Baseline) -> list[Rule]:
    """The configured numeric rules, bounds from the baseline, per column (`MonitorSpec.columns`: the
    features, then the output); a categorical column's and the output's bounds are infinite."""
    checked = [f.type == NUMERIC for f in spec.input.features] + ([False] if spec.output else [])
    columns = [baseline.columns[name] if on else None for name, on in zip(spec.columns, checked)]

    def per_column(value) -> np.ndarray:
        return np.array([value(c) if c is not None else np.nan for c in columns], dtype=float)

    found = []
    if spec.outliers.sigma is not None:
        lower, upper = sigma_bounds(per_column(lambda c: c.mean), per_column(lambda c: c.std), spec.outliers.sigma)
        found.append(Rule("sigma", "sigma", np.nan_to_num(lower, nan=-np.inf), np.nan_to_num(upper, nan=np.inf)))
    if spec.outliers.range:
        found.append(Rule("min", "max", np.nan_to_num(per_column(lambda c: c.min), nan=-np.inf),
                          np.nan_to_num(per_column(lambda c: c.max), nan=np.inf)))
    return found


def unseen_columns(spec: MonitorSpec) -> list[bool]:
    """Per column, whether an unseen category value there is alerted (`UNSEEN`)."""
    return [spec.outliers.unseen and kind == CATEGORICAL for kind in spec.column_types]


def java_rules(spec: MonitorSpec, baseline: Baseline):
    """The rules as the Java ``OutlierRules`` the router applies."""
    found = rules(spec, baseline)
    strings = java_functions.string_array
    doubles = java_functions.double_matrix
    return java_functions.package().OutlierRules(
        spec.model.name, strings(spec.columns), strings([r.name_below for r in found]),
        strings([r.name_above for r in found]), doubles([r.lower for r in found]), doubles([r.upper for r in found]),
        java_functions.boolean_array(unseen_columns(spec)), UNSEEN)
