"""Restart from a checkpoint on Kafka: the job is killed mid-stream, started again from its last retained
checkpoint, and no window is lost or short (at-least-once: a window may be emitted twice, never missed, and
the window open at the kill keeps the instances counted before it; exactly-once: a read-committed consumer
sees every window exactly once). The restart with requests waiting in the response join also lengthens the
join's timeout (issue 20, finding 1), a compatible spec change."""
from __future__ import annotations

import json

import pytest

from contract import formats

from streams import iris

from devtools.processes import live_start_ms

from kafka_jobs import (REPO, collect, kafka_spec, latest_checkpoint, produce, run_until, start, stats_consumer,
                        write_spec)

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(900)]

EXAMPLE = REPO / "examples" / "iris" / "monitor.yaml"
WINDOW_MS = 5_000
JOIN_TIMEOUT_MS, LONGER_JOIN_TIMEOUT_MS = 10_000, 20_000


def _iris_request(request) -> tuple[str, int, str]:
    rid, t, row = request
    return rid, t, formats.encode(formats.THESIS, rid, t, [row])


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_restart_from_checkpoint_loses_no_window(kafka_broker, tmp_path, guarantee):
    spec, topics = kafka_spec(EXAMPLE, kafka_broker.bootstrap, WINDOW_MS, guarantee)
    config = write_spec(spec, tmp_path / "monitor.yaml")
    kafka_broker.create_topics(list(topics.values()), partitions=1)
    feature = spec["input"]["features"][0]

    stream = iris.generate(seed=9, stage_size=200, rates=(40.0,) * 5, start_ms=live_start_ms())
    requests = list(zip(stream.ids.tolist(), stream.time_ms.tolist(), stream.instances.tolist()))
    half = len(requests) // 2
    expected = {}
    for _, t, _ in requests:
        expected[t // WINDOW_MS * WINDOW_MS] = expected.get(t // WINDOW_MS * WINDOW_MS, 0) + 1
    consumer = stats_consumer(kafka_broker.bootstrap, topics["stats"])
    checkpoints = tmp_path / "checkpoints"
    seen: dict = {}

    produce(kafka_broker.bootstrap, topics["inference"], map(_iris_request, requests[:half]))
    job = start(config, kafka_broker.bootstrap, checkpoints, tmp_path / "first.log")
    # first run: wait for a window and a checkpoint taken after it
    run_until(job, lambda: bool(seen and latest_checkpoint(checkpoints)), lambda: collect(consumer, seen, feature),
              tmp_path / "first.log")
    restore = latest_checkpoint(checkpoints)
    assert set(seen) < set(expected)  # stopped mid-stream

    flush = ("flush", requests[-1][1] + 3 * WINDOW_MS, requests[0][2])  # moves the watermark past the last window
    produce(kafka_broker.bootstrap, topics["inference"], map(_iris_request, requests[half:] + [flush]))
    job = start(config, kafka_broker.bootstrap, checkpoints, tmp_path / "second.log", restore=restore)
    try:
        run_until(job, lambda: set(expected) <= set(seen), lambda: collect(consumer, seen, feature),
                  tmp_path / "second.log")
    finally:
        consumer.close()
    assert set(seen) == set(expected)
    # the window open at the kill resumed from the checkpointed state: every count is complete
    assert {start: max(counts) for start, counts in seen.items()} == expected
    if guarantee == "exactly-once":  # no window emitted twice, none from the killed run's open transaction
        assert {start: counts for start, counts in seen.items()} == {start: [n] for start, n in expected.items()}


def test_restart_resumes_the_response_join_under_a_longer_timeout(kafka_broker, tmp_path):
    """The penguins stream (requests and responses, some responses before their requests, some never) killed
    mid-stream and restored, exactly-once, with ``output.join_timeout`` 10 s -> 20 s (issue 20, finding 1: a
    request waiting in the checkpoint was released only at its time plus the *new* timeout, its timer never
    matched, and the watermark was held for good: no window after the restore). Every window's prediction
    column holds exactly the joined and the missing predictions, so the requests and responses waiting in the
    join at the kill were restored, the watermark hold with them (a request released late would be
    dead-lettered and missing from its window), and each left at the deadline it was stored with."""
    from streams import penguins

    spec, topics = kafka_spec(REPO / "examples" / "penguins" / "monitor.yaml", kafka_broker.bootstrap, WINDOW_MS,
                              "exactly-once")
    spec["input"]["format"] = formats.THESIS
    spec["output"]["join_timeout"] = f"{JOIN_TIMEOUT_MS}ms"
    config = write_spec(spec, tmp_path / "monitor.yaml")
    spec["output"]["join_timeout"] = f"{LONGER_JOIN_TIMEOUT_MS}ms"
    longer = write_spec(spec, tmp_path / "longer.yaml")
    kafka_broker.create_topics(list(topics.values()), partitions=1)

    stream = penguins.generate(seed=6, stage_size=200, rate=40.0, start_ms=live_start_ms(), format=formats.THESIS)
    windows = stream.time_ms - stream.time_ms % WINDOW_MS
    expected = {int(w): (int((stream.answered & (windows == w)).sum()), int((~stream.answered & (windows == w)).sum()))
                for w in set(windows.tolist())}
    lines = [(message["id"], message["time"], line) for message, line in
             ((json.loads(line), line) for line in stream.lines)]
    half = len(lines) // 2
    first_half_end = max(t for _, t, _ in lines[:half])
    waiting = [t for t, answered in zip(stream.time_ms, stream.answered)
               if not answered and first_half_end - JOIN_TIMEOUT_MS < t <= first_half_end]
    assert waiting  # requests without a response still waiting in the join when the first run is killed
    consumer = stats_consumer(kafka_broker.bootstrap, topics["stats"])
    checkpoints = tmp_path / "checkpoints"
    seen: dict = {}
    counted = lambda record: (record["count"], record["missing"])  # noqa: E731

    produce(kafka_broker.bootstrap, topics["inference"], lines[:half])
    job = start(config, kafka_broker.bootstrap, checkpoints, tmp_path / "first.log")
    run_until(job, lambda: bool(seen and latest_checkpoint(checkpoints)),
              lambda: collect(consumer, seen, "prediction", counted), tmp_path / "first.log")
    restore = latest_checkpoint(checkpoints)
    assert set(seen) < set(expected)

    flush_time = int(stream.time_ms.max()) + 3 * WINDOW_MS + LONGER_JOIN_TIMEOUT_MS  # past every window and timeout
    flush = formats.encode(formats.THESIS, "flush", flush_time, [stream.rows[0]])
    produce(kafka_broker.bootstrap, topics["inference"], lines[half:] + [("flush", flush_time, flush)])
    job = start(longer, kafka_broker.bootstrap, checkpoints, tmp_path / "second.log", restore=restore)
    try:
        run_until(job, lambda: set(expected) <= set(seen), lambda: collect(consumer, seen, "prediction", counted),
                  tmp_path / "second.log")
    finally:
        consumer.close()
    assert {start: counts for start, counts in seen.items()} == {start: [n] for start, n in expected.items()}
    assert "output.join_timeout: 10000ms -> 20000ms (compatible" in (tmp_path / "second.log").read_text()
