"""Kafka writes for an asyncio server, on kafka-python's thread-based producer.

The producer batches in its own sender thread (``linger_ms``). `KafkaPublisher.publish` hands the record
over in a small thread pool (``send`` can block while it waits for topic metadata) and then awaits the
broker's acknowledgement through the producer future's callbacks, bridged into the event loop with
``call_soon_threadsafe``: the loop never blocks, and a caller that gets a result knows the record is in
Kafka. Every failure (no broker, timeout, broker error) surfaces as `KafkaUnavailable`; a record over
the producer's ``max_request_size`` as `RecordTooLarge`, before anything is sent.

Self-healing. kafka-python's idempotent producer can wedge for good when the broker is SIGKILLed
under load: batches expire, the producer id is reset to -1 and never obtained again, and every later
record times out, long after the broker is back (kafka-python 3.0.12, the newest release). Idempotence
stays on (a retried batch is not written twice), so the publisher watches its producer instead: a
publish that failed with no acknowledgement since, or a record waiting longer than ``max_pending_ms``
for its acknowledgement, makes the producer *unhealthy*; the next publish or readiness check then
replaces an unhealthy producer that is at least `REPLACE_AFTER_S` old with a new one and closes the
old one in the background (its records still complete or expire there, so no caller is left
hanging). `KafkaPublisher.problem` is what ``/readyz`` reports.
"""
from __future__ import annotations

import asyncio
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Mapping, Optional, Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError
from kafka.record.default_records import DefaultRecordBatchBuilder

RETRY_CONNECT_AFTER_S = 1.0
REPLACE_AFTER_S = 5.0
"""Youngest age at which an unhealthy producer is replaced: bounds the churn while the broker is down."""
DEFAULT_MAX_REQUEST_SIZE = 1 << 20  # kafka-python's and the Java client's default max_request_size
CLOSE_ATTEMPTS = 3
READY_WAIT_S = 2.0
"""Longest `KafkaPublisher.problem` waits for its check (connecting, topic metadata) before reporting Kafka slow."""


class KafkaUnavailable(Exception):
    """The record could not be written (the broker is down, too slow, or refused it)."""


class RecordTooLarge(Exception):
    """The record is larger than the producer (or the broker) accepts: the client's fault, not Kafka's."""


@dataclass
class _Session:
    """One producer and what the publisher has seen of it."""
    producer: KafkaProducer
    created: float = field(default_factory=time.monotonic)
    failing_since: Optional[float] = None  # first failed publish since the last acknowledgement
    pending: dict[int, float] = field(default_factory=dict)  # publish number -> monotonic time handed over

    def problem(self, max_pending_s: float) -> Optional[str]:
        """Why this producer is unhealthy, or None."""
        now = time.monotonic()
        if self.failing_since is not None:
            return f"publishes failing for {now - self.failing_since:.1f} s with no acknowledgement since"
        if self.pending:
            oldest = next(iter(self.pending.values()))  # insertion order is time order
            if now - oldest > max_pending_s:
                return f"{len(self.pending)} records pending, the oldest {now - oldest:.1f} s without acknowledgement"
        return None


