"""`mmon logger`: an asyncio HTTP server between a model server's inference logger and Kafka.

POST (any path) a KServe logger CloudEvent (binary or structured mode) or a plain KServe v1 / OIP v2
body; the logger writes one Kafka record per request and answers 200 only after the broker acknowledged
it. The record: value in the job's ``thesis`` or ``kserve-v1`` format (`contract.formats.encode`; a
kserve-v1 event keeps the logged event's own ``source``, `contract.formats.DEFAULT_SOURCE` for a plain
body), key the request id, timestamp the request time, CloudEvents attributes as ``ce_<name>`` headers (the
CloudEvents Kafka binding), and the model version the event names (`inference_logger.ingest`) written into the
value as the job reads it (`contract.formats.version_of`). Logged *responses* (CloudEvent type ``...response``, KServe's logger mode
``all``): with a spec whose ``output`` is set (``--config``) they are validated and written the same way
(value `contract.formats.encode_response`, key the request's id, so a response lands in its request's
partition); otherwise acknowledged with 200 and not written. *Label messages* (the true outputs, known late;
`inference_logger.ingest` says which bodies): with a spec whose ``ground_truth`` is set, validated and written
the same way (value `contract.formats.encode_label`, key the request's id) to the spec's
``kafka.topics.labels``, else to ``--topic``; without one they are rejected as bodies without instances. Bad input: 4xx with a one-line ``reason: detail`` (413 also for a record over the
producer's ``max_request_size``); Kafka unavailable or the logger full: 503 with ``Retry-After``.

Bounded by construction: a request is admitted only while fewer than ``max_in_flight`` requests and
``max_in_flight_bytes`` of declared bodies (a body without Content-Length counts as ``max_body_bytes``)
are in flight, otherwise 503 ``overloaded`` at once, before its body is read; the body must arrive
within ``body_timeout_s`` (else 408) and the headers within ``header_timeout_s`` (aiohttp's keep-alive
timer, which also closes idle connections). Parsing, validating and encoding run in one worker thread
of their own, one request at a time: a megabyte of JSON numbers takes a second or two of CPU, during
which the event loop still answers /healthz and /readyz, and only one request's parsed instances (tens
of MB for a megabyte of small numbers) exist at a time; what waits for Kafka's acknowledgement is the
encoded record only.

GET /metrics (Prometheus), /healthz (process up), /readyz (the producer is healthy, see
`inference_logger.publisher`, and the topic has partitions). With a bearer token configured, POST needs
``Authorization: Bearer <token>`` (else 401); the GET endpoints stay open.
"""
from __future__ import annotations

import argparse
import asyncio
import hmac
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from contract import formats, kafka_properties
from contract import spec as spec_config

from inference_logger import ingest
from inference_logger.publisher import KafkaPublisher, KafkaUnavailable, RecordTooLarge

OUTPUT_FORMATS = formats.FORMATS
KAFKA_UNAVAILABLE = "kafka_unavailable"
OVERLOADED = "overloaded"
BODY_TIMEOUT = "body_timeout"
RECORD_TOO_LARGE = "record_too_large"
UNAUTHORIZED = "unauthorized"
TOKEN_ENV_VAR = "MMON_LOGGER_TOKEN"
RETRY_AFTER_S = 1
LINGERING_S = 1.0
"""How long aiohttp keeps reading (and dropping) the rest of a body the handler did not read (408, 413)."""


@dataclass(frozen=True)
class LoggerConfig:
    kafka: str = "127.0.0.1:9092"
    topic: str = "iris-inference"
    host: str = "127.0.0.1"
    port: int = 8080
    format: str = formats.THESIS
    max_body_bytes: int = 1 << 20
    linger_ms: int = 1
    kafka_timeout_ms: int = 10_000
    progress_every_s: float = 30.0
    max_in_flight: int = 256
    max_in_flight_bytes: int = 16 << 20
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    max_pending_ms: int = 5_000
    token: Optional[str] = field(default=None, repr=False)
    kafka_properties: Mapping[str, Any] = field(default_factory=dict, repr=False)  # KafkaProducer arguments
    checks: ingest.Checks = ingest.Checks()
    labels_topic: Optional[str] = None  # where label messages go (the spec's kafka.topics.labels); None: topic


