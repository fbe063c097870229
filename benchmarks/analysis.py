"""The benchmark's figures, computed from the job's own output records and the stream's labels.

Pure numpy, no services: the harness hands in what it consumed from the output topics (lists of
dicts with the field names fixed by issue 3) and the ground truth of the replayed stream.

Definitions (times in seconds):

* outlier alert latency = ``detected_at - request_time``;
* window latency from the mid-point = ``emitted_at - (window_start + window_end) / 2`` (the thesis's
  definition), from the end = ``emitted_at - window_end``.  A window cannot close before the
  watermark passes its end, so the floors are ``duration / 2 + watermark_delay`` and
  ``watermark_delay``;
* an outlier alert is true iff its ``(request_id, feature)`` is the injected outlier.  Precision and
  recall count distinct pairs on stages 1, 2, 4 and 5 only: the drift stage shifts every value by
  one standard deviation, so 3-sigma crossings there are real but not labelled;
* a window belongs to a stage when every instance of the stream whose request time falls in it comes
  from that stage; a window straddling a stage boundary is counted as ``boundary`` and left out of
  the per-stage drift fractions (with Poisson arrivals there is one such window per boundary);
* a window is flagged by a metric when the drift record of any feature says ``drift: true``;
* only windows overlapping the stream's request times count: the harness's warm-up requests (an hour
  before the stream) and end marker (after its last window) make windows of their own.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

PERCENTILES = (25, 50, 75, 90, 99)
QUALITY_STAGES = (1, 2, 4, 5)
NORMAL_STAGES = (1, 5)
DRIFT_STAGE = 3
LATE_REASON = "late"

Record = Mapping[str, object]


@dataclass(frozen=True)
class GroundTruth:
    """What was sent: one entry per request, in request-time order."""

    ids: np.ndarray  # str
    stage: np.ndarray  # int, 1..5
    outlier_feature: np.ndarray  # int, -1 or the index of the replaced feature
    time_ms: np.ndarray  # int64, request time
    features: tuple[str, ...]

    @classmethod
    def from_stream(cls, stream) -> "GroundTruth":
        """From a :class:`streams.iris.StagedStream`."""
        order = np.argsort(stream.time_ms, kind="stable")
        return cls(ids=np.asarray(stream.ids)[order].astype(str), stage=np.asarray(stream.stage)[order],
                   outlier_feature=np.asarray(stream.outlier_feature)[order],
                   time_ms=np.asarray(stream.time_ms, dtype=np.int64)[order],
                   features=tuple(stream.feature_names))

    def position(self) -> dict[str, int]:
        """Request id -> index in request-time order."""
        return {request_id: i for i, request_id in enumerate(self.ids.tolist())}

    def stage_of(self) -> dict[str, int]:
        return dict(zip(self.ids.tolist(), self.stage.tolist()))

    def injected(self) -> set[tuple[str, str]]:
        """The labelled outliers as (request_id, feature name) pairs."""
        rows = np.flatnonzero(self.outlier_feature >= 0)
        return {(str(self.ids[i]), self.features[int(self.outlier_feature[i])]) for i in rows}


@dataclass(frozen=True)
class Outputs:
    """The job's output records, as consumed from its four topics (or JSON-lines files)."""

    stats: Sequence[Record] = ()
    outliers: Sequence[Record] = ()
    drift: Sequence[Record] = ()
    dead_letter: Sequence[Record] = ()


@dataclass(frozen=True)
class WindowTiming:
    duration_ms: int
    watermark_delay_ms: int

    def floor_from_mid_s(self) -> float:
        return (self.duration_ms / 2 + self.watermark_delay_ms) / 1000

    def floor_from_end_s(self) -> float:
        return self.watermark_delay_ms / 1000


def summarize(seconds: Iterable[float]) -> Optional[dict]:
    """``{count, min, p25, p50, p75, p90, p99, max, mean}`` of a sample (numpy's linear percentiles);
    None for an empty sample, so a missing figure is visible as null rather than as 0."""
    values = np.asarray(list(seconds), dtype=float)
    if values.size == 0:
        return None
    summary = {"count": int(values.size), "min": float(values.min())}
    summary.update({f"p{q}": float(v) for q, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))})
    summary.update({"max": float(values.max()), "mean": float(values.mean())})
    return summary


