"""`mmon logger` end to end: real HTTP in (a logger subprocess), real Kafka out (the session broker)."""
from __future__ import annotations

import dataclasses
import http.client
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from contract import formats

from devtools.services import free_port, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

INSTANCES = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
COMPACT_INSTANCES = [[5.1, 3.5, 1.4, 0.2], [6.7, 3, 5.2, 2.3]]  # the logger writes integral values as ints
CE_TIME = "2026-11-21T23:25:00.123Z"
CE_TIME_MS = 1795303500123
RECEIVED_MS = CE_TIME_MS + 60_000  # for the parser tests: every time in them is in the past


class Logger:
    """A `mmon logger` subprocess on a free port, with a tiny HTTP client."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mmon.cli", "logger", "--port", str(self.port), "--progress-every", "0",
             *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_until(lambda: self._healthy(), 30, "logger /healthz",
                   failed=lambda: self.process.poll() is not None and f"exited: {self.process.stdout.read()}")

    def _healthy(self) -> bool:
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def post_json(self, payload, content_type: str = "application/json", **headers) -> tuple[int, str]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request("POST", "/", body, {"Content-Type": content_type, **headers})

    def outcomes(self) -> dict[str, float]:
        status, text = self.request("GET", "/metrics")
        assert status == 200
        return {sample.labels["outcome"]: sample.value for family in text_string_to_metric_families(text)
                if family.name == "mmon_logger_requests" for sample in family.samples
                if sample.name == "mmon_logger_requests_total"}

    def samples(self) -> dict[str, float]:
        """Every unlabelled sample of /metrics, by sample name."""
        text = self.request("GET", "/metrics")[1]
        return {sample.name: sample.value for family in text_string_to_metric_families(text)
                for sample in family.samples if not sample.labels}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise


def new_topic(kafka_broker, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topics([name])
    return name


@pytest.fixture(scope="module")
def topic(kafka_broker):
    return new_topic(kafka_broker, "logger")


@pytest.fixture(scope="module")
def logger(kafka_broker, topic):
    process = Logger("--kafka", kafka_broker.bootstrap, "--topic", topic, "--max-body-bytes", "2000")
    yield process
    process.stop()


def record_reader(bootstrap: str, topic: str):
    """(read, consumer): ``read(ack)`` is the record the logger reported writing to ``topic``, fetched by its
    partition and offset."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    def read(ack: dict):
        assert ack["topic"] == topic
        partition = TopicPartition(topic, ack["partition"])
        consumer.assign([partition])
        consumer.seek(partition, ack["offset"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=500).get(partition, []):
                if record.offset == ack["offset"]:
                    return record
        raise AssertionError(f"record {ack} not found in Kafka")

    return read, consumer


@pytest.fixture(scope="module")
def read_record(kafka_broker, topic):
    """A record the logger wrote to the inference topic (`record_reader`)."""
    read, consumer = record_reader(kafka_broker.bootstrap, topic)
    yield read
    consumer.close()


def end_offset(kafka_broker, topic) -> int:
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap)
    try:
        partition = TopicPartition(topic, 0)
        return consumer.end_offsets([partition])[partition]
    finally:
        consumer.close()


def written(logger, read_record, payload, content_type="application/json", **headers):
    status, text = logger.post_json(payload, content_type, **headers)
    assert status == 200, text
    return read_record(json.loads(text))


def test_binary_cloudevent_with_v1_body_as_kserve_sends_it(logger, read_record):
    """The headers KServe's logger worker (cloudevents sdk-go, binary encoding, time set at send) writes."""
    request_id = f"bin-{uuid.uuid4()}"
    kserve_headers = {
        "Ce-Specversion": "1.0", "Ce-Id": request_id, "Ce-Time": "2026-11-21T23:25:00.123456789Z",
        "Ce-Source": "http://localhost:9081/", "Ce-Type": "org.kubeflow.serving.inference.request",
        "Ce-Inferenceservicename": "iris", "Ce-Namespace": "default", "Ce-Component": "predictor",
        "Ce-Endpoint": "", "Ce-Metadata": "{}"}
    record = written(logger, read_record, {"instances": INSTANCES}, **kserve_headers)
    assert record.key == request_id.encode()
    assert record.value.decode() == formats.encode(formats.THESIS, request_id, CE_TIME_MS, COMPACT_INSTANCES)
    assert record.timestamp == CE_TIME_MS
    assert dict(record.headers) == {f"ce_{name[3:].lower()}": value.encode() for name, value in kserve_headers.items()}


