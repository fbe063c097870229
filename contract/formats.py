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

Labels (read only when the schema has ``ground_truth``, the spec's section, which needs an output; without
it a label message is ``not_request`` in every format), the true outputs of a request, known late, one per
instance of the request with the same id, in order; ``time`` is when the label became known. Each label is
checked as a one-feature instance of the output's type, like a prediction (``null``: that instance's label is
not given). `encode_label` writes them::

    thesis     {"type":"label","id":"<id>","time":<epoch ms>,"payload":{"labels":[...]}}
    kserve-v1  a CloudEvent of type io.mmon.inference.label (`CLOUDEVENT_LABEL_TYPE`), data {"labels":[...]}
               (a plain body with "labels" and neither "instances" nor "predictions" is a label message too,
               id and time from the defaults)
    oip-v2     {"id":"<id>","parameters":{"time":<epoch ms>,"type":"label"},"outputs":[{"name":"label-0",
               "shape":[n],"datatype":"BYTES","data":[...]}]}  (a response's shape, told apart by
               parameters.type "label": an object with "outputs", no "inputs", and a parameters object whose
               "type" is "label" is a label message whatever the schema, so that no label is ever read as a
               response; exactly one tensor, its name not read)

Versions (issue 22). Every message (request, response, label) may name the model version that served it
(`version_of`; `encode` and the others write it with ``version=``): thesis a top-level ``"version"``
string, kserve-v1 a CloudEvent attribute (``endpoint``, which KServe's logger sets to ``default`` or
``canary``; the spec's ``versions.cloudevent_attribute``, `Schema.version_attribute`, names another), oip-v2 a
top-level ``"model_version"`` string (as the protocol's responses carry it). A message that names none
(absent, null or empty; a plain KServe v1 body) is of the spec's ``model.version``::

    thesis     {"type":"request","id":"<id>","time":<epoch ms>,"version":"canary","payload":{...}}
    kserve-v1  {"specversion":"1.0",...,"endpoint":"canary","data":{...}}
    oip-v2     {"id":"<id>","model_version":"canary","parameters":{...},"inputs":[...]}

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
   or label message whose ``outputs`` is not a list of exactly one tensor object, or ``parameters`` not
   an object; a version (`version_of`) that is not a string of at most `MAX_VERSION_CHARS` characters (checked
   after the thesis ``payload``, the CloudEvent ``data`` and the OIP ``parameters``).
4. ``not_request``   thesis message whose ``type`` is not "request", or CloudEvent whose ``type`` is not
   ``org.kubeflow.serving.inference.request`` (responses travel the same topic and are not monitored),
   unless it is a response and the schema has an output, or a label message and the schema has
   ``ground_truth``; an OIP label message when the schema has no ``ground_truth``.
5. ``bad_id``        the id is missing (and no ``default_id``), not a string, or empty.
6. ``bad_time``      the time is missing (and no ``default_time_ms``), of the wrong type (thesis/OIP:
   a JSON number, not a boolean; CloudEvent: an RFC 3339 string), not finite, not positive, or
   beyond `MAX_TIME_MS`.
7. ``bad_datatype``  (oip-v2) the single tensor's ``datatype`` is not a numeric tensor type
   (`NUMERIC_DATATYPES`); a feature's tensor's is not BYTES (categorical) or numeric (numeric), in
   feature order; the output tensor's (a response's or a label message's) is neither numeric nor
   (categorical output) BYTES.
8. ``bad_shape``     (oip-v2) the single tensor's ``shape`` is not ``[n, k]`` of positive integers, or
   ``data`` does not hold n * k values; a feature's or the output's tensor's shape is not [n] or
   [n, 1] of positive integers, or its ``data`` does not hold n values (feature tensors in feature
   order), or the feature tensors disagree on n.
9. ``no_instances``  ``instances`` (thesis, kserve-v1), ``predictions`` or ``labels`` is missing, not a
   list, or empty.
10. ``bad_instance``  an instance is not a list (nor, with a named schema, an object), or a value in it
    has the wrong JSON type for its feature: not a number (numeric), not a string or a number
    (categorical; booleans, lists and objects never fit), a finite number that is not integral
    (categorical), or a string longer than `MAX_CATEGORY_CHARS` (categorical: a window keeps up to 2,048
    distinct values and lists the most frequent in its record, which must stay small); a prediction
    or a label likewise for the output.
11. ``wrong_feature_count``  a list instance is empty, the list instances disagree in length, or their
    length is not the schema's number of features (the single oip-v2 tensor's k likewise).
12. ``non_finite``   a number is NaN or infinite (Python's JSON reader accepts ``NaN``/``Infinity`` and
    turns ``1e999`` into inf; none of them may reach the statistics), or an integer beyond a double.
    Checks 10 and 12 run instance by instance (each prediction, each label an instance): all of an
    instance's value types, then its numbers' finiteness, then the next instance.
13. ``future_time``  (checked by the job and the logger, not by `decode`) the request time is more than
    ``window.max_future_skew`` ahead of the wall clock: such a record is dead-lettered and never moves
    the watermark.
14. ``unmatched_response``  (the job) a response with no request of its id within ``output.join_timeout``.
15. ``wrong_prediction_count``  (the job) a response whose number of predictions is not its request's
    number of instances.
16. ``unmatched_label``  (the job) a label message with no request of its id within ``ground_truth.max_delay``,
    or whose request's prediction was already released.
17. ``wrong_label_count``  (the job) a label message whose number of labels is not its request's number of
    instances.
18. ``late``         (the job) a request whose time is behind the watermark: its window has closed.
19. ``too_many_versions``  (the job) a record of a model version beyond the first ``versions.max`` distinct
    versions the job has seen (every result is kept per version, so their number is bounded).
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

from contract.spec import CATEGORICAL, DEFAULT_VERSION_ATTRIBUTE, FEATURE_TYPES, NUMERIC  # the spec's names

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
UNMATCHED_LABEL = "unmatched_label"
WRONG_LABEL_COUNT = "wrong_label_count"
LATE = "late"
TOO_MANY_VERSIONS = "too_many_versions"
REASONS = (TOO_LARGE, BAD_JSON, BAD_ENVELOPE, NOT_REQUEST, BAD_ID, BAD_TIME, BAD_DATATYPE, BAD_SHAPE,
           NO_INSTANCES, BAD_INSTANCE, WRONG_FEATURE_COUNT, NON_FINITE, FUTURE_TIME,
           UNMATCHED_RESPONSE, WRONG_PREDICTION_COUNT, UNMATCHED_LABEL, WRONG_LABEL_COUNT, LATE, TOO_MANY_VERSIONS)

DEFAULT_SOURCE = "mmon"
"""A CloudEvent's ``source`` when the encoder is given none (the logger passes each event's own)."""
CLOUDEVENT_REQUEST_TYPE = "org.kubeflow.serving.inference.request"
CLOUDEVENT_RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
CLOUDEVENT_LABEL_TYPE = "io.mmon.inference.label"
"""A label message's CloudEvent type (kserve-v1): mmon's own, KServe logs no labels."""
OIP_INPUT_NAME = "input-0"
OIP_OUTPUT_NAME = "output-0"
OIP_LABEL_NAME = "label-0"
REQUEST, RESPONSE, LABEL = "request", "response", "label"
"""The kinds of message: a thesis message's ``type`` (and an OIP v2 label message's ``parameters.type``)."""
NUMERIC_DATATYPES = frozenset({"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64",
                               "UINT8", "UINT16", "UINT32", "UINT64"})

SECONDS_THRESHOLD = 1e11
"""Epoch times below this are seconds, at or above it milliseconds: 1e11 s is the year 5138 and
1e11 ms is March 1973, so no real request time is ambiguous."""

MAX_TIME_MS = 2**63 - 1
"""The largest request time (a signed 64-bit epoch ms, Flink's BIGINT); later times are ``bad_time``."""

MAX_CATEGORY_CHARS = 1024
"""The longest categorical value, in characters (code points); a longer one is ``bad_instance``."""

THESIS_VERSION_KEY = "version"
"""A thesis message's model version: this top-level key (`version_of`)."""
OIP_VERSION_KEY = "model_version"
"""An OIP v2 message's model version: this top-level key, as in the protocol's responses (`version_of`)."""
MAX_VERSION_CHARS = 256
"""The longest model version, in characters (code points); a longer one is ``bad_envelope``."""


def label_code(j: int) -> float:
    """The code of a categorical value outside the vocabulary: ``-(1 + j)``, ``j`` its index among the
    record's (or the window's) labels. A value in the vocabulary is coded by its index there (>= 0), a
    missing one NaN, so every column travels as float64."""
    return float(-(1 + j))


def label_index(code):
    """The index among the labels of a negative `label_code` (a float code, or a numpy array of them: then an
    array of indices, as floats)."""
    return -1 - code

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
    (`output_name` None: responses are ``not_request``), and whether label messages are read (``ground_truth``:
    the spec has a ``ground_truth`` section, which needs the output; else labels are ``not_request``)."""
    features: Optional[tuple[str, ...]]
    types: tuple[str, ...]
    output_name: Optional[str] = None
    output_type: str = CATEGORICAL
    ground_truth: bool = False
    version_attribute: str = DEFAULT_VERSION_ATTRIBUTE

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
        if self.ground_truth and self.output_name is None:
            raise ValueError("labels (ground_truth) need an output")
        for kind in (*self.types, self.output_type):
            if kind not in FEATURE_TYPES:
                raise ValueError(f"unknown feature type {kind!r}; expected one of {', '.join(FEATURE_TYPES)}")

    @classmethod
    def numeric(cls, n_features: int, features: Optional[Sequence[str]] = None) -> "Schema":
        """``n_features`` numeric features, unnamed unless ``features`` names them; no output."""
        return cls(None if features is None else tuple(features), (NUMERIC,) * n_features)

    @classmethod
    def from_spec(cls, spec: Any) -> "Schema":
        """The schema of a `contract.spec.MonitorSpec` (its ``input.features``, ``output`` and ``ground_truth``)."""
        features = spec.input.features
        output = spec.output
        return cls(tuple(f.name for f in features), tuple(f.type for f in features),
                   None if output is None else output.name, CATEGORICAL if output is None else output.type,
                   spec.ground_truth is not None, spec.versions.cloudevent_attribute)

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


class ParsedLabels(NamedTuple):
    """A label message: the true outputs of the request ``request_id``, one per instance, known at ``time_ms``."""
    request_id: str
    time_ms: int
    labels: list[Value]


Parsed = Union[ParsedRequest, ParsedResponse, ParsedLabels]


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
           schema: Optional[Schema] = None, source: str = DEFAULT_SOURCE, version: Optional[str] = None) -> str:
    """One request as compact JSON in `format`. Each instance is a list (feature order) or a mapping
    (feature name -> value); values are numbers, strings or None (JSON null: a missing value). Floats are
    written with Python's shortest round-trip repr, ints as ints, so the output is deterministic; round
    the values first if you want short numbers.

    oip-v2 writes one [n, k] FP64 tensor when every instance is a list of numbers (or None) and no named
    `schema` is given; otherwise one tensor per feature (shape [n]): the named schema's features (BYTES
    for a categorical one), or the instances' keys when every instance is a mapping (BYTES when the
    column holds a string). String values in list instances need the named schema there.

    ``source`` is the kserve-v1 CloudEvent's ``source`` attribute: where the event comes from (the other
    formats have none). ``version`` (None: none) is the model version the message names (`version_key`: a
    kserve-v1 event's attribute is the schema's ``version_attribute``).

    Raises ValueError for an unknown format, a non-finite value, or an oip-v2 request it cannot name.
    """
    _known(format)
    message = _ENCODERS[format](request_id, int(time_ms), [_row(row) for row in instances], schema, source)
    return _JSON.encode(_versioned(format, message, version, schema))


_VERSION_BEFORE = {THESIS: "payload", KSERVE_V1: "data", OIP_V2: "parameters"}
"""The key a message's version goes before (`version_key`): the values last, as every encoder writes them."""


