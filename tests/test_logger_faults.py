"""`mmon logger` under faults and hostile input (issue 10, findings 4 and 5), against real Kafka brokers.

Every load loop is bounded in requests and in time; events are awaited by polling with a deadline.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from contract import formats, kafka_properties

from inference_logger import server

from devtools.services import KafkaBroker, free_port

from kafka_topics import read_topic
from test_logger import Logger

pytestmark = [pytest.mark.kafka]

ROOT = Path(__file__).resolve().parent.parent
IRIS_SPEC = ROOT / "examples" / "iris" / "monitor.yaml"
ROW = [5.1, 3.5, 1.4, 0.2]
MEMORY_LIMIT_BYTES = 256 << 20  # k8s/iris/logger.yaml: resources.limits.memory


def binary_event(request_id: str, instances=(ROW,), **extra: str) -> tuple[bytes, dict]:
    """A KServe v1 body and the binary-mode CloudEvent headers KServe's logger sends with it."""
    headers = {"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": request_id,
               "ce-type": "org.kubeflow.serving.inference.request", **extra}
    return json.dumps({"instances": list(instances)}).encode(), headers


def rfc3339(epoch_ms: int) -> str:
    return formats.format_rfc3339_ms(epoch_ms)


# ------------------------------------------------------------------------------ broker SIGKILL (finding 4)

@dataclass
class LoadRecord:
    """What the load senders saw: every answer, by request id, with the monotonic time it was sent."""
    answers: list[tuple[float, str, int]] = field(default_factory=list)  # (sent at, request id, status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sent_at: float, request_id: str, status: int) -> None:
        with self.lock:
            self.answers.append((sent_at, request_id, status))

    def count(self, status: int, sent_after: float = 0.0) -> int:
        with self.lock:
            return sum(1 for sent, _, got in self.answers if got == status and sent >= sent_after)

    def first_ok_after(self, moment: float) -> float | None:
        with self.lock:
            return min((sent for sent, _, got in self.answers if got == 200 and sent >= moment), default=None)


def send_load(logger: Logger, record: LoadRecord, stop: threading.Event, worker: int, max_requests: int,
              deadline: float) -> None:
    """Post small valid requests one after the other until ``stop``, ``max_requests`` or ``deadline``."""
    for i in range(max_requests):
        if stop.is_set() or time.monotonic() > deadline:
            return
        request_id = f"load-{worker}-{i}"
        body, headers = binary_event(request_id)
        sent_at = time.monotonic()
        try:
            status = logger.request("POST", "/", body, headers)[0]
        except OSError:
            status = 0
        record.add(sent_at, request_id, status)
        if status != 200:
            time.sleep(0.2)  # a client backing off, as Retry-After asks


