"""Comparison step: the candidate version against the stable one, window by window (``versions.stable`` and
``versions.candidate``); the math is `udfs.comparison`.

Drift: the per-version stats rows (`flink_job.rows.STATS_ROW`, ``version`` among their fields) are keyed by column;
`VersionPairs` keeps each window's rows of the two versions and, at an event-time timer at the window's last
millisecond, compares them. The window operator emits a window's rows of every version before it forwards the
watermark that closes the window, so when the timer fires (the watermark past that millisecond on every input)
both versions' rows of the window are there. Where both have at least ``versions.min_count`` instances, each
configured drift metric (not ``ks``, ``cvm``: `udfs.comparison`) of the candidate's window against the stable
version's goes out as one record::

    {"kind":"drift","window_start","window_end","feature","metric","value","threshold","flagged",
     "stable_count","candidate_count"}

(the counts: each version's instances in the window, present values and missing ones).

Performance (with ``ground_truth``): the per-version performance records, keyed by (window, metric);
`PerformancePairs` keeps each version's latest revision and, whenever one arrives and both versions have one
with at least ``versions.min_count`` labelled pairs, compares them (`udfs.comparison.accuracy_difference` at
``1 - ground_truth.false_alarm_rate``; ``final`` when both are, and then the window's state is cleared)::

    {"kind":"performance","window_start","window_end","metric","stable","candidate","delta","ci_low","ci_high",
     "verdict","final"}

Only ``accuracy`` is compared in the job: a performance record carries its value and its labelled count, which
give an accuracy's counts exactly, but not the residuals' variances that ``mae`` and ``rmse`` need.
"""
from __future__ import annotations

import json
from typing import Iterator, Optional

from pyflink.common import Row, Types
from pyflink.datastream import DataStream
from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import MapStateDescriptor

from contract import outputs
from contract.spec import MonitorSpec

from udfs import comparison as math
from udfs.baseline import Baseline
from udfs.performance import ACCURACY

from flink_job import drift, rows

UIDS = {"drift": "mmon-comparison-drift", "performance": "mmon-comparison-performance"}
KIND, FEATURE, WINDOW_START, WINDOW_END, COUNT, MISSING, HISTOGRAM, VERSION = (
    rows.STATS_ROW.get_field_names().index(name)
    for name in ("kind", "feature", "window_start", "window_end", "count", "missing", "histogram", outputs.VERSION))
"""Where `VersionPairs` reads a stats row's fields, by their names in `rows.STATS_ROW` (as `flink_job.alerts` does)."""


def enabled(spec: MonitorSpec) -> bool:
    """Whether the spec names both versions to compare."""
    return spec.versions.stable is not None and spec.versions.candidate is not None


def comparison_records(stats: DataStream, performance: Optional[DataStream], spec: MonitorSpec,
                       baseline: Baseline) -> list[DataStream]:
    """The comparison records (`rows.OUTPUT_ROW` rows of kind ``comparison``) from the per-version stats rows and,
    with ground truth, the per-version performance records (`rows.OUTPUT_ROW` rows)."""
    versions = (spec.versions.stable, spec.versions.candidate)
    compare = math.VersionDrift(baseline, spec.columns, drift.metric_rules(spec))
    records = [stats.key_by(lambda row: row[FEATURE], key_type=Types.STRING())
               .process(VersionPairs(spec.model.name, versions, spec.versions.min_count, compare),
                        output_type=rows.OUTPUT_ROW)
               .name("comparison of the versions' windows")
               .uid(UIDS["drift"])]
    if performance is not None:
        records.append(performance.key_by(_window_metric, key_type=Types.STRING())
                       .process(PerformancePairs(spec.model.name, versions, spec.versions.min_count,
                                                 spec.ground_truth.false_alarm_rate), output_type=rows.OUTPUT_ROW)
                       .name("comparison of the versions' performance")
                       .uid(UIDS["performance"]))
    return records


def _window_metric(row) -> str:
    record = json.loads(row[2])
    return f"{record['window_start']}/{record['metric']}/{record.get('class', '')}"


