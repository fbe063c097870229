"""Broker SIGKILL and restart under the running job (issue 10: "broker restart under the job").

One `mmon run --kafka` on a broker of this test's own (fixed ports and data dir, so the broker comes
back with its log segments). A first batch of requests (live event times, an hour ago) is sent and its
closed windows awaited; the broker is SIGKILLed, left down a few seconds, restarted on the same port and
data dir; a second batch continues the event times (its first window holds requests of both batches,
open at the kill), and a closing request moves the watermark past the last window. Every window of both
batches must then appear with its exact count and stats equal to numpy. At-least-once: a job restart from
its checkpoint may emit a window again, so each repeat must be an identical copy (but for ``emitted_at``).
Reported: the copies, Flink's restart count and the time from the broker's restart to the first stats
record of the second batch.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import yaml
from kafka import KafkaProducer

from contract import formats

from devtools.processes import live_start_ms, stop_group
from devtools.services import KafkaBroker, free_port, log_tail

from kafka_topics import OutputReader, read_topic
from prometheus_scrape import metric_values
from window_checks import assert_stats_equal_numpy, normal_rows

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "iris" / "monitor.yaml"
WINDOW_MS = 5_000
WATERMARK_DELAY_MS = 1_000
SPACING_MS = 350  # between consecutive requests' event times
BATCH = 50  # requests per batch: 17.5 s of event time, three to four windows each
OUTAGE_S = 5  # the broker is down this long (longer than the checkpoint interval and the idle timeout)
JOB_UP_S = 240  # job start and its first window on a busy two-core machine (~40 s when quiet)
STEP_S = 60  # a window closed by records already sent: within seconds when the job runs
RECOVERY_S = 240  # the second batch's windows after the broker's return, restarts included
RESTARTS_METRIC = "flink_jobmanager_job_numRestarts"
STAMP = "emitted_at"  # the egress's wall-clock stamp: the one field a re-emitted window may change


def _window(t: int) -> int:
    return t // WINDOW_MS * WINDOW_MS


class Stats(OutputReader):
    """The stats topic read as it fills (per-feature records and covariance records), with the monotonic
    time each record arrived."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(bootstrap, {"stats": topic})

    def windows(self, feature: str) -> set[int]:
        return {r["window_start"] for r in self.records["stats"] if r.get("feature") == feature}

    def first_arrival(self, feature: str, windows: set[int]) -> float:
        """When the first record of ``feature`` for one of ``windows`` arrived."""
        return min(at for at, r in zip(self.arrived["stats"], self.records["stats"])
                   if r.get("feature") == feature and r["window_start"] in windows)


