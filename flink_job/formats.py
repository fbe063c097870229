"""The three inference-log wire formats, defined once: encoders and the pure-Python reference decoder.

The stream generator writes them, the inference logger reads and re-writes them, and the Flink job
parses them on the Java side (jvm/udfs, a port of `decode`); the job's tests hold it to `decode` here.
No pyflink import: this module is plain Python.

Formats (every encoder writes compact JSON, keys in this order, no spaces):

- ``thesis``: the thesis's logger message::

      {"type":"request","id":"<id>","time":<epoch ms>,"payload":{"instances":[[sl,sw,pl,pw],...]}}

  The thesis's own logger wrote whole epoch *seconds* in ``time``; see `time_to_ms` for how readers
  tell the two apart.
- ``kserve-v1``: a CloudEvents 1.0 structured-mode event whose ``data`` is a KServe v1 request body::

      {"specversion":"1.0","id":"<id>","source":"mmon/iris","type":"org.kubeflow.serving.inference.request",
       "time":"2026-11-21T23:25:00.123Z","datacontenttype":"application/json","data":{"instances":[[...]]}}

  A plain KServe v1 body ``{"instances":[...]}`` (no ``specversion`` key) is valid input too; its id
  and time then come from ``default_id`` / ``default_time_ms`` (the Kafka key and record timestamp).
- ``oip-v2``: an Open Inference Protocol request with one FP64 tensor of shape [n, k], data flattened
  row-major, and the request time in ``parameters.time``::

      {"id":"<id>","parameters":{"time":<epoch ms>},"inputs":[{"name":"input-0","shape":[n,k],
       "datatype":"FP64","data":[...]}]}

Decoding checks run in this order; the first that fails raises `FormatError` with its reason, and the
reasons are exactly the dead-letter reasons of the job and the logger:

1. ``bad_json``      not UTF-8, not JSON, or the top level is not an object.
2. ``bad_envelope``  the object lacks the format's structure: thesis without an object ``payload``;
   a CloudEvent whose ``specversion`` is not "1.0" or whose ``data`` is not an object; an OIP request
   whose ``inputs`` is not a list of exactly one tensor object, or ``parameters`` not an object.
3. ``not_request``   thesis message whose ``type`` is not "request", or CloudEvent whose ``type`` is not
   ``org.kubeflow.serving.inference.request`` (responses travel the same topic and are not monitored).
4. ``bad_id``        the id is missing (and no ``default_id``), not a string, or empty.
5. ``bad_time``      the time is missing (and no ``default_time_ms``), of the wrong type (thesis/OIP:
   a JSON number, not a boolean; CloudEvent: an RFC 3339 string), not finite, not positive, or
   beyond `MAX_TIME_MS`.
6. ``bad_datatype``  (oip-v2) ``datatype`` is not a numeric tensor type (`NUMERIC_DATATYPES`).
7. ``bad_shape``     (oip-v2) ``shape`` is not ``[n, k]`` of positive integers, or ``data`` does not hold
   n * k values.
8. ``no_instances``  ``instances`` (thesis, kserve-v1) is missing, not a list, or empty.
9. ``bad_instance``  an instance is not a list, or a value in it is not a JSON number (strings, booleans,
   null and nested lists are rejected).
10. ``wrong_feature_count``  an instance is empty, the instances disagree in length, or their length is
    not ``n_features`` when that is given.
11. ``non_finite``   a value is NaN or infinite (Python's JSON reader accepts ``NaN``/``Infinity`` and
    turns ``1e999`` into inf; none of them may reach the statistics), or an integer beyond a double.
12. ``future_time``  (checked by the job and the logger, not by `decode`) the request time is more than
    ``window.max_future_skew`` ahead of the wall clock: such a record is dead-lettered and never moves
    the watermark.
"""
from __future__ import annotations

import json
import math
import re
import time
from calendar import timegm
from datetime import datetime
from functools import lru_cache
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence, Union

THESIS = "thesis"
KSERVE_V1 = "kserve-v1"
OIP_V2 = "oip-v2"
FORMATS = (THESIS, KSERVE_V1, OIP_V2)

