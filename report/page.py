"""The page: the findings and the plots laid out by the Jinja2 template ``templates/report.html.j2``
(inline CSS, images as data URIs: one file that opens offline in any browser).

The summary covers every feature in compact form (the overview heatmap, the ranking table); the
detailed sections draw only the selected features (`report.findings.select`), so a model of any width
makes a page of bounded size and drawing time. Tables are capped too: the ranking lists every flagged
feature and the next `TABLE_REST` (at most `TABLE_MAX` rows), the episodes table the `MAX_EPISODES`
longest episodes; a line under each says what it leaves out.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import jinja2
import numpy as np
import pandas as pd

from contract.spec import MonitorSpec

from udfs.baseline import ColumnBaseline

from report import figures
from report.findings import (DEFAULT_MAX_FEATURES, Episode, FeatureRank, Findings, VersionsCompared, find, select,
                             versions_compared)
from report.outputs import RunOutputs, of_version, versions_in

TEMPLATE = "report.html.j2"
TABLE_REST = 20
TABLE_MAX = 500
MAX_EPISODES = 50


@dataclass(frozen=True)
class Timeline:
    feature: str
    metric: str
    plot: figures.Plot


@dataclass(frozen=True)
class FlaggedHistograms:
    """A feature's flagged windows drawn beside the baseline: ``shown`` of its ``total`` flagged windows;
    a categorical column's as category shares, ``categories`` naming its bars (numeric: empty)."""

    feature: str
    shown: list[int]
    total: int
    plot: figures.Plot
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tables:
    """The summary's capped tables: the first ``ranked`` rows of the ranking, with the counts of the rest
    (``rest`` features, ``rest_flagged`` of them flagged, ``rest_outliers`` outlier alerts), and the
    ``episodes`` listed (in time order) of ``all_episodes``."""

    ranked: list[FeatureRank]
    rest: int
    rest_flagged: int
    rest_outliers: int
    episodes: list[Episode]
    all_episodes: int
    single_window_episodes_left_out: int


def tables(findings: Findings) -> Tables:
    """Every flagged feature and the next `TABLE_REST` of the ranking (at most `TABLE_MAX`); the
    `MAX_EPISODES` longest episodes (most windows, then most alerts, then earliest)."""
    flagged = sum(1 for r in findings.ranking if r.flagged_windows)
    ranked = findings.ranking[:min(flagged + TABLE_REST, TABLE_MAX)]
    rest = findings.ranking[len(ranked):]
    longest = sorted(findings.episodes, key=lambda e: (-e.windows, -sum(e.metrics.values()), e.start_ms, e.feature))
    listed, left_out = longest[:MAX_EPISODES], longest[MAX_EPISODES:]
    return Tables(ranked=ranked, rest=len(rest), rest_flagged=sum(1 for r in rest if r.flagged_windows),
                  rest_outliers=sum(r.outliers for r in rest),
                  episodes=sorted(listed, key=lambda e: (e.start_ms, e.feature)), all_episodes=len(findings.episodes),
                  single_window_episodes_left_out=sum(1 for e in left_out if e.windows == 1))


@dataclass(frozen=True)
class Plots:
    overview: figures.Plot
    timelines: list[Timeline]
    histograms: list[FlaggedHistograms]
    statistics: figures.Plot
    outliers: figures.Plot
    missing: list[str]
    """The features drawn in detail that have missing values (the statistics' missing-share row)."""
    performance: Optional[figures.Plot] = None
    """Realised performance over time (None: no performance records)."""
    output_timelines: tuple[Timeline, ...] = ()
    """The prediction column's drift timelines, drawn beside the performance (with performance records only)."""
    alerts: Optional[figures.Plot] = None
    """The model's verdict per window and the alert episodes over time (None: a run without either)."""


