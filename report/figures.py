"""The report's plots: matplotlib figures (object API, no pyplot state) encoded as inline PNG data URIs.

Time axes are UTC. A long run is down-sampled to at most `MAX_POINTS` buckets of consecutive windows,
each keeping what must not disappear (a drift value's maximum and whether any window was flagged, the
widest p25-p75 band), so the page stays a few MB whatever the run's length. The flagged windows'
histograms are drawn for at most `MAX_HISTOGRAMS` windows per feature, evenly spread over the flagged ones.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import ClassVar, Mapping, Optional, Sequence

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from report.findings import Episode, Findings
from udfs.baseline import FeatureBaseline

MAX_POINTS = 400
MAX_HISTOGRAMS = 24
HISTOGRAM_COLUMNS = 6
DPI = 96
VALUE, THRESHOLD, FLAGGED, BASELINE = "#5b3f9e", "#222222", "#d62728", "#9e9e9e"


@dataclass(frozen=True)
class Plot:
    """One encoded figure: ``src`` is a data URI for an ``<img>``."""

    src: str
    alt: str


def _encoded(fig: Figure, alt: str) -> Plot:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return Plot("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), alt)


def _figure(width: float, height: float, left: float = 0.6, right: float = 0.15, top: float = 0.15,
            bottom: float = 0.4) -> Figure:
    """A figure of ``width`` x ``height`` inches with fixed margins in inches (a layout engine would draw
    every figure twice, most of the report's time)."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height)
    return fig


def _times(ms) -> np.ndarray:
    return np.asarray(ms, dtype="int64").astype("datetime64[ms]")


def _time_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))