BAD_JSON = "bad_json"
BAD_ENVELOPE = "bad_envelope"
NOT_REQUEST = "not_request"
BAD_ID = "bad_id"
BAD_TIME = "bad_time"
BAD_DATATYPE = "bad_datatype"
BAD_SHAPE = "bad_shape"
NO_INSTANCES = "no_instances"
BAD_INSTANCE = "bad_instance"
WRONG_FEATURE_COUNT = "wrong_feature_count"
NON_FINITE = "non_finite"
FUTURE_TIME = "future_time"
REASONS = (BAD_JSON, BAD_ENVELOPE, NOT_REQUEST, BAD_ID, BAD_TIME, BAD_DATATYPE, BAD_SHAPE,
           NO_INSTANCES, BAD_INSTANCE, WRONG_FEATURE_COUNT, NON_FINITE, FUTURE_TIME)

CLOUDEVENT_SOURCE = "mmon/iris"
CLOUDEVENT_REQUEST_TYPE = "org.kubeflow.serving.inference.request"
CLOUDEVENT_RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
OIP_INPUT_NAME = "input-0"
OIP_OUTPUT_NAME = "output-0"
NUMERIC_DATATYPES = frozenset({"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64",
                               "UINT8", "UINT16", "UINT32", "UINT64"})

SECONDS_THRESHOLD = 1e11
"""Epoch times below this are seconds, at or above it milliseconds: 1e11 s is the year 5138 and
1e11 ms is March 1973, so no real request time is ambiguous."""

MAX_TIME_MS = 2**63 - 1
"""The largest request time (a signed 64-bit epoch ms, Flink's BIGINT); later times are ``bad_time``."""

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))")

NUMERIC = "numeric"
CATEGORICAL = "categorical"
FEATURE_TYPES = (NUMERIC, CATEGORICAL)

Value = Union[float, str, None]
"""A decoded value: a numeric feature's float, a categorical feature's text, or None (missing)."""
Row = Union[Sequence[Any], Mapping[str, Any]]
Instances = Sequence[Row]


@dataclass(frozen=True)
class Schema:
    """What a record's values must be: the features (names in instance order, or None: unnamed, list
    instances only) with their types (`FEATURE_TYPES`), and the model output, when responses are read
    (`output_name` None: responses are ``not_request``)."""
    features: Optional[tuple[str, ...]]
    types: tuple[str, ...]
    output_name: Optional[str] = None
    output_type: str = CATEGORICAL

    def __post_init__(self):
        object.__setattr__(self, "types", tuple(self.types))
        if self.features is not None:
            object.__setattr__(self, "features", tuple(self.features))
            if len(self.features) != len(self.types):
                raise ValueError(f"{len(self.features)} feature names for {len(self.types)} types")
            if len(set(self.features)) != len(self.features):
                raise ValueError(f"feature names must be unique, got {list(self.features)}")
        if not self.types:
            raise ValueError("a schema needs at least one feature")
        for kind in (*self.types, self.output_type):
            if kind not in FEATURE_TYPES:
                raise ValueError(f"unknown feature type {kind!r}; expected one of {', '.join(FEATURE_TYPES)}")

    @classmethod
    def numeric(cls, n_features: int, features: Optional[Sequence[str]] = None) -> "Schema":
        """``n_features`` numeric features, unnamed unless ``features`` names them; no output."""
        return cls(None if features is None else tuple(features), (NUMERIC,) * n_features)

    @classmethod
    def from_spec(cls, spec: Any) -> "Schema":
        """The schema of a `flink_job.config.MonitorSpec` (its ``input.features`` and ``output``)."""
        features = spec.input.features
        output = spec.output
        return cls(tuple(f.name for f in features), tuple(f.type for f in features),
                   None if output is None else output.name, CATEGORICAL if output is None else output.type)

    @property
    def width(self) -> int:
        return len(self.types)


class FormatError(ValueError):
    """A message that cannot be monitored; ``reason`` is one of `REASONS`."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class ParsedRequest(NamedTuple):
    request_id: str
    time_ms: int
    instances: list[list[float]]


# ---------------------------------------------------------------------------------------------- time

def time_to_ms(value: float) -> int:
    """Epoch milliseconds from an epoch time in seconds or milliseconds (see `SECONDS_THRESHOLD`).

    Seconds are multiplied by 1000; fractional results are rounded half to even (Python `round`).
    """
    return int(round(value * 1000)) if value < SECONDS_THRESHOLD else int(round(value))


@lru_cache(maxsize=256)
def _utc_seconds_stamp(epoch_s: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s))


def format_rfc3339_ms(time_ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, always exactly three fractional digits."""
    seconds, millis = divmod(int(time_ms), 1000)
    return f"{_utc_seconds_stamp(seconds)}.{millis:03d}Z"