def _versioned(format: str, message: dict, version: Optional[str], schema: Optional[Schema] = None) -> dict:
    """``message`` naming the model ``version`` under `version_key`, before its values; unchanged for None."""
    if version is None:
        return message
    key, before = version_key(format, schema), _VERSION_BEFORE[format]
    out: dict = {}
    for name, value in message.items():
        if name == before:
            out[key] = version
        out[name] = value
    return out


def encode_response(format: str, request_id: str, time_ms: int, predictions: Sequence[Any], *,
                    source: str = DEFAULT_SOURCE, version: Optional[str] = None,
                    schema: Optional[Schema] = None) -> str:
    """One response (the model's predictions for the request `request_id`, one per instance) as compact
    JSON in `format`: thesis ``{"type":"response",...,"payload":{"predictions":[...]}}``, kserve-v1 a
    CloudEvent of type `CLOUDEVENT_RESPONSE_TYPE` whose data is ``{"predictions":[...]}``, oip-v2
    ``{"id":...,"parameters":{"time":...},"outputs":[<one tensor, shape [n]>]}`` (BYTES when a prediction
    is a string, else FP64). Values, ``source``, ``version`` and ``schema`` (its ``version_attribute``) as in
    `encode`.

    Raises ValueError for an unknown format or a non-finite value.
    """
    return _encode_outputs(format, RESPONSE, request_id, time_ms, predictions, source, version, schema)


