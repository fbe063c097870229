"""Assembles the job in dataflow order: source -> parse -> event time -> [response join -> [label join]] -> outliers
-> windows -> drift [and performance] [-> comparison of two versions] -> sinks.

`build` returns the egress stream of ``(kind, key, payload)`` rows; `flink_job.main` runs it embedded
(collected into files) or on Kafka (inserted into the sink table).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pyflink.common import Configuration
from pyflink.datastream import CheckpointingMode, DataStream, StreamExecutionEnvironment
from pyflink.table import StreamTableEnvironment

from contract import state
from contract.spec import MonitorSpec

from udfs.baseline import Baseline

from flink_job import alerts, comparison, jvm, parse, performance, source, watermarks, windows

BUNDLE_TIME_MS = 30
BUFFER_TIMEOUT_MS = 10  # network buffers flush at least this often (Flink's default, 100 ms, delays sparse alerts)
ARROW_BATCH_SIZE = 10_000
BUNDLE_SIZE = 100_000


@dataclass(frozen=True)
class RunOptions:
    """How this run reads and writes: a numbered file (embedded), or Kafka at ``bootstrap``."""

    numbered_input: Optional[Path] = None
    input_label: str = "file"
    input_lines: int = 0
    bootstrap: Optional[str] = None
    metrics_port: int = 0
    checkpoint_dir: Optional[str] = None  # Kafka mode: where checkpoints go
    retain_checkpoints: bool = True  # kept when the job is cancelled (False: a scratch folder of this run)
    restore_from: Optional[str] = None  # a retained checkpoint or savepoint to start from
    job_id: Optional[str] = None  # the job's id, fixed before submission (32 hex digits): its checkpoint folder


def flink_configuration(spec: MonitorSpec, options: RunOptions) -> Configuration:
    """Job-wide settings: the Python operators (windows, drift) in Beam worker processes with small
    bundles (a stats row waits at most ~30 ms; PyFlink's thread mode deadlocked two tasks' embedded
    interpreters once a Python key selector shared a task with the Java router), object reuse between
    chained operators, UTC session zone, source idleness, the state backend (`contract.state`: RocksDB when
    predictions wait long for their labels), the job's jars, and the Prometheus reporter when a port is set.
    Outlier alerts and dead letters never reach Python."""
    config = Configuration()
    settings = {
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "python.fn-execution.bundle.time": str(BUNDLE_TIME_MS),
        "python.fn-execution.bundle.size": str(BUNDLE_SIZE),
        "python.fn-execution.arrow.batch.size": str(ARROW_BATCH_SIZE),
        "table.local-time-zone": "UTC",
        "pipeline.object-reuse": "true",
        "python.execution-mode": "process",
        "pipeline.auto-watermark-interval": "50 ms",
        "parallelism.default": str(spec.job.parallelism),
        "pipeline.max-parallelism": str(windows.MAX_PARALLELISM),
        **watermarks.idleness_options(spec.window),
        **state.state_backend_options(spec),
    }
    settings["pipeline.jars"] = ";".join(jar.as_uri() for jar in jvm.job_jars(kafka=options.bootstrap is not None))
    if options.checkpoint_dir:
        settings["execution.checkpointing.dir"] = options.checkpoint_dir
    if options.checkpoint_dir and options.retain_checkpoints:
        settings["execution.checkpointing.externalized-checkpoint-retention"] = "RETAIN_ON_CANCELLATION"
    if options.restore_from:
        settings["execution.state-recovery.path"] = options.restore_from
    if options.job_id:
        settings["$internal.pipeline.job-id"] = options.job_id
    if options.metrics_port:
        settings["metrics.reporter.prom.factory.class"] = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
        settings["metrics.reporter.prom.port"] = str(options.metrics_port)
    for key, value in settings.items():
        config.set_string(key, value)
    return config


def create_environments(spec: MonitorSpec, options: RunOptions) -> tuple[StreamExecutionEnvironment, StreamTableEnvironment]:
    jvm.prepare_local_jvm(kafka=options.bootstrap is not None, input_lines=options.input_lines,
                          prometheus=bool(options.metrics_port))
    config = flink_configuration(spec, options)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(spec.job.parallelism)
    env.set_buffer_timeout(BUFFER_TIMEOUT_MS)
    if options.bootstrap:
        mode = (CheckpointingMode.EXACTLY_ONCE if spec.job.delivery_guarantee == "exactly-once"
                else CheckpointingMode.AT_LEAST_ONCE)
        env.enable_checkpointing(int(spec.job.checkpoint_interval), mode)
    t_env = StreamTableEnvironment.create(env)
    for key, value in config.to_dict().items():
        t_env.get_config().set(key, value)
    return env, t_env


def _source_ddl(spec: MonitorSpec, options: RunOptions) -> str:
    if options.bootstrap:
        return source.kafka_source_ddl(spec, options.bootstrap)
    return source.file_source_ddl(spec, options.numbered_input, options.input_label)


SQL_UIDS = {"SourceTransformation": "mmon-source", "SinkTransformation": "mmon-kafka-sink"}
"""Stable ids of the stateful operators the SQL planner makes (the Kafka source's offsets, the Kafka sink's
transactions), by their transformation's class; the job's own are `flink_job.windows.UIDS`. Without them an
operator's id is a hash of its place in the graph, which a spec change can move (the drift step on or off)."""


