"""Source step: the inference log as one raw STRING per record, read by the JVM.

Two source tables with the same columns, so everything downstream is shared:
``raw_payload`` (the message), ``source_ref`` (``file:LINE`` or ``topic/partition/offset``),
``default_id`` / ``default_time_ms`` (the Kafka key and record timestamp, stand-ins for a message
without id or time) and ``rowtime`` (the request time, with the watermark of `flink_job.watermarks`).

Files: the filesystem connector cannot tell line numbers, so `number_lines` first copies the input
with ``LINE<TAB>`` prefixed to each line (a Python pass of about a second per million lines), and the
Java functions `LINE_FUNCTIONS` split it again on its bytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from pyflink.table import StreamTableEnvironment

from flink_job import parse, watermarks
from flink_job.config import MonitorSpec

SOURCE_TABLE = "mmon_source"
LINE_TEXT, LINE_NUMBER = "mmon_line_text", "mmon_line_number"
LINE_FUNCTIONS = {LINE_TEXT: "io.github.mmon.flink.NumberedLine$Text",
                  LINE_NUMBER: "io.github.mmon.flink.NumberedLine$Number"}
_INLINED = ("raw_payload", "default_id", "default_time_ms")  # the time function's arguments, in order


def number_lines(src: Path, dst: Path) -> int:
    """Copy ``src`` to ``dst`` as ``LINE<TAB>text`` lines (1-based); returns the number of lines."""
    count = 0
    with open(src, "rb") as reader, open(dst, "wb") as writer:
        for count, line in enumerate(reader, start=1):
            writer.write(b"%d\t%s\n" % (count, line.rstrip(b"\r\n")))
    return count


def register_functions(t_env: StreamTableEnvironment) -> None:
    """Registers `LINE_FUNCTIONS` (their jar is in ``pipeline.jars``, see `flink_job.pipeline`)."""
    for name, java_class in LINE_FUNCTIONS.items():
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
    """A bounded source over a file made by `number_lines`; ``label`` names it in ``source_ref``."""
    computed = {
        "raw_payload": f"{LINE_TEXT}(line)",
        "source_ref": f"CONCAT({parse.sql_string(label + ':')}, {LINE_NUMBER}(line))",
        "default_id": "CAST(NULL AS STRING)",
        "default_time_ms": "CAST(NULL AS BIGINT)",
    }
    options = {"connector": "filesystem", "path": numbered.resolve().as_uri(), "format": "raw"}
    return _table_ddl(spec, ["line STRING"], computed, options)


def kafka_ms_sql(column: str) -> str:
    """Epoch ms of a TIMESTAMP_LTZ(3) column (Flink has no direct cast; the session zone is UTC)."""
    return (f"UNIX_TIMESTAMP(DATE_FORMAT({column}, 'yyyy-MM-dd HH:mm:ss')) * 1000 "
            f"+ CAST(DATE_FORMAT({column}, 'SSS') AS BIGINT)")


def kafka_source_ddl(spec: MonitorSpec, bootstrap: str) -> str:
    """An unbounded source on the inference topic: value and key as raw strings, the record's
    timestamp/topic/partition/offset as metadata. A new consumer group starts from the earliest offset."""
    declared = ["raw_payload STRING", "kafka_key STRING",
                "kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL",
                "kafka_topic STRING METADATA FROM 'topic' VIRTUAL",
                "kafka_partition INT METADATA FROM 'partition' VIRTUAL",
                "kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL"]
    computed = {
        "source_ref": "CONCAT(kafka_topic, '/', CAST(kafka_partition AS STRING), '/', CAST(kafka_offset AS STRING))",
        "default_id": "kafka_key",
        "default_time_ms": kafka_ms_sql("kafka_ts"),
    }
    options = {
        "connector": "kafka", "topic": spec.kafka.topics.inference,
        "properties.bootstrap.servers": bootstrap, "properties.group.id": spec.kafka.group_id,
        "scan.startup.mode": "group-offsets", "properties.auto.offset.reset": "earliest",
        "key.format": "raw", "key.fields": "kafka_key", "value.format": "raw", "value.fields-include": "EXCEPT_KEY",
        **{f"properties.{k}": v for k, v in spec.kafka.properties.items()},
    }
    return _table_ddl(spec, declared, computed, options)
