"""A run's output records, read back for the report: from an embedded run's folder (`from_directory`)
or from the Kafka output topics of a spec (`from_kafka`).

Only the fields the report uses are kept (a dead letter's raw record can be 64 KiB), as one pandas
frame per kind. The stats topic also carries the covariance records; they have no ``feature`` and
are left out. Performance records (`OPTIONAL`) exist only when the spec has ``ground_truth``: a folder without
their file, or an empty topic, gives an empty frame.
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import pandas as pd

from contract import outputs
from contract.spec import MonitorSpec

COLUMNS: dict[str, tuple[str, ...]] = {
    outputs.STATS: ("feature", "window_start", "window_end", "type", "count", "missing", "mean", "p25", "p50", "p75",
              "histogram", "version"),
    outputs.DRIFT: ("feature", "window_start", "window_end", "metric", "value", "threshold", "drift", "count", "version",
                    "p_value", "discovery"),
    outputs.OUTLIERS: ("feature", "request_time", "rule", "version"),
    outputs.DEAD_LETTER: ("reason",),
    outputs.PERFORMANCE: ("window_start", "window_end", "metric", "class", "value", "labelled", "predictions",
                          "coverage", "baseline", "alert", "final", "revision", "version"),
    outputs.COMPARISON: ("kind", "window_start", "window_end", "feature", "metric", "value", "threshold", "flagged",
                         "stable_count", "candidate_count", "stable", "candidate", "delta", "ci_low", "ci_high",
                         "verdict", "final"),
    outputs.MODEL_DRIFT: ("window_start", "window_end", "tests", "discoveries", "features", "drift", "p_value",
                          "version"),
    outputs.ALERTS: ("event", "scope", "feature", "metrics", "first_window", "last_window", "windows", "version"),
}
"""Output kind -> the fields the report reads."""

OPTIONAL = frozenset({outputs.PERFORMANCE, outputs.COMPARISON, outputs.MODEL_DRIFT, outputs.ALERTS})
"""Kinds a run writes only for some specs (performance: with ``ground_truth``, comparison: with two versions to
compare), or only since some version (the model's verdicts and the alert episodes); a folder without their files
loads."""

FILES = {kind: outputs.FILE_NAMES[kind] for kind in COLUMNS}


class OutputsError(Exception):
    """Outputs that cannot be read; the message says which and why."""


@dataclass(frozen=True)
class RunOutputs:
    """One frame per output kind (columns `COLUMNS`), the embedded run's summary.json when there is one,
    and where the records came from."""

    stats: pd.DataFrame
    drift: pd.DataFrame
    outliers: pd.DataFrame
    dead_letter: pd.DataFrame
    summary: Optional[dict]
    source: str
    since_ms: Optional[int] = None  # Kafka: only records written from then on were read
    performance: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(COLUMNS[outputs.PERFORMANCE])))
    """Realised performance, every revision of every (window, metric[, class]); empty without ground truth."""
    comparison: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(COLUMNS[outputs.COMPARISON])))
    """The candidate version compared with the stable one (drift and performance records); empty without
    ``versions.stable`` and ``versions.candidate``."""
    model_drift: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(COLUMNS[outputs.MODEL_DRIFT])))
    """The model's drift verdict per window; empty for a run from before false-discovery control."""
    alerts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(COLUMNS[outputs.ALERTS])))
    """The alert episodes' open, update and close events, in the order written; empty for an older run."""


def frames(records_by_kind: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, pd.DataFrame]:
    """Each kind's records as a frame of its `COLUMNS` (a missing field is None)."""
    result = {}
    for kind, columns in COLUMNS.items():
        rows = [tuple(record.get(name) for name in columns) for record in records_by_kind.get(kind, ())]
        result[kind] = pd.DataFrame(rows, columns=list(columns))
    result["stats"] = result["stats"][result["stats"]["feature"].notna()].reset_index(drop=True)
    result["drift"] = discoveries_as_flags(result["drift"])
    return result


def discoveries_as_flags(drift: pd.DataFrame) -> pd.DataFrame:
    """The drift records with ``drift`` meaning what the report flags: a record's ``discovery`` (its metric's
    p-value under the window's false-discovery control) where it has one, else its threshold's verdict (a fixed
    threshold has no p-value and is left out of the control; a run from before the control has no discovery).
    ``raw_drift`` keeps the threshold's verdict."""
    raw = drift["drift"].astype(object).where(drift["drift"].notna(), False).astype(bool)
    flags = drift["discovery"].astype(object).where(drift["discovery"].notna(), raw).astype(bool)
    return drift.assign(drift=flags, raw_drift=raw)