def poll(condition, timeout_s: float, what: str, interval_s: float = 0.2) -> float:
    """Seconds until ``condition()`` held; fails the test after ``timeout_s``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(interval_s)
    return time.monotonic() - started


def readyz_status(logger: Logger) -> int:
    try:
        return logger.request("GET", "/readyz")[0]
    except OSError:
        return 0


@pytest.mark.timeout(420)
def test_broker_sigkill_under_load_loses_nothing_and_the_logger_recovers_by_itself(tmp_path):
    broker = KafkaBroker(port=free_port(), controller_port=free_port(), data_dir=tmp_path / "kafka").start()
    logger = None
    try:
        topic = "sigkill"
        broker.create_topics([topic])
        logger = Logger("--kafka", broker.bootstrap, "--topic", topic)
        record, stop = LoadRecord(), threading.Event()
        load_deadline = time.monotonic() + 300
        workers = [threading.Thread(target=send_load, args=(logger, record, stop, w, 20_000, load_deadline))
                   for w in range(6)]
        for worker in workers:
            worker.start()
        try:
            poll(lambda: record.count(200) >= 200, 60, "200 acknowledged requests before the kill")
            os.kill(broker.pid, signal.SIGKILL)
            broker.process.wait(timeout=10)
            killed = time.monotonic()
            not_ready_after = poll(lambda: readyz_status(logger) == 503, 20, "/readyz failing with the broker down")
            poll(lambda: record.count(503, sent_after=killed) >= 6, 40, "503 answers with the broker down")
            broker.start()
            restarted = time.monotonic()
            ok_after = poll(lambda: record.first_ok_after(restarted) is not None, 30,
                            "a 200 for a request sent after the broker's restart")
            ready_after = poll(lambda: readyz_status(logger) == 200, 30, "/readyz 200 after the broker's restart")
            oks_at_recovery = record.count(200)
            poll(lambda: record.count(200) >= oks_at_recovery + 200, 60, "steady 200s after the recovery")
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=60)
        replacements = logger.samples().get("mmon_logger_producer_replacements_total", 0)
        acknowledged = [request_id for _, request_id, status in record.answers if status == 200]
        keys = read_topic(broker.bootstrap, topic, value=lambda record: record.key)
        print(f"\nsigkill: {len(record.answers)} requests, {len(acknowledged)} 200, {len(keys)} records in Kafka, "
              f"statuses {sorted({s for _, _, s in record.answers})}; /readyz 503 {not_ready_after:.1f} s after the "
              f"kill; first 200 {ok_after:.1f} s and /readyz 200 {ready_after:.1f} s after the restart; "
              f"{replacements:.0f} producer replacements")
        assert {status for _, _, status in record.answers} <= {200, 503}
        status_of = {request_id.encode(): status for _, request_id, status in record.answers}
        # A 503 can still be in Kafka when its request was in flight as the broker died: the broker appended
        # it and was killed before answering (no acknowledgement is not "not written"). Only those may be,
        # at most one per sender; anything else in Kafka without a 200 is a bug.
        in_flight_at_kill = {rid.encode() for sent, rid, status in record.answers if status == 503 and sent <= killed}
        unacknowledged_in_kafka = {key for key in set(keys) if status_of.get(key) != 200}
        assert unacknowledged_in_kafka <= in_flight_at_kill, sorted(unacknowledged_in_kafka - in_flight_at_kill)
        assert len(unacknowledged_in_kafka) <= len(workers)
        assert set(rid.encode() for rid in acknowledged) <= set(keys), "acknowledged requests missing from Kafka"
        assert len(keys) == len(set(keys)), "a request written twice"
    finally:
        if logger is not None:
            logger.stop()
        broker.stop()


# ------------------------------------------------------------------------------ memory and stalls (finding 5)

def max_size_body(request_id: str, size: int = 1_000_000) -> bytes:
    """A valid KServe v1 body of about ``size`` bytes, of ``0`` values: the most values (Python objects) a
    body of that size can hold, and the case that doubled when ``0`` was re-encoded as ``0.0``. The default
    size leaves room for the record's envelope under the producer's 1 MiB ``max_request_size``."""
    row = "[0,0,0,0]"
    count = (size - 64) // (len(row) + 1)
    return ('{"id":"%s","instances":[%s]}' % (request_id, ",".join([row] * count))).encode()


class BackgroundSampler:
    """Calls `sample` in a thread every ``interval_s`` while the ``with`` block runs."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class PeakRss(BackgroundSampler):
    """A process's resident set size sampled every few milliseconds, keeping the peak."""

    def __init__(self, pid: int, interval_s: float = 0.01):
        super().__init__(interval_s)
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss

    def sample(self) -> None:
        self.peak = max(self.peak, self.process.memory_info().rss)


class HealthLatency(BackgroundSampler):
    """/healthz polled while the block runs, keeping the slowest answer's seconds."""

    def __init__(self, logger: Logger):
        super().__init__(0.1)
        self.logger = logger
        self.slowest = 0.0

    def sample(self) -> None:
        started = time.monotonic()
        assert self.logger.request("GET", "/healthz")[0] == 200
        self.slowest = max(self.slowest, time.monotonic() - started)


