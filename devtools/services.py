"""The real services the integration tests and the benchmark run against, on this machine only.

* :class:`KafkaBroker`: a single-node Apache Kafka 4 broker in KRaft mode (broker and controller in one
  JVM), from the jars ``scripts/fetch_jars.sh`` puts in ``.cache/jars/kafka``.
* :class:`S3Server`: S3Proxy (Apache-2.0), an S3-compatible server over a temporary folder, from the jars
  ``scripts/fetch_jars.sh`` puts in ``.cache/jars/s3proxy``: the real endpoint of the s3:// baseline tests.
* :class:`FlinkCluster`: the Flink standalone cluster shipped inside the PyFlink wheel, started with a
  generated config directory and a lib directory that adds the Kafka connector jar.

Every listener binds 127.0.0.1. Ports are free ones picked at start unless given, so several test
sessions on one machine do not collide. ``python -m devtools.services {kafka|flink}
{start|stop|status}`` runs them in the background for manual use (state under ``.cache/run/``);
``scripts/kafka-local.sh`` and ``scripts/flink-cluster.sh`` wrap that.
"""
from __future__ import annotations

import argparse
import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence

import yaml

from devtools.processes import ServiceError, pid_alive, terminate, wait_until

ROOT = Path(__file__).resolve().parent.parent
JARS_DIR = ROOT / ".cache" / "jars"
RUN_DIR = ROOT / ".cache" / "run"
SETUP_HINT = "run `make setup` first"


