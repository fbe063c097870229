"""The inference-log wire formats, defined once: encoders and the pure-Python reference decoder.

The stream generator writes them, the inference logger reads and re-writes them, and the Flink job
parses them on the Java side (jvm/udfs, a port of `decode`); the job's tests hold it to `decode` here.
No pyflink import: this module is plain Python.

Formats (every encoder writes compact JSON, keys in this order, no spaces):

- ``thesis``: the thesis's logger message::

      {"type":"request","id":"<id>","time":<epoch ms>,"payload":{"instances":[[sl,sw,pl,pw],...]}}

  The thesis's own logger wrote whole epoch *seconds* in ``time``; see `time_to_ms` for how readers
  tell the two apart.
- ``kserve-v1``: a CloudEvents 1.0 structured-mode event whose ``data`` is a KServe v1 request body::

      {"specversion":"1.0","id":"<id>","source":"<source>","type":"org.kubeflow.serving.inference.request",
       "time":"2026-11-21T23:25:00.123Z","datacontenttype":"application/json","data":{"instances":[[...]]}}

  A plain KServe v1 body ``{"instances":[...]}`` (no ``specversion`` key) is valid input too; its id
  and time then come from ``default_id`` / ``default_time_ms`` (the Kafka key and record timestamp).
- ``oip-v2``: an Open Inference Protocol request, the request time in ``parameters.time``, and either
  one tensor of shape [n, k] with a numeric datatype, data flattened row-major::

      {"id":"<id>","parameters":{"time":<epoch ms>},"inputs":[{"name":"input-0","shape":[n,k],
       "datatype":"FP64","data":[...]}]}

  or one tensor per feature, named like the feature, of shape [n] or [n, 1] (datatype ``BYTES`` for a
  categorical feature, a numeric one for a numeric feature; every tensor the same n; tensors of other
  names are ignored; a feature without a tensor is missing in every instance)::

      {"id":"<id>","parameters":{"time":<epoch ms>},"inputs":[{"name":"age","shape":[n],"datatype":"FP64",
       "data":[...]},{"name":"country","shape":[n],"datatype":"BYTES","data":["se",...]}]}

  ``inputs`` is read per feature as soon as one tensor is named like a feature of a named `Schema`.

Values. What a record must hold is a `Schema`: the features (names in instance order, each
``numeric`` or ``categorical``) and, optionally, the model output. An instance is a list of one value
per feature, in order, or (with a named schema) an object keyed by feature name: other keys are
ignored and a missing key is a missing value. A numeric feature's value is a JSON number (decoded to a
float); a categorical feature's is a JSON string, or an integral JSON number taken as its decimal
integer text (``1``, ``1.0`` and ``1e0`` are all ``"1"``, ``-0.0`` is ``"0"``); ``null`` is a missing
value (``None``) in either. In the single [n, k] oip-v2 tensor the columns follow the same rules.
Without a schema (``decode(fmt, raw)``) every feature is numeric and unnamed, instances are lists that
merely agree in length; ``n_features=k`` is ``Schema.numeric(k)``, k unnamed numeric features.

Responses (read only when the schema has an output; without one a response is ``not_request`` in
thesis and kserve-v1, and ``bad_envelope`` in oip-v2, whose responses carry no ``inputs``), one
prediction per instance of the request with the same id, each value checked as a one-feature instance
of the output's type (`encode_response` writes them)::

    thesis     {"type":"response","id":"<id>","time":<epoch ms>,"payload":{"predictions":[...]}}
    kserve-v1  a CloudEvent of type org.kubeflow.serving.inference.response, data {"predictions":[...]}
               (a plain body with "predictions" and no "instances" is a response too, id and time
               from the defaults)
    oip-v2     {"id":"<id>","parameters":{"time":<epoch ms>},"outputs":[{"name":"output-0","shape":[n],
               "datatype":"BYTES","data":[...]}]}  (exactly one tensor, shape [n] or [n, 1]; an object
               with "outputs" and no "inputs"; a numeric datatype, or BYTES for a categorical output)

Decoding checks run in this order; the first that fails raises `FormatError` with its reason, and the
reasons are exactly the dead-letter reasons of the job and the logger:

1. ``too_large``     (with ``max_record_bytes``, the spec's ``input.max_record_bytes``) the record is longer
   than that many UTF-8 bytes: it is not parsed at all (a parsed instance takes many times its text, and
   one line of a million instances exhausted the job's heap).
2. ``bad_json``      not UTF-8, not JSON, or the top level is not an object.
3. ``bad_envelope``  the object lacks the format's structure: thesis without an object ``payload``;
   a CloudEvent whose ``specversion`` is not "1.0" or whose ``data`` is not an object; an OIP request
   whose ``inputs`` is not a non-empty list of tensor objects, that is neither exactly one tensor nor
   holds tensors named like the features (two of the same feature's name included), an OIP response
   whose ``outputs`` is not a list of exactly one tensor object, or ``parameters`` not an object.
4. ``not_request``   thesis message whose ``type`` is not "request", or CloudEvent whose ``type`` is not
   ``org.kubeflow.serving.inference.request`` (responses travel the same topic and are not monitored),
   unless it is a response and the schema has an output.
5. ``bad_id``        the id is missing (and no ``default_id``), not a string, or empty.
6. ``bad_time``      the time is missing (and no ``default_time_ms``), of the wrong type (thesis/OIP:
   a JSON number, not a boolean; CloudEvent: an RFC 3339 string), not finite, not positive, or
   beyond `MAX_TIME_MS`.
7. ``bad_datatype``  (oip-v2) the single tensor's ``datatype`` is not a numeric tensor type
   (`NUMERIC_DATATYPES`); a feature's tensor's is not BYTES (categorical) or numeric (numeric), in
   feature order; the output tensor's is neither numeric nor (categorical output) BYTES.
8. ``bad_shape``     (oip-v2) the single tensor's ``shape`` is not ``[n, k]`` of positive integers, or
   ``data`` does not hold n * k values; a feature's or the output's tensor's shape is not [n] or
   [n, 1] of positive integers, or its ``data`` does not hold n values (feature tensors in feature
   order), or the feature tensors disagree on n.
9. ``no_instances``  ``instances`` (thesis, kserve-v1) or ``predictions`` is missing, not a list, or empty.
10. ``bad_instance``  an instance is not a list (nor, with a named schema, an object), or a value in it
    has the wrong JSON type for its feature: not a number (numeric), not a string or a number
    (categorical; booleans, lists and objects never fit), a finite number that is not integral
    (categorical), or a string longer than `MAX_CATEGORY_CHARS` (categorical: a window keeps up to 2,048
    distinct values and lists the most frequent in its record, which must stay small); a prediction
    likewise for the output.
11. ``wrong_feature_count``  a list instance is empty, the list instances disagree in length, or their
    length is not the schema's number of features (the single oip-v2 tensor's k likewise).
12. ``non_finite``   a number is NaN or infinite (Python's JSON reader accepts ``NaN``/``Infinity`` and
    turns ``1e999`` into inf; none of them may reach the statistics), or an integer beyond a double.
    Checks 10 and 12 run instance by instance (each prediction an instance): all of an instance's value
    types, then its numbers' finiteness, then the next instance.
13. ``future_time``  (checked by the job and the logger, not by `decode`) the request time is more than
    ``window.max_future_skew`` ahead of the wall clock: such a record is dead-lettered and never moves
    the watermark.
14. ``unmatched_response``  (the job) a response with no request of its id within ``output.join_timeout``.
15. ``wrong_prediction_count``  (the job) a response whose number of predictions is not its request's
    number of instances.
16. ``late``         (the job) a request whose time is behind the watermark: its window has closed.
"""
from __future__ import annotations

