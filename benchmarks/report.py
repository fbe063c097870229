"""results.json and report.md: the measured figures, beside the thesis's, with each issue target met or missed.

The thesis (ch. 5-6) ran its Spark job on a 7-node t3.medium EKS cluster; its latencies are from the
request time (outliers) or the window mid-point (window statistics, drift).
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

from benchmarks.analysis import NORMAL_STAGES

ROOT = Path(__file__).resolve().parent.parent
KAFKA_JARS = ROOT / ".cache" / "jars" / "kafka"

# (label, results key, then (statistic, thesis seconds) pairs)
THESIS_LATENCIES = (
    ("outlier alert, from request time", "outlier_latency_s", ("p25", 4.11), ("p50", 4.98), ("p75", 5.9)),
    ("window statistics, from window mid-point", "stats_latency_from_mid_s",
     ("p25", 26.64), ("p50", 28.69), ("p75", 29.92), ("min", 23.48), ("max", 34.34)),
    ("drift, from window mid-point", "drift_latency_from_mid_s",
     ("p25", 27.63), ("p50", 29.28), ("p75", 30.86), ("max", 38.27)),
)
THESIS_JOB_MEMORY_MB = 4.7 * 1024  # driver ~0.8 GB + 3 executors ~1.3 GB each
THESIS_CLUSTER = "7-node EKS (t3.medium: 2 vCPU, 4 GB each), Spark 2.4, 5 Kafka brokers"

# The keys issue 4 requires at the top of results.json (null when the profile does not measure it).
REQUIRED_KEYS = (
    "outlier_latency_s", "stats_latency_from_mid_s", "drift_latency_from_mid_s", "stats_latency_from_end_s",
    "throughput_ips", "raw_consumer_ips", "outlier_recall", "outlier_precision", "false_alerts_per_10k",
    "drift_windows_flagged", "job_peak_rss_mb", "dead_letters", "late_events", "instances_sent",
    "http_success_rate",
)


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measure: Callable[[dict], Optional[float]]
    met: Callable[[float, dict], bool]


def _stat(key: str, statistic: str) -> Callable[[dict], Optional[float]]:
    return lambda r: (r.get(key) or {}).get(statistic)


def _flagged(stage: int, metric: str) -> Callable[[dict], Optional[float]]:
    return lambda r: (r.get("drift_windows_flagged") or {}).get(str(stage), {}).get(metric)


def _normal_false_alarms(metric: str) -> Callable[[dict], Optional[float]]:
    return lambda r: (r.get("normal_stage_false_alarm_windows") or {}).get(metric)


def _within_floor(value: float, r: dict) -> bool:
    return value <= r["window_latency_floor_s"]["from_mid"] + 1.0


TARGETS = (
    Target("outlier latency p75", "<= 0.3 s", _stat("outlier_latency_s", "p75"), lambda v, r: v <= 0.3),
    Target("outlier latency p99", "<= 1 s", _stat("outlier_latency_s", "p99"), lambda v, r: v <= 1.0),
    Target("stats latency p75 from mid-point", "<= floor + 1 s", _stat("stats_latency_from_mid_s", "p75"),
           _within_floor),
    Target("drift latency p75 from mid-point", "<= floor + 1 s", _stat("drift_latency_from_mid_s", "p75"),
           _within_floor),
    Target("max-profile throughput", ">= 50,000 instances/s", lambda r: r.get("throughput_ips")
           if r.get("profile") == "max" else None, lambda v, r: v >= 50_000),
    Target("share of the raw consumer's rate", ">= 0.3", lambda r: r.get("throughput_vs_raw_consumer"),
           lambda v, r: v >= 0.3),
    Target("job peak RSS", "<= 2048 MB", lambda r: r.get("job_peak_rss_mb"), lambda v, r: v <= 2048),
    Target("outlier recall", "= 100%", lambda r: r.get("outlier_recall"), lambda v, r: v == 1.0),
    Target("false alerts per 10,000 normal values", "<= 5", lambda r: r.get("false_alerts_per_10k"),
           lambda v, r: v <= 5),
    Target("drift-stage windows flagged, Wasserstein", "= 100%", _flagged(3, "wasserstein"), lambda v, r: v == 1.0),
    Target("drift-stage windows flagged, JS", "= 100%", _flagged(3, "js"), lambda v, r: v == 1.0),
    Target("false-alarm windows in normal stages, Wasserstein", "<= 1", _normal_false_alarms("wasserstein"),
           lambda v, r: v <= 1),
    Target("false-alarm windows in normal stages, JS", "<= 1", _normal_false_alarms("js"), lambda v, r: v <= 1),
    Target("dead letters", "= 0", lambda r: r.get("dead_letters"), lambda v, r: v == 0),
    Target("late events", "= 0", lambda r: r.get("late_events"), lambda v, r: v == 0),
)


def evaluate_targets(results: dict) -> list[dict]:
    """Each issue target with the measured figure and met true/false (null: not measured in this run)."""
    rows = []
    for target in TARGETS:
        value = target.measure(results)
        rows.append({"target": target.name, "goal": target.goal, "measured": value,
                     "met": None if value is None else bool(target.met(value, results))})
    return rows


def kafka_version() -> Optional[str]:
    jars = sorted(KAFKA_JARS.glob("kafka_2.13-*.jar"))
    return jars[-1].name.removeprefix("kafka_2.13-").removesuffix(".jar") if jars else None


def _package_version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """Versions and machine: what a reader needs to compare runs."""
    import psutil
    return {
        "versions": {"flink": _package_version("apache-flink"), "python": platform.python_version(),
                     "kafka_broker": kafka_version(), "kafka_python": _package_version("kafka-python"),
                     "numpy": _package_version("numpy")},
        "machine": {"cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "platform": platform.platform(), "processor": platform.machine()},
    }


def complete(results: dict) -> dict:
    """Fill every required key (null when not measured), add the target verdicts and the environment
    (``results`` carries its own ``command_line``)."""
    full = {key: results.get(key) for key in REQUIRED_KEYS}
    full.update(results)
    full.setdefault("targets", evaluate_targets(full))
    for key, value in environment().items():
        full.setdefault(key, value)
    return full


def _seconds(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f} s" if value < 1 else f"{value:.2f} s"


def _ratio(thesis: float, ours: Optional[float]) -> str:
    return "n/a" if not ours else f"{thesis / ours:.1f}x"


def latency_table(results: dict) -> list[str]:
    lines = ["| figure | thesis | ours | thesis / ours |", "|---|---|---|---|"]
    for label, key, *stats in THESIS_LATENCIES:
        for statistic, thesis in stats:
            ours = (results.get(key) or {}).get(statistic)
            lines.append(f"| {label} {statistic} | {thesis:.2f} s | {_seconds(ours)} | {_ratio(thesis, ours)} |")
    rss = results.get("job_peak_rss_mb")
    lines.append(f"| job memory (peak RSS) | ~{THESIS_JOB_MEMORY_MB:.0f} MB (driver + 3 executors) | "
                 f"{'n/a' if rss is None else f'{rss:.0f} MB'} | {_ratio(THESIS_JOB_MEMORY_MB, rss)} |")
    machine = results.get("machine", {})
    lines.append(f"| hardware | {THESIS_CLUSTER} | 1 machine, {machine.get('cores')} cores, "
                 f"{machine.get('memory_gb')} GB | |")
    return lines


def _format(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def target_table(results: dict) -> list[str]:
    verdict = {True: "met", False: "**missed**", None: "not measured"}
    lines = ["| target | goal | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {t['target']} | {t['goal']} | {_format(t['measured'])} | {verdict[t['met']]} |"
              for t in results["targets"]]
    return lines


def detail_lines(results: dict) -> list[str]:
    floor = results.get("window_latency_floor_s") or {}
    lines = [f"- window-result floor: {floor.get('from_mid')} s from the mid-point "
             f"(duration/2 + watermark delay), {floor.get('from_end')} s from the end"]
    for key in ("stats_latency_from_end_s", "drift_latency_from_end_s", "http_response_s"):
        summary = results.get(key)
        if summary:
            lines.append(f"- {key}: p50 {_seconds(summary['p50'])}, p75 {_seconds(summary['p75'])}, "
                         f"p99 {_seconds(summary['p99'])}, max {_seconds(summary['max'])}")
    for key in ("instances_sent", "http_success_rate", "throughput_ips", "raw_consumer_ips",
                "throughput_vs_raw_consumer", "job_cpu_s", "logger_peak_rss_mb", "logger_cpu_s",
                "boundary_windows", "dead_letters_by_reason"):
        if results.get(key) is not None:
            lines.append(f"- {key}: {_format(results[key])}")
    per_stage = results.get("throughput_per_stage_ips")
    if per_stage:
        lines.append("- sent per stage (requests/s): " + ", ".join(f"stage {s}: {v:.1f}" for s, v in per_stage.items()))
    flagged = results.get("drift_windows_flagged") or {}
    if flagged:
        lines += ["", "Drift windows flagged (fraction of the stage's windows; normal stages are "
                  f"{', '.join(map(str, NORMAL_STAGES))}):", ""]
        metrics = sorted({m for by_metric in flagged.values() for m in by_metric})
        lines += ["| stage | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
        lines += [f"| {stage} | " + " | ".join(f"{by_metric.get(m, 0):.2f}" for m in metrics) + " |"
                  for stage, by_metric in sorted(flagged.items())]
    return lines


METHOD = (
    "Outlier latency is `detected_at - request_time`; window latency is `emitted_at` minus the window's mid-point "
    "(the thesis's definition) or end. The sender posts each request when the wall clock reaches its request time, "
    "so latencies include any sender lag (`send_lag_s` in results.json).",
    "Outlier precision and recall count distinct (request, feature) pairs on stages 1, 2, 4, 5; the drift stage's "
    "3-sigma crossings are real but unlabelled and are counted apart (`outlier_quality.drift_stage_alerts`).",
    "A window belongs to a stage when all its requests come from that stage; windows straddling a stage boundary "
    "are left out of the drift fractions (`boundary_windows`). A window is flagged by a metric when any feature's "
    "drift record says so.",
    "Before the stream, warm-up requests (request time one hour earlier) wait for the job's first alert; after it, "
    "one end-marker request at the last window's end + the watermark delay closes the last window, and, when the "
    "stream stops within the watermark delay of a window's end, one more at that end + the delay closes that "
    "window (it carries one value, so the job dead-letters it without adding to a window). None of them counts.",
    "Max profile: throughput is instances/s from the job's first alert (instance k read) to its last window "
    "emitted, (n - k) / time, so JVM start-up is excluded (`whole_run_ips` includes it); the raw consumer is "
    "kafka-python reading the same topic without parsing.",
)


def render_markdown(results: dict) -> str:
    versions = results.get("versions", {})
    lines = [f"# mmon benchmark: profile {results.get('profile')}", "",
             f"Command: `{results.get('command_line')}`  ",
             f"Flink {versions.get('flink')}, Python {versions.get('python')}, Kafka {versions.get('kafka_broker')}", "",
             "## Beside the thesis (ch. 6)", "", *latency_table(results), "",
             "## Issue targets", "", *target_table(results), "", "## Details", "", *detail_lines(results), "",
             "## Method", "", *(f"- {line}" for line in METHOD), ""]
    return "\n".join(lines)


def write(out_dir: Path, results: dict) -> dict:
    """Write results.json and report.md into ``out_dir``; return the completed results."""
    full = complete(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(full, indent=2, sort_keys=False) + "\n")
    (out_dir / "report.md").write_text(render_markdown(full))
    return full
