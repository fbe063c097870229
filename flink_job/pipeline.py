"""Assembles the job in dataflow order: source -> parse -> event time -> outliers -> windows -> drift -> sinks.

`build` returns the egress stream of ``(kind, key, payload)`` rows; `flink_job.main` runs it embedded
(collected into files) or on Kafka (inserted into the sink table).
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pyflink.common import Configuration
from pyflink.datastream import CheckpointingMode, DataStream, StreamExecutionEnvironment
from pyflink.table import StreamTableEnvironment

from udfs.baseline import Baseline

from flink_job import drift, parse, source, watermarks, windows
from flink_job.config import MonitorSpec

REPO = Path(__file__).resolve().parent.parent
CONNECTOR_JAR = REPO / ".cache" / "jars" / "connector" / "flink-sql-connector-kafka-5.0.0-2.2.jar"
UDFS_JAR = REPO / ".cache" / "jars" / "udfs" / "mmon-flink-udfs.jar"  # jvm/udfs: the parse step's Java functions
BUNDLE_TIME_MS = 30
BUFFER_TIMEOUT_MS = 10  # network buffers flush at least this often (Flink's default, 100 ms, delays sparse alerts)
ARROW_BATCH_SIZE = 10_000
BUNDLE_SIZE = 100_000
STATS_VIEW = "mmon_window_stats"
SHORT_RUN_MAX_LINES = 500_000  # the crossover measured on two cores; see _tune_local_jvm
LOCAL_MAX_HEAP = "1g"


@dataclass(frozen=True)
class RunOptions:
    """How this run reads and writes: a numbered file (embedded), or Kafka at ``bootstrap``."""

    numbered_input: Optional[Path] = None
    input_label: str = "file"
    input_lines: int = 0
    bootstrap: Optional[str] = None
    metrics_port: int = 0
    checkpoint_dir: Optional[str] = None  # Kafka mode: where checkpoints go (kept when the job is cancelled)
    restore_from: Optional[str] = None  # a retained checkpoint or savepoint to start from

    @property
    def short(self) -> bool:
        """A bounded run over at most :data:`SHORT_RUN_MAX_LINES` lines: seconds of processing, which
        the JVM spends mostly in code its client compiler built (see `_tune_local_jvm`)."""
        return self.bootstrap is None and self.input_lines <= SHORT_RUN_MAX_LINES


def job_jars(options: RunOptions) -> list[Path]:
    """The jars the job loads: its Java functions, and the Kafka connector in Kafka mode."""
    return [UDFS_JAR, CONNECTOR_JAR] if options.bootstrap else [UDFS_JAR]


def flink_configuration(spec: MonitorSpec, options: RunOptions) -> Configuration:
    """Job-wide settings: the Python operators (windows, drift) in Beam worker processes with small
    bundles (a stats row waits at most ~30 ms; PyFlink's thread mode deadlocked two tasks' embedded
    interpreters once a Python key selector shared a task with the Java router), object reuse between
    chained operators, UTC session zone, source idleness, the job's jars, and the Prometheus reporter
    when a port is set. Outlier alerts and dead letters never reach Python."""
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
    }
    settings["pipeline.jars"] = ";".join(jar.as_uri() for jar in job_jars(options))
    if options.checkpoint_dir:
        settings["execution.checkpointing.dir"] = options.checkpoint_dir
        settings["execution.checkpointing.externalized-checkpoint-retention"] = "RETAIN_ON_CANCELLATION"
    if options.restore_from:
        settings["execution.state-recovery.path"] = options.restore_from
    if options.metrics_port:
        settings["metrics.reporter.prom.factory.class"] = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
        settings["metrics.reporter.prom.port"] = str(options.metrics_port)
    for key, value in settings.items():
        config.set_string(key, value)
    return config


def _put_prometheus_reporter_on_classpath() -> None:
    """The local mini-cluster loads no plugins, only reporter factories on the JVM's classpath; PyFlink's
    gateway launcher appends HADOOP_CLASSPATH to it. Must run before the JVM starts (first environment).
    On a standalone cluster the cluster's own plugins/ folder serves instead."""
    import pyflink

    jars = sorted((Path(pyflink.__file__).resolve().parent / "plugins" / "metrics-prometheus").glob("*.jar"))
    current = os.environ.get("HADOOP_CLASSPATH", "")
    os.environ["HADOOP_CLASSPATH"] = os.pathsep.join([current, *map(str, jars)]).strip(os.pathsep)


