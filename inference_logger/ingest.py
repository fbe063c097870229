"""From one HTTP request of a model server's logger to the request id, time, instances and CloudEvents attributes.

Three envelopes (CloudEvents HTTP binding 1.0) around two bodies:

- binary mode: ``ce-specversion``, ``ce-id``, ``ce-time``, ``ce-type``, ... headers, the body is the data;
- structured mode: ``Content-Type: application/cloudevents+json``, the body is the whole event and
  ``data`` the inference body;
- plain: no CloudEvents at all; the id is ``X-Request-Id`` (else the body's own ``id``, else a new UUID).

The inference body is a KServe v1 request (``{"instances": [...]}``) or an Open Inference Protocol v2
request (``{"inputs": [...]}``). Validation is `contract.formats.decode` with the monitor spec's
`contract.formats.Schema` (feature names and types, the output), so the logger rejects exactly what the
job would dead-letter, with the same reasons. The request time is ``ce-time``, else the OIP
``parameters.time``, else the time the logger received the request.

Responses. KServe's logger in mode ``all`` also sends each response, as a CloudEvent of type
``org.kubeflow.serving.inference.response`` with the request's id and the response body as data
(KServe v1 ``{"predictions": [...]}`` or OIP v2 ``{"outputs": [...]}``). When the spec has an ``output``
they are decoded as responses (a `Response`, written to Kafka for the job to join to its request);
without one a response event is `Ignored` (acknowledged, not written), and a plain body holding only
predictions is rejected as a request without instances.

Labels (issue 21). When the spec has ``ground_truth``, label messages are decoded too (a `Label`, the true
outputs of the request with that id, written for the job to join to its predictions): a CloudEvent of type
``io.mmon.inference.label`` (`contract.formats.CLOUDEVENT_LABEL_TYPE`) whose data is ``{"labels": [...]}``
or an OIP v2 label body; or a plain body: ``{"labels": [...]}``, an OIP v2 label body, or a thesis label
message ``{"type": "label", "id": ..., "time": ..., "payload": {"labels": [...]}}``. A label needs its
request's id: a plain label body without ``X-Request-Id`` or an ``id`` of its own is ``bad_id`` (no id is
made up for it). Its time is when the label became known: ``ce-time``, else the body's own, else the receive
time. Without ``ground_truth`` a label message is rejected as any body without instances is.

Versions (issue 22). The model version of a message is the CloudEvent attribute the spec names
(``versions.cloudevent_attribute``, by default ``endpoint``, which KServe's logger sets to ``default`` or
``canary``): a ``ce-endpoint`` header in binary mode, the event's ``endpoint`` attribute in structured mode; else
the body's own (OIP ``model_version``, a thesis label's ``version``); else none, and the job takes the spec's
``model.version``. The logger writes it into the record in the record's format (`contract.formats.version_of`).

This module knows neither HTTP servers nor Kafka: it maps (content type, headers, body) to a result.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Mapping, Optional

from contract import formats

JSON_TYPES = ("application/json",)
STRUCTURED_TYPE = "application/cloudevents+json"
RESPONSE_TYPE_SUFFIX = ".response"

WRONG_CONTENT_TYPE = "wrong_content_type"
BODY_TOO_LARGE = "body_too_large"
FUTURE_TIME = formats.FUTURE_TIME  # the job's dead-letter reason for the same check

DEFAULT_MAX_FUTURE_SKEW_MS = 5 * 60_000


class Rejected(Exception):
    """A request the logger refuses: an HTTP status, a one-line ``reason: detail`` and extra response headers."""

    def __init__(self, status: int, reason: str, detail: str = "", headers: Optional[Mapping[str, str]] = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Checks:
    """What the monitor spec adds to the format's own validation."""
    schema: Optional[formats.Schema] = None  # features and output; None: unnamed numeric features that merely agree
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS

    @property
    def n_features(self) -> Optional[int]:
        """The required instance width, None without a spec."""
        return None if self.schema is None else self.schema.width

    @property
    def reads_responses(self) -> bool:
        return formats.reads_responses(self.schema)

    @property
    def reads_labels(self) -> bool:
        return formats.reads_labels(self.schema)