class VersionPairs(KeyedProcessFunction):
    """Keyed by column: per window, the stable and the candidate version's stats rows, compared when the window's
    timer fires (module docstring)."""

    def __init__(self, model: str, versions: tuple[str, str], min_count: int, compare: math.VersionDrift):
        self.model, self.versions, self.min_count, self.compare = model, versions, min_count, compare
        self.windows = None

    def open(self, runtime_context: RuntimeContext):
        self.windows = runtime_context.get_map_state(
            MapStateDescriptor("windows", Types.LONG(), Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, row, ctx: KeyedProcessFunction.Context):
        if row[KIND] != outputs.STATS or row[VERSION] not in self.versions:
            return
        start = row[WINDOW_START]
        sides = self.windows.get(start) or {}
        if not sides:
            ctx.timer_service().register_event_time_timer(row[WINDOW_END] - 1)
        sides[row[VERSION]] = (row[WINDOW_END], math.WindowSide(int(row[COUNT]), int(row[MISSING]),
                                                                 [int(c) for c in row[HISTOGRAM]]))
        self.windows.put(start, sides)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Row]:
        closed = [start for start, sides in self.windows.items()
                  if next(iter(sides.values()))[0] - 1 <= timestamp]
        for start in sorted(closed):
            yield from self._compared(ctx.get_current_key(), start, self.windows.get(start))
            self.windows.remove(start)

    def _compared(self, feature: str, start: int, sides: dict) -> Iterator[Row]:
        if not all(version in sides for version in self.versions):
            return
        (end, stable), (_, candidate) = (sides[version] for version in self.versions)
        if min(stable.instances, candidate.instances) < self.min_count:
            return
        for result in self.compare.compare(feature, stable, candidate):
            record = {"kind": "drift", "window_start": start, "window_end": end, "feature": feature,
                      "metric": result.metric, "value": result.value, "threshold": result.threshold,
                      "flagged": result.flagged, "stable_count": stable.instances,
                      "candidate_count": candidate.instances}
            yield Row(outputs.COMPARISON, f"{self.model}/{feature}/{result.metric}", outputs.record_json(record))


class PerformancePairs(KeyedProcessFunction):
    """Keyed by (window, metric): each version's latest performance record, the two compared whenever one arrives
    and both are there (module docstring)."""

    def __init__(self, model: str, versions: tuple[str, str], min_count: int, rate: float):
        self.model, self.versions, self.min_count, self.rate = model, versions, max(1, min_count), rate
        self.latest = None

    def open(self, runtime_context: RuntimeContext):
        self.latest = runtime_context.get_map_state(
            MapStateDescriptor("latest", Types.STRING(), Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, row, ctx: KeyedProcessFunction.Context) -> Iterator[Row]:
        record = json.loads(row[2])
        if record.get("metric") != ACCURACY or record.get("version") not in self.versions:
            return
        if record.get("value") is None or not record.get("labelled"):
            return
        self.latest.put(record["version"], record)
        stable, candidate = (self.latest.get(version) for version in self.versions)
        if stable is None or candidate is None or min(stable["labelled"], candidate["labelled"]) < self.min_count:
            return
        result = math.accuracy_difference(_correct(stable), stable["labelled"], _correct(candidate),
                                          candidate["labelled"], self.rate)
        out = {"kind": "performance", "window_start": record["window_start"], "window_end": record["window_end"],
               "metric": result.metric, "stable": result.stable, "candidate": result.candidate, "delta": result.delta,
               "ci_low": result.ci_low, "ci_high": result.ci_high, "verdict": result.verdict,
               "final": bool(stable["final"] and candidate["final"])}
        if out["final"]:
            self.latest.clear()  # the window's last comparison: nothing of it comes again
        yield Row(outputs.COMPARISON, f"{self.model}/{record['window_start']}/{result.metric}", outputs.record_json(out))


def _correct(record: dict) -> int:
    """An accuracy record's correct pairs: its value times its labelled pairs, a whole number."""
    return int(round(record["value"] * record["labelled"]))

