"""`mmon bench --profile wide`: what the model's width costs, embedded and on Kafka.

For each width (default 4, 32, 128, 512 and 1,000 features) the synthetic model of `streams.wide` (its
baseline, spec and staged stream; the drift stage moves a known subset of the features).

Measured per width:

- embedded (``mmon run --input``): instances/s and feature values/s as the job's summary counts them
  (windows after the first, first to last stats record), the job's peak RSS (the whole process tree:
  client, JVM, Python workers) and its start-up: launch to the first output record;
- on Kafka (the ``max`` profile's method, `benchmarks.harness.run_max`): the stream staged in a topic,
  the raw consumer's rate, then the job's drain rate from the first alert to the last window, with the cores
  the broker and the harness (its output collector) took meanwhile on the same machine;
- the floors (`benchmarks.floor`): plain Flink SQL jobs reading the same topic and counting its records, same
  broker, same JVM flags, right after the drain: the read floor (the value as a raw string), the parse floor
  (every value parsed by Flink's JSON format) and the job's parser floor (each record through the job's own
  parse function); the Kafka path is reported as a share of the first two and of the embedded
  path, against issue 23's targets (`KAFKA_VS_EMBEDDED`, `KAFKA_VS_FLOOR`);
- covariance: a window of `COVARIANCE_WINDOW` instances through `udfs.stats.CovarianceAccumulator`
  (update and result), the cost the opt-in matrices add per window.

Writes ``results.json``, ``report.md`` and ``wide.png`` into ``--out``; the models, streams and job
outputs go into ``--work`` (a temporary folder unless given; about 1 GB at the default widths).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import psutil

from udfs.stats import CovarianceAccumulator

from flink_job import jvm

from streams import iris, wide
from streams.wide import Model

from benchmarks import harness
from benchmarks.background import BackgroundWorker
from benchmarks.floor import INSTANCES_FIELD

WIDTHS = (4, 32, 128, 512, 1000)
COVARIANCE_WINDOW = 1000
STARTUP_POLL_S = 0.05
FLOOR_TIMEOUT_S = 300


def run_embedded(model: Model, out: Path) -> dict:
    """One embedded run of the model's stream; its rate, peak RSS and start-up time."""
    output = out / f"embedded-{model.width}"
    output.mkdir(parents=True, exist_ok=True)
    for stale in output.glob("*.jsonl"):  # an earlier run's records would read as this one's start
        stale.unlink()
    command = harness.mmon("run", "--config", str(model.spec_path), "--input", str(model.stream_path),
                           "--output", str(output))
    started = time.monotonic()
    with harness.sampled(f"embedded job ({model.width} features)", command,
                         out / f"embedded-{model.width}.log") as (job, sampler):
        startup_s = _first_output_s(output, started, job)
        job.process.wait()
        sampler.sample()
    if job.process.returncode != 0:
        raise harness.BenchError(job.failure() or "the embedded job failed")
    summary = json.loads((output / "summary.json").read_text())
    rate = summary["instances_per_s"]
    return {"instances_per_s": rate, "values_per_s": rate * model.width if rate else None,
            "peak_rss_mb": sampler.peak_rss_mb, "cpu_s": sampler.cpu_seconds, "startup_s": startup_s,
            "accounted": summary["accounted"], "windows": summary["windows"], "drift_alerts": summary["drift_alerts"],
            **_flagged_in_drift_stage(output, model)}


def _first_output_s(output: Path, started: float, job: harness.ChildProcess) -> Optional[float]:
    """Seconds from launch until any output file has a record (None if the job ends without one)."""
    while job.alive():
        if any(path.stat().st_size for path in output.glob("*.jsonl")):
            return time.monotonic() - started
        time.sleep(STARTUP_POLL_S)
    return None


def _flagged_in_drift_stage(output: Path, model: Model) -> dict:
    """The features flagged in a window that lies wholly within the drift stage: those the stage drifted
    (``drifted_flagged`` of ``drifted``) and the others (``others_flagged``; outlier stages move every
    feature's histogram, so only the drift stage tells the subset apart)."""
    times = model.stream.time_ms[model.stream.stage == iris.STAGE_KINDS.index("drift") + 1]
    first, last = int(times[0]), int(times[-1])
    with open(output / "drift.jsonl") as lines:
        flagged = {int(r["feature"][1:]) for r in map(json.loads, lines)
                   if r["drift"] and r["window_start"] >= first and r["window_end"] <= last}
    drifted = set(wide.drifted_columns(model.width))
    return {"drifted": len(drifted), "drifted_flagged": len(flagged & drifted), "others_flagged": len(flagged - drifted)}


