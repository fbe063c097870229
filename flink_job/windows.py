"""Event time, outliers and windows: the parsed requests through the Java router into keyed windows.

When the spec has an ``output``, the parsed records first pass the Java ``ResponseJoin``, keyed by request
id: each request leaves with its predictions appended as its last column (NaN, missing, when no response
came within ``output.join_timeout``), so from here on the output is one more column (`MonitorSpec.columns`);
with ``ground_truth`` they then pass the label join (`flink_job.performance`), which keeps the predictions for
their labels and consumes the label records.
A column is numeric (float64 values, NaN missing) or categorical (codes: the index of a value in its
baseline's `CategoricalBaseline.vocabulary`, or ``-(1 + j)`` for the window's unseen value ``labels[j]``).

The Java ``RequestRouter`` (``jvm/udfs``), chained to the parse step, dead-letters rejected and late
requests, checks every accepted instance against the outlier rules (`flink_job.outliers`) and appends
it to its tumbling window's buffer. A buffer leaves as *sub-batches*, one per shard of features (the
shard's columns, row-major float64 bytes), when the watermark passes the window's end (before the
watermark itself, so a window never receives them late) or when its values and label text reach
`FLUSH_BYTES`; the open windows' buffers are part of the router's checkpointed state, each with the routing
(columns, shards, keys) it was filled under, so that a restore under a changed spec moves them to the new
columns by name (`contract.upgrades` classifies the changes; the Java side refuses what it cannot move). Alerts and dead letters leave on the router's side output as output rows.

Every result is per model version: the router keeps a buffer per (window, version), each sub-batch names its
version, and a (shard, window)'s state holds a `ShardWindow` per version (keyed by shard alone, so the shards keep
their subtasks whatever the versions), emitting each version's rows, ``version`` in each.

Python keys the sub-batches by shard and folds them into one `udfs.stats.BlockStats` per (shard,
window, version) for its numeric columns (one vectorised pass over the sub-batch's matrix, whatever the width) and
one `udfs.categorical.CategoricalStats` per categorical column (one ``bincount`` of its codes); each
sub-batch crosses into Python once. A window fires when the watermark passes its end (the final watermark of a bounded
input included) and emits one stats row per feature of its shard; when the spec asks for the two-sample
tests (``ks``, ``cvm``), the row also carries their statistics, computed there from the window's CDF
(exact values, or the KLL sketch with its rank error) against the baseline's training sample: the
window's values exist nowhere else. Covariance/correlation, when enabled, come from shard 0, whose
sub-batches then carry every column: its state folds the whole matrix into a
`udfs.stats.CovarianceAccumulator` and its own columns into their statistics, and it emits one more row
per matrix (kind ``covariance``), so the matrix takes no second path into Python.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
from pyflink.common import Row, Types
from pyflink.common.time import Time
from pyflink.common.typeinfo import TypeInformation
from pyflink.datastream import DataStream
from pyflink.datastream.functions import AggregateFunction, ProcessWindowFunction
from pyflink.datastream.window import TumblingEventTimeWindows

from contract import formats, outputs
from contract.spec import TWO_SAMPLE_TESTS, MonitorSpec, shard_count

from udfs.baseline import CATEGORICAL, NUMERIC, Baseline, ColumnBaseline
from udfs.categorical import CategoricalStats, CategoryLayout
from udfs.drift import OUTLIER_RATE, TESTS
from udfs.outliers import beyond_count, sigma_bounds
from udfs.stats import BlockStats, CovarianceAccumulator

from flink_job import java_functions, metrics, outliers, parse, rows

FLUSH_BYTES = 8 << 20  # a window buffer whose values (float64) and label text reach this leaves early

MAX_PARALLELISM = 128  # fixed, so that the shard keys' subtasks do not move between runs (Flink's default here)
KEY_SPACE = 1 << 30  # shard keys start at a routing's fingerprint below this (Java int keys)

UIDS = {"join": "mmon-response-join", "router": "mmon-router", "windows": "mmon-window-stats",
        "versions": "mmon-version-gate"}
"""The stateful operators' stable ids: a restore finds each one's state by them, whatever else the spec changed."""


def shard_bounds(n_features: int, shards: int) -> list[int]:
    """Column boundaries of ``shards`` contiguous, nearly equal blocks: shard s is ``[b[s], b[s + 1])``."""
    return [n_features * s // shards for s in range(shards + 1)]


def shard_keys(shards: int, parallelism: int, first: int = 0) -> list[int]:
    """A key per shard such that shard ``s`` lands on window subtask ``s % parallelism``: Flink places a key
    by its hash, and the plain shard numbers crowd onto few subtasks (at parallelism 2, shards 0 and 1 both
    go to subtask 0), leaving the others idle. The smallest such integers from ``first`` on, found with
    Flink's own rule."""
    keys: list[int] = []
    candidate = first
    for shard in range(shards):
        while java_functions.subtask_of_key(candidate, MAX_PARALLELISM, parallelism) != shard % parallelism:
            candidate += 1
        keys.append(candidate)
        candidate += 1
    return keys


