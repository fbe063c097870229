"""What a run found, as the page's summary states it: its size and time range, which features drifted
when and by which metrics, the features ranked by flagged windows and outliers, dead letters by reason,
and the accounting identity; with ground truth, the model's realised performance per metric (its windows'
final or latest values, the windows alerted, the label coverage), an alerted window a finding as a flagged
drift window is. Everything is computed from the output records (`report.outputs.RunOutputs`) and the spec.
`select` picks the features the page draws in detail.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Sequence

import pandas as pd

from contract import outputs as output_names
from contract.spec import MonitorSpec

from report.outputs import RunOutputs


@dataclass(frozen=True)
class Episode:
    """Back-to-back flagged windows of one feature, ``[start_ms, end_ms)``; ``metrics`` counts, per metric,
    the windows of the episode it flagged."""

    feature: str
    start_ms: int
    end_ms: int
    windows: int
    metrics: dict[str, int]


@dataclass(frozen=True)
class AlertEpisode:
    """One alert episode of the job (``alerts.jsonl``): a feature's, or the model's (``feature`` None), from its
    open event to its close event or, still open, its latest update; windows as their starts (epoch ms)."""

    scope: str
    feature: Optional[str]
    first_window: int
    last_window: int
    windows: int
    """Windows the episode spans, as its latest event counts them."""
    metrics: tuple[str, ...]
    closed: bool

    @property
    def name(self) -> str:
        return self.feature if self.scope == FEATURE_SCOPE and self.feature else "model"


@dataclass(frozen=True)
class ModelVerdicts:
    """The model's drift verdict per window (``model_drift.jsonl``): windows judged, the starts of those found
    drifted, and the (feature, metric) tests and discoveries over all windows."""

    windows: int
    drifted: tuple[int, ...]
    tests: int
    discoveries: int


@dataclass(frozen=True)
class FeatureRank:
    """One feature's line of the ranking: how many windows any metric flagged, how many each metric
    flagged, and its outlier alerts."""

    feature: str
    flagged_windows: int
    by_metric: dict[str, int]
    outliers: int

    @property
    def alerts(self) -> int:
        """Drift alerts: (window, metric) pairs flagged."""
        return sum(self.by_metric.values())


@dataclass(frozen=True)
class Accounting:
    """The identity that nothing was lost: records read = requests accepted + dead-lettered, and
    instances accepted = instances in windows. The read and accepted counts are the job's accumulators,
    in an embedded run's summary.json; the output topics alone hold only the other two (None here). With
    an ``output``, the summary also counts the responses joined to their requests, and with ``ground_truth`` the
    label messages joined to their predictions (neither is a record read)."""

    in_windows: int
    dead_lettered: int
    records_read: Optional[int] = None
    requests_accepted: Optional[int] = None
    instances_accepted: Optional[int] = None
    responses_joined: Optional[int] = None
    labels_joined: Optional[int] = None

    @property
    def balanced(self) -> Optional[bool]:
        """Whether the identity holds; None when the job's counts are unknown."""
        if None in (self.records_read, self.requests_accepted, self.instances_accepted):
            return None
        return (self.records_read == self.requests_accepted + self.dead_lettered
                and self.instances_accepted == self.in_windows)


@dataclass(frozen=True)
class PerformanceSeries:
    """One realised-performance metric (of one class, for a per-class metric) over the run: each window's value
    is its final record's, else its latest revision's."""

    metric: str
    label: Optional[str]
    """The class of a per-class metric (precision, recall, f1); None for the others."""
    windows: int
    """Windows with a record of it."""
    alerted: tuple[int, ...]
    """Starts of the windows whose value is alerted (worse than the baseline's by more than chance)."""
    last_start: Optional[int]
    last_value: Optional[float]
    """The value of the last window that has one (None: no window has a value yet)."""
    baseline: Optional[float]
    coverage: Optional[float]
    """Labelled pairs / predictions over its windows."""
    revisions: int
    """Its records in all, the windows' earlier revisions included."""
    final: int
    """Windows whose record is final."""

    @property
    def name(self) -> str:
        return self.metric if self.label is None else f"{self.metric} ({self.label})"


