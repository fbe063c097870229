"""The ModelMonitor controller: render each ModelMonitor's resources, apply them, report status.

A reconcile pass is idempotent: server-side apply of an unchanged manifest changes nothing, and the
status is written only when it differs. The loop lists every ModelMonitor (reconciling each), then
watches from the list's resourceVersion; a watch that ends (timeout = resync period) or expires
(410 Gone) leads to a fresh list, which also picks up status changes of the FlinkDeployments.

A status write the API server refuses (a 404 for a ModelMonitor deleted during its pass, a 409, a 500,
a 403) ends that monitor's pass with the reason in `Outcome.status_error`, logged by the loop; the
stored status still differs, so the next pass writes it again. The controller process goes on.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Optional

import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from contract.spec import ConfigError, MonitorSpec, parse_spec

from operator_glue import baseline_from, crd
from operator_glue.kube import NotServed, apply, resource_api
from operator_glue.manifests import (
    SPEC_KEY,
    DeploySettings,
    in_cluster_spec,
    kafka_properties_note,
    plan_of,
    render,
    spec_configmap_name,
)

log = logging.getLogger("mmon.operator")
FIELD_MANAGER = "mmon-operator"


@dataclass(frozen=True)
class Outcome:
    """What one pass did to one ModelMonitor."""

    applied: tuple[str, ...]
    skipped: tuple[str, ...]
    status: dict
    status_error: Optional[str] = None  # why the status was not written (the next pass writes it again)


class Reconciler:
    def __init__(self, dyn: DynamicClient, template: DeploySettings):
        """``template`` carries the cluster-wide settings (image, Kafka, state dir); name, namespace,
        baseline ConfigMap and owner come from each ModelMonitor."""
        self.dyn = dyn
        self.template = template
        self.monitors = resource_api(dyn, crd.API_VERSION, crd.KIND)

    def reconcile(self, monitor: dict) -> Outcome:
        meta = monitor["metadata"]
        try:
            spec, source = monitor_spec(monitor.get("spec"))
            settings = dataclasses.replace(self.template, name=meta["name"], namespace=meta["namespace"],
                                           baseline_configmap=source.name if source.kind == baseline_from.CONFIG_MAP else "",
                                           baseline_from=source, owner=owner_reference(monitor))
            manifests = self._manifests(spec, settings)
        except ConfigError as err:
            return self._finish(monitor, (), (), None, [_condition("Applied", "False", "InvalidSpec", str(err), meta)])
        applied, skipped = [], []
        for manifest in manifests:
            try:
                apply(self.dyn, manifest.body, field_manager=FIELD_MANAGER)
                applied.append(_describe(manifest.body))
            except NotServed:
                skipped.append(_describe(manifest.body))
            except ApiException as err:
                reason = f"{_describe(manifest.body)}: {err.status} {err.reason}: {_api_message(err)}"
                return self._finish(monitor, applied, skipped, None, [_condition("Applied", "False", "ApplyFailed", reason, meta)])
        message = "; ".join(filter(None, [f"applied {len(applied)} resources",
                                          f"skipped (CRD not installed): {', '.join(skipped)}" if skipped else "",
                                          kafka_properties_note(spec, settings)]))
        conditions = [_condition("Applied", "True", "Applied", message, meta), self._baseline_condition(settings, meta)]
        return self._finish(monitor, applied, skipped, self._flink_job(settings), conditions)

    def _manifests(self, spec: MonitorSpec, settings: DeploySettings) -> list:
        """The monitor's resources. The spec the job runs now decides how a change restarts it (`render`); a
        spec unchanged since the last pass keeps the plan that pass chose, so a drained-savepoint upgrade the
        Flink operator has not carried out yet is not turned back into a last-state restart."""
        running = self._running_spec(settings)
        unchanged = running is not None and running == in_cluster_spec(spec, settings)
        job = self._flink_job(settings) if unchanged else None
        return render(spec, settings, previous=running, plan=plan_of(job) if job else None)

    def _running_spec(self, settings: DeploySettings) -> Optional[MonitorSpec]:
        """The spec of the ``<name>-spec`` ConfigMap the last pass applied (what the job runs), or None when there
        is none or it cannot be read (a change then restarts from the last state, as before)."""
        try:
            config_map = resource_api(self.dyn, "v1", "ConfigMap").get(
                name=spec_configmap_name(settings), namespace=settings.namespace).to_dict()
            return parse_spec(yaml.safe_load(config_map["data"][SPEC_KEY]))
        except (ApiException, NotServed, KeyError, TypeError, yaml.YAMLError, ConfigError):
            return None

    def _baseline_condition(self, settings: DeploySettings, meta: dict) -> dict:
        """Whether the baseline ConfigMap or claim the job mounts exists (without it the pods never start); a
        URL is fetched by the job itself, at start."""
        source = settings.baseline_source
        if source.kind == baseline_from.URL:
            return _condition("BaselineFound", "Unknown", "FetchedByJob", f"the job fetches {source.name} at start", meta)
        if source.kind == baseline_from.PVC:
            return self._claim_condition(source, settings.namespace, meta)
        name = source.name
        try:
            config_map = resource_api(self.dyn, "v1", "ConfigMap").get(name=name, namespace=settings.namespace).to_dict()
        except ApiException as err:
            if err.status == 404:
                return _condition("BaselineFound", "False", "NotFound",
                                  f"ConfigMap {name} not found: create it with key {source.key} from `mmon baseline`", meta)
            return _condition("BaselineFound", "Unknown", "ReadFailed", f"ConfigMap {name}: {err.status} {err.reason}", meta)
        if source.key not in (config_map.get("data") or {}):
            return _condition("BaselineFound", "False", "KeyMissing", f"ConfigMap {name} has no key {source.key}", meta)
        return _condition("BaselineFound", "True", "Found", f"ConfigMap {name}", meta)

    def _claim_condition(self, source: baseline_from.BaselineFrom, namespace: str, meta: dict) -> dict:
        try:
            resource_api(self.dyn, "v1", "PersistentVolumeClaim").get(name=source.name, namespace=namespace)
        except ApiException as err:
            found = "False" if err.status == 404 else "Unknown"
            return _condition("BaselineFound", found, "NotFound" if err.status == 404 else "ReadFailed",
                              f"PersistentVolumeClaim {source.name}: {err.status} {err.reason}", meta)
        return _condition("BaselineFound", "True", "Found",
                          f"PersistentVolumeClaim {source.name} (the job reads {source.key} on it)", meta)

    def _flink_job(self, settings: DeploySettings) -> Optional[dict]:
        kind = "FlinkSessionJob" if settings.session_cluster else "FlinkDeployment"
        try:
            return resource_api(self.dyn, "flink.apache.org/v1beta1", kind).get(
                name=settings.name, namespace=settings.namespace).to_dict()
        except (NotServed, ApiException):
            return None

    def _finish(self, monitor: dict, applied, skipped, flink_job: Optional[dict], conditions: list[dict]) -> Outcome:
        status = status_from(monitor, flink_job, conditions)
        error = None
        if _without_times(status) != _without_times(monitor.get("status") or {}):
            status["conditions"] = _keep_transition_times(status["conditions"], (monitor.get("status") or {}).get("conditions", []))
            error = self._write_status(monitor["metadata"], status)
        return Outcome(tuple(applied), tuple(skipped), status, error)

    def _write_status(self, meta: dict, status: dict) -> Optional[str]:
        """Patch the status subresource; None, or why the API server refused it."""
        try:
            self.monitors.status.patch(name=meta["name"], namespace=meta["namespace"], body={"status": status},
                                       content_type="application/merge-patch+json", field_manager=FIELD_MANAGER)
        except ApiException as err:
            return f"{err.status} {err.reason}: {_api_message(err)}"
        return None

    def reconcile_all(self, namespace: Optional[str]) -> str:
        """Reconcile every ModelMonitor; return the list's resourceVersion to watch from."""
        listing = self.monitors.get(namespace=namespace).to_dict()
        for monitor in listing.get("items", []):
            self._reconcile_logged(monitor)
        return listing["metadata"]["resourceVersion"]

    def _reconcile_logged(self, monitor: dict) -> None:
        meta = monitor["metadata"]
        outcome = self.reconcile(monitor)
        applied = outcome.status["conditions"][0]
        log.info("%s/%s: %s (job %s)", meta["namespace"], meta["name"], applied["message"], outcome.status.get("jobState", "-"))
        if outcome.status_error:
            log.warning("%s/%s: status not written (%s); retrying on the next pass", meta["namespace"], meta["name"],
                        outcome.status_error)

    def run(self, namespace: Optional[str], resync_seconds: int = 30,
            keep_going: Callable[[], bool] = lambda: True) -> None:
        """List, then watch; relist after every resync period and on 410 Gone, while ``keep_going()``."""
        while keep_going():
            resource_version = self.reconcile_all(namespace)
            if not keep_going():
                return
            try:
                for event in self.monitors.watch(namespace=namespace, resource_version=resource_version,
                                                 timeout=resync_seconds):
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._reconcile_logged(event["raw_object"])
                    if not keep_going():
                        return
            except ApiException as err:
                if err.status != 410:
                    raise
                log.info("watch expired (410 Gone): relisting")


