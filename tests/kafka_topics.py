"""Kafka topics read by the tests: `OutputReader` (topics read as they fill) and `read_topic` (one topic
read whole, from the beginning to its end offset)."""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Optional

from kafka import KafkaConsumer, TopicPartition


class OutputReader:
    """Topics read as they fill: ``records[kind]`` (parsed JSON values), ``arrived[kind]`` (the monotonic
    time each of those records arrived, index for index), `wait_for` (poll until a condition holds) and
    `drain`. ``topics`` maps a kind (e.g. "stats") to its topic."""

    def __init__(self, bootstrap: str, topics: dict[str, str]):
        self.kind_of = {topic: kind for kind, topic in topics.items()}
        self.records: dict[str, list[dict]] = {kind: [] for kind in topics}
        self.arrived: dict[str, list[float]] = {kind: [] for kind in topics}
        self.consumer = KafkaConsumer(*topics.values(), bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                      group_id=None)

    def poll(self, timeout_ms: int = 500) -> int:
        batches = self.consumer.poll(timeout_ms=timeout_ms)
        arrived = time.monotonic()
        for messages in batches.values():
            for message in messages:
                kind = self.kind_of[message.topic]
                self.records[kind].append(json.loads(message.value))
                self.arrived[kind].append(arrived)
        return sum(len(messages) for messages in batches.values())

    def wait_for(self, condition: Callable[[], Any], timeout_s: float) -> Optional[float]:
        """Seconds until ``condition()`` held, or None if it did not within ``timeout_s``."""
        started = time.monotonic()
        while not condition():
            if time.monotonic() - started > timeout_s:
                return None
            self.poll()
        return time.monotonic() - started

    def drain(self) -> None:
        """Read until a poll finds nothing new (a restarted job would be repeating its output)."""
        while self.poll(timeout_ms=2000):
            pass

    def close(self) -> None:
        self.consumer.close()


def read_topic(bootstrap: str, topic: str, value: Callable[[Any], Any] = lambda record: json.loads(record.value),
               timeout_s: float = 60) -> list:
    """``value(record)`` of every record of the topic's single partition, from the beginning to its end
    offset (bounded by ``timeout_s``); by default the parsed JSON value."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition])[partition]
        values, deadline = [], time.monotonic() + timeout_s
        while consumer.position(partition) < end and time.monotonic() < deadline:
            values += [value(record) for record in consumer.poll(timeout_ms=500).get(partition, [])]
        assert consumer.position(partition) >= end, f"read {len(values)} of {end} records of {topic}"
        return values
    finally:
        consumer.close()
