"""Session-wide real services: one Kafka broker, one S3 server and one Flink standalone cluster per test session; and
the embedded `mmon run`s whose outputs several test modules read.

All start lazily (only when a test asks for them); the services listen on free 127.0.0.1 ports and fail
loudly with a `make setup` hint when Java or the jars are missing: nothing is skipped silently.
"""
from __future__ import annotations

import pytest

from devtools.services import FlinkCluster, KafkaBroker, S3Server, ServiceError


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
def s3_server():
    """A running S3Proxy (devtools.services.S3Server): ``.endpoint``, ``.env()`` (the AWS variables of its
    identity), ``.client()`` (boto3, to create buckets and put objects)."""
    server = _started(lambda: S3Server().start(), "S3 server")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def flink_cluster():
    """A running Flink standalone cluster: ``.rest_url``, ``.overview()``, ``.submit_python(...)``, ``.env()``."""
    cluster = _started(lambda: FlinkCluster().start(), "Flink cluster")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def embedded_run(tmp_path_factory):
    """The outputs of one embedded `mmon run` of a small staged Iris stream (tests/embedded_run.py): a dict
    with the output folder, the spec and its path, the input's requests and bad lines, and every output
    file loaded."""
    from embedded_run import run_job

    return run_job(tmp_path_factory.mktemp("job"))


@pytest.fixture(scope="session")
def wide_run(tmp_path_factory):
    """The same for a 128-feature model at parallelism 2, its window state in 3 shards (tests/embedded_run.py)."""
    from embedded_run import wide_job

    return wide_job(tmp_path_factory.mktemp("wide-job"))


@pytest.fixture(scope="session")
def penguins_run(tmp_path_factory):
    """The penguins example run over the staged penguins stream (tests/embedded_run.py): the same dict,
    with ``stream`` (the generated `streams.penguins`) and ``expected`` (per instance: its window,
    features, the joined prediction and stage)."""
    from embedded_run import penguins_job

    return penguins_job(tmp_path_factory.mktemp("penguins"))
