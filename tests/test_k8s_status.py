"""The ModelMonitor status the controller derives from a FlinkDeployment (pure functions, no cluster)."""
from __future__ import annotations

from operator_glue.reconciler import _condition, _keep_transition_times, status_from

MONITOR = {"metadata": {"name": "iris", "namespace": "mmon", "generation": 4, "uid": "u"}}
APPLIED = _condition("Applied", "True", "Applied", "applied 5 resources", MONITOR["metadata"])


def conditions(status: dict) -> dict:
    return {c["type"]: c for c in status["conditions"]}


def test_no_flink_status_yet_is_unknown():
    status = status_from(MONITOR, {"spec": {}}, [APPLIED])
    assert status["observedGeneration"] == 4 and "jobState" not in status
    assert conditions(status)["JobRunning"]["status"] == "Unknown"


def test_a_running_job_is_copied():
    flink = {"status": {"lifecycleState": "STABLE", "jobStatus": {"state": "RUNNING"}}}
    status = status_from(MONITOR, flink, [APPLIED])
    assert (status["jobState"], status["lifecycleState"]) == ("RUNNING", "STABLE")
    assert conditions(status)["JobRunning"]["status"] == "True"


def test_a_failed_job_carries_the_flink_operator_error():
    flink = {"status": {"lifecycleState": "FAILED", "jobStatus": {"state": "FAILED"}, "error": "jar not found"}}
    status = status_from(MONITOR, flink, [APPLIED])
    running = conditions(status)["JobRunning"]
    assert (running["status"], running["reason"], running["message"]) == ("False", "FAILED", "jar not found")
    assert status["error"] == "jar not found"


def test_transition_time_moves_only_when_the_condition_status_changes():
    old = [{**APPLIED, "lastTransitionTime": "2020-01-01T00:00:00Z"},
           {"type": "JobRunning", "status": "Unknown", "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    new = status_from(MONITOR, {"status": {"jobStatus": {"state": "RUNNING"}}}, [APPLIED])["conditions"]
    kept = {c["type"]: c["lastTransitionTime"] for c in _keep_transition_times(new, old)}
    assert kept["Applied"] == "2020-01-01T00:00:00Z"
    assert kept["JobRunning"] != "2020-01-01T00:00:00Z"
