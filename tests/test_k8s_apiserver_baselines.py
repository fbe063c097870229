"""Baselines of any width on a real kube-apiserver + etcd (started here on 127.0.0.1 by test_k8s_apiserver.py's
fixtures, with its CRDs; no kubelet): a 1,000-feature ModelMonitor whose baseline comes from a URL is
accepted and reconciled, every object under 1 MiB, while the same baseline bound for a ConfigMap is
refused before anything is sent; a claim's baseline is found or reported missing."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from contract.spec import BASELINE_AUTHORIZATION_ENV, load_spec, parse_spec

from operator_glue import baseline_from, crd
from operator_glue.kube import apply, resource_api
from operator_glue.manifests import DeploySettings, model_monitor
from operator_glue.reconciler import Reconciler

from streams import wide

from k8s_testenv import EXAMPLE
from test_k8s_apiserver import control_plane, dyn  # noqa: F401 (the API server and its client, fixtures)

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(900, func_only=True)]
NAMESPACE = "wide"
MMON = str(Path(sys.executable).parent / "mmon")
URL = "https://models.example.org/wide1000/baseline.json"
WIDTH = 1000


@pytest.fixture(scope="module", autouse=True)
def wide_namespace(dyn):
    apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})


@pytest.fixture(scope="module")
def wide_spec(tmp_path_factory) -> Path:
    """`streams.wide`'s 1,000-feature model: its spec and its baseline (version 4, about 7 MB)."""
    return wide.make_model(WIDTH, 7, tmp_path_factory.mktemp("wide"), EXAMPLE, instances=50).spec_path