def run_kafka(model: Model, out: Path, bootstrap: str, seed: int) -> dict:
    """The ``max`` profile's staging and drain of the model's stream on Kafka, the cores the broker and the
    harness (its output collector) took during the drain, then the read floor on the same topic."""
    run_id = uuid.uuid4().hex[:8]
    options = harness.Options(profile="max", stage_size=len(model.stream) // 5, scale=1.0, seed=seed,
                              out=out / f"kafka-{model.width}", config=model.spec_path, kafka=bootstrap,
                              flink_cluster=False, concurrency=1, job_start_timeout_s=300.0, drain_timeout_s=900.0)
    options.out.mkdir(parents=True, exist_ok=True)
    spec = harness.bench_spec(options, bootstrap, run_id)
    spec_path = harness.write_spec(spec, options.out / "monitor.yaml")
    harness.create_topics(bootstrap, harness.spec_topics(spec))
    with embedded_jvm_flags(len(model.stream)):
        with CpuTimeline({"broker": broker_pid(bootstrap), "harness": os.getpid()}) as cpu:
            figures, data = harness.run_max(options, spec, spec_path, model.stream)
        floor = run_floor(bootstrap, spec.kafka.topics.inference, spec.input.format, spec_path,
                          options.out / "floor.log")
    rate = window_rate(data.outputs.stats, spec.input.names[0])
    start_s, end_s = drain_span_s(data.outputs)
    return {"instances_per_s": rate, "values_per_s": rate * model.width if rate else None,
            "drain_ips": figures["throughput_ips"], "raw_consumer_ips": figures["raw_consumer_ips"],
            "vs_raw_consumer": _share(rate, figures["raw_consumer_ips"]),
            "peak_rss_mb": figures["job_peak_rss_mb"], "floor_ips": floor["records_per_s"],
            "floor_records": floor["records"], "parse_floor_ips": (floor.get("parse") or {}).get("records_per_s"),
            "job_parse_floor_ips": floor["job_parse"]["records_per_s"],
            "drain_s": end_s - start_s,
            "broker_cores": cpu.cores("broker", start_s, end_s), "harness_cores": cpu.cores("harness", start_s, end_s)}


@contextmanager
def embedded_jvm_flags(instances: int) -> Iterator[None]:
    """The Kafka job and the read floor started in the block get the JVM flags of the embedded run of the same
    ``instances`` (`flink_job.jvm.local_jvm_args`, through ``JVM_ARGS``), so that the ratios compare the paths, not
    the compilers. A Kafka job otherwise runs the optimising compiler (C2), right for a job that runs for hours; over
    a drain of a few seconds its compilation took a third of the job's CPU (128 features, 78,125 instances: 22.2
    CPU-seconds against 14.7 with the client compiler only, as the embedded run of that stream has)."""
    saved = os.environ.get("JVM_ARGS")
    os.environ["JVM_ARGS"] = jvm.local_jvm_args(saved or "", kafka=False, input_lines=instances)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["JVM_ARGS"]
        else:
            os.environ["JVM_ARGS"] = saved


def window_rate(stats: list[dict], first_feature: str) -> Optional[float]:
    """Instances/s as the embedded summary counts them (`flink_job.main.summarize`): the instances of every window
    after the first over the time from the first window's stats record to the last one's. Measured so on both
    paths, the rate leaves out the Python workers' start, which the drain rate (from the first alert, read while
    the window step's worker may still be starting) takes in on Kafka alone."""
    first = sorted((r for r in stats if r.get("feature") == first_feature), key=lambda r: r["emitted_at"])
    span_s = (first[-1]["emitted_at"] - first[0]["emitted_at"]) / 1000 if len(first) > 1 else 0
    after_first = sum(r["count"] + r.get("missing", 0) for r in first[1:])
    return after_first / span_s if span_s > 0 else None


def run_floor(bootstrap: str, topic: str, format: str, spec_path: Path, log_path: Path) -> dict:
    """`benchmarks.floor` on ``topic``, in a process of its own as the job is: the read floor, the parse floor where
    the records' ``format`` has one, and the job's parser floor under the job's spec."""
    result = log_path.with_suffix(".json")
    parse = ["--parse", format] if format in INSTANCES_FIELD else []
    finished = subprocess.run([sys.executable, "-m", "benchmarks.floor", "--kafka", bootstrap, "--topic", topic,
                               "--result", str(result), *parse, "--config", str(spec_path)], cwd=harness.ROOT,
                              capture_output=True, text=True, timeout=FLOOR_TIMEOUT_S)
    log_path.write_text(finished.stdout + finished.stderr)
    if finished.returncode != 0:
        raise harness.BenchError(f"the floors failed (see {log_path})")
    return json.loads(result.read_text())


