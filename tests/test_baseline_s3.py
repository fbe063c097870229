"""Baselines by reference from S3: ``baseline: s3://bucket/key`` read with boto3 from a real S3-compatible
server (S3Proxy on 127.0.0.1, started by the session: conftest.py ``s3_server``), its identity given by the
standard AWS variables; the errors (access denied, no such key or bucket, unreachable endpoint, no
credentials) said in words and named by the job's field; ``baseline_sha256`` pinning the content; and an
embedded `mmon run` whose baseline exists only in the S3 server, its outputs those of the same run on the
local file."""
from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
import yaml

from contract.spec import BaselineUrl, ConfigError, load_spec

from udfs.baseline import Baseline, BaselineError, ChecksumError, read_bytes

from flink_job.main import checked_baseline

from devtools.services import free_port

from streams import iris

import embedded_run

pytestmark = [pytest.mark.s3, pytest.mark.timeout(600)]

IRIS = Path(__file__).resolve().parents[1] / "examples" / "iris"
CONTENT = (IRIS / "baseline.json").read_bytes()
SHA256 = hashlib.sha256(CONTENT).hexdigest()
KEY = "models/iris/baseline.json"


@pytest.fixture
def bucket(s3_server, monkeypatch, tmp_path) -> str:
    """A new bucket holding the Iris baseline at `KEY`, and an environment whose AWS credential chain is the
    server's identity and nothing else: no shared config or credentials file, no instance metadata (which
    would be a request off this machine)."""
    name = f"baselines-{uuid.uuid4().hex[:12]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key=KEY, Body=CONTENT)
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                     "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("MMON_CACHE_DIR", str(tmp_path / "cache"))
    for variable, value in s3_server.env().items():
        monkeypatch.setenv(variable, value)
    return name


def test_a_baseline_read_from_s3_is_the_files_bytes(bucket):
    url = BaselineUrl.location(f"s3://{bucket}/{KEY}", "baseline")
    assert isinstance(url, BaselineUrl) and url.is_s3
    assert read_bytes(url) == CONTENT
    local = Baseline.load(IRIS / "baseline.json").fingerprint
    assert Baseline.load(url).fingerprint == local
    assert Baseline.load(url, SHA256.upper()).fingerprint == local


def test_a_pinned_checksum_refuses_other_content(bucket, s3_server):
    with pytest.raises(ChecksumError, match=f"s3://{bucket}/{KEY} has SHA-256 {SHA256}, not the pinned {'0' * 64}"):
        Baseline.load(BaselineUrl(f"s3://{bucket}/{KEY}"), "0" * 64)
    s3_server.client().put_object(Bucket=bucket, Key=KEY, Body=CONTENT.replace(b'"count"', b'"count" ', 1))
    with pytest.raises(ChecksumError, match=f"not the pinned {SHA256}"):
        Baseline.load(BaselineUrl(f"s3://{bucket}/{KEY}"), SHA256)


def test_missing_objects_and_buckets_are_404s_in_words(bucket):
    with pytest.raises(BaselineError, match=rf"^cannot fetch s3://{bucket}/gone.json: no such key \(404 NoSuchKey\)$"):
        read_bytes(f"s3://{bucket}/gone.json")
    with pytest.raises(BaselineError, match=r"^cannot fetch s3://no-such-bucket/b.json: no such bucket \(404 NoSuchBucket\)$"):
        read_bytes("s3://no-such-bucket/b.json")


