"""Render the Kubernetes resources that run one monitor spec (pure functions: spec in, manifests out).

Used by `mmon k8s render|apply` (GitOps users who never run our controller) and by the reconciler, so
both produce the same objects. Resources, all named after ``DeploySettings.name``:

- ConfigMap ``<name>-spec``: the monitor spec as the job reads it (``monitor.yaml``); its ``baseline``
  points at the mounted baseline ConfigMap ``DeploySettings.baseline_configmap``.
- FlinkDeployment ``<name>`` (application mode) or a FlinkSessionJob on an existing session cluster.
- Deployment, Service, HorizontalPodAutoscaler and NetworkPolicy ``<name>-logger``: the inference logger.
- One Strimzi KafkaTopic per topic of the spec; a PodMonitor scraping the job and the logger.
- A PrometheusRule alerting on the job's open alert episodes (when the job exports metrics).

A spec change restarts the job as `upgrade_plan` says, from the class of the change (`contract.upgrades`,
given the ``previous`` spec): compatible and migratable changes restore the last state (``upgradeMode:
last-state``, the job moves what it holds to the new spec); an incompatible one is never restored as is: the
job is stopped with a drained savepoint (``upgradeMode: savepoint``; the Flink operator's drain option is
always set, so that its stop-with-savepoint emits every open window and releases every waiting request
first) and the new spec starts from that savepoint, which then holds nothing but the Kafka offsets and the
sink's committed transactions (``allowNonRestoredState``: an operator the new spec no longer has).

Pods run as the image's non-root user with no privilege escalation, no capabilities and the runtime's
default seccomp profile. Secrets are referenced, never rendered: ``kafka.properties`` (SASL/SSL
credentials) stays out of the spec ConfigMap; the job and the logger read the Kafka client properties
from Secret ``DeploySettings.kafka_secret_name`` (key ``properties.json``, a JSON object) as
``$MMON_KAFKA_PROPERTIES``, and the logger its ingest token from ``DeploySettings.logger_token_secret_name``
(key ``token``) as ``$MMON_LOGGER_TOKEN``; both optional, so a cluster without them still runs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from contract import upgrades
from contract.kafka_properties import ENV_VAR as KAFKA_PROPERTIES_ENV
from contract.spec import ConfigError, MonitorSpec, spec_to_dict
from contract.state import state_backend_options

from operator_glue import baseline_from
from operator_glue.baseline_from import BaselineFrom
from operator_glue.crd import API_VERSION, BASELINE_KEY, KIND

FLINK_VERSION = "2.2.1"
FLINK_PYTHON_JAR = f"flink-python-{FLINK_VERSION}.jar"
VENV_PYTHON = "/opt/mmon/venv/bin/python"
SPEC_DIR = "/opt/mmon/spec"
SPEC_KEY = "monitor.yaml"
LOGGER_PORT = 8080
LOGGER_FORMATS = ("thesis", "kserve-v1")
DAY_MS = 86_400_000
SPEC_HASH_ANNOTATION = "monitoring.mmon.dev/spec-hash"
UPGRADE_ANNOTATION = "monitoring.mmon.dev/upgrade"
DRAIN_OPTION = "kubernetes.operator.job.drain-on-savepoint-deletion"  # the operator's stop-with-savepoint drains
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_NAME = 45  # leaves room for the suffixes (-logger, -baseline) and the Flink operator's own (-rest, -taskmanager-1-1)
FLINK_UID = 9999  # the flink user and group of the official Flink image (k8s/Dockerfile checks it)
KAFKA_SECRET_KEY = "properties.json"
LOGGER_TOKEN_KEY = "token"
LOGGER_TOKEN_ENV = "MMON_LOGGER_TOKEN"
DNS_PORT = 53


@dataclass(frozen=True)
class DeploySettings:
    """Where and how a monitor runs on Kubernetes: everything the monitor spec itself does not say."""

    name: str = field(metadata={"doc": "Base name of every resource (DNS-1123)."})
    namespace: str = field(default="mmon", metadata={"doc": "Namespace of every resource."})
    image: str = field(default="ghcr.io/mmon/flink-model-monitor:0.1.0", metadata={"doc": "Job and logger image (k8s/Dockerfile)."})
    baseline_configmap: str = field(default="", metadata={"doc": f"ConfigMap holding {BASELINE_KEY} (default <name>-baseline)."})
    kafka_bootstrap: str = field(default="", metadata={"doc": "Bootstrap servers seen from the cluster (default: the spec's)."})
    kafka_cluster: str = field(default="mmon", metadata={"doc": "Strimzi Kafka cluster the topics belong to."})
    topic_replicas: int = field(default=1, metadata={"doc": "Replication factor of the KafkaTopics."})
    state_dir: str = field(default="s3://mmon-flink-state", metadata={"doc": "Checkpoint, savepoint and HA storage root."})
    session_cluster: Optional[str] = field(default=None, metadata={"doc": "Run as a FlinkSessionJob on this session FlinkDeployment."})
    kafka_secret: str = field(default="", metadata={"doc": f"Secret whose key {KAFKA_SECRET_KEY} holds the Kafka client properties (default <name>-kafka)."})
    logger_token_secret: str = field(default="", metadata={"doc": f"Secret whose key {LOGGER_TOKEN_KEY} holds the logger's ingest bearer token (default <name>-logger-token)."})
    logger_ingress_namespaces: tuple[str, ...] = field(default=(), metadata={"doc": "Namespaces besides its own whose pods may reach the logger."})
    owner: Optional[dict] = field(default=None, metadata={"doc": "ownerReference set on every resource (the controller's ModelMonitor)."})
    baseline_from: Optional[BaselineFrom] = field(default=None, metadata={"doc": "Where the job reads the baseline (operator_glue/baseline_from.py; default: the baseline ConfigMap)."})

    @property
    def baseline_name(self) -> str:
        return self.baseline_configmap or f"{self.name}-baseline"

    @property
    def baseline_source(self) -> BaselineFrom:
        """`baseline_from`, else the baseline ConfigMap (`baseline_name`, key baseline.json)."""
        return self.baseline_from or BaselineFrom(baseline_from.CONFIG_MAP, self.baseline_name)

    @property
    def kafka_secret_name(self) -> str:
        return self.kafka_secret or f"{self.name}-kafka"

    @property
    def logger_token_secret_name(self) -> str:
        return self.logger_token_secret or f"{self.name}-logger-token"


@dataclass(frozen=True)
class Manifest:
    """One rendered resource and the file it belongs to when written out."""

    filename: str
    body: dict


@dataclass(frozen=True)
class UpgradePlan:
    """How the Flink operator restarts the job for a spec change (`upgrade_plan`)."""

    mode: str = "last-state"  # the FlinkDeployment's job.upgradeMode
    allow_non_restored_state: bool = False
    note: str = ""  # why, for people: the UPGRADE_ANNOTATION


def upgrade_plan(previous: Optional[MonitorSpec], spec: MonitorSpec) -> UpgradePlan:
    """The restart for a change from ``previous`` (None: unknown, or a first deployment) to ``spec``: the last
    state unless the change is incompatible, then a drained savepoint (module docstring)."""
    if previous is None:
        return UpgradePlan()
    upgrade = upgrades.classify(previous, spec)
    if upgrade.kind != upgrades.INCOMPATIBLE:
        return UpgradePlan(note=f"{upgrade.kind}: last-state" if upgrade.changes else "")
    changes = "; ".join(f"{change.path} {change.before} -> {change.after}" for change in upgrade.refused)
    return UpgradePlan("savepoint", True, f"incompatible ({changes}): drained savepoint, open windows emitted")


def render(spec: MonitorSpec, settings: DeploySettings, previous: Optional[MonitorSpec] = None,
           plan: Optional[UpgradePlan] = None) -> list[Manifest]:
    """Every resource of the monitor, in apply order; ``previous``: the spec running now, if any, which decides
    how the job restarts (`upgrade_plan`), unless ``plan`` is given (the controller keeps the plan of a change
    the Flink operator may not have carried out yet, `plan_of`)."""
    if not DNS_LABEL.fullmatch(settings.name) or len(settings.name) > MAX_NAME:
        raise ConfigError(f"resource name {settings.name!r}: needs lower-case letters, digits and '-', at most "
                          f"{MAX_NAME} characters (pass --name)")
    plan = plan or upgrade_plan(previous and in_cluster_spec(previous, settings), in_cluster_spec(spec, settings))
    spec = in_cluster_spec(spec, settings)
    job = (flink_session_job if settings.session_cluster else flink_deployment)(spec, settings, plan)
    return [
        Manifest("monitor-configmap.yaml", spec_configmap(spec, settings)),
        Manifest(f"{job['kind'].lower()}.yaml", job),
        *(Manifest("logger.yaml", body) for body in logger_resources(spec, settings)
          if spec.input.format in LOGGER_FORMATS),
        *(Manifest("kafkatopics.yaml", body) for body in kafka_topics(spec, settings)),
        Manifest("podmonitor.yaml", pod_monitor(settings)),
        *([Manifest("prometheusrule.yaml", prometheus_rule(spec, settings))] if spec.job.metrics_port else []),
    ]


def model_monitor(spec: MonitorSpec, settings: DeploySettings) -> list[Manifest]:
    """Instead of the resources: a ModelMonitor for the mmon controller, whose spec is the monitor spec
    with ``baseline`` naming the baseline ConfigMap, or with ``baselineFrom`` instead (another source)."""
    document = spec_to_dict(_with_cluster_kafka(dataclasses.replace(spec, baseline=Path(settings.baseline_name)), settings))
    if settings.baseline_from is not None:
        document = {**{k: v for k, v in document.items() if k != "baseline"},
                    baseline_from.FIELD: settings.baseline_from.to_resource()}
    body = {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": settings.name, "namespace": settings.namespace}, "spec": document}
    return [Manifest("modelmonitor.yaml", body)]


def baseline_configmap(baseline_json: str, settings: DeploySettings) -> dict:
    """The baseline ConfigMap; a baseline over a ConfigMap's 1 MiB is a `ConfigError` naming the alternatives."""
    baseline_from.check_config_map_size(len(baseline_json.encode()), f"ConfigMap {settings.baseline_name}")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": settings.baseline_name, "namespace": settings.namespace},
            "data": {BASELINE_KEY: baseline_json}}