def _json_lines(path: Path) -> Iterable[dict]:
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    raise OutputsError(f"{path}:{number}: not JSON: {err}") from None


def from_directory(directory: Path) -> RunOutputs:
    """The outputs of an embedded run (`mmon run --output DIR`)."""
    missing = [name for kind, name in FILES.items() if kind not in OPTIONAL and not (directory / name).is_file()]
    if missing:
        raise OutputsError(f"{directory}: not the output folder of `mmon run` (no {', '.join(missing)})")
    by_kind = frames({kind: _json_lines(directory / name) for kind, name in FILES.items()
                      if (directory / name).is_file()})
    summary_path = directory / outputs.SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    return RunOutputs(**by_kind, summary=summary, source=str(directory))


def from_kafka(bootstrap: str, spec: MonitorSpec, since_ms: Optional[int], timeout_s: float) -> RunOutputs:
    """The records of the spec's output topics, those written at or after ``since_ms`` (epoch ms, the
    Kafka record timestamp) or all of them; read up to the end offsets found at the start."""
    topics = {kind: topic for kind, topic in outputs.topics_by_kind(spec.kafka.topics).items() if kind in COLUMNS}
    values = read_topics(bootstrap, set(topics.values()), since_ms, consumer_arguments(spec.kafka.properties), timeout_s)
    by_kind = frames({kind: (json.loads(value) for value in values[topic]) for kind, topic in topics.items()})
    source = f"Kafka {bootstrap}: {', '.join(sorted(set(topics.values())))}"
    return RunOutputs(**by_kind, summary=None, source=source, since_ms=since_ms)


def consumer_arguments(properties: Mapping[str, str]) -> dict[str, Any]:
    """KafkaConsumer keyword arguments from the spec's ``kafka.properties`` (Java or kafka-python names),
    through the logger's translation; producer-only settings are dropped."""
    from kafka import KafkaConsumer

    from contract.kafka_properties import PropertyError, producer_arguments

    try:
        arguments = producer_arguments(properties)
    except PropertyError as err:
        raise OutputsError(str(err)) from None
    return {name: value for name, value in arguments.items() if name in KafkaConsumer.DEFAULT_CONFIG}


def read_topics(bootstrap: str, topics: Iterable[str], since_ms: Optional[int], arguments: Mapping[str, Any],
                timeout_s: float) -> dict[str, list[bytes]]:
    """Topic -> the values of its records (every partition) from ``since_ms`` (or the beginning) to the
    end offsets at the start; raises `OutputsError` when that takes longer than ``timeout_s``."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    values: dict[str, list[bytes]] = defaultdict(list)
    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                 request_timeout_ms=int(timeout_s * 1000) + 1000, **arguments)
    except KafkaError as err:
        raise OutputsError(f"Kafka {bootstrap}: {err}") from None
    try:
        partitions = [TopicPartition(topic, p) for topic in sorted(topics)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        end = consumer.end_offsets(partitions)
        for partition, offset in _start_offsets(consumer, partitions, since_ms, end).items():
            consumer.seek(partition, offset)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(p) < end[p] for p in partitions):
            if time.monotonic() > deadline:
                raise OutputsError(f"Kafka {bootstrap}: the output topics were not read to their end in {timeout_s:g} s")
            for partition, records in consumer.poll(timeout_ms=500).items():
                values[partition.topic] += [r.value for r in records if r.offset < end[partition]]
    finally:
        consumer.close()
    return values


def _start_offsets(consumer, partitions: list, since_ms: Optional[int], end: Mapping) -> dict:
    if since_ms is None:
        return consumer.beginning_offsets(partitions)
    found = consumer.offsets_for_times({p: since_ms for p in partitions}) if partitions else {}
    return {p: found[p].offset if found.get(p) is not None else end[p] for p in partitions}


PER_VERSION = ("stats", "drift", "outliers", "performance", "model_drift", "alerts")
"""The `RunOutputs` frames whose records are each one model version's."""


def versions_in(run: RunOutputs) -> list[str]:
    """The model versions the run's window statistics hold, most instances first."""
    stats = run.stats.dropna(subset=["version"])
    return list(stats.groupby("version")["count"].sum().sort_values(ascending=False, kind="stable").index)


def of_version(run: RunOutputs, version: str) -> RunOutputs:
    """The run's records of one model version (dead letters and comparisons as they are)."""
    return dataclasses.replace(run, **{name: getattr(run, name)[getattr(run, name)["version"] == version]
                                       .reset_index(drop=True) for name in PER_VERSION})
