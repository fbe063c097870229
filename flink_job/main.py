"""`mmon run`: the monitoring job, embedded in a local mini-cluster or on Kafka.

Also the entry point for a standalone cluster: ``flink run -py flink_job/main.py --config ...``
(or ``-pym flink_job.main``) runs the same code under ``__main__``.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if __package__ in (None, ""):  # `flink run -py flink_job/main.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contract import formats, outputs, state  # noqa: E402
from contract.spec import ConfigError, MonitorSpec, load_spec, spec_to_dict  # noqa: E402

if TYPE_CHECKING:  # the numeric core loads numpy and scipy: imported where a run needs it, not for --help
    from udfs.baseline import Baseline

PROGRESS_EVERY_S = 2.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmon run",
        description="Run the monitoring job. Embedded (default): reads a JSON-lines inference log (--input, "
                    "or the staged stream generated from --seed/--stage-size: Iris, or penguins for the penguins example), writes stats.jsonl, "
                    "outliers.jsonl, drift.jsonl, dead_letter.jsonl and covariance.jsonl into --output, and "
                    "prints a summary when the input is consumed. With --kafka: reads the spec's inference "
                    "topic and writes its output topics, unbounded, with checkpointing.")
    parser.add_argument("--config", required=True, type=Path, help="monitor spec YAML (e.g. examples/iris/monitor.yaml)")
    parser.add_argument("--input", type=Path, help="JSON-lines inference log in the spec's input.format")
    parser.add_argument("--output", type=Path, default=Path("out"), help="output directory, embedded mode (default: out/)")
    parser.add_argument("--kafka", metavar="BOOTSTRAP", help="run on Kafka at host:port (overrides kafka.bootstrap_servers)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the generated default stream (default: the generator's)")
    parser.add_argument("--stage-size", type=int, default=None,
                        help="requests per stage of the generated default stream (default: the generator's: Iris 50,000, penguins 2,000; 5 stages)")
    parser.add_argument("--rate-scale", type=float, default=1.0,
                        help="multiply the generated stream's request rates (shorter event time, same shape)")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="Prometheus reporter port (default: the spec's job.metrics_port; 0 = off)")
    parser.add_argument("--checkpoint-dir",
                        help="Kafka mode: checkpoint storage URI, retained on cancel (e.g. file:///tmp/ckpt); default: a "
                             "temporary folder of this run, deleted at exit (a local job) or the cluster's own setting "
                             "(under `flink run`)")
    parser.add_argument("--restore-from", metavar="PATH", help="Kafka mode: start from this retained checkpoint or savepoint")
    parser.add_argument("--detach", action="store_true",
                        help="Kafka mode: return once the job is submitted instead of waiting for it (for `flink run -d`)")
    return parser


def _generated_stream(work: Path, spec: MonitorSpec, args: argparse.Namespace) -> Path:
    """The default input: the staged stream of the example whose model has the spec's features
    (`streams.example_for`: Iris or penguins), in the spec's format, with its label messages when the spec has
    ``ground_truth`` (the penguins stream has them)."""
    import streams

    example = streams.example_for(spec.input.names)
    if example is None:
        raise ConfigError(f"input.features: no example stream has these features ({', '.join(spec.input.names)}): "
                          "pass the inference log with --input")
    path = work / "stream.jsonl"
    write = streams.examples()[example].write_example
    labelled = {}
    if spec.ground_truth is not None:
        if "ground_truth" not in inspect.signature(write).parameters:
            raise ConfigError(f"ground_truth: the {example} example stream has no labels: pass the inference log "
                              "with its label messages with --input")
        labelled = {"ground_truth": True}
    written = write(path, spec.input.format, seed=args.seed, stage_size=args.stage_size, rate_scale=args.rate_scale,
                    **labelled)
    print(f"mmon run: generated {written}", flush=True)
    return path


class Progress(threading.Thread):
    """Prints the output files' line counts every few seconds while the job runs (reading only what each
    file gained since the last look: a wide model's stats file grows by megabytes a window)."""

    def __init__(self, output: Path):
        super().__init__(daemon=True)
        self.output, self.stopped = output, threading.Event()
        self.started = time.monotonic()
        self.counted: dict[Path, tuple[int, int]] = {}  # file -> (bytes read, lines in them)

    def run(self) -> None:
        while not self.stopped.wait(PROGRESS_EVERY_S):
            counts = {path.stem: self._count_lines(path) for path in sorted(self.output.glob("*.jsonl"))}
            seen = ", ".join(f"{kind} {n:,}" for kind, n in counts.items() if n)
            print(f"  {time.monotonic() - self.started:6.1f} s  {seen or 'reading, no window closed yet'}", flush=True)

    def _count_lines(self, path: Path) -> int:
        offset, lines = self.counted.get(path, (0, 0))
        with open(path, "rb") as handle:
            handle.seek(offset)
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                offset, lines = offset + len(chunk), lines + chunk.count(b"\n")
        self.counted[path] = (offset, lines)
        return lines