@dataclass(frozen=True)
class Inference:
    """One inference request, ready to be written to Kafka."""
    request_id: str
    time_ms: int
    instances: list
    attributes: dict  # CloudEvents attribute name -> string value (empty for plain requests)
    version: Optional[str] = None  # the model version it names (None: the spec's model.version)


@dataclass(frozen=True)
class Response:
    """One model response (the spec has an output): the predictions for the request ``request_id``."""
    request_id: str
    time_ms: int
    predictions: list
    attributes: dict
    version: Optional[str] = None


@dataclass(frozen=True)
class Label:
    """One label message (the spec has ground_truth): the true outputs of the request ``request_id``, known at
    ``time_ms``."""
    request_id: str
    time_ms: int
    labels: list
    attributes: dict
    version: Optional[str] = None


_WHAT = {Inference: "a request (instances or inputs)", Response: "a response (predictions or outputs)",
         Label: "a label message (labels)"}
"""What each kind of body is, for a body that does not fit its event's type."""


@dataclass(frozen=True)
class Ignored:
    """A logged response while the spec has no output: acknowledged, not written."""
    request_id: str
    event_type: str


def parse(content_type: str, headers: Mapping[str, str], body: bytes | bytearray, received_ms: int,
          checks: Checks = Checks()) -> Inference | Response | Label | Ignored:
    """Classify and validate one logger request; raises `Rejected` with the status and reason to answer."""
    headers = {name.lower(): value for name, value in headers.items()}
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == STRUCTURED_TYPE:
        return _structured(_load(body), received_ms, checks)
    if media_type not in JSON_TYPES:
        raise Rejected(415, WRONG_CONTENT_TYPE,
                       f"{media_type or 'none'}; send application/json or {STRUCTURED_TYPE}")
    attributes = _binary_attributes(headers)
    body_obj = _load(body)
    if attributes:
        return _with_attributes(attributes, body_obj, received_ms, checks, _version(attributes, checks))
    given_id = _utf8(headers.get("x-request-id"), formats.BAD_ID, "X-Request-Id") or _body_id(body_obj)
    parsed = _inference(body_obj, given_id or str(uuid.uuid4()), received_ms, {}, checks)
    if isinstance(parsed, Label) and not given_id:
        raise Rejected(400, formats.BAD_ID, "a label message needs its request's id: X-Request-Id or the body's id")
    return parsed


def _load(body: bytes | bytearray) -> dict:
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise Rejected(400, formats.BAD_JSON, str(err)) from None
    except RecursionError:
        raise Rejected(400, formats.BAD_JSON, "nested too deeply") from None
    if not isinstance(obj, dict):
        raise Rejected(400, formats.BAD_JSON, f"top level is {type(obj).__name__}, not an object")
    return obj


def _utf8(text: Optional[str], reason: str, what: str) -> Optional[str]:
    """``text`` unchanged if it encodes as UTF-8. Header bytes that are not UTF-8 reach us as surrogate
    escapes, and JSON strings may hold lone surrogates: neither can become a Kafka key or header."""
    if text is not None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected(400, reason, f"{what} is not valid UTF-8") from None
    return text


def _binary_attributes(headers: Mapping[str, str]) -> dict:
    """``ce-*`` headers (names already lower-cased) as attributes; empty when not binary mode."""
    attributes = {name[3:]: value for name, value in headers.items() if name.startswith("ce-")}
    return attributes if "specversion" in attributes else {}


def _structured(event: dict, received_ms: int, checks: Checks) -> Inference | Response | Label | Ignored:
    data = event.get("data")
    if not isinstance(data, dict):
        raise Rejected(400, formats.BAD_ENVELOPE, "structured event without an object 'data'")
    attributes = {name: value if isinstance(value, str) else json.dumps(value)
                  for name, value in event.items() if name not in ("data", "data_base64")}
    return _with_attributes(attributes, data, received_ms, checks, _version(event, checks))


def _version(event: dict, checks: Checks) -> Optional[str]:
    """The model version a CloudEvent names (its attributes: binary-mode headers or the structured event): the
    attribute the spec names (``versions.cloudevent_attribute``, by default KServe's ``endpoint``), checked as the
    job checks it (`contract.formats.version_of`: a non-string or empty one is ``bad_envelope``)."""
    try:
        return formats.version_of(formats.KSERVE_V1, {"specversion": None, **event}, checks.schema)
    except formats.FormatError as err:
        raise Rejected(400, err.reason, str(err).removeprefix(err.reason).removeprefix(": ")) from None