def test_structured_cloudevent_with_oip_v2_body(logger, read_record):
    request_id = f"str-{uuid.uuid4()}"
    event = {"specversion": "1.0", "id": request_id, "source": "http://iris.default", "time": CE_TIME,
             "type": "org.kubeflow.serving.inference.request", "datacontenttype": "application/json",
             "data": {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",
                                  "data": [v for row in INSTANCES for v in row]}]}}
    record = written(logger, read_record, event, "application/cloudevents+json; charset=utf-8")
    assert formats.decode(formats.THESIS, record.value) == (request_id, CE_TIME_MS, INSTANCES)
    assert record.key == request_id.encode() and record.timestamp == CE_TIME_MS
    headers = dict(record.headers)
    assert headers["ce_id"] == request_id.encode() and headers["ce_datacontenttype"] == b"application/json"
    assert "ce_data" not in headers


def test_plain_v1_body_takes_request_id_header_and_receive_time(logger, read_record):
    request_id = f"plain-{uuid.uuid4()}"
    before = time.time() * 1000
    record = written(logger, read_record, {"instances": INSTANCES}, **{"X-Request-Id": request_id})
    after = time.time() * 1000
    assert record.key == request_id.encode() and record.headers == []
    parsed = formats.decode(formats.THESIS, record.value)
    assert parsed.request_id == request_id and parsed.instances == INSTANCES
    assert before - 1 <= parsed.time_ms == record.timestamp <= after + 1


def test_plain_oip_v2_body_takes_its_own_id_and_time(logger, read_record):
    body = json.loads(formats.encode(formats.OIP_V2, "oip-1", 1_700_000_000_500, INSTANCES))
    record = written(logger, read_record, body)
    assert (record.key, record.timestamp) == (b"oip-1", 1_700_000_000_500)
    assert formats.decode(formats.THESIS, record.value) == ("oip-1", 1_700_000_000_500, INSTANCES)


def test_logged_responses_are_acknowledged_but_not_written(logger, kafka_broker, topic):
    offset = end_offset(kafka_broker, topic)
    status, text = logger.post_json({"predictions": [0, 2]}, **{
        "ce-specversion": "1.0", "ce-id": "resp-1", "ce-type": "org.kubeflow.serving.inference.response"})
    assert status == 200 and json.loads(text)["ignored"].endswith(".response")
    assert end_offset(kafka_broker, topic) == offset


BAD_REQUESTS = [
    ("bad_json", 400, b'{"instances": [[1, 2', "application/json", {}),
    ("bad_json", 400, b"[1, 2, 3]", "application/json", {}),
    ("no_instances", 400, b'{"instances": []}', "application/json", {}),
    ("no_instances", 400, b'{"inputs_missing": 1}', "application/json", {}),
    ("bad_instance", 400, b'{"instances": [[1, "x"]]}', "application/json", {}),
    ("wrong_feature_count", 400, b'{"instances": [[1, 2], [1]]}', "application/json", {}),
    ("body_too_large", 413, json.dumps({"instances": [[1.0] * 4] * 200}).encode(), "application/json", {}),
    ("wrong_content_type", 415, b"instances=1", "text/plain", {}),
    ("bad_time", 400, b'{"instances": [[1]]}', "application/json",
     {"ce-specversion": "1.0", "ce-id": "x", "ce-time": "yesterday"}),
    ("bad_id", 400, b'{"instances": [[1]]}', "application/json", {"ce-specversion": "1.0"}),
    ("bad_envelope", 400, b'{"specversion": "1.0", "id": "x", "data": "text"}', "application/cloudevents+json", {}),
]


@pytest.mark.parametrize("reason,status,body,content_type,headers", BAD_REQUESTS,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_REQUESTS)])
def test_bad_input_gets_4xx_with_one_line_reason_and_writes_nothing(
        logger, kafka_broker, topic, reason, status, body, content_type, headers):
    offset = end_offset(kafka_broker, topic)
    got_status, text = logger.post_json(body, content_type, **headers)
    assert got_status == status
    assert text.startswith(f"{reason}") and text.count("\n") == 1, text
    assert end_offset(kafka_broker, topic) == offset