def outlier_latencies_s(outliers: Iterable[Record], exclude_ids: frozenset = frozenset()) -> np.ndarray:
    return np.array([(r["detected_at"] - r["request_time"]) / 1000 for r in outliers
                     if r["request_id"] not in exclude_ids], dtype=float)


def window_latencies_s(records: Iterable[Record], reference: str) -> np.ndarray:
    """``emitted_at`` minus the window's mid-point (``reference="mid"``) or end (``"end"``), one per record."""
    if reference not in ("mid", "end"):
        raise ValueError(f"reference must be 'mid' or 'end', got {reference!r}")
    def anchor(r: Record) -> float:
        return (r["window_start"] + r["window_end"]) / 2 if reference == "mid" else r["window_end"]
    return np.array([(r["emitted_at"] - anchor(r)) / 1000 for r in records], dtype=float)


def _ratio(numerator: int, denominator: int) -> Optional[float]:
    return numerator / denominator if denominator else None


def outlier_quality(truth: GroundTruth, outliers: Iterable[Record]) -> dict:
    """Recall, precision (overall and per feature) and false alerts per 10,000 normal values on
    stages 1, 2, 4, 5; alerts for requests outside the stream (e.g. the end marker) are ignored."""
    outliers = list(outliers)
    stage_of = truth.stage_of()
    alerts = [(r["request_id"], r["feature"]) for r in outliers if stage_of.get(r["request_id"]) in QUALITY_STAGES]
    distinct = set(alerts)
    injected = {pair for pair in truth.injected() if stage_of[pair[0]] in QUALITY_STAGES}
    true_alerts, false_alerts = distinct & injected, distinct - injected
    scope = np.isin(truth.stage, QUALITY_STAGES)
    normal_values = int(scope.sum()) * len(truth.features) - len(injected)
    per_feature = {}
    for name in truth.features:
        hits = sum(1 for _, f in true_alerts if f == name)
        per_feature[name] = {
            "recall": _ratio(hits, sum(1 for _, f in injected if f == name)),
            "precision": _ratio(hits, sum(1 for _, f in distinct if f == name)),
        }
    return {
        "recall": _ratio(len(true_alerts), len(injected)),
        "precision": _ratio(len(true_alerts), len(distinct)),
        "per_feature": per_feature,
        "false_alerts_per_10k": 10_000 * len(false_alerts) / normal_values if normal_values else None,
        "injected": len(injected),
        "true_alerts": len(true_alerts),
        "false_alerts": len(false_alerts),
        "missed": sorted(f"{rid}/{f}" for rid, f in injected - distinct)[:20],
        "duplicate_alerts": len(alerts) - len(distinct),
        "drift_stage_alerts": sum(1 for r in outliers if stage_of.get(r["request_id"]) == DRIFT_STAGE),
    }


def window_stages(truth: GroundTruth, windows: Iterable[tuple[int, int]]) -> dict[tuple[int, int], Optional[int]]:
    """Map each ``(window_start, window_end)`` to the one stage all its instances come from; None
    for a window straddling a boundary or holding none of the stream's instances."""
    result = {}
    for start, end in set(windows):
        lo, hi = np.searchsorted(truth.time_ms, [start, end], side="left")
        stages = np.unique(truth.stage[lo:hi])
        result[(start, end)] = int(stages[0]) if stages.size == 1 else None
    return result


def drift_flags(truth: GroundTruth, drift: Iterable[Record]) -> dict:
    """Per stage and metric, the fraction of that stage's windows flagged (``drift_windows_flagged``),
    with the counts behind it and the number of boundary windows left out."""
    drift = list(drift)
    flagged: dict[tuple[int, int], dict[str, bool]] = defaultdict(dict)
    for r in drift:
        window = (r["window_start"], r["window_end"])
        flagged[window][r["metric"]] = flagged[window].get(r["metric"], False) or bool(r["drift"])
    stages = window_stages(truth, flagged)
    metrics = sorted({r["metric"] for r in drift})
    fractions: dict[str, dict[str, float]] = {}
    counts: dict[str, dict] = {}
    for stage in sorted({s for s in stages.values() if s is not None}):
        windows = [w for w, s in stages.items() if s == stage]
        hits = {m: sum(1 for w in windows if flagged[w].get(m, False)) for m in metrics}
        fractions[str(stage)] = {m: hits[m] / len(windows) for m in metrics}
        counts[str(stage)] = {"windows": len(windows), "flagged": hits}
    normal_windows = [w for w, s in stages.items() if s in NORMAL_STAGES]
    return {
        "drift_windows_flagged": fractions,
        "drift_window_counts": counts,
        "boundary_windows": sum(1 for s in stages.values() if s is None),
        "normal_stage_false_alarm_windows": {
            m: sum(1 for w in normal_windows if flagged[w].get(m, False)) for m in metrics},
    }


