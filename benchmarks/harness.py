"""`mmon bench`: replay the staged Iris stream through Kafka and the monitoring job, and measure it.

Profiles:

* ``thesis`` (default): the thesis's experiment. The five stages at 64/122/177/122/64 requests/s
  (times ``--scale``) go over HTTP through the inference logger into Kafka; the job runs in Kafka mode.
  Each request is sent once, when the wall clock reaches its request time, so latencies are measured
  from the request time as in the thesis.
* ``max``: all requests are produced into the inference topic first; a raw Kafka consumer reads them
  (the ingestion ceiling), then the job starts from the earliest offset and drains them.
* ``calibration``: no stream and no job: false alarms and power of the drift metrics on synthetic
  features (`benchmarks.calibration`, its own options).
* ``wide``: cost against the model's width, synthetic models of 4 to 1,000 features, embedded and on
  Kafka (`benchmarks.wide`, its own options).

Run order, and why:

1. Warm-up: the job's start (JVM, Python workers, Kafka assignment) is not part of any latency. The
   harness posts a warm-up outlier request (request time one hour before the stream) every few
   seconds until the job's alert for it appears on the outliers topic; then the stream starts.
2. End markers: a watermark only moves with new events (idleness does not advance it), so after the
   last request the harness sends one marker request, at wall time = its request time = the end of
   the last window + the watermark delay: the first time that closes the last window, as the next
   real request would; before it, the same for a window the stream stopped within the watermark delay
   of (`closing_markers`). Warm-up and marker requests are excluded from every figure.
3. The output topics are consumed from the start by a background collector; the run ends when the last
   window's records are out and the topics have been quiet for a few seconds (bounded by deadlines).

Everything binds 127.0.0.1; topic names and the consumer group carry a run id, so ``--kafka`` can
reuse a broker across runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import yaml

from contract import formats
from contract import outputs as output_names
from contract.spec import ConfigError, MonitorSpec, TopicsSpec, load_spec, spec_to_dict

from udfs.baseline import Baseline

from streams import iris

from devtools.processes import ServiceError, stop_group, wait_until
from devtools.services import FlinkCluster, KafkaBroker, create_topics, free_port

from benchmarks import load, plots, report
from benchmarks.analysis import GroundTruth, Outputs, WindowTiming, analyse, in_stream, summarize
from benchmarks.collect import KINDS, OutputCollector
from benchmarks.resources import ProcessTreeSampler

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "examples" / "iris" / "monitor.yaml"
WARM_UP_PREFIX = "warm-up-"
END_MARKER_ID = "end-marker"
WARM_UP_BEFORE_MS = 3_600_000
START_LEAD_S = 1.0
PROGRESS_EVERY_S = 5.0
OWN_OPTIONS = {"calibration": "benchmarks.calibration", "wide": "benchmarks.wide",
               "cardinality": "benchmarks.cardinality"}
"""The profiles with options of their own, by their module (its ``main(argv)`` runs them)."""


class BenchError(RuntimeError):
    """A run that cannot go on; the message says which step and why."""


JobCheck = Callable[[], Optional[str]]  # None while the job runs, else why it is gone


@dataclass(frozen=True)
class Options:
    profile: str
    stage_size: int
    scale: float
    seed: int
    out: Path
    config: Path
    kafka: Optional[str]
    flink_cluster: bool
    concurrency: int
    job_start_timeout_s: float
    drain_timeout_s: float

    @property
    def rates(self) -> tuple[float, ...]:
        return tuple(rate * self.scale for rate in iris.DEFAULT_RATES)


@dataclass(frozen=True)
class RunData:
    """What a profile run hands to the report and the plots besides its figures."""

    truth: GroundTruth
    stream: iris.StagedStream
    outputs: Outputs
    timing: WindowTiming
    exclude_ids: frozenset
    sent_per_second: Optional[list[tuple[float, int]]]


# ---------------------------------------------------------------- set-up


def bench_spec(options: Options, bootstrap: str, run_id: str) -> MonitorSpec:
    """The configured spec with this run's broker, topics and consumer group, metrics reporter off."""
    spec = load_spec(options.config)
    if not spec.baseline.exists():
        raise BenchError(f"baseline {spec.baseline} missing: build it with `mmon baseline`")
    named = {f.name: getattr(spec.kafka.topics, f.name) for f in dataclasses.fields(TopicsSpec)}
    topics = TopicsSpec(**{name: topic and f"bench-{run_id}-{topic}" for name, topic in named.items()})  # labels: None
    kafka = dataclasses.replace(spec.kafka, bootstrap_servers=bootstrap, group_id=f"mmon-bench-{run_id}", topics=topics)
    return dataclasses.replace(spec, kafka=kafka, job=dataclasses.replace(spec.job, metrics_port=0))