def _tune_local_jvm(options: RunOptions) -> None:
    """Flags for the JVM that PyFlink starts for this run (the local mini-cluster), through PyFlink's
    ``JVM_ARGS`` (so before the JVM starts), each only where ``JVM_ARGS`` does not already choose:

    - a heap cap, ``-Xmx`` :data:`LOCAL_MAX_HEAP`: the Java heap holds little that lives (the SQL
      operators' five-second sub-batches, Kafka client buffers; the window state is Python's), but
      under the default cap (a quarter of RAM) it grows with the throughput: on the Kafka max-profile
      benchmark the job's peak RSS was 2.05 GB uncapped and 1.30 GB capped, at the same rate;
    - for a bounded run over a file, the throughput collector, ``-XX:+UseParallelGC``: the job allocates
      short-lived rows fast, and on two cores G1's concurrent work costs more than it saves
      (1,000,000 instances: 73,000/s vs 54,000/s);
    - for a short run (`RunOptions.short`: up to :data:`SHORT_RUN_MAX_LINES` lines), the client
      compiler only (``-XX:TieredStopAtLevel=1``): such a run processes for a few seconds, too few for
      the optimising compiler (C2) to earn back its CPU (250,000 instances: ~51,000/s vs ~42,000/s
      with C2); on longer inputs C2 pays (1,000,000: 73,000/s vs 42,000/s with C1 only).

    Kafka mode runs for hours and otherwise keeps the JVM's defaults."""
    jvm_args = os.environ.get("JVM_ARGS", "")
    if not re.search(r"-Xmx\d", jvm_args):
        jvm_args += f" -Xmx{LOCAL_MAX_HEAP}"
    if options.bootstrap is None:
        if options.short and "TieredStopAtLevel" not in jvm_args:
            jvm_args += " -XX:TieredStopAtLevel=1"
        if not re.search(r"-XX:\+Use\w+GC\b", jvm_args):
            jvm_args += " -XX:+UseParallelGC"
    os.environ["JVM_ARGS"] = jvm_args.strip()


def create_environments(spec: MonitorSpec, options: RunOptions) -> tuple[StreamExecutionEnvironment, StreamTableEnvironment]:
    _tune_local_jvm(options)
    if options.metrics_port:
        _put_prometheus_reporter_on_classpath()
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


def _drift_records(t_env: StreamTableEnvironment, spec: MonitorSpec, baseline: Baseline,
                   stats: DataStream) -> DataStream:
    """Drift rows from the stats rows by the pandas UDF, chained to the window operator (no exchange):
    the UDF's Python worker starts while its task opens (seconds), so a task of its own would let the
    windows run ahead, fill the few network buffers between them (Flink 2 fixes their number) and stall
    the whole job mid-stream until the worker is up; chained, the job waits for it before the first
    window instead."""
    t_env.create_temporary_view(STATS_VIEW, t_env.from_data_stream(stats))
    t_env.create_temporary_function(drift.UDF_NAME, drift.drift_udf(spec, baseline))
    rows = t_env.to_data_stream(t_env.sql_query(drift.drift_sql(STATS_VIEW, spec.model.name)))
    return windows.output_records(rows, windows.OUTPUT_ROW, ("k",), "drift records")


def build(t_env: StreamTableEnvironment, spec: MonitorSpec, baseline: Baseline, options: RunOptions) -> DataStream:
    """The whole dataflow; returns the (kind, k, payload) output stream, to be stamped by
    `flink_job.sinks.egress`."""
    parse.register_functions(t_env, parse.java_schema(spec, baseline))
    source.register_functions(t_env)
    live = options.bootstrap is not None
    for statement in (_source_ddl(spec, options), parse.requests_view_sql(spec, source.SOURCE_TABLE, live)):
        t_env.execute_sql(statement)
    requests = t_env.to_data_stream(t_env.from_path(parse.REQUESTS_VIEW))
    sub_batches, records = windows.route(requests, spec, baseline)
    stats = windows.feature_stats(sub_batches, spec, baseline)
    outputs = [windows.stats_records(stats)]
    if spec.drift.metrics:
        outputs.append(_drift_records(t_env, spec, baseline, stats))
    return records.union(*outputs)