def test_metrics_count_outcomes_bytes_instances_and_produce_latency(logger):
    before, samples_before = logger.outcomes(), logger.samples()
    body = json.dumps({"instances": INSTANCES}).encode()
    for i in range(3):
        assert logger.post_json(body, **{"X-Request-Id": f"m{i}"})[0] == 200
    assert logger.post_json(b"not json")[0] == 400
    after, samples = logger.outcomes(), logger.samples()

    def grew(name):
        return samples[name] - samples_before.get(name, 0)

    assert after["ok"] - before.get("ok", 0) == 3
    assert after["bad_json"] - before.get("bad_json", 0) == 1
    assert grew("mmon_logger_received_bytes_total") == 3 * len(body) + len(b"not json")
    assert grew("mmon_logger_instances_total") == 3 * len(INSTANCES)
    assert grew("mmon_logger_produce_latency_seconds_count") == 3
    assert samples["mmon_logger_produce_latency_seconds_count"] == after["ok"]
    assert 0 < grew("mmon_logger_produce_latency_seconds_sum") < 30


def test_ready_and_health(logger):
    assert logger.request("GET", "/healthz") == (200, "ok\n")
    assert logger.request("GET", "/readyz")[0] == 200


def test_kserve_v1_output_format(kafka_broker, topic, read_record):
    logger = Logger("--kafka", kafka_broker.bootstrap, "--topic", topic, "--format", "kserve-v1")
    try:
        record = written(logger, read_record, {"instances": INSTANCES}, **{
            "ce-specversion": "1.0", "ce-id": "v1-out", "ce-time": CE_TIME,
            "ce-type": "org.kubeflow.serving.inference.request"})
    finally:
        logger.stop()
    assert record.value.decode() == formats.encode(formats.KSERVE_V1, "v1-out", CE_TIME_MS, COMPACT_INSTANCES)


def test_kserve_v1_output_keeps_each_events_own_source(kafka_broker, topic, read_record):
    """Issue 20: the logger wrote ``source: mmon/iris`` into every CloudEvent, whatever model logged it. The
    event's own source (``ce-source``, or a structured event's ``source``) is kept, for requests and responses;
    a plain body, which has none, gets `formats.DEFAULT_SOURCE`."""
    logger = Logger("--kafka", kafka_broker.bootstrap, "--topic", topic, "--format", "kserve-v1",
                    "--config", str(PENGUINS_SPEC))
    structured = {"specversion": "1.0", "id": "src-2", "source": "http://penguins.default/predictor", "time": CE_TIME,
                  "type": "org.kubeflow.serving.inference.request", "data": {"instances": [PENGUIN]}}
    try:
        binary = written(logger, read_record, {"instances": [PENGUIN]}, **{
            "ce-specversion": "1.0", "ce-id": "src-1", "ce-time": CE_TIME, "ce-source": "http://penguins-a.models/",
            "ce-type": "org.kubeflow.serving.inference.request"})
        structured = written(logger, read_record, structured, "application/cloudevents+json")
        response = written(logger, read_record, {"predictions": ["Adelie"]}, **{
            **RESPONSE_HEADERS, "Ce-Id": "src-1", "Ce-Source": "http://penguins-a.models/"})
        plain = written(logger, read_record, {"instances": [PENGUIN]}, **{"X-Request-Id": "src-3"})
    finally:
        logger.stop()
    sources = [json.loads(record.value)["source"] for record in (binary, structured, response, plain)]
    assert sources == ["http://penguins-a.models/", "http://penguins.default/predictor", "http://penguins-a.models/",
                       formats.DEFAULT_SOURCE]
    assert formats.DEFAULT_SOURCE == "mmon"
    assert binary.value.decode() == formats.encode(formats.KSERVE_V1, "src-1", CE_TIME_MS, [PENGUIN_ROW],
                                                   source="http://penguins-a.models/")
    assert response.value.decode() == formats.encode_response(formats.KSERVE_V1, "src-1", CE_TIME_MS, ["Adelie"],
                                                              source="http://penguins-a.models/")


def test_kafka_down_gives_503_never_a_silent_ok():
    logger = Logger("--kafka", f"127.0.0.1:{free_port()}", "--kafka-timeout-ms", "2000")
    try:
        started = time.monotonic()
        status, text = logger.post_json({"instances": INSTANCES})
        assert status == 503 and text.startswith("kafka_unavailable: "), text
        assert time.monotonic() - started < 10
        assert logger.request("GET", "/readyz")[0] == 503
        assert logger.request("GET", "/healthz")[0] == 200
        assert logger.outcomes() == {"kafka_unavailable": 1.0}
    finally:
        logger.stop()