import json
import math
import re
import time
from calendar import timegm
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence, Union

from contract.spec import CATEGORICAL, FEATURE_TYPES, NUMERIC  # the feature types: one list, the spec's

THESIS = "thesis"
KSERVE_V1 = "kserve-v1"
OIP_V2 = "oip-v2"
FORMATS = (THESIS, KSERVE_V1, OIP_V2)

TOO_LARGE = "too_large"
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
UNMATCHED_RESPONSE = "unmatched_response"
WRONG_PREDICTION_COUNT = "wrong_prediction_count"
LATE = "late"
REASONS = (TOO_LARGE, BAD_JSON, BAD_ENVELOPE, NOT_REQUEST, BAD_ID, BAD_TIME, BAD_DATATYPE, BAD_SHAPE,
           NO_INSTANCES, BAD_INSTANCE, WRONG_FEATURE_COUNT, NON_FINITE, FUTURE_TIME,
           UNMATCHED_RESPONSE, WRONG_PREDICTION_COUNT, LATE)

DEFAULT_SOURCE = "mmon"
"""A CloudEvent's ``source`` when the encoder is given none (the logger passes each event's own)."""
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

MAX_CATEGORY_CHARS = 1024
"""The longest categorical value, in characters (code points); a longer one is ``bad_instance``."""