def routing_fingerprint(spec: MonitorSpec, baseline: Baseline) -> int:
    """Where the spec's shard keys start: a digest (below `KEY_SPACE`) of what a shard's window state means,
    its columns (names, types), their baseline (bin edges, vocabularies), the shard bounds and the matrices.
    A spec that changes any of them puts its windows under other keys, so that a window state restored from
    before the change is never updated with sub-batches of other columns: it closes under its own
    (`ShardWindow`), fed only by the router's buffers of the same routing."""
    content = {"columns": list(spec.columns), "types": list(spec.column_types), "baseline": baseline.fingerprint,
               "bounds": spec_shard_bounds(spec), "matrices": list(matrices(spec))}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") % KEY_SPACE


def spec_shard_bounds(spec: MonitorSpec) -> list[int]:
    """`shard_bounds` of the spec's columns (features, then the output) and shard count."""
    return shard_bounds(len(spec.columns), shard_count(spec))


def matrices(spec: MonitorSpec) -> tuple[str, ...]:
    """The enabled window matrices: ``covariance`` and/or ``correlation``."""
    return tuple(name for name, on in (("covariance", spec.stats.covariance),
                                      ("correlation", spec.stats.correlation)) if on)


def matrix_features(spec: MonitorSpec) -> tuple[str, ...]:
    """The features the matrices cover: the numeric inputs."""
    return tuple(f.name for f in spec.input.features if f.type == NUMERIC)


def router_settings(spec: MonitorSpec, baseline: Baseline):
    """The Java ``RouterSettings`` of the spec: its columns (``ColumnLayout``, from the parse step's schema, so
    with the same vocabularies), window length, shards and their keys (`shard_keys` from `routing_fingerprint`),
    whether shard 0 carries every column, and `FLUSH_BYTES`."""
    package = java_functions.package()
    keys = shard_keys(shard_count(spec), spec.job.parallelism, routing_fingerprint(spec, baseline))
    return package.RouterSettings(package.ColumnLayout.columns(parse.java_schema(spec, baseline)),
                                  int(spec.window.duration), java_functions.int_array(spec_shard_bounds(spec)),
                                  java_functions.int_array(keys), bool(matrices(spec)), FLUSH_BYTES)


def route(requests: DataStream, spec: MonitorSpec, baseline: Baseline) -> tuple[DataStream, DataStream]:
    """The parsed requests (`rows.REQUEST_FIELDS` rows; after the response join when the spec has an output, and
    the label join when it has ground_truth: see `flink_job.pipeline.build`) through the Java router: returns the
    sub-batches with their shard keys (`rows.KEYED_SUB_BATCH_ROW`; shard 0's with every column when covariance is
    on) and the alert and dead-letter rows (`rows.OUTPUT_ROW`)."""
    package = java_functions.package()
    dead_letters = package.DeadLetters(spec.job.dead_letter_max_raw_bytes)
    router = package.RequestRouter(router_settings(spec, baseline), outliers.java_rules(spec, baseline), dead_letters)
    sub_batches = java_functions.transformed(requests, router, rows.KEYED_SUB_BATCH_ROW,
                                             "event time, outliers, sub-batches", UIDS["router"])
    records = java_functions.side_output(sub_batches, package.RequestRouter.RECORDS)
    return sub_batches, records


