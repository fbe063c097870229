"""The local Flink cluster of a ``mmon run --kafka`` job, watched while the job runs.

A local job runs in Flink's mini-cluster, which has one TaskManager and never starts another. When a failover
closes the Python workers, PyFlink can fail in closing them (``Reference count must not be negative``, seen when
every checkpoint of a wide model failed); the mini-cluster then terminates its TaskManager, and the job waits for
slots that never come: the output stalls for good, with nothing in the run's own log. The watch reads the cluster's
overview every few seconds and ends the wait, naming the cause, once no TaskManager is left, so that the run exits
with an error and whatever supervises it (a container's restart policy, systemd) can start it again.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from pyflink.common import JobClient

WATCH_EVERY_S = 5.0
LOST = ("the local Flink cluster lost its only TaskManager (the Flink log says why) and cannot run the job "
        "again: stopping. Start `mmon run` again (with --restore-from to keep the open windows)")


def mini_cluster(client: "JobClient"):
    """The mini-cluster behind a local job's client (a py4j object), or None for a job on a remote cluster."""
    j_client = client._j_job_client
    fields = {field.getName(): field for field in j_client.getClass().getDeclaredFields()}
    if "miniCluster" not in fields:
        return None
    fields["miniCluster"].setAccessible(True)
    return fields["miniCluster"].get(j_client)


def task_managers(cluster) -> int:
    """The TaskManagers registered with the mini-cluster's ResourceManager."""
    return cluster.requestClusterOverview().get().getNumTaskManagersConnected()


def await_job(client: "JobClient", every_s: float = WATCH_EVERY_S) -> Optional[str]:
    """Waits for the job to end (raising its failure, as the client's result does) and returns None; or returns
    `LOST` as soon as the job's local cluster has no TaskManager left."""
    cluster = mini_cluster(client)
    result = client.get_job_execution_result()
    while cluster is not None and not result.done():
        if _no_task_manager(cluster) and not result.done():
            return LOST
        time.sleep(every_s)
    result.result()
    return None


def _no_task_manager(cluster) -> bool:
    from py4j.protocol import Py4JError
    try:
        return task_managers(cluster) == 0
    except Py4JError:  # the cluster is shutting down: the job has ended, and its result says how
        return False
