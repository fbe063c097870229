"""Consumes the job's four output topics from the beginning, in a background thread, while the run goes on.

The harness reads the running counts for its progress line and waits on predicates (the warm-up alert
seen, the last window emitted) with a deadline, instead of sleeping for a guessed time.
"""
from __future__ import annotations

import json
import time
from typing import Callable

from kafka import KafkaConsumer, TopicPartition

from contract import outputs
from contract.spec import TopicsSpec

from benchmarks.analysis import Outputs
from benchmarks.background import BackgroundWorker

KINDS = (outputs.STATS, outputs.OUTLIERS, outputs.DRIFT, outputs.DEAD_LETTER)  # a topic each (covariance: stats)


class OutputCollector(BackgroundWorker):
    def __init__(self, bootstrap: str, topics: TopicsSpec, poll_ms: int = 200):
        super().__init__("output-collector")
        self.bootstrap = bootstrap
        self._kind_of = {getattr(topics, kind): kind for kind in KINDS}
        self.poll_ms = poll_ms
        self.records: dict[str, list[dict]] = {kind: [] for kind in KINDS}
        self.undecodable = 0
        self.last_record_at = time.monotonic()
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                     client_id="mmon-bench-collector")
        except Exception as err:  # surfaced by wait_for / outputs in the main thread
            self._error = err
            return
        try:
            consumer.assign([TopicPartition(topic, p) for topic in self._kind_of
                             for p in sorted(consumer.partitions_for_topic(topic) or {0})])
            consumer.seek_to_beginning()
            while not self._stop.is_set():
                for partition, messages in consumer.poll(timeout_ms=self.poll_ms).items():
                    self._add(self._kind_of[partition.topic], messages)
        except Exception as err:
            self._error = err
        finally:
            consumer.close()

    def _add(self, kind: str, messages) -> None:
        for message in messages:
            try:
                self.records[kind].append(json.loads(message.value))
            except (ValueError, TypeError):
                self.undecodable += 1
        self.last_record_at = time.monotonic()

    def count(self, kind: str) -> int:
        return len(self.records[kind])

    def _check(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"output collector failed: {self._error!r}") from self._error

    def wait_for(self, condition: Callable[["OutputCollector"], bool], timeout_s: float,
                 alive: Callable[[], bool] = lambda: True, interval_s: float = 0.2) -> bool:
        """Poll ``condition(self)`` until true (True), the deadline passes or ``alive()`` turns false (False)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check()
            if condition(self):
                return True
            if not alive():
                return False
            time.sleep(interval_s)
        return condition(self)

    def wait_quiet(self, quiet_s: float, timeout_s: float) -> None:
        """Wait until no record has arrived for ``quiet_s`` (stragglers after the awaited one), bounded."""
        self.wait_for(lambda c: time.monotonic() - c.last_record_at >= quiet_s, timeout_s)

    def outputs(self) -> Outputs:
        self._check()
        return Outputs(**{kind: list(records) for kind, records in self.records.items()})