def attach_insert(t_env: StreamTableEnvironment, env: StreamExecutionEnvironment, insert_sql: str) -> None:
    """The INSERT statement added to ``env``'s dataflow (run it with ``env.execute``), the source and the sink
    the planner made given their `SQL_UIDS`."""
    statements = t_env.create_statement_set()
    statements.add_insert_sql(insert_sql)
    statements.attach_as_datastream()
    named = [transformation for transformation in _upstream(env._j_stream_execution_environment.getTransformations())
             if transformation.getClass().getSimpleName() in SQL_UIDS]
    kinds = sorted(transformation.getClass().getSimpleName() for transformation in named)
    if kinds != sorted(SQL_UIDS):
        raise RuntimeError(f"expected one SQL source and one SQL sink in the job, found {kinds}")
    for transformation in named:
        transformation.setUid(SQL_UIDS[transformation.getClass().getSimpleName()])


def _upstream(transformations) -> list:
    """Every transformation of ``transformations`` and upstream of them, each once."""
    found, pending = {}, list(transformations)
    while pending:
        transformation = pending.pop()
        if transformation.getId() not in found:
            found[transformation.getId()] = transformation
            pending.extend(transformation.getInputs())
    return list(found.values())


def build(t_env: StreamTableEnvironment, spec: MonitorSpec, baseline: Baseline, options: RunOptions) -> DataStream:
    """The whole dataflow; returns the (kind, k, payload) output stream, to be stamped by
    `flink_job.sinks.egress`."""
    parse.register_functions(t_env, parse.java_schema(spec, baseline))
    source.register_functions(t_env)
    live = options.bootstrap is not None
    for statement in (_source_ddl(spec, options), parse.requests_view_sql(spec, source.SOURCE_TABLE, live)):
        t_env.execute_sql(statement)
    requests = t_env.to_data_stream(t_env.from_path(parse.REQUESTS_VIEW))
    requests = windows.version_gate(requests, spec)
    if spec.output is not None:
        requests = windows.joined_responses(requests, spec, baseline)
    labelled = None
    if spec.ground_truth is not None:
        requests, labelled = performance.joined_labels(requests, spec, baseline)
    sub_batches, records = windows.route(requests, spec, baseline)
    stats = windows.feature_stats(sub_batches, spec, baseline)
    outputs = [windows.stats_records(stats)]
    if spec.drift.metrics:
        outputs.append(alerts.drift_and_alerts(stats, spec, baseline))
    realised = performance.performance_records(labelled, spec, baseline) if labelled is not None else None
    if realised is not None:
        outputs.append(realised)
    if comparison.enabled(spec):
        outputs += comparison.comparison_records(stats, realised, spec, baseline)
    return records.union(*outputs)
