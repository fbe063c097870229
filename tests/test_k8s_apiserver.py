"""End to end against a real kube-apiserver + etcd started here on 127.0.0.1 (no kubelet: pods never
run). The last test adds kube-controller-manager's garbage collector to show that deleting a
ModelMonitor deletes what it owns.

Installed CRDs: our ModelMonitor (k8s/crd), and the official, unchanged FlinkDeployment/FlinkSessionJob
CRDs of the Flink Kubernetes Operator 1.15.0 and the PrometheusRule CRD of the Prometheus Operator 0.85.0 (vendored in
k8s/vendor/). Strimzi's and the Prometheus Operator's other CRDs are not installed, so KafkaTopic and PodMonitor are not served: the reconciler reports them as skipped,
and the test asserts exactly that. The pod templates are also admitted as Pods into a namespace that
enforces the "restricted" Pod Security Standard (the API server's PodSecurity admission).

The binaries are built when missing (15-25 minutes once per machine, cached); MMON_K8S_BUILD=0 skips instead.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from contract.spec import load_spec, parse_spec

from operator_glue import crd
from operator_glue.kube import apply, connect, resource_api
from operator_glue.manifests import SPEC_HASH_ANNOTATION, UPGRADE_ANNOTATION, DeploySettings, render
from operator_glue.reconciler import Reconciler

import k8s_testenv
from k8s_testenv import EXAMPLE, ROOT, official_flink_crd, official_prometheus_rule_crd

# func_only: the fixtures' time (a cold build of the binaries) is bounded by k8s_testenv.BUILD_TIMEOUT_S instead.
pytestmark = [pytest.mark.k8s, pytest.mark.timeout(900, func_only=True)]
NAMESPACE = "mmon"
MMON = str(Path(sys.executable).parent / "mmon")


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory):
    try:
        k8s_testenv.ensure_binaries()
        plane = k8s_testenv.start(tmp_path_factory.mktemp("k8s"))
    except k8s_testenv.NotBuilt as err:
        pytest.skip(str(err))
    yield plane
    plane.stop()


@pytest.fixture(scope="module")
def dyn(control_plane):
    """A dynamic client with the CRDs installed and the namespace created."""
    client = connect(str(control_plane.kubeconfig))
    definitions = [crd.custom_resource_definition(), official_flink_crd("flinkdeployments"), official_flink_crd("flinksessionjobs"),
                   official_prometheus_rule_crd()]
    for definition in definitions:
        apply(client, definition)
    crds = resource_api(client, "apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert poll(lambda: all(_established(crds.get(name=d["metadata"]["name"]).to_dict()) for d in definitions), 60)
    apply(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    client.resources.invalidate_cache()
    return client


def _established(definition: dict) -> bool:
    return any(c["type"] == "Established" and c["status"] == "True" for c in (definition.get("status") or {}).get("conditions") or [])


def poll(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def get(dyn, api_version: str, kind: str, name: str) -> dict:
    return resource_api(dyn, api_version, kind).get(name=name, namespace=NAMESPACE).to_dict()


# --- the API server's own validation ------------------------------------------------------------------

def test_every_rendered_and_checked_in_manifest_passes_strict_server_side_dry_run(dyn):
    spec = load_spec(EXAMPLE)
    bodies = [m.body for m in render(spec, DeploySettings(name="iris", namespace=NAMESPACE))]
    bodies += [m.body for m in render(spec, DeploySettings(name="iris", namespace=NAMESPACE, session_cluster="s"))]
    bodies += [yaml.safe_load((ROOT / "k8s" / "iris" / "modelmonitor.yaml").read_text())]
    for path in sorted((ROOT / "k8s" / "operator").glob("*.yaml")):
        bodies += list(yaml.safe_load_all(path.read_text()))
    checked = []
    for body in bodies:
        if body["kind"] in ("KafkaTopic", "PodMonitor"):
            continue  # their CRDs are not installed (see the module docstring)
        stored = apply(dyn, body, dry_run=True)
        assert stored["metadata"]["name"] == body["metadata"]["name"]
        checked.append(body["kind"])
    assert {"ConfigMap", "FlinkDeployment", "FlinkSessionJob", "Deployment", "Service", "HorizontalPodAutoscaler",
            "NetworkPolicy", "ModelMonitor", "Role", "RoleBinding", "ServiceAccount", "PrometheusRule"} <= set(checked)


def rendered(kind: str) -> dict:
    spec = load_spec(EXAMPLE)
    return next(m.body for m in render(spec, DeploySettings(name="iris", namespace=NAMESPACE,
                                                            logger_ingress_namespaces=("monitoring",)))
                if m.body["kind"] == kind)


def test_the_api_server_stores_the_security_context_and_network_policy_as_rendered(dyn):
    """Dry-run applies return the object as it would be stored: nothing of ours dropped or rewritten."""
    policy = rendered("NetworkPolicy")
    assert apply(dyn, policy, dry_run=True)["spec"] == policy["spec"]
    for kind, pod_path in [("Deployment", ["template", "spec"]), ("FlinkDeployment", ["podTemplate", "spec"])]:
        body = rendered(kind)
        stored = apply(dyn, body, dry_run=True)["spec"]
        pod, stored_pod = body["spec"], stored
        for key in pod_path:
            pod, stored_pod = pod[key], stored_pod[key]
        assert stored_pod["securityContext"] == pod["securityContext"]
        assert stored_pod["containers"][0]["securityContext"] == pod["containers"][0]["securityContext"]
        assert stored_pod["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"] == {
            "name": "iris-kafka", "key": "properties.json", "optional": True}


def test_the_api_server_rejects_a_network_policy_with_a_bad_port(dyn):
    policy = copy.deepcopy(rendered("NetworkPolicy"))
    policy["spec"]["egress"][1]["ports"][0]["protocol"] = "ICMP"
    with pytest.raises(ApiException) as raised:
        apply(dyn, policy, dry_run=True)
    assert raised.value.status == 422, raised.value.body
    assert "spec.egress[1].ports[0].protocol: Unsupported value: \"ICMP\"" in json.loads(raised.value.body)["message"]


def test_the_api_server_stores_the_prometheus_rule_as_rendered_and_rejects_a_bad_duration(dyn):
    rule = rendered("PrometheusRule")
    assert apply(dyn, rule, dry_run=True)["spec"] == rule["spec"]
    bad = copy.deepcopy(rule)
    bad["spec"]["groups"][0]["rules"][0]["keep_firing_for"] = "5 minutes"
    with pytest.raises(ApiException) as raised:
        apply(dyn, bad, dry_run=True)
    assert raised.value.status == 422, raised.value.body
    assert "spec.groups[0].rules[0].keep_firing_for" in json.loads(raised.value.body)["message"]


# --- Pod Security Admission ("restricted") ------------------------------------------------------------

RESTRICTED = "restricted"


@pytest.fixture(scope="module")
def restricted_namespace(dyn) -> str:
    """A namespace enforcing the restricted Pod Security Standard, with the pods' ServiceAccounts."""
    apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": RESTRICTED, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    for account in ("default", "flink", "mmon-operator"):
        apply(dyn, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": RESTRICTED}})
    return RESTRICTED


def pods_we_ship() -> dict[str, dict]:
    """Each component's pod as the cluster would create it: the logger's and the controller's from their
    Deployments, the job's from the FlinkDeployment's podTemplate with the image the Flink operator sets."""
    job = rendered("FlinkDeployment")["spec"]
    job_pod = copy.deepcopy(job["podTemplate"])
    job_pod["spec"]["serviceAccountName"] = job["serviceAccount"]
    job_pod["spec"]["containers"][0]["image"] = job["image"]
    operator = yaml.safe_load((ROOT / "k8s" / "operator" / "deployment.yaml").read_text())
    templates = {"job": job_pod, "logger": rendered("Deployment")["spec"]["template"], "operator": operator["spec"]["template"]}
    return {name: {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"iris-{name}", "namespace": RESTRICTED},
                   "spec": template["spec"]} for name, template in templates.items()}