def drain_span_s(outputs) -> tuple[float, float]:
    """Epoch seconds of the drain that `harness.drain_rate` times: the first alert to the last window record."""
    first = min(r["detected_at"] for r in outputs.outliers)
    last = max(r["emitted_at"] for r in [*outputs.stats, *outputs.drift])
    return first / 1000, last / 1000


def broker_pid(bootstrap: str) -> Optional[int]:
    """The local process listening on the broker's port (None for a broker elsewhere)."""
    port = int(bootstrap.rsplit(":", 1)[1])
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
            return connection.pid
    return None


class CpuTimeline(BackgroundWorker):
    """Cumulative CPU seconds of a few named processes, sampled every half second, to tell the cores each took
    over a span of wall-clock time (`cores`)."""

    def __init__(self, pids: dict[str, Optional[int]], interval_s: float = 0.5):
        super().__init__("cpu-timeline")
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items() if pid}
        self.interval_s = interval_s
        self.samples: list[tuple[float, dict[str, float]]] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            cpu = {}
            for name, process in self.processes.items():
                try:
                    times = process.cpu_times()
                    cpu[name] = times.user + times.system
                except psutil.Error:
                    continue
            self.samples.append((time.time(), cpu))
            self._stop.wait(self.interval_s)

    def cores(self, name: str, start_s: float, end_s: float) -> Optional[float]:
        """CPU seconds ``name`` used from ``start_s`` to ``end_s`` (epoch, interpolated), per second."""
        points = [(at, cpu[name]) for at, cpu in self.samples if name in cpu]
        if len(points) < 2 or end_s <= start_s:
            return None
        at, used = np.array(points).T
        return float((np.interp(end_s, at, used) - np.interp(start_s, at, used)) / (end_s - start_s))


def covariance_cost(width: int, seed: int) -> dict:
    """Seconds to fold a `COVARIANCE_WINDOW`-instance window into a covariance accumulator and read it."""
    batch = np.random.default_rng([seed, width, 1]).normal(size=(COVARIANCE_WINDOW, width))
    started = time.perf_counter()
    accumulator = CovarianceAccumulator(width)
    accumulator.update(batch)
    result = accumulator.result()
    seconds = time.perf_counter() - started
    return {"seconds_per_window": seconds, "matrix_entries": width * width,
            "record_mb": len(json.dumps(result["covariance"])) / 2**20}


def run(widths: tuple[int, ...], seed: int, work: Path, kafka: Optional[str], with_kafka: bool,
        template: Path) -> dict:
    """Every width embedded (and on Kafka), in order; the rows of figures and the targets."""
    rows = []
    with ExitStack() as stack:
        bootstrap = stack.enter_context(harness.kafka_bootstrap(kafka)) if with_kafka else None
        for width in widths:
            print(f"wide: {width} features: generating the model and its stream ...", flush=True)
            model = wide.make_model(width, seed, work, template)
            row = {"features": width, "instances": len(model.stream), "values": len(model.stream) * width,
                   "embedded": run_embedded(model, work), "covariance": covariance_cost(width, seed)}
            print(f"wide: {width} features embedded: {_describe(row['embedded'])}", flush=True)
            if bootstrap:
                row["kafka"] = run_kafka(model, work, bootstrap, seed)
                print(f"wide: {width} features on Kafka: {_describe(row['kafka'])}", flush=True)
            rows.append(row)
    return {"rows": rows, "targets": targets(rows)}


def _describe(figures: dict) -> str:
    rate, values = figures.get("instances_per_s"), figures.get("values_per_s")
    return (f"{rate or 0:,.0f} instances/s, {values or 0:,.0f} values/s, peak RSS {figures.get('peak_rss_mb') or 0:,.0f} MB"
            + (f", start-up {figures['startup_s']:.1f} s" if figures.get("startup_s") else ""))


def targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, met or not, on this run's embedded figures."""
    by_width = {row["features"]: row["embedded"] for row in rows}
    base = (by_width.get(4) or {}).get("values_per_s")
    checks = []
    for width, factor in ((128, 8), (1000, 15)):
        values = (by_width.get(width) or {}).get("values_per_s")
        if base and values:
            checks.append({"target": f"values/s at {width} features >= {factor}x those at 4",
                           "measured": f"{values / base:.1f}x", "met": values / base >= factor})
    for width in (128, 1000):
        values = (by_width.get(width) or {}).get("values_per_s")
        if values:
            checks.append({"target": f"values/s at {width} features >= 2,000,000", "measured": f"{values:,.0f}",
                           "met": values >= 2_000_000})
    if 1000 in by_width:
        rss = by_width[1000]["peak_rss_mb"]
        checks.append({"target": "peak RSS at 1,000 features <= 2 GB", "measured": f"{rss:,.0f} MB", "met": rss <= 2048})
    return checks + kafka_targets(rows)