def version_gate(requests: DataStream, spec: MonitorSpec) -> DataStream:
    """The parsed records (`rows.REQUEST_FIELDS` rows) through the Java ``VersionGate``, before the joins: the first
    ``versions.max`` distinct versions pass, an accepted record of a further one leaves with the reason
    ``too_many_versions`` (dead-lettered by the router)."""
    gate = java_functions.package().VersionGate(spec.versions.max)
    return java_functions.transformed_alike(requests, gate, "versions", UIDS["versions"])


def joined_responses(requests: DataStream, spec: MonitorSpec, baseline: Baseline) -> DataStream:
    """The parsed records keyed by request id through the Java ``ResponseJoin``: each request leaves with its
    predictions as its last column (missing when no response came within ``output.join_timeout``)."""
    package = java_functions.package()
    row_type = requests._j_data_stream.getType()
    join = package.ResponseJoin(row_type, parse.java_schema(spec, baseline), int(spec.output.join_timeout),
                                formats.UNMATCHED_RESPONSE, formats.WRONG_PREDICTION_COUNT)
    return java_functions.keyed_transformed(requests, package.ResponseJoin.ByRequestId(), join, "response join",
                                            UIDS["join"])


def two_sample_tests(spec: MonitorSpec) -> tuple[str, ...]:
    """The configured two-sample tests (``ks``, ``cvm``): computed in the window step, thresholded in drift."""
    return tuple(name for name in TWO_SAMPLE_TESTS if name in spec.drift.metrics)


def outlier_bounds(spec: MonitorSpec, baseline: Baseline) -> dict[str, tuple[float, float]]:
    """With the drift metric ``outlier_rate``: each numeric column's sigma bounds (``outliers.sigma``), else none."""
    if OUTLIER_RATE not in spec.drift.metrics:
        return {}
    columns = {name: column for name, column in baseline.columns.items() if column.type == NUMERIC}
    return {name: tuple(float(b) for b in sigma_bounds(column.mean, column.std, spec.outliers.sigma))
            for name, column in columns.items()}


def unpack(packed: bytes, count: int) -> np.ndarray:
    """The (instances x columns) matrix of a sub-batch, without copying."""
    return np.frombuffer(packed, dtype="<f8").reshape(count, -1)


@dataclass(frozen=True)
class ShardColumns:
    """What a shard's window state needs of its columns' baselines: the numeric columns' positions (in the
    shard) and edges, the categorical ones' positions, vocabularies (`CategoricalBaseline.vocabulary`, the
    order of the parser's codes) and layouts."""

    names: tuple[str, ...]
    numeric: tuple[int, ...]
    edges: tuple[list[float], ...]
    categorical: tuple[int, ...]
    vocabularies: tuple[np.ndarray, ...]
    layouts: tuple[CategoryLayout, ...]

    @classmethod
    def of(cls, names: Sequence[str], columns: Mapping[str, ColumnBaseline]) -> "ShardColumns":
        numeric = tuple(j for j, name in enumerate(names) if columns[name].type == NUMERIC)
        categorical = tuple(j for j, name in enumerate(names) if columns[name].type == CATEGORICAL)
        return cls(tuple(names), numeric, tuple(columns[names[j]].edges.tolist() for j in numeric), categorical,
                   tuple(np.array(columns[names[j]].vocabulary, dtype=object) for j in categorical),
                   tuple(columns[names[j]].layout() for j in categorical))

    @property
    def numeric_index(self) -> dict[int, int]:
        """A numeric column's position in the shard -> its position among the numeric columns (in `BlockStats`)."""
        return {j: i for i, j in enumerate(self.numeric)}


