"""Custom Flink metrics of the job (group ``mmon``), exported by Flink's Prometheus reporter.

Python operators register them in ``open``; the JVM-side steps (parse, late filter, outlier filter) are
counted where their small outputs pass the Python egress step, so no Python runs per instance:

- ``instances_windowed``            instances that reached the windows (counted per sub-batch);
- ``dead_letter{reason=...}``       dead-lettered records by reason (``late`` included);
- ``late_events``                   records behind the watermark;
- ``parse_errors``                  records that could not be parsed (every other dead-letter reason);
- ``outliers{feature=...}``         outlier alerts by feature;
- ``windows_emitted``               per-feature window statistics records;
- ``drift_alerts``                  drift records over their threshold;
- ``drift_value_micros{feature=...,metric=...}``  last drift value x 1e6 (PyFlink gauges hold integers).

With the Prometheus reporter (``job.metrics_port`` / ``--metrics-port``) the names are
``flink_taskmanager_job_task_operator_mmon_<name>`` and, for the labelled ones,
``..._mmon_reason_dead_letter{reason=...}``, ``..._mmon_feature_outliers{feature=...}`` and
``..._mmon_feature_metric_drift_value_micros{feature=...,metric=...}``. PyFlink reports a Python
metric to the JVM when it is first updated, so a counter shows up with its first event.
"""
from __future__ import annotations

GROUP = "mmon"


class LabelledCounters:
    """Counters of one name under a key/value sub-group, created on first use."""

    def __init__(self, group, name: str, label: str):
        self._group, self._name, self._label = group, name, label
        self._counters = {}

    def inc(self, value: str, n: int = 1) -> None:
        counter = self._counters.get(value)
        if counter is None:
            counter = self._counters[value] = self._group.add_group(self._label, value).counter(self._name)
        counter.inc(n)


class GaugeBoard:
    """Integer gauges of one name under two key/value labels; each holds the last value set."""

    def __init__(self, group, name: str, labels: tuple[str, str]):
        self._group, self._name, self._labels = group, name, labels
        self._values = {}

    def set(self, first: str, second: str, value: int) -> None:
        key = (first, second)
        if key not in self._values:
            self._group.add_group(self._labels[0], first).add_group(self._labels[1], second).gauge(
                self._name, lambda key=key: self._values[key])
        self._values[key] = int(value)


def job_group(runtime_context):
    """The ``mmon`` metric group of an operator."""
    return runtime_context.get_metrics_group().add_group(GROUP)
