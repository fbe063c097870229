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

from pyflink.datastream import DataStream
from pyflink.datastream.connectors import Sink

from contract import outputs
from contract.spec import MonitorSpec

from flink_job import java_functions, parse, rows

SINK_TABLE = "mmon_sink"


def egress(records: DataStream) -> DataStream:
    """The output rows stamped and counted (`rows.OUTPUT_ROW`), by the Java ``Egress`` map."""
    stamp_and_count = java_functions.package().Egress()
    return java_functions.mapped(records, stamp_and_count, rows.OUTPUT_ROW, "egress: stamp and count")


def write_files(stamped: DataStream, directory: Path) -> None:
    """Appends each stamped row's payload to its kind's file in ``directory`` (`contract.outputs.FILE_NAMES`), one writer."""
    sink = java_functions.package().JsonlFileSink(str(directory), java_functions.java_map(outputs.FILE_NAMES))
    stamped.sink_to(Sink(sink)).name("files").set_parallelism(1)


PRODUCER_PROPERTIES = {"batch.size": str(512 << 10), "linger.ms": "20"}
"""The output producer's batching (``kafka.properties`` overrides it): the client's default batch of 16 KB held
about a dozen statistics records of a wide model, and the broker's share of the two cores in the wide benchmark's
drains (128 features) fell from 0.30-0.33 to 0.18-0.20 with 512 KB batches after at most 20 ms."""


def kafka_sink_ddl(spec: MonitorSpec, bootstrap: str) -> str:
    """One Kafka sink: raw key and value, the topic chosen per row through the writable metadata."""
    options = {
        "connector": "kafka", "properties.bootstrap.servers": bootstrap,
        "topic": ";".join(sorted(set(outputs.topics_by_kind(spec.kafka.topics).values()))),  # the rows' `topic` picks one of these
        "key.format": "raw", "key.fields": "k", "value.format": "raw", "value.fields-include": "EXCEPT_KEY",
        "sink.delivery-guarantee": spec.job.delivery_guarantee,
        **{f"properties.{k}": v for k, v in {**PRODUCER_PROPERTIES, **spec.kafka.properties}.items()},
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
                     for kind, topic in outputs.topics_by_kind(spec.kafka.topics).items())
    return f"INSERT INTO {SINK_TABLE} SELECT CASE kind {cases} END, k, payload FROM {egress_table}"