def category_codes(column: np.ndarray, vocabulary_size: int) -> np.ndarray:
    """A categorical column's float codes as `CategoricalStats.update` codes into vocabulary + labels:
    ``k >= 0`` stays, ``-(1 + j)`` becomes ``vocabulary_size + j``, NaN (missing) -1."""
    missing = np.isnan(column)
    codes = np.where(column >= 0, column, vocabulary_size + formats.label_index(column))
    codes[missing] = -1
    return codes.astype(np.int32)


class ShardWindow:
    """A (shard, window)'s state: a `BlockStats` of the shard's numeric columns, a `CategoricalStats` per
    categorical column, and for shard 0 with covariance on a `CovarianceAccumulator` of the numeric features
    (``matrix_columns``: their positions in the sub-batch, which then holds every column, ``matrix_names``
    their names). It keeps the `ShardColumns` it was made for: a window restored under a changed spec is
    updated and emitted under its own columns, never read as the new spec's (its key is the old spec's too:
    see `routing_fingerprint`)."""

    def __init__(self, shard: int, columns: ShardColumns, top_k: int, matrix_columns: Sequence[int] = (),
                 matrix_names: Sequence[str] = ()):
        self.shard, self.columns, self.width = shard, columns, len(columns.names)
        self.stats = BlockStats(columns.edges) if columns.numeric else None
        self.categories = [CategoricalStats(layout, top_k=top_k) for layout in columns.layouts]
        self.matrix_columns, self.matrix_names = list(matrix_columns), tuple(matrix_names)
        self.covariance = CovarianceAccumulator(len(matrix_columns)) if matrix_columns else None

    def update(self, matrix: np.ndarray, labels: Sequence[str]) -> None:
        columns = self.columns
        if self.covariance is not None:
            self.covariance.update(matrix[:, self.matrix_columns])
        if self.stats is not None:
            self.stats.update(matrix[:, list(columns.numeric)] if columns.categorical else matrix[:, :self.width])
        for stats, j, vocabulary in zip(self.categories, columns.categorical, columns.vocabularies):
            dictionary = np.concatenate([vocabulary, np.array(labels, dtype=object)]) if labels else vocabulary
            stats.update(dictionary, category_codes(matrix[:, j], len(vocabulary)))

    def merge(self, other: "ShardWindow") -> None:
        if self.stats is not None:
            self.stats.merge(other.stats)
        for mine, theirs in zip(self.categories, other.categories):
            mine.merge(theirs)
        if self.covariance is not None:
            self.covariance.merge(other.covariance)

    def results(self) -> list[tuple[dict, np.ndarray]]:
        """Per column of the shard, in order: its JSON-ready statistics and its drift-layout histogram."""
        found: list = [None] * self.width
        if self.stats is not None:
            for j, result, histogram in zip(self.columns.numeric, self.stats.results(), self.stats.histogram_counts()):
                found[j] = (result, histogram)
        for j, stats in zip(self.columns.categorical, self.categories):
            found[j] = (stats.result(), stats.histogram_counts())
        return found


