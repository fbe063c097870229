"""Session-wide real services: one Kafka broker and one Flink standalone cluster per test session.

Both start lazily (only when a test asks for them), on free 127.0.0.1 ports, and fail loudly with a
`make setup` hint when Java or the jars are missing: nothing is skipped silently.
"""
from __future__ import annotations

import pytest

from benchmarks.local_services import FlinkCluster, KafkaBroker, ServiceError


@pytest.fixture(scope="session")
def kafka_broker():
    """A running single-node KRaft broker: ``.bootstrap`` ("127.0.0.1:PORT"), ``.create_topics(names, partitions=1)``."""
    broker = KafkaBroker()
    try:
        broker.start()
    except ServiceError as err:
        pytest.fail(f"cannot start the local Kafka broker: {err}", pytrace=False)
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def flink_cluster():
    """A running Flink standalone cluster: ``.rest_url``, ``.overview()``, ``.submit_python(...)``, ``.env()``."""
    try:
        cluster = FlinkCluster()
        cluster.start()
    except ServiceError as err:
        pytest.fail(f"cannot start the local Flink cluster: {err}", pytrace=False)
    yield cluster
    cluster.stop()
