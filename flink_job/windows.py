"""Event time, outliers and windows: the parsed requests through the Java router into keyed windows.

The Java ``RequestRouter`` (``jvm/udfs``), chained to the parse step, dead-letters rejected and late
requests, checks every accepted instance against the outlier rules (`flink_job.outliers`) and appends
it to its tumbling window's buffer. A buffer leaves as *sub-batches*, one per shard of features (the
shard's columns, row-major float64 bytes), when the watermark passes the window's end (before the
watermark itself, so a window never receives them late) or when it holds `FLUSH_VALUES` values; the
open windows' buffers are part of the router's checkpointed state. Alerts and dead letters leave on the router's side output as output rows.

Python keys the sub-batches by shard and folds them into one `udfs.stats.BlockStats` per (shard,
window): one vectorised pass over the sub-batch's matrix, whatever the width; each sub-batch crosses
into Python once. A window fires when the watermark passes its end (the final watermark of a bounded
input included) and emits one stats row per feature of its shard; when the spec asks for the two-sample
tests (``ks``, ``cvm``), the row also carries their statistics, computed there from the window's CDF
(exact values, or the KLL sketch with its rank error) against the baseline's training sample: the
window's values exist nowhere else. Covariance/correlation, when enabled, come from shard 0, whose
sub-batches then carry every column: its state folds the whole matrix into a
`udfs.stats.CovarianceAccumulator` and its own columns into their statistics, and it emits one more row
per matrix (kind ``covariance``), so the matrix takes no second path into Python.
"""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np
from pyflink.common import Row, Types
from pyflink.common.typeinfo import TypeInformation
from pyflink.common.time import Time
from pyflink.datastream import DataStream
from pyflink.datastream.functions import AggregateFunction, ProcessWindowFunction
from pyflink.datastream.window import TumblingEventTimeWindows

from udfs.baseline import Baseline
from udfs.drift import TESTS
from udfs.stats import BlockStats, CovarianceAccumulator

from flink_job import java_functions, metrics, outliers, parse
from flink_job.config import TWO_SAMPLE_TESTS, MonitorSpec, shard_count

STATS_KIND = "stats"
COVARIANCE_KIND = "covariance"
DEAD_LETTER_KIND = "dead_letter"
FLUSH_VALUES = 1 << 20  # a window buffer this full leaves early: 8 MB of float64, whatever the width

OUTPUT_ROW = Types.ROW_NAMED(["kind", "k", "payload"], [Types.STRING(), Types.STRING(), Types.STRING()])
SUB_BATCH_ROW = Types.ROW_NAMED(["shard", "window_start", "count", "packed"],
                                [Types.INT(), Types.LONG(), Types.INT(), Types.PRIMITIVE_ARRAY(Types.BYTE())])
KEYED_SUB_BATCH_ROW = Types.ROW([Types.INT(), SUB_BATCH_ROW])  # (shard key, sub-batch): see `shard_keys`
MAX_PARALLELISM = 128  # fixed, so that the shard keys' subtasks do not move between runs (Flink's default here)
STATS_ROW = Types.ROW_NAMED(
    ["kind", "model", "feature", "window_start", "window_end", "count", "histogram", "payload", "tests"],
    [Types.STRING(), Types.STRING(), Types.STRING(), Types.LONG(), Types.LONG(), Types.LONG(),
     Types.BASIC_ARRAY(Types.LONG()), Types.STRING(), Types.STRING()])
"""A closed window's record: one per feature (kind ``stats``: key columns, the drift-layout histogram, the
stats record as JSON and ``tests``, a JSON object of two-sample statistic by test name, `two_sample_tests`;
``{}`` when none is configured, a null statistic for a column without values), and one per enabled matrix
(kind ``covariance``: ``feature`` names the matrix, no histogram)."""