def _mmon_apply(spec: Path, control_plane, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([MMON, "k8s", "apply", str(spec), "--as-modelmonitor", "--name", "wide1000",
                           "--namespace", NAMESPACE, "--kubeconfig", str(control_plane.kubeconfig), *options],
                          capture_output=True, text=True, timeout=300)


def test_a_wide_baseline_bound_for_a_config_map_is_refused_before_anything_is_sent(dyn, control_plane, wide_spec):
    result = _mmon_apply(wide_spec, control_plane)
    assert result.returncode == 2 and result.stdout == ""
    assert "over the 1 MiB a ConfigMap holds: serve it over HTTP(S)" in result.stderr
    monitors = resource_api(dyn, crd.API_VERSION, crd.KIND).get(namespace=NAMESPACE).to_dict()["items"]
    assert monitors == []


def test_a_1000_feature_model_monitor_with_a_url_baseline_is_accepted_and_reconciled(dyn, control_plane, wide_spec):
    result = _mmon_apply(wide_spec, control_plane, "--baseline-url", URL, "--baseline-auth-secret", "wide-token:header")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ModelMonitor/wide1000 applied"]  # no baseline ConfigMap
    monitor = resource_api(dyn, crd.API_VERSION, crd.KIND).get(name="wide1000", namespace=NAMESPACE).to_dict()
    assert monitor["spec"][baseline_from.FIELD] == {"url": {"url": URL, "authorizationSecret": {
        "name": "wide-token", "key": "header"}}} and "baseline" not in monitor["spec"]
    outcome = Reconciler(dyn, DeploySettings(name="")).reconcile(monitor)
    assert {"ConfigMap/wide1000-spec", "FlinkDeployment/wide1000"} <= set(outcome.applied)
    stored = [resource_api(dyn, api_version, kind).get(name=name, namespace=NAMESPACE).to_dict()
              for api_version, kind, name in [(crd.API_VERSION, crd.KIND, "wide1000"), ("v1", "ConfigMap", "wide1000-spec"),
                                              ("flink.apache.org/v1beta1", "FlinkDeployment", "wide1000")]]
    sizes = {body["kind"]: len(json.dumps(body)) for body in stored}
    assert all(size < baseline_from.MAX_CONFIGMAP_BYTES for size in sizes.values()), sizes
    in_pod = parse_spec(yaml.safe_load(stored[1]["data"]["monitor.yaml"]))
    assert str(in_pod.baseline) == URL and len(in_pod.input.features) == WIDTH
    container = stored[2]["spec"]["podTemplate"]["spec"]["containers"][0]
    assert {"name": BASELINE_AUTHORIZATION_ENV, "valueFrom": {"secretKeyRef": {
        "name": "wide-token", "key": "header"}}} in container["env"]
    baseline = {c["type"]: c for c in outcome.status["conditions"]}["BaselineFound"]
    assert (baseline["status"], baseline["reason"]) == ("Unknown", "FetchedByJob") and URL in baseline["message"]


def test_the_api_server_refuses_a_bad_baseline_source(dyn):
    body = {"apiVersion": crd.API_VERSION, "kind": crd.KIND, "metadata": {"name": "bad", "namespace": NAMESPACE},
            "spec": {"model": {"name": "m"}, "input": {"features": ["x"]},
                     baseline_from.FIELD: {"url": {"url": "ftp://host/b.json"}, "configMap": {"name": "b"}}}}
    with pytest.raises(ApiException) as refused:
        apply(dyn, body, dry_run=True)
    assert refused.value.status == 422
    message = json.loads(refused.value.body)["message"]
    assert "spec.baselineFrom.url.url" in message and "spec.baselineFrom: Too many" in message


def test_a_claims_baseline_is_found_or_reported_missing(dyn):
    settings = DeploySettings(name="claimed", namespace=NAMESPACE, baseline_from=baseline_from.from_claim("models:w/b.json"))
    monitor = apply(dyn, model_monitor(load_spec(EXAMPLE), settings)[0].body)
    reconciler = Reconciler(dyn, DeploySettings(name=""))
    missing = {c["type"]: c for c in reconciler.reconcile(monitor).status["conditions"]}["BaselineFound"]
    assert (missing["status"], missing["reason"]) == ("False", "NotFound") and "models" in missing["message"]
    apply(dyn, {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "models", "namespace": NAMESPACE},
                "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}}}})
    found = {c["type"]: c for c in reconciler.reconcile(monitor).status["conditions"]}["BaselineFound"]
    assert (found["status"], found["reason"]) == ("True", "Found") and "w/b.json" in found["message"]
    volumes = resource_api(dyn, "flink.apache.org/v1beta1", "FlinkDeployment").get(
        name="claimed", namespace=NAMESPACE).to_dict()["spec"]["podTemplate"]["spec"]["volumes"]
    assert {"name": "baseline", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in volumes


def test_a_model_monitor_with_an_s3_baseline_is_accepted_and_its_job_gets_the_aws_secret(dyn):
    """The CRD's url pattern takes s3://; the reconciled job's container gets the credentials Secret's keys
    (envFrom) and mounts no baseline. Another scheme (gs://) is still refused by the API server."""
    url = "s3://models/iris/baseline.json"
    settings = DeploySettings(name="s3iris", namespace=NAMESPACE, baseline_from=baseline_from.from_url(url, "iris-aws"))
    monitor = apply(dyn, model_monitor(load_spec(EXAMPLE), settings)[0].body)
    assert monitor["spec"][baseline_from.FIELD] == {"url": {"url": url, "credentialsSecret": {"name": "iris-aws"}}}
    outcome = Reconciler(dyn, DeploySettings(name="")).reconcile(monitor)
    condition = {c["type"]: c for c in outcome.status["conditions"]}["BaselineFound"]
    assert (condition["reason"], url in condition["message"]) == ("FetchedByJob", True)
    pod = resource_api(dyn, "flink.apache.org/v1beta1", "FlinkDeployment").get(
        name="s3iris", namespace=NAMESPACE).to_dict()["spec"]["podTemplate"]["spec"]
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "iris-aws"}}]
    assert [volume["name"] for volume in pod["volumes"]] == ["spec"]
    body = {**monitor, "metadata": {"name": "gs", "namespace": NAMESPACE}}
    body["spec"] = {**monitor["spec"], baseline_from.FIELD: {"url": {"url": "gs://models/b.json"}}}
    with pytest.raises(ApiException) as refused:
        apply(dyn, body, dry_run=True)
    assert refused.value.status == 422 and "spec.baselineFrom.url.url" in json.loads(refused.value.body)["message"]