def mentions_any(dead_letter: Record, request_ids: frozenset) -> bool:
    """Whether a dead letter's raw payload holds one of ``request_ids`` as a JSON string."""
    raw = str(dead_letter.get("raw", ""))
    return any(f'"{request_id}"' in raw for request_id in request_ids)


def dead_letter_counts(dead_letter: Iterable[Record]) -> dict[str, int]:
    return dict(Counter(str(r["reason"]) for r in dead_letter))


def feature_records(stats: Iterable[Record]) -> list[Record]:
    """The per-feature stats records (covariance/correlation records carry ``features`` instead)."""
    return [r for r in stats if "feature" in r]


def processed_rate_over_time(stats: Iterable[Record]) -> list[dict]:
    """Instances per second per window, from the window counts of one feature (every feature of an
    instance is counted once in its window, so any one feature gives the instance count)."""
    records = feature_records(stats)
    if not records:
        return []
    first = min(r["feature"] for r in records)
    return [{"window_start": r["window_start"], "window_end": r["window_end"], "count": r["count"],
             "ips": r["count"] * 1000 / (r["window_end"] - r["window_start"])}
            for r in sorted(records, key=lambda r: r["window_start"]) if r["feature"] == first]


def in_stream(outputs: Outputs, truth: GroundTruth) -> Outputs:
    """The outputs with only the window records whose window overlaps the stream's request times."""
    first, last = int(truth.time_ms[0]), int(truth.time_ms[-1])
    def windows(records: Iterable[Record]) -> list[Record]:
        return [r for r in records if r["window_end"] > first and r["window_start"] <= last]
    return Outputs(stats=windows(outputs.stats), outliers=outputs.outliers, drift=windows(outputs.drift),
                   dead_letter=outputs.dead_letter)


def analyse(truth: GroundTruth, outputs: Outputs, timing: WindowTiming,
            exclude_ids: frozenset = frozenset()) -> dict:
    """Every figure derived from the job's outputs (the harness adds the sender's and the processes')."""
    outputs = in_stream(outputs, truth)
    dead = dead_letter_counts(r for r in outputs.dead_letter if not mentions_any(r, exclude_ids))
    figures = {
        "outlier_latency_s": summarize(outlier_latencies_s(outputs.outliers, exclude_ids)),
        "stats_latency_from_mid_s": summarize(window_latencies_s(outputs.stats, "mid")),
        "stats_latency_from_end_s": summarize(window_latencies_s(outputs.stats, "end")),
        "drift_latency_from_mid_s": summarize(window_latencies_s(outputs.drift, "mid")),
        "drift_latency_from_end_s": summarize(window_latencies_s(outputs.drift, "end")),
        "window_latency_floor_s": {"from_mid": timing.floor_from_mid_s(), "from_end": timing.floor_from_end_s()},
        "dead_letters": sum(dead.values()),
        "dead_letters_by_reason": dead,
        "late_events": dead.get(LATE_REASON, 0),
        "windows_emitted": len({(r["window_start"], r["window_end"]) for r in outputs.stats}),
        "instances_in_windows": sum(p["count"] for p in processed_rate_over_time(outputs.stats)),
    }
    quality = outlier_quality(truth, outputs.outliers)
    figures.update({"outlier_recall": quality["recall"], "outlier_precision": quality["precision"],
                    "false_alerts_per_10k": quality["false_alerts_per_10k"], "outlier_quality": quality})
    figures.update(drift_flags(truth, outputs.drift))
    return figures
