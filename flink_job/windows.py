"""Window step: keyed tumbling event-time windows whose state is a `udfs.stats` accumulator.

The JVM pre-batches the instances into aligned sub-windows (``TUMBLE`` + ``mmon_pack_rows``, length
``gcd(duration, 5 s)``, so every sub-window lies inside exactly one window); each sub-batch reaches
Python once, as one byte string of row-major float64 feature vectors stamped with the sub-window's
time, and `SplitJvmOutput` hands it on once per feature. Python then keys by (model, feature) and folds
sub-batches into a `udfs.stats.FeatureStats` held in Flink's window state, one vectorised ``update``
per sub-batch. A window fires when the watermark passes its end, the final watermark of a bounded
input included. A job monitors one model, so the model part of the key is constant.
Covariance/correlation: the same, keyed by model, with whole instance vectors in a
`udfs.stats.CovarianceAccumulator`.
"""
from __future__ import annotations

import json
import math

import numpy as np
from pyflink.common import Row, Types
from pyflink.common.time import Time
from pyflink.datastream import DataStream
from pyflink.datastream.functions import AggregateFunction, FlatMapFunction, ProcessWindowFunction
from pyflink.datastream.window import TumblingEventTimeWindows

from udfs.baseline import Baseline
from udfs.stats import CovarianceAccumulator, FeatureStats

from flink_job import metrics, watermarks
from flink_job.config import MonitorSpec
from flink_job.parse import INSTANCES_VIEW

STATS_KIND = "stats"
COVARIANCE_KIND = "covariance"

STATS_ROW = Types.ROW_NAMED(
    ["model", "feature", "window_start", "window_end", "count", "histogram", "payload"],
    [Types.STRING(), Types.STRING(), Types.LONG(), Types.LONG(), Types.LONG(), Types.BASIC_ARRAY(Types.LONG()),
     Types.STRING()])
OUTPUT_ROW = Types.ROW_NAMED(["kind", "k", "payload"], [Types.STRING(), Types.STRING(), Types.STRING()])


MAX_SUB_WINDOW_MS = 5_000


def sub_window_ms(duration_ms: int) -> int:
    """The pre-batch length: the largest divisor of the window that also divides 5 s.

    Longer sub-windows mean fewer Python calls (each costs about a millisecond with its state
    round trip) and add no latency: a sub-window ends with or before its window and fires on the same
    watermark."""
    return math.gcd(int(duration_ms), MAX_SUB_WINDOW_MS)


BATCH_KIND = "batch"
PACK_FUNCTION = "mmon_pack_rows"  # jvm/udfs PackRows: a group's feature vectors as row-major float64 bytes
PACK_CLASS = "io.github.mmon.flink.PackRows"
PACKED = 4  # JVM output rows are (kind, k, payload, rowtime, packed)
PACKED_TYPE = Types.PRIMITIVE_ARRAY(Types.BYTE())
FEATURE_BATCH = Types.TUPLE([Types.INT(), PACKED_TYPE])


def sub_batches_sql(spec: MonitorSpec) -> str:
    """One row per sub-window, shaped like the other JVM outputs (kind, k, payload, rowtime) followed by
    the sub-window's instances packed by ``mmon_pack_rows`` (Python reads them with `unpack`)."""
    features = ", ".join(f"f{j}" for j in range(len(spec.input.features)))
    size = watermarks.interval_sql(sub_window_ms(spec.window.duration))
    return (f"SELECT '{BATCH_KIND}' AS kind, CAST(NULL AS STRING) AS k, CAST(NULL AS STRING) AS payload, "
            f"window_time AS {watermarks.ROWTIME}, {PACK_FUNCTION}({features}) AS packed FROM TABLE(TUMBLE(TABLE "
            f"{INSTANCES_VIEW}, DESCRIPTOR({watermarks.ROWTIME}), {size})) GROUP BY window_start, window_end, window_time")


def padded_sql(query: str) -> str:
    """A (kind, k, payload, rowtime) query with an empty ``packed`` column, to be unioned with the sub-batches."""
    return f"SELECT kind, k, payload, {watermarks.ROWTIME}, CAST(X'' AS BYTES) AS packed FROM ({query})"


def unpack(packed: bytes, n_features: int) -> np.ndarray:
    """The (instances x features) matrix of a sub-batch, without copying."""
    return np.frombuffer(packed, dtype="<f8").reshape(-1, n_features)


def stats_output_row(row: Row) -> Row:
    """A `STATS_ROW` as an output ``(kind, k, payload)`` row."""
    return Row(STATS_KIND, f"{row[0]}/{row[1]}", row[6])


