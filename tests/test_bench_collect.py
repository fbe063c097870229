"""The benchmark's output collector (`benchmarks.collect`) on a real broker: with nothing decoded live (the `max`
profile's drain) it still counts the complete windows from the stats records' first bytes and the other kinds from
their topics' end offsets, and afterwards returns every record decoded, as the live collector does."""
import uuid

import pytest
from kafka import KafkaProducer

from contract import outputs
from contract.spec import TopicsSpec

from benchmarks.collect import KINDS, OutputCollector

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

FEATURES = ("a", "b", "c", "d")
WINDOW_ENDS = (15_000, 30_000, 45_000)


def _records() -> dict[str, list[dict]]:
    stats = [{"model": "m", "version": "1", "feature": f, "window_start": end - 15_000, "window_end": end, "count": i}
             for i, end in enumerate(WINDOW_ENDS) for f in FEATURES]
    stats.append({"model": "m", "version": "1", "kind": "covariance", "window_start": 0, "window_end": 15_000})
    return {outputs.STATS: stats,
            outputs.OUTLIERS: [{"request_id": f"r{i}", "feature": "a", "detected_at": i} for i in range(5)],
            outputs.DRIFT: [{"feature": "b", "metric": "js", "window_end": 15_000, "value": i / 10} for i in range(7)],
            outputs.DEAD_LETTER: []}


@pytest.mark.parametrize("live", [(), KINDS], ids=["deferred", "live"])
def test_collector_counts_while_running_and_returns_every_record(kafka_broker, live):
    suffix = uuid.uuid4().hex[:8]
    topics = TopicsSpec(**{kind: f"{kind}-{suffix}" for kind in KINDS})
    kafka_broker.create_topics([getattr(topics, kind) for kind in KINDS])
    produced = _records()
    with OutputCollector(kafka_broker.bootstrap, topics, poll_ms=100, live=live) as collector:
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=5)
        for kind, records in produced.items():
            for record in records:
                producer.send(getattr(topics, kind), outputs.record_json(record).encode())
        producer.flush()
        producer.close()
        assert collector.wait_for(lambda c: c.windows(len(FEATURES)) == len(WINDOW_ENDS)
                                  and c.count(outputs.OUTLIERS) == 5 and c.count(outputs.DRIFT) == 7, 60)
        assert dict(collector.stats_per_window_end) == {end: len(FEATURES) for end in WINDOW_ENDS}
        assert collector.count(outputs.STATS) == len(produced[outputs.STATS])
        collected = collector.outputs()
    for kind, records in produced.items():
        assert getattr(collected, kind) == records, kind
    assert collector.undecodable == 0
