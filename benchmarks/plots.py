"""The benchmark's PNG figures (matplotlib, Agg backend), after the thesis's Figures 6.3.2, 6.3.4, 6.4.1, 6.5.1.

Time axes are seconds since the first request; shaded bands mark the stages (from
``streams.iris.stage_boundaries_ms``).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from benchmarks.analysis import (  # noqa: E402
    Outputs,
    WindowTiming,
    feature_records,
    outlier_latencies_s,
    processed_rate_over_time,
    window_latencies_s,
)

STAGE_COLOURS = ("#ffffff", "#fde0c5", "#f4b6b6", "#fde0c5", "#ffffff")


def _shade_stages(ax, boundaries_s: np.ndarray) -> None:
    for stage, (start, end) in enumerate(zip(boundaries_s[:-1], boundaries_s[1:]), start=1):
        ax.axvspan(start, end, color=STAGE_COLOURS[(stage - 1) % len(STAGE_COLOURS)], alpha=0.6, lw=0)
        ax.axvline(start, color="grey", lw=0.6, ls=":")


def _mid_s(record, t0_ms: int) -> float:
    return ((record["window_start"] + record["window_end"]) / 2 - t0_ms) / 1000


def window_statistics(outputs: Outputs, boundaries_ms: np.ndarray, features: Sequence[str], path: Path) -> None:
    """Per feature: window mean, mean ± stddev, min and max over the run."""
    t0 = int(boundaries_ms[0])
    by_feature = defaultdict(list)
    for r in sorted(feature_records(outputs.stats), key=lambda r: r["window_start"]):
        by_feature[r["feature"]].append(r)
    fig, axes = plt.subplots(len(features), 1, figsize=(11, 2.4 * len(features)), sharex=True, squeeze=False)
    for ax, feature in zip(axes[:, 0], features):
        _shade_stages(ax, (boundaries_ms - t0) / 1000)
        rows = by_feature.get(feature, [])
        x = np.array([_mid_s(r, t0) for r in rows])
        mean = np.array([r["mean"] for r in rows], dtype=float)
        std = np.array([r.get("stddev") or 0.0 for r in rows], dtype=float)
        ax.fill_between(x, mean - std, mean + std, color="tab:blue", alpha=0.25, label="mean ± stddev")
        ax.plot(x, mean, color="tab:blue", lw=1.2, marker=".", ms=3, label="mean")
        ax.plot(x, [r["min"] for r in rows], color="tab:green", lw=0.8, label="min")
        ax.plot(x, [r["max"] for r in rows], color="tab:red", lw=0.8, label="max")
        ax.set_ylabel(feature)
    axes[0, 0].legend(loc="upper left", ncol=4, fontsize=8)
    axes[-1, 0].set_xlabel("seconds since the first request (window mid-point)")
    fig.suptitle("Window statistics per feature (shaded: outlier stages, red: drift stage)")
    _save(fig, path)


def drift_values(outputs: Outputs, boundaries_ms: np.ndarray, features: Sequence[str], path: Path) -> None:
    """Per feature (rows) and metric (columns): the drift value per window, its threshold dashed,
    flagged windows marked."""
    t0 = int(boundaries_ms[0])
    metrics = sorted({r["metric"] for r in outputs.drift})
    if not metrics:
        return
    series = defaultdict(list)
    for r in sorted(outputs.drift, key=lambda r: r["window_start"]):
        series[(r["feature"], r["metric"])].append(r)
    fig, axes = plt.subplots(len(features), len(metrics), figsize=(3.2 * len(metrics), 2.2 * len(features)),
                             sharex=True, squeeze=False)
    for i, feature in enumerate(features):
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            _shade_stages(ax, (boundaries_ms - t0) / 1000)
            rows = series.get((feature, metric), [])
            x = np.array([_mid_s(r, t0) for r in rows])
            ax.plot(x, [r["value"] for r in rows], lw=1.0, color="tab:purple")
            ax.plot(x, [r["threshold"] for r in rows], lw=0.8, ls="--", color="black")
            hit = np.array([bool(r["drift"]) for r in rows], dtype=bool)
            if hit.any():
                ax.plot(x[hit], np.array([r["value"] for r in rows])[hit], "o", ms=2.5, color="tab:red")
            if i == 0:
                ax.set_title(metric)
            if j == 0:
                ax.set_ylabel(feature)
    fig.suptitle("Drift per window (dashed: threshold, red dots: flagged)")
    _save(fig, path)


def latency_distributions(outputs: Outputs, timing: WindowTiming, path: Path,
                          exclude_ids: frozenset = frozenset()) -> None:
    """Histograms of outlier-alert latency and of stats and drift latency from the window mid-point,
    with the floor duration/2 + watermark delay marked."""
    panels = (("outlier alerts (from request time)", outlier_latencies_s(outputs.outliers, exclude_ids), None),
              ("window statistics (from mid-point)", window_latencies_s(outputs.stats, "mid"),
               timing.floor_from_mid_s()),
              ("drift (from mid-point)", window_latencies_s(outputs.drift, "mid"), timing.floor_from_mid_s()))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (title, values, floor) in zip(axes, panels):
        if values.size:
            ax.hist(values, bins=40, color="tab:blue")
            for q, ls in ((50, "-"), (75, "--"), (99, ":")):
                ax.axvline(np.percentile(values, q), color="black", ls=ls, lw=0.8, label=f"p{q}")
        if floor is not None:
            ax.axvline(floor, color="tab:red", lw=1.2, label=f"floor {floor:g} s")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds")
        ax.legend(fontsize=8)
    _save(fig, path)


def throughput(outputs: Outputs, boundaries_ms: np.ndarray, path: Path,
               sent_per_second: Optional[Sequence[tuple[float, int]]] = None) -> None:
    """Instances per second counted in each window by the job, and (thesis profile) requests
    answered by the logger per second of the replay."""
    t0 = int(boundaries_ms[0])
    fig, ax = plt.subplots(figsize=(11, 3.4))
    _shade_stages(ax, (boundaries_ms - t0) / 1000)
    processed = processed_rate_over_time(outputs.stats)
    if processed:
        ax.hlines([p["ips"] for p in processed], [(p["window_start"] - t0) / 1000 for p in processed],
                  [(p["window_end"] - t0) / 1000 for p in processed], label="instances/s in the job's windows")
    if sent_per_second:
        ax.plot([t for t, _ in sent_per_second], [n for _, n in sent_per_second], lw=0.6, alpha=0.8,
                label="requests/s acknowledged by the logger")
    ax.set_xlabel("seconds since the first request")
    ax.set_ylabel("per second")
    ax.legend(fontsize=8)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(out_dir: Path, outputs: Outputs, boundaries_ms: np.ndarray, features: Sequence[str],
              timing: WindowTiming, exclude_ids: frozenset = frozenset(),
              sent_per_second: Optional[Sequence[tuple[float, int]]] = None) -> list[Path]:
    """Every figure into ``out_dir``; returns the paths written."""
    paths = {name: out_dir / f"{name}.png" for name in ("window_stats", "drift", "latency", "throughput")}
    window_statistics(outputs, boundaries_ms, features, paths["window_stats"])
    drift_values(outputs, boundaries_ms, features, paths["drift"])
    latency_distributions(outputs, timing, paths["latency"], exclude_ids)
    throughput(outputs, boundaries_ms, paths["throughput"], sent_per_second)
    return [p for p in paths.values() if p.exists()]
