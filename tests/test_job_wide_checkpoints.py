"""A local Kafka job checkpoints a wide model's open window, however large (issue 23).

Without ``--checkpoint-dir`` a local job used to keep its checkpoints in the JobManager's memory, at most 5 MB of
state per operator. A 1,000-feature model's open window held 7.9 MB in the router: every checkpoint failed, the
job restarted, and the local cluster lost its TaskManager on the way, so the output stalled for good (the wide
benchmark at 1,000 features). Now the job checkpoints to files in a scratch folder of its own.

One run on a real broker: 2,500 requests of a 400-feature model in one open 60 s window (8 MB of values in the
router's buffer, under its early-flush size), checkpoints every second. A checkpoint must complete with a state
file over the old 5 MB limit while the window is open; then a request past the window's end closes it, and its
statistics count every instance.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from kafka import KafkaConsumer

from contract import formats
from streams import wide

from kafka_jobs import REPO, kafka_spec, kill, polled, produce, write_spec

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(600)]

WIDTH = 400
INSTANCES = 2_500
WINDOW_MS = 60_000
STEP_MS = 20  # 2,500 requests over 50 s: one window
OLD_LIMIT_BYTES = 5 << 20
DEADLINE_S = 240


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    work = tmp_path_factory.mktemp("wide-checkpoints")
    return wide.make_model(WIDTH, seed=7, work=work, template=REPO / "examples" / "iris" / "monitor.yaml",
                           instances=INSTANCES, span_s=50.0)


def _big_checkpoint(scratch_root) -> bool:
    """A completed checkpoint (its ``_metadata`` written) holding a state file over the old limit."""
    for metadata in scratch_root.glob("mmon-checkpoints-*/*/chk-*/_metadata"):
        if any(f.stat().st_size > OLD_LIMIT_BYTES for f in metadata.parent.iterdir()):
            return True
    return False


def test_an_open_window_over_5_mb_is_checkpointed_and_then_emitted(kafka_broker, model, tmp_path):
    spec, topics = kafka_spec(model.spec_path, kafka_broker.bootstrap, WINDOW_MS, "at-least-once")
    spec["job"]["checkpoint_interval"] = "1s"
    kafka_broker.create_topics(list(topics.values()))
    config = write_spec(spec, tmp_path / "monitor.yaml")
    rows = np.round(model.stream.instances, 4).tolist()
    t0_ms = (int(time.time() * 1000) - 600_000) // WINDOW_MS * WINDOW_MS  # a window's start, ten minutes ago
    produce(kafka_broker.bootstrap, topics["inference"],
            ((f"r{i}", t0_ms + i * STEP_MS, formats.encode("thesis", f"r{i}", t0_ms + i * STEP_MS, [row]))
             for i, row in enumerate(rows)))
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    log = tmp_path / "job.log"
    job = subprocess.Popen([sys.executable, "-m", "mmon.cli", "run", "--config", str(config), "--kafka",
                            kafka_broker.bootstrap], cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                           start_new_session=True, env={**os.environ, "TMPDIR": str(scratch_root)})
    consumer = KafkaConsumer(topics["stats"], bootstrap_servers=kafka_broker.bootstrap, auto_offset_reset="earliest",
                             group_id=None)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not _big_checkpoint(scratch_root) and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _big_checkpoint(scratch_root), log.read_text()[-3000:]
        closing = t0_ms + WINDOW_MS + 2_000
        produce(kafka_broker.bootstrap, topics["inference"],
                [("close", closing, formats.encode("thesis", "close", closing, [rows[0]]))])
        counts = {}
        while len(counts) < WIDTH and job.poll() is None and time.monotonic() < deadline:
            counts.update({r["feature"]: r["count"] for r in polled(consumer)
                           if r.get("window_start") == t0_ms and "feature" in r})
    finally:
        consumer.close()
        if job.poll() is None:
            kill(job)
    assert len(counts) == WIDTH, log.read_text()[-3000:]
    assert set(counts.values()) == {INSTANCES}