def buckets(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Bucket number of each of ``n`` consecutive windows: at most ``max_points`` buckets of equal length
    (give or take one), each window its own bucket when ``n <= max_points``."""
    return np.arange(n) * min(n, max_points) // max(n, 1)


def _shade(ax: Axes, episodes: Sequence[Episode]) -> None:
    for episode in episodes:
        ax.axvspan(_times(episode.start_ms), _times(episode.end_ms), color=FLAGGED, alpha=0.12, lw=0)


def overview(findings: Findings, window_starts: np.ndarray) -> Plot:
    """Features (rows) by windows (columns), coloured by how many metrics flagged the window."""
    first = int(window_starts.min())
    n_windows = int((window_starts.max() - first) // findings.window_ms) + 1
    grid = np.zeros((len(findings.features), n_windows))
    for row, feature in enumerate(findings.features):
        for start, metrics in findings.flagged.get(feature, {}).items():
            grid[row, (start - first) // findings.window_ms] = len(metrics)
    grid = pd.DataFrame(grid.T).groupby(buckets(n_windows)).max().to_numpy().T
    fig = _figure(11, 0.45 * len(findings.features) + 0.9, left=1.3, right=1.2)
    ax = fig.add_subplot()
    left, right = mdates.date2num(_times([first, first + n_windows * findings.window_ms]))
    image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="Reds", vmin=0,
                      vmax=max(len(findings.metrics), 1), extent=(left, right, len(findings.features), 0))
    ax.xaxis_date()
    _time_axis(ax)
    ax.set_yticks(np.arange(len(findings.features)) + 0.5, findings.features)
    fig.colorbar(image, ax=ax, label="metrics flagging", pad=0.01, aspect=8)
    return _encoded(fig, "drift at a glance: flagged windows per feature over time")


def drift_timeline(rows: pd.DataFrame, feature: str, metric: str, complete: bool) -> Plot:
    """One feature's values of one metric per window against the threshold, flagged windows in red.
    Down-sampled to each bucket's largest value, flagged when any of its windows was."""
    rows = rows.sort_values("window_start").reset_index(drop=True)
    rows["flagged"] = rows["drift"].fillna(False).astype(bool)
    groups = rows.groupby(buckets(len(rows)))
    sampled = rows.loc[groups["value"].idxmax()].assign(flagged=groups["flagged"].any().to_numpy())
    x = _times((sampled["window_start"] + sampled["window_end"]) // 2)
    fig = _figure(3.6, 1.9, left=0.45, top=0.25)
    ax = fig.add_subplot()
    ax.plot(x, sampled["value"], color=VALUE, lw=1.0, marker="" if complete else ".", ls="-" if complete else "")
    ax.plot(x, sampled["threshold"], color=THRESHOLD, lw=0.8, ls="--")
    hit = sampled["flagged"].to_numpy()
    ax.plot(x[hit], sampled["value"].to_numpy()[hit], "o", ms=3, color=FLAGGED)
    ax.set_title(f"{feature} · {metric}", fontsize=9)
    ax.tick_params(labelsize=7)
    _time_axis(ax)
    return _encoded(fig, f"{metric} of {feature} per window against its threshold")


def chosen_windows(starts: Sequence[int], limit: int = MAX_HISTOGRAMS) -> list[int]:
    """At most ``limit`` of the sorted ``starts``, evenly spread (the first and last included)."""
    starts = sorted(starts)
    if len(starts) <= limit:
        return starts
    return [starts[i] for i in np.linspace(0, len(starts) - 1, limit).round().astype(int)]


@dataclass(frozen=True)
class _Panel:
    """One cell of a small-multiples grid drawn in a single borderless axes (an axes per panel made the
    flagged windows the slowest part of the report). Cell ``(column, row)`` spans ``[column, column + 1]``
    by ``[-row - 1, -row]``; values ``[lo, hi]`` map onto the panel's box, densities scale to its height."""

    left: float
    bottom: float
    lo: float
    hi: float
    per_density: float
    WIDTH: ClassVar[float] = 0.9
    HEIGHT: ClassVar[float] = 0.62

    @classmethod
    def at(cls, index: int, columns: int, edges: np.ndarray, peak_density: float) -> "_Panel":
        tail = _tail_width(edges)
        return cls(left=index % columns + (1 - cls.WIDTH) / 2, bottom=-(index // columns) - 0.8,
                   lo=edges[0] - tail, hi=edges[-1] + tail, per_density=cls.HEIGHT / max(peak_density, 1e-12))

    def x(self, values) -> np.ndarray:
        return self.left + self.WIDTH * (np.asarray(values, dtype=float) - self.lo) / (self.hi - self.lo)

    def y(self, densities) -> np.ndarray:
        return self.bottom + np.asarray(densities, dtype=float) * self.per_density


def _tail_width(edges: np.ndarray) -> float:
    """The width the values below and above the bins are drawn with: one average bin."""
    return (edges[-1] - edges[0]) / (len(edges) - 1)


def _density(counts: np.ndarray, edges: np.ndarray, total: float) -> np.ndarray:
    return counts / max(total, 1) / np.diff(edges)


@dataclass(frozen=True)
class _WindowHistogram:
    """A window's histogram as densities: its inner bins and its values below and above them."""

    edges: np.ndarray
    inner: np.ndarray
    tails: np.ndarray

    @classmethod
    def of(cls, record: Optional[pd.Series]) -> Optional["_WindowHistogram"]:
        histogram = (record["histogram"] if record is not None else None) or {}
        if "edges" not in histogram:
            return None
        edges, total = np.asarray(histogram["edges"], dtype=float), record["count"]
        tails = np.array([histogram.get("underflow", 0), histogram.get("overflow", 0)], dtype=float)
        return cls(edges, _density(np.asarray(histogram["counts"], dtype=float), edges, total),
                   tails / max(total, 1) / _tail_width(edges))


def flagged_histograms(feature: str, stats: pd.DataFrame, reference: Optional[FeatureBaseline],
                       flagged: Mapping[int, tuple[str, ...]], starts: Sequence[int]) -> Plot:
    """Small multiples, one per window of ``starts``: the window's histogram (red; hatched: its values
    below and above the bins, one average bin wide) over the baseline's (grey), as densities on the
    baseline's bins, titled with the window's start and how many metrics flagged it."""
    by_start = stats.set_index("window_start")
    columns = min(HISTOGRAM_COLUMNS, len(starts))
    rows = -(-len(starts) // columns)
    fig = Figure(figsize=(1.85 * columns, 1.3 * rows))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, columns)
    ax.set_ylim(-rows, 0)
    baseline = _density(reference.counts, reference.edges, reference.counts.sum()) if reference is not None else None
    for index, start in enumerate(starts):
        window = _WindowHistogram.of(by_start.loc[start] if start in by_start.index else None)
        edges = window.edges if window is not None else reference.edges if reference is not None else None
        if edges is None:
            continue
        drawn = [baseline] + ([window.inner, window.tails] if window is not None else [])
        panel = _Panel.at(index, columns, edges, max(d.max() for d in drawn if d is not None))
        if baseline is not None:
            ax.stairs(panel.y(baseline), panel.x(reference.edges), baseline=panel.bottom, fill=True,
                      color=BASELINE, alpha=0.5, lw=0)
        if window is not None:
            _draw_window(ax, panel, window)
        _frame(ax, panel, f"{pd.Timestamp(start, unit='ms'):%H:%M:%S} · {len(flagged.get(start, ()))} metrics", edges)
    return _encoded(fig, f"histograms of {feature}'s flagged windows beside the baseline")


def _draw_window(ax: Axes, panel: _Panel, window: _WindowHistogram) -> None:
    ax.stairs(panel.y(window.inner), panel.x(window.edges), baseline=panel.bottom, color=FLAGGED, lw=1.1)
    tail = _tail_width(window.edges)
    left = panel.x([window.edges[0] - tail, window.edges[-1]])
    ax.bar(left, panel.y(window.tails) - panel.bottom, bottom=panel.bottom, width=panel.x(tail) - panel.x(0),
           align="edge", fill=False, hatch="////", edgecolor=FLAGGED, lw=0.6)


def _frame(ax: Axes, panel: _Panel, title: str, edges: np.ndarray) -> None:
    """The panel's box, its title, and the values of the first and last bin edges under it."""
    ax.add_patch(Rectangle((panel.left, panel.bottom), _Panel.WIDTH, _Panel.HEIGHT * 1.08, fill=False, lw=0.6))
    ax.text(panel.left + _Panel.WIDTH / 2, panel.bottom + _Panel.HEIGHT * 1.12, title, ha="center", va="bottom",
            fontsize=7)
    for value in (edges[0], edges[-1]):
        ax.text(panel.x(value), panel.bottom - 0.03, f"{value:.3g}", ha="center", va="top", fontsize=6)


def window_statistics(stats: pd.DataFrame, findings: Findings, baseline: Mapping[str, FeatureBaseline]) -> Plot:
    """Per feature: the window mean with its p25-p75 band over the baseline's (grey); then the window
    counts. Flagged episodes shaded. Buckets keep the mean of the means and the widest band."""
    features = findings.features
    fig = _figure(11, 1.5 * len(features) + 1.6, left=0.9, top=0.1)
    axes = fig.subplots(len(features) + 1, 1, sharex=True, squeeze=False, gridspec_kw={"hspace": 0.12})[:, 0]
    for ax, feature in zip(axes, features):
        rows = stats[stats["feature"] == feature].sort_values("window_start")
        sampled = rows.groupby(buckets(len(rows))).agg(
            start=("window_start", "first"), end=("window_end", "last"),
            mean=("mean", "mean"), p25=("p25", "min"), p75=("p75", "max"))
        x = _times((sampled["start"] + sampled["end"]) // 2)
        if feature in baseline:
            ax.axhspan(baseline[feature].p25, baseline[feature].p75, color=BASELINE, alpha=0.25, lw=0)
            ax.axhline(baseline[feature].mean, color=BASELINE, lw=0.8, ls="--")
        ax.fill_between(x, sampled["p25"], sampled["p75"], color=VALUE, alpha=0.25, lw=0)
        ax.plot(x, sampled["mean"], color=VALUE, lw=1.0)
        _shade(ax, [e for e in findings.episodes if e.feature == feature])
        ax.set_ylabel(feature, fontsize=8)
        ax.tick_params(labelsize=7)
    _counts(axes[-1], stats)
    _time_axis(axes[-1])
    return _encoded(fig, "window mean and p25-p75 per feature over time, and window counts")


def _counts(ax: Axes, stats: pd.DataFrame) -> None:
    per_window = stats.groupby("window_start").agg(end=("window_end", "first"), count=("count", "max")).reset_index()
    sampled = per_window.groupby(buckets(len(per_window))).agg(
        start=("window_start", "first"), end=("end", "last"), count=("count", "mean"))
    edges = _times(np.append(sampled["start"].to_numpy(), sampled["end"].to_numpy()[-1]))
    ax.stairs(sampled["count"].to_numpy(), edges, color=THRESHOLD, lw=0.9)
    ax.set_ylabel("instances\nper window", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.tick_params(labelsize=7)


def outliers_per_window(outliers: pd.DataFrame, findings: Findings, window_starts: np.ndarray) -> Plot:
    """Outlier alerts per window, one line per feature; a bucket of windows shows its mean per window."""
    window = findings.window_ms
    first = int(window_starts.min())
    last = max(int(window_starts.max()), int(np.max(outliers["request_time"].to_numpy(), initial=first)))
    n_windows = (last - first) // window + 1
    fig = _figure(11, 2.6, left=0.9, top=0.1)
    ax = fig.add_subplot()
    bucket = buckets(n_windows)
    edges = _times(first + np.append(np.flatnonzero(np.diff(bucket, prepend=-1)), n_windows) * window)
    columns = ((outliers["request_time"] - first) // window).astype(int)
    for colour, feature in enumerate(findings.features):
        of_feature = columns[(outliers["feature"] == feature) & (columns >= 0)]  # alerts before the first window: out
        per_window = np.bincount(of_feature, minlength=n_windows)
        ax.stairs(pd.Series(per_window).groupby(bucket).mean().to_numpy(), edges,
                  color=f"C{colour % 10}", lw=1.0, label=feature)
    ax.set_ylabel("outliers per window", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, ncol=min(len(findings.features), 6), loc="upper left")
    _time_axis(ax)
    return _encoded(fig, "outlier alerts per window by feature")