def in_cluster_spec(spec: MonitorSpec, settings: DeploySettings) -> MonitorSpec:
    """The spec as the pod sees it: the baseline at its mount path (or its URL), the cluster's Kafka address."""
    return _with_cluster_kafka(dataclasses.replace(spec, baseline=settings.baseline_source.location()), settings)


def _with_cluster_kafka(spec: MonitorSpec, settings: DeploySettings) -> MonitorSpec:
    """The cluster's Kafka address, and no ``kafka.properties``: they come from the Kafka Secret."""
    bootstrap = settings.kafka_bootstrap or spec.kafka.bootstrap_servers
    return dataclasses.replace(spec, kafka=dataclasses.replace(spec.kafka, bootstrap_servers=bootstrap, properties={}))


def kafka_properties_note(spec: MonitorSpec, settings: DeploySettings) -> str:
    """What to do with the spec's ``kafka.properties``, which are not rendered (empty when it has none)."""
    if not spec.kafka.properties:
        return ""
    return (f"kafka.properties ({', '.join(sorted(spec.kafka.properties))}) not rendered: put them in Secret "
            f"{settings.kafka_secret_name}, key {KAFKA_SECRET_KEY}, as a JSON object")


def pod_security_context() -> dict:
    """Pod level: the image's non-root flink user, and the container runtime's default seccomp profile."""
    return {"runAsNonRoot": True, "runAsUser": FLINK_UID, "runAsGroup": FLINK_UID, "fsGroup": FLINK_UID,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security_context() -> dict:
    """Container level: no privilege escalation, no Linux capabilities."""
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _secret_env(name: str, secret: str, key: str) -> dict:
    """An environment variable from a Secret's key; optional, so the pod starts without the Secret."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}}}


def _kafka_properties_env(settings: DeploySettings) -> dict:
    return _secret_env(KAFKA_PROPERTIES_ENV, settings.kafka_secret_name, KAFKA_SECRET_KEY)


def _metadata(settings: DeploySettings, name: str, component: str) -> dict:
    metadata = {"name": name, "namespace": settings.namespace, "labels": _labels(settings, component)}
    if settings.owner:
        metadata["ownerReferences"] = [settings.owner]
    return metadata


def _labels(settings: DeploySettings, component: str) -> dict:
    return {"app.kubernetes.io/name": "mmon", "app.kubernetes.io/instance": settings.name,
            "app.kubernetes.io/component": component, "app.kubernetes.io/managed-by": "mmon"}


def spec_configmap_name(settings: DeploySettings) -> str:
    return f"{settings.name}-spec"


def spec_configmap(spec: MonitorSpec, settings: DeploySettings) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(settings, spec_configmap_name(settings), "spec"),
            "data": {SPEC_KEY: _spec_text(spec)}}


def flink_configuration(spec: MonitorSpec, settings: DeploySettings) -> dict:
    """Flink options (all strings, as the CRD wants): state (RocksDB when predictions wait long for their labels:
    `contract.state`), restarts, metrics, Python, autoscaler (off)."""
    state = f"{settings.state_dir.rstrip('/')}/{settings.name}"
    conf = {
        "taskmanager.numberOfTaskSlots": "1",
        "execution.checkpointing.interval": f"{int(spec.job.checkpoint_interval)} ms",
        "execution.checkpointing.dir": f"{state}/checkpoints",
        "execution.checkpointing.savepoint-dir": f"{state}/savepoints",
        "high-availability.type": "kubernetes",
        "high-availability.storageDir": f"{state}/ha",
        "restart-strategy.type": "exponential-delay",
        DRAIN_OPTION: "true",
        "python.executable": VENV_PYTHON,
        "python.client.executable": VENV_PYTHON,
        "job.autoscaler.enabled": "false",
        "job.autoscaler.target.utilization": "0.6",
        "job.autoscaler.stabilization.interval": "1m",
        "job.autoscaler.metrics.window": "5m",
        **state_backend_options(spec),
    }
    if spec.job.metrics_port:
        conf["metrics.reporter.prom.factory.class"] = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
        conf["metrics.reporter.prom.port"] = str(spec.job.metrics_port)
    return conf


def job_args(spec: MonitorSpec) -> list[str]:
    """PythonDriver arguments: Python options first, then the job's own (`mmon run` in Kafka mode)."""
    return ["-pyclientexec", VENV_PYTHON, "-pyexec", VENV_PYTHON, "-pym", "flink_job.main",
            "--config", f"{SPEC_DIR}/{SPEC_KEY}", "--kafka", spec.kafka.bootstrap_servers]


def _job(spec: MonitorSpec, jar_uri: str, plan: UpgradePlan) -> dict:
    job = {"jarURI": jar_uri, "entryClass": "org.apache.flink.client.python.PythonDriver", "args": job_args(spec),
           "parallelism": spec.job.parallelism, "upgradeMode": plan.mode, "state": "running"}
    if plan.allow_non_restored_state:
        job["allowNonRestoredState"] = True
    return job


def plan_of(job: dict) -> UpgradePlan:
    """The upgrade plan a rendered FlinkDeployment or FlinkSessionJob carries (`_job`, `_job_metadata`)."""
    spec_job = job.get("spec", {}).get("job", {})
    note = (job.get("metadata", {}).get("annotations") or {}).get(UPGRADE_ANNOTATION, "")
    return UpgradePlan(spec_job.get("upgradeMode", "last-state"), bool(spec_job.get("allowNonRestoredState")), note)


def _job_metadata(settings: DeploySettings, plan: UpgradePlan) -> dict:
    metadata = _metadata(settings, settings.name, "job")
    if plan.note:
        metadata["annotations"] = {UPGRADE_ANNOTATION: plan.note}
    return metadata


def _pod_template(spec: MonitorSpec, settings: DeploySettings) -> dict:
    """Flink's main container: the spec ConfigMap and the baseline's volume (`baseline_from`) mounted, the Kafka
    properties (and a baseline URL's authorization, or an s3 URL's AWS variables) from their Secrets, the
    metrics port named; the pod and the container locked down."""
    source = settings.baseline_source
    container = {"name": "flink-main-container",
                 "env": [_kafka_properties_env(settings), *source.env()],
                 "volumeMounts": [{"name": "spec", "mountPath": SPEC_DIR, "readOnly": True}, *source.volume_mounts()],
                 "securityContext": container_security_context()}
    env_from = source.env_from()
    if env_from:
        container["envFrom"] = env_from
    if spec.job.metrics_port:
        container["ports"] = [{"name": "metrics", "containerPort": spec.job.metrics_port, "protocol": "TCP"}]
    return {"metadata": {"labels": _labels(settings, "job"),
                         "annotations": {SPEC_HASH_ANNOTATION: _spec_hash(spec)}},
            "spec": {"securityContext": pod_security_context(), "containers": [container],
                     "volumes": [{"name": "spec", "configMap": {"name": f"{settings.name}-spec"}}, *source.volume()]}}


def _spec_hash(spec: MonitorSpec) -> str:
    """Changes with the spec, so that editing it changes the FlinkDeployment and the Flink operator
    upgrades the job (a ConfigMap edit alone would not restart it)."""
    return hashlib.sha256(_spec_text(spec).encode()).hexdigest()[:16]


def _spec_text(spec: MonitorSpec) -> str:
    return yaml.safe_dump(spec_to_dict(spec), sort_keys=False)


def flink_deployment(spec: MonitorSpec, settings: DeploySettings, plan: UpgradePlan = UpgradePlan()) -> dict:
    return {
        "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
        "metadata": _job_metadata(settings, plan),
        "spec": {
            "image": settings.image,
            "imagePullPolicy": "IfNotPresent",
            "flinkVersion": "v2_2",
            "serviceAccount": "flink",
            "flinkConfiguration": flink_configuration(spec, settings),
            "podTemplate": _pod_template(spec, settings),
            "jobManager": {"replicas": 1, "resource": {"cpu": 0.5, "memory": "1600m"}},
            "taskManager": {"resource": {"cpu": 1.0, "memory": "2048m"}},
            "job": _job(spec, f"local:///opt/flink/opt/{FLINK_PYTHON_JAR}", plan),
        },
    }


def flink_session_job(spec: MonitorSpec, settings: DeploySettings, plan: UpgradePlan = UpgradePlan()) -> dict:
    """A session job: the operator fetches the PythonDriver jar over HTTP (session jobs cannot use
    local://). The Python code comes from the session cluster's image, which must be ours, and the
    session cluster's pods must mount the spec and baseline ConfigMaps at SPEC_DIR and BASELINE_DIR and
    set $MMON_KAFKA_PROPERTIES from the Kafka Secret (a session job has no pod template: its pods, and
    their securityContext, are the session cluster's)."""
    jar = f"https://repo1.maven.org/maven2/org/apache/flink/flink-python/{FLINK_VERSION}/{FLINK_PYTHON_JAR}"
    return {
        "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkSessionJob",
        "metadata": _job_metadata(settings, plan),
        "spec": {"deploymentName": settings.session_cluster, "flinkConfiguration": {
            k: v for k, v in flink_configuration(spec, settings).items()
            if k.startswith(("execution.", "python.", "restart-", "kubernetes.operator."))},
            "job": _job(spec, jar, plan)},
    }


def logger_resources(spec: MonitorSpec, settings: DeploySettings) -> list[dict]:
    """The inference logger (`mmon logger`) behind a Service, scaled on CPU by an HPA, fenced by a
    NetworkPolicy. It writes the thesis or kserve-v1 format; for oip-v2 input the model server's own
    producer feeds the topic, and no logger is rendered."""
    name = f"{settings.name}-logger"
    selector = {"app.kubernetes.io/instance": settings.name, "app.kubernetes.io/component": "logger"}
    container = {
        "name": "logger", "image": settings.image, "imagePullPolicy": "IfNotPresent",
        "command": ["/opt/mmon/venv/bin/mmon", "logger", "--kafka", spec.kafka.bootstrap_servers,
                    "--topic", spec.kafka.topics.inference, "--format", spec.input.format,
                    "--host", "0.0.0.0", "--port", str(LOGGER_PORT)],
        "ports": [{"name": "metrics", "containerPort": LOGGER_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": LOGGER_PORT}, "periodSeconds": 5, "timeoutSeconds": 3},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": LOGGER_PORT}, "periodSeconds": 10},
        "env": [_kafka_properties_env(settings),
                _secret_env(LOGGER_TOKEN_ENV, settings.logger_token_secret_name, LOGGER_TOKEN_KEY)],
        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": container_security_context(),
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(settings, name, "logger"),
        "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": _labels(settings, "logger")},
                              "spec": {"securityContext": pod_security_context(), "containers": [container]}}},
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": _metadata(settings, name, "logger"),
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": LOGGER_PORT, "protocol": "TCP"}]},
    }
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _metadata(settings, name, "logger"),
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "minReplicas": 1, "maxReplicas": 4,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
    }
    return [deployment, service, hpa, logger_network_policy(spec, settings, selector)]


