"""Reads a running job's metrics from Flink's Prometheus reporter (``job.metrics_port``)."""
from __future__ import annotations

import urllib.error
import urllib.request
from typing import Optional

from prometheus_client.parser import text_string_to_metric_families

METRIC_PREFIX = "flink_taskmanager_job_task_operator_mmon_"
LABELS = {"reason_dead_letter": ("reason",), "version_feature_outliers": ("version", "feature"),
          "version_feature_metric_drift_value_micros": ("version", "feature", "metric")}
"""The labels of the labelled ``mmon`` metrics, in the order of their keys in `scrape`'s result."""


def _samples(port: int):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def scrape(port: int) -> Optional[dict]:
    """The ``mmon`` metrics: name -> {label values: value}, summed over operators and subtasks (None
    when the endpoint does not answer)."""
    samples = _samples(port)
    if samples is None:
        return None
    found = {}
    for sample in samples:
        if sample.name.startswith(METRIC_PREFIX):
            name = sample.name[len(METRIC_PREFIX):]
            key = tuple(sample.labels[label] for label in LABELS.get(name, ()))
            found.setdefault(name, {}).setdefault(key, 0.0)
            found[name][key] += sample.value
    return found


def total(found: dict, name: str) -> float:
    """A metric of `scrape`'s result summed over its labels (0 when absent)."""
    return sum(found.get(name, {}).values())


def metric_values(port: int, name: str) -> Optional[list[float]]:
    """The values of every sample of one metric by its full name (None when the endpoint does not answer)."""
    samples = _samples(port)
    return None if samples is None else [sample.value for sample in samples if sample.name == name]
