"""Rendered and checked-in Kubernetes manifests against their schemas (no API server needed).

- k8s/iris/* and k8s/crd/modelmonitor.yaml are exactly what the renderer produces (k8s/iris/render.sh).
- FlinkDeployment / FlinkSessionJob validate against the official, unchanged CRDs of the Flink Kubernetes
  Operator 1.15.0 (vendored in k8s/vendor/, the release that accepts flinkVersion v2_2).
- Pods run non-root without privileges; no Kafka property (credentials) reaches a ConfigMap: the pods
  read them from a Secret, and the job merges them back at load; the logger's NetworkPolicy.
- The ModelMonitor CRD schema and parse_spec agree on the example and on variants of it.
- A misspelt field fails. Kubernetes prunes or (fieldValidation=Strict) rejects unknown fields; jsonschema
  would accept them, so `strict()` closes every object schema the way the API server's strict mode does.
"""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from contract import outputs as output_names
from contract.kafka_properties import ENV_VAR as KAFKA_PROPERTIES_ENV
from contract.spec import ConfigError, load_spec, parse_spec

from operator_glue import crd, manifests
from operator_glue.manifests import FLINK_UID, FLINK_VERSION, DeploySettings, model_monitor, render, to_yaml

from k8s_testenv import EXAMPLE, ROOT, official_flink_crd, official_prometheus_rule_crd


def strict(schema):
    """A copy of an OpenAPI v3 schema for jsonschema: objects with properties reject unknown fields
    (as fieldValidation=Strict does), and ``nullable`` becomes a null type."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def crd_validator(crd_body: dict, version: str) -> jsonschema.Draft7Validator:
    """The served version's schema, with the fields the API server implies at the root of every object."""
    served = next(v for v in crd_body["spec"]["versions"] if v["name"] == version)
    root = copy.deepcopy(served["schema"]["openAPIV3Schema"])
    root["properties"] = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                          **root.get("properties", {})}
    return jsonschema.Draft7Validator(strict(root))


def errors(validator: jsonschema.Draft7Validator, body: dict) -> list[str]:
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body))


@pytest.fixture(scope="module")
def flink_validators() -> dict[str, jsonschema.Draft7Validator]:
    """Validators of the official 1.15.0 CRDs (v1beta1)."""
    return {kind: crd_validator(official_flink_crd(f"{kind.lower()}s"), "v1beta1")
            for kind in ("FlinkDeployment", "FlinkSessionJob")}


@pytest.fixture(scope="module")
def iris_manifests() -> dict[str, dict]:
    spec = load_spec(EXAMPLE)
    settings = DeploySettings(name="iris", kafka_bootstrap="mmon-kafka-bootstrap:9092")
    bodies = [m.body for m in render(spec, settings)]
    bodies += [m.body for m in render(spec, DeploySettings(name="iris", session_cluster="flink-session"))]
    return {body["kind"]: body for body in bodies}


def test_checked_in_manifests_are_what_the_renderer_produces(tmp_path):
    subprocess.run(["bash", str(ROOT / "k8s" / "iris" / "render.sh"), str(tmp_path)], check=True, capture_output=True,
                   env={"MMON": str(Path(sys.executable).parent / "mmon"), "PATH": "/usr/bin:/bin"}, timeout=120)
    for folder in ("iris", "crd"):
        rendered = sorted(p.name for p in (tmp_path / folder).glob("*.yaml"))
        assert rendered == sorted(p.name for p in (ROOT / "k8s" / folder).glob("*.yaml"))
        for name in rendered:
            assert (tmp_path / folder / name).read_text() == (ROOT / "k8s" / folder / name).read_text(), \
                f"k8s/{folder}/{name} is stale: run k8s/iris/render.sh"
    assert {"flinkdeployment.yaml", "flinksessionjob.yaml", "logger.yaml", "kafkatopics.yaml"} <= set(rendered_names(tmp_path))


def rendered_names(out: Path) -> list[str]:
    return [p.name for p in (out / "iris").glob("*.yaml")]