class LoggerMetrics:
    """The logger's Prometheus metrics, in a registry of its own (several apps can share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mmon_logger_requests", "HTTP requests by outcome (ok, ignored, kafka_unavailable, "
                                "overloaded, unauthorized, body_timeout, record_too_large or the rejection reason)",
                                ["outcome"], registry=self.registry)
        self.received_bytes = Counter("mmon_logger_received_bytes", "Request body bytes received",
                                      registry=self.registry)
        self.produced_bytes = Counter("mmon_logger_produced_bytes", "Kafka record value bytes acknowledged",
                                      registry=self.registry)
        self.instances = Counter("mmon_logger_instances", "Instances written to Kafka", registry=self.registry)
        self.predictions = Counter("mmon_logger_predictions", "Predictions (of logged responses) written to Kafka",
                                   registry=self.registry)
        self.labels = Counter("mmon_logger_labels", "Labels (of label messages, ground_truth) written to Kafka",
                              registry=self.registry)
        self.produce_latency = Histogram(
            "mmon_logger_produce_latency_seconds", "From handing a record to the producer to the broker's ack",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=self.registry)
        self.in_flight = Gauge("mmon_logger_in_flight_requests", "POST requests admitted and not yet answered",
                               registry=self.registry)
        self.in_flight_bytes = Gauge("mmon_logger_in_flight_bytes", "Body bytes reserved by the admitted requests",
                                     registry=self.registry)
        self.pending_records = Gauge("mmon_logger_kafka_pending_records",
                                     "Records handed to the producer and not yet acknowledged", registry=self.registry)
        self.producer_replacements = Counter(
            "mmon_logger_producer_replacements", "Kafka producers replaced because they stopped delivering",
            registry=self.registry)


def _reply(status: int, reason: str, detail: str = "", headers: Optional[Mapping[str, str]] = None) -> web.Response:
    return web.Response(status=status, text=f"{reason}: {detail}\n" if detail else f"{reason}\n", headers=headers)


@dataclass(frozen=True)
class Record:
    """An inference encoded for Kafka: all that is kept while the broker's acknowledgement is awaited."""
    key: bytes
    value: bytes
    timestamp_ms: int
    headers: list
    instances: int = 0  # instances of a request
    predictions: int = 0  # predictions of a response
    labels: int = 0  # labels of a label message
    topic: Optional[str] = None  # None: the inference topic (LoggerConfig.topic)


def _compact(value):
    """A decoded float with an integral value as an int: a body of ``0`` values would otherwise double in
    size as ``0.0``. Below 1e16 an int's digits are never longer than the float's repr. Categorical values
    (str) and missing ones (None) stay as they are."""
    return int(value) if isinstance(value, float) and value.is_integer() and -1e16 < value < 1e16 else value


def _integral_as_int(instances: list) -> list:
    return [[_compact(v) for v in row] for row in instances]


class Admission:
    """Counts the requests and declared body bytes in flight; refuses what would exceed either cap."""

    def __init__(self, max_requests: int, max_bytes: int, metrics: LoggerMetrics):
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.requests = 0
        self.bytes = 0
        self.metrics = metrics

    @contextmanager
    def admitted(self, size: int) -> Iterator[None]:
        if self.requests >= self.max_requests or self.bytes + size > self.max_bytes:
            raise ingest.Rejected(503, OVERLOADED, f"{self.requests} requests and {self.bytes} body bytes in flight "
                                  f"(limits {self.max_requests}, {self.max_bytes}); retry",
                                  {"Retry-After": str(RETRY_AFTER_S)})
        self._add(1, size)
        try:
            yield
        finally:
            self._add(-1, -size)

    def _add(self, requests: int, size: int) -> None:
        self.requests += requests
        self.bytes += size
        self.metrics.in_flight.set(self.requests)
        self.metrics.in_flight_bytes.set(self.bytes)