KAFKA_VS_EMBEDDED = {4: 0.5, 128: 0.8, 1000: 0.8}
KAFKA_VS_FLOOR = 0.5


def kafka_targets(rows: list[dict]) -> list[dict]:
    """Issue 23's targets for the Kafka path, each a ratio of two rates of the same run."""
    checks = []
    for row in rows:
        width, ratios = row["features"], kafka_ratios(row)
        if width in KAFKA_VS_EMBEDDED and ratios.get("vs_embedded") is not None:
            least = KAFKA_VS_EMBEDDED[width]
            checks.append({"target": f"Kafka instances/s at {width:,} features >= {least}x embedded",
                           "measured": f"{ratios['vs_embedded']:.2f}x", "met": ratios["vs_embedded"] >= least})
        if ratios.get("vs_floor") is not None:
            checks.append({"target": f"Kafka instances/s at {width:,} features >= {KAFKA_VS_FLOOR}x the read floor",
                           "measured": f"{ratios['vs_floor']:.2f}x", "met": ratios["vs_floor"] >= KAFKA_VS_FLOOR})
    return checks


def kafka_ratios(row: dict) -> dict:
    """The Kafka path against the embedded path and the two floors, the parse floor against the read floor, and
    the read floor against the raw consumer."""
    kafka, embedded = row.get("kafka") or {}, row["embedded"]
    rate, floor, raw = kafka.get("instances_per_s"), kafka.get("floor_ips"), kafka.get("raw_consumer_ips")
    parse_floor = kafka.get("parse_floor_ips")
    return {"vs_embedded": _share(rate, embedded["instances_per_s"]), "vs_floor": _share(rate, floor),
            "vs_parse_floor": _share(rate, parse_floor), "parse_floor_vs_floor": _share(parse_floor, floor),
            "job_parse_vs_floor": _share(kafka.get("job_parse_floor_ips"), floor),
            "floor_vs_raw_consumer": _share(floor, raw)}


def _share(part: Optional[float], whole: Optional[float]) -> Optional[float]:
    return part / whole if part and whole else None