# ---------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def log_tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"last lines of {path}:\n" + "\n".join(text)


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this child when its parent dies, so a crashed test run leaks no broker."""
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def create_topics(bootstrap: str, names: Iterable[str], partitions: int = 1, timeout_s: float = 30.0) -> None:
    """Create the topics on the broker at ``bootstrap`` (existing ones are left alone) and wait until each
    partition has a leader."""
    from kafka import KafkaAdminClient
    names = list(names)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="mmon-devtools")
    try:
        response = admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1} for name in names},
            timeout_ms=int(timeout_s * 1000), raise_errors=False)
        topic_errors = response.get("topics", []) if isinstance(response, dict) else []
        failures = [f"{t['name']}: {t.get('error_message') or t['error_code']}" for t in topic_errors
                    if t.get("error_code") not in (0, TOPIC_ALREADY_EXISTS)]
        if failures:
            raise ServiceError("Kafka: could not create topics: " + "; ".join(failures))
        admin.wait_for_topics(names, timeout_ms=int(timeout_s * 1000))
    finally:
        admin.close()


def require_java() -> str:
    java = shutil.which("java")
    if not java:
        raise ServiceError(f"no `java` on PATH (Java 17 is needed); {SETUP_HINT}")
    return java


class _Service:
    """A context manager over ``start()`` (which returns the service) and ``stop()``."""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _await_ready(self, ready: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.2):
        """`wait_until` ``ready()``, failing at once with ``_exit_reason()`` when the process dies; a service
        that does not get ready is stopped. Returns the service."""
        try:
            wait_until(ready, timeout_s, what, failed=self._exit_reason, interval_s=interval_s)
        except ServiceError:
            self.stop()
            raise
        return self


# ---------------------------------------------------------------- Kafka

BROKER_LOG4J2 = """\
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = WARN
"""
TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


class KafkaBroker(_Service):
    """A single-node KRaft Kafka broker on 127.0.0.1.

    ``port``/``controller_port`` 0 means a free port picked at start. ``data_dir`` holds the
    config, the log segments and ``broker.log``; by default a temporary directory removed at stop.
    ``background=True`` starts a broker that outlives this Python process (for the scripts).
    ``extra_properties`` are merged into server.properties (e.g. a larger ``message.max.bytes``).
    """

    def __init__(self, port: int = 0, controller_port: int = 0, data_dir: Optional[Path] = None,
                 jars_dir: Path = JARS_DIR / "kafka", heap: str = "512m", background: bool = False,
                 start_timeout_s: float = 120.0, extra_properties: Optional[Mapping[str, object]] = None):
        self.port = port
        self.controller_port = controller_port
        self.jars_dir = Path(jars_dir)
        self.heap = heap
        self.background = background
        self.start_timeout_s = start_timeout_s
        self.extra_properties = dict(extra_properties or {})
        self._own_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else None
        self.process: Optional[subprocess.Popen] = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self.data_dir is not None, "broker not started"
        return self.data_dir / "broker.log"

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process else None

    def start(self) -> "KafkaBroker":
        java = require_java()
        if not any(self.jars_dir.glob("kafka_2.13-*.jar")):
            raise ServiceError(f"Kafka broker jars missing in {self.jars_dir}; {SETUP_HINT}")
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="mmon-kafka-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for port in (self.port, self.controller_port):
            if port_open(port):
                raise ServiceError(f"Kafka: port {port} on 127.0.0.1 is already in use")
        properties = self._write_properties()
        command = [java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                   f"-Dlog4j2.configurationFile={self._write_log_config()}", "-cp", f"{self.jars_dir}/*"]
        if not (self.data_dir / "logs" / "meta.properties").exists():
            self._format_storage(command, properties)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*command, "kafka.Kafka", str(properties)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=None if self.background else _die_with_parent)
        return self._await_ready(self._metadata_ok, self.start_timeout_s, f"Kafka broker on {self.bootstrap}",
                                 interval_s=0.3)

    def _write_properties(self) -> Path:
        """server.properties for one node acting as broker and controller, replication factor 1."""
        settings = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": self.data_dir / "logs",
            "num.partitions": 1,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            # Kafka 4 rejects record timestamps over 1 h ahead by default; replays may carry any time.
            "log.message.timestamp.after.max.ms": 2**63 - 1,
            "num.network.threads": 2,
            "num.io.threads": 2,
            **self.extra_properties,
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        return path

    def _write_log_config(self) -> Path:
        """log4j2 config: INFO and above to stdout, which start() sends to broker.log."""
        path = self.data_dir / "log4j2.properties"
        path.write_text(BROKER_LOG4J2)
        return path

    def _format_storage(self, command: list[str], properties: Path) -> None:
        result = subprocess.run(
            [*command, "kafka.tools.StorageTool", "format", "-t", _kafka_cluster_id(), "-c", str(properties),
             "--standalone"], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise ServiceError(f"Kafka storage format failed: {(result.stderr or result.stdout).strip()[-2000:]}")

    def _exit_reason(self) -> Optional[str]:
        if self.process and self.process.poll() is not None:
            return f"broker exited with code {self.process.returncode}\n{log_tail(self.log_path)}"
        return None

    def _metadata_ok(self) -> bool:
        if not port_open(self.port):
            return False
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000,
                                     client_id="mmon-local-services")
        except KafkaError:
            return False
        try:
            return bool(admin.describe_cluster().get("brokers"))
        except KafkaError:
            return False
        finally:
            admin.close()

    def create_topics(self, names: Iterable[str], partitions: int = 1, timeout_s: float = 30.0) -> None:
        """`create_topics` on this broker."""
        create_topics(self.bootstrap, names, partitions, timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the broker (SIGTERM, SIGKILL after ``timeout_s``); remove a temporary data dir."""
        _end(self.process, timeout_s)
        self.process = None
        if self._own_data_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None




