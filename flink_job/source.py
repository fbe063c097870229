"""Source step: the inference log as one raw STRING per record, read by the JVM.

Two source tables with the same columns, so everything downstream is shared:
``raw_payload`` (the message); where it was read, as `rows.POSITION_FIELDS`: ``source_name`` (the topic, a
constant unless a labels topic is read too, or the input's label), ``source_partition`` (the Kafka partition; NULL for a file)
and ``source_position`` (the Kafka offset, or the line number), numbers that the Java ``DeadLetters``
writes as ``topic/partition/offset`` or ``label:LINE`` for a dead letter alone; ``default_id`` /
``default_time_ms`` (the Kafka key and record timestamp, stand-ins for a message without id or time);
and ``rowtime`` (the request time, with the watermark of `flink_job.watermarks`). No column formats or
parses text per record, but for the message itself.

Files: the filesystem connector cannot tell line numbers, so `number_lines` first copies the input
with ``LINE<TAB>`` prefixed to each line (a Python pass of about a second per million lines), and the
Java functions `JAVA_FUNCTIONS` split it again on its bytes, the text a view of the line's bytes, not a
copy. A line longer than ``input.max_record_bytes`` is dead-lettered ``too_large`` by the parse step, its
length read before any parse (`flink_job.parse.call_sql`): it costs the job its bytes, never its instances.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from pyflink.table import StreamTableEnvironment

from contract.spec import MonitorSpec

from flink_job import parse, watermarks

SOURCE_TABLE = "mmon_source"
LINE_TEXT, LINE_NUMBER, EPOCH_MS = "mmon_line_text", "mmon_line_number", "mmon_epoch_ms"
JAVA_FUNCTIONS = {LINE_TEXT: "io.github.mmon.flink.NumberedLine$Text",
                  LINE_NUMBER: "io.github.mmon.flink.NumberedLine$Number",
                  EPOCH_MS: "io.github.mmon.flink.EpochMillis"}
FETCH_PROPERTIES = {"max.partition.fetch.bytes": str(16 << 20), "fetch.max.bytes": str(64 << 20),
                    "receive.buffer.bytes": "-1"}
_INLINED = ("raw_payload", "default_id", "default_time_ms")  # the time function's arguments, in order


def number_lines(src: Path, dst: Path) -> int:
    """Copy ``src`` to ``dst`` as ``LINE<TAB>text`` lines (1-based); returns the number of lines."""
    count = 0
    with open(src, "rb") as reader, open(dst, "wb") as writer:
        for count, line in enumerate(reader, start=1):
            writer.write(b"%d\t%s\n" % (count, line.rstrip(b"\r\n")))
    return count


def register_functions(t_env: StreamTableEnvironment) -> None:
    """Registers `JAVA_FUNCTIONS` (their jar is in ``pipeline.jars``, see `flink_job.pipeline`)."""
    for name, java_class in JAVA_FUNCTIONS.items():
        t_env.create_java_temporary_system_function(name, java_class)


def _with_options(options: Mapping[str, str]) -> str:
    return ",\n  ".join(f"{parse.sql_string(k)} = {parse.sql_string(v)}" for k, v in options.items())


def _rowtime_sql(spec: MonitorSpec, columns: Mapping[str, str], live: bool) -> str:
    """``rowtime`` from the request time (`flink_job.parse`'s time function); computed columns cannot
    refer to each other, so the expressions of ``columns`` are inlined. A record without a time gets 0:
    it is dead-lettered, and a NULL must never reach the watermark generator."""
    call = parse.call_sql(parse.TIME_FUNCTION, spec, live, *(f"({columns[name]})" for name in _INLINED))
    return f"TO_TIMESTAMP_LTZ(COALESCE({call}, CAST(0 AS BIGINT)), 3)"


def _table_ddl(spec: MonitorSpec, declared: list[str], computed: Mapping[str, str],
               options: Mapping[str, str]) -> str:
    """``declared`` physical/metadata columns, then the ``computed`` ones (name -> SQL over them),
    ``rowtime`` and the watermark."""
    live = options["connector"] == "kafka"
    inline = {"raw_payload": "raw_payload", **computed}
    columns = [*declared, *(f"{name} AS {expr}" for name, expr in computed.items()),
               f"{watermarks.ROWTIME} AS {_rowtime_sql(spec, inline, live)}", watermarks.watermark_clause(spec.window)]
    body = ",\n  ".join(columns)
    return f"CREATE TEMPORARY TABLE {SOURCE_TABLE} (\n  {body}\n) WITH (\n  {_with_options(options)}\n)"


def file_source_ddl(spec: MonitorSpec, numbered: Path, label: str) -> str:
    """A bounded source over a file made by `number_lines`; ``label`` names it in dead letters."""
    computed = {
        "raw_payload": f"{LINE_TEXT}(line)",
        "source_name": parse.sql_string(label),
        "source_partition": "CAST(NULL AS INT)",
        "source_position": f"{LINE_NUMBER}(line)",
        "default_id": "CAST(NULL AS STRING)",
        "default_time_ms": "CAST(NULL AS BIGINT)",
    }
    options = {"connector": "filesystem", "path": numbered.resolve().as_uri(), "format": "raw"}
    return _table_ddl(spec, ["line STRING"], computed, options)


def source_topics(spec: MonitorSpec) -> tuple[str, ...]:
    """The topics the job reads: the inference topic, and the labels topic when the spec has ``ground_truth`` and
    names one (else label messages travel the inference topic)."""
    labels = spec.kafka.topics.labels if spec.ground_truth is not None else None
    return (spec.kafka.topics.inference, *([labels] if labels and labels != spec.kafka.topics.inference else []))


def kafka_source_ddl(spec: MonitorSpec, bootstrap: str) -> str:
    """An unbounded source on the inference topic (and the labels topic: `source_topics`): value and key as raw
    strings, the record's timestamp, partition and offset as metadata (the topic too when there are two; one is a
    constant). A new consumer group starts from the earliest offset."""
    topics = source_topics(spec)
    declared = ["raw_payload STRING", "kafka_key STRING",
                "kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL",
                "source_partition INT METADATA FROM 'partition' VIRTUAL",
                "source_position BIGINT METADATA FROM 'offset' VIRTUAL",
                *(["source_topic STRING METADATA FROM 'topic' VIRTUAL"] if len(topics) > 1 else [])]
    computed = {
        "source_name": "source_topic" if len(topics) > 1 else parse.sql_string(topics[0]),
        "default_id": "kafka_key",
        "default_time_ms": f"{EPOCH_MS}(kafka_ts)",
    }
    options = {
        "connector": "kafka", "topic": ";".join(topics),
        "properties.bootstrap.servers": bootstrap, "properties.group.id": spec.kafka.group_id,
        "scan.startup.mode": "group-offsets", "properties.auto.offset.reset": "earliest",
        "key.format": "raw", "key.fields": "kafka_key", "value.format": "raw", "value.fields-include": "EXCEPT_KEY",
        **{f"properties.{k}": v for k, v in FETCH_PROPERTIES.items()},
        **{f"properties.{k}": v for k, v in spec.kafka.properties.items()},
    }
    return _table_ddl(spec, declared, computed, options)
