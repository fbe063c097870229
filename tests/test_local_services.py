"""The local services are real: a record goes through the broker and back, and Flink reports a TaskManager."""
from __future__ import annotations

import textwrap
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from devtools.services import KafkaBroker, ServiceError, _kafka_cluster_id


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


UPPERCASE_JOB = textwrap.dedent("""
    import sys
    from pyflink.common import Types, WatermarkStrategy
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.datastream.connectors.kafka import (KafkaOffsetsInitializer, KafkaRecordSerializationSchema,
                                                     KafkaSink, KafkaSource)
    bootstrap, source_topic, sink_topic = sys.argv[1:4]
    env = StreamExecutionEnvironment.get_execution_environment()
    source = (KafkaSource.builder().set_bootstrap_servers(bootstrap).set_topics(source_topic).set_group_id("t")
              .set_starting_offsets(KafkaOffsetsInitializer.earliest())
              .set_bounded(KafkaOffsetsInitializer.latest())
              .set_value_only_deserializer(SimpleStringSchema()).build())
    sink = (KafkaSink.builder().set_bootstrap_servers(bootstrap)
            .set_record_serializer(KafkaRecordSerializationSchema.builder().set_topic(sink_topic)
                                   .set_value_serialization_schema(SimpleStringSchema()).build()).build())
    env.from_source(source, WatermarkStrategy.no_watermarks(), "in").map(str.upper, Types.STRING()).sink_to(sink)
    env.execute("uppercase")
""")


@pytest.mark.flink
@pytest.mark.kafka
@pytest.mark.timeout(400)
def test_a_pyflink_kafka_job_runs_on_the_cluster_without_shipping_jars(flink_cluster, kafka_broker, tmp_path):
    """The connector comes from the cluster's lib dir, the Python UDF runs in the venv's Python."""
    source, sink = f"up-in-{uuid.uuid4().hex[:6]}", f"up-out-{uuid.uuid4().hex[:6]}"
    kafka_broker.create_topics([source, sink])
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for i in range(20):
        producer.send(source, f"value-{i}".encode())
    producer.flush(timeout=30)
    producer.close()
    job = tmp_path / "uppercase_job.py"
    job.write_text(UPPERCASE_JOB)

    finished = flink_cluster.submit_python([kafka_broker.bootstrap, source, sink], py_file=job, detached=False)
    assert finished.returncode == 0, finished.stderr[-3000:]

    consumer = KafkaConsumer(sink, bootstrap_servers=kafka_broker.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=500)
    received, deadline = [], time.monotonic() + 30
    while len(received) < 20 and time.monotonic() < deadline:
        received += [m.value for m in consumer]
    consumer.close()
    assert sorted(received) == sorted(f"VALUE-{i}".encode() for i in range(20))