class BlockStatsAggregate(AggregateFunction):
    """Window state: per model version, one `ShardWindow` of the shard on its columns' baselines
    (``columns_by_shard``), updated per sub-batch (the accumulator: version -> `ShardWindow`, each version's
    instances apart); ``matrix_columns``: the numeric features' positions when covariance is on (shard 0 then
    sees every column; ``matrix_names`` their names), else empty."""

    def __init__(self, columns_by_shard: list[ShardColumns], top_k: int, matrix_columns: Sequence[int] = (),
                 matrix_names: Sequence[str] = ()):
        self.columns_by_shard, self.top_k = columns_by_shard, top_k
        self.matrix_columns, self.matrix_names = list(matrix_columns), tuple(matrix_names)

    def create_accumulator(self):
        return {}

    def add(self, value, accumulator):
        shard, matrix, version = value[0], unpack(value[3], value[2]), value[5]
        window = accumulator.get(version)
        if window is None:
            window = accumulator[version] = self._new_window(shard, matrix.shape[1])
        window.update(matrix, value[4])
        return accumulator

    def _new_window(self, shard: int, width: int) -> ShardWindow:
        """A `ShardWindow` of ``shard`` for a sub-batch of ``width`` columns, which must be the shard's."""
        whole = shard == 0 and self.matrix_columns
        window = ShardWindow(shard, self.columns_by_shard[shard], self.top_k,
                             self.matrix_columns if whole else (), self.matrix_names if whole else ())
        expected = sum(len(c.names) for c in self.columns_by_shard) if whole else window.width
        if width != expected:  # never read a sub-batch of another routing as this one's
            raise ValueError(f"a sub-batch of {width} columns for shard {shard}, which has {expected}: "
                             "its window state is not this spec's")
        return window

    def get_result(self, accumulator):
        return accumulator

    def merge(self, a, b):
        for version, window in b.items():
            if version in a:
                a[version].merge(window)
            else:
                a[version] = window
        return a


class EmitStats(ProcessWindowFunction):
    """A closed (shard, window) -> per model version in it, one `rows.STATS_ROW` per column of the window state's
    shard (its own `ShardColumns`): key columns, counts, the drift-layout histogram, the JSON payload and the
    statistics of the two-sample ``tests`` against each numeric column's training sample (``samples``, by column
    name); then, from shard 0, one per enabled matrix (`matrices`) of the numeric features. Shard 0 counts the
    window's instances (every shard holds them all: a column's present and missing values). ``version`` stands in
    for a window state without one (from a router checkpoint written before versions)."""

    def __init__(self, model: str, statistics: tuple[str, ...], tests: tuple[str, ...] = (),
                 samples: Optional[Mapping[str, np.ndarray]] = None, matrices: tuple[str, ...] = (),
                 version: str = "1", outlier_bounds: Optional[Mapping[str, tuple[float, float]]] = None):
        self.model, self.statistics, self.version = model, statistics, version
        self.tests, self.samples = tests, dict(samples or {})
        self.matrices = matrices
        self.outlier_bounds = dict(outlier_bounds or {})  # drift metric outlier_rate: the sigma bounds by column
        self.windows = self.instances = None

    def open(self, runtime_context):
        group = metrics.job_group(runtime_context)
        self.windows = group.counter("windows_emitted")
        self.instances = group.counter("instances_windowed")

    def process(self, key, context, elements):
        window = context.window()
        for version, state in sorted(next(iter(elements)).items(), key=lambda item: str(item[0])):
            yield from self._version_rows(window, state, self.version if version is None else version)

    def _version_rows(self, window, state: ShardWindow, version: str):
        """The rows of one version's `ShardWindow`."""
        columns = state.columns
        results = state.results()
        if state.shard == 0:
            first = results[0][0]
            self.instances.inc(first["count"] + first["missing"] + first.get("rejected", 0))
        numeric = columns.numeric_index
        for j, (feature, (result, histogram)) in enumerate(zip(columns.names, results)):
            record = {"model": self.model, "version": version, "feature": feature, "window_start": window.start,
                      "window_end": window.end, **(self._numeric(result) if j in numeric else _categorical(result))}
            self.windows.inc()
            tests = self._tests(state.stats, feature, numeric[j]) if j in numeric else "{}"
            yield Row(outputs.STATS, self.model, feature, window.start, window.end, result["count"], result["missing"],
                      [int(c) for c in histogram], outputs.record_json(record), tests, version)
        if state.covariance is not None:
            yield from self._matrices(state.covariance.result(), window, state.matrix_names, version)

    def _numeric(self, result: dict) -> dict:
        """A numeric column's record fields: ``count``, ``missing``, then the configured statistics."""
        return {"count": result["count"], "missing": result["missing"],
                **{name: result[name] for name in self.statistics if name not in ("count", "missing")}}

    def _matrices(self, result: dict, window, features: Sequence[str], version: str):
        """One `rows.STATS_ROW` of kind ``covariance`` per enabled matrix of ``features``."""
        for statistic in self.matrices:
            record = {"model": self.model, "version": version, "statistic": statistic, "window_start": window.start,
                      "window_end": window.end, "count": result["count"], "features": list(features),
                      "matrix": result[statistic]}
            yield Row(outputs.COVARIANCE, self.model, statistic, window.start, window.end, result["count"], 0, [],
                      outputs.record_json(record), "{}", version)

    def _tests(self, stats: BlockStats, feature: str, j: int) -> str:
        """``{test: statistic}`` of ``feature``, the block's numeric column ``j``, as JSON; null for a column
        without values (or without a training sample: a column the baseline no longer has); with the drift metric
        ``outlier_rate``, also its values beyond the sigma bounds (`udfs.outliers.beyond_count`)."""
        if not self.tests and not self.outlier_bounds:
            return "{}"
        cdf, sample = stats.cdf(j), self.samples.get(feature)
        values = {name: float(TESTS[name](cdf, cdf.n, cdf.epsilon, sample)) if cdf.n and sample is not None else None
                  for name in self.tests}
        if self.outlier_bounds:
            bounds = self.outlier_bounds.get(feature)
            values[OUTLIER_RATE] = beyond_count(cdf, cdf.n, cdf.epsilon, *bounds) if cdf.n and bounds else None
        return outputs.record_json(values)


