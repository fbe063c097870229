"""Restart from a checkpoint on Kafka: the job is killed mid-stream, started again from its last
retained checkpoint, and no window is lost or short (at-least-once: a window may be emitted twice,
never missed, and the window open at the kill keeps the instances counted before it; exactly-once:
a read-committed consumer sees every window exactly once)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer

from contract import formats

from streams import iris

from devtools.processes import live_start_ms

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "iris" / "monitor.yaml"
WINDOW_MS = 5_000
JOIN_TIMEOUT_MS = 5_000
DEADLINE_S = 300


def _start(config: Path, bootstrap: str, checkpoints: Path, log: Path, restore: Path | None = None):
    command = [sys.executable, "-m", "mmon.cli", "run", "--config", str(config), "--kafka", bootstrap,
               "--checkpoint-dir", checkpoints.as_uri()]
    if restore is not None:
        command += ["--restore-from", str(restore)]
    return subprocess.Popen(command, cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def _kill(job: subprocess.Popen) -> None:
    os.killpg(job.pid, signal.SIGKILL)
    job.wait(timeout=30)


def _produce(bootstrap: str, topic: str, requests) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for rid, t, row in requests:
        producer.send(topic, key=rid.encode(), value=formats.encode(formats.THESIS, rid, t, [row]).encode(),
                      timestamp_ms=t)
    producer.flush()
    producer.close()


def _latest_checkpoint(checkpoints: Path) -> Path | None:
    done = sorted(checkpoints.glob("*/chk-*/_metadata"), key=lambda p: int(p.parent.name.split("-")[1]))
    return done[-1].parent if done else None


def _collect_counts(consumer: KafkaConsumer, seen: dict, feature: str, counted=lambda r: r["count"]) -> dict:
    """window_start -> ``counted`` of every stats record of ``feature`` received for it."""
    for message in consumer.poll(timeout_ms=1000).values():
        for record in message:
            value = json.loads(record.value)
            if value.get("feature") == feature:
                seen.setdefault(value["window_start"], []).append(counted(value))
    return seen


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_restart_from_checkpoint_loses_no_window(kafka_broker, tmp_path, guarantee):
    suffix = uuid.uuid4().hex[:8]
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["baseline"] = str(EXAMPLE.parent / spec["baseline"])
    spec["window"].update(duration=f"{WINDOW_MS}ms", watermark_delay="1s", idle_timeout="0ms")
    topics = {name: f"{name}-{suffix}" for name in ("inference", "stats", "outliers", "drift", "dead_letter")}
    spec["kafka"].update(bootstrap_servers=kafka_broker.bootstrap, group_id=f"restart-{suffix}", topics=topics)
    spec["job"].update(metrics_port=0, checkpoint_interval="2s", delivery_guarantee=guarantee)
    spec["model"]["name"] = f"iris-{suffix}"  # its own transactional-id prefix
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(spec))
    kafka_broker.create_topics(list(topics.values()), partitions=1)
    feature = spec["input"]["features"][0]

    stream = iris.generate(seed=9, stage_size=200, rates=(40.0,) * 5, start_ms=live_start_ms())
    requests = list(zip(stream.ids.tolist(), stream.time_ms.tolist(), stream.instances.tolist()))
    half = len(requests) // 2
    expected = {}
    for _, t, _ in requests:
        expected[t // WINDOW_MS * WINDOW_MS] = expected.get(t // WINDOW_MS * WINDOW_MS, 0) + 1
    consumer = KafkaConsumer(topics["stats"], bootstrap_servers=kafka_broker.bootstrap,
                             auto_offset_reset="earliest", group_id=None, isolation_level="read_committed")
    checkpoints = tmp_path / "checkpoints"
    seen: dict = {}

    _produce(kafka_broker.bootstrap, topics["inference"], requests[:half])
    job = _start(config, kafka_broker.bootstrap, checkpoints, tmp_path / "first.log")
    deadline = time.monotonic() + DEADLINE_S
    try:  # first run: wait for a window and a checkpoint taken after it
        while time.monotonic() < deadline and not (seen and _latest_checkpoint(checkpoints)):
            _collect_counts(consumer, seen, feature)
    finally:
        _kill(job)
    restore = _latest_checkpoint(checkpoints)
    assert restore is not None and seen, (tmp_path / "first.log").read_text()[-3000:]
    assert set(seen) < set(expected)  # stopped mid-stream

    flush = ("flush", requests[-1][1] + 3 * WINDOW_MS, requests[0][2])  # moves the watermark past the last window
    _produce(kafka_broker.bootstrap, topics["inference"], requests[half:] + [flush])
    job = _start(config, kafka_broker.bootstrap, checkpoints, tmp_path / "second.log", restore=restore)
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline and not set(expected) <= set(seen):
            _collect_counts(consumer, seen, feature)
    finally:
        _kill(job)
        consumer.close()
    assert set(seen) == set(expected), (tmp_path / "second.log").read_text()[-3000:]
    # the window open at the kill resumed from the checkpointed state: every count is complete
    assert {start: max(counts) for start, counts in seen.items()} == expected
    if guarantee == "exactly-once":  # no window emitted twice, none from the killed run's open transaction
        assert {start: counts for start, counts in seen.items()} == {start: [n] for start, n in expected.items()}


def test_restart_resumes_the_response_join(kafka_broker, tmp_path):
    """The penguins stream (requests and responses, some responses before their requests, some never) killed
    mid-stream and restored, exactly-once: every window's prediction column holds exactly the joined and the
    missing predictions, so the requests and responses waiting in the join at the kill were restored, and the
    watermark hold with them (a request released late would be dead-lettered and missing from its window)."""
    from streams import penguins

    suffix = uuid.uuid4().hex[:8]
    penguins_spec = REPO / "examples" / "penguins" / "monitor.yaml"
    spec = yaml.safe_load(penguins_spec.read_text())
    spec["baseline"] = str(penguins_spec.parent / spec["baseline"])
    spec["input"]["format"] = formats.THESIS
    spec["output"]["join_timeout"] = f"{JOIN_TIMEOUT_MS}ms"
    spec["window"].update(duration=f"{WINDOW_MS}ms", watermark_delay="1s", idle_timeout="0ms")
    topics = {name: f"{name}-{suffix}" for name in ("inference", "stats", "outliers", "drift", "dead_letter")}
    spec["kafka"].update(bootstrap_servers=kafka_broker.bootstrap, group_id=f"restart-{suffix}", topics=topics)
    spec["job"].update(metrics_port=0, checkpoint_interval="2s", delivery_guarantee="exactly-once")
    spec["model"]["name"] = f"penguins-{suffix}"
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(spec))
    kafka_broker.create_topics(list(topics.values()), partitions=1)

    stream = penguins.generate(seed=6, stage_size=200, rate=40.0, start_ms=live_start_ms(),
                                     format=formats.THESIS)
    windows = stream.time_ms - stream.time_ms % WINDOW_MS
    expected = {int(w): (int((stream.answered & (windows == w)).sum()), int((~stream.answered & (windows == w)).sum()))
                for w in set(windows.tolist())}
    lines = [(json.loads(line), line) for line in stream.lines]
    half = len(lines) // 2
    first_half_end = max(message["time"] for message, _ in lines[:half])
    waiting = [t for t, answered in zip(stream.time_ms, stream.answered)
               if not answered and first_half_end - JOIN_TIMEOUT_MS < t <= first_half_end]
    assert waiting  # requests without a response still waiting in the join when the first run is killed
    consumer = KafkaConsumer(topics["stats"], bootstrap_servers=kafka_broker.bootstrap,
                             auto_offset_reset="earliest", group_id=None, isolation_level="read_committed")
    checkpoints = tmp_path / "checkpoints"
    seen: dict = {}
    counted = lambda record: (record["count"], record["missing"])  # noqa: E731

    def produce(part):
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=5)
        for message, line in part:
            producer.send(topics["inference"], key=message["id"].encode(), value=line.encode(),
                          timestamp_ms=message["time"])
        producer.flush()
        producer.close()

    produce(lines[:half])
    job = _start(config, kafka_broker.bootstrap, checkpoints, tmp_path / "first.log")
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline and not (seen and _latest_checkpoint(checkpoints)):
            _collect_counts(consumer, seen, "prediction", counted)
    finally:
        _kill(job)
    restore = _latest_checkpoint(checkpoints)
    assert restore is not None and seen, (tmp_path / "first.log").read_text()[-3000:]
    assert set(seen) < set(expected)

    flush_time = int(stream.time_ms.max()) + 3 * WINDOW_MS + JOIN_TIMEOUT_MS  # past every window and join timeout
    flush = json.loads(formats.encode(formats.THESIS, "flush", flush_time, [stream.rows[0]]))
    produce(lines[half:] + [(flush, json.dumps(flush))])
    job = _start(config, kafka_broker.bootstrap, checkpoints, tmp_path / "second.log", restore=restore)
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline and not set(expected) <= set(seen):
            _collect_counts(consumer, seen, "prediction", counted)
    finally:
        _kill(job)
        consumer.close()
    assert {start: counts for start, counts in seen.items()} == {start: [n] for start, n in expected.items()}, (
        tmp_path / "second.log").read_text()[-3000:]
