"""Where a job on Kubernetes reads its baseline (operator_glue/baseline_from.py), without an API server: the
rendered pods for a ConfigMap, a URL (its Authorization from a Secret) and a claim; a baseline too large for
a ConfigMap refused at render and apply naming the alternatives; a ModelMonitor's baselineFrom against the
CRD's schema and the reconciler's reading of it. tests/test_k8s_apiserver.py takes the 1,000-feature
ModelMonitor with a URL baseline to a real API server."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from contract.spec import BASELINE_AUTHORIZATION_ENV, BaselineUrl, ConfigError, load_spec

from operator_glue import baseline_from, crd
from operator_glue.baseline_from import BaselineFrom
from operator_glue.manifests import DeploySettings, baseline_configmap, model_monitor, render
from operator_glue.reconciler import monitor_spec

from k8s_testenv import EXAMPLE
from test_k8s_manifests import crd_validator, errors

MMON = str(Path(sys.executable).parent / "mmon")
URL = "https://models.example.org/iris/baseline.json"
S3_URL = "s3://models/iris/baseline.json"


def _job_pod(spec, settings) -> dict:
    bodies = {m.body["kind"]: m.body for m in render(spec, settings)}
    in_pod = yaml.safe_load(bodies["ConfigMap"]["data"]["monitor.yaml"])
    return {"pod": bodies["FlinkDeployment"]["spec"]["podTemplate"]["spec"], "baseline": in_pod["baseline"]}


def test_each_source_mounts_or_fetches_the_baseline():
    spec = load_spec(EXAMPLE)
    default = _job_pod(spec, DeploySettings(name="iris"))
    assert default["baseline"] == "/opt/mmon/baseline/baseline.json"
    assert {"name": "baseline", "configMap": {"name": "iris-baseline"}} in default["pod"]["volumes"]
    url = _job_pod(spec, DeploySettings(name="iris", baseline_from=baseline_from.from_url(URL, "iris-token")))
    container = url["pod"]["containers"][0]
    assert url["baseline"] == URL and [v["name"] for v in url["pod"]["volumes"]] == ["spec"]
    assert [m["name"] for m in container["volumeMounts"]] == ["spec"]
    assert {"name": BASELINE_AUTHORIZATION_ENV, "valueFrom": {"secretKeyRef": {
        "name": "iris-token", "key": "authorization"}}} in container["env"]
    assert "envFrom" not in container
    claim = _job_pod(spec, DeploySettings(name="iris", baseline_from=baseline_from.from_claim("models:iris/b.json")))
    assert claim["baseline"] == "/opt/mmon/baseline/iris/b.json"
    assert {"name": "baseline", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in claim["pod"]["volumes"]


def test_a_baseline_over_a_config_maps_mib_is_refused_naming_the_alternatives(tmp_path):
    big = tmp_path / "baseline.json"
    big.write_text(" " * (baseline_from.MAX_CONFIGMAP_BYTES + 1))
    document = {**yaml.safe_load(EXAMPLE.read_text()), "baseline": str(big)}
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(document))
    result = subprocess.run([MMON, "k8s", "render", str(tmp_path / "monitor.yaml")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert ("over the 1 MiB a ConfigMap holds: serve it over HTTP(S) or from S3 (mmon k8s render --baseline-url URL; "
            "baselineFrom.url in a ModelMonitor) or from a volume (--baseline-pvc") in result.stderr
    with pytest.raises(ConfigError, match="ConfigMap iris-baseline is 1.0 MiB, over the 1 MiB"):
        baseline_configmap(big.read_text(), DeploySettings(name="iris"))
    assert baseline_configmap(" " * baseline_from.MAX_CONFIGMAP_BYTES, DeploySettings(name="iris"))["data"]
    with_url = subprocess.run([MMON, "k8s", "render", str(tmp_path / "monitor.yaml"), "--baseline-url", URL],
                              capture_output=True, text=True, timeout=120)
    assert with_url.returncode == 0 and f"baseline: {URL}" in with_url.stdout


def test_an_s3_baseline_gets_its_aws_variables_from_the_secret_and_mounts_nothing():
    """`mmon k8s render --baseline-url s3://... --baseline-auth-secret NAME`: the Secret's keys become the job
    container's environment (envFrom), no baseline volume, no Authorization variable."""
    result = subprocess.run([MMON, "k8s", "render", str(EXAMPLE), "--baseline-url", S3_URL,
                             "--baseline-auth-secret", "iris-aws"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    bodies = {body["kind"]: body for body in yaml.safe_load_all(result.stdout) if body}
    pod = bodies["FlinkDeployment"]["spec"]["podTemplate"]["spec"]
    container = pod["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "iris-aws"}}]
    assert [v["name"] for v in pod["volumes"]] == ["spec"] and [m["name"] for m in container["volumeMounts"]] == ["spec"]
    assert BASELINE_AUTHORIZATION_ENV not in {variable["name"] for variable in container["env"]}
    assert yaml.safe_load(bodies["ConfigMap"]["data"]["monitor.yaml"])["baseline"] == S3_URL
    without = _job_pod(load_spec(EXAMPLE), DeploySettings(name="iris", baseline_from=baseline_from.from_url(S3_URL)))
    assert without["baseline"] == S3_URL and "envFrom" not in without["pod"]["containers"][0]


@pytest.mark.parametrize("options, message", [
    (["--baseline-url", URL, "--baseline-pvc", "claim"], "--baseline-url, --baseline-pvc: give one baseline source"),
    (["--baseline-url", S3_URL, "--baseline-auth-secret", "aws:key"],
     "--baseline-url: an s3:// URL's Secret is given by"),
    (["--baseline-url", "s3://models"], "--baseline-url: 's3://models' names no object key"),
    (["--baseline-auth-secret", "token"], "--baseline-auth-secret: applies to a baseline URL"),
    (["--baseline-url", "ftp://host/b.json"], "--baseline-url: unsupported URL scheme 'ftp'"),
])
def test_render_option_errors_are_one_line(options, message):
    result = subprocess.run([MMON, "k8s", "render", str(EXAMPLE), *options], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith(f"mmon k8s: {message}") and result.stderr.count("\n") == 1


@pytest.fixture(scope="module")
def model_monitor_validator():
    return crd_validator(crd.custom_resource_definition(), crd.VERSION)


@pytest.mark.parametrize("source", [
    baseline_from.from_url(URL), baseline_from.from_url(URL, "iris-token:bearer"),
    baseline_from.from_claim("models:iris/b.json"), BaselineFrom(baseline_from.CONFIG_MAP, "iris-big", "b.json"),
    baseline_from.from_url(S3_URL), baseline_from.from_url(S3_URL, "iris-aws"),
])
def test_a_model_monitor_with_baseline_from_passes_the_schema_and_reads_back(model_monitor_validator, source):
    spec = load_spec(EXAMPLE)
    body = model_monitor(spec, DeploySettings(name="iris", baseline_from=source))[0].body
    assert "baseline" not in body["spec"] and errors(model_monitor_validator, body) == []
    read, read_source = monitor_spec(body["spec"])
    assert read_source == source and read.input.features == spec.input.features
    assert isinstance(read.baseline, BaselineUrl) == (source.kind == baseline_from.URL)


def _source(given: dict):
    """An edit: ``baselineFrom`` instead of ``baseline``."""
    return lambda spec: spec.pop("baseline") and spec.update(baselineFrom=given)


@pytest.mark.parametrize("edit, schema_path, message", [
    (_source({"url": {"url": URL}, "configMap": {"name": "x"}}), "baselineFrom", "baselineFrom: exactly one of"),
    (_source({"url": {"url": "ftp://h/b.json"}}), "baselineFrom.url.url", "baselineFrom.url.url: unsupported URL scheme"),
    (_source({"url": {"url": S3_URL, "authorizationSecret": {"name": "t"}}}), None,
     "baselineFrom.url.authorizationSecret: not for an s3:// URL (use credentialsSecret)"),
    (_source({"url": {"url": URL, "credentialsSecret": {"name": "aws"}}}), None,
     "baselineFrom.url.credentialsSecret: not for an http(s):// URL (use authorizationSecret)"),
    (_source({"url": {"url": S3_URL, "credentialsSecret": {}}}), "baselineFrom.url.credentialsSecret",
     "baselineFrom.url.credentialsSecret.name: required"),
    (_source({"url": {"url": "s3://Bad_Bucket/b.json"}}), None,
     "baselineFrom.url.url: 's3://Bad_Bucket/b.json' names no valid"),
    (_source({"persistentVolumeClaim": {"path": "b.json"}}), "baselineFrom.persistentVolumeClaim",
     "baselineFrom.persistentVolumeClaim.claimName: required"),
    (lambda s: s.update(baselineFrom={"url": {"url": URL}}), None, "baseline, baselineFrom: give one of them"),
    (lambda s: s.pop("baseline"), None, "baseline: required (a ConfigMap name) unless baselineFrom is given"),
    (lambda s: s.update(baseline_sha256="abc"), "baseline_sha256", "baseline_sha256: expected 64 hexadecimal"),
])
def test_bad_baseline_sources_fail_the_schema_or_the_reconciler(model_monitor_validator, edit, schema_path, message):
    """What the schema can say it says at apply; the reconciler says all of it (its condition's message)."""
    body = model_monitor(load_spec(EXAMPLE), DeploySettings(name="iris"))[0].body
    edit(body["spec"])
    found = errors(model_monitor_validator, body)
    assert (schema_path is None) == (found == []) and all(e.startswith(f"spec.{schema_path}") for e in found), found
    with pytest.raises(ConfigError, match=re.escape(message)):
        monitor_spec(body["spec"])
