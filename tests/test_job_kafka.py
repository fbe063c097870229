"""The monitoring job on Kafka: a real local broker, `mmon run --kafka` (unbounded, checkpointing),
a small staged stream produced into the inference topic, the four output topics consumed and checked."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer

from contract import formats

from udfs.baseline import Baseline
from udfs.outliers import sigma_bounds

from streams import iris

from devtools.processes import live_start_ms, stop_group

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "iris" / "monitor.yaml"
WINDOW_MS = 5_000
STAGE_SIZE = 100
RATES = (40.0, 40.0, 40.0, 40.0, 40.0)
DEADLINE_S = 300
KEYED_ID = "keyed-1"  # a request without id or time: the job takes them from the Kafka key and record timestamp
KEYED_ROW = [5.8, 3.0, 20.0, 1.3]  # petal_length far over the 3-sigma bound: alerted with its request time


def _spec(tmp: Path, bootstrap: str, suffix: str) -> dict:
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["baseline"] = str(EXAMPLE.parent / spec["baseline"])
    spec["window"].update(duration=f"{WINDOW_MS}ms", watermark_delay="1s", idle_timeout="0ms")
    spec["kafka"].update(bootstrap_servers=bootstrap, group_id=f"mmon-test-{suffix}")
    spec["kafka"]["topics"] = {name: f"{name}-{suffix}" for name in ("inference", "stats", "outliers", "drift")}
    spec["kafka"]["topics"].update(dead_letter=f"dead-letter-{suffix}", model_drift=f"model-drift-{suffix}",
                                   alerts=f"alerts-{suffix}")
    spec["job"].update(metrics_port=0, checkpoint_interval="2s")
    (tmp / "monitor.yaml").write_text(yaml.safe_dump(spec))
    return spec


def _consume_until(bootstrap: str, topics: dict[str, str], done, deadline: float) -> dict[str, list[dict]]:
    consumer = KafkaConsumer(*topics.values(), bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=1000)
    by_topic = {topic: [] for topic in topics.values()}
    try:
        while time.monotonic() < deadline:
            for message in consumer:
                by_topic[message.topic].append(json.loads(message.value))
            found = {kind: by_topic[topic] for kind, topic in topics.items()}
            if done(found):
                return found
    finally:
        consumer.close()
    return {kind: by_topic[topic] for kind, topic in topics.items()}


@pytest.fixture(scope="module")
def kafka_run(kafka_broker, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kafka-job")
    suffix = uuid.uuid4().hex[:8]
    spec = _spec(tmp, kafka_broker.bootstrap, suffix)
    topics = spec["kafka"]["topics"]
    kafka_broker.create_topics(list(topics.values()), partitions=1)

    stream = iris.generate(seed=5, stage_size=STAGE_SIZE, rates=RATES, start_ms=live_start_ms())
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=5)
    requests = list(zip(stream.ids.tolist(), stream.time_ms.tolist(), stream.instances.tolist()))
    keyed_at = len(requests) // 2
    requests.insert(keyed_at, (KEYED_ID, requests[keyed_at][1] + 1, KEYED_ROW))
    for rid, t, row in requests:
        value = formats.encode(formats.THESIS, rid, t, [row])
        if rid == KEYED_ID:
            value = json.dumps({"type": "request", "payload": {"instances": [row]}})
        producer.send(topics["inference"], key=rid.encode(), value=value.encode(), timestamp_ms=t)
    bad = producer.send(topics["inference"], key=b"bad", value=b"{not json", timestamp_ms=requests[-1][1])
    # a request far ahead moves the watermark past every window of the stream (an unbounded source never ends)
    flush_time = requests[-1][1] + 3 * WINDOW_MS
    producer.send(topics["inference"], key=b"flush",
                  value=formats.encode(formats.THESIS, "flush", flush_time, [requests[0][2]]).encode(),
                  timestamp_ms=flush_time)
    producer.flush()
    bad_offset = bad.get(timeout=10).offset
    producer.close()

    log = open(tmp / "job.log", "w")
    job = subprocess.Popen([sys.executable, "-m", "mmon.cli", "run", "--config", str(tmp / "monitor.yaml"),
                            "--kafka", kafka_broker.bootstrap], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    last_window = requests[-1][1] // WINDOW_MS * WINDOW_MS
    n_features = len(spec["input"]["features"])

    n_metrics = len(spec["drift"]["metrics"])

    def done(found):
        """The last window's stats and drift records (drift leaves a later operator than stats) and the dead letter."""
        return (sum(1 for r in found["stats"] if "feature" in r and r["window_start"] == last_window) == n_features
                and sum(1 for r in found["drift"] if r["window_start"] == last_window) == n_features * n_metrics
                and any(r["window_start"] == last_window for r in found["model_drift"])
                and found["dead_letter"])

    output_topics = {kind: topics[kind] for kind in ("stats", "outliers", "drift", "dead_letter", "model_drift", "alerts")}
    try:
        found = _consume_until(kafka_broker.bootstrap, output_topics, done, time.monotonic() + DEADLINE_S)
    finally:
        stop_group(job)
        log.close()
    assert done(found), (tmp / "job.log").read_text()[-4000:]
    return {"found": found, "requests": requests, "spec": spec, "bad_offset": bad_offset, "topics": topics,
            "last_window": last_window, "baseline": Baseline.load(spec["baseline"]), "keyed": requests[keyed_at]}


