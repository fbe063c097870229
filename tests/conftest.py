"""Session-wide real services: one Kafka broker and one Flink standalone cluster per test session.

Both start lazily (only when a test asks for them), on free 127.0.0.1 ports, and fail loudly with a
`make setup` hint when Java or the jars are missing: nothing is skipped silently.
"""
from __future__ import annotations

import pytest

from benchmarks.local_services import FlinkCluster, KafkaBroker, ServiceError


def _started(start, what: str):
    try:
        return start()
    except ServiceError as err:
        message = f"cannot start the local {what}: {err}"
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def kafka_broker():
    """A running single-node KRaft broker: ``.bootstrap`` ("127.0.0.1:PORT"), ``.create_topics(names, partitions=1)``."""
    broker = _started(lambda: KafkaBroker().start(), "Kafka broker")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def flink_cluster():
    """A running Flink standalone cluster: ``.rest_url``, ``.overview()``, ``.submit_python(...)``, ``.env()``."""
    cluster = _started(lambda: FlinkCluster().start(), "Flink cluster")
    yield cluster
    cluster.stop()