def parse_rfc3339_ms(text: str) -> int:
    """Epoch milliseconds from an RFC 3339 timestamp; digits beyond milliseconds are truncated.

    Raises ValueError for anything that is not a full RFC 3339 date-time with a zone.
    """
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    datetime(year, month, day, hour, minute, min(second, 59))  # validates the calendar fields
    millis = int((match.group(7) or "0")[:3].ljust(3, "0"))
    offset_s = 0
    if match.group(9):
        sign = 1 if match.group(9) == "+" else -1
        offset_s = sign * (int(match.group(10)) * 3600 + int(match.group(11)) * 60)
    epoch_s = timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset_s
    return epoch_s * 1000 + millis


# -------------------------------------------------------------------------------------------- encode

def _value(value: Any) -> Value:
    """A value as JSON: None (null) and strings as they are, Python ints stay ints (``0``, not ``0.0``:
    readers take any JSON number), everything else becomes a float."""
    if value is None or isinstance(value, str) or type(value) is int:
        return value
    return float(value)


def _row(row: Row) -> Union[list, dict]:
    if isinstance(row, Mapping):
        return {str(name): _value(v) for name, v in row.items()}
    return [_value(v) for v in row]


def _column_datatype(values: Sequence[Value]) -> str:
    return "BYTES" if any(isinstance(v, str) for v in values) else "FP64"


def _encode_thesis(request_id: str, time_ms: int, rows: list, schema: Optional[Schema]) -> dict:
    return {"type": "request", "id": request_id, "time": time_ms, "payload": {"instances": rows}}


def _encode_kserve_v1(request_id: str, time_ms: int, rows: list, schema: Optional[Schema]) -> dict:
    return {"specversion": "1.0", "id": request_id, "source": CLOUDEVENT_SOURCE,
            "type": CLOUDEVENT_REQUEST_TYPE, "time": format_rfc3339_ms(time_ms),
            "datacontenttype": "application/json", "data": {"instances": rows}}


def _feature_tensors(rows: list, schema: Optional[Schema]) -> list[dict]:
    """One tensor per feature, shape [n]: the schema's features (BYTES for a categorical one, else FP64),
    or without a schema the keys of object rows in first-seen order (BYTES when a value is a string)."""
    if schema is not None and schema.features is not None:
        names = schema.features
        datatypes = ["BYTES" if t == CATEGORICAL else "FP64" for t in schema.types]
    elif all(isinstance(row, dict) for row in rows):
        names = list(dict.fromkeys(name for row in rows for name in row))
        datatypes = None
    else:
        raise ValueError("oip-v2: string values or object instances need feature names (a named schema, "
                         "or every instance an object)")
    columns = [[row.get(name) if isinstance(row, dict) else row[j] for row in rows] for j, name in enumerate(names)]
    if datatypes is None:
        datatypes = [_column_datatype(column) for column in columns]
    return [{"name": name, "shape": [len(rows)], "datatype": datatype, "data": column}
            for name, datatype, column in zip(names, datatypes, columns)]


def _encode_oip_v2(request_id: str, time_ms: int, rows: list, schema: Optional[Schema]) -> dict:
    named = schema is not None and schema.features is not None
    if named or any(isinstance(row, dict) or any(isinstance(v, str) for v in row) for row in rows):
        inputs = _feature_tensors(rows, schema)
    else:
        width = len(rows[0]) if rows else 0
        inputs = [{"name": OIP_INPUT_NAME, "shape": [len(rows), width], "datatype": "FP64",
                   "data": [v for row in rows for v in row]}]
    return {"id": request_id, "parameters": {"time": time_ms}, "inputs": inputs}


_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # built once: json.dumps rebuilds it per call

_ENCODERS: dict[str, Callable[[str, int, list, Optional[Schema]], dict]] = {
    THESIS: _encode_thesis, KSERVE_V1: _encode_kserve_v1, OIP_V2: _encode_oip_v2}