def _send(bootstrap: str, topic: str, requests: list[tuple[str, int, list[float]]]) -> None:
    """The requests on the inference topic, acknowledged (a fresh producer: the broker may be new)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all", retries=5)
    try:
        for rid, t, row in requests:
            producer.send(topic, key=rid.encode(), value=formats.encode(formats.THESIS, rid, t, [row]).encode(),
                          timestamp_ms=t)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)


def _start_job(config: Path, bootstrap: str, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "mmon.cli", "run", "--config", str(config),
                                 "--kafka", bootstrap], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _copies(records: list[dict], key: str) -> dict[tuple, list[dict]]:
    """(key value, window start) -> the records emitted for it, ``emitted_at`` left out."""
    by_window: dict[tuple, list[dict]] = {}
    for record in records:
        if key in record:
            by_window.setdefault((record[key], record["window_start"]), []).append(
                {k: v for k, v in record.items() if k != STAMP})
    return by_window


def test_broker_sigkill_and_restart_under_the_job_loses_no_window(tmp_path):
    suffix = uuid.uuid4().hex[:8]
    broker = KafkaBroker(port=free_port(), controller_port=free_port(), data_dir=tmp_path / "kafka").start()
    job = stats = None
    timings: dict[str, Optional[float]] = {}
    log = tmp_path / "job.log"

    def context() -> str:
        return (f"timings {timings}\n--- job.log\n{log.read_text()[-4000:] if log.exists() else ''}"
                f"\n--- broker.log\n{log_tail(broker.log_path)}")

    try:
        topics = {name: f"restart-{name}-{suffix}" for name in ("inference", "stats", "outliers", "drift", "dead_letter")}
        broker.create_topics(topics.values())
        spec = yaml.safe_load(EXAMPLE.read_text())
        spec["baseline"] = str(EXAMPLE.parent / spec["baseline"])
        spec["window"].update(duration=f"{WINDOW_MS}ms", watermark_delay=f"{WATERMARK_DELAY_MS}ms", idle_timeout="3s")
        spec["kafka"].update(bootstrap_servers=broker.bootstrap, group_id=f"restart-{suffix}", topics=topics)
        spec["job"].update(metrics_port=free_port(), checkpoint_interval="2s", delivery_guarantee="at-least-once")
        (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(spec))
        features = spec["input"]["features"]
        feature = features[0]

        T = live_start_ms()  # a whole minute: window-aligned
        rows = normal_rows(2 * BATCH + 1, seed=12)
        requests = [(f"r{k:03d}", T + SPACING_MS * k, rows[k]) for k in range(2 * BATCH)]
        first, second = requests[:BATCH], requests[BATCH:]
        closing = ("closing", _window(requests[-1][1]) + WINDOW_MS + 2 * WATERMARK_DELAY_MS, rows[-1])
        expected: dict[int, list[list[float]]] = {}
        for _, t, row in requests:
            expected.setdefault(_window(t), []).append(row)
        # batch 1 closes the windows that end (plus the delay) before its last time; the next one spans the kill
        closed_first = {w for w in expected if w + WINDOW_MS + WATERMARK_DELAY_MS <= first[-1][1]}
        open_at_kill = _window(first[-1][1])
        assert open_at_kill == _window(second[0][1]) and open_at_kill not in closed_first
        second_windows = set(expected) - closed_first

        stats = Stats(broker.bootstrap, topics["stats"])
        job = _start_job(tmp_path / "monitor.yaml", broker.bootstrap, log)
        _send(broker.bootstrap, topics["inference"], first)
        timings["first batch's windows"] = stats.wait_for(lambda: closed_first <= stats.windows(feature), JOB_UP_S)
        assert timings["first batch's windows"] is not None, "the first batch's windows never came: " + context()
        assert stats.windows(feature) == closed_first, context()

        os.kill(broker.pid, signal.SIGKILL)
        broker.process.wait(timeout=10)
        killed = time.monotonic()
        time.sleep(OUTAGE_S)  # the outage itself
        restart_began = time.monotonic()
        broker.start()
        restarted = time.monotonic()
        timings["broker restart"] = restarted - restart_began
        timings["outage (kill to broker ready)"] = restarted - killed
        assert job.poll() is None, "the job exited while the broker was down: " + context()

        _send(broker.bootstrap, topics["inference"], second + [closing])
        timings["second batch sent"] = time.monotonic() - restarted
        first_of_second = stats.wait_for(lambda: stats.windows(feature) & second_windows, RECOVERY_S)
        assert first_of_second is not None, "no window of the second batch after the broker's restart: " + context()
        arrived = stats.first_arrival(feature, second_windows)
        timings["broker ready to first stats of the second batch"] = arrived - restarted
        timings["all windows"] = stats.wait_for(lambda: set(expected) <= stats.windows(feature), STEP_S)
        assert timings["all windows"] is not None, "windows missing: " + context()
        # the other features' windows and the covariance records come with the same firing; let them land
        everything = len(expected) * len(features)
        stats.wait_for(lambda: sum(1 for r in stats.records["stats"] if "feature" in r) >= everything, STEP_S)

        port = spec["job"]["metrics_port"]
        restarts = metric_values(port, RESTARTS_METRIC)
        alive = job.poll() is None
        emitted = read_topic(broker.bootstrap, topics["stats"])
        dead_letters = read_topic(broker.bootstrap, topics["dead_letter"])
    finally:
        if job is not None:
            stop_group(job)
        if stats is not None:
            stats.close()
        broker.stop()

    by_feature = _copies(emitted, "feature")
    by_statistic = _copies(emitted, "statistic")
    repeated = {key: len(copies) for key, copies in {**by_feature, **by_statistic}.items() if len(copies) > 1}
    counts = {w - T: len(rows_) for w, rows_ in sorted(expected.items())}
    print(f"\nbroker restart under the job: windows (s after T -> requests) {counts}; {len(emitted)} stats-topic "
          f"records for {len(by_feature)} (feature, window) and {len(by_statistic)} (statistic, window) pairs; "
          f"repeated {repeated or 'none'}; numRestarts {restarts}; dead letters {len(dead_letters)}; "
          f"timings (s) { {k: None if v is None else round(v, 1) for k, v in timings.items()} }")

    assert alive, "the job process ended: " + context()
    assert restarts, f"no {RESTARTS_METRIC} on port {port}"
    assert not dead_letters, dead_letters[:3]
    # every window of both batches, for every feature, and none other (the closing request's stays open)
    assert set(by_feature) == {(f, w) for f in features for w in expected}, context()
    for (name, start), copies in by_feature.items():
        assert all(copy == copies[0] for copy in copies), f"{name} window T+{start - T} re-emitted differently"
        x = np.array(expected[start])[:, features.index(name)]
        assert len(x) > 1  # every window holds several requests, so its stddev is checked too
        assert_stats_equal_numpy(copies[0], x, WINDOW_MS)
    for (name, start), copies in by_statistic.items():
        assert start in expected and all(copy == copies[0] for copy in copies), (name, start - T)
    # a window emitted more than once means the job restarted and replayed from its checkpoint
    if repeated:
        assert restarts != [0.0], repeated
