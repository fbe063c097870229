"""Parse step: every inference-log format into (reason, request id, request time, values), in the JVM.

``mmon_parse`` is the Java SQL function ``io.github.mmon.flink.ParseRequest`` (``jvm/udfs``, built by
``make setup``): a port of `contract.formats.decode`, the reference, with its checks in its order and
its dead-letter reasons (the job's tests hold the two to each other line by line), plus the
``future_time`` and ``too_large`` checks. It is constructed with the job's ``FeatureSchema`` (`java_schema`: the features'
names and types, each categorical feature's vocabulary from the baseline, and the output) and registered
as that instance (`register_functions`). It parses each record's JSON once and returns
``ROW<reason, request_id, time_ms, instances BYTES, labels ARRAY<STRING>, response BOOLEAN, truth BOOLEAN,
version STRING>`` (the version the record names, `contract.formats.version_of`; the view then takes
``model.version`` for one that names none):
the values packed row-major as float64 (n x k for a request; n x 1, the predictions, for a response, read
only when the spec has an output; n x 1, the request's true outputs, for a label message, ``truth`` true,
read only when the spec has ``ground_truth``), a numeric value as is, a missing one NaN, a categorical one its
index in the column's vocabulary (a prediction's and a label's: the output's) or else ``-(1 + j)`` for
``labels[j]``. ``reason`` is NULL for a record that
can be monitored. The source's rowtime column calls ``mmon_request_time_ms`` on the same record (NULL
for a dead-lettered one, so no rejected time moves the watermark); the Java side memoises the last
record per thread, so that is not a second parse. The step's output is the view `REQUESTS_VIEW`, one row
of `rows.REQUEST_FIELDS` per record.
"""
from __future__ import annotations

import json
from typing import Any

from pyflink.table import StreamTableEnvironment

from contract.spec import CATEGORICAL, MonitorSpec

from flink_job import java_functions, rows, watermarks

PARSE_FUNCTION = "mmon_parse"
TIME_FUNCTION = "mmon_request_time_ms"
JAVA_FUNCTIONS = {PARSE_FUNCTION: "ParseRequest", TIME_FUNCTION: "RequestTimeMs"}
"""The SQL functions, by their classes in ``io.github.mmon.flink``, each constructed with the schema."""

REQUESTS_VIEW = "mmon_requests"
def schema_json(spec: MonitorSpec, baseline: Any) -> str:
    """`java_schema`'s content as the JSON ``FeatureSchema.fromJson`` reads: the features' names and types, each
    categorical column's `udfs.baseline.CategoricalBaseline.vocabulary` (the codes 0, 1, ...), the output
    (`flink_job.main.checked_baseline` has checked that the baseline has each column with the spec's type), and
    ``ground_truth`` when the spec has that section (label messages are read; absent: they are not_request), and the
    kserve-v1 CloudEvent attribute that names a message's version (``versions.cloudevent_attribute``)."""
    columns = baseline.columns

    def vocabulary(column) -> list[str]:
        return list(columns[column.name].vocabulary) if column.type == CATEGORICAL else []

    features = spec.input.features
    content = {"names": [f.name for f in features], "types": [f.type for f in features],
               "vocabularies": [vocabulary(f) for f in features]}
    if spec.output is not None:
        content.update(output_name=spec.output.name, output_type=spec.output.type,
                       output_vocabulary=vocabulary(spec.output))
    if spec.ground_truth is not None:
        content.update(ground_truth=True)
    content.update(version_attribute=spec.versions.cloudevent_attribute)
    return json.dumps(content)


def java_schema(spec: MonitorSpec, baseline: Any):
    """The Java ``FeatureSchema`` of `spec` (``input.features``, ``output``) with the vocabularies of
    `baseline` (a `udfs.baseline.Baseline`): each categorical column's categories then other values."""
    return java_functions.package().FeatureSchema.fromJson(schema_json(spec, baseline))


def sql_string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def register_functions(t_env: StreamTableEnvironment, schema) -> None:
    """Registers `JAVA_FUNCTIONS`, each an instance constructed with ``schema`` (a Java ``FeatureSchema``,
    see `java_schema`), replacing earlier registrations of the names (their jar is in ``pipeline.jars``,
    see `flink_job.pipeline`)."""
    package = java_functions.package()
    for name, java_class in JAVA_FUNCTIONS.items():
        t_env._j_tenv.dropTemporarySystemFunction(name)
        t_env._j_tenv.createTemporarySystemFunction(name, getattr(package, java_class)(schema))


def call_sql(function: str, spec: MonitorSpec, live: bool, raw: str = "raw_payload", default_id: str = "default_id",
             default_time_ms: str = "default_time_ms") -> str:
    """A call of one of `JAVA_FUNCTIONS` on the SQL expressions given for the record and its defaults.

    ``live``: the input is a live stream (Kafka), whose request times are checked against the wall
    clock for ``future_time``; a replayed file's against the latest request time accepted before it
    (a file's times may lie anywhere, even after today). A record longer than ``input.max_record_bytes``
    is ``too_large``, its length read from Flink's UTF-8 string before any parse."""
    message_time = "TRUE" if spec.input.time == "event" else "FALSE"
    return (f"{function}({raw}, {sql_string(spec.input.format)}, {message_time}, {default_id}, {default_time_ms}, "
            f"CAST({int(spec.window.max_future_skew)} AS BIGINT), {'TRUE' if live else 'FALSE'}, "
            f"CAST({spec.input.max_record_bytes} AS INT))")


def version_sql(spec: MonitorSpec) -> str:
    """The record's model version: the one it names (`contract.formats.version_of`), else the spec's ``model.version``;
    NULL for a record the parser rejected (its version is not known)."""
    return (f"CASE WHEN r.parsed.reason IS NULL THEN COALESCE(r.parsed.version, {sql_string(spec.model.version)}) "
            "ELSE CAST(NULL AS STRING) END")


def requests_view_sql(spec: MonitorSpec, source_table: str, live: bool) -> str:
    """One row of `rows.REQUEST_FIELDS` per record; ``reason`` is NULL for a record that can be monitored."""
    columns = [f"r.parsed.{field} AS {name}" for name, field in rows.PARSED_FIELDS.items()]
    columns.append(f"{version_sql(spec)} AS {rows.VERSION}")
    passed = [*rows.POSITION_FIELDS, watermarks.ROWTIME]
    columns += ["CAST(r.raw_payload AS BYTES) AS `raw`", *(f"r.{name}" for name in passed)]
    return (f"CREATE TEMPORARY VIEW {REQUESTS_VIEW} AS SELECT {', '.join(columns)} FROM (SELECT raw_payload, "
            f"{', '.join(passed)}, {call_sql(PARSE_FUNCTION, spec, live)} AS parsed FROM {source_table}) AS r")
