"""The wide benchmark's floors (`benchmarks.floor`): plain Flink SQL jobs on a real broker count exactly the
records of a topic and time them from the first to the last; the parse floor parses every value."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaProducer

from contract import formats

ROOT = Path(__file__).resolve().parent.parent
RECORDS = 3_001
WIDTH = 3

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(300)]


def test_floors_count_every_record_of_the_topic(kafka_broker, tmp_path):
    topic = "floor-count"
    kafka_broker.create_topics([topic])
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=20)
    for i in range(RECORDS):
        value = formats.encode("thesis", str(i), 1_000 + i, [[float(i + j) for j in range(WIDTH)]])
        producer.send(topic, key=str(i).encode(), value=value.encode())
    producer.flush()
    producer.close()
    result_path = tmp_path / "floor.json"
    finished = subprocess.run([sys.executable, "-m", "benchmarks.floor", "--kafka", kafka_broker.bootstrap,
                               "--topic", topic, "--result", str(result_path), "--parse", "thesis"], cwd=ROOT,
                              capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads(result_path.read_text())
    for floor in (result, result["parse"]):
        assert floor["records"] == RECORDS
        assert floor["seconds"] > 0 and floor["records_per_s"] == pytest.approx((RECORDS - 1) / floor["seconds"])
    assert result["parse"]["values"] == RECORDS * WIDTH