def _known(format: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")


def encode(format: str, request_id: str, time_ms: int, instances: Instances, *,
           schema: Optional[Schema] = None) -> str:
    """One request as compact JSON in `format`. Each instance is a list (feature order) or a mapping
    (feature name -> value); values are numbers, strings or None (JSON null: a missing value). Floats are
    written with Python's shortest round-trip repr, ints as ints, so the output is deterministic; round
    the values first if you want short numbers.

    oip-v2 writes one [n, k] FP64 tensor when every instance is a list of numbers (or None) and no named
    `schema` is given; otherwise one tensor per feature (shape [n]): the named schema's features (BYTES
    for a categorical one), or the instances' keys when every instance is a mapping (BYTES when the
    column holds a string). String values in list instances need the named schema there.

    Raises ValueError for an unknown format, a non-finite value, or an oip-v2 request it cannot name.
    """
    _known(format)
    message = _ENCODERS[format](request_id, int(time_ms), [_row(row) for row in instances], schema)
    return _JSON.encode(message)


def encode_response(format: str, request_id: str, time_ms: int, predictions: Sequence[Any]) -> str:
    """One response (the model's predictions for the request `request_id`, one per instance) as compact
    JSON in `format`: thesis ``{"type":"response",...,"payload":{"predictions":[...]}}``, kserve-v1 a
    CloudEvent of type `CLOUDEVENT_RESPONSE_TYPE` whose data is ``{"predictions":[...]}``, oip-v2
    ``{"id":...,"parameters":{"time":...},"outputs":[<one tensor, shape [n]>]}`` (BYTES when a prediction
    is a string, else FP64). Values as in `encode`.

    Raises ValueError for an unknown format or a non-finite value.
    """
    _known(format)
    values = [_value(v) for v in predictions]
    time_ms = int(time_ms)
    if format == THESIS:
        message = {"type": "response", "id": request_id, "time": time_ms, "payload": {"predictions": values}}
    elif format == KSERVE_V1:
        message = {"specversion": "1.0", "id": request_id, "source": CLOUDEVENT_SOURCE,
                   "type": CLOUDEVENT_RESPONSE_TYPE, "time": format_rfc3339_ms(time_ms),
                   "datacontenttype": "application/json", "data": {"predictions": values}}
    else:
        tensor = {"name": OIP_OUTPUT_NAME, "shape": [len(values)], "datatype": _column_datatype(values),
                  "data": values}
        message = {"id": request_id, "parameters": {"time": time_ms}, "outputs": [tensor]}
    return _JSON.encode(message)


# -------------------------------------------------------------------------------------------- decode

def _load_object(raw: Union[str, bytes]) -> dict:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise FormatError(BAD_JSON, str(exc)) from None
    if not isinstance(obj, dict):
        raise FormatError(BAD_JSON, f"top level is {type(obj).__name__}, not an object")
    return obj


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise FormatError(BAD_ENVELOPE, f"{what} is not an object")
    return value


def _request_id(value: Any, default_id: Optional[str]) -> str:
    if value is None:
        value = default_id
    if not isinstance(value, str) or not value:
        raise FormatError(BAD_ID, f"id {value!r}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric_time(value: Any, default_time_ms: Optional[int]) -> int:
    if value is None:
        if default_time_ms is None:
            raise FormatError(BAD_TIME, "missing")
        return int(default_time_ms)
    if (not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)) or value <= 0
            or time_to_ms(value) > MAX_TIME_MS):
        raise FormatError(BAD_TIME, f"time {value!r}")
    return time_to_ms(value)


def _cloudevent_time(value: Any, default_time_ms: Optional[int]) -> int:
    if value is None:
        return _numeric_time(None, default_time_ms)
    if not isinstance(value, str):
        raise FormatError(BAD_TIME, f"time {value!r} is not a string")
    try:
        time_ms = parse_rfc3339_ms(value)
    except ValueError as exc:
        raise FormatError(BAD_TIME, str(exc)) from None
    if time_ms <= 0:
        raise FormatError(BAD_TIME, f"time {value!r} is not after the epoch")
    return time_ms


def _check_values(row: list) -> list[float]:
    if not all(_is_number(v) for v in row):
        raise FormatError(BAD_INSTANCE, "a value is not a number")
    try:
        values = [float(v) for v in row]
    except OverflowError:  # an integer literal beyond the largest double
        raise FormatError(NON_FINITE, "integer too large for a double") from None
    if not all(math.isfinite(v) for v in values):
        raise FormatError(NON_FINITE, "NaN or infinite value")
    return values