def monitor_spec(document: Optional[dict]) -> tuple[MonitorSpec, baseline_from.BaselineFrom]:
    """A ModelMonitor's monitor spec and baseline source: ``baseline`` (a ConfigMap name) or ``baselineFrom``,
    exactly one of them (`ConfigError` otherwise, naming the fields)."""
    document = dict(document or {})
    given = document.pop(baseline_from.FIELD, None)
    if given is None:
        if "baseline" not in document:
            raise ConfigError(f"baseline: required (a ConfigMap name) unless {baseline_from.FIELD} is given")
        spec = parse_spec(document)
        return spec, baseline_from.BaselineFrom(baseline_from.CONFIG_MAP, str(spec.baseline))
    if "baseline" in document:
        raise ConfigError(f"baseline, {baseline_from.FIELD}: give one of them, not both")
    source = baseline_from.from_resource(given)
    return parse_spec({**document, "baseline": str(source.location())}), source


def owner_reference(monitor: dict) -> dict:
    meta = monitor["metadata"]
    return {"apiVersion": crd.API_VERSION, "kind": crd.KIND, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def status_from(monitor: dict, flink_job: Optional[dict], own_conditions: list[dict]) -> dict:
    """The ModelMonitor status: our own conditions (Applied first) plus the Flink job's state and error."""
    meta = monitor["metadata"]
    flink_status = (flink_job or {}).get("status") or {}
    job_state = (flink_status.get("jobStatus") or {}).get("state")
    lifecycle = flink_status.get("lifecycleState")
    error = flink_status.get("error")
    if job_state is None:
        running = _condition("JobRunning", "Unknown", "NotReported", "the Flink operator has not reported a job state yet", meta)
    else:
        running = _condition("JobRunning", "True" if job_state == "RUNNING" else "False", job_state,
                             error or f"job {job_state}, lifecycle {lifecycle}", meta)
    status = {"observedGeneration": meta.get("generation", 0), "conditions": [*own_conditions, running]}
    status.update({key: value for key, value in
                   (("jobState", job_state), ("lifecycleState", lifecycle), ("error", error)) if value})
    return status


def _condition(kind: str, status: str, reason: str, message: str, meta: dict) -> dict:
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "observedGeneration": meta.get("generation", 0),
            "lastTransitionTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def _keep_transition_times(new: list[dict], old: list[dict]) -> list[dict]:
    """A condition's lastTransitionTime changes only when its status does."""
    previous = {c["type"]: c for c in old}
    return [{**c, "lastTransitionTime": previous[c["type"]]["lastTransitionTime"]}
            if c["type"] in previous and previous[c["type"]]["status"] == c["status"] else c for c in new]


def _without_times(status: dict) -> dict:
    return {**status, "conditions": [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                                     for c in status.get("conditions", [])]}


def _describe(body: dict) -> str:
    return f"{body['kind']}/{body['metadata']['name']}"


def _api_message(err: ApiException) -> str:
    try:
        return json.loads(err.body).get("message", err.body)
    except (TypeError, ValueError):
        return str(err.body)

