"""The report's plots: matplotlib figures (object API, no pyplot state) encoded as inline PNG data URIs.

Time axes are UTC. A long run is down-sampled to at most `MAX_POINTS` buckets of consecutive windows,
each keeping what must not disappear (a drift value's maximum and whether any window was flagged, the
widest p25-p75 band), so the page stays a few MB whatever the run's length. The flagged windows'
histograms (a categorical column's: its category shares) are drawn for at most `MAX_HISTOGRAMS` windows
per feature, evenly spread over the flagged ones. Realised performance (with ground truth) is drawn per
metric: each window's final or latest value, the baseline, the alerted windows, the label coverage and the
earlier revisions.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import ClassVar, Mapping, Optional, Sequence

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PatchCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from report.findings import (FEATURE_SCOPE, AlertEpisode, Episode, Findings, PerformanceSeries, VersionsCompared,
                             latest_comparisons, latest_performance, record_instances, series_rows)
from udfs.baseline import CategoricalBaseline, ColumnBaseline, FeatureBaseline

MAX_POINTS = 400
LABELLED_ROWS = 100
OVERVIEW_HEIGHT = 10.8  # inches of rows in the overview at most
OVERVIEW_ROWS = 1_000  # image rows at most (~ its pixels at DPI)
MAX_HISTOGRAMS = 24
HISTOGRAM_COLUMNS = 6
MAX_LINES = 10  # outliers per window: one line each up to this many features, a heatmap for more
TOP_CATEGORIES = 5  # a categorical column's statistics over time: the shares of this many of its categories
LABELLED_SLOTS = 6  # category bars: each panel names its bars up to this many (the caption always does)
OTHER, UNSEEN = "other", "unseen"
DPI = 96
VALUE, THRESHOLD, FLAGGED, BASELINE = "#5b3f9e", "#222222", "#d62728", "#9e9e9e"
MAX_CLASS_LINES = 10  # a per-class metric's axes: one line per class up to this many (the table lists them all)
MAX_EPISODE_ROWS = 30  # the alert timeline: the model's row, then the features with the most episode windows


@dataclass(frozen=True)
class Plot:
    """One encoded figure: ``src`` is a data URI for an ``<img>``; ``features``: those it draws one by one
    (a figure of several)."""

    src: str
    alt: str
    features: tuple[str, ...] = ()


def _encoded(fig: Figure, alt: str, features: Sequence[str] = ()) -> Plot:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return Plot("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), alt, tuple(features))


def _figure(width: float, height: float, left: float = 0.6, right: float = 0.15, top: float = 0.15,
            bottom: float = 0.4) -> Figure:
    """A figure of ``width`` x ``height`` inches with fixed margins in inches (a layout engine would draw
    every figure twice, most of the report's time)."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height)
    return fig


def per_feature(frame: pd.DataFrame, features: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Each of ``features`` -> its rows of ``frame`` (none: an empty frame), in one pass over the frame."""
    groups = dict(tuple(frame[frame["feature"].isin(features)].groupby("feature")))
    return {feature: groups.get(feature, frame.iloc[:0]) for feature in features}


def _times(ms) -> np.ndarray:
    return np.asarray(ms, dtype="int64").astype("datetime64[ms]")


def _time_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
    for unit, whole in ((mdates.SECONDLY, 60), (mdates.MINUTELY, 60), (mdates.HOURLY, 24)):
        # a last step of a whole minute, hour, day: for spans just short of 3 of those (e.g. 150-180 s),
        # whose ticks the default steps cannot space (matplotlib warns and falls back to 30)
        locator.intervald[unit] = [*locator.intervald[unit], whole]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))


def buckets(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Bucket number of each of ``n`` consecutive windows: at most ``max_points`` buckets of equal length
    (give or take one), each window its own bucket when ``n <= max_points``."""
    return np.arange(n) * min(n, max_points) // max(n, 1)


def _shade(ax: Axes, episodes: Sequence[Episode]) -> None:
    for episode in episodes:
        ax.axvspan(_times(episode.start_ms), _times(episode.end_ms), color=FLAGGED, alpha=0.12, lw=0)


def _heatmap(grid: np.ndarray, span: np.ndarray, height: float, cmap: str, vmax: Optional[float],
             label: str, n_rows: Optional[int] = None) -> tuple[Figure, Axes]:
    """``grid`` (rows by equal time steps over ``span``, two datetime64) as an image ``height`` inches
    tall, spanning ``[0, n_rows]`` (default: its rows) on the y axis, so row ``i`` of ``n_rows`` rows spans
    ``[i, i + 1]``, with a colour bar as tall."""
    fig = _figure(11, height + 0.9, left=1.3, right=1.2)
    ax = fig.add_subplot()
    left, right = mdates.date2num(span)
    image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=vmax,
                      extent=(left, right, n_rows or len(grid), 0))
    ax.xaxis_date()
    _time_axis(ax)
    fig.colorbar(image, ax=ax, label=label, pad=0.01, aspect=max(8.0, height / 0.25))
    return fig, ax


def overview(findings: Findings, window_starts: np.ndarray) -> Plot:
    """Every feature (rows, in the order of `Findings.ranking`: the flagged ones first) by windows
    (columns), coloured by how many metrics flagged the window. Up to `LABELLED_ROWS` features each row
    is named; a wider model's rows are thinner, marked by rank, the flagged ones ruled off from the rest."""
    features = [r.feature for r in findings.ranking]
    n_rows = len(features)
    first = int(window_starts.min())
    n_windows = int((window_starts.max() - first) // findings.window_ms) + 1
    # a cell per bucket of windows and, past OVERVIEW_ROWS features (more rows than pixels), per bucket of
    # neighbouring ranks: the most metrics flagging any of them
    row_of = dict(zip(features, buckets(n_rows, OVERVIEW_ROWS)))
    column_of = buckets(n_windows)
    grid = np.zeros((min(n_rows, OVERVIEW_ROWS), min(n_windows, MAX_POINTS)))
    cells = [(row_of[feature], start, len(metrics))
             for feature, by_start in findings.flagged.items() for start, metrics in by_start.items()]
    if cells:
        rows, starts, values = np.array(cells, dtype="int64").T
        np.maximum.at(grid, (rows, column_of[(starts - first) // findings.window_ms]), values)
    fig, ax = _heatmap(grid, _times([first, first + n_windows * findings.window_ms]),
                       min(0.45 * n_rows, OVERVIEW_HEIGHT), "Reds", max(len(findings.metrics), 1), "metrics flagging",
                       n_rows=n_rows)
    if n_rows <= LABELLED_ROWS:
        ax.set_yticks(np.arange(n_rows) + 0.5, features)
        if n_rows > 24:
            ax.tick_params(axis="y", labelsize=7)
    else:
        step = 100 if n_rows <= 1_000 else 1_000
        ranks = [1, *range(step, n_rows + 1, step)]
        ax.set_yticks(np.array(ranks) - 0.5, [f"#{r:,}" for r in ranks], fontsize=8)
        ax.set_ylabel("features by rank", fontsize=8)
        drifted = sum(1 for r in findings.ranking if r.flagged_windows)
        if 0 < drifted < n_rows:
            ax.axhline(drifted, color=THRESHOLD, lw=0.6, ls="--")
    return _encoded(fig, "drift at a glance: flagged windows per feature over time")


class Timelines:
    """Each drift timeline: one feature's values of one metric per window against the threshold, flagged
    windows in red, at the middle of each window, over the run's windows ``[first_ms, last_ms)`` (with
    autoscaling's margins, so every timeline, complete or not, has the same time axis). Down-sampled to
    each bucket's largest value, flagged when any of its windows was. One figure serves every timeline of
    the page: its lines take each timeline's data in turn (a figure each built its axes anew, most of the
    time)."""

    def __init__(self, complete: bool, first_ms: int, last_ms: int, window_ms: int):
        self.fig = _figure(3.6, 1.9, left=0.45, top=0.25)
        self.ax = ax = self.fig.add_subplot()
        ax.xaxis_date()
        style = {"marker": "", "ls": "-"} if complete else {"marker": ".", "ls": ""}
        self.value, = ax.plot([], [], color=VALUE, lw=1.0, **style)
        self.threshold, = ax.plot([], [], color=THRESHOLD, lw=0.8, ls="--")
        self.hits, = ax.plot([], [], "o", ms=3, color=FLAGGED)
        ax.tick_params(labelsize=7)
        _window_axis(ax, first_ms, last_ms, window_ms)

    def draw(self, rows: pd.DataFrame, feature: str, metric: str) -> Plot:
        rows = rows.sort_values("window_start").reset_index(drop=True)
        rows["flagged"] = rows["drift"].fillna(False).astype(bool)
        groups = rows.groupby(buckets(len(rows)))
        sampled = rows.loc[groups["value"].idxmax()].assign(flagged=groups["flagged"].any().to_numpy())
        x = _times((sampled["window_start"] + sampled["window_end"]) // 2)
        value = sampled["value"].to_numpy(dtype=float)
        hit = sampled["flagged"].to_numpy()
        self.value.set_data(x, value)
        self.threshold.set_data(x, sampled["threshold"].to_numpy(dtype=float))
        self.hits.set_data(x[hit], value[hit])
        self.ax.relim()
        self.ax.autoscale_view(scalex=False)
        self.ax.set_title(f"{feature} · {metric}", fontsize=9, y=1.0)  # y: no search for a free spot
        return _encoded(self.fig, f"{metric} of {feature} per window against its threshold")


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
    fig, ax, columns = _small_multiples(len(starts))
    baseline = _density(reference.counts, reference.edges, reference.counts.sum()) if reference is not None else None
    shapes = _Shapes()
    for index, start in enumerate(starts):
        window = _WindowHistogram.of(by_start.loc[start] if start in by_start.index else None)
        edges = window.edges if window is not None else reference.edges if reference is not None else None
        if edges is None:
            continue
        drawn = [baseline] + ([window.inner, window.tails] if window is not None else [])
        panel = _Panel.at(index, columns, edges, max(d.max() for d in drawn if d is not None))
        if baseline is not None:
            shapes.baselines.append(_steps(panel.x(reference.edges), panel.y(baseline), panel.bottom))
        if window is not None:
            shapes.add_window(panel, window)
        shapes.frames.append(Rectangle((panel.left, panel.bottom), _Panel.WIDTH, _Panel.HEIGHT * 1.08))
        _titles(ax, panel, f"{pd.Timestamp(start, unit='ms'):%H:%M:%S} · {len(flagged.get(start, ()))} metrics", edges)
    shapes.draw(ax)
    return _encoded(fig, f"histograms of {feature}'s flagged windows beside the baseline")


def _small_multiples(panels: int) -> tuple[Figure, object, int]:
    """A figure for ``panels`` small multiples, :data:`HISTOGRAM_COLUMNS` a row: one borderless axes whose
    unit is a panel cell (x from 0 to the columns, y from minus the rows to 0), and the number of columns."""
    columns = min(HISTOGRAM_COLUMNS, panels)
    rows = -(-panels // columns)
    fig = Figure(figsize=(1.85 * columns, 1.3 * rows))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, columns)
    ax.set_ylim(-rows, 0)
    return fig, ax, columns


def _steps(x_edges: np.ndarray, heights: np.ndarray, base: float) -> np.ndarray:
    """The outline of a histogram of ``heights`` on ``x_edges`` standing on ``base``: up the first edge,
    along each bin, down the last edge (as a step patch with a baseline draws it)."""
    x = np.repeat(x_edges, 2)
    y = np.concatenate([[base], np.repeat(heights, 2), [base]])
    return np.column_stack([x, y])


@dataclass
class _Shapes:
    """The shapes of every panel of a small-multiples grid, drawn as one collection per kind (an artist per
    shape made the flagged windows the slowest part of the report)."""

    baselines: list = field(default_factory=list)
    windows: list = field(default_factory=list)
    tails: list = field(default_factory=list)
    frames: list = field(default_factory=list)

    def add_window(self, panel: _Panel, window: _WindowHistogram) -> None:
        self.windows.append(_steps(panel.x(window.edges), panel.y(window.inner), panel.bottom))
        tail = _tail_width(window.edges)
        width = panel.x(tail) - panel.x(0)
        for left, top in zip(panel.x([window.edges[0] - tail, window.edges[-1]]), panel.y(window.tails)):
            self.tails.append(Rectangle((left, panel.bottom), width, top - panel.bottom))

    def draw(self, ax: Axes) -> None:
        ax.add_collection(PolyCollection(self.baselines, facecolors=BASELINE, alpha=0.5, linewidths=0),
                          autolim=False)
        ax.add_collection(LineCollection(self.windows, colors=FLAGGED, linewidths=1.1), autolim=False)
        ax.add_collection(PatchCollection(self.tails, facecolors="none", edgecolors=FLAGGED, hatch="////",
                                          linewidths=0.6), autolim=False)
        ax.add_collection(PatchCollection(self.frames, facecolors="none", edgecolors="black", linewidths=0.6),
                          autolim=False)


def _titles(ax: Axes, panel: _Panel, title: str, edges: np.ndarray) -> None:
    """The panel's title above its box, and the values of the first and last bin edges under it."""
    ax.text(panel.left + _Panel.WIDTH / 2, panel.bottom + _Panel.HEIGHT * 1.12, title, ha="center", va="bottom",
            fontsize=7)
    for value in (edges[0], edges[-1]):
        ax.text(panel.x(value), panel.bottom - 0.03, f"{value:.3g}", ha="center", va="top", fontsize=6)


def is_categorical(rows: pd.DataFrame, reference: Optional[ColumnBaseline]) -> bool:
    """Whether a column is categorical: its baseline says so, or (none) its window records do."""
    if reference is not None:
        return isinstance(reference, CategoricalBaseline)
    return "type" in rows and bool((rows["type"] == "categorical").any())


@dataclass(frozen=True)
class CategoryShares:
    """One window of a categorical column beside the baseline: the share of its present values in each
    slot of ``labels`` (the baseline's categories, then `OTHER`, then `UNSEEN`), the baseline's share in the
    same slots (the drift metrics' layout, `CategoricalBaseline.histogram_counts`: the baseline's "unseen"
    slot holds its rare values it did not name, the slot a window's unseen values are compared with), and
    the window's missing share (of all its instances)."""

    labels: tuple[str, ...]
    window: Optional[np.ndarray]
    baseline: Optional[np.ndarray]
    missing: Optional[float]

    @classmethod
    def of(cls, record: Optional[pd.Series], reference: Optional[CategoricalBaseline]) -> Optional["CategoryShares"]:
        histogram = (record["histogram"] if record is not None else None) or {}
        if "categories" in histogram:
            categories = tuple(histogram["categories"])
        elif reference is not None:
            categories = reference.categories
        else:
            return None
        window = missing = None
        if "categories" in histogram:
            counts = np.array([*histogram["counts"], histogram.get("other", 0), histogram.get("unseen", 0)], dtype=float)
            window = counts / max(counts.sum(), 1)
            absent = _number(record.get("missing"))
            missing = absent / max(counts.sum() + absent, 1)
        baseline = None
        if reference is not None:
            named = dict(zip(reference.categories, reference.counts.tolist()))
            slots = [named.get(c, 0) for c in categories] + [reference.other - reference.other_unnamed,
                                                              reference.other_unnamed]
            baseline = np.array(slots, dtype=float) / max(reference.count, 1)
        return cls(categories + (OTHER, UNSEEN), window, baseline, missing)


def _number(value) -> float:
    """A record's count that may be absent (None or NaN): 0."""
    return 0.0 if value is None or pd.isna(value) else float(value)


@dataclass(frozen=True)
class CategoryPanel:
    """One window's bars in a grid cell (as `_Panel` places it): per slot, the baseline's bar (grey, left
    half) and the window's (red, right half), heights scaled to the panel's largest share."""

    start: int
    shares: CategoryShares
    left: float
    bottom: float
    per_share: float

    def slot(self, i: int) -> float:
        return self.left + _Panel.WIDTH * i / len(self.shares.labels)

    def bars(self, values: Optional[np.ndarray], offset: float) -> list[np.ndarray]:
        """Rectangles (4 corners each) of ``values``, in each slot's half ``offset`` (0 left, 1 right)."""
        if values is None:
            return []
        width = _Panel.WIDTH / len(values)
        x0 = self.slot(0) + width * (0.1 + 0.4 * offset) + width * np.arange(len(values))
        x1, y0, y1 = x0 + 0.4 * width, self.bottom, self.bottom + values * self.per_share
        return [np.array([[a, y0], [a, c], [b, c], [b, y0]]) for a, b, c in zip(x0, x1, y1)]


def category_panels(stats: pd.DataFrame, reference: Optional[CategoricalBaseline],
                    starts: Sequence[int]) -> list[Optional[CategoryPanel]]:
    """The panels of ``starts`` (in `flagged_histograms`' grid; None: a window with neither its record nor
    a baseline)."""
    by_start = stats.set_index("window_start")
    columns = min(HISTOGRAM_COLUMNS, len(starts))
    panels: list[Optional[CategoryPanel]] = []
    for index, start in enumerate(starts):
        shares = CategoryShares.of(by_start.loc[start] if start in by_start.index else None, reference)
        if shares is None:
            panels.append(None)
            continue
        peak = max(float(v.max()) for v in (shares.window, shares.baseline) if v is not None)
        panels.append(CategoryPanel(start, shares, left=index % columns + (1 - _Panel.WIDTH) / 2,
                                    bottom=-(index // columns) - 0.8, per_share=_Panel.HEIGHT / max(peak, 1e-12)))
    return panels


def flagged_categories(feature: str, stats: pd.DataFrame, reference: Optional[CategoricalBaseline],
                       flagged: Mapping[int, tuple[str, ...]], starts: Sequence[int]) -> Plot:
    """`flagged_histograms` of a categorical column: per window of ``starts``, each slot's share of the
    window's present values (red) beside the baseline's (grey), slots as `CategoryShares` orders them;
    titled with the window's start, how many metrics flagged it and its missing share when it has
    missing values."""
    return _encoded(category_figure(stats, reference, flagged, starts),
                    f"category shares of {feature}'s flagged windows beside the baseline's")


def category_figure(stats: pd.DataFrame, reference: Optional[CategoricalBaseline],
                    flagged: Mapping[int, tuple[str, ...]], starts: Sequence[int]) -> Figure:
    """`flagged_categories`' figure: one borderless axes whose collections are the baseline's bars, the
    windows' bars and the panels' frames, in that order (a collection per kind, not an artist per bar)."""
    panels = category_panels(stats, reference, starts)
    fig, ax, _ = _small_multiples(len(starts))
    baselines, windows, frames = [], [], []
    for panel in panels:
        if panel is None:
            continue
        shares = panel.shares
        baselines += panel.bars(shares.baseline, 0)
        windows += panel.bars(shares.window, 1)
        frames.append(Rectangle((panel.left, panel.bottom), _Panel.WIDTH, _Panel.HEIGHT * 1.08))
        title = f"{pd.Timestamp(panel.start, unit='ms'):%H:%M:%S} · {len(flagged.get(panel.start, ()))} metrics"
        if shares.missing:
            title += f" · {shares.missing:.0%} missing"
        ax.text(panel.left + _Panel.WIDTH / 2, panel.bottom + _Panel.HEIGHT * 1.12, title, ha="center",
                va="bottom", fontsize=7 if not shares.missing else 6)
        slots = len(shares.labels)
        if slots <= LABELLED_SLOTS:
            for i, label in enumerate(shares.labels):
                ax.text(panel.slot(i + 0.5), panel.bottom - 0.03, label[:8], ha="center", va="top", fontsize=5.5)
    ax.add_collection(PolyCollection(baselines, facecolors=BASELINE, alpha=0.7, linewidths=0), autolim=False)
    ax.add_collection(PolyCollection(windows, facecolors=FLAGGED, linewidths=0), autolim=False)
    ax.add_collection(PatchCollection(frames, facecolors="none", edgecolors="black", linewidths=0.6), autolim=False)
    return fig


def missing_columns(stats: pd.DataFrame, baseline: Mapping[str, ColumnBaseline], features: Sequence[str]) -> list[str]:
    """Those of ``features`` with missing values: in a window record or in the baseline."""
    seen = set(stats[pd.to_numeric(stats["missing"]).fillna(0) > 0]["feature"])
    return [f for f in features if f in seen or (f in baseline and baseline[f].missing > 0)]


def window_statistics(stats: pd.DataFrame, findings: Findings, baseline: Mapping[str, ColumnBaseline],
                      features: Sequence[str]) -> Plot:
    """Per feature of ``features``: a numeric one's window mean with its p25-p75 band over the baseline's
    (grey); a categorical one's shares of its first `TOP_CATEGORIES` categories (and of unseen values
    when there were any) over the baseline's (dashed, same colours). Then the missing share of each
    column with missing values (`missing_columns`; none: no such row), and the window counts. Flagged
    episodes shaded. Buckets keep the mean of the means, the widest band, and shares of their summed
    counts."""
    rows_of = per_feature(stats, features)
    episodes_of: dict[str, list[Episode]] = {}
    for episode in findings.episodes:
        episodes_of.setdefault(episode.feature, []).append(episode)
    missing = missing_columns(stats, baseline, features)
    n_axes = len(features) + bool(missing) + 1
    fig = _figure(11, 1.5 * (n_axes - 1) + 1.6, left=0.9, top=0.1)
    axes = fig.subplots(n_axes, 1, squeeze=False, gridspec_kw={"hspace": 0.12})[:, 0]
    for ax, feature in zip(axes, features):
        rows = rows_of[feature].sort_values("window_start")
        if is_categorical(rows, baseline.get(feature)):
            _category_shares(ax, rows, baseline.get(feature))
            _shade(ax, episodes_of.get(feature, []))
            ax.set_ylabel(feature, fontsize=8)
            ax.tick_params(labelsize=7, labelbottom=False)
            continue
        sampled = rows.groupby(buckets(len(rows))).agg(
            start=("window_start", "first"), end=("window_end", "last"),
            mean=("mean", "mean"), p25=("p25", "min"), p75=("p75", "max"))
        x = _times((sampled["start"] + sampled["end"]) // 2)
        if feature in baseline:
            ax.axhspan(baseline[feature].p25, baseline[feature].p75, color=BASELINE, alpha=0.25, lw=0)
            ax.axhline(baseline[feature].mean, color=BASELINE, lw=0.8, ls="--")
        ax.fill_between(x, sampled["p25"], sampled["p75"], color=VALUE, alpha=0.25, lw=0)
        ax.plot(x, sampled["mean"], color=VALUE, lw=1.0)
        _shade(ax, episodes_of.get(feature, []))
        ax.set_ylabel(feature, fontsize=8)
        ax.tick_params(labelsize=7, labelbottom=False)
    if missing:
        _missing_shares(axes[-2], rows_of, baseline, missing)
    _counts(axes[-1], stats)
    _same_time_axis(axes)
    return _encoded(fig, "window mean and p25-p75 (numeric) or category shares (categorical) per feature over "
                         "time, missing shares, and window counts", features)


def category_share_lines(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """A categorical column's shares over time: each bucket's start and end, and slot name -> its share of
    the bucket's present values, for the first `TOP_CATEGORIES` categories of its records and `UNSEEN`
    when any window had unseen values."""
    histograms = [h if isinstance(h, dict) else {} for h in rows["histogram"]]
    categories = next((h["categories"] for h in histograms if "categories" in h), [])[:TOP_CATEGORIES]
    counts = pd.DataFrame([h.get("counts", [])[:len(categories)] for h in histograms], columns=categories,
                          index=rows.index, dtype=float).fillna(0)
    counts[UNSEEN] = [float(h.get("unseen", 0)) for h in histograms]
    if not counts[UNSEEN].any():
        counts = counts.drop(columns=UNSEEN)
    counts["_present"] = rows["count"].fillna(0).astype(float)
    counts["_start"], counts["_end"] = rows["window_start"], rows["window_end"]
    grouped = counts.groupby(buckets(len(rows)))
    sums = grouped.sum()
    present = sums.pop("_present").to_numpy()
    starts, ends = grouped["_start"].first().to_numpy(), grouped["_end"].last().to_numpy()
    shares = {str(name): np.divide(sums[name].to_numpy(), present, out=np.full(len(present), np.nan),
                                   where=present > 0)
              for name in counts.columns if not str(name).startswith("_")}
    return starts, ends, shares


def _category_shares(ax: Axes, rows: pd.DataFrame, reference: Optional[CategoricalBaseline]) -> None:
    starts, ends, shares = category_share_lines(rows)
    x = _times((starts + ends) // 2)
    base = CategoryShares.of(None, reference) if reference is not None else None
    base_share = dict(zip(base.labels, base.baseline)) if base is not None else {}
    for colour, (name, line) in enumerate(shares.items()):
        ax.plot(x, line, color=f"C{colour % 10}", lw=1.0, label=name)
        if name in base_share:
            ax.axhline(base_share[name], color=f"C{colour % 10}", lw=0.7, ls="--", alpha=0.7)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=6, ncol=min(len(shares), 6), loc="upper left", frameon=False)


def missing_share_lines(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column's missing share per bucket of windows: their starts, ends and missing / (present + missing)."""
    rows = rows.sort_values("window_start")
    absent = pd.to_numeric(rows["missing"]).fillna(0).astype(float)
    frame = pd.DataFrame({"missing": absent, "total": absent + rows["count"].fillna(0).astype(float),
                          "start": rows["window_start"], "end": rows["window_end"]})
    grouped = frame.groupby(buckets(len(frame)))
    sums = grouped[["missing", "total"]].sum()
    share = np.divide(sums["missing"].to_numpy(), sums["total"].to_numpy(), out=np.full(len(sums), np.nan),
                      where=sums["total"].to_numpy() > 0)
    return grouped["start"].first().to_numpy(), grouped["end"].last().to_numpy(), share


def _missing_shares(ax: Axes, rows_of: Mapping[str, pd.DataFrame], baseline: Mapping[str, ColumnBaseline],
                    columns: Sequence[str]) -> None:
    for colour, column in enumerate(columns):
        starts, ends, share = missing_share_lines(rows_of[column])
        ax.plot(_times((starts + ends) // 2), share, color=f"C{colour % 10}", lw=1.0, label=column)
        if column in baseline:
            ax.axhline(baseline[column].missing_rate, color=f"C{colour % 10}", lw=0.7, ls="--", alpha=0.7)
    ax.set_ylabel("missing share", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.tick_params(labelsize=7, labelbottom=False)
    ax.legend(fontsize=6, ncol=min(len(columns), 6), loc="upper left", frameon=False)


def _same_time_axis(axes: Sequence[Axes]) -> None:
    """One time range for all ``axes``, as sharing their x axis would give (the union of their data, with
    the default margins) without its cost, which grows with the square of the number of axes."""
    lo = min(ax.dataLim.x0 for ax in axes)
    hi = max(ax.dataLim.x1 for ax in axes)
    pad = (hi - lo) * axes[0].margins()[0]
    for ax in axes:
        ax.set_xlim(lo - pad, hi + pad)
        _time_axis(ax)


def _counts(ax: Axes, stats: pd.DataFrame) -> None:
    per_window = (stats.assign(instances=record_instances(stats)).groupby("window_start")
                  .agg(end=("window_end", "first"), count=("instances", "max")).reset_index())
    sampled = per_window.groupby(buckets(len(per_window))).agg(
        start=("window_start", "first"), end=("end", "last"), count=("count", "mean"))
    edges = _times(np.append(sampled["start"].to_numpy(), sampled["end"].to_numpy()[-1]))
    ax.stairs(sampled["count"].to_numpy(), edges, color=THRESHOLD, lw=0.9)
    ax.set_ylabel("instances\nper window", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.tick_params(labelsize=7)


def outliers_per_window(outliers: pd.DataFrame, findings: Findings, window_starts: np.ndarray,
                        features: Sequence[str]) -> Plot:
    """Outlier alerts per window of each of ``features``: a line each up to `MAX_LINES` features, a
    heatmap (features by windows) for more. A bucket of windows shows its mean per window."""
    window = findings.window_ms
    first = int(window_starts.min())
    last = max(int(window_starts.max()), int(np.max(outliers["request_time"].to_numpy(), initial=first)))
    n_windows = (last - first) // window + 1
    rows = pd.Categorical(outliers["feature"], categories=list(features)).codes.astype("int64")
    columns = ((outliers["request_time"] - first) // window).to_numpy(dtype="int64")
    kept = (rows >= 0) & (columns >= 0)  # alerts before the first window: out
    counts = np.bincount(rows[kept] * n_windows + columns[kept], minlength=len(features) * n_windows)
    bucket = buckets(n_windows)
    per_window = pd.DataFrame(counts.reshape(len(features), n_windows).T).groupby(bucket).mean().to_numpy().T
    edges = _times(first + np.append(np.flatnonzero(np.diff(bucket, prepend=-1)), n_windows) * window)
    if len(features) > MAX_LINES:
        return _outlier_heatmap(per_window, features, edges)
    fig = _figure(11, 2.6, left=0.9, top=0.1)
    ax = fig.add_subplot()
    for colour, (feature, line) in enumerate(zip(features, per_window)):
        ax.stairs(line, edges, color=f"C{colour % 10}", lw=1.0, label=feature)
    ax.set_ylabel("outliers per window", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, ncol=min(len(features), 6), loc="upper left")
    _time_axis(ax)
    return _encoded(fig, "outlier alerts per window by feature", features)


def _outlier_heatmap(per_window: np.ndarray, features: Sequence[str], edges: np.ndarray) -> Plot:
    fig, ax = _heatmap(per_window, edges[[0, -1]], 0.22 * len(features), "Purples", None, "outliers per window")
    ax.set_yticks(np.arange(len(features)) + 0.5, features, fontsize=7)
    ax.tick_params(labelsize=7)
    return _encoded(fig, "outlier alerts per window by feature", features)


def _window_axis(ax: Axes, first_ms: int, last_ms: int, window_ms: int) -> None:
    """The run's windows ``[first_ms, last_ms)`` at their middles, with autoscaling's margins (as `Timelines`)."""
    lo, hi = mdates.date2num(_times([first_ms + window_ms // 2, last_ms - window_ms // 2]))
    pad = (hi - lo) * ax.margins()[0]
    ax.set_xlim(lo - pad, hi + pad)
    _time_axis(ax)


def performance_figure(performance: pd.DataFrame, series: Sequence[PerformanceSeries], first_ms: int, last_ms: int,
                       window_ms: int) -> Figure:
    """One axes per metric (a per-class metric: a line per class, at most `MAX_CLASS_LINES`): each window's final
    or latest value (a line at the window's middle, its line's label the series' name), its baseline (dashed,
    the same colour), alerted windows (red dots), earlier revisions (faint dots); behind them, on a second axis
    from 0 to 1, the windows' label coverage (grey steps)."""
    latest = latest_performance(performance)
    metrics = list(dict.fromkeys(s.metric for s in series))
    fig = _figure(11, 1.7 * len(metrics) + 0.5, left=0.9, right=0.7, top=0.1)
    axes = fig.subplots(len(metrics), 1, squeeze=False, gridspec_kw={"hspace": 0.15})[:, 0]
    for ax, metric in zip(axes, metrics):
        lines = [s for s in series if s.metric == metric][:MAX_CLASS_LINES]
        coverage = latest[latest["metric"] == metric].drop_duplicates("window_start").sort_values("window_start")
        _coverage(ax.twinx(), coverage)
        ax.set_zorder(1)  # the values over the coverage band
        ax.patch.set_visible(False)
        for colour, s in enumerate(lines):
            _performance_line(ax, series_rows(latest, s.metric, s.label), series_rows(performance, s.metric, s.label),
                              s, f"C{colour % 10}")
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=7, labelbottom=ax is axes[-1])
        if len(lines) > 1:
            ax.legend(fontsize=6, ncol=min(len(lines), 6), loc="upper left", frameon=False)
        _window_axis(ax, first_ms, last_ms, window_ms)
    return fig


def _performance_line(ax: Axes, latest: pd.DataFrame, every: pd.DataFrame, series: PerformanceSeries,
                      colour: str) -> None:
    latest = latest.sort_values("window_start")
    x = _times((latest["window_start"] + latest["window_end"]) // 2)
    value = pd.to_numeric(latest["value"]).to_numpy(dtype=float)
    ax.plot(x, value, color=colour, lw=1.0, marker=".", ms=3, label=series.name, gid="value")
    earlier = every.merge(latest[["window_start", "revision"]], on="window_start", suffixes=("", "_latest"))
    earlier = earlier[earlier["revision"] != earlier["revision_latest"]]
    ax.plot(_times((earlier["window_start"] + earlier["window_end"]) // 2),
            pd.to_numeric(earlier["value"]).to_numpy(dtype=float), ".", color=colour, ms=3, alpha=0.3, gid="revisions")
    if series.baseline is not None:
        ax.axhline(series.baseline, color=colour, lw=0.8, ls="--", alpha=0.8, gid="baseline")
    alerted = latest["alert"].fillna(False).astype(bool).to_numpy()
    ax.plot(x[alerted], value[alerted], "o", ms=5, color=FLAGGED, gid="alerted")


def _coverage(ax: Axes, latest: pd.DataFrame) -> None:
    if len(latest):
        edges = _times(np.append(latest["window_start"].to_numpy(), latest["window_end"].to_numpy()[-1]))
        ax.stairs(pd.to_numeric(latest["coverage"]).fillna(0).to_numpy(dtype=float), edges, fill=True,
                  color=BASELINE, alpha=0.18, lw=0, gid="coverage")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("label coverage", fontsize=7, color="#777777")
    ax.tick_params(labelsize=6, colors="#777777")


def performance(performance: pd.DataFrame, series: Sequence[PerformanceSeries], first_ms: int, last_ms: int,
                window_ms: int) -> Plot:
    """`performance_figure`, encoded."""
    return _encoded(performance_figure(performance, series, first_ms, last_ms, window_ms),
                    "realised performance per window against the baseline, alerted windows, label coverage and "
                    "earlier revisions")


VERDICT_COLOURS = {"worse": FLAGGED, "better": "#2ca02c", "no_evidence": BASELINE}
STABLE_COLOUR, CANDIDATE_COLOUR = "#1f77b4", "#ff7f0e"


def versions_figure(comparison: pd.DataFrame, compared: VersionsCompared, first_ms: int, last_ms: int,
                    window_ms: int) -> Figure:
    """The two versions side by side over the run's windows: each one's instances in the compared windows; per
    column the compared windows (grey) and those where a metric flagged a difference (red, larger the more
    metrics); per performance metric the versions' values and the difference ``candidate - stable`` with its
    interval, coloured by verdict."""
    latest = latest_comparisons(comparison)
    metrics = sorted(set(latest["metric"]))
    heights = [1.0, 0.25 * max(len(compared.columns), 2)] + [1.0, 1.0] * len(metrics)
    fig = _figure(11, sum(heights) * 1.1 + 0.6, left=1.4, right=0.3, top=0.1)
    axes = fig.subplots(len(heights), 1, squeeze=False, sharex=True,
                        gridspec_kw={"hspace": 0.2, "height_ratios": heights})[:, 0]
    drift = comparison[comparison["kind"] == "drift"]
    _version_counts(axes[0], drift, compared)
    _version_flags(axes[1], drift, compared)
    for i, metric in enumerate(metrics):
        rows = latest[latest["metric"] == metric].sort_values("window_start")
        _version_values(axes[2 + 2 * i], rows, metric, compared)
        _version_delta(axes[3 + 2 * i], rows, metric)
    for ax in axes:
        ax.tick_params(labelsize=7, labelbottom=ax is axes[-1])
        _window_axis(ax, first_ms, last_ms, window_ms)
    return fig


def _middles(rows: pd.DataFrame) -> np.ndarray:
    return _times((rows["window_start"] + rows["window_end"]) // 2)


def _version_counts(ax: Axes, drift: pd.DataFrame, compared: VersionsCompared) -> None:
    per_window = drift.groupby("window_start").agg(window_end=("window_end", "max"), stable=("stable_count", "max"),
                                                   candidate=("candidate_count", "max")).reset_index()
    x = _middles(per_window)
    for column, name, colour in (("stable", compared.stable, STABLE_COLOUR),
                                 ("candidate", compared.candidate, CANDIDATE_COLOUR)):
        ax.plot(x, per_window[column].to_numpy(dtype=float), marker=".", ms=4, lw=1, color=colour, label=name,
                gid=f"instances-{column}")
    ax.set_ylabel("instances", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, ncol=2, loc="upper left", frameon=False)


def _version_flags(ax: Axes, drift: pd.DataFrame, compared: VersionsCompared) -> None:
    rows = {column: i for i, column in enumerate(compared.columns)}
    cells = drift.groupby(["feature", "window_start"]).agg(window_end=("window_end", "max"),
                                                           flags=("flagged", "sum")).reset_index()
    y = cells["feature"].map(rows).to_numpy(dtype=float)
    flags = cells["flags"].to_numpy(dtype=float)
    x = _middles(cells)
    ax.scatter(x, y, s=6, color=BASELINE, gid="compared")
    hit = flags > 0
    ax.scatter(x[hit], y[hit], s=12 + 14 * flags[hit], marker="s", color=FLAGGED, gid="flagged")
    ax.set_yticks(range(len(compared.columns)), compared.columns, fontsize=7)
    ax.set_ylim(len(compared.columns) - 0.5, -0.5)


def _version_values(ax: Axes, rows: pd.DataFrame, metric: str, compared: VersionsCompared) -> None:
    x = _middles(rows)
    for column, name, colour in (("stable", compared.stable, STABLE_COLOUR),
                                 ("candidate", compared.candidate, CANDIDATE_COLOUR)):
        ax.plot(x, pd.to_numeric(rows[column]).to_numpy(dtype=float), marker=".", ms=4, lw=1, color=colour,
                label=name, gid=f"{metric}-{column}")
    ax.set_ylabel(metric, fontsize=8)
    ax.legend(fontsize=7, ncol=2, loc="lower left", frameon=False)


def _version_delta(ax: Axes, rows: pd.DataFrame, metric: str) -> None:
    x = _middles(rows)
    delta = pd.to_numeric(rows["delta"]).to_numpy(dtype=float)
    low, high = (pd.to_numeric(rows[c]).to_numpy(dtype=float) for c in ("ci_low", "ci_high"))
    ax.axhline(0, color=THRESHOLD, lw=0.6)
    for verdict, colour in VERDICT_COLOURS.items():
        chosen = (rows["verdict"] == verdict).to_numpy()
        if chosen.any():
            ax.errorbar(x[chosen], delta[chosen], yerr=[delta[chosen] - low[chosen], high[chosen] - delta[chosen]],
                        fmt="o", ms=3, lw=1, capsize=2, color=colour, label=verdict, gid=f"delta-{verdict}")
    ax.set_ylabel(f"{metric} delta", fontsize=8)
    ax.legend(fontsize=7, ncol=3, loc="lower left", frameon=False)


def versions(comparison: pd.DataFrame, compared: VersionsCompared, first_ms: int, last_ms: int,
             window_ms: int) -> Plot:
    """`versions_figure`, encoded."""
    return _encoded(versions_figure(comparison, compared, first_ms, last_ms, window_ms),
                    f"the candidate {compared.candidate} against the stable {compared.stable} per window: instances, "
                    "columns flagged, performance and its difference with its interval")


def episode_rows(episodes: Sequence[AlertEpisode], limit: int = MAX_EPISODE_ROWS) -> list[str]:
    """The rows of the alert timeline, top down: the model (when it had an episode), then the features with the
    most windows in episodes (ties: the earliest first), at most ``limit`` rows."""
    windows: dict[str, int] = {}
    first: dict[str, int] = {}
    for episode in episodes:
        windows[episode.name] = windows.get(episode.name, 0) + episode.windows
        first.setdefault(episode.name, episode.first_window)
    model = ["model"] if any(e.scope != FEATURE_SCOPE for e in episodes) else []
    features = sorted((n for n in windows if n not in model), key=lambda n: (-windows[n], first[n], n))
    return (model + features)[:limit]


def alerts_figure(verdicts: pd.DataFrame, episodes: Sequence[AlertEpisode], first_ms: int, last_ms: int,
                  window_ms: int) -> Figure:
    """Top (with model verdicts): the discoveries of each window (grey steps), red where the model's verdict found
    the window drifted. Below (with episodes): one row per `episode_rows` name, each episode a bar from its first
    window's start to its last window's end, hatched while still open at the end of the outputs."""
    rows = episode_rows(episodes)
    heights = [1.2] * (len(verdicts) > 0) + [0.22 * len(rows) + 0.3] * bool(rows)
    fig = _figure(11, sum(heights) + 0.6, left=1.6, top=0.1)
    axes = fig.subplots(len(heights), 1, squeeze=False, gridspec_kw={"height_ratios": heights, "hspace": 0.08})[:, 0]
    if len(verdicts):
        _verdicts(axes[0], verdicts, first_ms, window_ms)
    if rows:
        _episode_bars(axes[-1], episodes, rows, window_ms)
    for ax in axes:
        ax.tick_params(labelsize=7, labelbottom=ax is axes[-1])
        _window_axis(ax, first_ms, last_ms, window_ms)
    return fig


def _verdicts(ax: Axes, verdicts: pd.DataFrame, first_ms: int, window_ms: int) -> None:
    """Each window's discoveries as steps over every window of the run (a window without a verdict: 0)."""
    starts = verdicts["window_start"].to_numpy(dtype="int64")
    n_windows = int((starts.max() - first_ms) // window_ms) + 1
    slot = (starts - first_ms) // window_ms
    discoveries, drifted = np.zeros(n_windows), np.zeros(n_windows)
    discoveries[slot] = pd.to_numeric(verdicts["discoveries"]).fillna(0).to_numpy(dtype=float)
    drifted[slot] = np.where(verdicts["drift"].fillna(False).astype(bool), discoveries[slot], 0)
    edges = mdates.date2num(_times(first_ms + window_ms * np.arange(n_windows + 1)))
    ax.stairs(discoveries, edges, fill=True, color=BASELINE, lw=0, gid="discoveries")
    ax.stairs(drifted, edges, fill=True, color=FLAGGED, lw=0, gid="model-drift")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    ax.set_ylabel("discoveries\nper window", fontsize=7)


def _episode_bars(ax: Axes, episodes: Sequence[AlertEpisode], rows: Sequence[str], window_ms: int) -> None:
    row_of = {name: i for i, name in enumerate(rows)}
    for closed in (True, False):
        spans = [(row_of[e.name], e.first_window, e.last_window + window_ms) for e in episodes
                 if e.name in row_of and e.closed == closed]
        if spans:
            row, start, end = np.array(spans, dtype="int64").T
            left, right = mdates.date2num(_times(start)), mdates.date2num(_times(end))
            ax.barh(row, right - left, left=left, height=0.7, color=FLAGGED, alpha=0.85 if closed else 0.45,
                    hatch=None if closed else "///", lw=0, gid="closed" if closed else "open")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(np.arange(len(rows)), rows, fontsize=7 if len(rows) > 12 else 8)


def alerts(verdicts: pd.DataFrame, episodes: Sequence[AlertEpisode], first_ms: int, last_ms: int,
           window_ms: int) -> Plot:
    """`alerts_figure`, encoded."""
    return _encoded(alerts_figure(verdicts, episodes, first_ms, last_ms, window_ms),
                    "the model's drift verdict and discoveries per window, and the alert episodes over time",
                    episode_rows(episodes))
