"""The canary example on Kafka (issue 22): the canary stream produced to the inference topic, the comparison
records read back from ``kafka.topics.comparison``: the canary's prediction column flagged in every window wholly inside
its stages, its accuracy judged worse in each final comparison."""
from __future__ import annotations

import json

import pytest

from contract import formats, outputs

from streams import canary

from devtools.processes import live_start_ms

from kafka_jobs import REPO, kafka_spec, polled, produce, run_until, start, stats_consumer, write_spec

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(900)]

WINDOW_MS = 5_000
RATE = 60.0  # requests/s: 300 a window, about 90 of them the canary's in its stages


def test_the_comparison_topic_carries_the_canarys_comparisons(kafka_broker, tmp_path):
    spec, topics = kafka_spec(REPO / "examples" / "canary" / "monitor.yaml", kafka_broker.bootstrap, WINDOW_MS,
                              "at-least-once")
    topics.update({kind: f"{kind}-{topics['inference']}" for kind in (outputs.PERFORMANCE, outputs.COMPARISON)})
    spec["kafka"]["topics"] = topics
    spec["baseline"] = str((REPO / "examples" / "canary" / spec["baseline"]).resolve())
    config = write_spec(spec, tmp_path / "monitor.yaml")
    kafka_broker.create_topics(list(topics.values()), partitions=1)
    stream = canary.generate(stage_size=600, rate=RATE, start_ms=live_start_ms())
    first = int(stream.time_ms[0])  # the record time (the job reads the event's own time)
    lines = [(json.loads(line)["id"], first, line) for line in stream.lines]
    flush_ms = int(stream.time_ms.max()) + canary.LABEL_DELAY_MAX_MS + 60_000  # past every window's final record
    instance = json.loads(stream.lines[0])["data"]["instances"][0]
    flush = formats.encode(formats.KSERVE_V1, "flush", flush_ms, [instance], version=canary.STABLE)
    produce(kafka_broker.bootstrap, topics["inference"], lines + [("flush", flush_ms, flush)])
    shared = {int(t - t % WINDOW_MS) for t, version in zip(stream.time_ms.tolist(), stream.version.tolist())
              if version == canary.CANARY}
    inside = {start for start in shared if all(canary.STAGE_KINDS[stage - 1] == "canary" for stage, t in
                                               zip(stream.stage.tolist(), stream.time_ms.tolist())
                                               if start <= t < start + WINDOW_MS)}
    consumer = stats_consumer(kafka_broker.bootstrap, topics[outputs.COMPARISON])
    seen: list[dict] = []

    def prediction_chi2() -> dict:
        return {r["window_start"]: r for r in seen if r["kind"] == "drift" and (r["feature"], r["metric"]) == ("prediction", "chi2")}

    def finals() -> dict:
        return {r["window_start"]: r for r in seen if r["kind"] == "performance" and r["final"]}

    job = start(config, kafka_broker.bootstrap, tmp_path / "checkpoints", tmp_path / "job.log")
    try:
        run_until(job, lambda: inside <= set(prediction_chi2()) & set(finals()),
                  lambda: seen.extend(polled(consumer)), tmp_path / "job.log")
    finally:
        consumer.close()
    drift = [r for r in seen if r["kind"] == "drift"]
    compared = {r["window_start"] for r in drift}
    assert inside <= compared <= shared  # a window astride a stage's edge may hold fewer than 30 of the canary's
    assert len(inside) >= 2
    flagged = {r["window_start"] for r in drift if r["feature"] == "prediction" and r["flagged"]}
    assert inside <= flagged  # by some metric: at a rate of 0.001 and ~100 of the canary's, not always by each
    assert all(finals()[start]["verdict"] == "worse" for start in inside)