# --- the pure request parser (no server, no Kafka) ----------------------------------------------------

def test_parser_ignores_header_case_and_lets_the_envelope_id_and_time_win():
    from inference_logger.ingest import Inference, parse
    oip = formats.encode(formats.OIP_V2, "body-id", 1_700_000_000_000, INSTANCES).encode()
    plain = parse("application/json", {"X-REQUEST-ID": "hdr"}, oip, received_ms=RECEIVED_MS)
    assert plain == Inference("hdr", 1_700_000_000_000, INSTANCES, {})
    binary = parse("application/json; charset=utf-8", {"CE-SPECVERSION": "1.0", "Ce-Id": "ce"}, oip, received_ms=RECEIVED_MS)
    assert (binary.request_id, binary.time_ms) == ("ce", 1_700_000_000_000)  # no ce-time: the body's time
    timed = parse("application/json", {"ce-specversion": "1.0", "ce-id": "ce", "ce-time": CE_TIME}, oip, RECEIVED_MS)
    assert timed.time_ms == CE_TIME_MS
    received = parse("application/json", {}, b'{"instances": [[1, 2]]}', received_ms=RECEIVED_MS)
    assert received.time_ms == RECEIVED_MS and uuid.UUID(received.request_id)


# --- responses (issue 13): a spec with an output makes the logger write them -----------------------------

PENGUINS_SPEC = Path(__file__).resolve().parents[1] / "examples" / "penguins" / "monitor.yaml"
PENGUIN = {"island": "Biscoe", "bill_length_mm": 47.5, "bill_depth_mm": 15.0, "flipper_length_mm": 217,
           "body_mass_g": None, "sex": "male", "colour": "black"}  # an extra key is ignored
PENGUIN_ROW = ["Biscoe", 47.5, 15, 217, None, "male"]  # as the logger writes it: feature order, integral as ints
RESPONSE_HEADERS = {  # what KServe's logger worker sends for a response in mode `all` (binary encoding)
    "Ce-Specversion": "1.0", "Ce-Time": CE_TIME, "Ce-Source": "http://localhost:9081/",
    "Ce-Type": "org.kubeflow.serving.inference.response", "Ce-Inferenceservicename": "penguins",
    "Ce-Namespace": "default", "Ce-Component": "predictor", "Ce-Endpoint": "", "Ce-Metadata": "{}"}


@pytest.fixture(scope="module")
def penguin_logger(kafka_broker, topic):
    process = Logger("--kafka", kafka_broker.bootstrap, "--topic", topic, "--config", str(PENGUINS_SPEC))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def penguin_schema():
    from contract.spec import load_spec
    return formats.Schema.from_spec(load_spec(PENGUINS_SPEC))


def test_with_an_output_a_binary_response_event_is_written_under_its_request_id(penguin_logger, read_record,
                                                                                 penguin_schema):
    request_id = f"resp-{uuid.uuid4()}"
    record = written(penguin_logger, read_record, {"predictions": ["Gentoo"]}, **RESPONSE_HEADERS, **{"Ce-Id": request_id})
    assert record.key == request_id.encode() and record.timestamp == CE_TIME_MS
    assert record.value.decode() == formats.encode_response(formats.THESIS, request_id, CE_TIME_MS, ["Gentoo"])
    assert formats.decode(formats.THESIS, record.value, schema=penguin_schema) == \
        formats.ParsedResponse(request_id, CE_TIME_MS, ["Gentoo"])
    assert dict(record.headers)["ce_type"] == b"org.kubeflow.serving.inference.response"


def test_with_an_output_a_structured_oip_v2_response_and_its_request_are_written(penguin_logger, read_record,
                                                                                penguin_schema):
    request_id = f"oip-{uuid.uuid4()}"
    request = written(penguin_logger, read_record, json.loads(formats.encode(
        formats.OIP_V2, request_id, 1_700_000_000_000, [PENGUIN], schema=penguin_schema)))
    assert formats.decode(formats.THESIS, request.value, schema=penguin_schema) == \
        (request_id, 1_700_000_000_000, [["Biscoe", 47.5, 15.0, 217.0, None, "male"]])
    event = {"specversion": "1.0", "id": request_id, "source": "http://penguins.default", "time": CE_TIME,
             "type": "org.kubeflow.serving.inference.response", "datacontenttype": "application/json",
             "data": {"outputs": [{"name": "output-0", "shape": [2, 1], "datatype": "BYTES", "data": ["Adelie", None]}]}}
    response = written(penguin_logger, read_record, event, "application/cloudevents+json")
    assert (response.key, request.key) == (request_id.encode(), request_id.encode())
    assert response.partition == request.partition  # keyed by the request's id: the join sees them in order
    assert formats.decode(formats.THESIS, response.value, schema=penguin_schema) == \
        formats.ParsedResponse(request_id, CE_TIME_MS, ["Adelie", None])


