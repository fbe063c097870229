"""Baselines by reference: ``baseline:`` an http:// URL served by a real HTTP server on 127.0.0.1 (started
here, in a thread), its content pinned by ``baseline_sha256``; the errors (unreachable, 404, bad checksum)
name the field; the Authorization header from the environment, never sent on to a redirect's target; and
an embedded `mmon run` whose baseline exists only on the server."""
from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from contract.spec import BASELINE_AUTHORIZATION_ENV, BaselineUrl, ConfigError, load_spec

from udfs.baseline import Baseline, BaselineError, ChecksumError
from udfs.calibration import threshold_curves

from flink_job.main import checked_baseline

from streams import iris

import embedded_run

IRIS = Path(__file__).resolve().parents[1] / "examples" / "iris"
CONTENT = (IRIS / "baseline.json").read_bytes()
SHA256 = hashlib.sha256(CONTENT).hexdigest()


class BaselineServer:
    """An HTTP server on 127.0.0.1: ``routes`` maps a path to (status, body, headers); every request's path
    and headers are kept in ``requests``."""

    def __init__(self, routes: dict[str, tuple[int, bytes, dict]]):
        self.routes, self.requests = routes, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, dict(self.headers)))
                status, body, headers = server.routes.get(self.path, (404, b"not found", {}))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    served = BaselineServer({"/baseline.json": (200, CONTENT, {"Content-Type": "application/json"})})
    yield served
    served.stop()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_baseline_read_over_http_is_the_files(server):
    url = BaselineUrl(f"{server.url}/baseline.json")
    assert Baseline.load(url).fingerprint == Baseline.load(IRIS / "baseline.json").fingerprint
    assert Baseline.load(url, SHA256.upper()).fingerprint == Baseline.load(IRIS / "baseline.json").fingerprint
    assert [path for path, _ in server.requests] == ["/baseline.json", "/baseline.json"]


def test_unreachable_missing_and_altered_baselines_are_refused_with_what_went_wrong(server):
    with pytest.raises(BaselineError, match=rf"cannot fetch http://127.0.0.1:\d+/b.json: .*refused"):
        Baseline.load(BaselineUrl(f"http://127.0.0.1:{_closed_port()}/b.json"))
    with pytest.raises(BaselineError, match="cannot fetch .*/other.json: the server answered 404 Not Found"):
        Baseline.load(BaselineUrl(f"{server.url}/other.json"))
    with pytest.raises(ChecksumError, match=f"has SHA-256 {SHA256}, not the pinned {'0' * 64}"):
        Baseline.load(BaselineUrl(f"{server.url}/baseline.json"), "0" * 64)
    server.routes["/page.html"] = (200, b"<html>", {})
    with pytest.raises(BaselineError, match="page.html: not valid JSON"):
        Baseline.load(BaselineUrl(f"{server.url}/page.html"))


def test_the_authorization_header_comes_from_the_environment_and_stays_off_redirects(server, monkeypatch):
    other = BaselineServer({"/moved.json": (200, CONTENT, {})})
    try:
        server.routes["/old.json"] = (302, b"", {"Location": f"{other.url}/moved.json"})
        monkeypatch.setenv(BASELINE_AUTHORIZATION_ENV, "Bearer s3cret")
        Baseline.load(BaselineUrl(f"{server.url}/baseline.json"))
        Baseline.load(BaselineUrl(f"{server.url}/old.json"))
    finally:
        other.stop()
    assert [headers.get("Authorization") for _, headers in server.requests] == ["Bearer s3cret", "Bearer s3cret"]
    assert [(path, headers.get("Authorization")) for path, headers in other.requests] == [("/moved.json", None)]


def _spec(tmp_path: Path, **fields) -> Path:
    document = {**yaml.safe_load((IRIS / "monitor.yaml").read_text()), **fields}
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(document))
    return tmp_path / "monitor.yaml"


def test_the_job_names_the_field_of_a_bad_baseline_reference(server, tmp_path):
    with pytest.raises(ConfigError, match="^baseline: cannot fetch .*404"):
        checked_baseline(load_spec(_spec(tmp_path, baseline=f"{server.url}/gone.json")))
    with pytest.raises(ConfigError, match=f"^baseline_sha256: .* has SHA-256 {SHA256}, not the pinned"):
        checked_baseline(load_spec(_spec(tmp_path, baseline=f"{server.url}/baseline.json", baseline_sha256="a" * 64)))
    with pytest.raises(ConfigError, match="^baseline: unsupported URL scheme 'ftp'"):
        load_spec(_spec(tmp_path, baseline="ftp://127.0.0.1/baseline.json"))
    with pytest.raises(ConfigError, match="^baseline_sha256: expected 64 hexadecimal digits"):
        load_spec(_spec(tmp_path, baseline="baseline.json", baseline_sha256="abc"))
    spec = load_spec(_spec(tmp_path, baseline=f"{server.url}/baseline.json", baseline_sha256=SHA256))
    assert isinstance(spec.baseline, BaselineUrl) and checked_baseline(spec).features


def test_mmon_run_reads_its_baseline_over_http(server, tmp_path, monkeypatch):
    """Embedded: the spec's folder holds no baseline, the server has it; the drift thresholds are the
    calibration of the served baseline at each window's count."""
    monkeypatch.setenv(BASELINE_AUTHORIZATION_ENV, "Bearer job-token")
    spec = yaml.safe_load((IRIS / "monitor.yaml").read_text())
    spec.update(baseline=f"{server.url}/baseline.json", baseline_sha256=SHA256)
    spec["job"]["metrics_port"] = 0
    stream = iris.generate(seed=5, stage_size=100, rates=(40.0,) * 5)
    input_path = tmp_path / "input.jsonl"
    iris.write_jsonl(stream, input_path)
    run = embedded_run.run_mmon(spec, input_path, tmp_path)
    assert run["summary"]["accounted"] and run["summary"]["requests_accepted"] == len(stream)
    assert server.requests and all(headers.get("Authorization") == "Bearer job-token" for _, headers in server.requests)
    baseline = Baseline.load(IRIS / "baseline.json")
    curves = threshold_curves(baseline, "kl", 0.01)
    kl = [record for record in run["drift"] if record["metric"] == "kl"]
    assert kl and np.allclose([r["threshold"] for r in kl],
                              [curves.of(r["feature"], [r["count"]])[0] for r in kl], rtol=1e-12)
