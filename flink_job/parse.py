"""Parse step: every inference-log format into (reason, request id, request time, instances), in the JVM.

``mmon_parse`` is the Java SQL function ``io.github.mmon.flink.ParseRequest`` (``jvm/udfs``, built by
``make setup``): a port of `flink_job.formats.decode`, the reference, with its checks in its order and
its dead-letter reasons (the job's tests hold the two to each other line by line). It parses each
record's JSON once and returns ``ROW<reason, request_id, time_ms, instances ARRAY<ARRAY<DOUBLE>>>``;
``reason`` is NULL for a request that can be monitored. The source's rowtime column calls
``mmon_request_time_ms`` on the same record; the Java side memoises the last record per thread, so
that is not a second parse.
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
INSTANCES_VIEW = "mmon_instances"


def sql_string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def register_functions(t_env: StreamTableEnvironment) -> None:
    """Registers the Java functions (their jar is in ``pipeline.jars``, see `flink_job.pipeline`)."""
    for name, java_class in JAVA_FUNCTIONS.items():
        t_env.create_java_temporary_system_function(name, java_class)


def call_sql(function: str, spec: MonitorSpec, raw: str = "raw_payload", default_id: str = "default_id",
             default_time_ms: str = "default_time_ms") -> str:
    """A call of one of `JAVA_FUNCTIONS` on the SQL expressions given for the record and its defaults."""
    message_time = "TRUE" if spec.input.time == "event" else "FALSE"
    return (f"{function}({raw}, {sql_string(spec.input.format)}, {len(spec.input.features)}, {message_time}, "
            f"{default_id}, {default_time_ms})")


def requests_view_sql(spec: MonitorSpec, source_table: str) -> str:
    """One row per record: its parsed fields, ``late`` (see `flink_job.watermarks`) and ``reason``."""
    return (f"CREATE TEMPORARY VIEW {REQUESTS_VIEW} AS SELECT raw_payload, source_ref, {watermarks.ROWTIME}, late, "
            f"r.parsed.reason AS reason, r.parsed.request_id AS request_id, r.parsed.time_ms AS request_time_ms, "
            f"r.parsed.instances AS instances FROM (SELECT raw_payload, source_ref, {watermarks.ROWTIME}, "
            f"{watermarks.late_sql()} AS late, {call_sql(PARSE_FUNCTION, spec)} AS parsed FROM {source_table}) AS r")


def instances_view_sql(spec: MonitorSpec) -> str:
    """The monitored instances, one row each: (request_id, request_time_ms, rowtime, f0..f{n-1})."""
    features = ", ".join(f"i.instance[{j + 1}] AS f{j}" for j in range(len(spec.input.features)))
    return (f"CREATE TEMPORARY VIEW {INSTANCES_VIEW} AS SELECT r.request_id, r.request_time_ms, "
            f"r.{watermarks.ROWTIME}, {features} FROM {REQUESTS_VIEW} AS r "
            f"CROSS JOIN UNNEST(r.instances) AS i(instance) WHERE r.reason IS NULL AND NOT r.late")


def dead_letter_sql() -> str:
    """(reason, raw, source, rowtime) of malformed and late records."""
    return (f"SELECT COALESCE(reason, {sql_string(LATE)}) AS reason, raw_payload AS `raw`, source_ref AS `source`, "
            f"{watermarks.ROWTIME} FROM {REQUESTS_VIEW} WHERE reason IS NOT NULL OR late")