def logger_network_policy(spec: MonitorSpec, settings: DeploySettings, selector: dict) -> dict:
    """Ingress only to the logger's HTTP port (ingest, probes and /metrics), from the pods of its own
    namespace and of ``settings.logger_ingress_namespaces``; egress only to the Kafka bootstrap ports
    (brokers listen on the same port) and to DNS."""
    peers = [{"podSelector": {}}] + [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
                                     for namespace in settings.logger_ingress_namespaces]
    kafka_ports = [{"port": port, "protocol": "TCP"} for port in _bootstrap_ports(spec.kafka.bootstrap_servers)]
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": _metadata(settings, f"{settings.name}-logger", "logger"),
        "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress", "Egress"],
                 "ingress": [{"from": peers, "ports": [{"port": LOGGER_PORT, "protocol": "TCP"}]}],
                 "egress": [{"ports": kafka_ports},
                            {"ports": [{"port": DNS_PORT, "protocol": "UDP"}, {"port": DNS_PORT, "protocol": "TCP"}]}]},
    }


def _bootstrap_ports(bootstrap_servers: str) -> list[int]:
    """The distinct ports of a 'host:port,host:port' list."""
    ports = set()
    for server in bootstrap_servers.split(","):
        port = server.strip().rpartition(":")[2]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"kafka.bootstrap_servers: {server.strip()!r} has no port (host:port)")
        ports.add(int(port))
    return sorted(ports)


