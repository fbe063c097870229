"""Kafka jobs the way the restart tests drive them: `mmon run --kafka` as a process group of its own, killed
with SIGKILL and started again from its last retained checkpoint; specs with their own topics and short windows;
requests produced with their event time as the record time; stats records collected per window."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Optional

import yaml
from kafka import KafkaConsumer, KafkaProducer

REPO = Path(__file__).resolve().parent.parent
KINDS = ("inference", "stats", "outliers", "drift", "dead_letter", "model_drift", "alerts")
DEADLINE_S = 300


def kafka_spec(example: Path, bootstrap: str, window_ms: int, guarantee: str, **window) -> tuple[dict, dict]:
    """The example's spec on topics of its own (returned by kind), short windows without idleness, checkpoints
    every 2 s, no metrics port; the model named apart (its own transactional ids)."""
    suffix = uuid.uuid4().hex[:8]
    spec = yaml.safe_load(example.read_text())
    spec["baseline"] = str(example.parent / spec["baseline"])
    spec["window"] = {**spec.get("window", {}), "duration": f"{window_ms}ms", "watermark_delay": "1s",
                      "idle_timeout": "0ms", **window}
    topics = {name: f"{name}-{suffix}" for name in KINDS}
    spec.setdefault("kafka", {}).update(bootstrap_servers=bootstrap, group_id=f"restart-{suffix}", topics=topics)
    spec.setdefault("job", {}).update(metrics_port=0, checkpoint_interval="2s", delivery_guarantee=guarantee)
    spec["model"]["name"] = f"{spec['model']['name']}-{suffix}"
    return spec, topics


def write_spec(spec: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


def start(config: Path, bootstrap: str, checkpoints: Path, log: Path, restore: Optional[Path] = None):
    command = [sys.executable, "-m", "mmon.cli", "run", "--config", str(config), "--kafka", bootstrap,
               "--checkpoint-dir", checkpoints.as_uri()]
    if restore is not None:
        command += ["--restore-from", str(restore)]
    return subprocess.Popen(command, cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def kill(job: subprocess.Popen) -> None:
    os.killpg(job.pid, signal.SIGKILL)
    job.wait(timeout=30)


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[str, int, str]]) -> None:
    """``(key, time_ms, value)`` records, each with its event time as the record time."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for key, time_ms, value in messages:
        producer.send(topic, key=key.encode(), value=value.encode(), timestamp_ms=time_ms)
    producer.flush()
    producer.close()


def latest_checkpoint(checkpoints: Path) -> Optional[Path]:
    done = sorted(checkpoints.glob("*/chk-*/_metadata"), key=lambda p: int(p.parent.name.split("-")[1]))
    return done[-1].parent if done else None


def stats_consumer(bootstrap: str, topic: str) -> KafkaConsumer:
    """A read-committed consumer of ``topic`` from its beginning: it sees each exactly-once window once."""
    return KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
                         isolation_level="read_committed")


def polled(consumer: KafkaConsumer) -> list[dict]:
    """The records of one poll (up to a second), parsed."""
    return [json.loads(record.value) for records in consumer.poll(timeout_ms=1000).values() for record in records]


def collect(consumer: KafkaConsumer, seen: dict, feature: str, counted: Callable[[dict], object] = lambda r: r["count"]) -> dict:
    """window_start -> ``counted`` of every stats record of ``feature`` received for it."""
    for value in polled(consumer):
        if value.get("feature") == feature:
            seen.setdefault(value["window_start"], []).append(counted(value))
    return seen


def checkpoint_number(checkpoints: Path) -> int:
    """The number of the latest retained checkpoint (0 before the first)."""
    latest = latest_checkpoint(checkpoints)
    return int(latest.name.split("-")[1]) if latest else 0


def run_until(job: subprocess.Popen, done: Callable[[], bool], step: Callable[[], object], log: Path) -> None:
    """Calls ``step`` until ``done`` holds (or `DEADLINE_S` passes, or the job ends), then kills the job."""
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline and not done() and job.poll() is None:
            step()
    finally:
        if job.poll() is None:
            kill(job)
    assert done(), log.read_text()[-3000:]
