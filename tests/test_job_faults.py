"""The job's fault suite (issue 10, findings 1-3): one `mmon run --kafka` on a broker of its own, fed
a scripted sequence of faults, its output topics and Prometheus metrics checked afterwards.

The sequence (event times relative to T, a window boundary about five minutes before now):

1. a malformed record: its dead letter shows the job is up;
2. 21 requests 0.5 s apart from T, 11 from T+40 s (finding 1: windows lost after a quiet period);
3. poison pills (finding 2): malformed records of ~900 KB and 5 MB (the broker takes 8 MiB; the job's
   ``input.max_record_bytes`` is left at its default, Kafka's default 1,048,588 bytes, so the 5 MB one is
   ``too_large``, unparsed, and the 900 KB one ``bad_json``);
4. watermark poisoning (finding 3): a request in the year 3000 and one before 1970;
5. a wall-clock gap longer than the idle timeout, then requests at T+100 s (and an outlier at
   T+100.5 s), T+200 s and T+300 s, each closing windows awaited one by one.

A file-input test checks that a replayed file's ``future_time`` rule is relative to the stream.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
import yaml
from kafka import KafkaProducer

from contract import formats

from streams import iris

from devtools.processes import stop_group
from devtools.services import KafkaBroker, free_port

from kafka_topics import OutputReader
from prometheus_scrape import metric_values, scrape, total
from window_checks import assert_stats_equal_numpy, normal_rows

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "iris" / "monitor.yaml"
FEATURE = "sepal_length"
WINDOW_MS = 15_000
IDLE_TIMEOUT_S = 3
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
MAX_RAW_BYTES = 65_536  # job.dead_letter_max_raw_bytes, default
YEAR_3000_MS = 32_503_680_000_000
PRE_1970_MS = -86_400_000
OUTLIER_ROW = [5.8, 3.0, 20.0, 1.3]  # petal_length far over the 3-sigma bound
JOB_UP_S = 240  # job start on a busy two-core machine: ~40 s when quiet
STEP_S = 60  # each later step: its outputs within seconds
METRICS_S = 60
RESTARTS_METRIC = "flink_jobmanager_job_numRestarts"


def _write_spec(tmp: Path, window: dict, kafka: Optional[dict] = None, job: Optional[dict] = None) -> dict:
    """examples/iris/monitor.yaml with the given window, kafka and job settings, as ``tmp/monitor.yaml``."""
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["baseline"] = str(EXAMPLE.parent / spec["baseline"])
    spec["window"].update(window)
    spec["kafka"].update(kafka or {})
    spec["job"].update(job or {})
    (tmp / "monitor.yaml").write_text(yaml.safe_dump(spec))
    return spec


def _expected_windows(requests: list[tuple[str, int, list[float]]]) -> dict[int, list[list[float]]]:
    """Window start -> the rows of the requests in it."""
    by_window: dict[int, list[list[float]]] = {}
    for _, t, row in requests:
        by_window.setdefault(t // WINDOW_MS * WINDOW_MS, []).append(row)
    return by_window


def _assert_windows_equal_numpy(stats: list[dict], by_window: dict[int, list[list[float]]],
                                features: list[str]) -> None:
    """One record per (feature, window) of ``by_window``, none other, each equal to numpy on its rows."""
    assert sorted((r["feature"], r["window_start"]) for r in stats) == sorted(
        (f, w) for f in features for w in by_window)
    for record in stats:
        column = features.index(record["feature"])
        assert_stats_equal_numpy(record, np.array(by_window[record["window_start"]])[:, column], WINDOW_MS)


# ------------------------------------------------------------------------------ the Kafka fault run

class Outputs(OutputReader):
    """The job's output topics, read as they fill, with the dead letters of a reason and the stats of a
    window of ``FEATURE``."""

    def dead_letters(self, reason: str) -> list[dict]:
        return [r for r in self.records["dead_letter"] if r["reason"] == reason]

    def window(self, start: int) -> list[dict]:
        return [r for r in self.records["stats"] if r.get("feature") == FEATURE and r["window_start"] == start]


@dataclass
class Inference:
    """The inference topic, with a log of what was sent: the valid requests and every raw record."""

    producer: KafkaProducer
    topic: str
    requests: list[tuple[str, int, list[float]]] = field(default_factory=list)
    raw: dict[str, bytes] = field(default_factory=dict)  # key -> value of every record, valid or not

    def send(self, key: str, value: bytes, timestamp_ms: int) -> None:
        self.raw[key] = value
        self.producer.send(self.topic, key=key.encode(), value=value, timestamp_ms=timestamp_ms)
        self.producer.flush()

    def request(self, rid: str, t: int, row: list[float]) -> None:
        self.requests.append((rid, t, row))
        self.send(rid, formats.encode(formats.THESIS, rid, t, [row]).encode(), t)


PILL_REASONS = (formats.BAD_JSON, formats.TOO_LARGE)  # the malformed records' reasons: raw text that is not JSON


def _pill(size: int) -> bytes:
    """A malformed record of ``size`` bytes, an unterminated JSON string of two-byte characters (so the
    dead letter's cut at 64 KiB falls inside a character)."""
    head = b'{"pill":"'
    body = "ü" * ((size - len(head)) // 2)
    return head + body.encode()


@dataclass
class FaultRun:
    spec: dict
    T: int
    inference: Inference
    outputs: Outputs
    timings: dict[str, Optional[float]] = field(default_factory=dict)
    metrics: Optional[dict] = None
    restarts: Optional[list[float]] = None
    alive_at_end: bool = False
    log: Path = Path()

    def step(self, name: str, condition: Callable[[], bool], timeout_s: float = STEP_S) -> None:
        self.timings[name] = self.outputs.wait_for(condition, timeout_s)

    def context(self) -> str:
        return f"timings {self.timings}\n{self.log.read_text()[-3000:]}"


def _job_up(run: FaultRun) -> None:
    run.inference.send("bad", b"{bad", run.T - 60_000)
    run.step("job up (first dead letter)", lambda: run.outputs.dead_letters(formats.BAD_JSON), JOB_UP_S)
    if run.timings["job up (first dead letter)"] is None:
        pytest.fail("the job never dead-lettered its first record: " + run.context(), pytrace=False)


def _before_the_gap(run: FaultRun, rows: list[list[float]]) -> None:
    """Finding 1's first two bursts; the second closes the first's window."""
    times = [run.T + 500 * k for k in range(21)] + [run.T + 40_000 + 500 * k for k in range(11)]
    for k, (t, row) in enumerate(zip(times, rows)):
        run.inference.request(f"r{k:02d}", t, row)
    run.step("window T", lambda: run.outputs.window(run.T))


def _poison_pills(run: FaultRun) -> None:
    for key, size in (("pill-900k", 900_000), ("pill-5m", 5_000_000)):
        run.inference.send(key, _pill(size), run.T + 41_000)
    run.step("poison pills dead-lettered", lambda: len(run.outputs.dead_letters(formats.BAD_JSON)) >= 2
             and run.outputs.dead_letters(formats.TOO_LARGE))


def _poisoned_times(run: FaultRun, row: list[float]) -> None:
    run.inference.send("year-3000", formats.encode(formats.THESIS, "year-3000", YEAR_3000_MS, [row]).encode(),
                       YEAR_3000_MS)
    run.inference.send("pre-1970", formats.encode(formats.THESIS, "pre-1970", PRE_1970_MS, [row]).encode(),
                       run.T + 42_000)
    run.step("far-future and pre-1970 dead-lettered", lambda: run.outputs.dead_letters(formats.FUTURE_TIME)
             and run.outputs.dead_letters(formats.BAD_TIME))


def _after_the_gap(run: FaultRun, rows: list[list[float]]) -> None:
    """The idle gap (wall clock, the point of finding 1), then records that close the earlier windows."""
    time.sleep(IDLE_TIMEOUT_S * 1.5 + 3)
    T = run.T
    run.inference.request("after-gap", T + 100_000, rows[0])
    run.inference.request("outlier", T + 100_500, OUTLIER_ROW)
    run.step("windows T+30, T+45 and the alert after the gap",
             lambda: run.outputs.window(T + 30_000) and run.outputs.window(T + 45_000) and run.outputs.records["outliers"])
    run.inference.request("close-90", T + 200_000, rows[1])
    run.step("window T+90", lambda: run.outputs.window(T + 90_000))
    run.inference.request("close-195", T + 300_000, rows[2])
    run.step("window T+195", lambda: run.outputs.window(T + 195_000))


def _settled_metrics(run: FaultRun) -> None:
    """The ``mmon`` counters once they account for every record sent and every instance windowed."""
    port = run.spec["job"]["metrics_port"]
    windowed = sum(r["count"] for r in run.outputs.records["stats"] if r.get("feature") == FEATURE)

    def settled() -> bool:
        run.metrics = scrape(port)
        return bool(run.metrics) and (total(run.metrics, "records_read") == len(run.inference.raw)
                                      and total(run.metrics, "instances_windowed") >= windowed)
    run.step("metrics settled", settled, METRICS_S)
    run.restarts = metric_values(port, RESTARTS_METRIC)


def _run_faults(run: FaultRun) -> None:
    rows = normal_rows(40, seed=10)
    _job_up(run)
    _before_the_gap(run, rows[:32])
    _poison_pills(run)
    _poisoned_times(run, rows[32])
    _after_the_gap(run, rows[33:36])
    _settled_metrics(run)
    run.outputs.drain()


def _start_job(config: Path, bootstrap: str, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "mmon.cli", "run", "--config", str(config),
                                 "--kafka", bootstrap], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


@pytest.fixture(scope="module")
def big_message_broker():
    """A broker of this module's own that takes records up to 8 MiB."""
    with KafkaBroker(extra_properties={"message.max.bytes": MAX_MESSAGE_BYTES,
                                       "replica.fetch.max.bytes": MAX_MESSAGE_BYTES}) as broker:
        yield broker


@pytest.fixture(scope="module")
def fault_run(big_message_broker, tmp_path_factory) -> FaultRun:
    tmp = tmp_path_factory.mktemp("faults")
    bootstrap, suffix = big_message_broker.bootstrap, uuid.uuid4().hex[:8]
    topics = {name: f"faults-{name}-{suffix}" for name in ("inference", "stats", "outliers", "drift", "dead_letter")}
    spec = _write_spec(tmp, {"duration": "15s", "watermark_delay": "6s", "idle_timeout": f"{IDLE_TIMEOUT_S}s"},
                       {"bootstrap_servers": bootstrap, "group_id": f"faults-{suffix}", "topics": topics},
                       {"metrics_port": free_port(), "checkpoint_interval": "2s"})
    big_message_broker.create_topics(topics.values())
    now_ms = int(time.time() * 1000)
    run = FaultRun(spec, (now_ms - 300_000) // WINDOW_MS * WINDOW_MS,
                   Inference(KafkaProducer(bootstrap_servers=bootstrap, max_request_size=MAX_MESSAGE_BYTES),
                             topics["inference"]),
                   Outputs(bootstrap, {kind: topic for kind, topic in topics.items() if kind != "inference"}),
                   log=tmp / "job.log")
    job = _start_job(tmp / "monitor.yaml", bootstrap, run.log)
    try:
        _run_faults(run)
        run.alive_at_end = job.poll() is None
    finally:
        stop_group(job)
        run.inference.producer.close()
        run.outputs.close()
    counters = {name: values for name, values in (run.metrics or {}).items() if "drift_value" not in name}
    print(f"\nfault run: timings {run.timings}; restarts {run.restarts}; counters {counters}")
    return run


def _stats_records(run: FaultRun) -> list[dict]:
    return [r for r in run.outputs.records["stats"] if "feature" in r]


def test_every_window_emitted_once_after_an_idle_gap(fault_run):
    T = fault_run.T
    starts = Counter(r["window_start"] - T for r in _stats_records(fault_run) if r["feature"] == FEATURE)
    counts = {r["window_start"] - T: r["count"] for r in _stats_records(fault_run) if r["feature"] == FEATURE}
    assert starts == {0: 1, 30_000: 1, 45_000: 1, 90_000: 1, 195_000: 1}, fault_run.context()
    # T+90 holds the request at T+100 s and the outlier at T+100.5 s
    assert counts == {0: 21, 30_000: 10, 45_000: 1, 90_000: 2, 195_000: 1}


def test_window_stats_equal_numpy(fault_run):
    closed = {w: rows for w, rows in _expected_windows(fault_run.inference.requests).items()
              if w != fault_run.T + 300_000}  # the last request's window stays open
    _assert_windows_equal_numpy(_stats_records(fault_run), closed, fault_run.spec["input"]["features"])


def test_dead_letters_exactly_by_reason(fault_run):
    reasons = Counter(r["reason"] for r in fault_run.outputs.records["dead_letter"])
    assert reasons == {formats.BAD_JSON: 2, formats.TOO_LARGE: 1, formats.FUTURE_TIME: 1, formats.BAD_TIME: 1}, \
        fault_run.context()
    by_id = {json.loads(r["raw"]).get("id"): r["reason"] for r in fault_run.outputs.records["dead_letter"]
             if r["reason"] not in PILL_REASONS}
    assert by_id == {"year-3000": formats.FUTURE_TIME, "pre-1970": formats.BAD_TIME}


@pytest.mark.parametrize("key, reason", [("pill-900k", formats.BAD_JSON), ("pill-5m", formats.TOO_LARGE)])
def test_poison_pill_dead_letter_is_bounded_with_length_and_hash(fault_run, key, reason):
    raw = fault_run.inference.raw[key]
    [record] = [r for r in fault_run.outputs.dead_letters(reason) if r["raw_bytes"] == len(raw)]
    cut = record["raw"].encode()
    assert record["truncated"] is True
    assert record["raw_sha256"] == hashlib.sha256(raw).hexdigest()
    assert MAX_RAW_BYTES - 1 <= len(cut) <= MAX_RAW_BYTES  # cut at the last whole character
    assert raw.startswith(cut)
    assert record["source"].startswith(fault_run.inference.topic + "/0/")


def test_small_dead_letter_is_whole(fault_run):
    [record] = [r for r in fault_run.outputs.dead_letters(formats.BAD_JSON) if r["raw"] == "{bad"]
    assert (record["truncated"], record["raw_bytes"]) == (False, 4)
    assert record["raw_sha256"] == hashlib.sha256(b"{bad").hexdigest()


def test_dead_letter_fields(fault_run):
    for record in fault_run.outputs.records["dead_letter"]:
        assert set(record) == {"reason", "raw", "raw_bytes", "raw_sha256", "truncated", "source", "at"}
        assert record["at"] >= fault_run.T + 300_000  # stamped at egress, after the run began (T + 300 s <= then)


def test_far_future_request_does_not_poison_the_watermark(fault_run):
    assert not fault_run.outputs.dead_letters("late")
    accepted_after = {"after-gap", "outlier", "close-90", "close-195"}
    dead_ids = {json.loads(r["raw"]).get("id") for r in fault_run.outputs.records["dead_letter"]
                if r["reason"] not in PILL_REASONS}
    assert not accepted_after & dead_ids


def test_outlier_after_the_far_future_request_is_alerted(fault_run):
    alerts = [(a["request_id"], a["feature"], a["value"], a["request_time"]) for a in fault_run.outputs.records["outliers"]]
    assert alerts == [("outlier", "petal_length", 20.0, fault_run.T + 100_500)]


def test_job_never_restarted(fault_run):
    assert fault_run.alive_at_end, fault_run.context()
    assert fault_run.restarts == [0.0]
    sources = [r["source"] for r in fault_run.outputs.records["dead_letter"]]
    assert len(sources) == len(set(sources)) == 5  # a restart would repeat them (at-least-once)


def test_accounting_identity_from_prometheus(fault_run):
    metrics, sent = fault_run.metrics, fault_run.inference
    assert metrics, fault_run.context()
    dead = {reason: value for (reason,), value in metrics["reason_dead_letter"].items()}
    assert dead == {formats.BAD_JSON: 2, formats.TOO_LARGE: 1, formats.FUTURE_TIME: 1, formats.BAD_TIME: 1}
    assert total(metrics, "records_read") == len(sent.raw) == total(metrics, "requests_accepted") + sum(dead.values())
    still_open = sum(1 for _, t, _ in sent.requests if t >= fault_run.T + 300_000)
    assert still_open == 1
    assert total(metrics, "instances_accepted") == len(sent.requests)
    assert total(metrics, "instances_accepted") == total(metrics, "instances_windowed") + still_open


# ------------------------------------------------------------------------------ a replayed file

YEAR_MS = 365 * 86_400_000


def _replay(tmp: Path, lines: list[str]) -> Path:
    """`mmon run` embedded over ``lines``; returns its output directory."""
    _write_spec(tmp, {}, job={"metrics_port": 0})
    (tmp / "input.jsonl").write_text("\n".join(lines) + "\n")
    out, log = tmp / "out", tmp / "job.log"
    with open(log, "w") as log_file:
        result = subprocess.run([sys.executable, "-m", "mmon.cli", "run", "--config", str(tmp / "monitor.yaml"),
                                 "--input", str(tmp / "input.jsonl"), "--output", str(out)], cwd=REPO,
                                stdout=log_file, stderr=subprocess.STDOUT, timeout=300)
    assert result.returncode == 0, log.read_text()[-3000:]
    return out


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_replayed_file_future_time_is_relative_to_the_stream(tmp_path):
    """A file in 2027 (ahead of the wall clock) is monitored; a request a year after its neighbours is
    ``future_time``, and it does not make the later requests late."""
    start = iris.DEFAULT_START_MS
    assert start > time.time() * 1000
    rows = normal_rows(60, seed=11)
    requests = [(f"f{k:02d}", start + 750 * k, row) for k, row in enumerate(rows)]
    lines = [formats.encode(formats.THESIS, rid, t, [row]) for rid, t, row in requests]
    jump = formats.encode(formats.THESIS, "a-year-on", requests[29][1] + YEAR_MS, [rows[0]])
    lines.insert(30, jump)
    out = _replay(tmp_path, lines)
    dead = _jsonl(out / "dead_letter.jsonl")
    assert [(r["reason"], r["source"].rsplit(":", 1)[1]) for r in dead] == [(formats.FUTURE_TIME, "31")]
    features = yaml.safe_load((tmp_path / "monitor.yaml").read_text())["input"]["features"]
    by_window = _expected_windows(requests)
    assert len(by_window) >= 3
    _assert_windows_equal_numpy(_jsonl(out / "stats.jsonl"), by_window, features)
