"""Kafka writes for an asyncio server, on kafka-python's thread-based producer.

The producer batches in its own sender thread (``linger_ms``). `KafkaPublisher.publish` hands the record
over in a small thread pool (``send`` can block while it waits for topic metadata) and then awaits the
broker's acknowledgement through the producer future's callbacks, bridged into the event loop with
``call_soon_threadsafe``: the loop never blocks, and a caller that gets a result knows the record is in
Kafka. Every failure (no broker, timeout, broker error) surfaces as `KafkaUnavailable`.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Optional, Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError

RETRY_CONNECT_AFTER_S = 1.0


class KafkaUnavailable(Exception):
    """The record could not be written (the broker is down, too slow, or refused it)."""


class KafkaPublisher:
    """Writes records to Kafka and awaits their acknowledgement; connects lazily and reconnects after failures.

    ``timeout_ms`` bounds each publish: connecting, waiting for metadata and delivery all fit in it.
    """

    def __init__(self, bootstrap: str, linger_ms: int = 1, timeout_ms: int = 10_000, threads: int = 2):
        self.bootstrap = bootstrap
        self.linger_ms = linger_ms
        self.timeout_ms = timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kafka-send")
        self._producer: Optional[KafkaProducer] = None
        self._connect_lock = asyncio.Lock()
        self._last_failure: Optional[tuple[float, str]] = None

    def _new_producer(self) -> KafkaProducer:
        half = max(1, self.timeout_ms // 2)
        return KafkaProducer(
            bootstrap_servers=self.bootstrap, client_id="mmon-logger", acks="all", linger_ms=self.linger_ms,
            bootstrap_timeout_ms=half, max_block_ms=half, request_timeout_ms=half,
            delivery_timeout_ms=self.timeout_ms + self.linger_ms)

    async def _connected_producer(self) -> KafkaProducer:
        """The producer, created on first use; after a failed attempt, fail fast for RETRY_CONNECT_AFTER_S."""
        if self._producer is not None:
            return self._producer
        async with self._connect_lock:
            if self._producer is not None:
                return self._producer
            if self._last_failure and time.monotonic() - self._last_failure[0] < RETRY_CONNECT_AFTER_S:
                raise KafkaUnavailable(self._last_failure[1])
            try:
                self._producer = await asyncio.get_running_loop().run_in_executor(self._executor, self._new_producer)
            except KafkaError as err:
                self._last_failure = (time.monotonic(), f"cannot connect to Kafka at {self.bootstrap}: {err}")
                raise KafkaUnavailable(self._last_failure[1]) from None
            return self._producer

    async def publish(self, topic: str, key: bytes, value: bytes, timestamp_ms: int,
                      headers: Sequence[tuple[str, bytes]] = ()):
        """Write one record and return its RecordMetadata once the broker acknowledged it."""
        producer = await self._connected_producer()
        loop = asyncio.get_running_loop()
        send = partial(producer.send, topic, key=key, value=value, timestamp_ms=timestamp_ms, headers=list(headers))
        try:
            future = await loop.run_in_executor(self._executor, send)
        except KafkaError as err:
            raise KafkaUnavailable(f"cannot send to {topic}: {err}") from None
        acked = loop.create_future()
        future.add_callback(lambda metadata: loop.call_soon_threadsafe(_settle, acked, metadata, None))
        future.add_errback(lambda error: loop.call_soon_threadsafe(_settle, acked, None, error))
        try:
            return await asyncio.wait_for(acked, self.timeout_ms / 1000 + 1)
        except (KafkaError, asyncio.TimeoutError) as err:
            raise KafkaUnavailable(f"not acknowledged by Kafka: {err or type(err).__name__}") from None

    async def ready(self, topic: str) -> bool:
        """True when the broker answers and the topic has partitions."""
        try:
            producer = await self._connected_producer()
            partitions = await asyncio.get_running_loop().run_in_executor(
                self._executor, producer.partitions_for, topic)
        except (KafkaUnavailable, KafkaError):
            return False
        return bool(partitions)

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await asyncio.get_running_loop().run_in_executor(
                self._executor, partial(producer.close, timeout=self.timeout_ms / 1000))
        self._executor.shutdown(wait=False)


def _settle(future: asyncio.Future, result, error) -> None:
    if future.done():  # the awaiting request was cancelled (client went away)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