def report_lines(results: dict) -> list[str]:
    lines = ["# Wide models: cost against the width", "", f"Command: `{results['command_line']}`", "",
             f"Seed {results['seed']}; each stream ~{wide.VALUES_PER_STREAM:,} values over {wide.SPAN_S:.0f} s of event time "
             f"(36 windows of 15 s); drift in the first {wide.DRIFTED_SHARE:.0%} of the features; "
             f"run took {results['seconds']:.0f} s.", "",
             "| features | instances | embedded instances/s | embedded values/s | peak RSS (MB) | start-up (s) "
             "| covariance per window (s) |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in results["rows"]:
        e, c = row["embedded"], row["covariance"]
        lines.append(f"| {row['features']:,} | {row['instances']:,} | {_number(e['instances_per_s'])} | "
                     f"{_number(e['values_per_s'])} | {e['peak_rss_mb']:,.0f} | {_number(e['startup_s'], '.1f')} | "
                     f"{c['seconds_per_window']:.3f} |")
    kafka_rows = [row for row in results["rows"] if row.get("kafka")]
    lines += kafka_table_lines(kafka_rows) if kafka_rows else []
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |" for t in results["targets"]]
    lines += ["", "Instances/s on both paths are counted alike: the instances of the windows after the first, over the "
              "time from the first window's stats record to the last one's. The Kafka drain rate (the `max` profile's, "
              "first alert to last window record) also counts the window step's Python worker starting while the "
              "source already reads; the floors count the records from the first read to the last."]
    lines += colocated_lines(kafka_rows) if kafka_rows else []
    lines += ["", f"Drift stage: features flagged in the windows wholly within it (the first {wide.DRIFTED_SHARE:.0%} "
              "of each model drifted):", ""]
    for row in results["rows"]:
        e = row["embedded"]
        lines.append(f"- {row['features']:,} features: {e['drifted_flagged']} of the {e['drifted']} drifted, "
                     f"{e['others_flagged']} of the {row['features'] - e['drifted']} others")
    return lines


def kafka_table_lines(kafka_rows: list[dict]) -> list[str]:
    """The Kafka path's rates beside the embedded path and the floors, one row per width run on Kafka."""
    lines = ["", "| features | Kafka instances/s | Kafka values/s | Kafka drain instances/s | read floor records/s "
             "| parse floor records/s | job's parser floor records/s | Kafka / embedded | Kafka / read floor "
             "| Kafka / parse floor | parse floor / read floor | job's parser floor / read floor "
             "| read floor / raw consumer | Kafka / raw consumer |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in kafka_rows:
        k, ratios = row["kafka"], kafka_ratios(row)
        lines.append(f"| {row['features']:,} | {_number(k.get('instances_per_s'))} | {_number(k.get('values_per_s'))} | "
                     f"{_number(k.get('drain_ips'))} | {_number(k.get('floor_ips'))} | "
                     f"{_number(k.get('parse_floor_ips'))} | {_number(k.get('job_parse_floor_ips'))} | "
                     f"{_number(ratios['vs_embedded'], '.2f')} | "
                     f"{_number(ratios['vs_floor'], '.2f')} | {_number(ratios['vs_parse_floor'], '.2f')} | "
                     f"{_number(ratios['parse_floor_vs_floor'], '.2f')} | {_number(ratios['job_parse_vs_floor'], '.2f')} | "
                     f"{_number(ratios['floor_vs_raw_consumer'], '.2f')} | {_number(k.get('vs_raw_consumer'), '.2f')} |")
    return lines


def colocated_lines(kafka_rows: list[dict]) -> list[str]:
    """What the broker and the harness (its output collector) took of the two cores while the job drained, per
    width run on Kafka."""
    lines = ["", "Sharing the machine: during each drain (first alert to last window record) the broker and the "
             "harness (its output collector, which counts the stats records as they come and decodes every output "
             "after the drain) took these cores of the two; the floors run alone, after the drain:", ""]
    for row in kafka_rows:
        k = row["kafka"]
        lines.append(f"- {row['features']:,} features: drain {k['drain_s']:.1f} s, broker "
                     f"{_number(k.get('broker_cores'), '.2f')} cores, harness {_number(k.get('harness_cores'), '.2f')} cores")
    return lines


def _number(value, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = results["rows"]
    widths = [row["features"] for row in rows]
    figure, axes = plt.subplots(2, 2, figsize=(10, 7))
    panels = (("instances_per_s", "instances/s"), ("values_per_s", "feature values/s"),
              ("peak_rss_mb", "peak RSS (MB)"), ("startup_s", "start-up (s)"))
    for axis, (key, label) in zip(axes.flat, panels):
        for mode, series, style in (("embedded", key, "o-"), ("kafka", key, "s--"), ("read floor", "floor_ips", "^:")):
            if mode == "read floor" and key != "instances_per_s":
                continue
            values = [(row.get("kafka" if mode == "read floor" else mode) or {}).get(series) for row in rows]
            if any(v is not None for v in values):
                axis.plot(widths, [np.nan if v is None else v for v in values], style, label=mode)
        axis.set_xscale("log")
        axis.set_xlabel("features")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("Cost against the model's width (2 cores)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmon bench --profile wide", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Throughput, feature values/s, peak RSS and start-up time of the job against the model's width, "
                    "on seeded synthetic Gaussian models, embedded and on Kafka; writes results.json, report.md "
                    "and wide.png.")
    parser.add_argument("--profile", choices=("wide",), default="wide")
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)), help="comma-separated feature counts")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the models and their streams")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/wide"), help="output directory")
    parser.add_argument("--work", type=Path, help="folder for the models, streams and job outputs (default: a temporary one)")
    parser.add_argument("--kafka", metavar="HOST:PORT", help="use this broker instead of starting a local one")
    parser.add_argument("--no-kafka", action="store_true", help="embedded runs only")
    parser.add_argument("--config", type=Path, default=harness.DEFAULT_CONFIG,
                        help="monitor spec whose window, outlier and drift settings every model uses")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    widths = tuple(int(w) for w in args.widths.split(","))
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mmon-wide-")))
        results = run(widths, args.seed, work, args.kafka, not args.no_kafka, args.config)
    results.update({"command_line": shlex.join(["mmon", "bench", *argv]), "seed": args.seed,
                    "seconds": time.monotonic() - started})
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "report.md").write_text("\n".join(report_lines(results)) + "\n")
    plot(results, args.out / "wide.png")
    print("\n".join(report_lines(results)))
    print(f"wide: wrote {args.out / 'results.json'}, report.md and wide.png in {results['seconds']:.0f} s")
    return 0
