"""Custom Flink metrics of the job (group ``mmon``), exported by Flink's Prometheus reporter.

The window operators (Python) register theirs in ``open``; the JVM-side steps (parse, late filter,
outlier filter) and drift are counted where their small outputs pass the egress, the Java map
``io.github.mmon.flink.Egress`` of `flink_job.sinks`, so nothing runs per instance:

- ``instances_windowed``            instances that reached the windows (counted per sub-batch);
- ``dead_letter{reason=...}``       dead-lettered records by reason (``late`` included);
- ``late_events``                   records behind the watermark;
- ``parse_errors``                  records that could not be parsed (every other dead-letter reason);
- ``outliers{version=...,feature=...}``  outlier alerts by model version and feature;
- ``windows_emitted``               per-feature window statistics records;
- ``drift_alerts``                  drift records over their threshold;
- ``drift_value_micros{version=...,feature=...,metric=...}``  last drift value x 1e6 (an integer gauge);
- ``performance_value_micros{version=...,metric=...,class=...}``  the latest realised-performance value x 1e6
  (``ground_truth``; ``class`` empty but for the per-class metrics; the confusion matrix has no gauge);
- ``performance_alert{version=...,metric=...,class=...}``  1 when the latest performance record of the metric is
  alerted, else 0;
- ``label_coverage_micros{version=...}``  the latest performance record's label coverage (labelled / predictions)
  x 1e6;
- ``labels_joined``                 label messages joined to their predictions (the label join);
- ``alert_active{model=...,version=...,feature=...}``  1 while an alert episode of the feature of the version
  (``feature`` empty: the model's own episode) is open, 0 once it closed (`flink_job.alerts`; set by the egress from the alerts events).

With the Prometheus reporter (``job.metrics_port`` / ``--metrics-port``) the names are
``flink_taskmanager_job_task_operator_mmon_<name>`` and, for the labelled ones,
``..._mmon_reason_dead_letter{reason=...}``, ``..._mmon_version_feature_outliers{version=...,feature=...}`` and
``..._mmon_version_feature_metric_drift_value_micros{version=...,feature=...,metric=...}``, and
``..._mmon_version_metric_class_performance_value_micros{version=...,metric=...,class=...}``,
``..._mmon_version_metric_class_performance_alert``, ``..._mmon_version_label_coverage_micros{version=...}`` and
``..._mmon_model_version_feature_alert_active{model=...,version=...,feature=...}`` (``version``: the model version
of the records, issue 22; every result is per version).
A labelled metric shows up with its first event; PyFlink reports a Python metric to the JVM when it is first updated.
"""
from __future__ import annotations

GROUP = "mmon"


def job_group(runtime_context):
    """The ``mmon`` metric group of an operator."""
    return runtime_context.get_metrics_group().add_group(GROUP)