def encode_label(format: str, request_id: str, time_ms: int, labels: Sequence[Any], *,
                 source: str = DEFAULT_SOURCE, version: Optional[str] = None,
                 schema: Optional[Schema] = None) -> str:
    """One label message (the true outputs of the request `request_id`, one per instance, known at `time_ms`)
    as compact JSON in `format`: thesis ``{"type":"label",...,"payload":{"labels":[...]}}``, kserve-v1 a
    CloudEvent of type `CLOUDEVENT_LABEL_TYPE` whose data is ``{"labels":[...]}``, oip-v2
    ``{"id":...,"parameters":{"time":...,"type":"label"},"outputs":[<one tensor, shape [n]>]}`` (BYTES when a
    label is a string, else FP64). Values, ``source``, ``version`` and ``schema`` (its ``version_attribute``) as in
    `encode`.

    Raises ValueError for an unknown format or a non-finite value.
    """
    return _encode_outputs(format, LABEL, request_id, time_ms, labels, source, version, schema)


class _Outputs(NamedTuple):
    """What tells a response from a label message: the key of its values, its CloudEvent type, its OIP tensor's
    name, and what `decode` makes of it."""
    key: str
    event_type: str
    tensor_name: str
    parsed: type


_OUTPUTS = {RESPONSE: _Outputs("predictions", CLOUDEVENT_RESPONSE_TYPE, OIP_OUTPUT_NAME, ParsedResponse),
            LABEL: _Outputs("labels", CLOUDEVENT_LABEL_TYPE, OIP_LABEL_NAME, ParsedLabels)}