@pytest.mark.parametrize("component", ["job", "logger", "operator"])
def test_the_pods_are_admitted_under_the_restricted_pod_security_standard(dyn, restricted_namespace, component):
    pod = pods_we_ship()[component]
    stored = resource_api(dyn, "v1", "Pod").create(body=pod, namespace=restricted_namespace, dry_run="All").to_dict()
    assert stored["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert stored["spec"]["securityContext"]["runAsUser"] == 9999


@pytest.mark.parametrize("remove, violation", [
    (["spec", "securityContext", "seccompProfile"], "seccompProfile"),
    (["spec", "securityContext", "runAsNonRoot"], "runAsNonRoot != true"),
    (["spec", "containers", 0, "securityContext", "allowPrivilegeEscalation"], "allowPrivilegeEscalation != false"),
    (["spec", "containers", 0, "securityContext", "capabilities"], "unrestricted capabilities"),
])
def test_each_setting_is_needed_for_admission(dyn, restricted_namespace, remove, violation):
    pod = pods_we_ship()["logger"]
    node = pod
    for key in remove[:-1]:
        node = node[key]
    del node[remove[-1]]
    with pytest.raises(ApiException) as raised:
        resource_api(dyn, "v1", "Pod").create(body=pod, namespace=restricted_namespace, dry_run="All")
    assert raised.value.status == 403, raised.value.body
    message = json.loads(raised.value.body)["message"]
    assert 'violates PodSecurity "restricted:latest"' in message and violation in message, message


@pytest.mark.parametrize("kind, path, misspelt", [
    ("Deployment", ["spec", "template", "spec", "containers", 0], "imagePullPolicyy"),
    ("HorizontalPodAutoscaler", ["spec"], "maxReplica"),
    ("FlinkDeployment", ["spec"], "jobManger"),
    ("FlinkDeployment", ["spec", "podTemplate", "spec", "containers", 0], "volumeMount"),
    ("FlinkDeployment", ["spec", "podTemplate", "spec", "securityContext"], "seccompProfiles"),
    ("NetworkPolicy", ["spec"], "podSelectr"),
    ("ModelMonitor", ["spec", "window"], "durration"),
])
def test_the_api_server_rejects_a_misspelt_field(dyn, kind, path, misspelt):
    spec = load_spec(EXAMPLE)
    bodies = [m.body for m in render(spec, DeploySettings(name="iris", namespace=NAMESPACE))]
    bodies.append(yaml.safe_load((ROOT / "k8s" / "iris" / "modelmonitor.yaml").read_text()))
    body = copy.deepcopy(next(b for b in bodies if b["kind"] == kind))
    node = body
    for key in path:
        node = node[key]
    node[misspelt] = "x"
    with pytest.raises(ApiException) as raised:
        apply(dyn, body, dry_run=True)
    # Server-side apply rejects any field outside the schema, as HTTP 500 (kubernetes/kubernetes#139253).
    assert raised.value.status in (400, 500), raised.value.body
    assert f"{misspelt}: field not declared in schema" in json.loads(raised.value.body)["message"]
    with pytest.raises(ApiException) as raised:
        resource_api(dyn, body["apiVersion"], body["kind"]).create(
            body=body, namespace=NAMESPACE, dry_run="All", query_params=[("fieldValidation", "Strict")])
    assert raised.value.status == 400, raised.value.body
    assert f'unknown field "{".".join(map(str, path)).replace(".0", "[0]")}.{misspelt}"' in json.loads(raised.value.body)["message"]


def test_the_api_server_stores_features_as_names_or_name_and_type_and_the_output(dyn):
    """Issue 13's fields: a feature entry is a name or {name, type} (kept as sent: no structural type fits
    both), the output, stats.top_k and outliers.unseen, under strict field validation."""
    from operator_glue.manifests import model_monitor

    body = model_monitor(load_spec(ROOT / "examples" / "penguins" / "monitor.yaml"),
                         DeploySettings(name="penguins", namespace=NAMESPACE))[0].body
    body["spec"]["input"]["features"][1] = "bill_length_mm"
    stored = resource_api(dyn, body["apiVersion"], body["kind"]).create(
        body=body, namespace=NAMESPACE, dry_run="All", query_params=[("fieldValidation", "Strict")]).to_dict()
    assert stored["spec"]["input"]["features"][:2] == [{"name": "island", "type": "categorical"}, "bill_length_mm"]
    assert stored["spec"]["output"] == body["spec"]["output"]
    assert (stored["spec"]["stats"]["top_k"], stored["spec"]["outliers"]["unseen"]) == (5, True)
    assert parse_spec(stored["spec"]).input.categorical == ("island", "sex")


# --- the controller ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def iris_monitor(dyn, control_plane, tmp_path_factory):
    """The Iris ModelMonitor and its baseline ConfigMap, created through `mmon k8s apply --as-modelmonitor`
    from a copy of the example spec with a baseline file beside it."""
    folder = tmp_path_factory.mktemp("spec")
    (folder / "monitor.yaml").write_text(EXAMPLE.read_text())
    (folder / "baseline.json").write_text('{"model": "iris", "features": {}}\n')
    result = subprocess.run([MMON, "k8s", "apply", str(folder / "monitor.yaml"), "--as-modelmonitor",
                             "--namespace", NAMESPACE, "--kubeconfig", str(control_plane.kubeconfig)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "ConfigMap/iris-baseline applied" in result.stdout and "ModelMonitor/iris applied" in result.stdout
    return get(dyn, crd.API_VERSION, crd.KIND, "iris")


def test_one_pass_applies_the_children_with_owner_references_and_writes_status(dyn, iris_monitor):
    reconciler = Reconciler(dyn, DeploySettings(name=""))
    outcome = reconciler.reconcile(iris_monitor)
    assert set(outcome.skipped) == ({f"KafkaTopic/iris-{t}" for t in ("inference", "stats", "outliers", "drift", "dead-letter")}
                                    | {"KafkaTopic/model-drift", "KafkaTopic/alerts", "PodMonitor/iris"})  # the spec's defaults
    assert set(outcome.applied) == {"ConfigMap/iris-spec", "FlinkDeployment/iris", "Deployment/iris-logger",
                                    "Service/iris-logger", "HorizontalPodAutoscaler/iris-logger", "NetworkPolicy/iris-logger",
                                    "PrometheusRule/iris"}

    deployment = get(dyn, "flink.apache.org/v1beta1", "FlinkDeployment", "iris")
    assert deployment["spec"]["flinkVersion"] == "v2_2"
    assert deployment["spec"]["job"]["args"][-4:] == ["--config", "/opt/mmon/spec/monitor.yaml", "--kafka", "127.0.0.1:9092"]
    config_map = get(dyn, "v1", "ConfigMap", "iris-spec")
    in_pod = parse_spec(yaml.safe_load(config_map["data"]["monitor.yaml"]))
    assert in_pod == parse_spec({**iris_monitor["spec"], "baseline": "/opt/mmon/baseline/baseline.json"})
    for api_version, kind, name in [("v1", "ConfigMap", "iris-spec"), ("flink.apache.org/v1beta1", "FlinkDeployment", "iris"),
                                    ("apps/v1", "Deployment", "iris-logger"), ("v1", "Service", "iris-logger"),
                                    ("autoscaling/v2", "HorizontalPodAutoscaler", "iris-logger"),
                                    ("networking.k8s.io/v1", "NetworkPolicy", "iris-logger"),
                                    ("monitoring.coreos.com/v1", "PrometheusRule", "iris")]:
        owners = get(dyn, api_version, kind, name)["metadata"]["ownerReferences"]
        assert owners == [{"apiVersion": crd.API_VERSION, "kind": crd.KIND, "name": "iris",
                           "uid": iris_monitor["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]

    status = get(dyn, crd.API_VERSION, crd.KIND, "iris")["status"]
    assert status["observedGeneration"] == 1
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Applied"]["status"] == "True" and "skipped (CRD not installed)" in conditions["Applied"]["message"]
    assert conditions["JobRunning"]["status"] == "Unknown"
    assert conditions["BaselineFound"]["status"] == "True"


def test_a_missing_baseline_config_map_is_reported(dyn, iris_monitor):
    body = {"apiVersion": crd.API_VERSION, "kind": crd.KIND, "metadata": {"name": "nobase", "namespace": NAMESPACE},
            "spec": {**iris_monitor["spec"], "baseline": "nobase-baseline"}}
    monitor = apply(dyn, body)
    status = Reconciler(dyn, DeploySettings(name="")).reconcile(monitor).status
    baseline = {c["type"]: c for c in status["conditions"]}["BaselineFound"]
    assert (baseline["status"], baseline["reason"]) == ("False", "NotFound")
    assert "nobase-baseline" in baseline["message"]
    resource_api(dyn, crd.API_VERSION, crd.KIND).delete(name="nobase", namespace=NAMESPACE)


def test_kafka_properties_of_a_model_monitor_stay_out_of_the_config_map_and_are_named(dyn, iris_monitor):
    properties = {"security.protocol": "SASL_SSL", "sasl.jaas.config": 'PlainLoginModule required password="pw-123";'}
    body = {"apiVersion": crd.API_VERSION, "kind": crd.KIND, "metadata": {"name": "sasl", "namespace": NAMESPACE},
            "spec": {**iris_monitor["spec"], "kafka": {**iris_monitor["spec"]["kafka"], "properties": properties}}}
    status = Reconciler(dyn, DeploySettings(name="")).reconcile(apply(dyn, body)).status
    applied = {c["type"]: c for c in status["conditions"]}["Applied"]
    assert applied["status"] == "True"
    assert applied["message"].endswith("kafka.properties (sasl.jaas.config, security.protocol) not rendered: "
                                       "put them in Secret sasl-kafka, key properties.json, as a JSON object")
    config_map = get(dyn, "v1", "ConfigMap", "sasl-spec")
    assert "pw-123" not in json.dumps(config_map) and yaml.safe_load(config_map["data"]["monitor.yaml"])["kafka"]["properties"] == {}
    resource_api(dyn, crd.API_VERSION, crd.KIND).delete(name="sasl", namespace=NAMESPACE)


def test_a_second_pass_changes_nothing(dyn, iris_monitor):
    reconciler = Reconciler(dyn, DeploySettings(name=""))
    reconciler.reconcile(get(dyn, crd.API_VERSION, crd.KIND, "iris"))
    children = [("v1", "ConfigMap", "iris-spec"), ("flink.apache.org/v1beta1", "FlinkDeployment", "iris"),
                ("apps/v1", "Deployment", "iris-logger"), ("v1", "Service", "iris-logger"),
                ("autoscaling/v2", "HorizontalPodAutoscaler", "iris-logger"),
                ("networking.k8s.io/v1", "NetworkPolicy", "iris-logger"), (crd.API_VERSION, crd.KIND, "iris")]
    before = {kind: get(dyn, v, kind, name)["metadata"]["resourceVersion"] for v, kind, name in children}
    reconciler.reconcile(get(dyn, crd.API_VERSION, crd.KIND, "iris"))
    after = {kind: get(dyn, v, kind, name)["metadata"]["resourceVersion"] for v, kind, name in children}
    assert after == before


def test_the_controller_restarts_each_spec_change_by_its_class_and_keeps_a_pending_drain(dyn, iris_monitor):
    """The running spec (the ``-spec`` ConfigMap of the last pass) decides the restart: an incompatible change (the
    window length) renders a drained savepoint, kept while the spec stays the same (the Flink operator may not have
    carried it out yet); a compatible change after it restores the last state."""
    def deploy(spec: dict) -> dict:
        body = {"apiVersion": crd.API_VERSION, "kind": crd.KIND, "metadata": {"name": "upgrade", "namespace": NAMESPACE},
                "spec": spec}
        outcome = Reconciler(dyn, DeploySettings(name="")).reconcile(apply(dyn, body))
        assert {c["type"]: c for c in outcome.status["conditions"]}["Applied"]["status"] == "True"
        job = get(dyn, "flink.apache.org/v1beta1", "FlinkDeployment", "upgrade")
        return {"mode": job["spec"]["job"]["upgradeMode"], "allow": job["spec"]["job"].get("allowNonRestoredState", False),
                "note": (job["metadata"].get("annotations") or {}).get(UPGRADE_ANNOTATION, "")}

    first = copy.deepcopy(iris_monitor["spec"])
    assert deploy(first) == {"mode": "last-state", "allow": False, "note": ""}
    longer = copy.deepcopy(first)
    longer["window"]["duration"] = "60s"
    drained = deploy(longer)
    assert (drained["mode"], drained["allow"]) == ("savepoint", True) and "window.duration" in drained["note"]
    assert deploy(longer) == drained  # a second pass of the same spec keeps the pending drain
    calmer = copy.deepcopy(longer)
    calmer["outliers"]["sigma"] = 4
    assert deploy(calmer)["mode"] == "last-state"
    resource_api(dyn, crd.API_VERSION, crd.KIND).delete(name="upgrade", namespace=NAMESPACE)


def test_the_operator_role_is_enough_to_reconcile_and_no_more(dyn, iris_monitor, control_plane):
    """Impersonating the controller's ServiceAccount (k8s/operator/rbac.yaml): a pass succeeds, deleting fails."""
    for body in yaml.safe_load_all((ROOT / "k8s" / "operator" / "rbac.yaml").read_text()):
        apply(dyn, body)
    api_client = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    api_client.set_default_header("Impersonate-User", "system:serviceaccount:mmon:mmon-operator")
    as_operator = DynamicClient(api_client)
    outcome = Reconciler(as_operator, DeploySettings(name="")).reconcile(get(as_operator, crd.API_VERSION, crd.KIND, "iris"))
    assert outcome.status["conditions"][0]["status"] == "True", outcome.status
    with pytest.raises(ApiException) as raised:
        resource_api(as_operator, "v1", "ConfigMap").delete(name="iris-spec", namespace=NAMESPACE)
    assert raised.value.status == 403
    with pytest.raises(ApiException) as raised:
        resource_api(as_operator, "v1", "Secret").get(namespace=NAMESPACE)
    assert raised.value.status == 403


def test_the_controller_loop_copies_the_flink_job_state_and_rolls_a_spec_change_through(dyn, iris_monitor, control_plane):
    """`mmon operator` runs as a real process; the Flink operator's part is played by patching the
    FlinkDeployment's status subresource the way it would."""
    operator = subprocess.Popen([MMON, "operator", "--namespace", NAMESPACE, "--kubeconfig", str(control_plane.kubeconfig),
                                 "--resync", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deployments = resource_api(dyn, "flink.apache.org/v1beta1", "FlinkDeployment")
        deployments.status.patch(name="iris", namespace=NAMESPACE, content_type="application/merge-patch+json",
                                 body={"status": {"lifecycleState": "STABLE", "jobStatus": {"state": "RUNNING"}}})
        assert poll(lambda: monitor_status(dyn).get("jobState") == "RUNNING", 30), monitor_status(dyn)
        conditions = {c["type"]: c for c in monitor_status(dyn)["conditions"]}
        assert conditions["JobRunning"]["status"] == "True" and monitor_status(dyn)["lifecycleState"] == "STABLE"

        old_hash = get(dyn, "flink.apache.org/v1beta1", "FlinkDeployment", "iris")["spec"]["podTemplate"]["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
        resource_api(dyn, crd.API_VERSION, crd.KIND).patch(
            name="iris", namespace=NAMESPACE, content_type="application/merge-patch+json",
            body={"spec": {"window": {"duration": "30s"}}})
        assert poll(lambda: monitor_status(dyn).get("observedGeneration") == 2, 30), monitor_status(dyn)
        in_pod = yaml.safe_load(get(dyn, "v1", "ConfigMap", "iris-spec")["data"]["monitor.yaml"])
        assert in_pod["window"]["duration"] == "30000ms"
        new_hash = get(dyn, "flink.apache.org/v1beta1", "FlinkDeployment", "iris")["spec"]["podTemplate"]["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
        assert new_hash != old_hash

        resource_api(dyn, crd.API_VERSION, crd.KIND).patch(
            name="iris", namespace=NAMESPACE, content_type="application/merge-patch+json",
            body={"spec": {"drift": {"metrics": {"kl": {"threshold": "often"}}}}})
        assert poll(lambda: monitor_status(dyn).get("observedGeneration") == 3, 30), monitor_status(dyn)
        applied = {c["type"]: c for c in monitor_status(dyn)["conditions"]}["Applied"]
        assert applied["status"] == "False" and applied["reason"] == "InvalidSpec"
        assert "drift.metrics.kl.threshold" in applied["message"]
    finally:
        operator.terminate()
        output = operator.communicate(timeout=30)[0]
    assert "mmon/iris: applied 7 resources" in output, output


def monitor_status(dyn) -> dict:
    return get(dyn, crd.API_VERSION, crd.KIND, "iris").get("status") or {}


def test_a_status_write_for_a_monitor_deleted_mid_pass_is_reported_not_raised(dyn, iris_monitor):
    """Issue 20: a status write that failed (here the API server's 404 for a ModelMonitor deleted while its pass
    ran) raised out of the pass, and out of the controller process. The pass ends, saying why."""
    body = {"apiVersion": crd.API_VERSION, "kind": crd.KIND, "metadata": {"name": "deleted", "namespace": NAMESPACE},
            "spec": iris_monitor["spec"]}
    monitor = apply(dyn, body)
    resource_api(dyn, crd.API_VERSION, crd.KIND).delete(name="deleted", namespace=NAMESPACE)
    outcome = Reconciler(dyn, DeploySettings(name="")).reconcile(monitor)
    assert outcome.status_error.startswith("404 Not Found: "), outcome.status_error
    assert '"deleted" not found' in outcome.status_error
    assert outcome.status["conditions"][0]["status"] == "True"  # what it would have written


def _without_status_writes(dyn, control_plane, user: str) -> DynamicClient:
    """A client as ``user``, bound to the operator's Role (k8s/operator/rbac.yaml) less modelmonitors/status:
    every status write it makes is refused (403)."""
    role = next(b for b in yaml.safe_load_all((ROOT / "k8s" / "operator" / "rbac.yaml").read_text()) if b["kind"] == "Role")
    role["metadata"]["name"] = user
    role["rules"] = [rule for rule in role["rules"] if rule["resources"] != ["modelmonitors/status"]]
    apply(dyn, role)
    apply(dyn, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": user, "namespace": NAMESPACE},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
    api_client = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    api_client.set_default_header("Impersonate-User", user)
    return DynamicClient(api_client)


def test_a_refused_status_write_is_logged_and_written_on_the_next_pass(dyn, iris_monitor, control_plane, caplog):
    """A pass of the controller loop whose status writes fail (403 here; a 409 or a 500 take the same path) goes
    on to the next monitor and logs each failure; the next pass, allowed to write, writes the status."""
    body = {"apiVersion": crd.API_VERSION, "kind": crd.KIND, "metadata": {"name": "retried", "namespace": NAMESPACE},
            "spec": iris_monitor["spec"]}
    apply(dyn, body)
    refused = Reconciler(_without_status_writes(dyn, control_plane, "mmon-no-status"), DeploySettings(name=""))
    with caplog.at_level("WARNING", logger="mmon.operator"):
        refused.reconcile_all(NAMESPACE)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith(f"{NAMESPACE}/retried: status not written (403 Forbidden: ") and
               m.endswith("); retrying on the next pass") for m in warnings), warnings
    assert "status" not in get(dyn, crd.API_VERSION, crd.KIND, "retried")

    Reconciler(dyn, DeploySettings(name="")).reconcile_all(NAMESPACE)
    status = get(dyn, crd.API_VERSION, crd.KIND, "retried")["status"]
    assert status["observedGeneration"] == 1 and status["conditions"][0]["type"] == "Applied"
    resource_api(dyn, crd.API_VERSION, crd.KIND).delete(name="retried", namespace=NAMESPACE)


def test_the_watch_relists_after_410_gone(dyn, iris_monitor, control_plane, caplog):
    """The loop's watch starts from a resourceVersion that etcd has compacted away: the API server answers
    410 Gone, and the loop lists again instead of failing."""
    listed = []

    class StaleFirstWatch(Reconciler):
        def reconcile_all(self, namespace):
            fresh = super().reconcile_all(namespace)
            listed.append(time.monotonic())
            return stale if len(listed) == 1 else fresh

    reconciler = StaleFirstWatch(dyn, DeploySettings(name=""))
    stale = reconciler.monitors.get(namespace=NAMESPACE).to_dict()["metadata"]["resourceVersion"]
    for bump in ("bump-1", "bump-2"):  # the watch starts at stale + 1: compact past it
        apply(dyn, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": bump, "namespace": NAMESPACE}})
    control_plane.compact_etcd()
    resync = 30
    with caplog.at_level("INFO", logger="mmon.operator"):
        reconciler.run(NAMESPACE, resync_seconds=resync, keep_going=lambda: len(listed) < 2)
    assert listed[1] - listed[0] < resync / 2, "the relist waited for the resync period, not for 410 Gone"
    assert "watch expired (410 Gone): relisting" in caplog.text


def test_deleting_the_model_monitor_deletes_its_children(dyn, iris_monitor, control_plane):
    """Runs last: kube-controller-manager's garbage collector follows the ownerReferences."""
    control_plane.start_garbage_collector()
    resource_api(dyn, crd.API_VERSION, crd.KIND).delete(name="iris", namespace=NAMESPACE)
    children = [("v1", "ConfigMap", "iris-spec"), ("flink.apache.org/v1beta1", "FlinkDeployment", "iris"),
                ("apps/v1", "Deployment", "iris-logger"), ("v1", "Service", "iris-logger"),
                ("autoscaling/v2", "HorizontalPodAutoscaler", "iris-logger"),
                ("networking.k8s.io/v1", "NetworkPolicy", "iris-logger")]

    def gone(api_version, kind, name) -> bool:
        try:
            get(dyn, api_version, kind, name)
            return False
        except ApiException as err:
            return err.status == 404

    assert poll(lambda: all(gone(*child) for child in children), 90, interval=1), \
        [child for child in children if not gone(*child)]
    get(dyn, "v1", "ConfigMap", "iris-baseline")  # not owned: created by `mmon k8s apply`, kept
