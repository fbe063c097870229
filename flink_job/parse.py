"""Parse step: every inference-log format into (reason, request id, request time, instances), in the JVM.

``mmon_parse`` is the Java SQL function ``io.github.mmon.flink.ParseRequest`` (``jvm/udfs``, built by
``make setup``): a port of `flink_job.formats.decode`, the reference, with its checks in its order and
its dead-letter reasons (the job's tests hold the two to each other line by line), plus the
``future_time`` check. It parses each record's JSON once and returns
``ROW<reason, request_id, time_ms, instances BYTES>`` (the instances packed row-major as float64);
``reason`` is NULL for a request that can be monitored. The source's rowtime column calls
``mmon_request_time_ms`` on the same record (NULL for a dead-lettered one, so no rejected time moves
the watermark); the Java side memoises the last record per thread, so that is not a second parse.
The step's output is the view `REQUESTS_VIEW`, one row of `REQUEST_FIELDS` per record.
"""
from __future__ import annotations

from pyflink.table import StreamTableEnvironment

from flink_job import watermarks
from flink_job.config import MonitorSpec

LATE = "late"
PARSE_FUNCTION = "mmon_parse"
TIME_FUNCTION = "mmon_request_time_ms"
JAVA_FUNCTIONS = {PARSE_FUNCTION: "io.github.mmon.flink.ParseRequest",
                  TIME_FUNCTION: "io.github.mmon.flink.RequestTimeMs"}

REQUESTS_VIEW = "mmon_requests"
POSITION_FIELDS = ("source_name", "source_partition", "source_position")
REQUEST_FIELDS = ("reason", "request_id", "request_time_ms", "instances", "raw", *POSITION_FIELDS, watermarks.ROWTIME)
"""The parsed request row, in the order the Java router reads it (``JobRows.REQUEST_FIELDS``, then rowtime).
``raw`` is the record's UTF-8 bytes, kept for dead letters: turning every record into a Java string on
its way out of SQL cost as much as parsing it, at 128 features. `POSITION_FIELDS` are the source's
columns of the same names (`flink_job.source`), the reference ``DeadLetters.java`` writes."""


def sql_string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def register_functions(t_env: StreamTableEnvironment) -> None:
    """Registers the Java functions (their jar is in ``pipeline.jars``, see `flink_job.pipeline`)."""
    for name, java_class in JAVA_FUNCTIONS.items():
        t_env.create_java_temporary_system_function(name, java_class)


def call_sql(function: str, spec: MonitorSpec, live: bool, raw: str = "raw_payload", default_id: str = "default_id",
             default_time_ms: str = "default_time_ms") -> str:
    """A call of one of `JAVA_FUNCTIONS` on the SQL expressions given for the record and its defaults.

    ``live``: the input is a live stream (Kafka), whose request times are checked against the wall
    clock for ``future_time``; a replayed file's against the latest request time accepted before it
    (a file's times may lie anywhere, even after today)."""
    message_time = "TRUE" if spec.input.time == "event" else "FALSE"
    return (f"{function}({raw}, {sql_string(spec.input.format)}, {len(spec.input.features)}, {message_time}, "
            f"{default_id}, {default_time_ms}, CAST({int(spec.window.max_future_skew)} AS BIGINT), "
            f"{'TRUE' if live else 'FALSE'})")


def requests_view_sql(spec: MonitorSpec, source_table: str, live: bool) -> str:
    """One row of `REQUEST_FIELDS` per record; ``reason`` is NULL for a request that can be monitored."""
    parsed = {"reason": "reason", "request_id": "request_id", "request_time_ms": "time_ms", "instances": "instances"}
    columns = [f"r.parsed.{field} AS {name}" for name, field in parsed.items()]
    passed = [*POSITION_FIELDS, watermarks.ROWTIME]
    columns += ["CAST(r.raw_payload AS BYTES) AS `raw`", *(f"r.{name}" for name in passed)]
    return (f"CREATE TEMPORARY VIEW {REQUESTS_VIEW} AS SELECT {', '.join(columns)} FROM (SELECT raw_payload, "
            f"{', '.join(passed)}, {call_sql(PARSE_FUNCTION, spec, live)} AS parsed FROM {source_table}) AS r")
