"""Per-instance outlier step: the rules' bounds from `udfs.outliers`, checked in the JVM.

Every accepted instance is checked on arrival by the Java ``OutlierRules`` inside the router of
`flink_job.windows` (no window, no Python, one loop over the instance per rule whatever the width);
each violating value becomes one alert ``(model, request_id, feature, value, rule, threshold,
request_time)``: rule ``sigma`` (outside ``mean +- k std`` of the baseline; threshold = the bound
crossed) and, with ``outliers.range``, ``min`` / ``max`` (outside the baseline's range). The egress
step adds ``detected_at``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from udfs.baseline import Baseline
from udfs.outliers import sigma_bounds

from flink_job import java_functions
from flink_job.config import MonitorSpec

KIND = "outlier"


@dataclass(frozen=True)
class Rule:
    """One check over every feature: a value below ``lower[j]`` is reported as ``name_below``, above
    ``upper[j]`` as ``name_above``."""

    name_below: str
    name_above: str
    lower: np.ndarray
    upper: np.ndarray


def rules(spec: MonitorSpec, baseline: Baseline) -> list[Rule]:
    """The configured rules, bounds from the baseline, in feature order."""
    features = [baseline.features[name] for name in spec.input.features]
    found = []
    if spec.outliers.sigma is not None:
        lower, upper = sigma_bounds(np.array([f.mean for f in features]), np.array([f.std for f in features]),
                                    spec.outliers.sigma)
        found.append(Rule("sigma", "sigma", np.asarray(lower, float), np.asarray(upper, float)))
    if spec.outliers.range:
        found.append(Rule("min", "max", np.array([f.min for f in features], float),
                          np.array([f.max for f in features], float)))
    return found


def java_rules(spec: MonitorSpec, baseline: Baseline):
    """The rules as the Java ``OutlierRules`` the router applies."""
    found = rules(spec, baseline)
    strings = java_functions.string_array
    doubles = java_functions.double_matrix
    return java_functions.package().OutlierRules(
        KIND, spec.model.name, strings(spec.input.features), strings([r.name_below for r in found]),
        strings([r.name_above for r in found]), doubles([r.lower for r in found]), doubles([r.upper for r in found]))