@dataclass(frozen=True)
class Findings:
    model: str
    features: tuple[str, ...]
    metrics: tuple[str, ...]
    window_ms: int
    windows: int
    instances: int
    first_ms: Optional[int]
    last_ms: Optional[int]
    drift_alerts: int
    flagged: dict[str, dict[int, tuple[str, ...]]]
    """feature -> start of each flagged window -> the metrics that flagged it."""
    episodes: list[Episode]
    ranking: list[FeatureRank]
    """Every feature: the flagged ones first, most flagged windows (then most drift alerts) first; then the
    others, most outlier alerts first; ties in the spec's order."""
    outliers: int
    outliers_by_feature: dict[str, int]
    dead_letters_by_reason: dict[str, int]
    accounting: Accounting
    timelines_complete: bool
    """``drift.emit_all``: the drift records hold every window's value, not only the flagged ones."""
    output: Optional[str] = None
    """The prediction column (the spec's ``output.name``), None without an output."""
    performance: tuple[PerformanceSeries, ...] = ()
    """Each realised-performance metric (per class where it is per class), in the records' order; empty when the
    run has no performance records (no ground truth)."""
    performance_flagged: dict[int, tuple[str, ...]] = field(default_factory=dict)
    """Start of each alerted performance window -> the `PerformanceSeries.name` of each metric alerted in it."""
    performance_episodes: list[Episode] = field(default_factory=list)
    """The alerted performance windows merged into runs of back-to-back windows (``feature``: the prediction
    column), as `episodes` merges a feature's flagged windows."""
    raw_flags: Optional[int] = None
    """Drift records over their threshold, before false-discovery control (None: the records carry no
    discovery, a run from before the control; `drift_alerts` then counts these)."""
    alert_episodes: tuple[AlertEpisode, ...] = ()
    """The job's alert episodes, the model's first, then by first window; empty for a run without alerts."""
    model_verdicts: Optional[ModelVerdicts] = None
    """None for a run without model verdicts."""

    @property
    def performance_alerts(self) -> int:
        """Performance alerts: (window, metric) pairs alerted."""
        return sum(len(names) for names in self.performance_flagged.values())


def _ordered(known: tuple[str, ...], seen: pd.Series) -> tuple[str, ...]:
    """``known`` (the spec's order), then any other name the records hold, sorted."""
    extra = sorted(set(seen.dropna()) - set(known))
    return tuple(known) + tuple(extra)


def window_ms(outputs: RunOutputs, spec: MonitorSpec) -> int:
    """The window length the records show (the spec's when there are none)."""
    for frame in (outputs.stats, outputs.drift):
        if len(frame):
            return int((frame["window_end"] - frame["window_start"]).mode().iloc[0])
    return int(spec.window.duration)


def record_instances(stats: pd.DataFrame) -> pd.Series:
    """Each window record's instances: its column's present values and its missing ones (records written
    before missing values were counted have none: 0)."""
    return stats["count"] + pd.to_numeric(stats["missing"]).fillna(0)


def flagged_windows(drift: pd.DataFrame) -> dict[str, dict[int, tuple[str, ...]]]:
    """feature -> flagged window start -> the metrics that flagged it, in time order."""
    hits = drift[drift["drift"].fillna(False).astype(bool)].sort_values(["feature", "window_start", "metric"])
    result: dict[str, dict[int, tuple[str, ...]]] = {}
    for (feature, start), rows in hits.groupby(["feature", "window_start"], sort=True):
        result.setdefault(feature, {})[int(start)] = tuple(rows["metric"])
    return result


def episodes(flagged: dict[str, dict[int, tuple[str, ...]]], window: int) -> list[Episode]:
    """Each feature's flagged windows merged into runs of back-to-back windows."""
    result = []
    for feature, by_start in flagged.items():
        run: list[int] = []
        for start in sorted(by_start):
            if run and start != run[-1] + window:
                result.append(_episode(feature, run, by_start, window))
                run = []
            run.append(start)
        result.append(_episode(feature, run, by_start, window))
    return sorted(result, key=lambda e: (e.start_ms, e.feature))


def _episode(feature: str, starts: list[int], by_start: dict[int, tuple[str, ...]], window: int) -> Episode:
    counts = pd.Series([m for start in starts for m in by_start[start]]).value_counts()
    return Episode(feature, starts[0], starts[-1] + window, len(starts), {str(m): int(n) for m, n in counts.items()})


