"""The page: the findings and the plots laid out by the Jinja2 template ``templates/report.html.j2``
(inline CSS, images as data URIs: one file that opens offline in any browser)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Optional

import jinja2
import numpy as np
import pandas as pd

from flink_job.config import MonitorSpec
from report import figures
from report.findings import Findings, find
from report.outputs import RunOutputs
from udfs.baseline import FeatureBaseline

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class Timeline:
    feature: str
    metric: str
    plot: figures.Plot


@dataclass(frozen=True)
class FlaggedHistograms:
    """A feature's flagged windows drawn beside the baseline: ``shown`` of its ``total`` flagged windows."""

    feature: str
    shown: list[int]
    total: int
    plot: figures.Plot


@dataclass(frozen=True)
class Plots:
    overview: figures.Plot
    timelines: list[Timeline]
    histograms: list[FlaggedHistograms]
    statistics: figures.Plot
    outliers: figures.Plot


def utc(ms: Optional[int]) -> str:
    """Epoch milliseconds as a UTC date and time."""
    return "-" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def span(ms: int) -> str:
    """A duration in the largest units that keep it exact to the second: '2 h 14 min 15 s'."""
    seconds = int(ms // 1000)
    parts = [(seconds // 3600, "h"), (seconds % 3600 // 60, "min"), (seconds % 60, "s")]
    return " ".join(f"{n} {unit}" for n, unit in parts if n) or f"{ms} ms"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(utc=utc, span=span, number=lambda n: f"{n:,}")
    return env


def plots(outputs: RunOutputs, findings: Findings, baseline: Mapping[str, FeatureBaseline]) -> Plots:
    """Every figure of the page; the outputs hold at least one window's statistics."""
    window_starts = np.concatenate([outputs.stats["window_start"], outputs.drift["window_start"]]).astype("int64")
    drift = outputs.drift.groupby(["feature", "metric"])
    timelines = [Timeline(feature, metric, figures.drift_timeline(drift.get_group((feature, metric)), feature,
                                                                  metric, findings.timelines_complete))
                 for feature in findings.features for metric in findings.metrics
                 if (feature, metric) in drift.groups]
    return Plots(overview=figures.overview(findings, window_starts), timelines=timelines,
                 histograms=_histograms(outputs.stats, findings, baseline),
                 statistics=figures.window_statistics(outputs.stats, findings, baseline),
                 outliers=figures.outliers_per_window(outputs.outliers, findings, window_starts))


def _histograms(stats: pd.DataFrame, findings: Findings,
                baseline: Mapping[str, FeatureBaseline]) -> list[FlaggedHistograms]:
    result = []
    for feature in findings.features:
        flagged = findings.flagged.get(feature, {})
        if flagged:
            shown = figures.chosen_windows(list(flagged))
            plot = figures.flagged_histograms(feature, stats[stats["feature"] == feature], baseline.get(feature),
                                              flagged, shown)
            result.append(FlaggedHistograms(feature, shown, len(flagged), plot))
    return result


def render(outputs: RunOutputs, spec: MonitorSpec, baseline: Mapping[str, FeatureBaseline]) -> str:
    """The report page of ``outputs`` (made with ``spec``) as HTML."""
    findings = find(outputs, spec)
    return _environment().get_template(TEMPLATE).render(
        findings=findings, outputs=outputs, spec=spec, generated_ms=int(time.time() * 1000),
        plots=plots(outputs, findings, baseline) if len(outputs.stats) else None,
        max_histograms=figures.MAX_HISTOGRAMS, max_points=figures.MAX_POINTS)