def _kafka_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'
    (which the command line would take for an option; Kafka's own `Uuid.randomUuid` avoids it too)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _end(process: Optional[subprocess.Popen], timeout_s: float) -> None:
    """Stop a service's process (SIGTERM, SIGKILL after ``timeout_s``) and reap it."""
    if process is not None:
        terminate(process.pid, timeout_s)
        process.wait(timeout=10)


# ---------------------------------------------------------------- S3


class S3Server(_Service):
    """S3Proxy on 127.0.0.1 storing buckets as folders of a temporary directory (jclouds' filesystem
    provider), with one identity (``access_key``, ``secret_key``) and AWS signatures v2 or v4 checked.

    ``.endpoint`` is its URL (``AWS_ENDPOINT_URL_S3``), ``.client()`` a boto3 client signed as that identity,
    ``.env()`` the AWS variables a reader needs. The folder is removed at stop.
    """

    def __init__(self, access_key: str = "mmon-test", secret_key: str = "mmon-test-secret",
                 jars_dir: Path = JARS_DIR / "s3proxy", start_timeout_s: float = 60.0):
        self.access_key, self.secret_key = access_key, secret_key
        self.jars_dir = Path(jars_dir)
        self.start_timeout_s = start_timeout_s
        self.port = 0
        self.data_dir: Optional[Path] = None
        self.process: Optional[subprocess.Popen] = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "S3Server":
        java = require_java()
        if not any(self.jars_dir.glob("s3proxy-*.jar")):
            raise ServiceError(f"S3Proxy jars missing in {self.jars_dir}; {SETUP_HINT}")
        self.port = free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix="mmon-s3-"))
        (self.data_dir / "buckets").mkdir()
        with open(self.data_dir / "s3proxy.log", "ab") as log:
            self.process = subprocess.Popen(
                [java, "-Xmx256m", "-cp", f"{self.jars_dir}/*", "org.gaul.s3proxy.Main",
                 "--properties", str(self._write_properties())], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        return self._await_ready(lambda: port_open(self.port), self.start_timeout_s, f"S3Proxy on {self.endpoint}")

    def _write_properties(self) -> Path:
        settings = {
            "s3proxy.endpoint": self.endpoint,
            "s3proxy.authorization": "aws-v2-or-v4",
            "s3proxy.identity": self.access_key,
            "s3proxy.credential": self.secret_key,
            "jclouds.provider": "filesystem",
            "jclouds.filesystem.basedir": self.data_dir / "buckets",
        }
        path = self.data_dir / "s3proxy.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        return path

    def _exit_reason(self) -> Optional[str]:
        if self.process and self.process.poll() is not None:
            return f"S3Proxy exited with code {self.process.returncode}\n{log_tail(self.data_dir / 's3proxy.log')}"
        return None

    def env(self) -> dict[str, str]:
        """The AWS variables that point boto3 (and so a job) at this server as its identity."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": self.endpoint}

    def client(self, access_key: Optional[str] = None, secret_key: Optional[str] = None):
        """A boto3 S3 client of this server, signed as its identity unless other keys are given. It sends
        and asks for checksums only where S3 requires them: S3Proxy 2.6 answers 501 to the aws-chunked uploads
        with trailing checksums and to the ``x-amz-checksum-mode`` header that boto3 sends by default."""
        import boto3
        import botocore.config
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=access_key or self.access_key, aws_secret_access_key=secret_key or self.secret_key,
            config=botocore.config.Config(request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop S3Proxy and remove its folder."""
        _end(self.process, timeout_s)
        self.process = None
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None


# ---------------------------------------------------------------- Flink


def pyflink_home() -> Path:
    """The Flink distribution inside the installed PyFlink wheel."""
    try:
        import pyflink
    except ImportError as err:
        raise ServiceError(f"PyFlink is not installed ({err}); {SETUP_HINT}") from err
    home = Path(pyflink.__file__).resolve().parent
    if not (home / "bin" / "start-cluster.sh").exists():
        raise ServiceError(f"no Flink distribution in {home}; reinstall apache-flink ({SETUP_HINT})")
    return home


def connector_jar(jars_dir: Path = JARS_DIR / "connector") -> Path:
    jars = sorted(Path(jars_dir).glob("flink-sql-connector-kafka-*.jar"))
    if not jars:
        raise ServiceError(f"Flink Kafka connector jar missing in {jars_dir}; {SETUP_HINT}")
    return jars[-1]


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


class FlinkCluster(_Service):
    """The PyFlink wheel's standalone cluster (one JobManager, one TaskManager) on 127.0.0.1.

    ``work_dir`` gets ``conf/`` (generated ``config.yaml``), ``lib/`` (links to the wheel's jars plus
    the Kafka connector, so submitted jobs need not ship it), ``log/`` and ``pid/``. Nothing in the
    wheel is modified. ``extra_config`` entries (flat Flink keys) override the defaults.

    Flink's scripts daemonize the JobManager and TaskManager. Unless ``background=True``, a small
    reaper process kills them if this Python process dies without calling `stop` (a killed test run).
    """

    def __init__(self, work_dir: Optional[Path] = None, rest_port: int = 0, rpc_port: int = 0,
                 slots: int = 2, extra_config: Optional[dict] = None, background: bool = False,
                 start_timeout_s: float = 180.0):
        self.home = pyflink_home()
        self.background = background
        self._reaper: Optional[subprocess.Popen] = None
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="mmon-flink-"))
        self.rest_port = rest_port
        self.rpc_port = rpc_port
        self.slots = slots
        self.extra_config = dict(extra_config or {})
        self.start_timeout_s = start_timeout_s

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def flink_cli(self) -> Path:
        return self.home / "bin" / "flink"

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "log"

    def env(self) -> dict:
        """Environment for Flink's scripts (and `flink run`) to use this cluster's conf, lib, log and pid dirs."""
        return {**os.environ, "FLINK_CONF_DIR": str(self.work_dir / "conf"), "FLINK_LIB_DIR": str(self.work_dir / "lib"),
                "FLINK_LOG_DIR": str(self.log_dir), "FLINK_PID_DIR": str(self.work_dir / "pid"),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def start(self) -> "FlinkCluster":
        require_java()
        jar = connector_jar()
        self.rest_port = self.rest_port or free_port()
        self.rpc_port = self.rpc_port or free_port()
        for port in (self.rest_port, self.rpc_port):
            if port_open(port):
                raise ServiceError(f"Flink: port {port} on 127.0.0.1 is already in use")
        self._write_conf()
        self._link_lib(jar)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "pid").mkdir(parents=True, exist_ok=True)
        if not self.background:
            self._reaper = subprocess.Popen(
                [sys.executable, "-c", f"from devtools.services import reap_orphaned; "
                                       f"reap_orphaned({str(self.work_dir / 'pid')!r})"],
                cwd=ROOT, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        self._run_script("start-cluster.sh")
        try:
            wait_until(self._slots_registered, self.start_timeout_s,
                       f"Flink cluster at {self.rest_url}", failed=self._failure_reason, interval_s=0.5)
        except ServiceError:
            self.stop()
            raise
        return self

    def _write_conf(self) -> None:
        """config.yaml: the wheel's defaults (JVM flags) overridden for a small local cluster."""
        conf = _flatten(yaml.safe_load((self.home / "conf" / "config.yaml").read_text()) or {})
        conf.update({
            "jobmanager.rpc.address": "localhost",
            "jobmanager.rpc.port": self.rpc_port,
            "jobmanager.bind-host": "127.0.0.1",
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.host": "localhost",
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": self.rest_port,
            "taskmanager.numberOfTaskSlots": self.slots,
            "parallelism.default": 1,
            "jobmanager.memory.process.size": "768m",
            "taskmanager.memory.process.size": "1536m",
            "python.executable": sys.executable,
            "python.client.executable": sys.executable,
            "env.log.dir": str(self.log_dir),
        })
        conf.update(self.extra_config)
        conf_dir = self.work_dir / "conf"
        conf_dir.mkdir(parents=True, exist_ok=True)
        (conf_dir / "config.yaml").write_text(yaml.safe_dump(conf, default_flow_style=False, sort_keys=True))
        for name in ("log4j.properties", "log4j-cli.properties", "log4j-console.properties",
                     "log4j-session.properties", "logback.xml"):
            shutil.copyfile(self.home / "conf" / name, conf_dir / name)
        (conf_dir / "workers").write_text("localhost\n")
        (conf_dir / "masters").write_text(f"localhost:{self.rest_port}\n")

    def _link_lib(self, jar: Path) -> None:
        """The wheel's lib jars, the Kafka connector, and flink-python from opt/ (as the official Docker
        images do for PyFlink), so Python operators' Java classes are on the cluster's classpath."""
        lib = self.work_dir / "lib"
        shutil.rmtree(lib, ignore_errors=True)
        lib.mkdir(parents=True)
        python_jars = sorted((self.home / "opt").glob("flink-python-*.jar"))
        for source in [*sorted((self.home / "lib").glob("*.jar")), *python_jars, jar]:
            (lib / source.name).symlink_to(source)

    def _run_script(self, name: str) -> None:
        result = subprocess.run(["bash", str(self.home / "bin" / name)], env=self.env(), capture_output=True,
                                text=True, timeout=120)
        if result.returncode != 0:
            raise ServiceError(f"Flink {name} failed: {(result.stderr or result.stdout).strip()[-2000:]}")

    def daemon_pids(self) -> list[int]:
        return _pids_in(self.work_dir / "pid")

    def _failure_reason(self) -> Optional[str]:
        pids = self.daemon_pids()
        if pids and not any(pid_alive(pid) for pid in pids):
            logs = sorted(self.log_dir.glob("*.log"))
            return "Flink daemons exited\n" + "\n".join(log_tail(log, 15) for log in logs)
        return None

    def overview(self) -> Optional[dict]:
        """The REST API's /overview, or None if it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.rest_url}/overview", timeout=3) as response:
                return json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def taskmanagers(self) -> int:
        return int((self.overview() or {}).get("taskmanagers", 0))

    def _slots_registered(self) -> bool:
        """The TaskManager registers before it reports its slots; a job can be scheduled only after both."""
        return int((self.overview() or {}).get("slots-total", 0)) >= self.slots

    def submit_python(self, job_args: Sequence[str], py_file: Optional[Path] = None, module: Optional[str] = None,
                      detached: bool = True, timeout_s: float = 300.0) -> subprocess.CompletedProcess:
        """`flink run [-d] (-py FILE | -pym MODULE) ARGS...` against this cluster; returns the finished CLI process.

        A module must be importable by the venv's Python (this project is installed in it), which both the
        client and the TaskManager's Python workers run; nothing is shipped with ``-pyfs``.
        """
        if (py_file is None) == (module is None):
            raise ValueError("give exactly one of py_file or module")
        target = ["-py", str(py_file)] if py_file else ["-pym", module]
        command = [str(self.flink_cli), "run", *(["-d"] if detached else []), *target, *job_args]
        return subprocess.run(command, env=self.env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)

    def stop(self, timeout_s: float = 60.0) -> None:
        """stop-cluster.sh, then make sure every daemon is gone (SIGKILL stragglers); remove a temporary work dir."""
        pids = self.daemon_pids()
        if pids:
            try:
                self._run_script("stop-cluster.sh")
            except (ServiceError, subprocess.TimeoutExpired):
                pass
            deadline = time.monotonic() + timeout_s
            while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.2)
            for pid in pids:
                terminate(pid, timeout_s=5)
        if self._reaper is not None:
            self._reaper.terminate()
            self._reaper.wait(timeout=10)
            self._reaper = None
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def _pids_in(pid_dir: Path) -> list[int]:
    """The process ids in Flink's pid files (one file per daemon type, one id a line)."""
    return [int(word) for pid_file in pid_dir.glob("*.pid") for word in pid_file.read_text().split() if word.isdigit()]


def reap_orphaned(pid_dir: str) -> None:
    """Wait for SIGTERM (sent when the parent dies, or by `FlinkCluster.stop`), then kill the daemons in pid_dir."""
    def reap(*_):
        for pid in _pids_in(Path(pid_dir)):
            terminate(pid, timeout_s=10)
        sys.exit(0)
    signal.signal(signal.SIGTERM, reap)
    while True:
        signal.pause()


# ---------------------------------------------------------------- command line (background services)

KAFKA_STATE = RUN_DIR / "kafka"
FLINK_STATE = RUN_DIR / "flink"


def _kafka_command(args: argparse.Namespace) -> int:
    state_file = KAFKA_STATE / "broker.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else None
    if state and not pid_alive(state["pid"]):
        state_file.unlink()
        state = None
    if args.action == "start":
        if state:
            print(f"kafka: already running at {state['bootstrap']} (pid {state['pid']})")
            return 0
        if args.fresh:
            shutil.rmtree(KAFKA_STATE, ignore_errors=True)
        print(f"kafka: starting on 127.0.0.1:{args.port} (data and broker.log in {KAFKA_STATE}) ...", flush=True)
        broker = KafkaBroker(port=args.port, controller_port=args.controller_port, data_dir=KAFKA_STATE,
                             background=True).start()
        state_file.write_text(json.dumps({"pid": broker.pid, "bootstrap": broker.bootstrap}))
        if args.topics:
            broker.create_topics(args.topics.split(","), partitions=args.partitions)
        print(f"kafka: ready at {broker.bootstrap} (pid {broker.pid})")
        return 0
    if args.action == "stop":
        if state:
            terminate(state["pid"])
            state_file.unlink(missing_ok=True)
        print(f"kafka: stopped (pid {state['pid']})" if state else "kafka: not running")
        return 0
    print(f"kafka: running at {state['bootstrap']} (pid {state['pid']})" if state else "kafka: not running")
    return 0 if state else 3


def _flink_command(args: argparse.Namespace) -> int:
    cluster = FlinkCluster(work_dir=FLINK_STATE, rest_port=args.rest_port, rpc_port=args.rpc_port, slots=args.slots,
                           background=True)
    running = any(pid_alive(pid) for pid in cluster.daemon_pids())
    if running:  # report the port the cluster was started with
        cluster.rest_port = yaml.safe_load((FLINK_STATE / "conf" / "config.yaml").read_text())["rest.port"]
    if args.action == "start":
        if running:
            print(f"flink: already running ({cluster.rest_url})")
            return 0
        print(f"flink: starting (conf, lib and logs in {FLINK_STATE}) ...", flush=True)
        cluster.start()
        print(f"flink: ready at {cluster.rest_url} ({cluster.taskmanagers()} taskmanager(s)); submit with\n"
              f"  FLINK_CONF_DIR={FLINK_STATE}/conf FLINK_LIB_DIR={FLINK_STATE}/lib {cluster.flink_cli} run -py JOB.py")
        return 0
    if args.action == "stop":
        if not running:
            print("flink: not running")
            return 0
        cluster.stop()
        print("flink: stopped")
        return 0
    overview = cluster.overview() if running else None
    print(f"flink: running at {cluster.rest_url}: {json.dumps(overview)}" if overview else
          f"flink: {'daemons up but REST not answering' if running else 'not running'}")
    return 0 if overview else 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.services",
        description="Run a local Kafka broker or Flink standalone cluster in the background (state in .cache/run/).")
    services = parser.add_subparsers(dest="service", required=True)
    kafka = services.add_parser("kafka", help="single-node KRaft Kafka broker")
    kafka.add_argument("action", choices=("start", "stop", "status"))
    kafka.add_argument("--port", type=int, default=9092, help="client (PLAINTEXT) port (default 9092)")
    kafka.add_argument("--controller-port", type=int, default=9093, help="KRaft controller port (default 9093)")
    kafka.add_argument("--topics", help="comma-separated topics to create after start")
    kafka.add_argument("--partitions", type=int, default=1, help="partitions per created topic (default 1)")
    kafka.add_argument("--fresh", action="store_true", help="delete the broker's previous data before start")
    kafka.set_defaults(run=_kafka_command)
    flink = services.add_parser("flink", help="Flink standalone cluster from the PyFlink wheel")
    flink.add_argument("action", choices=("start", "stop", "status"))
    flink.add_argument("--rest-port", type=int, default=8081, help="REST/web UI port (default 8081)")
    flink.add_argument("--rpc-port", type=int, default=6123, help="JobManager RPC port (default 6123)")
    flink.add_argument("--slots", type=int, default=2, help="task slots of the TaskManager (default 2)")
    flink.set_defaults(run=_flink_command)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    try:
        return args.run(args)
    except ServiceError as err:
        print(f"{args.service}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