def test_wrong_credentials_are_access_denied(bucket, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(BaselineError, match=r"access denied \(wrong secret access key\) \(403 SignatureDoesNotMatch\)"):
        read_bytes(f"s3://{bucket}/{KEY}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "somebody-else")
    with pytest.raises(BaselineError, match=r"access denied \(unknown access key id\) \(403 InvalidAccessKeyId\)"):
        read_bytes(f"s3://{bucket}/{KEY}")


def test_no_credentials_and_an_unreachable_endpoint_are_said(bucket, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(BaselineError, match="no AWS credentials .*AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        read_bytes(f"s3://{bucket}/{KEY}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mmon-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "mmon-test-secret")
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", closed)
    with pytest.raises(BaselineError, match=f"Could not connect to the endpoint URL: \"{closed}/.*is the S3 endpoint up"):
        read_bytes(f"s3://{bucket}/{KEY}")


def test_the_endpoint_may_come_from_aws_endpoint_url_too(bucket, s3_server, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    assert read_bytes(f"s3://{bucket}/{KEY}") == CONTENT


def _spec(tmp_path: Path, **fields) -> Path:
    document = {**yaml.safe_load((IRIS / "monitor.yaml").read_text()), **fields}
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(document))
    return tmp_path / "monitor.yaml"


def test_the_spec_takes_s3_urls_and_the_job_names_the_field_of_a_bad_one(bucket, tmp_path):
    spec = load_spec(_spec(tmp_path, baseline=f"s3://{bucket}/{KEY}", baseline_sha256=SHA256))
    assert spec.baseline == f"s3://{bucket}/{KEY}" and checked_baseline(spec).features
    with pytest.raises(ConfigError, match=rf"^baseline: cannot fetch s3://{bucket}/gone.json: no such key"):
        checked_baseline(load_spec(_spec(tmp_path, baseline=f"s3://{bucket}/gone.json")))
    with pytest.raises(ConfigError, match=f"^baseline_sha256: s3://{bucket}/{KEY} has SHA-256 {SHA256}"):
        checked_baseline(load_spec(_spec(tmp_path, baseline=f"s3://{bucket}/{KEY}", baseline_sha256="b" * 64)))
    for url, says in (("s3://Bad_Bucket/k.json", "names no valid S3 bucket"), (f"s3://{bucket}", "names no object key"),
                      (f"s3://{bucket}/folder/", "names no object key")):
        with pytest.raises(ConfigError, match=f"^baseline: '{url}' {says}"):
            load_spec(_spec(tmp_path, baseline=url))
    with pytest.raises(ConfigError, match=r"unsupported URL scheme 'gs' \(use an http\(s\):// or s3:// URL"):
        load_spec(_spec(tmp_path, baseline="gs://bucket/baseline.json"))


def _run(tmp_path: Path, baseline: str, stream: iris.StagedStream) -> dict:
    spec = yaml.safe_load((IRIS / "monitor.yaml").read_text())
    spec.update(baseline=baseline, baseline_sha256=SHA256)
    spec["job"]["metrics_port"] = 0
    tmp_path.mkdir()
    input_path = tmp_path / "input.jsonl"
    iris.write_jsonl(stream, input_path)
    return embedded_run.run_mmon(spec, input_path, tmp_path)


@pytest.mark.flink
def test_mmon_run_reads_its_baseline_from_s3_as_from_the_file(bucket, tmp_path):
    """Embedded: the spec's folder holds no baseline, the S3 server has it (the job gets its identity and
    endpoint from the AWS variables); every stats and drift record equals the same run's on the local file
    but for its emission time."""
    stream = iris.generate(seed=5, stage_size=100, rates=(40.0,) * 5)
    from_s3 = _run(tmp_path / "s3", f"s3://{bucket}/{KEY}", stream)
    from_file = _run(tmp_path / "file", str(IRIS / "baseline.json"), stream)
    assert from_s3["summary"]["accounted"] and from_s3["summary"]["requests_accepted"] == len(stream)
    assert from_s3["baseline"].fingerprint == from_file["baseline"].fingerprint
    for kind in ("stats", "drift"):
        assert from_s3[kind] and _sorted(from_s3[kind]) == _sorted(from_file[kind]), kind
    assert {r["metric"] for r in from_s3["drift"]} == set(from_s3["spec"]["drift"]["metrics"])


def _sorted(records: list[dict]) -> list[str]:
    """The records in one order, without ``emitted_at`` (the wall-clock time of each run's emission)."""
    return sorted(yaml.safe_dump({k: v for k, v in record.items() if k != "emitted_at"}, sort_keys=True)
                  for record in records)