# --- versions (issue 22): the CloudEvent's endpoint attribute is carried into the record -----------------------

def test_the_endpoint_of_a_binary_cloudevent_is_the_records_version(penguin_logger, read_record, penguin_schema):
    """KServe's canary: binary mode (its logger's encoding), ``ce-endpoint`` on the request and on its response."""
    request_id = f"canary-{uuid.uuid4()}"
    headers = {**RESPONSE_HEADERS, "Ce-Id": request_id, "Ce-Endpoint": "canary"}
    request = written(penguin_logger, read_record, {"instances": [PENGUIN]},
                      **{**headers, "Ce-Type": formats.CLOUDEVENT_REQUEST_TYPE})
    response = written(penguin_logger, read_record, {"predictions": ["Gentoo"]}, **headers)
    assert request.value.decode() == formats.encode(formats.THESIS, request_id, CE_TIME_MS, [PENGUIN_ROW],
                                                    version="canary")
    assert response.value.decode() == formats.encode_response(formats.THESIS, request_id, CE_TIME_MS, ["Gentoo"],
                                                              version="canary")
    for record in (request, response):
        assert formats.version_of(formats.THESIS, json.loads(record.value), penguin_schema) == "canary"
        assert dict(record.headers)["ce_endpoint"] == b"canary"


def test_the_endpoint_of_a_structured_cloudevent_is_the_records_version(penguin_logger, read_record, penguin_schema):
    request_id = f"canary-{uuid.uuid4()}"
    event = {"specversion": "1.0", "id": request_id, "source": "http://penguins.default", "time": CE_TIME,
             "type": formats.CLOUDEVENT_RESPONSE_TYPE, "endpoint": "default", "datacontenttype": "application/json",
             "data": {"predictions": ["Adelie"]}}
    response = written(penguin_logger, read_record, event, "application/cloudevents+json")
    assert response.value.decode() == formats.encode_response(formats.THESIS, request_id, CE_TIME_MS, ["Adelie"],
                                                              version="default")
    assert formats.version_of(formats.THESIS, json.loads(response.value), penguin_schema) == "default"
    status, text = penguin_logger.post_json({**event, "endpoint": 2}, "application/cloudevents+json")
    assert status == 400 and text.startswith("bad_envelope: version 2"), text


def test_with_an_output_requests_are_checked_against_the_named_typed_features(penguin_logger, read_record):
    request_id = f"obj-{uuid.uuid4()}"
    record = written(penguin_logger, read_record, {"instances": [PENGUIN, {"island": 3}]}, **{"X-Request-Id": request_id})
    assert json.loads(record.value)["payload"]["instances"] == [PENGUIN_ROW, ["3", None, None, None, None, None]]
    status, text = penguin_logger.post_json({"instances": [{**PENGUIN, "body_mass_g": "heavy"}]})
    assert status == 400 and text.startswith("bad_instance"), text


def test_a_plain_predictions_body_is_a_response_with_the_header_id_and_receive_time(penguin_logger, read_record):
    request_id = f"plain-{uuid.uuid4()}"
    before = time.time() * 1000
    record = written(penguin_logger, read_record, {"predictions": ["Chinstrap", 2]}, **{"X-Request-Id": request_id})
    message = json.loads(record.value)
    assert (message["type"], message["id"], message["payload"]) == ("response", request_id,
                                                                    {"predictions": ["Chinstrap", "2"]})
    assert before - 1 <= message["time"] == record.timestamp <= time.time() * 1000 + 1


BAD_RESPONSES = [
    ("no_instances", {"predictions": []}, RESPONSE_HEADERS),
    ("no_instances", {"predictions": "Adelie"}, RESPONSE_HEADERS),
    ("no_instances", {"scores": [0.3]}, RESPONSE_HEADERS),
    ("bad_instance", {"predictions": [True]}, RESPONSE_HEADERS),
    ("bad_instance", {"predictions": [1.5]}, RESPONSE_HEADERS),  # a categorical output takes integral numbers only
    ("bad_envelope", {"instances": [PENGUIN]}, RESPONSE_HEADERS),  # a response event carrying a request
    ("bad_envelope", {"predictions": ["Adelie"]}, {**RESPONSE_HEADERS, "Ce-Type": "org.kubeflow.serving.inference.request"}),
    ("bad_time", {"predictions": ["Adelie"]}, {**RESPONSE_HEADERS, "Ce-Time": "later"}),
]


