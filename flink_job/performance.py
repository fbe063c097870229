"""Realised performance: the model's predictions joined to their true labels, per tumbling window of the
request's time, revised as labels arrive and final once ``ground_truth.max_delay`` has passed.

With a ``ground_truth`` section the parsed records pass, after the response join, the Java ``LabelJoin`` keyed by
request id (on the join's own partitioning: no second exchange): requests go on to the router unchanged, their
predictions wait in keyed state for their labels up to ``max_delay`` of event time, and label records are
consumed (joined, or passed on rejected, ``unmatched_label`` / ``wrong_label_count``, for the router to
dead-letter). Its side output, one arrival row per request and one joined row per labelled request, each with the
request's version, is gathered per window and version by the Java ``LabelledBatches`` (one batch per window and
version at each watermark), so Python is called per window, version and batch, never per request: every
performance record is of one version.

`WindowPerformance`, keyed by window start and model version, folds each batch into the window's accumulators
(`udfs.performance`): the window's first record goes out with its first labels, later ones at most once per
``ground_truth.update_interval`` of event time while labels keep coming (each numbered: ``revision`` 0, 1, ...),
and the last, ``final: true``, when the watermark passes the window's last millisecond plus ``max_delay`` (every
request of the window has then had its labels or been released) or at the end of a bounded input. A record per
(window, metric): ``model, version, window_start, window_end, metric, value, labelled, predictions, coverage, baseline,
alert, final, revision``; ``predictions`` counts the window's instances with a prediction (from the arrival rows,
so the coverage ``labelled / predictions`` is exact at every revision).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np
from pyflink.common import Row, Types
from pyflink.datastream import DataStream
from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from contract import outputs
from contract.spec import CATEGORICAL, MonitorSpec

from udfs import performance as realised
from udfs.baseline import Baseline

from flink_job import java_functions, parse, rows, windows

FLUSH_MS = 200  # a labelled batch leaves at the next watermark or after this much processing time
UIDS = {"label_join": "mmon-label-join", "batches": "mmon-labelled-batches", "performance": "mmon-performance"}
NO_TIME = -(1 << 63)  # before any watermark

BATCH_ROW = Types.ROW_NAMED(["window_start", "predictions", "count", "predicted", "truth", "labels", rows.VERSION],
                            [Types.LONG(), Types.LONG(), Types.INT(), Types.PRIMITIVE_ARRAY(Types.BYTE()),
                             Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.BASIC_ARRAY(Types.STRING()), Types.STRING()])
"""A window's labelled batch of one model version (``LabelledBatches.BATCH_FIELDS``): its new predictions, its
``count`` new labelled pairs (``predicted`` and ``truth``, float64 each; negative codes index ``labels``), the
``version``."""
KEYED_BATCH_ROW = Types.ROW([Types.STRING(), BATCH_ROW])  # ("<window start>/<version>", batch)
RECORD_ROW = Types.ROW_NAMED(["kind", "model", "window_start", "metric", "payload"],
                             [Types.STRING(), Types.STRING(), Types.LONG(), Types.STRING(), Types.STRING()])


def joined_labels(requests: DataStream, spec: MonitorSpec, baseline: Baseline) -> tuple[DataStream, DataStream]:
    """The response join's output (`flink_job.rows.REQUEST_FIELDS` rows, partitioned by request id) through the Java
    ``LabelJoin``: returns the records for the router (requests, rejected records, labels dead-lettered) and the
    labelled batches (`KEYED_BATCH_ROW`) for `performance_records`."""
    package = java_functions.package()
    join = package.LabelJoin(requests._j_data_stream.getType(), parse.java_schema(spec, baseline),
                             int(spec.ground_truth.max_delay))
    passed = java_functions.keyed_transformed(requests, package.ResponseJoin.ByRequestId(), join, "label join",
                                              UIDS["label_join"], partitioned=True)
    labelled = java_functions.side_output(passed, package.LabelJoin.LABELLED)
    batches = java_functions.transformed(labelled, package.LabelledBatches(int(spec.window.duration), FLUSH_MS),
                                         KEYED_BATCH_ROW, "labelled batches per window", UIDS["batches"])
    return passed, batches


def performance_records(batches: DataStream, spec: MonitorSpec, baseline: Baseline) -> DataStream:
    """The performance records (`flink_job.rows.OUTPUT_ROW` rows of kind ``performance``, keyed
    ``model/window_start/metric``) from the labelled batches."""
    function = WindowPerformance(spec.model.name, Metrics.of(spec, baseline), int(spec.window.duration),
                                 int(spec.ground_truth.max_delay), int(spec.ground_truth.update_interval),
                                 spec.model.version)
    records = (java_functions.keyed(batches, Types.STRING(), BATCH_ROW)
               .process(function, output_type=RECORD_ROW)
               .name("performance per window")
               .uid(UIDS["performance"]))
    return windows.output_records(records, RECORD_ROW, ("model", "window_start", "metric"), "performance records")


class Metrics:
    """The spec's realised-performance metrics (``ground_truth.metrics``) over `udfs.performance`: a window's
    accumulator (a ``ClassificationWindow`` over the baseline's classes, or a ``RegressionWindow``), folded batch by
    batch from the label join's codes or values, and its results, each with the baseline's value and the calibrated
    alert (``PerformanceTest``) when the baseline holds the model's performance on its rows."""

    def __init__(self, names: Sequence[str], vocabulary: Optional[np.ndarray], reference: Any, test: Any):
        self.names, self.vocabulary, self.reference, self.test = tuple(names), vocabulary, reference, test

    @classmethod
    def of(cls, spec: MonitorSpec, baseline: Baseline) -> "Metrics":
        """The metrics of ``spec``: a categorical output's codes index its baseline vocabulary (the parser's order)."""
        reference = baseline.performance
        test = (None if reference is None
                else realised.PerformanceTest(reference, spec.ground_truth.false_alarm_rate, spec.ground_truth.metrics))
        column = baseline.output.feature
        vocabulary = np.array(column.vocabulary, dtype=object) if column.type == CATEGORICAL else None
        return cls(spec.ground_truth.metrics, vocabulary, reference, test)

    def new(self) -> Any:
        """An empty window accumulator."""
        if self.vocabulary is None:
            return realised.RegressionWindow()
        return self.reference.window() if self.reference is not None else realised.ClassificationWindow(self.vocabulary)

    def update(self, window: Any, predicted: np.ndarray, truth: np.ndarray, labels: Optional[Sequence[str]]) -> None:
        """Adds a batch: predicted and true values (a categorical output's codes: into the vocabulary, or
        ``-(1 + j)`` for ``labels[j]``; NaN missing) to ``window``."""
        if self.vocabulary is None:
            window.update(predicted, truth)
            return
        size = len(self.vocabulary)
        dictionary = np.concatenate([self.vocabulary, np.array(labels, dtype=object)]) if labels else self.vocabulary
        window.update(dictionary, windows.category_codes(predicted, size), windows.category_codes(truth, size))

    def results(self, window: Any) -> list[dict]:
        """One result per metric (per class for precision, recall and f1): ``metric`` (and ``class``), ``value``,
        ``baseline``, the alert's bounds and p-value when tested, ``alert``; ``confusion`` with its ``classes``."""
        values = window.result()
        verdicts = {(v.metric, v.label): v for v in self.test.verdicts(window)} if self.test is not None else {}
        results = []
        for name in self.names:
            if name == "confusion":
                results.append({"metric": name, "classes": values["classes"], "value": values[name],
                                "baseline": None, "alert": False})
            elif isinstance(values[name], dict):
                results += [self._result(name, value, verdicts.get((name, label)), label)
                            for label, value in values[name].items()]
            else:
                results.append(self._result(name, values[name], verdicts.get((name, None))))
        return results

    def _result(self, metric: str, value: Any, verdict: Any, label: Optional[str] = None) -> dict:
        result = {"metric": metric, **({"class": label} if label is not None else {}), "value": value,
                  "baseline": self._baseline(metric, label)}
        if verdict is not None:
            result.update({"low": verdict.low, "high": verdict.high, "p_value": verdict.p_value})
        result["alert"] = bool(verdict is not None and verdict.alert)
        return result

    def _baseline(self, metric: str, label: Optional[str]) -> Optional[float]:
        """The baseline rows' value of ``metric`` (of class ``label``; None without one, or for a class they lack)."""
        if self.reference is None:
            return None
        value = self.reference.metrics()[metric]
        if label is not None:
            classes = list(self.reference.classes)
            value = value[classes.index(label)] if label in classes else float("nan")
        value = float(value)
        return None if np.isnan(value) else value


@dataclass
class WindowState:
    """A window's performance so far (keyed state): its start, its accumulator (created with its first labels), its
    predictions and scored pairs, the last revision emitted (-1: none) and the watermark it left at, whether labels came since
    (a revision is due), and when it is final (its last millisecond plus the max_delay its first batch came under,
    later if a restore lengthened max_delay)."""

    start: int
    final_at: int
    predictions: int = 0
    labelled: int = 0
    accumulator: Any = None
    revision: int = -1
    emitted_at: int = NO_TIME
    pending: bool = False
    version: str = "1"


class WindowPerformance(KeyedProcessFunction):
    """Keyed by window start and model version: each labelled batch folded into its window's `WindowState` (one per
    version); records out with the window's first labels, then at most once per ``update_interval_ms`` of event time
    while labels come, then final."""

    def __init__(self, model: str, metrics: Metrics, window_ms: int, max_delay_ms: int, update_interval_ms: int,
                 version: str = "1"):
        self.model, self.metrics, self.version = model, metrics, version
        self.window_ms, self.max_delay_ms, self.update_interval_ms = window_ms, max_delay_ms, update_interval_ms
        self.state = None

    def open(self, runtime_context: RuntimeContext):
        self.state = runtime_context.get_state(ValueStateDescriptor("window", Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, value, ctx: KeyedProcessFunction.Context):
        start = value[0]
        state = self.state.value()
        final_at = start + self.window_ms - 1 + self.max_delay_ms
        if state is None or state.final_at < final_at:
            state = state or WindowState(start, final_at, version=value[6] or self.version)
            state.final_at = final_at
            ctx.timer_service().register_event_time_timer(final_at)
        self._fold(state, value)
        watermark = ctx.timer_service().current_watermark()
        if value[2] and state.revision < 0:
            yield from self._emitted(state, watermark, final=False)
        elif value[2] and not state.pending:
            state.pending = True
            ctx.timer_service().register_event_time_timer(max(state.emitted_at + self.update_interval_ms, watermark + 1))
        self.state.update(state)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        state = self.state.value()
        if state is None:
            return
        if timestamp >= state.final_at:
            yield from self._emitted(state, timestamp, final=True)
            self.state.clear()
        elif state.pending and ctx.timer_service().current_watermark() < state.final_at:  # else: final now
            yield from self._emitted(state, timestamp, final=False)
            self.state.update(state)

    def _fold(self, state: WindowState, batch) -> None:
        state.predictions += batch[1]
        if not batch[2]:
            return
        if state.accumulator is None:
            state.accumulator = self.metrics.new()
        self.metrics.update(state.accumulator, np.frombuffer(batch[3], dtype="<f8"),
                            np.frombuffer(batch[4], dtype="<f8"), batch[5])
        state.labelled = state.accumulator.labelled  # the pairs scored: a prediction and a label both present

    def _emitted(self, state: WindowState, at: int, final: bool) -> Iterator[Row]:
        """The window's records (one per metric) as `RECORD_ROW` rows; the state marked emitted at ``at``."""
        state.revision += 1
        state.emitted_at, state.pending = at, False
        accumulator = state.accumulator if state.accumulator is not None else self.metrics.new()
        results = self.metrics.results(accumulator)  # a window without labels: its metrics without a value
        for record in window_records(self.model, self.window_ms, state, results, final):
            key = record["metric"] + (f"/{record['class']}" if "class" in record else "")
            yield Row(outputs.PERFORMANCE, self.model, state.start, key, outputs.record_json(record))


def window_records(model: str, window_ms: int, state: WindowState, results: list[dict], final: bool) -> list[dict]:
    """A window's records: each metric result (`Metrics.results`) with the window's counts, coverage, revision
    and finality."""
    coverage = state.labelled / state.predictions if state.predictions else None
    window = {"model": model, "version": state.version, "window_start": state.start, "window_end": state.start + window_ms}
    counts = {"labelled": state.labelled, "predictions": state.predictions, "coverage": coverage}
    return [{**window, **{k: v for k, v in result.items() if k != "alert"}, **counts, "alert": result["alert"],
             "final": final, "revision": state.revision} for result in results]