def summarize(output: Path, spec: MonitorSpec, job_seconds: float, counted: dict) -> dict:
    """The run's figures, from the output files and the job's ``counted`` accumulators (`outputs.ACCOUNTING`).
    The rate counts the instances of every window after the first and divides by the time between the
    first and the last stats record leaving the job: the span in which the job was reading and
    processing, excluding JVM start and job deployment. ``accounted`` is the identity that nothing was
    lost: every record read was monitored or dead-lettered, every accepted instance is in a window."""
    def records(kind: str) -> list[dict]:
        return [json.loads(line) for line in (output / outputs.FILE_NAMES[kind]).read_text().splitlines()]

    first_feature = [r for r in records(outputs.STATS) if r["feature"] == spec.input.names[0]]
    drift_rows, dead = records(outputs.DRIFT), records(outputs.DEAD_LETTER)
    outlier_count = sum(1 for _ in (output / outputs.FILE_NAMES[outputs.OUTLIERS]).open())
    summary = {
        "instances": sum(r["count"] + r.get("missing", 0) for r in first_feature),
        "windows": len({r["window_start"] for r in first_feature}),  # a record per window and model version
        outputs.OUTLIERS: outlier_count,
        "drift_alerts": sum(1 for r in drift_rows if r["drift"]),
        "drift_windows": sum(1 for r in records(outputs.MODEL_DRIFT) if r["drift"]),
        "alert_episodes": sum(1 for r in records(outputs.ALERTS) if r["event"] == "open"),
        "late": sum(1 for r in dead if r["reason"] == formats.LATE),
        outputs.DEAD_LETTER: len(dead),
        "job_seconds": round(job_seconds, 3),
        "instances_per_s": None,
        **{name: int(counted.get(name, 0)) for name in outputs.ACCOUNTING},
        **{name: int(counted.get(name, 0)) for name in joined_counters(spec)},
    }
    summary["accounted"] = (summary[outputs.RECORDS_READ] == summary[outputs.REQUESTS_ACCEPTED] + len(dead)
                            and summary[outputs.INSTANCES_ACCEPTED] == summary["instances"])
    if len(first_feature) > 1:
        first_feature.sort(key=lambda r: r["emitted_at"])
        span_s = (first_feature[-1]["emitted_at"] - first_feature[0]["emitted_at"]) / 1000
        after_first = summary["instances"] - first_feature[0]["count"] - first_feature[0].get("missing", 0)
        summary["instances_per_s"] = round(after_first / span_s) if span_s > 0 else None
    return {name: summary[name] for name in outputs.SUMMARY_FIELDS if name in summary}


def joined_counters(spec: MonitorSpec) -> tuple[str, ...]:
    """The counters of the records the joins consume (they never reach the router, so they are counted apart from
    its records read): joined responses with an output, joined label messages with ground_truth."""
    return (((outputs.RESPONSES_JOINED,) if spec.output else ())
            + ((outputs.LABELS_JOINED,) if spec.ground_truth else ()))