def test_stats_on_kafka_equal_numpy(kafka_run):
    features = kafka_run["spec"]["input"]["features"]
    per_feature = [r for r in kafka_run["found"]["stats"] if "feature" in r]
    starts = sorted({r["window_start"] for r in per_feature})
    first = kafka_run["requests"][0][1] // WINDOW_MS * WINDOW_MS
    assert starts == list(range(first, kafka_run["last_window"] + 1, WINDOW_MS))
    for record in per_feature:
        j = features.index(record["feature"])
        x = np.array([row[j] for _, t, row in kafka_run["requests"]
                      if record["window_start"] <= t < record["window_start"] + WINDOW_MS])
        assert record["count"] == len(x)
        assert record["mean"] == pytest.approx(x.mean(), rel=1e-12)
        assert record["stddev"] == pytest.approx(x.std(ddof=1), rel=1e-9)
    assert len(per_feature) == len(starts) * len(features)  # at-least-once, no restart: no duplicates
    matrices = [r for r in kafka_run["found"]["stats"] if "matrix" in r]
    assert {r["statistic"] for r in matrices} == {"covariance", "correlation"}


def test_outliers_on_kafka_alerted_once_per_violating_value(kafka_run):
    baseline, features = kafka_run["baseline"], kafka_run["spec"]["input"]["features"]
    lower, upper = sigma_bounds([baseline.features[f].mean for f in features],
                                [baseline.features[f].std for f in features], 3.0)
    expected = sorted((rid, features[j]) for rid, _, row in kafka_run["requests"]
                      for j, v in enumerate(row) if v < lower[j] or v > upper[j])
    assert sorted((a["request_id"], a["feature"]) for a in kafka_run["found"]["outliers"]
                  if a["request_id"] != "flush") == expected
    assert expected


def test_drift_records_on_kafka(kafka_run):
    per_feature = [r for r in kafka_run["found"]["stats"] if "feature" in r]
    drift = kafka_run["found"]["drift"]
    assert len(drift) >= len(per_feature) * 5
    assert {r["metric"] for r in drift} == {"wasserstein", "kl", "js", "psi", "hellinger"}


def test_model_verdicts_on_kafka_one_per_window_as_the_watermark_passes_it(kafka_run):
    """The drift step fires on the live watermark (an event-time timer per window): a model_drift record per window,
    over every test of the window, drift exactly when a drift record of that window is a discovery."""
    verdicts = kafka_run["found"]["model_drift"]
    windows = sorted({r["window_start"] for r in kafka_run["found"]["stats"] if "feature" in r})
    assert sorted(r["window_start"] for r in verdicts) == windows
    n_tests = len(kafka_run["spec"]["input"]["features"]) * len(kafka_run["spec"]["drift"]["metrics"])
    for verdict in verdicts:
        found = [r for r in kafka_run["found"]["drift"] if r["window_start"] == verdict["window_start"]
                 and r["discovery"]]
        assert verdict["tests"] == n_tests and verdict["discoveries"] == len(found)
        assert verdict["drift"] == bool(found) and verdict["features"] == sorted({r["feature"] for r in found})
    assert any(v["drift"] for v in verdicts)


def test_dead_letter_on_kafka_names_topic_partition_offset(kafka_run):
    [record] = kafka_run["found"]["dead_letter"]
    assert record["reason"] == formats.BAD_JSON and record["raw"] == "{not json"
    assert record["source"] == f"{kafka_run['topics']['inference']}/0/{kafka_run['bad_offset']}"


def test_request_without_id_or_time_takes_the_kafka_key_and_record_timestamp(kafka_run):
    """The record timestamp reaches the request exactly, to the millisecond (``mmon_epoch_ms``); the
    stats test finds the request in the window of that time."""
    _, t, row = kafka_run["keyed"]
    alerts = [a for a in kafka_run["found"]["outliers"] if a["request_id"] == KEYED_ID]
    assert [(a["feature"], a["value"], a["request_time"]) for a in alerts] == [("petal_length", row[2], t)]


