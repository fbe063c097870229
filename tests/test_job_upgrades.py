"""Restores under a changed spec on a real broker (issue 20): the job killed after a checkpoint, then started
from it with ``--restore-from`` and another spec, as Kubernetes does on every change of a ModelMonitor.

- migratable: Iris 4 -> 3 features (``petal_width`` dropped) with the window [W, W + 60 s) half full at the
  checkpoint: the window comes out once (exactly-once), with the 600 instances of both runs in each remaining
  feature and their exact means (before: 700 instances, the buffered values read three to a row, and the
  dropped column's values in the others);
- incompatible: ``window.duration`` 60 s -> 15 s: refused at start, naming the change and the way forward
  (before: 300 instances in a 15 s window where 150 belong, and the next window never emitted).

The compatible class (``output.join_timeout`` 10 s -> 20 s with requests waiting in the join) is the
restart test of the response join, tests/test_job_restart.py. Instances are objects keyed by feature name, as
a model logs them whatever the spec monitors: the records after the checkpoint, read again by the restored
job, are valid under the new spec too.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from contract import formats

from devtools.processes import live_start_ms

from kafka_jobs import (REPO, checkpoint_number, kafka_spec, latest_checkpoint, polled, produce, run_until, start,
                        stats_consumer, write_spec)

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(600)]

EXAMPLE = REPO / "examples" / "iris" / "monitor.yaml"
WINDOW_MS = 60_000
REFUSAL_TIMEOUT_S = 180


def _requests(names: list[str], times: list[int], seed: int) -> list[tuple[str, int, str, dict]]:
    """One request per time, its instance an object of seeded Iris-like values keyed by ``names``."""
    rng = np.random.default_rng(seed)
    rows = [dict(zip(names, np.round(rng.normal((5.8, 3.0, 3.8, 1.2), 0.4), 2).tolist())) for _ in times]
    return [(f"r{seed}-{i}", t, formats.encode(formats.THESIS, f"r{seed}-{i}", t, [row]), row)
            for i, (t, row) in enumerate(zip(times, rows))]


def _gather(consumer, seen: dict) -> None:
    """(feature, window_start) -> every stats record received for it."""
    for value in polled(consumer):
        if "feature" in value:  # not a covariance record
            seen.setdefault((value["feature"], value["window_start"]), []).append(value)


def _killed_after_a_checkpoint(config, broker, checkpoints, log, consumer, seen: dict, checkpoints_after: int = 2):
    """Starts the job and kills it once the first window is out and ``checkpoints_after`` more checkpoints are
    done (the open window's first half is then in the last one); returns that checkpoint."""
    job = start(config, broker, checkpoints, log)
    marks: dict = {}

    def done() -> bool:
        if not seen:
            return False
        marks.setdefault("window_out", checkpoint_number(checkpoints))
        return checkpoint_number(checkpoints) >= marks["window_out"] + checkpoints_after

    run_until(job, done, lambda: _gather(consumer, seen), log)
    return latest_checkpoint(checkpoints)


def test_a_dropped_feature_leaves_the_open_window_exact(kafka_broker, tmp_path):
    spec, topics = kafka_spec(EXAMPLE, kafka_broker.bootstrap, WINDOW_MS, "exactly-once")
    config = write_spec(spec, tmp_path / "monitor.yaml")
    names = list(spec["input"]["features"])
    spec["input"]["features"] = names[:3]  # petal_width dropped
    fewer = write_spec(spec, tmp_path / "three.yaml")
    kafka_broker.create_topics(list(topics.values()), partitions=1)
    w = live_start_ms() + WINDOW_MS
    warm_up = _requests(names, [w - WINDOW_MS + 1_000 * i for i in range(20)], seed=1)
    first = _requests(names, [w + 100 * i for i in range(300)], seed=2)
    second = _requests(names, [w + WINDOW_MS // 2 + 100 * i for i in range(300)], seed=3)
    flush = _requests(names, [w + WINDOW_MS + 3_000], seed=4)  # closes [w, w + 60 s)
    consumer = stats_consumer(kafka_broker.bootstrap, topics["stats"])
    checkpoints, seen = tmp_path / "checkpoints", {}

    produce(kafka_broker.bootstrap, topics["inference"], [r[:3] for r in warm_up + first])
    restore = _killed_after_a_checkpoint(config, kafka_broker.bootstrap, checkpoints, tmp_path / "first.log",
                                         consumer, seen)
    assert not any(start == w for _, start in seen)  # the window was open at the kill
    produce(kafka_broker.bootstrap, topics["inference"], [r[:3] for r in second + flush])
    job = start(fewer, kafka_broker.bootstrap, checkpoints, tmp_path / "second.log", restore=restore)
    try:
        run_until(job, lambda: all((name, w) in seen for name in names[:3]), lambda: _gather(consumer, seen),
                  tmp_path / "second.log")
    finally:
        consumer.close()
    rows = [row for *_, row in first + second]
    for name in names[:3]:
        (record,) = seen[(name, w)]  # once
        values = np.array([row[name] for row in rows])
        assert record["count"] == 600 and record["missing"] == 0
        assert record["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert (record["min"], record["max"]) == (values.min(), values.max())
    assert ("petal_width", w) not in seen
    assert "input.features: " in (tmp_path / "second.log").read_text()
    assert "(migratable: removed petal_width" in (tmp_path / "second.log").read_text()


def test_a_shorter_window_is_refused_with_the_way_forward(kafka_broker, tmp_path):
    spec, topics = kafka_spec(EXAMPLE, kafka_broker.bootstrap, WINDOW_MS, "at-least-once")
    config = write_spec(spec, tmp_path / "monitor.yaml")
    spec["window"]["duration"] = "15s"
    shorter = write_spec(spec, tmp_path / "shorter.yaml")
    kafka_broker.create_topics(list(topics.values()), partitions=1)
    w = live_start_ms() + WINDOW_MS
    names = list(spec["input"]["features"])
    requests = _requests(names, [w - WINDOW_MS + 1_000 * i for i in range(5)] + [w + 100 * i for i in range(20)], 5)
    produce(kafka_broker.bootstrap, topics["inference"], [r[:3] for r in requests])
    consumer = stats_consumer(kafka_broker.bootstrap, topics["stats"])
    checkpoints, seen = tmp_path / "checkpoints", {}
    restore = _killed_after_a_checkpoint(config, kafka_broker.bootstrap, checkpoints, tmp_path / "first.log",
                                         consumer, seen, checkpoints_after=1)
    consumer.close()

    refused = subprocess.run(
        [sys.executable, "-m", "mmon.cli", "run", "--config", str(shorter), "--kafka", kafka_broker.bootstrap,
         "--checkpoint-dir", checkpoints.as_uri(), "--restore-from", str(restore)],
        cwd=REPO, capture_output=True, text=True, timeout=REFUSAL_TIMEOUT_S)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "window.duration: 60000ms -> 15000ms (incompatible: an open window cannot be re-cut" in refused.stderr
    assert "flink stop --drain" in refused.stderr and "without --restore-from" in refused.stderr