def kafka_topics(spec: MonitorSpec, settings: DeploySettings) -> list[dict]:
    """Strimzi KafkaTopics: as many partitions as the job's parallelism (at least 3, so the logger and
    the job can scale), one day of inference log, a week of results (the model's verdicts and the alert episodes
    among them; performance records with ground_truth, comparison records with versions.stable and
    versions.candidate) and of label messages (when they have a topic of their own), two weeks of dead letters."""
    partitions = max(3, spec.job.parallelism)
    topics = spec.kafka.topics
    retention_days = {topics.inference: 1, topics.stats: 7, topics.outliers: 7, topics.drift: 7, topics.dead_letter: 14,
                      topics.model_drift: 7, topics.alerts: 7,
                      **({topics.performance: 7} if spec.ground_truth else {}),
                      **({topics.labels: 7} if spec.ground_truth and topics.labels else {}),
                      **({topics.comparison: 7} if spec.versions.stable is not None else {})}
    return [{
        "apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic",
        "metadata": {**_metadata(settings, _dns_name(topic), "topic"),
                     "labels": {**_labels(settings, "topic"), "strimzi.io/cluster": settings.kafka_cluster}},
        "spec": {"topicName": topic, "partitions": partitions, "replicas": settings.topic_replicas,
                 "config": {"retention.ms": str(days * DAY_MS), "cleanup.policy": "delete"}},
    } for topic, days in retention_days.items()]