PENGUINS = REPO / "examples" / "penguins" / "monitor.yaml"
PENGUIN_STAGE_SIZE = 300
PENGUIN_RATE = 40.0


@pytest.fixture(scope="module")
def kafka_penguins(kafka_broker, tmp_path_factory):
    """The penguins example on Kafka (thesis format): requests and responses in one topic, some responses
    before their requests, some requests never answered, some responses answering nothing."""
    from streams import penguins

    tmp = tmp_path_factory.mktemp("kafka-penguins")
    suffix = uuid.uuid4().hex[:8]
    spec = yaml.safe_load(PENGUINS.read_text())
    spec["baseline"] = str(PENGUINS.parent / spec["baseline"])
    spec["input"]["format"] = formats.THESIS
    spec["window"].update(duration=f"{WINDOW_MS}ms", watermark_delay="1s", idle_timeout="0ms")
    spec["output"]["join_timeout"] = "2s"
    spec["kafka"].update(bootstrap_servers=kafka_broker.bootstrap, group_id=f"mmon-test-{suffix}")
    topics = {name: f"{name}-{suffix}" for name in ("inference", "stats", "outliers", "drift", "dead_letter")}
    spec["kafka"]["topics"] = topics
    spec["job"].update(metrics_port=0, checkpoint_interval="2s")
    (tmp / "monitor.yaml").write_text(yaml.safe_dump(spec))
    kafka_broker.create_topics(list(topics.values()), partitions=1)

    stream = penguins.generate(seed=3, stage_size=PENGUIN_STAGE_SIZE, rate=PENGUIN_RATE,
                                     start_ms=live_start_ms(), format=formats.THESIS)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=5)
    for line in stream.lines:
        message = json.loads(line)
        producer.send(topics["inference"], key=message["id"].encode(), value=line.encode(), timestamp_ms=message["time"])
    last = int(stream.time_ms.max())
    flush_time = last + 3 * WINDOW_MS + 2_000  # past every window and every join timeout of the stream
    producer.send(topics["inference"], key=b"flush", timestamp_ms=flush_time,
                  value=formats.encode(formats.THESIS, "flush", flush_time, [stream.rows[0]]).encode())
    producer.flush()
    producer.close()

    log = open(tmp / "job.log", "w")
    job = subprocess.Popen([sys.executable, "-m", "mmon.cli", "run", "--config", str(tmp / "monitor.yaml"),
                            "--kafka", kafka_broker.bootstrap], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    last_window = last // WINDOW_MS * WINDOW_MS
    columns = (*stream.feature_names, "prediction")

    def done(found):
        return (sum(1 for r in found["stats"] if r.get("window_start") == last_window) == len(columns)
                and len(found["dead_letter"]) >= len(stream.orphan_ids))

    try:
        found = _consume_until(kafka_broker.bootstrap, topics, done, time.monotonic() + DEADLINE_S)
    finally:
        stop_group(job)
        log.close()
    assert done(found), (tmp / "job.log").read_text()[-4000:]
    return {"found": found, "stream": stream, "baseline": Baseline.load(spec["baseline"])}


def test_penguins_on_kafka_join_every_response_and_count_categories_per_window(kafka_penguins):
    stream, found = kafka_penguins["stream"], kafka_penguins["found"]
    assert stream.early.sum() >= 1 and (~stream.answered).sum() >= 1  # responses before, and never
    window = stream.time_ms - stream.time_ms % WINDOW_MS
    predictions = np.array([p if answered else None for p, answered in zip(stream.predictions, stream.answered)],
                           dtype=object)
    islands = np.array([row.get("island") for row in stream.rows], dtype=object)
    for record in (r for r in found["stats"] if r["feature"] in ("prediction", "island")):
        values = (predictions if record["feature"] == "prediction" else islands)[window == record["window_start"]]
        present = [v for v in values if v is not None]
        assert record["count"] == len(present) and record["missing"] == len(values) - len(present)
        counts = {v: present.count(v) for v in set(present)}
        assert dict(zip(record["histogram"]["categories"], record["histogram"]["counts"])) == {
            c: counts.get(c, 0) for c in record["histogram"]["categories"]}
    reasons = sorted(d["reason"] for d in found["dead_letter"])
    assert reasons == [formats.UNMATCHED_RESPONSE] * len(stream.orphan_ids)
    unseen = sorted(o["request_id"] for o in found["outliers"] if o["rule"] == "unseen")
    assert unseen == sorted(stream.ids[stream.unseen].tolist())