def _encode_outputs(format: str, kind: str, request_id: str, time_ms: int, outputs: Sequence[Any], source: str,
                    version: Optional[str] = None, schema: Optional[Schema] = None) -> str:
    """`encode_response` (``kind`` `RESPONSE`) and `encode_label` (`LABEL`): one value per instance."""
    _known(format)
    values = [_value(v) for v in outputs]
    time_ms = int(time_ms)
    key, event_type, tensor_name, _ = _OUTPUTS[kind]
    if format == THESIS:
        message = {"type": kind, "id": request_id, "time": time_ms, "payload": {key: values}}
    elif format == KSERVE_V1:
        message = _cloudevent(request_id, time_ms, source, event_type, {key: values})
    else:
        tensor = {"name": tensor_name, "shape": [len(values)], "datatype": _column_datatype(values), "data": values}
        parameters = {"time": time_ms, **({"type": LABEL} if kind == LABEL else {})}
        message = {"id": request_id, "parameters": parameters, "outputs": [tensor]}
    return _JSON.encode(_versioned(format, message, version, schema))


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


def _check_outputs(values: Any, schema: Schema, kind: str) -> list[Value]:
    """A response's predictions or a label message's labels: a non-empty list, each value checked as an
    instance of the output's one column."""
    if not isinstance(values, list) or not values:
        raise FormatError(NO_INSTANCES, f"{_OUTPUTS[kind].key} missing, not a list, or empty")
    return [_check_values([value], (schema.output_type,))[0] for value in values]