def label_code(j: int) -> float:
    """The code of a categorical value outside the vocabulary: ``-(1 + j)``, ``j`` its index among the
    record's (or the window's) labels. A value in the vocabulary is coded by its index there (>= 0), a
    missing one NaN, so every column travels as float64."""
    return float(-(1 + j))


def label_index(code: float) -> int:
    """The index among the labels of a negative `label_code`."""
    return int(-1 - code)

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))")


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
        """The schema of a `contract.spec.MonitorSpec` (its ``input.features`` and ``output``)."""
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
    instances: list[list[Value]]


class ParsedResponse(NamedTuple):
    """A model response: the predictions for the request ``request_id``, one per instance."""
    request_id: str
    time_ms: int
    predictions: list[Value]


Parsed = Union[ParsedRequest, ParsedResponse]


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


def _encode_thesis(request_id: str, time_ms: int, rows: list, schema: Optional[Schema], source: str) -> dict:
    return {"type": "request", "id": request_id, "time": time_ms, "payload": {"instances": rows}}


def _cloudevent(request_id: str, time_ms: int, source: str, event_type: str, data: dict) -> dict:
    """A structured-mode CloudEvent of the kserve-v1 format, its attributes in the documented order."""
    return {"specversion": "1.0", "id": request_id, "source": source, "type": event_type,
            "time": format_rfc3339_ms(time_ms), "datacontenttype": "application/json", "data": data}


def _encode_kserve_v1(request_id: str, time_ms: int, rows: list, schema: Optional[Schema], source: str) -> dict:
    return _cloudevent(request_id, time_ms, source, CLOUDEVENT_REQUEST_TYPE, {"instances": rows})


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


def _encode_oip_v2(request_id: str, time_ms: int, rows: list, schema: Optional[Schema], source: str) -> dict:
    named = schema is not None and schema.features is not None
    if named or any(isinstance(row, dict) or any(isinstance(v, str) for v in row) for row in rows):
        inputs = _feature_tensors(rows, schema)
    else:
        width = len(rows[0]) if rows else 0
        inputs = [{"name": OIP_INPUT_NAME, "shape": [len(rows), width], "datatype": "FP64",
                   "data": [v for row in rows for v in row]}]
    return {"id": request_id, "parameters": {"time": time_ms}, "inputs": inputs}


_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # built once: json.dumps rebuilds it per call

_ENCODERS: dict[str, Callable[[str, int, list, Optional[Schema], str], dict]] = {
    THESIS: _encode_thesis, KSERVE_V1: _encode_kserve_v1, OIP_V2: _encode_oip_v2}


