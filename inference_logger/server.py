"""`mmon logger`: an asyncio HTTP server between a model server's inference logger and Kafka.

POST (any path) a KServe logger CloudEvent (binary or structured mode) or a plain KServe v1 / OIP v2
body; the logger writes one Kafka record per request and answers 200 only after the broker acknowledged
it. The record: value in the job's ``thesis`` or ``kserve-v1`` format (`flink_job.formats.encode`), key
the request id, timestamp the request time, CloudEvents attributes as ``ce_<name>`` headers (the
CloudEvents Kafka binding). Logged *responses* (CloudEvent type ``...response``) are acknowledged with
200 and not written. Bad input: 4xx with a one-line ``reason: detail``; Kafka unavailable: 503.

GET /metrics (Prometheus), /healthz (process up), /readyz (Kafka reachable and topic present).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from flink_job import formats
from inference_logger import ingest
from inference_logger.publisher import KafkaPublisher, KafkaUnavailable

OUTPUT_FORMATS = formats.FORMATS
KAFKA_UNAVAILABLE = "kafka_unavailable"


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


class LoggerMetrics:
    """The logger's Prometheus metrics, in a registry of its own (several apps can share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mmon_logger_requests", "HTTP requests by outcome (ok, ignored, kafka_unavailable "
                                "or the rejection reason)", ["outcome"], registry=self.registry)
        self.received_bytes = Counter("mmon_logger_received_bytes", "Request body bytes received",
                                      registry=self.registry)
        self.produced_bytes = Counter("mmon_logger_produced_bytes", "Kafka record value bytes acknowledged",
                                      registry=self.registry)
        self.instances = Counter("mmon_logger_instances", "Instances written to Kafka", registry=self.registry)
        self.produce_latency = Histogram(
            "mmon_logger_produce_latency_seconds", "From handing a record to the producer to the broker's ack",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=self.registry)


def _reply(status: int, reason: str, detail: str = "") -> web.Response:
    return web.Response(status=status, text=f"{reason}: {detail}\n" if detail else f"{reason}\n")


class InferenceLogger:
    """The request handlers; owns the publisher and the metrics."""

    def __init__(self, config: LoggerConfig):
        self.config = config
        self.publisher = KafkaPublisher(config.kafka, config.linger_ms, config.kafka_timeout_ms)
        self.metrics = LoggerMetrics()

    async def log_request(self, request: web.Request) -> web.Response:
        received_ms = time.time_ns() // 1_000_000
        try:
            body = await self._read_body(request)
            parsed = ingest.parse(request.content_type, request.headers, body, received_ms)
        except ingest.Rejected as rejected:
            self.metrics.requests.labels(rejected.reason).inc()
            return _reply(rejected.status, str(rejected))
        if isinstance(parsed, ingest.Ignored):
            self.metrics.requests.labels("ignored").inc()
            return web.json_response({"id": parsed.request_id, "ignored": parsed.event_type})
        return await self._write(parsed)

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise ingest.Rejected(413, ingest.BODY_TOO_LARGE, f"{request.content_length} bytes, limit {limit}")
        body = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > limit:
                raise ingest.Rejected(413, ingest.BODY_TOO_LARGE, f"over {limit} bytes")
        self.metrics.received_bytes.inc(len(body))
        return bytes(body)

    async def _write(self, inference: ingest.Inference) -> web.Response:
        value = formats.encode(self.config.format, inference.request_id, inference.time_ms,
                               inference.instances).encode()
        headers = [(f"ce_{name}", str(attr).encode()) for name, attr in inference.attributes.items()]
        started = time.perf_counter()
        try:
            metadata = await self.publisher.publish(self.config.topic, inference.request_id.encode(), value,
                                                    inference.time_ms, headers)
        except KafkaUnavailable as err:
            self.metrics.requests.labels(KAFKA_UNAVAILABLE).inc()
            return _reply(503, KAFKA_UNAVAILABLE, str(err))
        self.metrics.produce_latency.observe(time.perf_counter() - started)
        self.metrics.requests.labels("ok").inc()
        self.metrics.produced_bytes.inc(len(value))
        self.metrics.instances.inc(len(inference.instances))
        return web.json_response({"id": inference.request_id, "topic": metadata.topic,
                                  "partition": metadata.partition, "offset": metadata.offset})

    async def metrics_page(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.metrics.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        if await self.publisher.ready(self.config.topic):
            return web.Response(text="ready\n")
        return _reply(503, "not_ready", f"Kafka at {self.config.kafka} or topic {self.config.topic} unavailable")

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


def build_parser() -> argparse.ArgumentParser:
    defaults = LoggerConfig()
    parser = argparse.ArgumentParser(
        prog="mmon logger",
        description="HTTP inference logger: accepts KServe logger CloudEvents (binary or structured mode) and plain "
                    "KServe v1 / Open Inference Protocol v2 bodies, writes one Kafka record per request, answers "
                    "200 once Kafka acknowledged it (4xx: bad input, 503: Kafka unavailable).")
    parser.add_argument("--kafka", default=defaults.kafka, help="Kafka bootstrap servers (default %(default)s)")
    parser.add_argument("--topic", default=defaults.topic, help="inference topic to write (default %(default)s)")
    parser.add_argument("--host", default=defaults.host, help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=defaults.port, help="HTTP port (default %(default)s)")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default=defaults.format,
                        help="Kafka record value format, as the job's input.format (default %(default)s)")
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes,
                        help="larger request bodies get 413 (default %(default)s)")
    parser.add_argument("--linger-ms", type=int, default=defaults.linger_ms,
                        help="producer batching delay (default %(default)s)")
    parser.add_argument("--kafka-timeout-ms", type=int, default=defaults.kafka_timeout_ms,
                        help="longest wait for Kafka's acknowledgement before answering 503 (default %(default)s)")
    parser.add_argument("--progress-every", type=float, default=defaults.progress_every_s, metavar="SECONDS",
                        help="print request counts this often, 0 = never (default %(default)s)")
    return parser


def config_from_args(argv: list[str]) -> LoggerConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("port", "max_body_bytes", "kafka_timeout_ms"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.linger_ms < 0:
        parser.error("--linger-ms must not be negative")
    return LoggerConfig(kafka=args.kafka, topic=args.topic, host=args.host, port=args.port, format=args.format,
                        max_body_bytes=args.max_body_bytes, linger_ms=args.linger_ms,
                        kafka_timeout_ms=args.kafka_timeout_ms, progress_every_s=args.progress_every)


def main(argv: list[str]) -> int:
    config = config_from_args(argv)
    logger = InferenceLogger(config)
    print(f"logger: http://{config.host}:{config.port} -> Kafka {config.kafka} topic {config.topic} "
          f"({config.format} format)", flush=True)
    try:
        web.run_app(logger.app(), host=config.host, port=config.port, print=None, access_log=None)
    except OSError as err:
        print(f"logger: cannot listen on {config.host}:{config.port}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