class KafkaPublisher:
    """Writes records to Kafka and awaits their acknowledgement; connects lazily and replaces a wedged producer.

    ``timeout_ms`` bounds each publish: connecting, waiting for metadata and delivery all fit in it.
    ``properties`` are extra KafkaProducer arguments (SASL, SSL, ``max_request_size``, ...).
    """

    def __init__(self, bootstrap: str, linger_ms: int = 1, timeout_ms: int = 10_000, max_pending_ms: int = 5_000,
                 properties: Optional[Mapping[str, Any]] = None, on_replace: Callable[[], Any] = lambda: None,
                 threads: int = 2):
        self.bootstrap = bootstrap
        self.linger_ms = linger_ms
        self.timeout_ms = timeout_ms
        self.max_pending_s = max_pending_ms / 1000
        self.properties = dict(properties or {})
        self.max_request_size = self.properties.get("max_request_size", DEFAULT_MAX_REQUEST_SIZE)
        self.on_replace = on_replace
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kafka-send")
        self._session: Optional[_Session] = None
        self._connect_lock = asyncio.Lock()
        self._last_failure: Optional[tuple[float, str]] = None
        self._numbers = itertools.count()
        self._readiness: Optional[asyncio.Future] = None  # one check at a time, however often /readyz asks

    def _new_producer(self) -> KafkaProducer:
        half = max(1, self.timeout_ms // 2)
        return KafkaProducer(**{
            "client_id": "mmon-logger", **self.properties, "bootstrap_servers": self.bootstrap, "acks": "all",
            "linger_ms": self.linger_ms, "bootstrap_timeout_ms": half, "max_block_ms": half,
            "request_timeout_ms": half, "delivery_timeout_ms": self.timeout_ms + self.linger_ms})

    async def _healthy_session(self) -> _Session:
        """The current producer, created on first use and replaced when unhealthy (see the module docstring);
        after a failed attempt to create one, fail fast for RETRY_CONNECT_AFTER_S."""
        session = self._session
        if session is not None and not self._replaceable(session):
            return session
        async with self._connect_lock:
            if self._session is not None and self._replaceable(self._session):
                self._retire(self._session)
            if self._session is not None:
                return self._session
            if self._last_failure and time.monotonic() - self._last_failure[0] < RETRY_CONNECT_AFTER_S:
                raise KafkaUnavailable(self._last_failure[1])
            try:
                producer = await asyncio.get_running_loop().run_in_executor(self._executor, self._new_producer)
            except KafkaError as err:
                self._last_failure = (time.monotonic(), f"cannot connect to Kafka at {self.bootstrap}: {err}")
                raise KafkaUnavailable(self._last_failure[1]) from None
            self._session = _Session(producer)
            return self._session

    def _replaceable(self, session: _Session) -> bool:
        return (time.monotonic() - session.created >= REPLACE_AFTER_S
                and session.problem(self.max_pending_s) is not None)

    def _retire(self, session: _Session) -> None:
        print(f"logger: replacing the Kafka producer: {session.problem(self.max_pending_s)}", flush=True)
        self._session = None
        self.on_replace()
        threading.Thread(target=self._close_producer, args=(session.producer,), name="kafka-close",
                         daemon=True).start()

    def _close_producer(self, producer: KafkaProducer, attempts: int = CLOSE_ATTEMPTS) -> None:
        """Close, letting pending records complete; kafka-python's close gives up (raises) while records are
        still pending, and they all expire within the delivery timeout, so a later attempt succeeds."""
        for _ in range(attempts):
            try:
                producer.close(timeout=self.timeout_ms / 1000 + 1)
                return
            except KafkaTimeoutError:
                continue

    def check_size(self, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]]) -> None:
        """Raise `RecordTooLarge` when the record exceeds ``max_request_size`` (kafka-python's own estimate)."""
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers))
        if size > self.max_request_size:
            raise RecordTooLarge(f"the Kafka record would be {size} bytes, over the producer's "
                                 f"max_request_size of {self.max_request_size}")

    async def publish(self, topic: str, key: bytes, value: bytes, timestamp_ms: int,
                      headers: Sequence[tuple[str, bytes]] = ()):
        """Write one record and return its RecordMetadata once the broker acknowledged it."""
        self.check_size(key, value, headers)
        session = await self._healthy_session()
        number = next(self._numbers)
        session.pending[number] = time.monotonic()
        try:
            metadata = await self._send(session.producer, topic, key, value, timestamp_ms, headers)
        except KafkaUnavailable:
            if session.failing_since is None:
                session.failing_since = time.monotonic()
            raise
        finally:
            session.pending.pop(number, None)
        session.failing_since = None
        return metadata

    async def _send(self, producer: KafkaProducer, topic: str, key: bytes, value: bytes, timestamp_ms: int,
                    headers: Sequence[tuple[str, bytes]]):
        loop = asyncio.get_running_loop()
        send = partial(producer.send, topic, key=key, value=value, timestamp_ms=timestamp_ms, headers=list(headers))
        try:
            future = await loop.run_in_executor(self._executor, send)
            acked = loop.create_future()
            future.add_callback(lambda metadata: loop.call_soon_threadsafe(_settle, acked, metadata, None))
            future.add_errback(lambda error: loop.call_soon_threadsafe(_settle, acked, None, error))
            return await asyncio.wait_for(acked, self.timeout_ms / 1000 + 1)
        except MessageSizeTooLargeError as err:  # the broker's limit can be lower than the producer's
            raise RecordTooLarge(f"Kafka refused the record as too large: {err}") from None
        except (KafkaError, asyncio.TimeoutError) as err:
            raise KafkaUnavailable(f"not acknowledged by Kafka: {err or type(err).__name__}") from None

    @property
    def pending(self) -> int:
        """Records handed to the current producer and not yet acknowledged."""
        return len(self._session.pending) if self._session else 0

    async def problem(self, topic: str) -> Optional[str]:
        """None when the producer is healthy and the topic has partitions; else why not (for /readyz).

        Answers within READY_WAIT_S: the check (which also replaces an unhealthy producer, so readiness
        comes back without traffic) goes on in the background when Kafka is slower than that.
        """
        trouble = self._session.problem(self.max_pending_s) if self._session else None
        if self._readiness is None or self._readiness.done():
            self._readiness = asyncio.ensure_future(self._check(topic))
        if trouble:
            return trouble
        try:
            return await asyncio.wait_for(asyncio.shield(self._readiness), READY_WAIT_S)
        except asyncio.TimeoutError:
            return f"no answer from Kafka within {READY_WAIT_S:g} s"

    async def _check(self, topic: str) -> Optional[str]:
        try:
            session = await self._healthy_session()
            trouble = session.problem(self.max_pending_s)
            if trouble:
                return trouble
            partitions = await asyncio.get_running_loop().run_in_executor(
                self._executor, session.producer.partitions_for, topic)
        except KafkaUnavailable as err:
            return str(err)
        except KafkaError as err:
            return f"no metadata for topic {topic}: {err}"
        return None if partitions else f"topic {topic} has no partitions"

    async def close(self) -> None:
        if self._readiness is not None:
            self._readiness.cancel()
        if self._session is not None:
            producer, self._session = self._session.producer, None
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_producer, producer, 1)
        self._executor.shutdown(wait=False)


def _settle(future: asyncio.Future, result, error) -> None:
    if future.done():  # the awaiting request was cancelled (client went away)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
