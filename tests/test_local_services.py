"""The local services are real: a record goes through the broker and back, and Flink reports a TaskManager."""
from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from benchmarks.local_services import KafkaBroker, ServiceError, _kafka_cluster_id


@pytest.mark.kafka
@pytest.mark.timeout(180)
def test_topics_are_created_with_partitions_and_creation_is_idempotent(kafka_broker):
    topic = f"lsvc-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topics([topic], partitions=3)
    kafka_broker.create_topics([topic], partitions=3)
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    assert described["error_code"] == 0
    assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1, 2]
    assert all(p["leader_id"] == 1 for p in described["partitions"])


@pytest.mark.kafka
@pytest.mark.timeout(180)
def test_produce_consume_round_trip_keeps_key_value_timestamp_headers(kafka_broker):
    topic = f"lsvc-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topics([topic])
    sent = [(f"k{i}".encode(), f"value-{i}".encode(), 1_700_000_000_000 + i) for i in range(50)]
    sent.append((b"far-future", b"replayed", 2_300_000_000_000))  # the broker accepts any replayed time
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    for key, value, ts in sent:
        producer.send(topic, key=key, value=value, timestamp_ms=ts, headers=[("h", key)])
    producer.flush(timeout=30)
    producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=500)
    received, deadline = [], time.monotonic() + 30
    while len(received) < len(sent) and time.monotonic() < deadline:
        received += [(m.key, m.value, m.timestamp, m.headers) for m in consumer]
    consumer.close()
    assert received == [(k, v, ts, [("h", k)]) for k, v, ts in sent]


def test_cluster_ids_are_22_char_base64_never_taken_for_an_option():
    """One in 64 random ids starts with '-', which kafka-storage's parser reads as an option (a flaky start)."""
    ids = [_kafka_cluster_id() for _ in range(5000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)


def test_broker_start_fails_clearly_without_jars(tmp_path):
    with pytest.raises(ServiceError, match="make setup"):
        KafkaBroker(jars_dir=tmp_path).start()


@pytest.mark.flink
@pytest.mark.timeout(300)
def test_flink_cluster_serves_overview_with_a_taskmanager(flink_cluster):
    overview = flink_cluster.overview()
    assert overview["taskmanagers"] >= 1
    assert overview["slots-total"] == 2
    assert overview["flink-version"].startswith("2.2")