def ranking(features: Sequence[str], metrics: Sequence[str], flagged: dict[str, dict[int, tuple[str, ...]]],
            outliers: dict[str, int]) -> list[FeatureRank]:
    """Every feature's `FeatureRank`, in the order `Findings.ranking` states."""
    rows = []
    for feature in features:
        by_start = flagged.get(feature, {})
        per_metric = Counter(m for ms in by_start.values() for m in ms)
        rows.append(FeatureRank(feature, len(by_start), {m: per_metric.get(m, 0) for m in metrics},
                                outliers.get(feature, 0)))
    order = {feature: i for i, feature in enumerate(features)}
    return sorted(rows, key=lambda r: (-r.flagged_windows, -r.alerts, 0 if r.flagged_windows else -r.outliers,
                                       order[r.feature]))


def accounting(outputs: RunOutputs, in_windows: int) -> Accounting:
    summary = outputs.summary or {}
    counted = {name: summary.get(name) for name in (*output_names.ACCOUNTING, output_names.RESPONSES_JOINED,
                                                                   output_names.LABELS_JOINED)}
    return Accounting(in_windows=in_windows, dead_lettered=len(outputs.dead_letter), **counted)


def latest_performance(performance: pd.DataFrame) -> pd.DataFrame:
    """Each (window, metric, class)'s record that gives its value: the final one, else its latest revision; one
    row each, by window start."""
    ranked = performance.assign(_final=performance["final"].fillna(False).astype(bool),
                                _class=performance["class"].fillna(""))
    ranked = ranked.sort_values(["window_start", "metric", "_class", "_final", "revision"], kind="stable")
    latest = ranked.drop_duplicates(["window_start", "metric", "_class"], keep="last")
    return latest.drop(columns=["_final", "_class"]).reset_index(drop=True)


def series_rows(performance: pd.DataFrame, metric: str, label: Optional[str]) -> pd.DataFrame:
    """The records of ``metric`` (of class ``label``; None: a metric without classes)."""
    same_class = performance["class"].isna() if label is None else performance["class"] == label
    return performance[(performance["metric"] == metric) & same_class]


def _scalar(values: pd.Series) -> pd.Series:
    """Whether each value is a number or none (a confusion matrix is neither)."""
    return values.map(lambda v: not isinstance(v, (list, dict))).astype(bool)


def _number_or_none(value) -> Optional[float]:
    return None if value is None or pd.isna(value) else float(value)


def performance_series(performance: pd.DataFrame) -> tuple[PerformanceSeries, ...]:
    """Each scalar metric's `PerformanceSeries` (the confusion matrix is drawn in no line), in the records'
    order of metrics and classes."""
    if not len(performance):
        return ()
    scalar = performance[_scalar(performance["value"])]
    latest = latest_performance(scalar)
    result = []
    for metric, label in dict.fromkeys(zip(scalar["metric"], scalar["class"].where(scalar["class"].notna(), None))):
        rows, revisions = series_rows(latest, metric, label), series_rows(scalar, metric, label)
        valued = rows[rows["value"].notna()]
        last = valued.iloc[-1] if len(valued) else None
        predictions = pd.to_numeric(rows["predictions"]).fillna(0)
        labelled = pd.to_numeric(rows["labelled"]).fillna(0)
        result.append(PerformanceSeries(
            metric=str(metric), label=None if label is None else str(label), windows=len(rows),
            alerted=tuple(int(s) for s in rows[rows["alert"].fillna(False).astype(bool)]["window_start"]),
            last_start=None if last is None else int(last["window_start"]),
            last_value=None if last is None else _number_or_none(last["value"]),
            baseline=_number_or_none(rows["baseline"].dropna().iloc[-1]) if rows["baseline"].notna().any() else None,
            coverage=float(labelled.sum() / predictions.sum()) if predictions.sum() else None,
            revisions=len(revisions), final=int(rows["final"].fillna(False).astype(bool).sum())))
    return tuple(result)


def performance_flagged(series: Sequence[PerformanceSeries]) -> dict[int, tuple[str, ...]]:
    """Alerted window start -> the metrics alerted in it, in time order."""
    by_start: dict[int, list[str]] = {}
    for s in series:
        for start in s.alerted:
            by_start.setdefault(start, []).append(s.name)
    return {start: tuple(by_start[start]) for start in sorted(by_start)}


