"""Consumes the job's four output topics from the beginning, in a background thread, while the run goes on.

The harness reads the running counts for its progress line and waits on predicates (the warm-up alert
seen, the last window emitted) with a deadline, instead of sleeping for a guessed time.

Only the ``live`` kinds are decoded as they arrive; the stats are consumed live whatever ``live`` says, to count
the windows, and kept undecoded when they are not live. The others are counted from their topics' end offsets
while the run goes on and read once, by `OutputCollector.outputs`, after it: on a two-core machine, decoding every
output record as the job writes it took up to 0.44 of a core from the job it measures (the wide benchmark, 1,000
features), which the embedded run, whose outputs are files read afterwards, does not pay. Nor are the records'
CRCs checked: kafka-python computes CRC-32C in pure Python, at 10 MB/s here, and the 1,000-feature run's stats
alone are 46.5 MB (4.5 CPU-seconds of a 15 s drain); the broker, local here, checks each batch it receives.
"""
from __future__ import annotations

import collections
import json
import re
import time
from typing import Callable, Iterable, Optional

from kafka import KafkaConsumer, TopicPartition

from contract import outputs
from contract.spec import TopicsSpec

from benchmarks.analysis import Outputs
from benchmarks.background import BackgroundWorker

KINDS = (outputs.STATS, outputs.OUTLIERS, outputs.DRIFT, outputs.DEAD_LETTER)  # a topic each (covariance: stats)
OFFSETS_EVERY_S = 0.5
"""How often the end offsets of the kinds not decoded live are read (a metadata request, not their records)."""
STATS_HEAD_BYTES = 1024
WINDOW_END = re.compile(rb'"window_end":(-?\d+)')
READ_TIMEOUT_S = 300.0
"""The bound on reading the deferred kinds' records after the run."""


class OutputCollector(BackgroundWorker):
    def __init__(self, bootstrap: str, topics: TopicsSpec, poll_ms: int = 200, live: Iterable[str] = KINDS):
        super().__init__("output-collector")
        self.bootstrap = bootstrap
        self._kind_of = {getattr(topics, kind): kind for kind in KINDS}
        self.live = frozenset(live)
        self.consumed = self.live | {outputs.STATS}  # the stats are consumed live always, to count the windows
        self.poll_ms = poll_ms
        self.records: dict[str, list[dict]] = {kind: [] for kind in KINDS}
        self._raw_stats: list[bytes] = []
        """The stats records' values while the stats are not a live kind: decoded by `outputs`."""
        self.stats_per_window_end: collections.Counter = collections.Counter()
        """Per-feature stats records by ``window_end`` (a window is complete when it has one per feature)."""
        self.written: dict[str, int] = {kind: 0 for kind in KINDS if kind not in self.consumed}
        self.undecodable = 0
        self.last_record_at = time.monotonic()
        self._error: BaseException | None = None

    def _consumer(self, client_id: str) -> KafkaConsumer:
        return KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                             client_id=client_id, check_crcs=False)

    def _partitions(self, consumer: KafkaConsumer, kinds: Iterable[str]) -> list[TopicPartition]:
        wanted = set(kinds)
        return [TopicPartition(topic, p) for topic, kind in self._kind_of.items() if kind in wanted
                for p in sorted(consumer.partitions_for_topic(topic) or {0})]

    def _run(self) -> None:
        try:
            consumer = self._consumer("mmon-bench-collector")
        except Exception as err:  # surfaced by wait_for / outputs in the main thread
            self._error = err
            return
        try:
            consumer.assign(self._partitions(consumer, self.consumed))
            consumer.seek_to_beginning()
            counted = self._partitions(consumer, self.written)
            offsets_at = 0.0
            while not self._stop.is_set():
                for partition, messages in consumer.poll(timeout_ms=self.poll_ms).items():
                    self._add(self._kind_of[partition.topic], messages)
                if counted and time.monotonic() - offsets_at >= OFFSETS_EVERY_S:
                    self._count_written(consumer.end_offsets(counted))
                    offsets_at = time.monotonic()
        except Exception as err:
            self._error = err
        finally:
            consumer.close()

    def _add(self, kind: str, messages) -> None:
        for message in messages:
            if kind not in self.live:  # the stats, kept undecoded
                self._raw_stats.append(message.value)
                self._count_window(message.value[:STATS_HEAD_BYTES])
                continue
            record = self._decode(message.value)
            if record is None:
                continue
            self.records[kind].append(record)
            if kind == outputs.STATS and "feature" in record:
                self.stats_per_window_end[record.get("window_end")] += 1
        self.last_record_at = time.monotonic()

    def _count_window(self, head: bytes) -> None:
        """Counts a per-feature stats record by the ``window_end`` its first bytes name (the encoder writes the
        record's identity first), without decoding the whole record."""
        window_end = WINDOW_END.search(head)
        if window_end and b'"feature":' in head:
            self.stats_per_window_end[int(window_end.group(1))] += 1

    def _count_written(self, end_offsets: dict[TopicPartition, int]) -> None:
        totals = collections.Counter()
        for partition, offset in end_offsets.items():
            totals[self._kind_of[partition.topic]] += offset
        if any(totals[kind] != self.written[kind] for kind in self.written):
            self.written.update(totals)
            self.last_record_at = time.monotonic()

    def count(self, kind: str) -> int:
        """Records of ``kind`` so far: consumed (a live kind, or the stats) or written to its topic (the end
        offsets' sum)."""
        if kind in self.live:
            return len(self.records[kind])
        return len(self._raw_stats) if kind == outputs.STATS else self.written[kind]

    def windows(self, n_features: int) -> int:
        return sum(self.stats_per_window_end.values()) // n_features

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
        """Every record so far: the live kinds' as decoded, the others read now up to their end offsets."""
        self._check()
        records = {kind: list(decoded) for kind, decoded in self.records.items()}
        if outputs.STATS not in self.live:
            records[outputs.STATS] = [r for r in map(self._decode, list(self._raw_stats)) if r is not None]
        if self.written:
            records.update(self._read_deferred())
        return Outputs(**records)

    def _read_deferred(self, timeout_s: float = READ_TIMEOUT_S) -> dict[str, list[dict]]:
        deadline = time.monotonic() + timeout_s
        consumer = self._consumer("mmon-bench-reader")
        try:
            partitions = self._partitions(consumer, self.written)
            consumer.assign(partitions)
            consumer.seek_to_beginning()
            remaining = {p: end for p, end in consumer.end_offsets(partitions).items() if end > 0}
            records: dict[str, list[dict]] = {kind: [] for kind in self.written}
            while remaining:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"output collector: topics not read to their end within {timeout_s:.0f} s")
                for partition, messages in consumer.poll(timeout_ms=self.poll_ms).items():
                    for message in messages:
                        if partition in remaining and message.offset < remaining[partition]:
                            record = self._decode(message.value)
                            if record is not None:
                                records[self._kind_of[partition.topic]].append(record)
                    if partition in remaining and consumer.position(partition) >= remaining[partition]:
                        del remaining[partition]
            return records
        finally:
            consumer.close()

    def _decode(self, value: bytes) -> Optional[dict]:
        try:
            return json.loads(value)
        except (ValueError, TypeError):
            self.undecodable += 1
            return None
