"""The watch on a local job's mini-cluster (`flink_job.local_cluster`): a real PyFlink job in this process, whose
mini-cluster has its only TaskManager terminated, is given up with the reason at once, where waiting for its
result stalls for good; a job that ends is awaited as before."""
from __future__ import annotations

import pytest
from pyflink.table import EnvironmentSettings, TableEnvironment

from flink_job import local_cluster

pytestmark = [pytest.mark.flink, pytest.mark.timeout(300)]


def _job(t_env: TableEnvironment, name: str, rows: str):
    """A datagen source into a blackhole sink: ``rows`` records in all ("" for an unbounded one)."""
    bound = f", 'number-of-rows' = '{rows}'" if rows else ""
    t_env.execute_sql(f"CREATE TEMPORARY TABLE {name}_source (n BIGINT) WITH ('connector' = 'datagen', "
                      f"'rows-per-second' = '1000'{bound})")
    t_env.execute_sql(f"CREATE TEMPORARY TABLE {name}_sink (n BIGINT) WITH ('connector' = 'blackhole')")
    return t_env.execute_sql(f"INSERT INTO {name}_sink SELECT n FROM {name}_source").get_job_client()


@pytest.fixture()
def t_env() -> TableEnvironment:
    """Restarts without end, as a checkpointed Kafka job's (Flink's exponential-delay default) are."""
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for key, value in {"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.attempts": "1000000",
                       "restart-strategy.fixed-delay.delay": "1 s"}.items():
        t_env.get_config().set(key, value)
    return t_env


def test_a_job_whose_task_manager_is_gone_is_given_up_with_the_reason(t_env):
    client = _job(t_env, "endless", "")
    cluster = local_cluster.mini_cluster(client)
    assert cluster is not None and local_cluster.task_managers(cluster) == 1
    cluster.terminateTaskManager(0).get()
    assert local_cluster.await_job(client, every_s=0.2) == local_cluster.LOST
    assert local_cluster.task_managers(cluster) == 0


def test_a_job_that_ends_is_awaited_to_its_end(t_env):
    client = _job(t_env, "bounded", "50")
    assert local_cluster.await_job(client, every_s=0.05) is None  # it raises the job's failure, had it failed
