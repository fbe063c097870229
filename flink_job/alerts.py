"""Drift control and alerts: every drift test of a window at once, controlled together, one verdict per model, and
alert episodes.

The window step emits a closed window's statistics rows (one per column and shard) before it forwards the watermark
that closed the window, so keyed by model version, `WindowAlerts` has every row of a window when the watermark passes the
window's last millisecond: an event-time timer there. It keeps the rows in keyed state until then (a checkpoint
between two rows of a window keeps them), runs the drift tests of all the window's rows in one call
(`flink_job.drift`), controls their p-values (`udfs.discovery.window_verdict`, ``drift.control``) and emits:

- the drift records (every one with ``drift.emit_all``, else those over their threshold or discovered), each with
  its ``p_value`` and ``discovery``;
- one ``model_drift`` record per window: ``model, window_start, window_end, tests`` (tests with a p-value),
  ``discoveries`` (discovered tests), ``features`` (the columns discovered), ``drift`` (the model's verdict),
  ``p_value`` (its global p-value, `udfs.discovery.global_p_value`), ``method``, ``q``;
- the ``alerts`` events of the episodes (`udfs.discovery.Episodes`, kept in keyed state, so a restored job
  carries its open episodes on): ``model, event`` (open, update, close), ``scope`` (feature, model), ``feature``
  (null for the model), ``metrics, first_window, last_window, windows, window_start``.

Output rows leave as `flink_job.rows.OUTPUT_ROW` directly (kind, Kafka key, JSON): drift keyed
``model/feature/metric``, model_drift ``model``, alerts ``model/feature`` (``model/`` for the model's episodes).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
from pyflink.common import Row, Types
from pyflink.datastream import DataStream
from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor

from contract import outputs
from contract.spec import MonitorSpec

from udfs import discovery
from udfs.baseline import Baseline

from flink_job import drift, rows

UID = "mmon-drift-alerts"
STATS_FIELDS = ("feature", "window_start", "window_end", "count", "missing", "histogram", "tests")
"""The fields of a stats row (`flink_job.rows.STATS_ROW`) the drift tests read, in `drift.WindowRows` order."""


def drift_and_alerts(stats: DataStream, spec: MonitorSpec, baseline: Baseline) -> DataStream:
    """The drift, model_drift and alerts output rows from the window statistics rows (`rows.STATS_ROW`)."""
    version = rows.STATS_ROW.get_field_names().index(outputs.VERSION)
    return (stats.key_by(lambda row: row[version], key_type=Types.STRING())
            .process(WindowAlerts(spec, baseline), output_type=rows.OUTPUT_ROW)
            .name("drift tests, control and alerts")
            .uid(UID))


class WindowAlerts(KeyedProcessFunction):
    """Keyed by model version (a job monitors one model; every result is per version): a window's stats rows
    gathered until the watermark passes its end, then its drift tests, their control, the model's verdict and the alert episodes (module docstring). The threshold curves are
    calibrated where the job is built and travel with the function (`drift.window_drift`)."""

    def __init__(self, spec: MonitorSpec, baseline: Baseline):
        self.spec = spec
        self.math = drift.window_drift(spec, baseline)
        self.fields = [rows.STATS_ROW.get_field_names().index(name) for name in STATS_FIELDS]
        self.rows = self.episodes = None

    def open(self, runtime_context: RuntimeContext):
        self.rows = runtime_context.get_list_state(ListStateDescriptor("window-rows", Types.PICKLED_BYTE_ARRAY()))
        self.episodes = runtime_context.get_state(ValueStateDescriptor("episodes", Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, value, ctx: KeyedProcessFunction.Context):
        if value[0] != outputs.STATS:
            return  # a covariance row
        row = tuple(value[i] for i in self.fields)
        self.rows.add(row)
        ctx.timer_service().register_event_time_timer(row[2] - 1)  # the window's last millisecond

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        waiting = list(self.rows.get() or [])
        closed = sorted((row for row in waiting if row[2] - 1 <= timestamp), key=lambda row: row[1])
        if not closed:
            return
        self.rows.update([row for row in waiting if row[2] - 1 > timestamp])
        episodes = self._episodes()
        for start in dict.fromkeys(row[1] for row in closed):
            yield from self._window([row for row in closed if row[1] == start], episodes, ctx.get_current_key())
        self.episodes.update(episodes)

    def _episodes(self) -> discovery.Episodes:
        """The model's episodes from keyed state (new ones at first), under this spec's rules: a job restored under
        another ``alerts`` section keeps its open episodes and applies the new k, m and close from now on."""
        config = self.spec.alerts
        episodes = self.episodes.value() or discovery.Episodes(config.open.k, config.open.m, config.close,
                                                              int(self.spec.window.duration))
        episodes.k, episodes.m, episodes.close = config.open.k, config.open.m, config.close
        return episodes

    def _window(self, closed: list, episodes: discovery.Episodes, version: str) -> Iterator[Row]:
        """One window's drift records, model verdict and alert events, of one model version."""
        model = self.spec.model.name
        window = drift.WindowRows(*zip(*closed))
        results = drift.evaluate(self.spec, self.math, window)
        control = self.spec.drift.control
        metrics = list(results)
        p_values = np.concatenate([results[metric].p_values for metric in metrics])
        flags = np.concatenate([results[metric].values > results[metric].thresholds for metric in metrics])
        verdict = discovery.window_verdict(p_values, flags, control.method, control.q)
        discoveries = dict(zip(metrics, np.split(verdict.discoveries, len(metrics))))
        for feature, records in zip(window.features, drift.drift_records(self.spec, window, results, discoveries, version)):
            for metric, record in records:
                yield Row(outputs.DRIFT, f"{model}/{feature}/{metric}", record)
        found = discovery.discovered_metrics(list(window.features) * len(metrics),
                                             np.repeat(metrics, len(window.features)), verdict.discoveries)
        start, end = int(window.window_start[0]), int(window.window_end[0])
        yield Row(outputs.MODEL_DRIFT, model, outputs.record_json(model_record(model, version, start, end, verdict, found, control)))
        if verdict.drift:
            found[discovery.MODEL] = list(dict.fromkeys(m for names in found.values() for m in names))
        for event in episodes.step(start, found):
            key = f"{model}/{event['feature'] or ''}"
            yield Row(outputs.ALERTS, key, outputs.record_json({"model": model, outputs.VERSION: version, **event}))


def model_record(model: str, version: str, start: int, end: int, verdict: discovery.Verdict, found: dict,
                 control) -> dict:
    """A window's ``model_drift`` record (module docstring)."""
    return {"model": model, outputs.VERSION: version, "window_start": start, "window_end": end, "tests": verdict.tests,
            "discoveries": int(verdict.discoveries.sum()), "features": sorted(found), "drift": verdict.drift,
            "p_value": verdict.p_value, "method": control.method, "q": control.q}

