"""The wide benchmark's floors (`benchmarks.floor`): plain Flink SQL jobs on a real broker count exactly the
records of a topic and time them from the first to the last; the parse floor (Flink's JSON format) and the job's
parser floor (the job's own parse function) parse every value."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaProducer

from contract import formats

ROOT = Path(__file__).resolve().parent.parent
RECORDS = 3_001
WIDTH = 4  # the iris example's features: the job's parser floor parses the records under its spec
IRIS_SPEC = ROOT / "examples" / "iris" / "monitor.yaml"
NARROW = 50

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(300)]


def test_floors_count_every_record_of_the_topic(kafka_broker, tmp_path):
    topic = "floor-count"
    kafka_broker.create_topics([topic])
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=20)
    for i in range(RECORDS + NARROW):
        width = WIDTH if i < RECORDS else WIDTH - 1  # the last ones a feature short: the job's parser rejects them
        value = formats.encode("thesis", str(i), 1_000 + i, [[float(i + j) for j in range(width)]])
        producer.send(topic, key=str(i).encode(), value=value.encode())
    producer.flush()
    producer.close()
    result_path = tmp_path / "floor.json"
    finished = subprocess.run([sys.executable, "-m", "benchmarks.floor", "--kafka", kafka_broker.bootstrap,
                               "--topic", topic, "--result", str(result_path), "--parse", "thesis",
                               "--config", str(IRIS_SPEC)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads(result_path.read_text())
    read, parsed, job_parsed = result, result["parse"], result["job_parse"]
    assert (read["records"], parsed["records"], job_parsed["records"]) == (RECORDS + NARROW, RECORDS + NARROW, RECORDS)
    for floor in (read, parsed, job_parsed):
        assert floor["seconds"] > 0 and floor["records_per_s"] == pytest.approx((floor["records"] - 1) / floor["seconds"])
    assert parsed["values"] == RECORDS * WIDTH + NARROW * (WIDTH - 1)  # the first (only) instance of each record