def _known(format: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")


def encode(format: str, request_id: str, time_ms: int, instances: Instances, *,
           schema: Optional[Schema] = None, source: str = DEFAULT_SOURCE) -> str:
    """One request as compact JSON in `format`. Each instance is a list (feature order) or a mapping
    (feature name -> value); values are numbers, strings or None (JSON null: a missing value). Floats are
    written with Python's shortest round-trip repr, ints as ints, so the output is deterministic; round
    the values first if you want short numbers.

    oip-v2 writes one [n, k] FP64 tensor when every instance is a list of numbers (or None) and no named
    `schema` is given; otherwise one tensor per feature (shape [n]): the named schema's features (BYTES
    for a categorical one), or the instances' keys when every instance is a mapping (BYTES when the
    column holds a string). String values in list instances need the named schema there.

    ``source`` is the kserve-v1 CloudEvent's ``source`` attribute: where the event comes from (the other
    formats have none).

    Raises ValueError for an unknown format, a non-finite value, or an oip-v2 request it cannot name.
    """
    _known(format)
    message = _ENCODERS[format](request_id, int(time_ms), [_row(row) for row in instances], schema, source)
    return _JSON.encode(message)


def encode_response(format: str, request_id: str, time_ms: int, predictions: Sequence[Any], *,
                    source: str = DEFAULT_SOURCE) -> str:
    """One response (the model's predictions for the request `request_id`, one per instance) as compact
    JSON in `format`: thesis ``{"type":"response",...,"payload":{"predictions":[...]}}``, kserve-v1 a
    CloudEvent of type `CLOUDEVENT_RESPONSE_TYPE` whose data is ``{"predictions":[...]}``, oip-v2
    ``{"id":...,"parameters":{"time":...},"outputs":[<one tensor, shape [n]>]}`` (BYTES when a prediction
    is a string, else FP64). Values and ``source`` as in `encode`.

    Raises ValueError for an unknown format or a non-finite value.
    """
    _known(format)
    values = [_value(v) for v in predictions]
    time_ms = int(time_ms)
    if format == THESIS:
        message = {"type": "response", "id": request_id, "time": time_ms, "payload": {"predictions": values}}
    elif format == KSERVE_V1:
        message = _cloudevent(request_id, time_ms, source, CLOUDEVENT_RESPONSE_TYPE, {"predictions": values})
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


def _check_values(row: Sequence[Any], types: Sequence[str]) -> list[Value]:
    """One instance's values (``None`` for a missing key), checked against their columns' types: first
    every value's JSON type (``bad_instance``), then every number's finiteness (``non_finite``)."""
    for value, kind in zip(row, types):
        if value is None:
            continue
        if kind == NUMERIC:
            fits = _is_number(value)
        else:  # categorical: text, or an integral number (a non-finite one fails the next check)
            fits = (isinstance(value, str) and len(value) <= MAX_CATEGORY_CHARS) or (_is_number(value) and not (
                isinstance(value, float) and math.isfinite(value) and not value.is_integer()))
        if not fits:
            raise FormatError(BAD_INSTANCE, f"{_shown(value)} is not a {kind} value"
                                            + (f" (longer than {MAX_CATEGORY_CHARS} characters)"
                                               if isinstance(value, str) and kind == CATEGORICAL else ""))
    values: list[Value] = []
    for value, kind in zip(row, types):
        if value is None or isinstance(value, str):
            values.append(value)
            continue
        try:
            number = float(value)
        except OverflowError:  # an integer literal beyond the largest double
            raise FormatError(NON_FINITE, "integer too large for a double") from None
        if not math.isfinite(number):
            raise FormatError(NON_FINITE, "NaN or infinite value")
        values.append(number if kind == NUMERIC else str(value) if type(value) is int else str(int(number)))
    return values


def _shown(value: Any) -> str:
    """A value for an error message, cut to 40 characters of its repr."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _named(schema: Optional[Schema]) -> bool:
    return schema is not None and schema.features is not None


def _check_instances(instances: Any, schema: Optional[Schema]) -> list[list[Value]]:
    if not isinstance(instances, list) or not instances:
        raise FormatError(NO_INSTANCES, "instances missing, not a list, or empty")
    named = _named(schema)
    if not all(isinstance(row, list) or (named and isinstance(row, dict)) for row in instances):
        raise FormatError(BAD_INSTANCE, "an instance is not a list" + (" or an object" if named else ""))
    width = schema.width if schema is not None else len(instances[0])
    lengths = {len(row) for row in instances if isinstance(row, list)}
    if width < 1 or lengths - {width}:
        raise FormatError(WRONG_FEATURE_COUNT, f"instance lengths {sorted(lengths)}, expected {width}")
    types = schema.types if schema is not None else (NUMERIC,) * width
    return [_check_values([row.get(name) for name in schema.features] if isinstance(row, dict) else row, types)
            for row in instances]


def _check_predictions(predictions: Any, schema: Schema) -> list[Value]:
    """A response's predictions: a non-empty list, each value checked as an instance of one value."""
    if not isinstance(predictions, list) or not predictions:
        raise FormatError(NO_INSTANCES, "predictions missing, not a list, or empty")
    return [_check_values([value], (schema.output_type,))[0] for value in predictions]


def reads_responses(schema: Optional[Schema]) -> bool:
    """Whether `decode` reads responses under ``schema`` (it has an output); else they are not requests."""
    return schema is not None and schema.output_name is not None


def _decode_thesis(obj: dict, default_id, default_time_ms, schema) -> Parsed:
    payload = _object(obj.get("payload"), "payload")
    response = obj.get("type") == "response" and reads_responses(schema)
    if obj.get("type") != "request" and not response:
        raise FormatError(NOT_REQUEST, f"type {obj.get('type')!r}")
    request_id = _request_id(obj.get("id"), default_id)
    time_ms = _numeric_time(obj.get("time"), default_time_ms)
    return _request_or_response(request_id, time_ms, payload, response, schema)


def _request_or_response(request_id: str, time_ms: int, body: dict, response: bool, schema) -> Parsed:
    """A thesis payload's or a KServe v1 body's ``predictions`` (a response) or ``instances`` (a request)."""
    if response:
        return ParsedResponse(request_id, time_ms, _check_predictions(body.get("predictions"), schema))
    return ParsedRequest(request_id, time_ms, _check_instances(body.get("instances"), schema))


def _decode_kserve_v1(obj: dict, default_id, default_time_ms, schema) -> Parsed:
    if "specversion" not in obj:  # a plain KServe v1 body
        body = obj
        response = reads_responses(schema) and "predictions" in obj and "instances" not in obj
        request_id = _request_id(None, default_id)
        time_ms = _numeric_time(None, default_time_ms)
    else:
        if obj["specversion"] != "1.0":
            raise FormatError(BAD_ENVELOPE, f"specversion {obj['specversion']!r}")
        body = _object(obj.get("data"), "data")
        response = obj.get("type") == CLOUDEVENT_RESPONSE_TYPE and reads_responses(schema)
        if obj.get("type") != CLOUDEVENT_REQUEST_TYPE and not response:
            raise FormatError(NOT_REQUEST, f"type {obj.get('type')!r}")
        request_id = _request_id(obj.get("id"), default_id)
        time_ms = _cloudevent_time(obj.get("time"), default_time_ms)
    return _request_or_response(request_id, time_ms, body, response, schema)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _vector_length(tensor: dict) -> int:
    """n of a tensor of shape [n] or [n, 1] whose data holds n values; else ``bad_shape``."""
    shape, data = tensor.get("shape"), tensor.get("data")
    if (not isinstance(shape, list) or len(shape) not in (1, 2) or not all(_positive_int(d) for d in shape)
            or shape[1:] not in ([], [1])):
        raise FormatError(BAD_SHAPE, f"shape {shape!r} is not [n] or [n, 1]")
    if not isinstance(data, list) or len(data) != shape[0]:
        raise FormatError(BAD_SHAPE, f"data does not hold {shape[0]} values")
    return shape[0]


def _oip_rows(tensor: dict, schema: Optional[Schema]) -> list[list[Value]]:
    """The single [n, k] tensor of a request: a numeric datatype, the columns checked as the features."""
    if not isinstance(tensor.get("datatype"), str) or tensor["datatype"] not in NUMERIC_DATATYPES:
        raise FormatError(BAD_DATATYPE, f"datatype {tensor.get('datatype')!r}")
    shape, data = tensor.get("shape"), tensor.get("data")
    if not isinstance(shape, list) or len(shape) != 2 or not all(_positive_int(d) for d in shape):
        raise FormatError(BAD_SHAPE, f"shape {shape!r} is not [n, k]")
    n, width = shape
    if not isinstance(data, list) or len(data) != n * width:
        raise FormatError(BAD_SHAPE, f"data does not hold {n} x {width} values")
    return _check_instances([data[i * width:(i + 1) * width] for i in range(n)], schema)


def _feature_rows(tensors: dict[int, dict], schema: Schema) -> list[list[Value]]:
    """One tensor per feature (`tensors`: feature index -> tensor): datatypes, then shapes, in feature
    order; a feature without a tensor is missing in every instance."""
    for j, tensor in sorted(tensors.items()):
        datatype = tensor.get("datatype")
        fits = (datatype == "BYTES") if schema.types[j] == CATEGORICAL else (
            isinstance(datatype, str) and datatype in NUMERIC_DATATYPES)
        if not fits:
            raise FormatError(BAD_DATATYPE, f"datatype {datatype!r} of {schema.types[j]} feature "
                                            f"{schema.features[j]!r}")
    lengths = {_vector_length(tensor) for _, tensor in sorted(tensors.items())}
    if len(lengths) != 1:
        raise FormatError(BAD_SHAPE, f"feature tensors of different lengths {sorted(lengths)}")
    n = lengths.pop()
    rows = [[tensors[j]["data"][i] if j in tensors else None for j in range(schema.width)] for i in range(n)]
    return [_check_values(row, schema.types) for row in rows]


def _decode_oip_v2(obj: dict, default_id, default_time_ms, schema) -> Parsed:
    response = reads_responses(schema) and "inputs" not in obj and "outputs" in obj
    tensors = obj.get("outputs" if response else "inputs")
    if not isinstance(tensors, list) or not tensors or not all(isinstance(t, dict) for t in tensors):
        raise FormatError(BAD_ENVELOPE, f"{'outputs' if response else 'inputs'} is not a list of tensor objects")
    by_feature: dict[int, dict] = {}
    if not response and _named(schema):
        index = {name: j for j, name in enumerate(schema.features)}
        for tensor in tensors:
            name = tensor.get("name")
            if isinstance(name, str) and name in index:
                if index[name] in by_feature:
                    raise FormatError(BAD_ENVELOPE, f"two tensors named {name!r}")
                by_feature[index[name]] = tensor
    if not by_feature and len(tensors) != 1:
        raise FormatError(BAD_ENVELOPE, f"{'outputs' if response else 'inputs'} is not exactly one tensor"
                                        + ("" if response else " or tensors named like the features"))
    parameters = _object(obj.get("parameters", {}), "parameters")
    request_id = _request_id(obj.get("id"), default_id)
    time_ms = _numeric_time(parameters.get("time"), default_time_ms)
    if response:
        tensor = tensors[0]
        datatype = tensor.get("datatype")
        if not isinstance(datatype, str) or not (datatype in NUMERIC_DATATYPES or (
                datatype == "BYTES" and schema.output_type == CATEGORICAL)):
            raise FormatError(BAD_DATATYPE, f"datatype {datatype!r} of the {schema.output_type} output")
        _vector_length(tensor)
        return ParsedResponse(request_id, time_ms, _check_predictions(tensor["data"], schema))
    if by_feature:
        return ParsedRequest(request_id, time_ms, _feature_rows(by_feature, schema))
    return ParsedRequest(request_id, time_ms, _oip_rows(tensors[0], schema))


_DECODERS = {THESIS: _decode_thesis, KSERVE_V1: _decode_kserve_v1, OIP_V2: _decode_oip_v2}


def _schema(schema: Optional[Schema], n_features: Optional[int]) -> Optional[Schema]:
    if n_features is None:
        return schema
    if schema is not None:
        raise ValueError("give either schema or n_features, not both")
    return Schema.numeric(n_features)


def decode(format: str, raw: Union[str, bytes], *, default_id: Optional[str] = None,
           default_time_ms: Optional[int] = None, schema: Optional[Schema] = None,
           n_features: Optional[int] = None, max_record_bytes: Optional[int] = None) -> Parsed:
    """Parse one message of `format` into a `ParsedRequest` (request_id, time_ms, instances) or, when
    `schema` has an output, possibly a `ParsedResponse` (request_id, time_ms, predictions).

    `default_id` / `default_time_ms` stand in when the message carries no id / time (e.g. the Kafka
    key and record timestamp). `schema` gives the features (names and types) and the output;
    ``n_features=n`` is short for ``schema=Schema.numeric(n)`` (n unnamed numeric features); with
    neither, the features are numeric and unnamed, and the instances must merely agree in length.
    A record longer than `max_record_bytes` UTF-8 bytes (None: no limit) is `TOO_LARGE`, unparsed.
    Raises `FormatError` (see the module docstring for the reasons and the order they are checked in),
    or ValueError for an unknown format.
    """
    if max_record_bytes is not None:
        size = len(raw.encode("utf-8", "replace") if isinstance(raw, str) else raw)
        if size > max_record_bytes:
            raise FormatError(TOO_LARGE, f"{size} bytes, limit {max_record_bytes}")
    return decode_object(format, _load_object(raw), default_id=default_id, default_time_ms=default_time_ms,
                         schema=schema, n_features=n_features)


def decode_object(format: str, obj: dict, *, default_id: Optional[str] = None,
                  default_time_ms: Optional[int] = None, schema: Optional[Schema] = None,
                  n_features: Optional[int] = None) -> Parsed:
    """`decode` on a message already parsed from JSON into a dict (the checks after ``bad_json``)."""
    _known(format)
    return _DECODERS[format](obj, default_id, default_time_ms, _schema(schema, n_features))