def spec_topics(spec: MonitorSpec) -> list[str]:
    """The topics the spec names (an unset labels topic left out)."""
    return [topic for f in dataclasses.fields(TopicsSpec) if (topic := getattr(spec.kafka.topics, f.name))]


def write_spec(spec: MonitorSpec, path: Path) -> Path:
    path.write_text(yaml.safe_dump(spec_to_dict(spec), sort_keys=False))
    return path


@contextmanager
def kafka_bootstrap(kafka: Optional[str]) -> Iterator[str]:
    """``kafka`` when given, else a local broker started for the block."""
    if kafka:
        yield kafka
        return
    print("bench: starting a local Kafka broker ...", flush=True)
    with KafkaBroker() as broker:
        yield broker.bootstrap


class ChildProcess:
    """A subprocess in its own process group (JVM and Python workers included), output to a log file."""

    def __init__(self, name: str, command: Sequence[str], log_path: Path):
        self.name, self.log_path = name, log_path
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(list(command), stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def failure(self) -> Optional[str]:
        if self.alive():
            return None
        tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
        return f"{self.name} exited with code {self.process.returncode}; last lines of {self.log_path}:\n" + "\n".join(tail)

    def stop(self, timeout_s: float = 30.0) -> None:
        stop_group(self.process, timeout_s)
        self._log.close()


def mmon(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmon.cli", *args]


@contextmanager
def sampled(name: str, command: Sequence[str], log_path: Path) -> Iterator[tuple[ChildProcess, ProcessTreeSampler]]:
    """``command`` as a `ChildProcess` with a `ProcessTreeSampler` on its tree; both stopped on exit."""
    with ExitStack() as stack:
        job = ChildProcess(name, command, log_path)
        stack.callback(job.stop)
        sampler = ProcessTreeSampler(lambda: [job.process.pid])
        sampler.start()
        stack.callback(sampler.stop)
        yield job, sampler


def start_logger(spec: MonitorSpec, out: Path, stack: ExitStack) -> tuple[str, ChildProcess]:
    """The inference logger on a free port; returns its URL once /readyz answers 200."""
    import urllib.request
    port = free_port()
    logger = ChildProcess("logger", mmon("logger", "--kafka", spec.kafka.bootstrap_servers, "--topic",
                                         spec.kafka.topics.inference, "--port", str(port), "--format",
                                         spec.input.format), out / "logger.log")
    stack.callback(logger.stop)

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False
    wait_until(ready, 60, "inference logger", failed=logger.failure)
    return f"http://127.0.0.1:{port}/", logger


def start_job(options: Options, spec_path: Path, spec: MonitorSpec,
              stack: ExitStack) -> tuple[ProcessTreeSampler, JobCheck]:
    """The job in Kafka mode, embedded (a child `mmon run`) or submitted to a standalone cluster;
    returns a running sampler of the job's processes and a check that says why the job is gone."""
    args = ["--config", str(spec_path), "--kafka", spec.kafka.bootstrap_servers]
    if options.flink_cluster:
        cluster = FlinkCluster(work_dir=options.out / "flink-cluster")
        print("bench: starting the Flink standalone cluster ...", flush=True)
        cluster.start()
        stack.callback(cluster.stop)
        submitted = cluster.submit_python([*args, "--detach"], py_file=ROOT / "flink_job" / "main.py")
        if submitted.returncode != 0:
            raise BenchError(f"flink run failed:\n{submitted.stdout.strip()[-2000:]}\n{submitted.stderr.strip()[-1000:]}")
        sampler = ProcessTreeSampler(lambda: cluster_pids(cluster.work_dir))
        def failure() -> Optional[str]:
            return None if cluster_pids(cluster.work_dir) else f"the Flink cluster exited (see {cluster.log_dir})"
    else:
        job = ChildProcess("job", mmon("run", *args), options.out / "job.log")
        stack.callback(job.stop)
        sampler = ProcessTreeSampler(lambda: [job.process.pid])
        failure = job.failure
    sampler.start()
    stack.callback(sampler.stop)
    return sampler, failure


def cluster_pids(work_dir: Path) -> list[int]:
    """The standalone cluster's daemons: every process whose command line names its work dir."""
    import psutil
    marker = str(work_dir)
    pids = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if any(marker in part for part in process.info["cmdline"] or ()):
            pids.append(process.info["pid"])
    return pids


# ---------------------------------------------------------------- the run


def warm_up_request(baseline: Baseline, features: Sequence[str], attempt: int, time_ms: int) -> load.Request:
    """An instance at the baseline means except the first feature, 10 std above: one sure alert."""
    values = [baseline.features[name].mean for name in features]
    values[0] += 10 * baseline.features[features[0]].std
    return load.Request(f"{WARM_UP_PREFIX}{attempt}", time_ms, values)


def await_job(collector: OutputCollector, requests: Iterable[load.Request], send: Callable[[load.Request], object],
              job_failure: JobCheck, timeout_s: float) -> None:
    """Send warm-up requests until the job alerts on one of them (it reads and processes end to end)."""
    deadline = time.monotonic() + timeout_s
    for request in requests:
        send(request)
        if collector.wait_for(lambda c: any(r["request_id"].startswith(WARM_UP_PREFIX) for r in c.records[output_names.OUTLIERS]),
                              5.0, lambda: job_failure() is None):
            return
        if job_failure():
            raise BenchError(job_failure())
        if time.monotonic() > deadline:
            break
    raise BenchError(f"the job did not alert on the warm-up request within {timeout_s:.0f} s (see job.log)")


def last_window_end(truth: GroundTruth, timing: WindowTiming) -> int:
    last = int(truth.time_ms[-1])
    return (last // timing.duration_ms + 1) * timing.duration_ms


def await_last_window(collector: OutputCollector, end_ms: int, n_features: int, timeout_s: float,
                      job_failure: JobCheck) -> None:
    """Wait for the stats records of the last window, then for a quiet topic (drift follows stats)."""
    done = collector.wait_for(lambda c: c.stats_per_window_end[end_ms] >= n_features, timeout_s,
                              lambda: job_failure() is None)
    if not done:
        raise BenchError(job_failure() or f"the job did not emit the last window within {timeout_s:.0f} s (see job.log)")
    collector.wait_quiet(quiet_s=3.0, timeout_s=30.0)


def marker_request(truth: GroundTruth, timing: WindowTiming, baseline: Baseline) -> load.Request:
    time_ms = last_window_end(truth, timing) + timing.watermark_delay_ms
    return load.Request(END_MARKER_ID, time_ms, [baseline.features[f].mean for f in truth.features])


def closing_markers(truth: GroundTruth, timing: WindowTiming, baseline: Baseline) -> list[load.Request]:
    """The end marker, preceded by one marker per earlier window that the last request leaves open.

    A window closes when a request time passes its end + the watermark delay. When the stream stops
    less than that after a window's end, that window would wait for the end marker, a whole window
    late: an artifact of the stream's end, since live traffic closes it in time. Its marker goes out at
    its end + delay with a one-value instance, which the job dead-letters (wrong feature count) after
    its request time has moved the watermark, so no window gains an instance; the analysis leaves the
    markers' dead letters out (their ids are excluded)."""
    last_request = int(truth.time_ms[-1])
    early = []
    end = last_window_end(truth, timing) - timing.duration_ms
    while end + timing.watermark_delay_ms > last_request and end > truth.time_ms[0]:
        early.append(load.Request(f"{END_MARKER_ID}-{end}", end + timing.watermark_delay_ms, [0.0]))
        end -= timing.duration_ms
    return [*reversed(early), marker_request(truth, timing, baseline)]


def shifted(stream: iris.StagedStream, start_ms: int) -> iris.StagedStream:
    return dataclasses.replace(stream, time_ms=stream.time_ms - stream.time_ms[0] + start_ms)


class Progress:
    """The one-line status every few seconds: stage, sent, rate, HTTP success, alerts, windows."""

    def __init__(self, truth: GroundTruth, collector: OutputCollector, n_features: int):
        self.truth, self.collector, self.n_features = truth, collector, n_features
        self.started = self.last_time = time.monotonic()
        self.last_sent = 0

    def __call__(self, sent: int) -> None:
        now = time.monotonic()
        rate = (sent - self.last_sent) / max(now - self.last_time, 1e-9)
        self.last_sent, self.last_time = sent, now
        stage = int(self.truth.stage[min(sent, len(self.truth.ids)) - 1]) if sent else 1
        windows = self.collector.windows(self.n_features)
        print(f"bench: {now - self.started:7.1f} s  stage {stage}/5  sent {sent:,}/{len(self.truth.ids):,}  "
              f"{rate:7.1f} req/s  alerts {self.collector.count('outliers'):,}  windows {windows:,}  "
              f"drift records {self.collector.count('drift'):,}", flush=True)


def sender_figures(truth: GroundTruth, replayed: load.ReplayResult) -> dict:
    ok = replayed.ok
    per_stage = {}
    for stage in np.unique(truth.stage):
        rows = (truth.stage == stage) & ok
        if rows.sum() > 1:
            span = replayed.answered_at[rows].max() - truth.time_ms[truth.stage == stage][0] / 1000
            per_stage[str(int(stage))] = float(rows.sum() / span)
    span_s = replayed.answered_at[ok].max() - truth.time_ms[0] / 1000 if ok.any() else None
    return {
        "instances_sent": int(ok.sum()),
        "http_success_rate": replayed.success_rate(),
        "http_errors": replayed.errors,
        "http_response_s": summarize(replayed.response_s[~np.isnan(replayed.response_s)]),
        "send_lag_s": summarize(replayed.lag_s),
        "throughput_ips": float(ok.sum() / span_s) if span_s else None,
        "throughput_per_stage_ips": per_stage,
    }


def run_thesis(options: Options, spec: MonitorSpec, spec_path: Path,
               stream: iris.StagedStream) -> tuple[dict, RunData]:
    """The HTTP replay at the stream's rates; returns the figures and the data behind them."""
    timing = WindowTiming(spec.window.duration, spec.window.watermark_delay)
    baseline = Baseline.load(spec.baseline)
    features = spec.input.names
    with ExitStack() as stack:
        collector = stack.enter_context(OutputCollector(spec.kafka.bootstrap_servers, spec.kafka.topics))
        job_sampler, job_failure = start_job(options, spec_path, spec, stack)
        url, logger = start_logger(spec, options.out, stack)
        logger_sampler = ProcessTreeSampler(lambda: [logger.process.pid])
        logger_sampler.start()
        stack.callback(logger_sampler.stop)
        print("bench: job and logger started; waiting for the job to alert on a warm-up request ...", flush=True)
        warm_up_time = int(time.time() * 1000) - WARM_UP_BEFORE_MS
        attempts = (warm_up_request(baseline, features, i, warm_up_time) for i in range(10_000))
        await_job(collector, attempts, lambda r: load.send_one(url, r), job_failure, options.job_start_timeout_s)
        stream = shifted(stream, int((time.time() + START_LEAD_S) * 1000))
        truth = GroundTruth.from_stream(stream)
        requests = [load.Request(i, t, row) for i, t, row in
                    zip(stream.ids.tolist(), stream.time_ms.tolist(), stream.instances.tolist())]
        print(f"bench: replaying {len(requests):,} requests at {'/'.join(f'{r:g}' for r in options.rates)} req/s "
              f"with up to {options.concurrency} in flight", flush=True)
        replayed = load.replay(url, requests, options.concurrency, progress=Progress(truth, collector, len(features)),
                               progress_every_s=PROGRESS_EVERY_S)
        markers = closing_markers(truth, timing, baseline)
        offsets = ", ".join(f"+{(m.time_ms - truth.time_ms[-1]) / 1000:.1f} s" for m in markers)
        print(f"bench: all sent; end markers at request time {offsets} close the last windows", flush=True)
        for marker in markers:
            load.send_one(url, marker)
        await_last_window(collector, last_window_end(truth, timing), len(features), options.drain_timeout_s,
                          job_failure)
        figures = {**job_resources(job_sampler), "logger_peak_rss_mb": logger_sampler.peak_rss_mb,
                   "logger_cpu_s": logger_sampler.cpu_seconds, **sender_figures(truth, replayed)}
        outputs = collector.outputs()
    exclude = frozenset([*(m.request_id for m in markers), *(r["request_id"] for r in outputs.outliers
                                                             if r["request_id"].startswith(WARM_UP_PREFIX))])
    figures.update(analyse(truth, outputs, timing, exclude))
    return figures, RunData(truth, stream, outputs, timing, exclude, replayed.acked_per_second(truth.time_ms[0] / 1000))


def job_resources(sampler: ProcessTreeSampler) -> dict:
    sampler.sample()
    return {"job_peak_rss_mb": sampler.peak_rss_mb, "job_cpu_s": sampler.cpu_seconds}


def produce_all(bootstrap: str, topic: str, stream: iris.StagedStream, format: str,
                marker: load.Request) -> float:
    """Every request, then the end marker, into ``topic`` (key: request id, timestamp: request time);
    returns the seconds it took."""
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=1 << 20,
                             client_id="mmon-bench-stager")
    started = time.monotonic()
    rows = zip(stream.ids.tolist(), stream.time_ms.tolist(), stream.instances.tolist())
    for request_id, time_ms, row in [*rows, (marker.request_id, marker.time_ms, list(marker.instance))]:
        producer.send(topic, key=request_id.encode(), value=formats.encode(format, request_id, time_ms, [row]).encode(),
                      timestamp_ms=time_ms)
    producer.flush()
    producer.close()
    return time.monotonic() - started


def raw_consumer_rate(bootstrap: str, topic: str, expected: int, timeout_s: float = 300.0) -> float:
    """Records/s of a plain kafka-python consumer reading ``topic`` from the start, first fetch to
    last record (no parsing; large fetches, no CRC check: about 4x the defaults' rate): the ingestion ceiling
    of this machine for the job's comparison."""
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_poll_records=50_000, check_crcs=False, max_partition_fetch_bytes=16 << 20,
                             fetch_max_bytes=64 << 20, client_id="mmon-bench-raw")
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        consumer.poll(timeout_ms=0, max_records=1)  # connect and fetch metadata outside the timing
        consumer.seek_to_beginning()
        read, started = 0, time.monotonic()
        deadline = started + timeout_s
        while read < expected and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            read += sum(len(messages) for messages in batch.values())
        elapsed = time.monotonic() - started
    finally:
        consumer.close()
    if read < expected:
        raise BenchError(f"raw consumer read {read:,} of {expected:,} records from {topic} within {timeout_s:.0f} s")
    return read / elapsed


def drain_rate(truth: GroundTruth, outputs: Outputs) -> Optional[float]:
    """Instances/s from the first alert to the last window emitted: the alert marks instance k read,
    and every instance after it was read and windowed by the last emission (JVM start excluded)."""
    position = truth.position()
    alerts = [r for r in outputs.outliers if r["request_id"] in position]
    emitted = [r["emitted_at"] for r in [*outputs.stats, *outputs.drift]]
    if not alerts or not emitted:
        return None
    first = min(alerts, key=lambda r: r["detected_at"])
    seconds = (max(emitted) - first["detected_at"]) / 1000
    return (len(truth.ids) - position[first["request_id"]]) / seconds if seconds > 0 else None


def run_max(options: Options, spec: MonitorSpec, spec_path: Path,
            stream: iris.StagedStream) -> tuple[dict, RunData]:
    """Stage everything in Kafka, measure the raw consumer, then let the job drain it from the start."""
    timing = WindowTiming(spec.window.duration, spec.window.watermark_delay)
    baseline = Baseline.load(spec.baseline)
    span_ms = int(stream.time_ms[-1] - stream.time_ms[0])
    stream = shifted(stream, int(time.time() * 1000) - span_ms)
    truth = GroundTruth.from_stream(stream)
    marker = marker_request(truth, timing, baseline)
    topic = spec.kafka.topics.inference
    print(f"bench: producing {len(stream):,} requests into {topic} ...", flush=True)
    produce_s = produce_all(spec.kafka.bootstrap_servers, topic, stream, spec.input.format, marker)
    raw_ips = raw_consumer_rate(spec.kafka.bootstrap_servers, topic, len(stream) + 1)
    print(f"bench: produced in {produce_s:.1f} s; raw consumer reads {raw_ips:,.0f} records/s; starting the job",
          flush=True)
    with ExitStack() as stack:
        # nothing is decoded during the drain (the stats are counted by their first bytes): the outputs are read
        # after it, as the embedded run's files are
        collector = stack.enter_context(OutputCollector(spec.kafka.bootstrap_servers, spec.kafka.topics,
                                                        live=()))
        started = time.time()
        job_sampler, job_failure = start_job(options, spec_path, spec, stack)
        stack.enter_context(drain_progress(collector, len(spec.input.features)))
        await_last_window(collector, last_window_end(truth, timing), len(spec.input.features),
                          options.drain_timeout_s, job_failure)
        figures = job_resources(job_sampler)
        outputs = collector.outputs()
    figures.update(analyse(truth, outputs, timing, frozenset([END_MARKER_ID])))
    for key in [k for k in figures if "latency" in k and k != "window_latency_floor_s"]:
        figures[key] = None  # request times are staged, not live: no latency in this profile
    last_emitted = max(r["emitted_at"] for r in [*outputs.stats, *outputs.drift])
    throughput = drain_rate(truth, outputs)
    figures.update({
        "instances_sent": len(stream), "http_success_rate": None, "produce_s": produce_s,
        "throughput_ips": throughput, "raw_consumer_ips": raw_ips,
        "throughput_vs_raw_consumer": throughput / raw_ips if throughput else None,
        "whole_run_ips": len(stream) / (last_emitted / 1000 - started),
    })
    return figures, RunData(truth, stream, outputs, timing, frozenset([END_MARKER_ID]), None)


@contextmanager
def drain_progress(collector: OutputCollector, n_features: int) -> Iterator[None]:
    """Print the job's output counts every few seconds while it drains (a timer thread)."""
    import threading
    stop = threading.Event()
    started = time.monotonic()

    def report_loop() -> None:
        while not stop.wait(PROGRESS_EVERY_S):
            windows = collector.windows(n_features)
            print(f"bench: {time.monotonic() - started:7.1f} s  draining: alerts {collector.count('outliers'):,}  "
                  f"windows {windows:,}  drift records {collector.count('drift'):,}", flush=True)
    thread = threading.Thread(target=report_loop, name="drain-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


# ---------------------------------------------------------------- command line


def run(options: Options, command_line: str) -> dict:
    """The whole benchmark; writes results.json, report.md and the plots into ``options.out``."""
    options.out.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    stream = iris.generate(seed=options.seed, stage_size=options.stage_size, rates=options.rates, start_ms=0)
    with kafka_bootstrap(options.kafka) as bootstrap:
        spec = bench_spec(options, bootstrap, run_id)
        spec_path = write_spec(spec, options.out / "monitor.yaml")
        create_topics(bootstrap, spec_topics(spec))
        profile_run = run_thesis if options.profile == "thesis" else run_max
        figures, data = profile_run(options, spec, spec_path, stream)
    figures.update({"profile": options.profile, "run_id": run_id, "command_line": command_line,
                    "options": _options_dict(options),
                    "config": spec_to_dict(spec)})
    results = report.write(options.out, figures)
    save_records(options.out / "records", data.outputs, data.stream)
    plots.write_all(options.out, in_stream(data.outputs, data.truth), iris.stage_boundaries_ms(data.stream),
                    data.truth.features, data.timing, data.exclude_ids, data.sent_per_second)
    return results


def save_records(directory: Path, outputs: Outputs, stream: iris.StagedStream) -> None:
    """The consumed output records, one JSON-lines file per topic, and the stream's labels, for re-analysis."""
    directory.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        with open(directory / output_names.FILE_NAMES[kind], "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(record) + "\n" for record in getattr(outputs, kind))
    iris.write_labels(stream, directory / "labels.csv")


def _options_dict(options: Options) -> dict:
    return {**{k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(options).items()},
            "rates": list(options.rates)}


def _positive(kind: type):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmon bench", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Replay the staged Iris stream (5 stages: normal / outliers / drift / outliers / normal) "
                    "through Kafka and the monitoring job; write results.json, report.md and PNG plots.")
    parser.add_argument("--profile", choices=("thesis", "max", *OWN_OPTIONS), default="thesis",
                        help="thesis: HTTP through the logger at the thesis's rates; max: staged in Kafka, drained "
                             "as fast as the job can; calibration: drift metrics' false alarms and power "
                             "(see mmon bench --profile calibration --help); wide: cost against the model's width "
                             "(see mmon bench --profile wide --help); cardinality: peak memory of a window of "
                             "distinct long categorical values (see mmon bench --profile cardinality --help)")
    parser.add_argument("--stage-size", type=_positive(int), default=iris.DEFAULT_STAGE_SIZE,
                        help="requests per stage")
    parser.add_argument("--scale", type=_positive(float), default=1.0,
                        help="multiply the request rates 64/122/177/122/64 per second")
    parser.add_argument("--seed", type=int, default=iris.DEFAULT_SEED, help="stream seed")
    parser.add_argument("--out", type=Path, default=Path("bench-out"), help="output directory")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="monitor spec (window, thresholds); its Kafka settings are replaced per run")
    parser.add_argument("--kafka", metavar="HOST:PORT", help="use this broker instead of starting a local one")
    parser.add_argument("--flink-cluster", action="store_true",
                        help="submit the job to a local standalone Flink cluster instead of running it embedded")
    parser.add_argument("--concurrency", type=_positive(int), default=64, help="HTTP requests in flight at most")
    parser.add_argument("--job-start-timeout", dest="job_start_timeout_s", type=_positive(float), default=300.0,
                        help="seconds to wait for the job to start processing")
    parser.add_argument("--drain-timeout", dest="drain_timeout_s", type=_positive(float), default=600.0,
                        help="seconds to wait for the last window after the last request")
    return parser


def summary_line(results: dict) -> str:
    def p75(key: str) -> str:
        value = (results.get(key) or {}).get("p75")
        return "n/a" if value is None else f"{value:.3f} s"
    met = sum(1 for t in results["targets"] if t["met"])
    judged = sum(1 for t in results["targets"] if t["met"] is not None)
    return (f"outlier p75 {p75('outlier_latency_s')}, stats p75 from mid {p75('stats_latency_from_mid_s')}, "
            f"drift p75 from mid {p75('drift_latency_from_mid_s')}, throughput "
            f"{results.get('throughput_ips') or 0:,.0f} instances/s, recall {results.get('outlier_recall')}, "
            f"job peak RSS {results.get('job_peak_rss_mb') or 0:.0f} MB; targets met {met}/{judged}")


def _profile(argv: list[str]) -> str:
    """The --profile given, before the full parse: some profiles have options of their own (`OWN_OPTIONS`)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--profile")
    return parser.parse_known_args(argv)[0].profile


def main(argv: list[str]) -> int:
    if _profile(argv) in OWN_OPTIONS:
        import importlib
        return importlib.import_module(OWN_OPTIONS[_profile(argv)]).main(argv)
    args = build_parser().parse_args(argv)
    options = Options(**vars(args))
    if not options.config.exists():
        print(f"mmon bench: no monitor spec at {options.config}", file=sys.stderr)
        return 2
    try:
        results = run(options, shlex.join(["mmon", "bench", *argv]))
    except (BenchError, ServiceError, ConfigError, ValueError) as err:
        print(f"mmon bench: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mmon bench: interrupted", file=sys.stderr)
        return 130
    print(f"bench: {summary_line(results)}")
    print(f"bench: wrote {options.out / 'results.json'}, {options.out / 'report.md'} and plots")
    return 0
