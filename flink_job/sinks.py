"""Sink step: every output as one stream of ``(kind, key, payload)`` rows, stamped and counted on the
way out, then written to files (embedded) or to Kafka topics (one sink table, ``topic`` per row).

The egress is the Java map ``io.github.mmon.flink.Egress`` (``jvm/udfs``), the job's last operator: it
appends the wall-clock epoch ms at which the record leaves the job (``detected_at`` for outliers, ``at``
for dead letters, ``emitted_at`` otherwise) and updates the egress metrics of `flink_job.metrics`. It
runs once per output record, in the JVM; the embedded job's files are written by the Java
``JsonlFileSink``, so no output record passes through Python on its way out.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from pyflink.datastream import DataStream
from pyflink.datastream.connectors import Sink

from flink_job import drift, java_functions, outliers, parse, windows
from flink_job.config import MonitorSpec

DEAD_LETTER_KIND = windows.DEAD_LETTER_KIND
FILE_NAMES = {windows.STATS_KIND: "stats.jsonl", outliers.KIND: "outliers.jsonl", drift.KIND: "drift.jsonl",
              DEAD_LETTER_KIND: "dead_letter.jsonl", windows.COVARIANCE_KIND: "covariance.jsonl"}
SINK_TABLE = "mmon_sink"


def egress(outputs: DataStream) -> DataStream:
    """The output rows stamped and counted (`windows.OUTPUT_ROW`), by the Java ``Egress`` map."""
    stamp_and_count = java_functions.package().Egress(outliers.KIND, DEAD_LETTER_KIND, drift.KIND, parse.LATE)
    return java_functions.mapped(outputs, stamp_and_count, windows.OUTPUT_ROW, "egress: stamp and count")


def write_files(stamped: DataStream, directory: Path) -> None:
    """Appends each stamped row's payload to its kind's file in ``directory`` (`FILE_NAMES`), one writer."""
    sink = java_functions.package().JsonlFileSink(str(directory), java_functions.java_map(FILE_NAMES))
    stamped.sink_to(Sink(sink)).name("files").set_parallelism(1)


def topic_of(spec: MonitorSpec) -> Mapping[str, str]:
    """Output kind -> Kafka topic (covariance records go to the stats topic)."""
    topics = spec.kafka.topics
    return {windows.STATS_KIND: topics.stats, windows.COVARIANCE_KIND: topics.stats, outliers.KIND: topics.outliers,
            drift.KIND: topics.drift, DEAD_LETTER_KIND: topics.dead_letter}


def kafka_sink_ddl(spec: MonitorSpec, bootstrap: str) -> str:
    """One Kafka sink: raw key and value, the topic chosen per row through the writable metadata."""
    options = {
        "connector": "kafka", "properties.bootstrap.servers": bootstrap,
        "topic": ";".join(sorted(set(topic_of(spec).values()))),  # the rows' `topic` picks one of these
        "key.format": "raw", "key.fields": "k", "value.format": "raw", "value.fields-include": "EXCEPT_KEY",
        "sink.delivery-guarantee": spec.job.delivery_guarantee,
        **{f"properties.{k}": v for k, v in spec.kafka.properties.items()},
    }
    if spec.job.delivery_guarantee == "exactly-once":
        options["sink.transactional-id-prefix"] = f"mmon-{spec.model.name}"
        options.setdefault("properties.transaction.timeout.ms", "900000")
    body = ",\n  ".join(f"{parse.sql_string(k)} = {parse.sql_string(v)}" for k, v in options.items())
    return (f"CREATE TEMPORARY TABLE {SINK_TABLE} (topic STRING METADATA, k STRING, payload STRING) "
            f"WITH (\n  {body}\n)")


def kafka_insert_sql(spec: MonitorSpec, egress_table: str) -> str:
    """Route each row to its kind's topic."""
    cases = " ".join(f"WHEN {parse.sql_string(kind)} THEN {parse.sql_string(topic)}"
                     for kind, topic in topic_of(spec).items())
    return f"INSERT INTO {SINK_TABLE} SELECT CASE kind {cases} END, k, payload FROM {egress_table}"