@pytest.mark.parametrize("reason,body,headers", BAD_RESPONSES, ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_RESPONSES)])
def test_bad_responses_get_400_with_the_decoders_reason_and_write_nothing(penguin_logger, kafka_broker, topic,
                                                                         reason, body, headers):
    offset = end_offset(kafka_broker, topic)
    status, text = penguin_logger.post_json(body, **headers, **{"Ce-Id": "bad-response"})
    assert status == 400 and text.startswith(reason) and text.count("\n") == 1, text
    assert end_offset(kafka_broker, topic) == offset


def test_responses_are_counted_as_predictions(penguin_logger):
    before = penguin_logger.samples()
    assert penguin_logger.post_json({"predictions": ["Adelie", "Gentoo", None]}, **RESPONSE_HEADERS,
                                    **{"Ce-Id": "counted"})[0] == 200
    after = penguin_logger.samples()
    assert after["mmon_logger_predictions_total"] - before.get("mmon_logger_predictions_total", 0) == 3
    assert after["mmon_logger_instances_total"] == before["mmon_logger_instances_total"]


def test_kserve_v1_output_format_writes_a_response_cloudevent(kafka_broker, topic, read_record):
    logger = Logger("--kafka", kafka_broker.bootstrap, "--topic", topic, "--format", "kserve-v1",
                    "--config", str(PENGUINS_SPEC))
    try:
        record = written(logger, read_record, {"predictions": ["Adelie"]}, **RESPONSE_HEADERS, **{"Ce-Id": "v1-resp"})
    finally:
        logger.stop()
    assert record.value.decode() == formats.encode_response(formats.KSERVE_V1, "v1-resp", CE_TIME_MS, ["Adelie"],
                                                            source=RESPONSE_HEADERS["Ce-Source"])


def test_parser_returns_a_response_only_when_the_schema_has_an_output(penguin_schema):
    from inference_logger.ingest import Checks, Ignored, Rejected, Response, parse
    headers = {"ce-specversion": "1.0", "ce-id": "r1", "ce-type": "org.kubeflow.serving.inference.response",
               "ce-time": CE_TIME}
    body = b'{"predictions": ["Adelie", 0]}'
    assert parse("application/json", headers, body, RECEIVED_MS, Checks(schema=penguin_schema)) == \
        Response("r1", CE_TIME_MS, ["Adelie", "0"], {name[3:]: value for name, value in headers.items()})
    assert parse("application/json", headers, body, RECEIVED_MS) == Ignored("r1", headers["ce-type"])
    no_output = formats.Schema(penguin_schema.features, penguin_schema.types)
    assert parse("application/json", headers, body, RECEIVED_MS, Checks(schema=no_output)) == \
        Ignored("r1", headers["ce-type"])
    with pytest.raises(Rejected, match="no_instances"):
        parse("application/json", {}, body, RECEIVED_MS, Checks(schema=no_output))  # a plain body: not a request


# --- labels (issue 21): a spec with ground_truth makes the logger take label messages --------------------------

LABEL_HEADERS = {"Ce-Specversion": "1.0", "Ce-Time": CE_TIME, "Ce-Source": "http://labeller.example/",
                 "Ce-Type": formats.CLOUDEVENT_LABEL_TYPE}


def labelled_spec(tmp_path: Path, labels_topic) -> Path:
    """The penguins spec with ground_truth, label messages to ``labels_topic`` (None: the inference topic)."""
    import yaml
    spec = yaml.safe_load(PENGUINS_SPEC.read_text())
    spec["baseline"] = str(PENGUINS_SPEC.parent / spec["baseline"])
    spec["ground_truth"] = {"max_delay": "2d", "metrics": ["accuracy", "f1_macro"]}
    spec["kafka"]["topics"]["labels"] = labels_topic
    path = tmp_path / f"labelled-{labels_topic}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def labels_topic(kafka_broker):
    return new_topic(kafka_broker, "labels")