def reads_responses(schema: Optional[Schema]) -> bool:
    """Whether `decode` reads responses under ``schema`` (it has an output); else they are not requests."""
    return schema is not None and schema.output_name is not None


def reads_labels(schema: Optional[Schema]) -> bool:
    """Whether `decode` reads label messages under ``schema`` (``ground_truth``); else they are not requests."""
    return schema is not None and schema.ground_truth


def _kinds(schema: Optional[Schema]) -> tuple[str, ...]:
    """The kinds of message `decode` reads under ``schema``: requests, responses with an output, labels with
    ground truth."""
    return (REQUEST, *((RESPONSE,) if reads_responses(schema) else ()), *((LABEL,) if reads_labels(schema) else ()))


def _read_kind(kind: Any, schema: Optional[Schema], shown: Any = None) -> str:
    """``kind`` if `decode` reads that kind of message under ``schema``; else ``not_request`` naming its type
    (``shown``, else ``kind``)."""
    if kind not in _kinds(schema):
        raise FormatError(NOT_REQUEST, f"type {kind if shown is None else shown!r}")
    return kind


def _decode_thesis(obj: dict, default_id, default_time_ms, schema) -> Parsed:
    payload = _object(obj.get("payload"), "payload")
    version_of(THESIS, obj, schema)
    kind = _read_kind(obj.get("type"), schema)
    request_id = _request_id(obj.get("id"), default_id)
    time_ms = _numeric_time(obj.get("time"), default_time_ms)
    return _message(kind, request_id, time_ms, payload, schema)


def _message(kind: str, request_id: str, time_ms: int, body: dict, schema) -> Parsed:
    """A thesis payload's or a KServe v1 body's ``instances`` (a request), ``predictions`` (a response) or
    ``labels`` (a label message)."""
    if kind == REQUEST:
        return ParsedRequest(request_id, time_ms, _check_instances(body.get("instances"), schema))
    return _OUTPUTS[kind].parsed(request_id, time_ms, _check_outputs(body.get(_OUTPUTS[kind].key), schema, kind))


_CLOUDEVENT_KINDS = {CLOUDEVENT_REQUEST_TYPE: REQUEST, CLOUDEVENT_RESPONSE_TYPE: RESPONSE, CLOUDEVENT_LABEL_TYPE: LABEL}


def _plain_kind(body: dict, schema: Optional[Schema]) -> str:
    """A plain KServe v1 body's kind: a request when it has ``instances``, else a response when it has
    ``predictions`` (responses read), else a label message when it has ``labels`` (labels read)."""
    if "instances" not in body:
        for kind in _kinds(schema)[1:]:
            if _OUTPUTS[kind].key in body:
                return kind
    return REQUEST


def _decode_kserve_v1(obj: dict, default_id, default_time_ms, schema) -> Parsed:
    if "specversion" not in obj:  # a plain KServe v1 body
        body = obj
        kind = _plain_kind(obj, schema)
        request_id = _request_id(None, default_id)
        time_ms = _numeric_time(None, default_time_ms)
    else:
        if obj["specversion"] != "1.0":
            raise FormatError(BAD_ENVELOPE, f"specversion {obj['specversion']!r}")
        body = _object(obj.get("data"), "data")
        version_of(KSERVE_V1, obj, schema)
        event_type = obj.get("type")
        kind = _read_kind(_CLOUDEVENT_KINDS.get(event_type) if isinstance(event_type, str) else None, schema, event_type)
        request_id = _request_id(obj.get("id"), default_id)
        time_ms = _cloudevent_time(obj.get("time"), default_time_ms)
    return _message(kind, request_id, time_ms, body, schema)


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


def _oip_kind(obj: dict, schema: Optional[Schema]) -> str:
    """An OIP v2 message's kind: with ``outputs`` and no ``inputs``, a label message when its ``parameters.type``
    is "label" (whatever the schema reads), else a response when responses are read; otherwise a request."""
    if "inputs" in obj or "outputs" not in obj:
        return REQUEST
    parameters = obj.get("parameters")
    if isinstance(parameters, dict) and parameters.get("type") == LABEL:
        return LABEL
    return RESPONSE if reads_responses(schema) else REQUEST


