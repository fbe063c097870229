"""The wide benchmark's read floor (`benchmarks.floor`): a plain Flink SQL job on a real broker counts exactly
the records of a topic and times them from the first to the last."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaProducer

ROOT = Path(__file__).resolve().parent.parent
RECORDS = 3_001

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(300)]


def test_floor_counts_every_record_of_the_topic(kafka_broker, tmp_path):
    topic = "floor-count"
    kafka_broker.create_topics([topic])
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=20)
    for i in range(RECORDS):
        producer.send(topic, key=str(i).encode(), value=json.dumps({"id": str(i), "values": [i, 2 * i]}).encode())
    producer.flush()
    producer.close()
    result_path = tmp_path / "floor.json"
    finished = subprocess.run([sys.executable, "-m", "benchmarks.floor", "--kafka", kafka_broker.bootstrap,
                               "--topic", topic, "--result", str(result_path)], cwd=ROOT, capture_output=True,
                              text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads(result_path.read_text())
    assert result["records"] == RECORDS
    assert result["seconds"] > 0 and result["records_per_s"] == pytest.approx((RECORDS - 1) / result["seconds"])