@pytest.fixture(scope="module")
def label_logger(kafka_broker, topic, labels_topic, tmp_path_factory):
    """A logger of the labelled penguins spec, label messages to their own topic, behind a bearer token."""
    folder = tmp_path_factory.mktemp("labels")
    (folder / "token").write_text("s3cret\n")
    process = Logger("--kafka", kafka_broker.bootstrap, "--topic", topic, "--token-file", str(folder / "token"),
                     "--config", str(labelled_spec(folder, labels_topic)))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def read_label(kafka_broker, labels_topic):
    """A record the logger wrote to the labels topic (`record_reader`)."""
    read, consumer = record_reader(kafka_broker.bootstrap, labels_topic)
    yield read
    consumer.close()


AUTH = {"Authorization": "Bearer s3cret"}


def test_a_binary_label_event_is_written_to_the_labels_topic_under_its_request_id(label_logger, read_label,
                                                                                  penguin_schema):
    request_id = f"lab-{uuid.uuid4()}"
    record = written(label_logger, read_label, {"labels": ["Gentoo", None, 2]}, **LABEL_HEADERS, **AUTH,
                     **{"Ce-Id": request_id})
    assert record.key == request_id.encode() and record.timestamp == CE_TIME_MS
    assert record.value.decode() == formats.encode_label(formats.THESIS, request_id, CE_TIME_MS, ["Gentoo", None, "2"])
    labelled = dataclasses.replace(penguin_schema, ground_truth=True)
    assert formats.decode(formats.THESIS, record.value, schema=labelled) == \
        formats.ParsedLabels(request_id, CE_TIME_MS, ["Gentoo", None, "2"])
    assert dict(record.headers)["ce_type"] == formats.CLOUDEVENT_LABEL_TYPE.encode()


def test_structured_oip_and_plain_label_messages(label_logger, read_label):
    """A structured event with an OIP v2 label body; a thesis label message and a KServe-style ``{"labels"}``
    body POSTed plain (its id the header's, its time the receive time)."""
    oip = json.loads(formats.encode_label(formats.OIP_V2, "ignored", 1_700_000_000_000, ["Adelie", "Chinstrap"]))
    event = {"specversion": "1.0", "id": "lab-oip", "source": "http://labeller", "time": CE_TIME,
             "type": formats.CLOUDEVENT_LABEL_TYPE, "data": oip}
    structured = written(label_logger, read_label, event, "application/cloudevents+json", **AUTH)
    assert structured.value.decode() == formats.encode_label(formats.THESIS, "lab-oip", CE_TIME_MS,
                                                             ["Adelie", "Chinstrap"])
    thesis = json.loads(formats.encode_label(formats.THESIS, "lab-thesis", 1_700_000_000_500, ["Adelie"]))
    plain = written(label_logger, read_label, thesis, **AUTH)
    assert (plain.key, plain.timestamp) == (b"lab-thesis", 1_700_000_000_500)
    before = time.time() * 1000
    bare = written(label_logger, read_label, {"labels": ["Gentoo"]}, **AUTH, **{"X-Request-Id": "lab-bare"})
    message = json.loads(bare.value)
    assert (message["type"], message["id"], message["payload"]) == ("label", "lab-bare", {"labels": ["Gentoo"]})
    assert before - 1 <= message["time"] == bare.timestamp <= time.time() * 1000 + 1


def test_requests_and_responses_still_go_to_the_inference_topic(label_logger, read_record):
    request = written(label_logger, read_record, {"instances": [PENGUIN]}, **AUTH, **{"X-Request-Id": "lab-req"})
    response = written(label_logger, read_record, {"predictions": ["Adelie"]}, **RESPONSE_HEADERS, **AUTH,
                       **{"Ce-Id": "lab-req"})
    assert json.loads(request.value)["type"] == "request" and json.loads(response.value)["type"] == "response"


BAD_LABELS = [
    (401, "unauthorized", {"labels": ["Adelie"]}, {**LABEL_HEADERS, "Ce-Id": "x"}),
    (400, "bad_id", {"labels": ["Adelie"]}, AUTH),  # a plain label body must name its request
    (400, "no_instances", {"labels": []}, {**LABEL_HEADERS, "Ce-Id": "x", **AUTH}),
    (400, "bad_instance", {"labels": [1.5]}, {**LABEL_HEADERS, "Ce-Id": "x", **AUTH}),  # categorical: integral only
    (400, "non_finite", b'{"labels": [NaN]}', {**LABEL_HEADERS, "Ce-Id": "x", **AUTH}),
    (400, "bad_time", {"labels": ["Adelie"]}, {**LABEL_HEADERS, "Ce-Id": "x", "Ce-Time": "later", **AUTH}),
    (400, "bad_envelope", {"instances": [PENGUIN]}, {**LABEL_HEADERS, "Ce-Id": "x", **AUTH}),
    (400, "bad_envelope", {"labels": ["Adelie"]}, {**RESPONSE_HEADERS, "Ce-Id": "x", **AUTH}),
    (400, "future_time", {"labels": ["Adelie"]}, {**LABEL_HEADERS, "Ce-Id": "x", "Ce-Time": "2999-01-01T00:00:00Z",
                                                  **AUTH}),
]