def pod_monitor(settings: DeploySettings) -> dict:
    """One PodMonitor for the Prometheus Operator: every pod of this monitor exposing a 'metrics' port."""
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": _metadata(settings, settings.name, "metrics"),
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/instance": settings.name}},
                 "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}]},
    }


ALERT_ACTIVE_METRIC = "flink_taskmanager_job_task_operator_mmon_model_version_feature_alert_active"
"""The job's ``mmon_alert_active{model,version,feature}`` gauge as Flink's Prometheus reporter names it (`flink_job.metrics`)."""
MODEL_SCOPE_FEATURE = ""
"""The gauge's ``feature`` label of the model-level episode (an episode on the model's verdict, not on a feature)."""
RUNBOOK_URL = "https://github.com/mmon/mmon/blob/main/k8s/README.md#alerts-in-alertmanager"


def prometheus_rule(spec: MonitorSpec, settings: DeploySettings) -> dict:
    """Alerting rules for the Prometheus Operator on the job's alert episodes: one alert per feature with an open
    episode (severity warning) and one for the model's own episode (critical). The job already debounces (an episode
    opens after k discoveries in m windows and closes after n calm ones), so the rules fire at once; ``max by`` takes
    the subtask that holds the feature (the others report 0), and ``keep_firing_for`` spans a job restart, during
    which the gauge is not scraped."""
    selector = f"model={json.dumps(spec.model.name)}"  # a JSON string is a PromQL string literal
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": _metadata(settings, settings.name, "alerts"),
        "spec": {"groups": [{"name": f"mmon-{settings.name}", "rules": [
            _alert_rule("MmonFeatureDriftEpisode", f'{selector},feature!="{MODEL_SCOPE_FEATURE}"', "warning",
                        "Feature {{ $labels.feature }} of model {{ $labels.model }} version {{ $labels.version }} is drifting",
                        "mmon opened a drift episode on feature {{ $labels.feature }} of model {{ $labels.model }}: it "
                        "was a discovery (after false-discovery control across features and metrics) in enough "
                        "recent windows. The episode closes after enough windows without one; alerts.jsonl and the "
                        "drift topic say which metrics and windows."),
            _alert_rule("MmonModelDriftEpisode", f'{selector},feature="{MODEL_SCOPE_FEATURE}"', "critical",
                        "Model {{ $labels.model }} version {{ $labels.version }} is drifting",
                        "mmon opened a drift episode on model {{ $labels.model }}: its per-window verdict (the "
                        "model_drift records) found drift in enough recent windows. The feature alerts of the same "
                        "model name the features; the report (mmon report) shows the episodes on a timeline."),
        ]}]},
    }


def _alert_rule(alert: str, selector: str, severity: str, summary: str, description: str) -> dict:
    return {"alert": alert, "expr": f"max by (model, version, feature) ({ALERT_ACTIVE_METRIC}{{{selector}}}) > 0",
            "keep_firing_for": "5m", "labels": {"severity": severity},
            "annotations": {"summary": summary, "description": description, "runbook_url": RUNBOOK_URL}}


def _dns_name(name: str) -> str:
    """A topic name as a Kubernetes object name (lower case, '-' for '_' and '.')."""
    return re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the spec inside its ConfigMap) as readable literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _represent_str)


def to_yaml(bodies: list[dict]) -> str:
    """A multi-document YAML stream, keys in insertion order."""
    return "---\n".join(yaml.dump(body, Dumper=_Dumper, sort_keys=False, width=120) for body in bodies)