def _check_instances(instances: Any, n_features: Optional[int]) -> list[list[float]]:
    if not isinstance(instances, list) or not instances:
        raise FormatError(NO_INSTANCES, "instances missing, not a list, or empty")
    if not all(isinstance(row, list) for row in instances):
        raise FormatError(BAD_INSTANCE, "an instance is not a list")
    width = n_features if n_features is not None else len(instances[0])
    if width < 1 or any(len(row) != width for row in instances):
        raise FormatError(WRONG_FEATURE_COUNT, f"instance lengths {sorted({len(r) for r in instances})}"
                                               f", expected {width}")
    return [_check_values(row) for row in instances]


def _decode_thesis(obj: dict, default_id, default_time_ms, n_features) -> ParsedRequest:
    payload = _object(obj.get("payload"), "payload")
    if obj.get("type") != "request":
        raise FormatError(NOT_REQUEST, f"type {obj.get('type')!r}")
    request_id = _request_id(obj.get("id"), default_id)
    time_ms = _numeric_time(obj.get("time"), default_time_ms)
    return ParsedRequest(request_id, time_ms, _check_instances(payload.get("instances"), n_features))


def _decode_kserve_v1(obj: dict, default_id, default_time_ms, n_features) -> ParsedRequest:
    if "specversion" not in obj:  # a plain KServe v1 body
        body = obj
        request_id = _request_id(None, default_id)
        time_ms = _numeric_time(None, default_time_ms)
    else:
        if obj["specversion"] != "1.0":
            raise FormatError(BAD_ENVELOPE, f"specversion {obj['specversion']!r}")
        body = _object(obj.get("data"), "data")
        if obj.get("type") != CLOUDEVENT_REQUEST_TYPE:
            raise FormatError(NOT_REQUEST, f"type {obj.get('type')!r}")
        request_id = _request_id(obj.get("id"), default_id)
        time_ms = _cloudevent_time(obj.get("time"), default_time_ms)
    return ParsedRequest(request_id, time_ms, _check_instances(body.get("instances"), n_features))


def _oip_rows(tensor: dict, n_features: Optional[int]) -> list[list[float]]:
    if not isinstance(tensor.get("datatype"), str) or tensor["datatype"] not in NUMERIC_DATATYPES:
        raise FormatError(BAD_DATATYPE, f"datatype {tensor.get('datatype')!r}")
    shape, data = tensor.get("shape"), tensor.get("data")
    if (not isinstance(shape, list) or len(shape) != 2
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise FormatError(BAD_SHAPE, f"shape {shape!r} is not [n, k]")
    n, width = shape
    if not isinstance(data, list) or len(data) != n * width:
        raise FormatError(BAD_SHAPE, f"data does not hold {n} x {width} values")
    return _check_instances([data[i * width:(i + 1) * width] for i in range(n)], n_features)


def _decode_oip_v2(obj: dict, default_id, default_time_ms, n_features) -> ParsedRequest:
    inputs = obj.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise FormatError(BAD_ENVELOPE, "inputs is not a list of exactly one tensor")
    tensor = _object(inputs[0], "inputs[0]")
    parameters = _object(obj.get("parameters", {}), "parameters")
    request_id = _request_id(obj.get("id"), default_id)
    time_ms = _numeric_time(parameters.get("time"), default_time_ms)
    return ParsedRequest(request_id, time_ms, _oip_rows(tensor, n_features))


_DECODERS = {THESIS: _decode_thesis, KSERVE_V1: _decode_kserve_v1, OIP_V2: _decode_oip_v2}


def decode(format: str, raw: Union[str, bytes], *, default_id: Optional[str] = None,
           default_time_ms: Optional[int] = None, n_features: Optional[int] = None) -> ParsedRequest:
    """Parse one message of `format` into (request_id, time_ms, instances).

    `default_id` / `default_time_ms` stand in when the message carries no id / time (e.g. the Kafka
    key and record timestamp). `n_features`, when given, is the required instance length; otherwise
    all instances must merely agree. Raises `FormatError` (see the module docstring for the reasons
    and the order they are checked in), or ValueError for an unknown format.
    """
    return decode_object(format, _load_object(raw), default_id=default_id, default_time_ms=default_time_ms,
                         n_features=n_features)


def decode_object(format: str, obj: dict, *, default_id: Optional[str] = None,
                  default_time_ms: Optional[int] = None, n_features: Optional[int] = None) -> ParsedRequest:
    """`decode` on a message already parsed from JSON into a dict (the checks after ``bad_json``)."""
    if format not in _DECODERS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    return _DECODERS[format](obj, default_id, default_time_ms, n_features)