def checked_baseline(spec: MonitorSpec) -> Baseline:
    """The spec's baseline, holding every input feature with the spec's type, and the output when the spec
    monitors one; else `ConfigError` naming the field."""
    from udfs.baseline import Baseline, BaselineError, ChecksumError

    try:
        baseline = Baseline.load(spec.baseline, spec.baseline_sha256)
    except ChecksumError as err:
        raise ConfigError(f"baseline_sha256: {err}") from None
    except BaselineError as err:
        raise ConfigError(f"baseline: {err}") from None
    for i, feature in enumerate(spec.input.features):
        if feature.name not in baseline.features:
            raise ConfigError(f"input.features: {feature.name!r} is not in the baseline {spec.baseline} "
                              f"(it has: {', '.join(baseline.features)})")
        if baseline.features[feature.name].type != feature.type:
            raise ConfigError(f"input.features[{i}].type: {feature.name!r} is {feature.type} in the spec and "
                              f"{baseline.features[feature.name].type} in the baseline {spec.baseline}")
    if spec.output is not None:
        if baseline.output is None:
            raise ConfigError(f"output: the baseline {spec.baseline} has no output (make it with `mmon baseline "
                              "--output-column COL`)")
        if baseline.output.name != spec.output.name:
            raise ConfigError(f"output.name: {spec.output.name!r}, but the baseline's output column is "
                              f"{baseline.output.name!r}")
        if baseline.output.feature.type != spec.output.type:
            raise ConfigError(f"output.type: {spec.output.type} in the spec, {baseline.output.feature.type} in the "
                              f"baseline {spec.baseline}")
    return baseline