def _tensors_by_feature(tensors: list, schema: Optional[Schema]) -> dict[int, dict]:
    """A request's tensors named like a feature of a named schema, by feature index (two of one name: bad_envelope)."""
    by_feature: dict[int, dict] = {}
    if _named(schema):
        index = {name: j for j, name in enumerate(schema.features)}
        for tensor in tensors:
            name = tensor.get("name")
            if isinstance(name, str) and name in index:
                if index[name] in by_feature:
                    raise FormatError(BAD_ENVELOPE, f"two tensors named {name!r}")
                by_feature[index[name]] = tensor
    return by_feature


def _output_tensor(tensor: dict, schema: Schema, kind: str) -> list[Value]:
    """The one tensor of a response or a label message: a numeric datatype (or BYTES for a categorical output),
    shape [n] or [n, 1], its values checked as the output's."""
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or not (datatype in NUMERIC_DATATYPES or (
            datatype == "BYTES" and schema.output_type == CATEGORICAL)):
        raise FormatError(BAD_DATATYPE, f"datatype {datatype!r} of the {schema.output_type} output")
    _vector_length(tensor)
    return _check_outputs(tensor["data"], schema, kind)


def _decode_oip_v2(obj: dict, default_id, default_time_ms, schema) -> Parsed:
    kind = _oip_kind(obj, schema)
    key = "inputs" if kind == REQUEST else "outputs"
    tensors = obj.get(key)
    if not isinstance(tensors, list) or not tensors or not all(isinstance(t, dict) for t in tensors):
        raise FormatError(BAD_ENVELOPE, f"{key} is not a list of tensor objects")
    by_feature = _tensors_by_feature(tensors, schema) if kind == REQUEST else {}
    if not by_feature and len(tensors) != 1:
        raise FormatError(BAD_ENVELOPE, f"{key} is not exactly one tensor"
                                        + (" or tensors named like the features" if kind == REQUEST else ""))
    parameters = _object(obj.get("parameters", {}), "parameters")
    version_of(OIP_V2, obj, schema)
    _read_kind(kind, schema)  # a label message while labels are not read: not_request
    request_id = _request_id(obj.get("id"), default_id)
    time_ms = _numeric_time(parameters.get("time"), default_time_ms)
    if kind != REQUEST:
        return _OUTPUTS[kind].parsed(request_id, time_ms, _output_tensor(tensors[0], schema, kind))
    if by_feature:
        return ParsedRequest(request_id, time_ms, _feature_rows(by_feature, schema))
    return ParsedRequest(request_id, time_ms, _oip_rows(tensors[0], schema))


def version_key(format: str, schema: Optional[Schema] = None) -> Optional[str]:
    """Where a message of ``format`` names its model version: thesis the top-level `THESIS_VERSION_KEY`, kserve-v1
    the CloudEvent attribute ``schema.version_attribute`` (`DEFAULT_VERSION_ATTRIBUTE` without a schema; a plain
    KServe v1 body has none), oip-v2 `OIP_VERSION_KEY`."""
    _known(format)
    if format == KSERVE_V1:
        return DEFAULT_VERSION_ATTRIBUTE if schema is None else schema.version_attribute
    return THESIS_VERSION_KEY if format == THESIS else OIP_VERSION_KEY


def version_of(format: str, obj: dict, schema: Optional[Schema] = None) -> Optional[str]:
    """The model version a message (already parsed from JSON) names (`version_key`), or None when it names none
    (absent, null or empty; a plain KServe v1 body never names one): the job then takes the spec's
    ``model.version``. Raises `FormatError` ``bad_envelope`` for a version that is not a string of at most
    `MAX_VERSION_CHARS` characters; `decode` checks it with the envelope."""
    if format == KSERVE_V1 and "specversion" not in obj:
        return None
    version = obj.get(version_key(format, schema))
    if version is None or version == "":
        return None
    if not isinstance(version, str) or len(version) > MAX_VERSION_CHARS:
        raise FormatError(BAD_ENVELOPE, f"version {_shown(version)} is not a string of at most {MAX_VERSION_CHARS} "
                                        "characters")
    return version


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
    `schema` has an output, possibly a `ParsedResponse` (request_id, time_ms, predictions), or when it has
    ``ground_truth``, possibly a `ParsedLabels` (request_id, time_ms, labels).

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