def find(outputs: RunOutputs, spec: MonitorSpec) -> Findings:
    stats, drift = outputs.stats, outputs.drift
    features = _ordered(spec.columns, pd.concat([stats["feature"], drift["feature"], outputs.outliers["feature"]]))
    window = window_ms(outputs, spec)
    per_window = record_instances(stats).groupby([stats["version"].fillna(""), stats["window_start"]]).max()
    instances = int(per_window.sum())  # each version's windows hold its own instances
    flagged = flagged_windows(drift)
    starts = pd.concat([stats["window_start"], drift["window_start"]])
    ends = pd.concat([stats["window_end"], drift["window_end"]])
    outlier_counts = outputs.outliers["feature"].value_counts()
    metrics = _ordered(tuple(spec.drift.metrics), drift["metric"])
    outliers_by_feature = {f: int(outlier_counts.get(f, 0)) for f in features}
    return Findings(
        model=spec.model.name, features=features, metrics=metrics,
        window_ms=window, windows=int(stats["window_start"].nunique()), instances=instances,
        first_ms=int(starts.min()) if len(starts) else None, last_ms=int(ends.max()) if len(ends) else None,
        drift_alerts=int(drift["drift"].fillna(False).astype(bool).sum()), flagged=flagged,
        episodes=episodes(flagged, window), ranking=ranking(features, metrics, flagged, outliers_by_feature),
        outliers=len(outputs.outliers), outliers_by_feature=outliers_by_feature,
        dead_letters_by_reason={str(r): int(n) for r, n in outputs.dead_letter["reason"].value_counts().items()},
        accounting=accounting(outputs, instances), timelines_complete=spec.drift.emit_all,
        **_performance(outputs, spec, window), **_alerts(outputs))


FEATURE_SCOPE = "feature"
CLOSE_EVENT = "close"
EVENT_ORDER = {"open": 0, "update": 1, CLOSE_EVENT: 2}
"""An episode's events in the order they happen (an update and the close name the same last window)."""


def alert_episodes(events: pd.DataFrame) -> tuple[AlertEpisode, ...]:
    """The episodes the open, update and close events describe, in any order (a topic's partitions interleave
    them): a (scope, feature)'s events of one first window are one episode, as its latest event (the furthest last
    window; open, then update, then close) states it; the model's first, then by first window."""
    if not len(events):
        return ()
    events = events.assign(_feature=events["feature"].where(events["feature"].notna(), ""),
                           _rank=events["event"].map(EVENT_ORDER).fillna(len(EVENT_ORDER)))
    latest = events.sort_values(["last_window", "_rank"], kind="stable").groupby(
        ["scope", "_feature", "first_window"], sort=False).tail(1)
    result = [AlertEpisode(str(e["scope"]), e["_feature"] or None, int(e["first_window"]), int(e["last_window"]),
                           _window_count(e["windows"]), tuple(e["metrics"] or ()), e["event"] == CLOSE_EVENT)
              for _, e in latest.iterrows()]
    return tuple(sorted(result, key=lambda e: (e.scope == FEATURE_SCOPE, e.first_window, e.name)))


def _window_count(windows) -> int:
    """An event's ``windows``: a count, or the list of the episode's windows."""
    return len(windows) if isinstance(windows, (list, tuple)) else int(windows)


def model_verdicts(records: pd.DataFrame) -> Optional[ModelVerdicts]:
    if not len(records):
        return None
    records = records.sort_values("window_start")
    drifted = records[records["drift"].fillna(False).astype(bool)]["window_start"]
    return ModelVerdicts(len(records), tuple(int(start) for start in drifted),
                         int(pd.to_numeric(records["tests"]).sum()), int(pd.to_numeric(records["discoveries"]).sum()))


def _alerts(outputs: RunOutputs) -> dict:
    drift = outputs.drift
    controlled = "raw_drift" in drift and drift["discovery"].notna().any()
    return {"raw_flags": int(drift["raw_drift"].sum()) if controlled else None,
            "alert_episodes": alert_episodes(outputs.alerts), "model_verdicts": model_verdicts(outputs.model_drift)}