def test_checked_in_crd_is_generated_from_the_monitor_spec():
    checked_in = yaml.safe_load((ROOT / "k8s" / "crd" / "modelmonitor.yaml").read_text())
    assert checked_in == crd.custom_resource_definition()
    spec_props = checked_in["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec_props["window"]["properties"]["duration"]["x-kubernetes-int-or-string"] is True
    assert spec_props["input"]["properties"]["format"]["enum"] == ["thesis", "kserve-v1", "oip-v2"]
    assert spec_props["kafka"]["properties"]["properties"]["additionalProperties"] == {"type": "string", "minLength": 1}
    assert spec_props["outliers"]["properties"]["sigma"]["nullable"] is True
    assert spec_props["model"]["properties"]["name"]["description"] == "Model name; the key of every output record."
    assert "Secret <name>-kafka" in spec_props["kafka"]["properties"]["properties"]["description"]
    features = spec_props["input"]["properties"]["features"]
    assert features["type"] == "array" and features["items"]["x-kubernetes-preserve-unknown-fields"] is True
    output = spec_props["output"]
    assert output["nullable"] is True and output["properties"]["type"]["enum"] == ["categorical", "numeric"]
    assert output["properties"]["join_timeout"]["x-kubernetes-int-or-string"] is True
    assert spec_props["stats"]["properties"]["top_k"]["type"] == "integer"
    assert spec_props["outliers"]["properties"]["unseen"]["type"] == "boolean"


def test_the_official_1_15_crd_is_the_one_that_knows_flink_2_2():
    versions = official_flink_crd("flinkdeployments")["spec"]["versions"]
    assert [v["name"] for v in versions] == ["v1beta1"]
    enum = versions[0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["flinkVersion"]["enum"]
    assert enum[-3:] == ["v2_0", "v2_1", "v2_2"]


def test_flink_deployment_matches_the_official_crd(flink_validators, iris_manifests):
    assert iris_manifests["FlinkDeployment"]["spec"]["flinkVersion"] == "v2_2"
    assert errors(flink_validators["FlinkDeployment"], iris_manifests["FlinkDeployment"]) == []


def test_flink_session_job_matches_the_official_crd(flink_validators, iris_manifests):
    assert errors(flink_validators["FlinkSessionJob"], iris_manifests["FlinkSessionJob"]) == []


@pytest.mark.parametrize("kind, path, misspelt", [
    ("FlinkDeployment", ["spec"], "jobManger"),
    ("FlinkDeployment", ["spec", "job"], "entryclass"),
    ("FlinkDeployment", ["spec", "podTemplate", "spec", "containers", 0], "volumeMount"),
    ("FlinkDeployment", ["spec", "podTemplate", "spec", "securityContext"], "seccompProfiles"),
    ("FlinkDeployment", ["spec", "podTemplate", "spec", "containers", 0, "securityContext"], "capabilites"),
    ("FlinkSessionJob", ["spec"], "deploymentname"),
])
def test_a_misspelt_field_fails_the_official_crd(flink_validators, iris_manifests, kind, path, misspelt):
    validator = flink_validators[kind]
    body = copy.deepcopy(iris_manifests[kind])
    node = body
    for key in path:
        node = node[key]
    node[misspelt] = "x"
    assert any(misspelt in e and "Additional properties" in e for e in errors(validator, body)), errors(validator, body)


def test_a_wrong_seccomp_profile_type_fails_the_official_crd(flink_validators, iris_manifests):
    body = copy.deepcopy(iris_manifests["FlinkDeployment"])
    body["spec"]["podTemplate"]["spec"]["securityContext"]["seccompProfile"]["type"] = 1
    assert errors(flink_validators["FlinkDeployment"], body) == [
        "spec.podTemplate.spec.securityContext.seccompProfile.type: 1 is not of type 'string'"]


# --- security: pods, Secrets, network --------------------------------------------------------------------

def pod_specs() -> dict[str, dict]:
    """Every pod spec we ship: the job's pod template, the logger's and the controller's, as checked in."""
    job = yaml.safe_load((ROOT / "k8s" / "iris" / "flinkdeployment.yaml").read_text())
    logger = next(d for d in yaml.safe_load_all((ROOT / "k8s" / "iris" / "logger.yaml").read_text()) if d["kind"] == "Deployment")
    operator = yaml.safe_load((ROOT / "k8s" / "operator" / "deployment.yaml").read_text())
    return {"job": job["spec"]["podTemplate"]["spec"], "logger": logger["spec"]["template"]["spec"],
            "operator": operator["spec"]["template"]["spec"]}


@pytest.mark.parametrize("component", ["job", "logger", "operator"])
def test_pods_run_as_the_non_root_flink_user_without_privileges(component):
    pod = pod_specs()[component]
    security = pod["securityContext"]
    assert (security["runAsNonRoot"], security["runAsUser"], security["runAsGroup"]) == (True, FLINK_UID, FLINK_UID)
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


SECRET_PROPERTIES = {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                     "sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required '
                                         'username="mmon" password="s3cr3t-pw";',
                     "ssl.truststore.password": "trust-pw"}


@pytest.fixture()
def spec_with_credentials(tmp_path) -> Path:
    document = yaml.safe_load(EXAMPLE.read_text())
    document["kafka"]["properties"] = SECRET_PROPERTIES
    document["baseline"] = str(EXAMPLE.parent / document["baseline"])
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_no_kafka_property_is_rendered_and_the_pods_read_them_from_the_secret(spec_with_credentials):
    spec = load_spec(spec_with_credentials)
    settings = DeploySettings(name="iris", kafka_secret="iris-sasl")
    bodies = [m.body for m in render(spec, settings) + model_monitor(spec, settings)]
    text = to_yaml(bodies)
    assert "s3cr3t-pw" not in text and "trust-pw" not in text and "SASL_SSL" not in text
    in_pod = yaml.safe_load(next(b for b in bodies if b["kind"] == "ConfigMap")["data"]["monitor.yaml"])
    assert in_pod["kafka"]["properties"] == {}
    assert next(b for b in bodies if b["kind"] == "ModelMonitor")["spec"]["kafka"]["properties"] == {}
    kafka_env = {"name": "MMON_KAFKA_PROPERTIES", "valueFrom": {"secretKeyRef": {
        "name": "iris-sasl", "key": "properties.json", "optional": True}}}
    job = next(b for b in bodies if b["kind"] == "FlinkDeployment")["spec"]["podTemplate"]["spec"]["containers"][0]
    assert job["env"] == [kafka_env]
    logger = next(b for b in bodies if b["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert logger["env"] == [kafka_env, {"name": "MMON_LOGGER_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "iris-logger-token", "key": "token", "optional": True}}}]