def run_embedded(spec: MonitorSpec, baseline: Baseline, args: argparse.Namespace, metrics_port: int) -> int:
    from flink_job import pipeline, sinks, source

    output = args.output.resolve()  # the file sink may run in a TaskManager with another working directory
    output.mkdir(parents=True, exist_ok=True)
    for name in outputs.FILE_NAMES.values():
        (output / name).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmon-run-") as tmp:
        work = Path(tmp)
        raw = args.input or _generated_stream(work, spec, args)
        numbered = work / "numbered.txt"
        lines = source.number_lines(raw, numbered)
        label = str(args.input) if args.input else "generated"
        options = pipeline.RunOptions(numbered_input=numbered, input_label=label, input_lines=lines,
                                      metrics_port=metrics_port)
        rocksdb = ", state in RocksDB" if state.state_backend_options(spec) else ""
        print(f"mmon run: embedded job on {lines:,} lines from {label} -> {output}/{rocksdb}", flush=True)
        env, t_env = pipeline.create_environments(spec, options)
        records = pipeline.build(t_env, spec, baseline, options)
        sinks.write_files(sinks.egress(records), output)
        progress = Progress(output)
        progress.start()
        try:
            result = env.execute("mmon " + spec.model.name)
        finally:
            progress.stopped.set()
        counted = {name: result.get_accumulator_result(name) for name in outputs.ACCOUNTING + joined_counters(spec)}
        summary = summarize(output, spec, time.monotonic() - progress.started, counted)
    print("mmon run: done. " + ", ".join(f"{k} {v}" for k, v in summary.items()), flush=True)
    (output / outputs.SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    (output / outputs.SPEC_FILE).write_text(json.dumps(spec_to_dict(spec), indent=2) + "\n")
    return 0


def run_kafka(spec: MonitorSpec, baseline: Baseline, args: argparse.Namespace, metrics_port: int) -> int:
    from flink_job import local_cluster, pipeline, restore, sinks

    job_id = restore.new_job_id() if args.checkpoint_dir else None
    scratch = None if args.checkpoint_dir or args.detach or under_flink_run() else tempfile.TemporaryDirectory(
        prefix="mmon-checkpoints-")
    options = pipeline.RunOptions(bootstrap=args.kafka, metrics_port=metrics_port,
                                  checkpoint_dir=args.checkpoint_dir or (scratch and Path(scratch.name).as_uri()),
                                  retain_checkpoints=scratch is None, restore_from=args.restore_from, job_id=job_id)
    env, t_env = pipeline.create_environments(spec, options)
    if args.restore_from and not restorable(spec, baseline, args.restore_from):
        return 2
    records = pipeline.build(t_env, spec, baseline, options)
    t_env.create_temporary_view("mmon_egress", t_env.from_data_stream(sinks.egress(records)))
    t_env.execute_sql(sinks.kafka_sink_ddl(spec, args.kafka))
    pipeline.attach_insert(t_env, env, sinks.kafka_insert_sql(spec, "mmon_egress"))
    if job_id:
        restore.save(args.checkpoint_dir, job_id, spec, baseline)
    client = env.execute_async("mmon " + spec.model.name)
    submitted = str(client.get_job_id())
    if job_id and submitted != job_id:  # the fixed id was not taken: the record goes beside the real one
        restore.save(args.checkpoint_dir, submitted, spec, baseline)
    print(f"mmon run: Kafka job {submitted} on {args.kafka}: {spec.kafka.topics.inference} -> "
          f"{', '.join(sorted(set(outputs.topics_by_kind(spec.kafka.topics).values())))}", flush=True)
    lost = None if args.detach else local_cluster.await_job(client)
    if lost:
        print(f"mmon run: {lost}", flush=True)
        client.cancel()
    if scratch:
        scratch.cleanup()
    return 1 if lost else 0


def under_flink_run() -> bool:
    """Whether this process is the Python driver of ``flink run`` (the JVM that started it passes its gateway's
    port): the cluster's configuration, not this machine's temporary folder, then says where checkpoints go.

    A local Kafka job without ``--checkpoint-dir`` still checkpoints to files, in a scratch folder: Flink's
    default without a directory keeps checkpoints in the JobManager's memory, at most 5 MB of state per
    operator, and a wide model's open windows are larger (1,000 features: 7.9 MB in the router); every
    checkpoint failed, the job restarted, and the local cluster lost its TaskManager on the way (the output
    stalled for good)."""
    return "PYFLINK_GATEWAY_PORT" in os.environ


def restorable(spec: MonitorSpec, baseline: Baseline, restore_from: str) -> bool:
    """Whether the state at ``restore_from`` may be restored under ``spec``: the change from the spec saved beside
    it (`flink_job.restore`) is not incompatible. Prints the changes, or the refusal and the way forward."""
    from contract import upgrades
    from flink_job import restore

    record, upgrade = restore.check(spec, baseline, restore_from)
    if upgrade is None:
        print(f"mmon run: no {restore.RECORD} beside {restore_from}: the restore is checked by the job's state "
              "alone (it moves open windows to changed columns by name and refuses what it cannot)", flush=True)
        return True
    if upgrade.kind == upgrades.INCOMPATIBLE:
        print(f"mmon run: --restore-from {restore_from} refused ({record}): {upgrade.refusal()}", file=sys.stderr)
        return False
    print(f"mmon run: restoring {restore_from}: {upgrade.summary()}", flush=True)
    return True


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        spec = load_spec(args.config)
    except ConfigError as err:
        print(f"mmon run: {err}", file=sys.stderr)
        return 2
    if args.input is not None and not args.input.is_file():
        print(f"mmon run: --input {args.input}: no such file", file=sys.stderr)
        return 2
    if isinstance(spec.baseline, Path) and not spec.baseline.is_file():
        print(f"mmon run: baseline: no such file {spec.baseline}", file=sys.stderr)
        return 2
    try:
        baseline = checked_baseline(spec)
    except ConfigError as err:
        print(f"mmon run: {err}", file=sys.stderr)
        return 2
    from flink_job import jvm

    missing = [jar for jar in jvm.job_jars(kafka=bool(args.kafka)) if not jar.is_file()]
    if missing:
        print(f"mmon run: missing {', '.join(map(str, missing))}: run `make setup` (builds and fetches the jars)",
              file=sys.stderr)
        return 2
    metrics_port = spec.job.metrics_port if args.metrics_port is None else args.metrics_port
    try:
        if args.kafka:
            return run_kafka(spec, baseline, args, metrics_port)
        return run_embedded(spec, baseline, args, metrics_port)
    except ConfigError as err:
        print(f"mmon run: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