class InferenceLogger:
    """The request handlers; owns the publisher and the metrics."""

    def __init__(self, config: LoggerConfig):
        self.config = config
        self.metrics = LoggerMetrics()
        self.publisher = KafkaPublisher(config.kafka, config.linger_ms, config.kafka_timeout_ms, config.max_pending_ms,
                                        config.kafka_properties, on_replace=self.metrics.producer_replacements.inc)
        self.metrics.pending_records.set_function(lambda: self.publisher.pending)
        self.admission = Admission(config.max_in_flight, config.max_in_flight_bytes, self.metrics)
        self._expected_authorization = f"Bearer {config.token}".encode() if config.token else None
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")

    async def log_request(self, request: web.Request) -> web.Response:
        received_ms = time.time_ns() // 1_000_000
        try:
            self._authorize(request)
            with self.admission.admitted(self._declared_size(request)):
                prepared = await asyncio.get_running_loop().run_in_executor(
                    self._encoder, self._prepare, request.content_type, request.headers,
                    await self._read_body(request), received_ms)
                if isinstance(prepared, ingest.Ignored):
                    self.metrics.requests.labels("ignored").inc()
                    return web.json_response({"id": prepared.request_id, "ignored": prepared.event_type})
                return await self._write(prepared)
        except ingest.Rejected as rejected:
            self.metrics.requests.labels(rejected.reason).inc()
            return _reply(rejected.status, str(rejected), headers=rejected.headers)

    def _authorize(self, request: web.Request) -> None:
        if self._expected_authorization is None:
            return
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self._expected_authorization):
            raise ingest.Rejected(401, UNAUTHORIZED, "missing or wrong bearer token",
                                  {"WWW-Authenticate": 'Bearer realm="mmon-logger"'})

    def _declared_size(self, request: web.Request) -> int:
        """The body size to reserve: Content-Length, or the limit when the body is chunked."""
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise ingest.Rejected(413, ingest.BODY_TOO_LARGE, f"{request.content_length} bytes, limit {limit}")
        return limit if request.content_length is None else request.content_length

    async def _read_body(self, request: web.Request) -> bytearray:
        try:
            body = await asyncio.wait_for(self._read_limited(request), self.config.body_timeout_s)
        except asyncio.TimeoutError:
            raise ingest.Rejected(408, BODY_TIMEOUT, f"body not received within {self.config.body_timeout_s:g} s",
                                  {"Connection": "close"}) from None
        self.metrics.received_bytes.inc(len(body))
        return body

    async def _read_limited(self, request: web.Request) -> bytearray:
        limit = self.config.max_body_bytes
        body = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > limit:
                raise ingest.Rejected(413, ingest.BODY_TOO_LARGE, f"over {limit} bytes")
        return body

    def _prepare(self, content_type: str, headers: Mapping[str, str], body: bytearray,
                 received_ms: int) -> Record | ingest.Ignored:
        """Parse, validate and encode; the body and the parsed instances are dropped when this returns."""
        parsed = ingest.parse(content_type, headers, body, received_ms, self.config.checks)
        if isinstance(parsed, ingest.Ignored):
            return parsed
        headers = [(f"ce_{name}", str(attr).encode()) for name, attr in parsed.attributes.items()]
        source = parsed.attributes.get("source") or formats.DEFAULT_SOURCE  # the event's own, if it has one
        key = parsed.request_id.encode()
        schema = self.config.checks.schema
        if isinstance(parsed, ingest.Response):
            value = formats.encode_response(self.config.format, parsed.request_id, parsed.time_ms,
                                            [_compact(v) for v in parsed.predictions], source=source,
                                            version=parsed.version, schema=schema).encode()
            return Record(key, value, parsed.time_ms, headers, predictions=len(parsed.predictions))
        if isinstance(parsed, ingest.Label):
            value = formats.encode_label(self.config.format, parsed.request_id, parsed.time_ms,
                                         [_compact(v) for v in parsed.labels], source=source,
                                         version=parsed.version, schema=schema).encode()
            return Record(key, value, parsed.time_ms, headers, labels=len(parsed.labels),
                          topic=self.config.labels_topic)
        value = formats.encode(self.config.format, parsed.request_id, parsed.time_ms,
                               _integral_as_int(parsed.instances), schema=schema, source=source,
                               version=parsed.version).encode()
        return Record(key, value, parsed.time_ms, headers, instances=len(parsed.instances))

    async def _write(self, record: Record) -> web.Response:
        started = time.perf_counter()
        try:
            metadata = await self.publisher.publish(record.topic or self.config.topic, record.key, record.value,
                                                    record.timestamp_ms, record.headers)
        except RecordTooLarge as err:
            raise ingest.Rejected(413, RECORD_TOO_LARGE, str(err)) from None
        except KafkaUnavailable as err:
            raise ingest.Rejected(503, KAFKA_UNAVAILABLE, str(err), {"Retry-After": str(RETRY_AFTER_S)}) from None
        self.metrics.produce_latency.observe(time.perf_counter() - started)
        self.metrics.requests.labels("ok").inc()
        self.metrics.produced_bytes.inc(len(record.value))
        self.metrics.instances.inc(record.instances)
        self.metrics.predictions.inc(record.predictions)
        self.metrics.labels.inc(record.labels)
        return web.json_response({"id": record.key.decode(), "topic": metadata.topic,
                                  "partition": metadata.partition, "offset": metadata.offset})

    async def metrics_page(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.metrics.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        problem = await self.publisher.problem(self.config.topic)
        if problem is None:
            return web.Response(text="ready\n")
        return _reply(503, "not_ready", f"Kafka at {self.config.kafka}, topic {self.config.topic}: {problem}")

    async def report_progress(self) -> None:
        """Print a one-line summary every ``progress_every_s`` while requests keep coming."""
        last = None
        while True:
            await asyncio.sleep(self.config.progress_every_s)
            counts = {s.labels["outcome"]: int(s.value) for metric in self.metrics.requests.collect()
                      for s in metric.samples if s.name.endswith("_total")}
            if counts != last:
                print("logger: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())), flush=True)
                last = counts

    def app(self) -> web.Application:
        # aiohttp's own limit is a backstop; _read_body enforces max_body_bytes with a one-line reason.
        app = web.Application(client_max_size=self.config.max_body_bytes + 1)
        app.router.add_get("/metrics", self.metrics_page)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_post("/{path:.*}", self.log_request)
        app.on_startup.append(self._start_progress)
        app.on_cleanup.append(self._close)
        return app

    async def _start_progress(self, app: web.Application) -> None:
        if self.config.progress_every_s > 0:
            app["progress"] = asyncio.get_running_loop().create_task(self.report_progress())

    async def _close(self, app: web.Application) -> None:
        if "progress" in app:
            app["progress"].cancel()
        await self.publisher.close()
        self._encoder.shutdown(wait=False)


def build_parser() -> argparse.ArgumentParser:
    defaults = LoggerConfig()
    parser = argparse.ArgumentParser(
        prog="mmon logger",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="HTTP inference logger: accepts KServe logger CloudEvents (binary or structured mode) and plain "
                    "KServe v1 / Open Inference Protocol v2 bodies, writes one Kafka record per request, answers "
                    "200 once Kafka acknowledged it (4xx: bad input, 503 with Retry-After: Kafka unavailable or "
                    "the logger full).",
        epilog=f"environment:\n"
               f"  {TOKEN_ENV_VAR}        bearer token for POST, when --token-file is not given\n"
               f"  {kafka_properties.ENV_VAR}    Kafka client properties as a JSON object of strings, e.g.\n"
               f"      '{{\"security.protocol\": \"SASL_SSL\", \"sasl.mechanism\": \"SCRAM-SHA-512\",\n"
               f"        \"sasl.plain.username\": \"mmon\", \"sasl.plain.password\": \"...\", "
               f"\"ssl.cafile\": \"/etc/kafka/ca.crt\"}}'\n"
               f"      (--kafka-property flags override it key by key)")
    parser.add_argument("--kafka", default=defaults.kafka, help="Kafka bootstrap servers (default %(default)s)")
    parser.add_argument("--topic", default=defaults.topic, help="inference topic to write (default %(default)s)")
    parser.add_argument("--host", default=defaults.host, help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=defaults.port, help="HTTP port (default %(default)s)")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default=defaults.format,
                        help="Kafka record value format, as the job's input.format (default %(default)s)")
    parser.add_argument("--config", type=Path, metavar="MONITOR_YAML",
                        help="monitor spec: validate instances against input.features (names, types, width), "
                             "reject (400) times more than window.max_future_skew ahead (default without a spec: "
                             f"{ingest.DEFAULT_MAX_FUTURE_SKEW_MS // 60_000} min), with output set write the "
                             "logged responses too (else they are acknowledged and not written), and with ground_truth "
                             "set take label messages, written to kafka.topics.labels (else to --topic)")
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes,
                        help="larger request bodies get 413 (default %(default)s)")
    parser.add_argument("--max-in-flight", type=int, default=defaults.max_in_flight,
                        help="requests handled at once; more get 503 overloaded with Retry-After (default %(default)s)")
    parser.add_argument("--max-in-flight-bytes", type=int, default=defaults.max_in_flight_bytes,
                        help="body bytes (Content-Length, else --max-body-bytes) handled at once; more get 503 "
                             "overloaded with Retry-After: this bounds the memory (default %(default)s)")
    parser.add_argument("--header-timeout", type=float, default=defaults.header_timeout_s, metavar="SECONDS",
                        help="a connection that has not sent a whole request head this long after connecting or "
                             "after its last answer is closed; also the idle keep-alive time (default %(default)s)")
    parser.add_argument("--body-timeout", type=float, default=defaults.body_timeout_s, metavar="SECONDS",
                        help="a body not received in full within this gets 408 and the connection is closed "
                             "(default %(default)s)")
    parser.add_argument("--linger-ms", type=int, default=defaults.linger_ms,
                        help="producer batching delay (default %(default)s)")
    parser.add_argument("--kafka-timeout-ms", type=int, default=defaults.kafka_timeout_ms,
                        help="longest wait for Kafka's acknowledgement before answering 503 (default %(default)s)")
    parser.add_argument("--max-pending-ms", type=int, default=defaults.max_pending_ms,
                        help="a record waiting longer for Kafka's acknowledgement makes /readyz fail and the "
                             "producer be replaced (default %(default)s)")
    parser.add_argument("--kafka-property", action="append", default=[], metavar="KEY=VALUE",
                        help="Kafka client property (SASL, SSL, max.request.size, ...), Java dotted or kafka-python "
                             f"name; repeatable; overrides {kafka_properties.ENV_VAR}")
    parser.add_argument("--token-file", type=Path, metavar="PATH",
                        help=f"file holding the bearer token POST requests must send (Authorization: Bearer "
                             f"<token>, else 401); default: the {TOKEN_ENV_VAR} environment variable, else no token")
    parser.add_argument("--progress-every", type=float, default=defaults.progress_every_s, metavar="SECONDS",
                        help="print request counts this often, 0 = never (default %(default)s)")
    return parser