def test_render_names_the_dropped_properties_but_not_their_values(spec_with_credentials):
    result = subprocess.run([str(Path(sys.executable).parent / "mmon"), "k8s", "render", str(spec_with_credentials),
                             "--kafka-secret", "iris-sasl"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert ("kafka.properties (sasl.jaas.config, sasl.mechanism, security.protocol, ssl.truststore.password) "
            "not rendered: put them in Secret iris-sasl, key properties.json") in result.stderr
    assert "s3cr3t-pw" not in result.stdout + result.stderr and "name: iris-sasl" in result.stdout


def test_the_job_reads_the_secret_properties_back_from_the_environment(tmp_path, monkeypatch):
    """The spec the pod mounts (no properties) plus $MMON_KAFKA_PROPERTIES from the Secret, at load."""
    spec = load_spec(EXAMPLE)
    config_map = next(m.body for m in render(spec, DeploySettings(name="iris")) if m.body["kind"] == "ConfigMap")
    mounted = tmp_path / "monitor.yaml"
    mounted.write_text(config_map["data"]["monitor.yaml"])
    monkeypatch.setenv(KAFKA_PROPERTIES_ENV, json.dumps({**SECRET_PROPERTIES, "request.timeout.ms": 30000}))
    assert dict(load_spec(mounted).kafka.properties) == {**SECRET_PROPERTIES, "request.timeout.ms": "30000"}
    monkeypatch.setenv(KAFKA_PROPERTIES_ENV, '{"sasl.jaas.config": password="unquoted"}')
    with pytest.raises(ConfigError, match=r"^MMON_KAFKA_PROPERTIES: not a JSON object") as raised:
        load_spec(mounted)
    assert "unquoted" not in str(raised.value)
    monkeypatch.setenv(KAFKA_PROPERTIES_ENV, '["security.protocol", "SSL"]')
    with pytest.raises(ConfigError, match="expected a JSON object"):
        load_spec(mounted)


def test_the_logger_network_policy_admits_only_its_port_and_reaches_only_kafka_and_dns():
    policy = next(d for d in yaml.safe_load_all((ROOT / "k8s" / "iris" / "logger.yaml").read_text())
                  if d["kind"] == "NetworkPolicy")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": "iris",
                                                             "app.kubernetes.io/component": "logger"}}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == [{
        "from": [{"podSelector": {}},
                 {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        "ports": [{"port": 8080, "protocol": "TCP"}]}]
    assert policy["spec"]["egress"] == [{"ports": [{"port": 9092, "protocol": "TCP"}]},
                                        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]


def test_the_network_policy_opens_every_bootstrap_port_and_needs_one():
    spec = load_spec(EXAMPLE)
    settings = DeploySettings(name="iris", kafka_bootstrap="kafka-0.k:9093, kafka-1.k:9093,kafka-ext:19092")
    policy = next(m.body for m in render(spec, settings) if m.body["kind"] == "NetworkPolicy")
    assert policy["spec"]["egress"][0] == {"ports": [{"port": 9093, "protocol": "TCP"}, {"port": 19092, "protocol": "TCP"}]}
    with pytest.raises(ConfigError, match="kafka.bootstrap_servers: 'kafka-0.k' has no port"):
        render(spec, DeploySettings(name="iris", kafka_bootstrap="kafka-0.k"))


# --- the ModelMonitor CRD and parse_spec agree ---------------------------------------------------------

@pytest.fixture(scope="module")
def model_monitor_validator() -> jsonschema.Draft7Validator:
    return crd_validator(crd.custom_resource_definition(), crd.VERSION)


@pytest.fixture()
def iris_model_monitor() -> dict:
    return yaml.safe_load((ROOT / "k8s" / "iris" / "modelmonitor.yaml").read_text())


def test_the_example_model_monitor_is_valid_for_schema_and_parse_spec(model_monitor_validator, iris_model_monitor):
    assert errors(model_monitor_validator, iris_model_monitor) == []
    spec = parse_spec(iris_model_monitor["spec"])
    assert spec.window.duration == 15_000 and spec.window.watermark_delay == 6_000
    assert str(spec.baseline) == "iris-baseline"
    assert spec.input.features == load_spec(EXAMPLE).input.features


@pytest.mark.parametrize("path, value, window_ms", [
    (["window", "duration"], 15, 15_000),
    (["window", "duration"], "500ms", 500),
    (["window", "duration"], "2m", 120_000),
    (["window", "duration"], " 1.5s ", 1_500),
])
def test_durations_the_schema_accepts_parse_to_milliseconds(model_monitor_validator, iris_model_monitor, path, value, window_ms):
    set_path(iris_model_monitor["spec"], path, value)
    assert errors(model_monitor_validator, iris_model_monitor) == []
    assert parse_spec(iris_model_monitor["spec"]).window.duration == window_ms


@pytest.mark.parametrize("path, value", [
    (["window", "duration"], "15 seconds"),
    (["window", "duration"], -1),
    (["input", "format"], "kserve-v3"),
    (["job", "parallelism"], "two"),
    (["outliers", "range"], "yes"),
    (["model", "name"], ""),
    (["window", "durration"], "15s"),
    (["kafka", "topics", "dead-letter"], "x"),
    (["sigma"], 3),
])
def test_values_the_schema_rejects_parse_spec_rejects_too(model_monitor_validator, iris_model_monitor, path, value):
    set_path(iris_model_monitor["spec"], path, value)
    assert errors(model_monitor_validator, iris_model_monitor) != []
    with pytest.raises(ConfigError):
        parse_spec(iris_model_monitor["spec"])


def test_a_threshold_is_left_to_parse_spec(model_monitor_validator, iris_model_monitor):
    """number-or-'auto' has no structural schema type; the reconciler reports parse_spec's error."""
    set_path(iris_model_monitor["spec"], ["drift", "metrics", "kl", "threshold"], "often")
    assert errors(model_monitor_validator, iris_model_monitor) == []
    with pytest.raises(ConfigError, match="drift.metrics.kl.threshold"):
        parse_spec(iris_model_monitor["spec"])


PENGUINS = ROOT / "examples" / "penguins" / "monitor.yaml"


@pytest.fixture()
def penguins_model_monitor() -> dict:
    spec = load_spec(PENGUINS)
    return model_monitor(spec, DeploySettings(name="penguins"))[0].body


def test_the_penguins_spec_as_a_model_monitor_is_valid_for_schema_and_parse_spec(model_monitor_validator,
                                                                                  penguins_model_monitor):
    """Categorical features, the output, stats.top_k and outliers.unseen: the issue 13 fields."""
    assert errors(model_monitor_validator, penguins_model_monitor) == []
    spec, local = parse_spec(penguins_model_monitor["spec"]), load_spec(PENGUINS)
    assert (spec.input.features, spec.output, spec.stats.top_k, spec.outliers.unseen) == \
        (local.input.features, local.output, local.stats.top_k, local.outliers.unseen)
    assert spec.input.categorical == ("island", "sex") and spec.output.join_timeout == 10_000


@pytest.mark.parametrize("features", [
    ["island", "body_mass_g"],
    [{"name": "island", "type": "categorical"}, "body_mass_g", {"name": "sex"}],
])
def test_features_as_names_or_name_and_type_pass_the_schema_and_parse_spec(model_monitor_validator,
                                                                            penguins_model_monitor, features):
    penguins_model_monitor["spec"]["input"]["features"] = features
    penguins_model_monitor["spec"]["drift"]["metrics"] = {"js": {"threshold": "auto"}}
    assert errors(model_monitor_validator, penguins_model_monitor) == []
    assert parse_spec(penguins_model_monitor["spec"]).input.names == tuple(
        f if isinstance(f, str) else f["name"] for f in features)


@pytest.mark.parametrize("path, value", [
    (["output", "type"], "text"),
    (["output", "join_timeout"], "half a minute"),
    (["output", "name"], ""),
    (["output", "joint_timeout"], "10s"),
    (["stats", "top_k"], "ten"),
    (["outliers", "unseen"], "yes"),
    (["input", "features"], []),
])
def test_bad_issue_13_fields_fail_the_schema_and_parse_spec(model_monitor_validator, penguins_model_monitor, path, value):
    set_path(penguins_model_monitor["spec"], path, value)
    assert errors(model_monitor_validator, penguins_model_monitor) != []
    with pytest.raises(ConfigError):
        parse_spec(penguins_model_monitor["spec"])


@pytest.mark.parametrize("feature", ["", {"name": "island", "type": "text"}, {"type": "numeric"},
                                     {"name": "island", "typo": 1}, 3, ["island"]])
def test_a_bad_feature_entry_is_left_to_parse_spec(model_monitor_validator, penguins_model_monitor, feature):
    """string-or-object has no structural schema type (nor, in v1.34, a CEL rule): the reconciler reports
    parse_spec's error, naming the entry."""
    penguins_model_monitor["spec"]["input"]["features"][0] = feature
    assert errors(model_monitor_validator, penguins_model_monitor) == []
    with pytest.raises(ConfigError, match=r"input\.features"):
        parse_spec(penguins_model_monitor["spec"])


def set_path(document: dict, path: list, value) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


# --- the image ---------------------------------------------------------------------------------------

def test_dockerfile_uses_the_project_jar_script_pins_and_non_root_user():
    """docker is not available here, so the image is checked statically."""
    dockerfile = (ROOT / "k8s" / "Dockerfile").read_text()
    assert re.search(r"^ARG FLINK_VERSION=(\S+)$", dockerfile, re.M).group(1) == FLINK_VERSION
    assert "FROM flink:${FLINK_VERSION}-java17" in dockerfile
    assert "COPY scripts/fetch_jars.sh" in dockerfile and "JARS_DIR=/jars bash scripts/fetch_jars.sh" in dockerfile
    assert "COPY --from=jars /jars/connector/ /opt/flink/lib/" in dockerfile
    assert "COPY jvm/udfs/src jvm/udfs/src" in dockerfile  # built by fetch_jars.sh in the jars stage
    assert "COPY --from=jars /jars/udfs/mmon-flink-udfs.jar /opt/flink/lib/" in dockerfile
    pyproject = (ROOT / "pyproject.toml").read_text()
    flink_pin = re.search(r'"apache-flink==([\d.*]+)"', pyproject).group(1)
    assert re.fullmatch(flink_pin.replace(".", r"\.").replace("*", r"\d+"), FLINK_VERSION)
    packages = re.findall(r'"(\w+)\*"', re.search(r"include = \[(.*)\]", pyproject).group(1))
    development_only = {"benchmarks", "devtools"}
    assert development_only < set(packages)
    for package in packages:
        assert (f"COPY {package} /opt/mmon/src/{package}" in dockerfile) == (package not in development_only), package
    assert "pip install --no-cache-dir /opt/mmon/src" in dockerfile
    assert "metrics-prometheus" in dockerfile
    assert dockerfile.rstrip().splitlines()[-1] == "USER flink"
    assert f'test "$(id -u flink):$(id -g flink)" = {FLINK_UID}:{FLINK_UID}' in dockerfile


# --- the dashboard -----------------------------------------------------------------------------------

def test_dashboard_queries_name_metrics_the_job_and_the_logger_export():
    dashboard = json.loads((ROOT / "k8s" / "monitoring" / "grafana-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    job_metrics = set(re.findall(r"flink_taskmanager_job_task_operator_mmon_(\w+)", exprs))
    documented = (ROOT / "flink_job" / "metrics.py").read_text()
    assert job_metrics and all(f"``{name}" in documented for name in job_metrics), job_metrics
    logger_source = (ROOT / "inference_logger" / "server.py").read_text()
    for name in set(re.findall(r"(mmon_logger_\w+?)(?:_total|_bucket)?\b", exprs)):
        assert f'"{name}"' in logger_source, name


def test_commands_in_the_manifests_parse_with_the_real_parsers():
    """The logger's and the controller's command lines, and the job's arguments, are accepted by their CLIs."""
    from flink_job.main import _parser as job_parser

    from inference_logger.server import build_parser as logger_parser
    from operator_glue.cli import operator_parser
    from operator_glue.manifests import job_args

    logger = yaml.safe_load_all((ROOT / "k8s" / "iris" / "logger.yaml").read_text())
    command = next(d for d in logger if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["/opt/mmon/venv/bin/mmon", "logger"]
    assert logger_parser().parse_args(command[2:]).host == "0.0.0.0"
    operator = yaml.safe_load((ROOT / "k8s" / "operator" / "deployment.yaml").read_text())
    command = operator["spec"]["template"]["spec"]["containers"][0]["command"]
    parsed = operator_parser().parse_args(command[2:])
    assert (parsed.namespace, parsed.logger_allow_namespace) == ("mmon", ["monitoring"])
    args = job_args(load_spec(EXAMPLE))
    assert args[args.index("-pym") + 1] == "flink_job.main"
    parsed = job_parser().parse_args(args[args.index("-pym") + 2:])
    assert (str(parsed.config), parsed.kafka) == ("/opt/mmon/spec/monitor.yaml", "127.0.0.1:9092")


@pytest.mark.parametrize("name", ["Iris_v2", "-iris", "x" * 46])
def test_a_name_kubernetes_would_reject_is_a_config_error(name):
    with pytest.raises(ConfigError, match="--name"):
        render(load_spec(EXAMPLE), DeploySettings(name=name))


# What a spec change does to the running monitor (issue 20): the Flink operator restarts the job from its last
# state for a compatible or migratable change, from a drained savepoint for an incompatible one.

def _changed(edit):
    document = yaml.safe_load(EXAMPLE.read_text())
    document["baseline"] = str(EXAMPLE.parent / document["baseline"])
    previous = parse_spec(copy.deepcopy(document))
    edit(document)
    return previous, parse_spec(document)


def _job_of(previous, spec, session_cluster=None) -> dict:
    settings = DeploySettings(name="iris", session_cluster=session_cluster)
    return next(m.body for m in render(spec, settings, previous) if m.body["kind"].startswith("Flink"))


@pytest.mark.parametrize("edit", [
    lambda d: d["outliers"].update(sigma=4.0),
    lambda d: d["input"]["features"].pop(),
], ids=["compatible", "migratable"])
def test_a_compatible_or_migratable_change_restarts_from_the_last_state(flink_validators, edit):
    body = _job_of(*_changed(edit))
    assert body["spec"]["job"]["upgradeMode"] == "last-state" and "allowNonRestoredState" not in body["spec"]["job"]
    assert body["metadata"]["annotations"][manifests.UPGRADE_ANNOTATION].endswith(": last-state")
    assert errors(flink_validators["FlinkDeployment"], body) == []


@pytest.mark.parametrize("session_cluster", [None, "flink-session"])
def test_an_incompatible_change_restarts_from_a_drained_savepoint(flink_validators, session_cluster):
    body = _job_of(*_changed(lambda d: d["window"].update(duration="60s")), session_cluster=session_cluster)
    job = body["spec"]["job"]
    assert (job["upgradeMode"], job["allowNonRestoredState"]) == ("savepoint", True)
    assert body["spec"]["flinkConfiguration"][manifests.DRAIN_OPTION] == "true"
    note = body["metadata"]["annotations"][manifests.UPGRADE_ANNOTATION]
    assert note.startswith("incompatible (window.duration 15000ms -> 60000ms)") and "drained savepoint" in note
    assert errors(flink_validators[body["kind"]], body) == []


def test_without_a_previous_spec_the_job_restores_its_last_state_and_drains_any_savepoint_stop(iris_manifests):
    for kind in ("FlinkDeployment", "FlinkSessionJob"):
        body = iris_manifests[kind]
        assert body["spec"]["job"]["upgradeMode"] == "last-state" and "annotations" not in body["metadata"]
        assert body["spec"]["flinkConfiguration"][manifests.DRAIN_OPTION] == "true"


def test_ground_truth_with_a_long_max_delay_keeps_the_state_in_rocksdb_and_gets_its_topics(flink_validators):
    document = manifests.spec_to_dict(load_spec(EXAMPLE))
    document["output"] = {"name": "score", "type": "numeric"}
    document["ground_truth"] = {"max_delay": "2d"}
    document["kafka"]["topics"]["labels"] = "iris-labels"
    bodies = [m.body for m in render(parse_spec(document), DeploySettings(name="iris"))]
    deployment = next(body for body in bodies if body["kind"] == "FlinkDeployment")
    assert deployment["spec"]["flinkConfiguration"]["state.backend.type"] == "rocksdb"
    assert errors(flink_validators["FlinkDeployment"], deployment) == []
    topics = {body["spec"]["topicName"] for body in bodies if body["kind"] == "KafkaTopic"}
    assert {"iris-labels", document["kafka"]["topics"]["performance"]} <= topics
    document["ground_truth"]["max_delay"] = "5m"
    short = next(m.body for m in render(parse_spec(document), DeploySettings(name="iris")) if m.body["kind"] == "FlinkDeployment")
    assert "state.backend.type" not in short["spec"]["flinkConfiguration"]


def test_mmon_k8s_render_takes_the_previous_spec(tmp_path):
    previous, spec = _changed(lambda d: d["window"].update(duration="60s"))
    paths = {}
    for name, document in (("previous", previous), ("new", spec)):
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(manifests.spec_to_dict(document)))
    out = subprocess.run([sys.executable, "-m", "mmon.cli", "k8s", "render", str(paths["new"]), "--previous",
                          str(paths["previous"]), "--name", "iris"], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    deployment = next(body for body in yaml.safe_load_all(out) if body["kind"] == "FlinkDeployment")
    assert deployment["spec"]["job"]["upgradeMode"] == "savepoint"


# --- the PrometheusRule on the alert episodes --------------------------------------------------------

@pytest.fixture(scope="module")
def prometheus_rule_validator() -> jsonschema.Draft7Validator:
    return crd_validator(official_prometheus_rule_crd(), "v1")


def _rules(body: dict) -> dict[str, dict]:
    return {rule["alert"]: rule for group in body["spec"]["groups"] for rule in group["rules"]}


def test_the_prometheus_rule_matches_the_official_crd(prometheus_rule_validator, iris_manifests):
    assert errors(prometheus_rule_validator, iris_manifests["PrometheusRule"]) == []


@pytest.mark.parametrize("edit, expected", [
    (lambda rule: rule.update(keepFiringFor=rule.pop("keep_firing_for")), "Additional properties are not allowed ('keepFiringFor'"),
    (lambda rule: rule.update(keep_firing_for="5 minutes"), "'5 minutes' does not match"),
    (lambda rule: rule.pop("expr"), "'expr' is a required property"),
])
def test_a_bad_rule_fails_the_official_crd(prometheus_rule_validator, iris_manifests, edit, expected):
    body = copy.deepcopy(iris_manifests["PrometheusRule"])
    edit(body["spec"]["groups"][0]["rules"][0])
    assert any(expected in error for error in errors(prometheus_rule_validator, body)), errors(prometheus_rule_validator, body)


def test_the_rules_alert_on_this_models_episode_gauge_per_feature_and_for_the_model(iris_manifests):
    rules = _rules(iris_manifests["PrometheusRule"])
    gauge = manifests.ALERT_ACTIVE_METRIC
    documented = (ROOT / "flink_job" / "metrics.py").read_text()
    assert f"``..._mmon_{gauge.removeprefix('flink_taskmanager_job_task_operator_mmon_')}{{model=...,version=...,feature=...}}``" in documented
    assert "``feature`` empty: the model's" in documented  # MODEL_SCOPE_FEATURE
    assert rules["MmonFeatureDriftEpisode"]["expr"] == f'max by (model, version, feature) ({gauge}{{model="iris",feature!=""}}) > 0'
    assert rules["MmonModelDriftEpisode"]["expr"] == f'max by (model, version, feature) ({gauge}{{model="iris",feature=""}}) > 0'
    assert {name: rule["labels"] for name, rule in rules.items()} == {
        "MmonFeatureDriftEpisode": {"severity": "warning"}, "MmonModelDriftEpisode": {"severity": "critical"}}
    for rule in rules.values():
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}
        assert "{{ $labels.model }}" in annotations["summary"] and annotations["runbook_url"].startswith("https://")
    assert "{{ $labels.feature }}" in rules["MmonFeatureDriftEpisode"]["annotations"]["summary"]


def test_the_runbook_anchor_is_a_heading_of_the_k8s_readme(iris_manifests):
    anchor = manifests.RUNBOOK_URL.rpartition("#")[2]
    headings = re.findall(r"^#+ (.+)$", (ROOT / "k8s" / "README.md").read_text(), re.M)
    assert anchor in {re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_a_model_name_is_quoted_as_a_promql_string_and_no_rule_without_metrics():
    document = manifests.spec_to_dict(load_spec(EXAMPLE))
    document["model"]["name"] = 'iris "v2"'
    rule = next(m.body for m in render(parse_spec(document), DeploySettings(name="iris")) if m.body["kind"] == "PrometheusRule")
    assert 'model="iris \\"v2\\""' in _rules(rule)["MmonModelDriftEpisode"]["expr"]
    document["job"]["metrics_port"] = 0
    assert "PrometheusRule" not in {m.body["kind"] for m in render(parse_spec(document), DeploySettings(name="iris"))}


def test_every_output_topic_of_the_spec_gets_a_kafka_topic():
    """The model's verdicts and the alert episodes too (performance: only with ground_truth; comparison: only with
    versions.stable and versions.candidate)."""
    spec = load_spec(EXAMPLE)
    rendered = {body["spec"]["topicName"] for body in (m.body for m in render(spec, DeploySettings(name="iris")))
                if body["kind"] == "KafkaTopic"}
    expected = {topic for kind, topic in output_names.topics_by_kind(spec.kafka.topics).items()
                if kind not in (output_names.PERFORMANCE, output_names.COMPARISON)}
    assert rendered == expected | {spec.kafka.topics.inference}
    assert {spec.kafka.topics.model_drift, spec.kafka.topics.alerts} <= rendered