def _performance(outputs: RunOutputs, spec: MonitorSpec, window: int) -> dict:
    output = spec.output.name if spec.output else None
    series = performance_series(outputs.performance)
    alerted = performance_flagged(series)
    return {"output": output, "performance": series, "performance_flagged": alerted,
            "performance_episodes": episodes({output or "prediction": alerted}, window) if alerted else []}


class SelectionError(Exception):
    """Features asked for that the run does not have; the message names them."""


@dataclass(frozen=True)
class Selection:
    """The features the page draws in detail, in that order, of the run's ``total``, and how they were
    chosen: the first ``limit`` of the ranking (None: all of them), or ``explicit``ly named."""

    features: tuple[str, ...]
    total: int
    limit: Optional[int]
    explicit: bool

    @property
    def hidden(self) -> int:
        """Features not drawn in detail."""
        return self.total - len(self.features)


DEFAULT_MAX_FEATURES = 20


def select(findings: Findings, max_features: Optional[int] = DEFAULT_MAX_FEATURES,
           features: Optional[Sequence[str]] = None) -> Selection:
    """``features`` (each once, in the order given) when named; otherwise the first ``max_features`` of the
    ranking (all of them when None or 0): the drifted features, most flagged windows first, then the
    others by outlier alerts."""
    total = len(findings.features)
    if features is not None:
        known = set(findings.features)
        unknown = [f for f in features if f not in known]
        if unknown:
            raise SelectionError(f"no feature {', '.join(map(repr, unknown[:10]))}"
                                 f"{f' (and {len(unknown) - 10} more)' if len(unknown) > 10 else ''} in this run; "
                                 f"its features are {', '.join(findings.features[:10])}"
                                 f"{', ...' if total > 10 else ''}")
        return Selection(tuple(dict.fromkeys(features)), total, None, explicit=True)
    limit = max_features or None
    ranked = tuple(r.feature for r in findings.ranking)
    return Selection(ranked[:limit], total, limit, explicit=False)


@dataclass(frozen=True)
class VersionsCompared:
    """What the comparison of the candidate version with the stable one found (``versions`` in the spec):
    ``windows`` the window starts compared, ``flagged`` per column the compared windows where some metric
    flagged a difference (-> those metrics), ``columns`` every column compared, in the spec's order, and the
    verdicts of each performance metric's windows (final or latest record) by verdict."""

    stable: str
    candidate: str
    windows: tuple[int, ...]
    columns: tuple[str, ...]
    flagged: dict[str, dict[int, tuple[str, ...]]]
    verdicts: dict[str, dict[str, tuple[int, ...]]]

    @property
    def worse(self) -> dict[str, tuple[int, ...]]:
        """Per performance metric, the windows where the candidate was judged worse."""
        return {metric: by["worse"] for metric, by in self.verdicts.items() if by.get("worse")}


def latest_comparisons(comparison: pd.DataFrame) -> pd.DataFrame:
    """Each (window, metric)'s performance comparison that stands: the final one, else the latest."""
    rows = comparison[comparison["kind"] == "performance"]
    ranked = rows.assign(_final=rows["final"].eq(True)).sort_values(
        ["window_start", "metric", "_final"], kind="stable")
    return ranked.drop_duplicates(["window_start", "metric"], keep="last").drop(columns="_final")


def versions_compared(outputs: RunOutputs, spec: MonitorSpec) -> Optional[VersionsCompared]:
    """The comparison's findings; None without ``versions.stable`` and ``versions.candidate`` in the spec."""
    versions = spec.versions
    if versions.stable is None or versions.candidate is None:
        return None
    comparison = outputs.comparison
    drift = comparison[comparison["kind"] == "drift"]
    flagged_rows = drift.assign(drift=drift["flagged"].eq(True))
    verdicts = {str(metric): {str(v): tuple(sorted(int(s) for s in group["window_start"]))
                              for v, group in rows.groupby("verdict")}
                for metric, rows in latest_comparisons(comparison).groupby("metric")}
    return VersionsCompared(stable=versions.stable, candidate=versions.candidate,
                            windows=tuple(sorted(int(s) for s in set(comparison["window_start"].dropna()))),
                            columns=_ordered(spec.columns, drift["feature"]),
                            flagged=flagged_windows(flagged_rows), verdicts=verdicts)