def config_from_args(argv: list[str], environ: Mapping[str, str] = os.environ) -> LoggerConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("port", "max_body_bytes", "kafka_timeout_ms", "max_in_flight", "max_in_flight_bytes",
                 "header_timeout", "body_timeout", "max_pending_ms"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.linger_ms < 0:
        parser.error("--linger-ms must not be negative")
    if args.max_in_flight_bytes < args.max_body_bytes:
        parser.error("--max-in-flight-bytes must be at least --max-body-bytes")
    try:
        spec = spec_config.load_spec(args.config) if args.config else None
        return LoggerConfig(
            kafka=args.kafka, topic=args.topic, host=args.host, port=args.port, format=args.format,
            max_body_bytes=args.max_body_bytes, linger_ms=args.linger_ms, kafka_timeout_ms=args.kafka_timeout_ms,
            progress_every_s=args.progress_every, max_in_flight=args.max_in_flight,
            max_in_flight_bytes=args.max_in_flight_bytes, header_timeout_s=args.header_timeout,
            body_timeout_s=args.body_timeout, max_pending_ms=args.max_pending_ms,
            token=_token(args.token_file, environ), kafka_properties=_producer_arguments(args.kafka_property, environ),
            checks=_checks(spec), labels_topic=spec.kafka.topics.labels if spec else None)
    except (ValueError, OSError) as err:  # ConfigError and PropertyError are ValueErrors
        parser.error(str(err))


def _token(path: Optional[Path], environ: Mapping[str, str]) -> Optional[str]:
    token = path.read_text().strip() if path else environ.get(TOKEN_ENV_VAR, "").strip()
    if path and not token:
        raise ValueError(f"--token-file {path} is empty")
    return token or None


def _producer_arguments(assignments: list[str], environ: Mapping[str, str]) -> dict[str, Any]:
    properties = kafka_properties.from_environment(environ)
    properties.update(kafka_properties.parse_assignment(text) for text in assignments)
    return kafka_properties.producer_arguments(properties)


def _checks(spec: Optional[spec_config.MonitorSpec]) -> ingest.Checks:
    if spec is None:
        return ingest.Checks()
    skew = getattr(spec.window, "max_future_skew", ingest.DEFAULT_MAX_FUTURE_SKEW_MS)
    return ingest.Checks(schema=formats.Schema.from_spec(spec), max_future_skew_ms=int(skew))


def main(argv: list[str]) -> int:
    config = config_from_args(argv)
    logger = InferenceLogger(config)
    print(f"logger: http://{config.host}:{config.port} -> Kafka {config.kafka} topic {config.topic} "
          f"({config.format} format{', bearer token required' if config.token else ''})", flush=True)
    try:
        web.run_app(logger.app(), host=config.host, port=config.port, print=None, access_log=None,
                    keepalive_timeout=config.header_timeout_s, handler_cancellation=True,
                    lingering_time=LINGERING_S)
    except OSError as err:
        print(f"logger: cannot listen on {config.host}:{config.port}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