@pytest.mark.parametrize("status,reason,body,headers", BAD_LABELS, ids=[f"{c[1]}-{i}" for i, c in enumerate(BAD_LABELS)])
def test_bad_label_messages_are_refused_and_write_nothing(label_logger, kafka_broker, labels_topic, topic, status,
                                                          reason, body, headers):
    offsets = end_offset(kafka_broker, labels_topic), end_offset(kafka_broker, topic)
    got, text = label_logger.post_json(body, **headers)
    assert got == status and text.startswith(reason) and text.count("\n") == 1, text
    assert (end_offset(kafka_broker, labels_topic), end_offset(kafka_broker, topic)) == offsets


def test_labels_are_counted_apart(label_logger):
    before = label_logger.samples()
    assert label_logger.post_json({"labels": ["Adelie", "Gentoo"]}, **LABEL_HEADERS, **AUTH, **{"Ce-Id": "c"})[0] == 200
    after = label_logger.samples()
    assert after["mmon_logger_labels_total"] - before.get("mmon_logger_labels_total", 0) == 2
    for name in ("mmon_logger_instances_total", "mmon_logger_predictions_total"):
        assert after[name] == before[name]


def test_without_a_labels_topic_labels_travel_the_inference_topic_in_the_output_format(kafka_broker, topic,
                                                                                       read_record, tmp_path):
    logger = Logger("--kafka", kafka_broker.bootstrap, "--topic", topic, "--format", "kserve-v1",
                    "--config", str(labelled_spec(tmp_path, None)))
    try:
        record = written(logger, read_record, {"labels": ["Chinstrap"]}, **LABEL_HEADERS, **{"Ce-Id": "lab-v1"})
    finally:
        logger.stop()
    assert record.value.decode() == formats.encode_label(formats.KSERVE_V1, "lab-v1", CE_TIME_MS, ["Chinstrap"],
                                                         source=LABEL_HEADERS["Ce-Source"])


def test_without_ground_truth_a_label_event_is_refused_as_before(penguin_logger, kafka_broker, topic):
    offset = end_offset(kafka_broker, topic)
    status, text = penguin_logger.post_json({"labels": ["Adelie"]}, **LABEL_HEADERS, **{"Ce-Id": "unread"})
    assert status == 400 and text.startswith("no_instances"), text
    assert end_offset(kafka_broker, topic) == offset


def test_parser_returns_a_label_only_with_ground_truth(penguin_schema):
    from inference_logger.ingest import Checks, Label, Rejected, parse
    headers = {"ce-specversion": "1.0", "ce-id": "r1", "ce-type": formats.CLOUDEVENT_LABEL_TYPE, "ce-time": CE_TIME}
    body = b'{"labels": ["Adelie", 0]}'
    labelled = Checks(schema=dataclasses.replace(penguin_schema, ground_truth=True))
    assert parse("application/json", headers, body, RECEIVED_MS, labelled) == \
        Label("r1", CE_TIME_MS, ["Adelie", "0"], {name[3:]: value for name, value in headers.items()})
    for checks in (Checks(schema=penguin_schema), Checks()):
        with pytest.raises(Rejected, match="no_instances"):
            parse("application/json", headers, body, RECEIVED_MS, checks)
    thesis = formats.encode_label(formats.THESIS, "r2", 1_700_000_000_000, ["Gentoo"]).encode()
    assert parse("application/json", {"X-Request-Id": "hdr"}, thesis, RECEIVED_MS, labelled) == \
        Label("hdr", 1_700_000_000_000, ["Gentoo"], {})  # the header's id wins, the message's time
    with pytest.raises(Rejected, match="no_instances"):  # without ground truth: a KServe body without instances
        parse("application/json", {}, thesis, RECEIVED_MS, Checks(schema=penguin_schema))
