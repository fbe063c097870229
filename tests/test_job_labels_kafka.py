"""Late labels on Kafka (issue 21): requests and responses on the inference topic, label messages on a topic of
their own (``kafka.topics.labels``), performance records on ``kafka.topics.performance``; the job killed mid-stream
with predictions waiting for their labels and labels waiting for their predictions, and restored from its last
checkpoint, exactly-once. A read-committed consumer sees each window's records as revisions 0, 1, ... each once,
the last final, and each final record equals scikit-learn's metrics over all of the window's pairs: the labels of
the requests read before the kill joined after it, so nothing waiting in the label join was lost or doubled."""
from __future__ import annotations

import json

import numpy as np
import pytest

from contract import formats, outputs

from streams import penguins

from devtools.processes import live_start_ms

from kafka_jobs import REPO, kafka_spec, latest_checkpoint, polled, produce, run_until, start, stats_consumer, write_spec
from labelled_streams import DELAY_MS, assert_metrics_equal_sklearn, by_window, expected_pairs, labelled_stream, \
    penguins_baseline

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(900)]

WINDOW_MS = 5_000
MAX_DELAY_MS = 3 * DELAY_MS[1]  # every label comes well within it, whichever topic is read ahead
METRICS = ["accuracy", "recall", "confusion"]


def _spec(bootstrap: str, tmp) -> tuple[dict, dict]:
    spec, topics = kafka_spec(REPO / "examples" / "penguins" / "monitor.yaml", bootstrap, WINDOW_MS, "exactly-once")
    topics.update({kind: f"{kind}-{topics['inference']}" for kind in ("labels", outputs.PERFORMANCE)})
    spec["kafka"]["topics"] = topics
    spec["baseline"] = penguins_baseline(tmp)
    spec["input"]["format"] = formats.THESIS
    spec["drift"] = {"metrics": {"js": {"threshold": 0.5}}}
    spec["ground_truth"] = {"max_delay": f"{MAX_DELAY_MS}ms", "metrics": METRICS, "update_interval": "2s"}
    return spec, topics


def _collect(consumers: dict, seen: dict) -> None:
    for kind, consumer in consumers.items():
        seen[kind] += polled(consumer)


def test_a_restart_with_labels_waiting_loses_and_doubles_nothing(kafka_broker, tmp_path):
    spec, topics = _spec(kafka_broker.bootstrap, tmp_path)
    config = write_spec(spec, tmp_path / "monitor.yaml")
    kafka_broker.create_topics(list(topics.values()), partitions=1)
    stream = penguins.generate(seed=6, stage_size=200, rate=40.0, start_ms=live_start_ms(), format=formats.THESIS)
    labelled = labelled_stream(stream, np.random.default_rng(6))
    lines = [(message["id"], message["time"], line) for message, line in
             ((json.loads(line), line) for line in stream.lines)]
    half = len(lines) // 2
    first_half_end = max(t for _, t, _ in lines[:half])
    early_labels = [label for label in labelled.labels if label[1] <= first_half_end]
    late_labels = [label for label in labelled.labels if label[1] > first_half_end]
    first_half_ids = {request_id for request_id, _, _ in lines[:half]}
    assert any(request_id in first_half_ids for request_id, _, _ in late_labels)  # predictions waiting at the kill
    windows = {t - t % WINDOW_MS for t in stream.time_ms.tolist()}
    consumers = {kind: stats_consumer(kafka_broker.bootstrap, topics[kind])
                 for kind in (outputs.PERFORMANCE, "dead_letter")}
    seen = {kind: [] for kind in consumers}
    checkpoints = tmp_path / "checkpoints"

    produce(kafka_broker.bootstrap, topics["inference"], lines[:half])
    produce(kafka_broker.bootstrap, topics["labels"], early_labels)
    job = start(config, kafka_broker.bootstrap, checkpoints, tmp_path / "first.log")
    run_until(job, lambda: bool(seen[outputs.PERFORMANCE] and latest_checkpoint(checkpoints)),
              lambda: _collect(consumers, seen), tmp_path / "first.log")
    restore = latest_checkpoint(checkpoints)

    flush_time = int(stream.time_ms.max()) + DELAY_MS[1] + MAX_DELAY_MS + 3 * WINDOW_MS  # past every final
    produce(kafka_broker.bootstrap, topics["inference"],
            lines[half:] + [("flush", flush_time, formats.encode(formats.THESIS, "flush", flush_time, [stream.rows[0]]))])
    produce(kafka_broker.bootstrap, topics["labels"],
            late_labels + [("flush-label", flush_time, formats.encode_label(formats.THESIS, "flush-label", flush_time, ["x"]))])
    job = start(config, kafka_broker.bootstrap, checkpoints, tmp_path / "second.log", restore=restore)

    def finals() -> set:
        return {r["window_start"] for r in seen[outputs.PERFORMANCE] if r["final"]}

    try:
        run_until(job, lambda: windows <= finals(), lambda: _collect(consumers, seen), tmp_path / "second.log")
    finally:
        for consumer in consumers.values():
            consumer.close()
    pairs = expected_pairs(stream, labelled, seen["dead_letter"], WINDOW_MS)
    for window_start, revisions in by_window(seen[outputs.PERFORMANCE]).items():  # each key once a revision
        assert sorted(revisions) == list(range(len(revisions))), window_start
        assert [any(r["final"] for r in revisions[n].values()) for n in sorted(revisions)] == \
            [False] * (len(revisions) - 1) + [True], window_start
        assert_metrics_equal_sklearn(revisions[max(revisions)], pairs[window_start], window_start)