def shard_bounds(n_features: int, shards: int) -> list[int]:
    """Column boundaries of ``shards`` contiguous, nearly equal blocks: shard s is ``[b[s], b[s + 1])``."""
    return [n_features * s // shards for s in range(shards + 1)]


def shard_keys(shards: int, parallelism: int) -> list[int]:
    """A key per shard such that shard ``s`` lands on window subtask ``s % parallelism``: Flink places a key
    by its hash, and the plain shard numbers crowd onto few subtasks (at parallelism 2, shards 0 and 1 both
    go to subtask 0), leaving the others idle. The smallest such integers, found with Flink's own rule."""
    keys: list[int] = []
    candidate = 0
    for shard in range(shards):
        while java_functions.subtask_of_key(candidate, MAX_PARALLELISM, parallelism) != shard % parallelism:
            candidate += 1
        keys.append(candidate)
        candidate += 1
    return keys


def spec_shard_bounds(spec: MonitorSpec) -> list[int]:
    """`shard_bounds` of the spec's features and shard count."""
    return shard_bounds(len(spec.input.features), shard_count(spec))


def matrices(spec: MonitorSpec) -> tuple[str, ...]:
    """The enabled window matrices: ``covariance`` and/or ``correlation``."""
    return tuple(name for name, on in (("covariance", spec.stats.covariance),
                                      ("correlation", spec.stats.correlation)) if on)


def route(requests: DataStream, spec: MonitorSpec, baseline: Baseline) -> tuple[DataStream, DataStream]:
    """The parsed requests (`parse.REQUEST_FIELDS` rows) through the Java router: returns the
    sub-batches with their shard keys (`KEYED_SUB_BATCH_ROW`; shard 0's with every column when covariance
    is on) and the alert and dead-letter rows (`OUTPUT_ROW`)."""
    package = java_functions.package()
    keys = shard_keys(shard_count(spec), spec.job.parallelism)
    settings = package.RouterSettings(len(spec.input.features), int(spec.window.duration),
                                      java_functions.int_array(spec_shard_bounds(spec)), java_functions.int_array(keys),
                                      bool(matrices(spec)), FLUSH_VALUES, parse.LATE)
    dead_letters = package.DeadLetters(DEAD_LETTER_KIND, spec.job.dead_letter_max_raw_bytes)
    router = package.RequestRouter(settings, outliers.java_rules(spec, baseline), dead_letters)
    sub_batches = java_functions.transformed(requests, router, KEYED_SUB_BATCH_ROW, "event time, outliers, sub-batches")
    records = java_functions.side_output(sub_batches, package.RequestRouter.RECORDS)
    return sub_batches, records


def two_sample_tests(spec: MonitorSpec) -> tuple[str, ...]:
    """The configured two-sample tests (``ks``, ``cvm``): computed in the window step, thresholded in drift."""
    return tuple(name for name in TWO_SAMPLE_TESTS if name in spec.drift.metrics)


def unpack(packed: bytes, count: int) -> np.ndarray:
    """The (instances x columns) matrix of a sub-batch, without copying."""
    return np.frombuffer(packed, dtype="<f8").reshape(count, -1)


class ShardWindow:
    """A (shard, window)'s state: a `BlockStats` of the shard's ``width`` columns, and for shard 0 with
    covariance on (``matrix_width`` > 0) a `CovarianceAccumulator` of all of the sub-batch's columns."""

    def __init__(self, shard: int, edges: list[list[float]], matrix_width: int = 0):
        self.shard, self.stats, self.width = shard, BlockStats(edges), len(edges)
        self.covariance = CovarianceAccumulator(matrix_width) if matrix_width else None

    def update(self, matrix: np.ndarray) -> None:
        if self.covariance is not None:
            self.covariance.update(matrix)
            matrix = matrix[:, :self.width]
        self.stats.update(matrix)

    def merge(self, other: "ShardWindow") -> None:
        self.stats.merge(other.stats)
        if self.covariance is not None:
            self.covariance.merge(other.covariance)


class BlockStatsAggregate(AggregateFunction):
    """Window state: one `ShardWindow` per shard on its features' baseline edges, updated per sub-batch;
    ``matrix_width``: the number of features when covariance is on (shard 0 then sees every column), else 0."""

    def __init__(self, edges_by_shard: list[list[list[float]]], matrix_width: int = 0):
        self.edges_by_shard, self.matrix_width = edges_by_shard, matrix_width

    def create_accumulator(self):
        return None

    def add(self, value, accumulator):
        if accumulator is None:
            shard = value[0]
            accumulator = ShardWindow(shard, self.edges_by_shard[shard], self.matrix_width if shard == 0 else 0)
        accumulator.update(unpack(value[3], value[2]))
        return accumulator

    def get_result(self, accumulator):
        return accumulator

    def merge(self, a, b):
        if a is None or b is None:
            return b if a is None else a
        a.merge(b)
        return a


class EmitStats(ProcessWindowFunction):
    """A closed (shard, window) -> one `STATS_ROW` per feature of the shard: key columns, the drift-layout
    histogram, the JSON payload and the statistics of the two-sample ``tests`` against each feature's
    training sample (``samples_by_shard``); then, from shard 0, one per enabled matrix (`matrices`) of all
    ``features``. Shard 0 counts the window's instances (every shard holds them all)."""

    def __init__(self, model: str, features_by_shard: list[tuple[str, ...]], statistics: tuple[str, ...],
                 tests: tuple[str, ...] = (), samples_by_shard: list[list[np.ndarray]] = (),
                 matrices: tuple[str, ...] = (), features: tuple[str, ...] = ()):
        self.model, self.features_by_shard, self.statistics = model, features_by_shard, statistics
        self.tests, self.samples_by_shard = tests, samples_by_shard
        self.matrices, self.features = matrices, features
        self.windows = self.instances = None

    def open(self, runtime_context):
        group = metrics.job_group(runtime_context)
        self.windows = group.counter("windows_emitted")
        self.instances = group.counter("instances_windowed")

    def process(self, key, context, elements):
        state = next(iter(elements))
        shard = state.shard
        stats, window = state.stats, context.window()
        results = stats.results()
        if shard == 0:
            self.instances.inc(results[0]["count"])
        for j, (feature, result, histogram) in enumerate(zip(self.features_by_shard[shard], results,
                                                             stats.histogram_counts())):
            record = {"model": self.model, "feature": feature, "window_start": window.start, "window_end": window.end,
                      "count": result["count"], **{name: result[name] for name in self.statistics}}
            self.windows.inc()
            yield Row(STATS_KIND, self.model, feature, window.start, window.end, result["count"],
                      [int(c) for c in histogram], _json(record), self._tests(stats, shard, j))
        if state.covariance is not None:
            yield from self._matrices(state.covariance.result(), window)

    def _matrices(self, result: dict, window):
        """One `STATS_ROW` of kind ``covariance`` per enabled matrix."""
        for statistic in self.matrices:
            record = {"model": self.model, "statistic": statistic, "window_start": window.start,
                      "window_end": window.end, "count": result["count"], "features": list(self.features),
                      "matrix": result[statistic]}
            yield Row(COVARIANCE_KIND, self.model, statistic, window.start, window.end, result["count"], [],
                      _json(record), "{}")

    def _tests(self, stats: BlockStats, shard: int, j: int) -> str:
        """``{test: statistic}`` of the shard's feature ``j`` as JSON; null for a column without values."""
        if not self.tests:
            return "{}"
        cdf, sample = stats.cdf(j), self.samples_by_shard[shard][j]
        values = {name: float(TESTS[name](cdf, cdf.n, cdf.epsilon, sample)) if cdf.n else None
                  for name in self.tests}
        return _json(values)


def _json(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"), allow_nan=False)


def output_records(rows: DataStream, row_type: TypeInformation, key_fields: Sequence[str], name: str) -> DataStream:
    """``rows`` (of ``row_type``, with ``kind`` and ``payload`` fields) as `OUTPUT_ROW` rows keyed by the
    ``key_fields`` joined with ``/``, by the Java map ``OutputRows`` (no Python worker on the way out)."""
    names = row_type.get_field_names()
    to_output = java_functions.package().OutputRows(
        names.index("kind"), java_functions.int_array([names.index(field) for field in key_fields]), names.index("payload"))
    return java_functions.mapped(rows, to_output, OUTPUT_ROW, name)


def stats_records(stats: DataStream) -> DataStream:
    """The `STATS_ROW` rows as output ``(kind, model/feature, payload)`` rows (the test statistics go to the
    drift step only; a covariance row's key is ``model/covariance`` or ``model/correlation``)."""
    return output_records(stats, STATS_ROW, ("model", "feature"), "stats records")


def feature_stats(sub_batches: DataStream, spec: MonitorSpec, baseline: Baseline) -> DataStream:
    """Window statistics rows (`STATS_ROW`, per feature and per enabled matrix) from the router's sub-batches."""
    bounds = spec_shard_bounds(spec)
    shards = [spec.input.features[lo:hi] for lo, hi in zip(bounds, bounds[1:])]
    edges = [[baseline.features[name].edges.tolist() for name in shard] for shard in shards]
    tests = two_sample_tests(spec)
    samples = [[baseline.features[name].sample for name in shard] for shard in shards] if tests else []
    emit = EmitStats(spec.model.name, shards, spec.stats.statistics, tests, samples, matrices(spec), spec.input.features)
    matrix_width = len(spec.input.features) if matrices(spec) else 0
    window = TumblingEventTimeWindows.of(Time.milliseconds(spec.window.duration))
    return (java_functions.keyed(sub_batches, Types.INT(), SUB_BATCH_ROW)
            .window(window)
            .aggregate(BlockStatsAggregate(edges, matrix_width), emit, output_type=STATS_ROW)
            .name("window stats per shard"))