def timed_post(port: int, body: bytes, timeout_s: float = 90) -> tuple[int, str, str | None, float]:
    """(status, text, Retry-After, seconds) of one POST on a connection of its own."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode(), response.getheader("Retry-After"), time.monotonic() - started
    finally:
        connection.close()


@pytest.mark.timeout(300)
def test_64_concurrent_max_size_bodies_stay_under_the_memory_limit(kafka_broker):
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topics([topic])
    logger = Logger("--kafka", kafka_broker.bootstrap, "--topic", topic)
    try:
        bodies = [max_size_body(f"big-{i}") for i in range(64)]
        assert all(990_000 < len(body) <= 1_000_000 for body in bodies)
        idle_rss = psutil.Process(logger.process.pid).memory_info().rss
        health = HealthLatency(logger)
        with PeakRss(logger.process.pid) as rss, health, ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(lambda body: timed_post(logger.port, body), bodies))
        statuses = sorted(status for status, *_ in answers)
        counts = {status: statuses.count(status) for status in set(statuses)}
        print(f"\n64 x {len(bodies[0])} B bodies: answers {counts}, slowest {max(a[3] for a in answers):.1f} s, "
              f"RSS idle {idle_rss / 2**20:.0f} MiB, peak {rss.peak / 2**20:.0f} MiB; /healthz slowest "
              f"{health.slowest:.2f} s meanwhile")
        assert rss.peak < MEMORY_LIMIT_BYTES
        assert health.slowest < 5
        assert counts.get(200, 0) >= 8 and set(counts) <= {200, 503}
        for status, text, retry_after, seconds in answers:
            assert seconds < 60
            if status == 503:
                assert text.startswith("overloaded: ") and retry_after == "1", text
        produced = logger.samples()["mmon_logger_produced_bytes_total"]
        assert produced < counts[200] * (len(bodies[0]) + 200)  # 0 stays 0: the record is about the body's size
    finally:
        logger.stop()


def closed_within(sock: socket.socket, timeout_s: float, trickle: bytes) -> float | None:
    """Send ``trickle`` one byte a second until the server closes the connection (end of stream or reset);
    the seconds that took, or None when it stayed open ``timeout_s``."""
    started = time.monotonic()
    sock.settimeout(1.0)
    for byte in trickle:
        if time.monotonic() - started > timeout_s:
            return None
        try:
            sock.sendall(bytes([byte]))
            while sock.recv(4096):  # an answer (408) before the close
                pass
            return time.monotonic() - started
        except socket.timeout:
            continue
        except OSError:  # reset by the server
            return time.monotonic() - started
    return None


@pytest.mark.timeout(120)
def test_slow_body_and_half_sent_headers_are_closed_within_the_timeouts(kafka_broker):
    logger = Logger("--kafka", kafka_broker.bootstrap, "--body-timeout", "3", "--header-timeout", "3")
    try:
        slow = socket.create_connection(("127.0.0.1", logger.port))
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        slow_closed = closed_within(slow, 20, b'{"instances":' + b" " * 100)
        slow.close()

        half_sent = [socket.create_connection(("127.0.0.1", logger.port)) for _ in range(50)]
        for sock in half_sent:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        with ThreadPoolExecutor(50) as pool:
            header_closed = list(pool.map(lambda sock: closed_within(sock, 20, b"X-Slow: " + b"a" * 100), half_sent))
        for sock in half_sent:
            sock.close()
        print(f"\nslow body closed after {slow_closed} s; 50 half-sent heads closed after "
              f"{min(header_closed, key=lambda t: t or 99)}-{max(header_closed, key=lambda t: t or 99)} s")
        assert slow_closed is not None and slow_closed < 3 + 3
        assert all(t is not None and t < 3 + 3 for t in header_closed)
        assert logger.outcomes().get(server.BODY_TIMEOUT) == 1
        assert logger.request("GET", "/healthz")[0] == 200
    finally:
        logger.stop()


# ------------------------------------------------------------------------------ bad input: 4xx, never 500

@pytest.fixture(scope="module")
def spec_logger(kafka_broker):
    """A logger validating against the Iris monitor spec (4 features)."""
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topics([topic])
    process = Logger("--kafka", kafka_broker.bootstrap, "--topic", topic, "--config", str(IRIS_SPEC))
    yield process
    process.stop()


def raw_post(port: int, body: bytes, headers: list[tuple[str, bytes]]) -> tuple[int, str]:
    """A POST whose header values are sent as given bytes (http.client passes bytes through unchanged)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", "/")
        for name, value in [("Content-Type", b"application/json"), ("Content-Length", str(len(body)).encode()),
                            *headers]:
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_json_nested_100k_levels_is_400(spec_logger):
    status, text = spec_logger.post_json(b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert (status, text) == (400, "bad_json: nested too deeply\n")


def test_non_utf8_ce_id_and_request_id_are_400(spec_logger):
    body = json.dumps({"instances": [ROW]}).encode()
    status, text = raw_post(spec_logger.port, body, [("ce-specversion", b"1.0"), ("ce-id", b"\xff\xfe-id")])
    assert status == 400 and text.startswith("bad_id: "), text
    status, text = raw_post(spec_logger.port, body, [("X-Request-Id", b"\xc3\x28")])
    assert status == 400 and text.startswith("bad_id: "), text
    status, text = spec_logger.post_json(b'{"id": "\\ud800", "instances": [[1, 2, 3, 4]]}')  # a lone surrogate
    assert status == 400 and text.startswith("bad_id: "), text


def test_record_over_the_producer_limit_is_413_not_503(spec_logger):
    """``1e5`` is read as the float 100000.0 and written as 100000: the record outgrows the body."""
    row = "[1e5,1e5,1e5,1e5]"
    body = ('{"instances":[%s]}' % ",".join([row] * 48_000)).encode()
    assert len(body) < 1 << 20
    status, text = spec_logger.post_json(body)
    assert status == 413 and text.startswith("record_too_large: the Kafka record would be "), text


@pytest.mark.parametrize("name,ce_time,reason", [
    ("an hour ahead", lambda now: rfc3339(now + 3_600_000), "future_time"),
    ("year 3000", lambda now: "3000-01-01T00:00:00Z", "future_time"),
    ("year 0001", lambda now: "0001-01-01T00:00:00Z", "bad_time"),
    ("1969", lambda now: "1969-12-31T23:59:59.999Z", "bad_time"),
])
def test_times_ahead_of_the_skew_or_before_1970_are_400(spec_logger, name, ce_time, reason):
    body, headers = binary_event(f"time-{uuid.uuid4()}", **{"ce-time": ce_time(time.time_ns() // 1_000_000)})
    status, text = spec_logger.request("POST", "/", body, headers)
    assert status == 400 and text.startswith(f"{reason}: ") and text.count("\n") == 1, text


def test_oip_time_far_ahead_is_400_and_a_time_within_the_skew_is_written(spec_logger):
    now = time.time_ns() // 1_000_000
    far = json.loads(formats.encode(formats.OIP_V2, "oip-far", now + 10 * 60_000, [ROW]))
    assert spec_logger.post_json(far)[1].startswith("future_time: ")
    near = json.loads(formats.encode(formats.OIP_V2, "oip-near", now + 60_000, [ROW]))
    assert spec_logger.post_json(near)[0] == 200


def test_instance_width_is_checked_against_the_spec(spec_logger):
    status, text = spec_logger.post_json({"instances": [[1.0, 2.0, 3.0]]})
    assert status == 400 and text.startswith("wrong_feature_count: "), text
    assert spec_logger.post_json({"instances": [ROW]})[0] == 200


def test_outcome_metrics_count_the_new_rejections(spec_logger):
    spec_logger.post_json({"instances": [[1.0]]})
    body, headers = binary_event("metric-future", **{"ce-time": "3000-01-01T00:00:00Z"})
    spec_logger.request("POST", "/", body, headers)
    outcomes = spec_logger.outcomes()
    assert outcomes["wrong_feature_count"] >= 1 and outcomes["future_time"] >= 1


def test_bearer_token_guards_post_only(kafka_broker, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    logger = Logger("--kafka", kafka_broker.bootstrap, "--token-file", str(token_file))
    try:
        body, headers = binary_event(f"auth-{uuid.uuid4()}")
        for authorization in (None, "Bearer wrong", "s3cret-token", "Bearer s3cret-token-and-more"):
            extra = {"Authorization": authorization} if authorization else {}
            status, text = logger.request("POST", "/", body, {**headers, **extra})
            assert (status, text) == (401, "unauthorized: missing or wrong bearer token\n"), authorization
        assert logger.request("POST", "/", body, {**headers, "Authorization": "Bearer s3cret-token"})[0] == 200
        assert [logger.request("GET", path)[0] for path in ("/healthz", "/readyz", "/metrics")] == [200] * 3
        assert logger.outcomes()[server.UNAUTHORIZED] == 4
    finally:
        logger.stop()


# ------------------------------------------------------------------------------ configuration (no server)

def test_token_and_kafka_properties_come_from_the_environment():
    environ = {server.TOKEN_ENV_VAR: " tok \n", kafka_properties.ENV_VAR: json.dumps({
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "ssl.cafile": "/ca.crt",
        "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                            'username="mmon" password="p\\"w";',
        "max.request.size": 2_000_000})}
    config = server.config_from_args(["--kafka-property", "ssl_check_hostname=false",
                                      "--kafka-property", "sasl.mechanism=PLAIN"], environ)
    assert config.token == "tok"
    assert config.kafka_properties == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "ssl_cafile": "/ca.crt",
        "sasl_plain_username": "mmon", "sasl_plain_password": 'p"w', "max_request_size": 2_000_000,
        "ssl_check_hostname": False}
    assert "tok" not in repr(config) and "p\\\"w" not in repr(config)


@pytest.mark.parametrize("args,environ,message", [
    (["--kafka-property", "ssl.truststore.location=/x.jks"], {}, "Kafka property ssl.truststore.location: not supported"),
    (["--kafka-property", "acks=0"], {}, "Kafka property acks: not supported"),
    (["--kafka-property", "security.protocol=TLS"], {}, "Kafka property security.protocol: expected one of"),
    (["--kafka-property", "novalue"], {}, "Kafka property 'novalue': expected KEY=VALUE"),
    ([], {kafka_properties.ENV_VAR: "k=v"}, "MMON_KAFKA_PROPERTIES: not a JSON object"),
    (["--config", "/nonexistent/monitor.yaml"], {}, "cannot read monitor spec"),
])
def test_bad_logger_configuration_fails_at_start_naming_it(capsys, args, environ, message):
    with pytest.raises(SystemExit):
        server.config_from_args(args, environ)
    assert message in capsys.readouterr().err


def test_spec_gives_the_width_and_the_future_skew():
    checks = server.config_from_args(["--config", str(IRIS_SPEC)], {}).checks
    assert checks.n_features == 4 and checks.max_future_skew_ms == 5 * 60_000