def utc(ms: Optional[int]) -> str:
    """Epoch milliseconds as a UTC date and time."""
    return "-" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def span(ms: int) -> str:
    """A duration in the largest units that keep it exact to the second: '2 h 14 min 15 s'."""
    seconds = int(ms // 1000)
    parts = [(seconds // 3600, "h"), (seconds % 3600 // 60, "min"), (seconds % 60, "s")]
    return " ".join(f"{n} {unit}" for n, unit in parts if n) or f"{ms} ms"


def measure(value: Optional[float]) -> str:
    """A metric's value to 4 significant digits ('-': none)."""
    return "-" if value is None else f"{value:.4g}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(utc=utc, span=span, number=lambda n: f"{n:,}", measure=measure)
    return env


def plots(outputs: RunOutputs, findings: Findings, baseline: Mapping[str, ColumnBaseline],
          features: Sequence[str]) -> Plots:
    """Every figure of the page, the detailed ones for ``features`` alone; the outputs hold at least one
    window's statistics."""
    window_starts = np.concatenate([outputs.stats["window_start"], outputs.drift["window_start"]]).astype("int64")
    drawer = figures.Timelines(findings.timelines_complete, findings.first_ms, findings.last_ms, findings.window_ms)
    timelines = _timelines(drawer, outputs.drift, findings, features)
    performance, output_timelines = None, []
    if findings.performance:
        performance = figures.performance(outputs.performance, findings.performance, findings.first_ms,
                                          findings.last_ms, findings.window_ms)
        if findings.output is not None:
            output_timelines = ([t for t in timelines if t.feature == findings.output]
                                or _timelines(drawer, outputs.drift, findings, [findings.output]))
    return Plots(overview=figures.overview(findings, window_starts), timelines=timelines,
                 histograms=_histograms(outputs.stats, findings, baseline, features),
                 statistics=figures.window_statistics(outputs.stats, findings, baseline, features),
                 outliers=figures.outliers_per_window(outputs.outliers, findings, window_starts, features),
                 missing=figures.missing_columns(outputs.stats, baseline, features),
                 performance=performance, output_timelines=tuple(output_timelines), alerts=_alerts_plot(outputs, findings))


def _alerts_plot(outputs: RunOutputs, findings: Findings) -> Optional[figures.Plot]:
    if not (findings.alert_episodes or findings.model_verdicts):
        return None
    return figures.alerts(outputs.model_drift, findings.alert_episodes, findings.first_ms, findings.last_ms,
                          findings.window_ms)


def _timelines(drawer: figures.Timelines, drift: pd.DataFrame, findings: Findings,
               features: Sequence[str]) -> list[Timeline]:
    """The drift timelines of ``features``, each metric's in the findings' order."""
    groups = drift[drift["feature"].isin(features)].groupby(["feature", "metric"])
    return [Timeline(feature, metric, drawer.draw(groups.get_group((feature, metric)), feature, metric))
            for feature in features for metric in findings.metrics if (feature, metric) in groups.groups]


def _histograms(stats: pd.DataFrame, findings: Findings, baseline: Mapping[str, ColumnBaseline],
                features: Sequence[str]) -> list[FlaggedHistograms]:
    result = []
    rows = figures.per_feature(stats, features)
    for feature in features:
        flagged = findings.flagged.get(feature, {})
        if flagged:
            shown = figures.chosen_windows(list(flagged))
            reference = baseline.get(feature)
            if figures.is_categorical(rows[feature], reference):
                plot = figures.flagged_categories(feature, rows[feature], reference, flagged, shown)
                labels = next((p.shares.labels for p in figures.category_panels(rows[feature], reference, shown)
                               if p is not None), ())
                result.append(FlaggedHistograms(feature, shown, len(flagged), plot, labels))
            else:
                plot = figures.flagged_histograms(feature, rows[feature], reference, flagged, shown)
                result.append(FlaggedHistograms(feature, shown, len(flagged), plot))
    return result


def shown_version(outputs: RunOutputs, spec: MonitorSpec) -> Optional[str]:
    """The one model version the page's sections draw when the run holds several (the summary's counts and the
    versions section cover them all): the stable one, else the spec's ``model.version``, else the one with the
    most instances; None for a run of one version."""
    versions = versions_in(outputs)
    if len(versions) < 2:
        return None
    return next(v for v in (spec.versions.stable, spec.model.version, versions[0]) if v in versions)


def _with_every_version(shown: Findings, every: Findings) -> Findings:
    """The findings of the version shown, with the accounting and the counts of every version."""
    return dataclasses.replace(shown, accounting=every.accounting, instances=every.instances)


def versions_plot(outputs: RunOutputs, findings: Findings, compared: Optional[VersionsCompared]) -> Optional[figures.Plot]:
    """The versions side by side (`figures.versions`); None without a comparison or a compared window."""
    if compared is None or not compared.windows or findings.first_ms is None:
        return None
    return figures.versions(outputs.comparison, compared, findings.first_ms, findings.last_ms, findings.window_ms)


def render(outputs: RunOutputs, spec: MonitorSpec, baseline: Mapping[str, ColumnBaseline],
           max_features: Optional[int] = DEFAULT_MAX_FEATURES, features: Optional[Sequence[str]] = None) -> str:
    """The report page of ``outputs`` (made with ``spec``) as HTML, the detailed sections drawn for the
    features `report.findings.select` picks with ``max_features`` and ``features``."""
    compared = versions_compared(outputs, spec)
    everything, shown = outputs, shown_version(outputs, spec)
    if shown is not None:
        outputs = of_version(outputs, shown)
    findings = _with_every_version(find(outputs, spec), find(everything, spec))
    selection = select(findings, max_features, features)
    return _environment().get_template(TEMPLATE).render(
        compared=compared, versions_plot=versions_plot(everything, findings, compared), shown_version=shown,
        versions=versions_in(everything),
        findings=findings, outputs=outputs, spec=spec, generated_ms=int(time.time() * 1000),
        selection=selection, tables=tables(findings),
        plots=plots(outputs, findings, baseline, selection.features) if len(outputs.stats) else None,
        max_histograms=figures.MAX_HISTOGRAMS, max_points=figures.MAX_POINTS, max_lines=figures.MAX_LINES,
        labelled_rows=figures.LABELLED_ROWS, max_episodes=MAX_EPISODES, max_episode_rows=figures.MAX_EPISODE_ROWS)