class SplitSubBatches(FlatMapFunction):
    """A sub-batch row -> its packed instances once per feature index (`FEATURE_BATCH`); counts the
    instances that reach the windows."""

    def __init__(self, n_features: int):
        self.n_features = n_features
        self.instances = None

    def open(self, runtime_context):
        self.instances = metrics.job_group(runtime_context).counter("instances_windowed")

    def flat_map(self, row):
        packed = row[PACKED]
        self.instances.inc(len(packed) // (8 * self.n_features))
        for j in range(self.n_features):
            yield j, packed


def packed_instances(row: Row) -> bytes:
    """The packed instances of a sub-batch row, for covariance."""
    return row[PACKED]


class FeatureStatsAggregate(AggregateFunction):
    """Window state: one `FeatureStats` on the feature's baseline edges, updated per sub-batch."""

    def __init__(self, edges: list[list[float]]):
        self.edges = edges
        self.n_features = len(edges)

    def create_accumulator(self):
        return None

    def add(self, value, accumulator):
        feature, packed = value
        if accumulator is None:
            accumulator = FeatureStats(self.edges[feature])
        accumulator.update(unpack(packed, self.n_features)[:, feature])
        return accumulator

    def get_result(self, accumulator):
        return accumulator

    def merge(self, a, b):
        if a is None or b is None:
            return b if a is None else a
        a.merge(b)
        return a


class EmitStats(ProcessWindowFunction):
    """A closed window -> one stats row: key columns, the drift-layout histogram and the JSON payload."""

    def __init__(self, model: str, features: tuple[str, ...], statistics: tuple[str, ...]):
        self.model, self.features, self.statistics = model, features, statistics
        self.windows = None

    def open(self, runtime_context):
        self.windows = metrics.job_group(runtime_context).counter("windows_emitted")

    def process(self, key, context, elements):
        stats = next(iter(elements))
        window = context.window()
        feature = self.features[key]
        result = stats.result()
        record = {"model": self.model, "feature": feature, "window_start": window.start, "window_end": window.end,
                  "count": result["count"], **{name: result[name] for name in self.statistics}}
        self.windows.inc()
        yield Row(self.model, feature, window.start, window.end, result["count"],
                  [int(c) for c in stats.histogram_counts()], json.dumps(record, separators=(",", ":"), allow_nan=False))


class CovarianceAggregate(AggregateFunction):
    """Window state: one `CovarianceAccumulator`, updated with each sub-batch's instance matrix."""

    def __init__(self, n_features: int):
        self.n_features = n_features

    def create_accumulator(self):
        return CovarianceAccumulator(self.n_features)

    def add(self, value, accumulator):
        accumulator.update(unpack(value, self.n_features))
        return accumulator

    def get_result(self, accumulator):
        return accumulator

    def merge(self, a, b):
        a.merge(b)
        return a


class EmitCovariance(ProcessWindowFunction):
    """A closed window -> a covariance and/or a correlation record ``(kind, key, payload)``."""

    def __init__(self, model: str, features: tuple[str, ...], matrices: tuple[str, ...]):
        self.model, self.features, self.matrices = model, features, matrices

    def process(self, key, context, elements):
        result = next(iter(elements)).result()
        window = context.window()
        for statistic in self.matrices:
            record = {"model": self.model, "statistic": statistic, "window_start": window.start,
                      "window_end": window.end, "count": result["count"], "features": list(self.features),
                      "matrix": result[statistic]}
            yield Row(COVARIANCE_KIND, f"{self.model}/{statistic}", json.dumps(record, separators=(",", ":"), allow_nan=False))


def matrices(spec: MonitorSpec) -> tuple[str, ...]:
    """The enabled window matrices: ``covariance`` and/or ``correlation``."""
    return tuple(name for name, on in (("covariance", spec.stats.covariance),
                                      ("correlation", spec.stats.correlation)) if on)


def feature_stats(feature_batches: DataStream, spec: MonitorSpec, baseline: Baseline) -> DataStream:
    """Per-feature window statistics rows (`STATS_ROW`) from `SplitSubBatches`' output."""
    features = spec.input.features
    edges = [baseline.features[name].edges.tolist() for name in features]
    window = TumblingEventTimeWindows.of(Time.milliseconds(spec.window.duration))
    return (feature_batches.key_by(lambda batch: batch[0], key_type=Types.INT())
            .window(window)
            .aggregate(FeatureStatsAggregate(edges), EmitStats(spec.model.name, features, spec.stats.statistics),
                       output_type=STATS_ROW).name("feature window stats"))


def covariance(sub_batches: DataStream, spec: MonitorSpec) -> DataStream:
    """Covariance/correlation records (`OUTPUT_ROW`) from the JVM's sub-batch rows."""
    window = TumblingEventTimeWindows.of(Time.milliseconds(spec.window.duration))
    n = len(spec.input.features)
    return (sub_batches.map(packed_instances, output_type=PACKED_TYPE).name("whole sub-batches")
            .key_by(lambda batch: 0, key_type=Types.INT())
            .window(window)
            .aggregate(CovarianceAggregate(n), EmitCovariance(spec.model.name, spec.input.features, matrices(spec)),
                       output_type=OUTPUT_ROW).name("covariance window"))
