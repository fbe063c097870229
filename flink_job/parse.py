"""Parse step, as SQL text: every inference-log format into (request id, request time, instances).

The JVM does all of it with Flink's built-in JSON functions, so no Python runs per record. The
dead-letter reasons are `flink_job.formats`' and are checked in its order; `tests/test_job_embedded.py`
holds this SQL to `formats.decode` on one line per reason. Known, documented differences from the
reference decoder (all on inputs no encoder writes):

- an id or time written as a JSON string of digits is accepted (``JSON_VALUE`` returns text);
- ``NaN``/``Infinity`` tokens anywhere make the line ``non_finite`` (the JVM parser rejects them, so
  the line is retried with them replaced: if it is then valid JSON the reason is non-finite);
- a value too large for a double (``1e999``) is dead-lettered ``non_finite`` per instance, so the
  other instances of a multi-instance request are still monitored.

Instances are checked as the compact JSON text ``JSON_QUERY`` re-serialises them to, with regular
expressions: ``[[n,n,...],[n,...]]`` where ``n`` is a JSON number.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flink_job import formats, watermarks
from flink_job.config import MonitorSpec

_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"
_TOKEN = r"[^,\[\]]+"
LATE = "late"
UTC_TIMESTAMP_PATTERN = "yyyy-MM-dd''T''HH:mm:ss.SSSX"


def sql_string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _json_value(path: str) -> str:
    return f"JSON_VALUE(raw_payload, {sql_string(path)})"


def _json_query(path: str) -> str:
    return f"JSON_QUERY(raw_payload, {sql_string(path)})"


def _is_object(path: str) -> str:
    return f"COALESCE({_json_query(path)} IS JSON OBJECT, FALSE)"


def _numeric_time_ms(path: str, positive: bool = True) -> str:
    """Epoch ms from a JSON number in seconds or milliseconds (`formats.time_to_ms`); with ``positive``,
    NULL unless > 0 (the check costs one more evaluation, so the source's rowtime column skips it)."""
    seconds_or_ms = f"TRY_CAST({_json_value(path)} AS DOUBLE)"
    millis = (f"CAST(ROUND(CASE WHEN {seconds_or_ms} < {formats.SECONDS_THRESHOLD:.0f} "
              f"THEN {seconds_or_ms} * 1000 ELSE {seconds_or_ms} END, 0) AS BIGINT)")
    return f"CASE WHEN {seconds_or_ms} > 0 THEN {millis} END" if positive else millis


def _rfc3339_time_ms(path: str) -> str:
    """Epoch ms from an RFC 3339 string with millisecond digits (what `formats.format_rfc3339_ms` writes)."""
    text = _json_value(path)
    seconds = f"UNIX_TIMESTAMP({text}, {sql_string(UTC_TIMESTAMP_PATTERN)})"
    return (f"CASE WHEN {seconds} > 0 THEN {seconds} * 1000 "
            f"+ CAST(SUBSTR({text}, 21, 3) AS BIGINT) END")


@dataclass(frozen=True)
class FormatSql:
    """The SQL of one format: field expressions over the STRING column ``raw_payload`` (plus the Kafka
    stand-ins ``default_id`` / ``default_time_ms``), and its format-specific checks in order."""

    request_id: str
    time_ms: str
    rowtime_ms: str  # time_ms without its validity checks, for the source's rowtime column
    instances_json: str
    envelope_checks: tuple[tuple[str, str], ...]  # (reason, SQL condition TRUE when the check fails), before id/time
    tensor_checks: tuple[tuple[str, str], ...] = ()  # the same, after id/time (oip-v2's datatype and shape)


def _thesis() -> FormatSql:
    return FormatSql(
        request_id=f"COALESCE({_json_value('$.id')}, default_id)",
        time_ms=f"COALESCE({_numeric_time_ms('$.time')}, default_time_ms)",
        rowtime_ms=f"COALESCE({_numeric_time_ms('$.time', positive=False)}, default_time_ms)",
        instances_json=_json_query("$.payload.instances"),
        envelope_checks=((formats.BAD_ENVELOPE, f"NOT {_is_object('$.payload')}"),
                (formats.NOT_REQUEST, f"COALESCE({_json_value('$.type')} <> 'request', TRUE)")))


def _kserve_v1() -> FormatSql:
    cloudevent = f"({_json_query('$.specversion')} IS NOT NULL OR {_json_value('$.specversion')} IS NOT NULL)"
    time_ms = (f"CASE WHEN {cloudevent} AND {_json_value('$.time')} IS NOT NULL "
               f"THEN {_rfc3339_time_ms('$.time')} ELSE default_time_ms END")
    return FormatSql(
        request_id=f"CASE WHEN {cloudevent} THEN COALESCE({_json_value('$.id')}, default_id) ELSE default_id END",
        time_ms=time_ms,
        rowtime_ms=time_ms,
        instances_json=f"CASE WHEN {cloudevent} THEN {_json_query('$.data.instances')} "
                       f"ELSE {_json_query('$.instances')} END",
        envelope_checks=((formats.BAD_ENVELOPE, f"{cloudevent} AND (COALESCE({_json_value('$.specversion')} <> '1.0', TRUE) "
                                       f"OR NOT {_is_object('$.data')})"),
                (formats.NOT_REQUEST, f"{cloudevent} AND COALESCE({_json_value('$.type')} <> "
                                      f"{sql_string(formats.CLOUDEVENT_REQUEST_TYPE)}, TRUE)")))


def _oip_v2(n_features: int) -> FormatSql:
    data = _json_query("$.inputs[0].data")
    inner = f"SUBSTR({data}, 2, CHAR_LENGTH({data}) - 2)"
    row = _TOKEN + f"(,{_TOKEN}){{{n_features - 1}}}"
    regrouped = f"CONCAT('[', REGEXP_REPLACE({inner}, {sql_string(f'({row})(,|$)')}, '[$1]$3'), ']')"
    shape = _json_query("$.inputs[0].shape")
    rows, width = (f"TRY_CAST({_json_value(f'$.inputs[0].shape[{i}]')} AS BIGINT)" for i in (0, 1))
    values_in_data = f"CHAR_LENGTH({data}) - CHAR_LENGTH(REPLACE({data}, ',', '')) + 1"
    datatypes = ", ".join(sql_string(t) for t in sorted(formats.NUMERIC_DATATYPES))
    parameters_ok = (f"({_json_query('$.parameters')} IS NULL AND {_json_value('$.parameters')} IS NULL) "
                     f"OR {_is_object('$.parameters')}")
    return FormatSql(
        request_id=f"COALESCE({_json_value('$.id')}, default_id)",
        time_ms=f"COALESCE({_numeric_time_ms('$.parameters.time')}, default_time_ms)",
        rowtime_ms=f"COALESCE({_numeric_time_ms('$.parameters.time', positive=False)}, default_time_ms)",
        instances_json=f"CASE WHEN {width} = {n_features} THEN {regrouped} END",
        envelope_checks=((formats.BAD_ENVELOPE, f"NOT ({_is_object('$.inputs[0]')} AND {_json_query('$.inputs[1]')} IS NULL "
                                                f"AND {_json_value('$.inputs[1]')} IS NULL AND ({parameters_ok}))"),),
        tensor_checks=((formats.BAD_DATATYPE, f"COALESCE({_json_value('$.inputs[0].datatype')} NOT IN ({datatypes}), TRUE)"),
                (formats.BAD_SHAPE, f"NOT COALESCE(REGEXP({shape}, '^\\[[1-9][0-9]*,[1-9][0-9]*\\]$') "
                                    f"AND {data} LIKE '[%]' AND {values_in_data} = {rows} * {width}, FALSE)"),
                (formats.WRONG_FEATURE_COUNT, f"{width} <> {n_features}")))


def format_sql(format: str, n_features: int) -> FormatSql:
    """The `FormatSql` of one of `formats.FORMATS`."""
    if format == formats.THESIS:
        return _thesis()
    if format == formats.KSERVE_V1:
        return _kserve_v1()
    if format == formats.OIP_V2:
        return _oip_v2(n_features)
    raise ValueError(f"unknown format {format!r}; expected one of {', '.join(formats.FORMATS)}")


def _instances_patterns(n_features: int) -> tuple[str, str]:
    """Regexes for the instances text: any list of number lists, and one whose lists hold n_features numbers."""
    any_row = rf"\[({_NUMBER}(,{_NUMBER})*)?\]"
    sized_row = rf"\[{_NUMBER}(,{_NUMBER}){{{n_features - 1}}}\]"
    return rf"^\[{any_row}(,{any_row})*\]$", rf"^\[{sized_row}(,{sized_row})*\]$"


_JSON_CALL = re.compile(r"JSON_(?:VALUE|QUERY)\(raw_payload, '(?:[^']|'')*'\)")


def factor_json_calls(expressions: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Common-subexpression elimination by hand: every distinct JSON function call on ``raw_payload``
    becomes one column ``j0, j1, ...`` (each call parses the whole message, and the generated code
    would repeat a call as often as it is written). Returns (columns, expressions over the columns)."""
    columns: dict[str, str] = {}
    names: dict[str, str] = {}

    def column(match: re.Match) -> str:
        call = match.group(0)
        if call not in names:
            names[call] = f"j{len(names)}"
            columns[names[call]] = call
        return names[call]

    rewritten = {name: _JSON_CALL.sub(column, expr) for name, expr in expressions.items()}
    return columns, rewritten


def reason_sql(fmt: FormatSql, n_features: int) -> str:
    """A CASE expression: the first failing check's reason (a `formats` constant), NULL for a good request."""
    any_rows, sized_rows = _instances_patterns(n_features)
    instances = "instances_json"
    checks = (
        (formats.BAD_JSON, "NOT is_object"),
        *fmt.envelope_checks,
        (formats.BAD_ID, "COALESCE(request_id = '', TRUE)"),
        (formats.BAD_TIME, "request_time_ms IS NULL OR request_time_ms <= 0"),
        *fmt.tensor_checks,
        (formats.NO_INSTANCES, f"{instances} IS NULL OR {instances} = '[]'"),
        (formats.BAD_INSTANCE, f"NOT REGEXP({instances}, {sql_string(any_rows)})"),
        (formats.WRONG_FEATURE_COUNT, f"NOT REGEXP({instances}, {sql_string(sized_rows)})"),
    )
    nan_free = "REGEXP_REPLACE(raw_payload, '(-?Infinity|NaN)', '0')"
    bad_json = (f"CASE WHEN COALESCE({nan_free} IS JSON OBJECT, FALSE) THEN {sql_string(formats.NON_FINITE)} "
                f"ELSE {sql_string(formats.BAD_JSON)} END")
    whens = [f"WHEN {checks[0][1]} THEN {bad_json}"]
    whens += [f"WHEN {condition} THEN {sql_string(reason)}" for reason, condition in checks[1:]]
    return "CASE " + " ".join(whens) + " END"


def feature_columns(n_features: int, instance: str = "instance") -> list[str]:
    """``f0 .. f{n-1}`` as DOUBLE from one instance's JSON text."""
    return [f"CAST(JSON_VALUE({instance}, '$[{j}]') AS DOUBLE) AS f{j}" for j in range(n_features)]


def finite_sql(n_features: int) -> str:
    """TRUE when every feature column is a finite double (``1e999`` parses to infinity)."""
    return " AND ".join(f"ABS(f{j}) <= 1.7976931348623157E308" for j in range(n_features))


REQUESTS_VIEW = "mmon_requests"
PARSED_VIEW = "mmon_parsed"
INSTANCES_VIEW = "mmon_instances"


def requests_view_sql(spec: MonitorSpec, source_table: str) -> str:
    """One row per record: its fields, ``late`` (see `flink_job.watermarks`) and ``reason`` (NULL if good).

    Three layers, so each JSON call and each field is computed once: the JSON calls (``j*``), the
    fields built from them, the reason checking the fields. Flink keeps such layers apart (it does not
    merge two projections when that would evaluate an expression twice)."""
    n = len(spec.input.features)
    fmt = format_sql(spec.input.format, n)
    fields = {"request_id": fmt.request_id,
              "request_time_ms": "default_time_ms" if spec.input.time == "kafka" else fmt.time_ms,
              "instances_json": fmt.instances_json,
              "reason": reason_sql(fmt, n)}
    columns, fields = factor_json_calls(fields)
    calls = "".join(f", {call} AS {name}" for name, call in columns.items())
    extracted = (f"SELECT raw_payload, source_ref, default_id, default_time_ms, {watermarks.ROWTIME}, "
                 f"{watermarks.late_sql()} AS late, COALESCE(raw_payload IS JSON OBJECT, FALSE) AS is_object{calls} "
                 f"FROM {source_table}")
    built = (f"SELECT *, {fields['request_id']} AS request_id, {fields['request_time_ms']} AS request_time_ms, "
             f"{fields['instances_json']} AS instances_json FROM ({extracted})")
    return (f"CREATE TEMPORARY VIEW {REQUESTS_VIEW} AS SELECT raw_payload, source_ref, {watermarks.ROWTIME}, late, "
            f"request_id, request_time_ms, instances_json, {fields['reason']} AS reason FROM ({built})")


def parsed_view_sql(spec: MonitorSpec) -> str:
    """One row per instance of every good, on-time request, with ``f0..`` and ``finite``."""
    n = len(spec.input.features)
    return (f"CREATE TEMPORARY VIEW {PARSED_VIEW} AS SELECT request_id, request_time_ms, {watermarks.ROWTIME}, "
            f"raw_payload, source_ref, {', '.join(f'f{j}' for j in range(n))}, {finite_sql(n)} AS finite FROM ("
            f"SELECT r.*, {', '.join(feature_columns(n))} FROM {REQUESTS_VIEW} AS r "
            f"CROSS JOIN UNNEST(JSON_QUERY(r.instances_json, '$' RETURNING ARRAY<STRING>)) AS i(instance) "
            f"WHERE r.reason IS NULL AND NOT r.late)")


def instances_view_sql(spec: MonitorSpec) -> str:
    """The monitored instances: (request_id, request_time_ms, rowtime, f0..f{n-1})."""
    n = len(spec.input.features)
    return (f"CREATE TEMPORARY VIEW {INSTANCES_VIEW} AS SELECT request_id, request_time_ms, {watermarks.ROWTIME}, "
            f"{', '.join(f'f{j}' for j in range(n))} FROM {PARSED_VIEW} WHERE finite")


def dead_letter_sql() -> str:
    """(reason, raw, source, rowtime) of malformed and late records, and of instances with a non-finite value."""
    return (f"SELECT COALESCE(reason, {sql_string(LATE)}) AS reason, raw_payload AS `raw`, source_ref AS `source`, "
            f"{watermarks.ROWTIME} FROM {REQUESTS_VIEW} WHERE reason IS NOT NULL OR late "
            f"UNION ALL SELECT {sql_string(formats.NON_FINITE)}, raw_payload, source_ref, {watermarks.ROWTIME} "
            f"FROM {PARSED_VIEW} WHERE NOT finite")