def _with_attributes(attributes: dict, body_obj: dict, received_ms: int, checks: Checks,
                     version: Optional[str] = None) -> Inference | Response | Label | Ignored:
    if attributes.get("specversion") != "1.0":
        raise Rejected(400, formats.BAD_ENVELOPE, f"specversion {attributes.get('specversion')!r}, expected '1.0'")
    for name, value in attributes.items():
        _utf8(value, formats.BAD_ID if name == "id" else formats.BAD_ENVELOPE, f"attribute {name!r}")
    request_id = attributes.get("id")
    if not request_id:
        raise Rejected(400, formats.BAD_ID, "CloudEvent without an id")
    event_type = attributes.get("type", "")
    response = event_type.endswith(RESPONSE_TYPE_SUFFIX)
    if response and not checks.reads_responses:
        return Ignored(request_id, event_type)
    event_time_ms = None
    if "time" in attributes:
        try:
            event_time_ms = formats.parse_rfc3339_ms(attributes["time"])
        except ValueError as err:
            raise Rejected(400, formats.BAD_TIME, str(err)) from None
    parsed = _inference(body_obj, request_id, received_ms, attributes, checks, event_time_ms, version)
    label = event_type == formats.CLOUDEVENT_LABEL_TYPE and checks.reads_labels
    expected = Response if response else Label if label else Inference
    if not isinstance(parsed, expected):
        raise Rejected(400, formats.BAD_ENVELOPE, f"event type {event_type or 'none'} but the body is "
                                                  f"{_WHAT[type(parsed)]}, not {_WHAT[expected]}")
    return parsed


def _body_id(body_obj: dict) -> Optional[str]:
    value = body_obj.get("id")
    return value if isinstance(value, str) and value else None


def _body_format(body_obj: dict, checks: Checks) -> str:
    """The format a body is read in: a thesis label message (labels read), OIP v2 (``inputs``, or ``outputs``
    with responses or labels read), else KServe v1."""
    if checks.reads_labels and body_obj.get("type") == formats.LABEL:
        return formats.THESIS
    if "inputs" in body_obj or (checks.reads_responses and "outputs" in body_obj):
        return formats.OIP_V2
    return formats.KSERVE_V1


def _inference(body_obj: dict, request_id: str, received_ms: int, attributes: dict, checks: Checks,
               event_time_ms: Optional[int] = None, version: Optional[str] = None) -> Inference | Response | Label:
    """Validate a KServe v1 or OIP v2 body (a request; with an output in the spec, possibly a response; with
    ground truth, possibly a label message, a thesis one too) with the job's own decoder.

    The envelope's id wins over the body's; the time is the event's, else the body's own (OIP
    ``parameters.time``, a thesis message's ``time``), else the receive time; the version likewise, the event's
    (``version``), else the body's own (OIP ``model_version``, a thesis message's ``version``), else none.
    """
    body_format = _body_format(body_obj, checks)
    try:
        parsed = formats.decode_object(body_format, body_obj, default_id=request_id,
                                       default_time_ms=received_ms, schema=checks.schema)
    except formats.FormatError as err:
        raise Rejected(400, err.reason, str(err).removeprefix(err.reason).removeprefix(": ")) from None
    time_ms = event_time_ms if event_time_ms is not None else parsed.time_ms
    _check_time(time_ms, received_ms, checks.max_future_skew_ms)
    request_id = _utf8(request_id, formats.BAD_ID, "the id")
    kind = {formats.ParsedRequest: Inference, formats.ParsedResponse: Response, formats.ParsedLabels: Label}
    if version is None:
        version = formats.version_of(body_format, body_obj, checks.schema)  # checked by decode_object
    return kind[type(parsed)](request_id, time_ms, parsed[2], attributes, version)


def _check_time(time_ms: int, received_ms: int, max_future_skew_ms: int) -> None:
    if time_ms <= 0:
        raise Rejected(400, formats.BAD_TIME, f"{time_ms} ms is not after 1970-01-01T00:00:00Z")
    if time_ms - received_ms > max_future_skew_ms:
        raise Rejected(400, FUTURE_TIME, f"{time_ms - received_ms} ms ahead of the logger's clock, "
                                         f"limit {max_future_skew_ms} ms")