def _categorical(result: dict) -> dict:
    """A categorical column's record fields (`CategoricalStats.result`), ``type`` first."""
    return {"type": CATEGORICAL, **result}



def output_records(records: DataStream, row_type: TypeInformation, key_fields: Sequence[str], name: str) -> DataStream:
    """``records`` (of ``row_type``, with ``kind`` and ``payload`` fields) as `rows.OUTPUT_ROW` rows keyed by the
    ``key_fields`` joined with ``/``, by the Java map ``OutputRows`` (no Python worker on the way out)."""
    names = row_type.get_field_names()
    to_output = java_functions.package().OutputRows(
        names.index("kind"), java_functions.int_array([names.index(field) for field in key_fields]), names.index("payload"))
    return java_functions.mapped(records, to_output, rows.OUTPUT_ROW, name)


def stats_records(stats: DataStream) -> DataStream:
    """The `rows.STATS_ROW` rows as output ``(kind, model/feature, payload)`` rows (the test statistics go to the
    drift step only; a covariance row's key is ``model/covariance`` or ``model/correlation``)."""
    return output_records(stats, rows.STATS_ROW, ("model", "feature"), "stats records")


def feature_stats(sub_batches: DataStream, spec: MonitorSpec, baseline: Baseline) -> DataStream:
    """Window statistics rows (`rows.STATS_ROW`, per column and per enabled matrix) from the router's sub-batches."""
    bounds = spec_shard_bounds(spec)
    columns = baseline.columns
    shards = [ShardColumns.of(spec.columns[lo:hi], columns) for lo, hi in zip(bounds, bounds[1:])]
    tests = two_sample_tests(spec)
    samples = {name: column.sample for name, column in columns.items() if column.type == NUMERIC} if tests else {}
    matrix = matrix_features(spec) if matrices(spec) else ()
    emit = EmitStats(spec.model.name, spec.stats.statistics, tests, samples, matrices(spec), spec.model.version,
                     outlier_bounds(spec, baseline))
    matrix_columns = [spec.columns.index(name) for name in matrix]
    window = TumblingEventTimeWindows.of(Time.milliseconds(spec.window.duration))
    return (java_functions.keyed(sub_batches, Types.INT(), rows.SUB_BATCH_ROW)
            .window(window)
            .aggregate(BlockStatsAggregate(shards, spec.stats.top_k, matrix_columns, matrix), emit,
                       output_type=rows.STATS_ROW)
            .name("window stats per shard")
            .uid(UIDS["windows"]))
