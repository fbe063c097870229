"""A real Kubernetes control plane for tests: etcd + kube-apiserver on 127.0.0.1 (and on demand
kube-controller-manager running only the garbage collector); no kubelet, so pods never run.

Binaries come from scripts/k8s-testenv.sh (etcd from Debian's etcd-server, kube-apiserver and
kube-controller-manager built from source when missing and cached under ~/.cache/mmon/k8s; MMON_K8S_BUILD=0
skips the tests instead of building). The official Flink operator CRDs are the release 1.15.0 files vendored in
k8s/vendor/. Certificates and keys are made with openssl; the admin talks to the
API server with a static token (group system:masters) under RBAC authorization, so tests can also
impersonate less privileged service accounts.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "iris" / "monitor.yaml"
FLINK_OPERATOR_CRDS = ROOT / "k8s" / "vendor" / "flink-kubernetes-operator-1.15.0"
PROMETHEUS_OPERATOR_CRDS = ROOT / "k8s" / "vendor" / "prometheus-operator-0.85.0"
TESTENV = ROOT / "scripts" / "k8s-testenv.sh"
BUILD_TIMEOUT_S = 3600


class NotBuilt(RuntimeError):
    """A binary is not in the cache and MMON_K8S_BUILD=0 said not to build it."""


def binary(what: str) -> str:
    """Path of 'etcd' (installed when missing), 'kube-apiserver' or 'kube-controller-manager' (built when
    missing unless MMON_K8S_BUILD=0: a cold build of both takes 15-25 minutes on two cores)."""
    return re.search(rf"^{what}: (\S+)$", _testenv(what), re.M).group(1)


def ensure_binaries() -> None:
    """Install or build every binary up front (a test's own timeout then never includes a build)."""
    _testenv("all")


def _testenv(what: str) -> str:
    env = dict(os.environ)
    if os.environ.get("MMON_K8S_BUILD") == "0":
        env["K8S_NO_BUILD"] = "1"
    result = subprocess.run(["bash", str(TESTENV), what], capture_output=True, text=True, env=env, timeout=BUILD_TIMEOUT_S)
    if result.returncode == 3:
        raise NotBuilt(f"{result.stderr.strip()}: MMON_K8S_BUILD=0 skips building it (`make k8s-testenv` builds it)")
    if result.returncode != 0:
        raise RuntimeError(f"scripts/k8s-testenv.sh {what} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@dataclass
class ControlPlane:
    workdir: Path
    server: str
    token: str
    ca_file: Path
    kubeconfig: Path
    processes: list
    etcd_url: str = ""

    def start_garbage_collector(self, timeout_s: float = 60) -> None:
        """Run kube-controller-manager with only its garbage collector (deletes objects whose owners are
        gone), as the admin; it stops with the control plane. Start it after installing CRDs, so that its
        first discovery sees them."""
        manager = binary("kube-controller-manager")
        process = _spawn([manager, f"--kubeconfig={self.kubeconfig}", "--controllers=garbagecollector",
                          "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0"],
                         self.workdir / "kube-controller-manager.log")
        self.processes.append(process)
        if process.poll() is not None:
            raise RuntimeError(f"kube-controller-manager exited; see {self.workdir / 'kube-controller-manager.log'}")

    def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision (through etcd's JSON gateway), so that
        watches from older resourceVersions get 410 Gone; returns the revision."""
        revision = int(_etcd_post(self.etcd_url, "/v3/kv/range", {"key": "AA=="})["header"]["revision"])
        _etcd_post(self.etcd_url, "/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def start(workdir: Path, timeout_s: float = 120) -> ControlPlane:
    apiserver, etcd = binary("kube-apiserver"), binary("etcd")
    workdir.mkdir(parents=True, exist_ok=True)
    pki = _make_pki(workdir)
    token = secrets.token_hex(16)
    (workdir / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    processes = [_spawn([etcd, "--name", "test", "--data-dir", str(workdir / "etcd"),
                         "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                         "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                         "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                         "--initial-cluster", f"test=http://127.0.0.1:{peer_port}"], workdir / "etcd.log")]
    try:
        processes.append(_spawn([
            apiserver, f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
            f"--tls-cert-file={pki['cert']}", f"--tls-private-key-file={pki['key']}",
            f"--token-auth-file={workdir / 'tokens.csv'}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki['sa_pub']}", f"--service-account-signing-key-file={pki['sa_key']}",
            "--service-cluster-ip-range=10.96.0.0/24", "--endpoint-reconciler-type=none",
            # Watches go to etcd, so compacting etcd makes old resourceVersions 410 Gone (tested).
            "--watch-cache=false",
            f"--cert-dir={workdir / 'certs'}"], workdir / "kube-apiserver.log"))
        server = f"https://127.0.0.1:{api_port}"
        _wait_ready(server, token, pki["cert"], processes, timeout_s, workdir)
    except BaseException:
        ControlPlane(workdir, "", "", pki["cert"], Path(), processes).stop()
        raise
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(_kubeconfig(server, token, pki["cert"]))
    return ControlPlane(workdir, server, token, pki["cert"], kubeconfig, processes, f"http://127.0.0.1:{etcd_port}")


def _etcd_post(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _spawn(argv: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _make_pki(workdir: Path) -> dict[str, Path]:
    pki = {"cert": workdir / "serving.crt", "key": workdir / "serving.key",
           "sa_key": workdir / "sa.key", "sa_pub": workdir / "sa.pub"}
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(pki["key"]), "-out", str(pki["cert"]))
    openssl("genrsa", "-out", str(pki["sa_key"]), "2048")
    openssl("rsa", "-in", str(pki["sa_key"]), "-pubout", "-out", str(pki["sa_pub"]))
    return pki


def _wait_ready(server: str, token: str, ca: Path, processes: list, timeout_s: float, workdir: Path) -> None:
    """Poll /readyz until it answers ok, a process dies, or the deadline passes."""
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(f"{server}/readyz", headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[0]} exited with {process.returncode}; see logs in {workdir}")
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"kube-apiserver not ready after {timeout_s}s; see {workdir / 'kube-apiserver.log'}")


def _kubeconfig(server: str, token: str, ca: Path) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {{server: "{server}", certificate-authority: "{ca}"}}
users:
- name: admin
  user: {{token: "{token}"}}
contexts:
- name: test
  context: {{cluster: test, user: admin}}
current-context: test
"""


def official_flink_crd(plural: str) -> dict:
    """An official CRD ('flinkdeployments', 'flinksessionjobs') of the Flink Kubernetes Operator 1.15.0,
    unchanged (its Helm chart's crds/ at tag release-1.15.0, see k8s/vendor/flink-kubernetes-operator-1.15.0/README.md)."""
    return yaml.safe_load((FLINK_OPERATOR_CRDS / f"{plural}.flink.apache.org-v1.yml").read_text())


def official_prometheus_rule_crd() -> dict:
    """The PrometheusRule CRD of the Prometheus Operator 0.85.0, unchanged (see
    k8s/vendor/prometheus-operator-0.85.0/README.md)."""
    return yaml.safe_load((PROMETHEUS_OPERATOR_CRDS / "monitoring.coreos.com_prometheusrules.yaml").read_text())
