"""The monitor spec: one YAML document, loaded and validated once at start.

Every field is typed; a bad value fails fast with a :class:`ConfigError` whose
message starts with the dotted path of the field (``window.duration: ...``).
This module imports neither PyFlink nor the numeric core, so the deployment
glue (``operator_glue``) can use it to render and validate manifests.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import math
import os
import re
import typing
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Optional, Union, get_args, get_origin

import yaml

from contract import kafka_properties

INPUT_FORMATS = ("thesis", "kserve-v1", "oip-v2")
NUMERIC, CATEGORICAL = "numeric", "categorical"
FEATURE_TYPES = (NUMERIC, CATEGORICAL)
TIME_SOURCES = ("event", "kafka")
# Every drift metric name: the five histogram metrics, then the two-sample tests, then the opt-in chi2 and
# missing_rate. Kept here rather than imported from udfs.drift (the numeric core, which this module must
# not import); tests/test_job_config.py checks it equals udfs.drift.METRIC_NAMES.
HISTOGRAM_METRICS = ("wasserstein", "kl", "js", "psi", "hellinger")
TWO_SAMPLE_TESTS = ("ks", "cvm")
OUTLIER_RATE = "outlier_rate"  # the window's share of sigma outliers against the baseline's (needs outliers.sigma)
DRIFT_METRICS = HISTOGRAM_METRICS + TWO_SAMPLE_TESTS + ("chi2", "missing_rate", OUTLIER_RATE)
NUMERIC_ONLY_METRICS = ("wasserstein", *TWO_SAMPLE_TESTS, OUTLIER_RATE)  # they need an order of the values
STATISTICS = ("count", "mean", "stddev", "min", "max", "p25", "p50", "p75", "iqr", "histogram")
DELIVERY_GUARANTEES = ("at-least-once", "exactly-once")
# The realised-performance metrics of `ground_truth.metrics`, by the output's type: a categorical output's
# (f1 per class, f1_macro their mean, confusion the matrix) and a numeric output's (bias: mean of prediction - truth).
# Kept here rather than imported from udfs.performance (the numeric core), which checks its names against these.
GROUND_TRUTH_METRICS = {CATEGORICAL: ("accuracy", "precision", "recall", "f1", "f1_macro", "confusion"),
                        NUMERIC: ("mae", "rmse", "bias")}
DEFAULT_GROUND_TRUTH_METRICS = {CATEGORICAL: ("accuracy",), NUMERIC: ("mae",)}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1000}
DAY_MS = _UNIT_MS["d"]
MAX_DURATION_MS = 365 * DAY_MS
"""Every duration's ceiling (a year, `DURATION`): far inside a Java long of milliseconds, whatever is added to it."""
KAFKA_MAX_RECORD_BYTES = 1_048_588
"""Kafka's default largest record batch (the broker's ``message.max.bytes``): the default cap on an input record."""
MAX_PARALLELISM = 32_768
"""Flink's largest maximum parallelism (its key groups): no operator can run more subtasks."""


class ConfigError(ValueError):
    """A monitor spec that cannot be used; the message names the field."""


def number_text(value: float) -> str:
    """An int as it is, a float in its shortest form."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def duration_text(millis: float) -> str:
    """``millis`` in the largest unit `Duration.parse` reads that writes it whole (``100ms``, ``15s``, ``36h``, ``7d``)."""
    for unit in ("d", "h", "m", "s"):
        if millis and millis % _UNIT_MS[unit] == 0:
            return f"{int(millis // _UNIT_MS[unit])}{unit}"
    return f"{number_text(millis)}ms"


@dataclass(frozen=True)
class Range:
    """The values a number or duration field accepts, given as the field's ``range`` metadata and checked
    when the spec is read: from ``low`` to ``high``, each bound included unless ``open`` names it (``"low"``,
    ``"high"``, ``"both"``); ``why`` says where a bound comes from. Durations are in milliseconds."""
    low: Optional[float] = None
    high: Optional[float] = None
    open: str = ""
    why: str = ""

    def text(self, show: Callable[[float], str] = number_text) -> str:
        """``> 0ms and <= 24h``: the bounds, each written by ``show``."""
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.open in ('low', 'both') else '>='} {show(self.low)}")
        if self.high is not None:
            bounds.append(f"{'<' if self.open in ('high', 'both') else '<='} {show(self.high)}")
        return " and ".join(bounds) + (f" ({self.why})" if self.why else "")

    def check(self, value: Any, path: str, show: Callable[[float], str] = number_text) -> None:
        """Raise `ConfigError` naming ``path`` if the number ``value`` is outside (None and text pass)."""
        if value is None or isinstance(value, str):
            return
        low_open, high_open = self.open in ("low", "both"), self.open in ("high", "both")
        below = self.low is not None and (value <= self.low if low_open else value < self.low)
        above = self.high is not None and (value >= self.high if high_open else value > self.high)
        if below or above:
            raise ConfigError(f"{path}: must be {self.text(show)}, got {show(value)}")


POSITIVE = Range(0, open="low")
DURATION = Range(0, MAX_DURATION_MS)
"""A duration field's range unless it names its own (whose ``high`` is then at most a year too)."""


def field_range(f: dataclasses.Field, hint: Any) -> Optional[Range]:
    """The `Range` of field ``f`` of type ``hint``: its ``range`` metadata, else `DURATION` for a duration."""
    return f.metadata.get("range") or (DURATION if hint is Duration else None)


def field_doc(f: dataclasses.Field, hint: Any) -> str:
    """The ``doc`` of field ``f`` (of type ``hint``) with its `Range`: the config reference's and the CRD's text."""
    doc, bounds = f.metadata.get("doc", ""), field_range(f, hint)
    return doc if bounds is None else f"{doc} Allowed: {bounds.text(_shown(hint))}."


def _shown(hint: Any) -> Callable[[float], str]:
    """How a bound or value of a field of type ``hint`` is written in messages: a duration in its unit."""
    return duration_text if hint is Duration else number_text


class Duration(int):
    """Milliseconds, written in YAML as ``15s``, ``500ms``, ``1m``, ``2h``, ``7d`` or a number of seconds."""

    @classmethod
    def parse(cls, value: Any, path: str) -> "Duration":
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected a duration like '15s', got {value!r}")
        if isinstance(value, (int, float)):
            millis = value * 1000  # an int stays exact however large
        else:
            match = _DURATION.match(str(value))
            if not match:
                raise ConfigError(f"{path}: expected a duration like '15s' or '500ms', got {value!r}")
            millis = float(match.group(1)) * _UNIT_MS[match.group(2)]
        if (isinstance(millis, float) and not math.isfinite(millis)) or millis < 0 or millis != int(millis):
            raise ConfigError(f"{path}: must be a whole, non-negative number of milliseconds, got {value!r}")
        return cls(int(millis))


@dataclass(frozen=True)
class ModelSpec:
    name: str = field(metadata={"doc": "Model name; the key of every output record."})
    version: str = field(default="1", metadata={"doc": "Model version, carried into the outputs' metadata."})


@dataclass(frozen=True)
class FeatureSpec:
    name: str = field(metadata={"doc": "Feature name: the key of an instance object, the position's name in an instance list."})
    type: Literal["numeric", "categorical"] = field(
        default="numeric", metadata={"doc": "numeric (JSON numbers) or categorical (strings, or integers taken as their text)."})

    @classmethod
    def parse(cls, value: Any, path: str) -> "FeatureSpec":
        """A bare name (a numeric feature) or a mapping ``{name, type}``."""
        if isinstance(value, str):
            value = {"name": value}
        return _build(cls, value, path)


BASELINE_URL_SCHEMES = ("http", "https", "s3")
BASELINE_AUTHORIZATION_ENV = "MMON_BASELINE_AUTHORIZATION"
"""When set, its value is sent as the ``Authorization`` header of a baseline fetched over HTTP(S) (e.g.
``Bearer <token>``; on Kubernetes from a Secret: operator_glue/baseline_from.py), never to a redirect's target."""
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
"""An S3 bucket name (3-63 lowercase letters, digits, dots and hyphens, starting and ending alphanumeric)."""
URL_KINDS = "an http(s):// or s3:// URL"


class BaselineUrl(str):
    """A ``baseline`` given as an ``http://``, ``https://`` or ``s3://bucket/key`` URL: the job fetches it at
    start (an s3 one with the AWS credential chain: udfs/baseline.py)."""

    @staticmethod
    def location(value: Any, path: str) -> Union[Path, "BaselineUrl"]:
        """``value`` as a `BaselineUrl` when it names a URL scheme (``scheme://``), else as a file `Path`."""
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: expected a file path or {URL_KINDS}, got {value!r}")
        scheme, separator, _ = value.partition("://")
        if not separator:
            return Path(value)
        if scheme.lower() not in BASELINE_URL_SCHEMES:
            raise ConfigError(f"{path}: unsupported URL scheme {scheme!r} (use {URL_KINDS}, or a file path)")
        if scheme.lower() == "s3":
            BaselineUrl.s3_object(value, path)
        elif not urllib.parse.urlsplit(value).hostname:
            raise ConfigError(f"{path}: the URL {value!r} names no host")
        return BaselineUrl(value)

    @property
    def is_s3(self) -> bool:
        return self.partition("://")[0].lower() == "s3"

    @staticmethod
    def s3_object(value: str, path: str = "baseline") -> tuple[str, str]:
        """The (bucket, key) of an ``s3://bucket/key`` URL; a bad bucket name or no key raises `ConfigError`."""
        bucket, _, key = value.partition("://")[2].partition("/")
        if not S3_BUCKET.fullmatch(bucket):
            raise ConfigError(f"{path}: {value!r} names no valid S3 bucket (3-63 lowercase letters, digits, dots "
                              "and hyphens)")
        if not key or key.endswith("/"):
            raise ConfigError(f"{path}: {value!r} names no object key (s3://bucket/key)")
        return bucket, key


BaselineLocation = Union[Path, BaselineUrl]
"""Where the baseline is read from: a file or a URL (`BaselineUrl.location`)."""


@dataclass(frozen=True)
class InputSpec:
    features: tuple[FeatureSpec, ...] = field(metadata={
        "doc": "Features in the order of each instance list: a name (numeric) or {name, type: numeric | categorical}. "
               "Instances may also be objects keyed by these names; null or an absent key is a missing value."})
    format: Literal["thesis", "kserve-v1", "oip-v2"] = field(
        default="thesis", metadata={"doc": "Inference-log format: thesis logger message, KServe v1 body, or Open Inference Protocol v2."})
    time: Literal["event", "kafka"] = field(
        default="event", metadata={"doc": "Request time: the event's own time field, or the Kafka record timestamp."})
    max_record_bytes: int = field(
        default=KAFKA_MAX_RECORD_BYTES, metadata={
            "doc": "A record (a line of an input file, a Kafka message) longer than this many bytes is dead-lettered "
                   "too_large without being parsed, with its length and SHA-256 (default: Kafka's default largest "
                   "record, so that a file is held to what a topic would carry).",
            "range": Range(1024, 16 << 20, why="a parsed record takes many times its bytes of heap")})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features)

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features if feature.type == CATEGORICAL)


@dataclass(frozen=True)
class OutputSpec:
    name: str = field(default="prediction", metadata={"doc": "The predictions' column name in the outputs (and in the baseline's output)."})
    type: Literal["categorical", "numeric"] = field(
        default="categorical", metadata={"doc": "categorical (class labels) or numeric (scores, regressions)."})
    join_timeout: Duration = field(
        default=Duration(30_000), metadata={"doc": "How long (event time) a request waits for its response, and a response for its "
                                                   "request: then the request's predictions count as missing, the response is "
                                                   "dead-lettered unmatched_response.",
                                            "range": Range(0, DAY_MS, open="low")})


MAX_LABEL_DELAY_MS = 90 * DAY_MS
"""The longest `GroundTruthSpec.max_delay`: every prediction waits that long in the job's state for its label."""


@dataclass(frozen=True)
class GroundTruthSpec:
    max_delay: Duration = field(
        default=Duration(7 * DAY_MS), metadata={
            "doc": "How long (event time) a prediction waits for its label, and a label for its prediction: then the "
                   "prediction counts as unlabelled, the label is dead-lettered unmatched_label, and the window's "
                   "performance record is final.",
            "range": Range(0, MAX_LABEL_DELAY_MS, open="low", why="each waiting prediction is kept in state")})
    metrics: tuple[str, ...] = field(
        default=DEFAULT_GROUND_TRUTH_METRICS[CATEGORICAL], metadata={
            "doc": "Realised performance per window: a categorical output's accuracy, precision, recall, f1 (per "
                   "class), f1_macro, confusion; a numeric output's mae, rmse, bias (default for a numeric output: mae)."})
    false_alarm_rate: float = field(default=0.01, metadata={
        "doc": "Chance that a window whose model is as good as the baseline's is alerted.",
        "range": Range(0, 1, open="both")})
    update_interval: Duration = field(default=Duration(10_000), metadata={
        "doc": "A window's performance record is revised at most this often as its labels arrive.",
        "range": Range(0, DAY_MS, open="low")})


@dataclass(frozen=True)
class WindowSpec:
    duration: Duration = field(default=Duration(15_000), metadata={"doc": "Tumbling window length.",
                                                                    "range": Range(0, MAX_DURATION_MS, open="low")})
    watermark_delay: Duration = field(default=Duration(6_000), metadata={"doc": "Bounded out-of-orderness of request times."})
    allowed_lateness: Duration = field(default=Duration(0), metadata={"doc": "Extra time a window waits for late events."})
    idle_timeout: Duration = field(
        default=Duration(30_000), metadata={"doc": "A source partition silent this long stops holding the watermark back (0 = never)."})
    max_future_skew: Duration = field(
        default=Duration(300_000), metadata={"doc": "A request time further than this ahead of the wall clock (Kafka) or of the latest accepted request (a replayed file) is dead-lettered `future_time`; it never moves the watermark."})


@dataclass(frozen=True)
class StatsSpec:
    statistics: tuple[str, ...] = field(default=STATISTICS, metadata={"doc": "Per-feature window statistics to emit."})
    top_k: int = field(default=10, metadata={"doc": "Categorical features: the most frequent values listed per window.",
                                             "range": Range(1)})
    covariance: bool = field(default=False, metadata={"doc": "Also emit the sample covariance matrix per window (numeric features)."})
    correlation: bool = field(default=False, metadata={"doc": "Also emit the Pearson correlation matrix per window."})


@dataclass(frozen=True)
class OutlierSpec:
    sigma: Optional[float] = field(default=3.0, metadata={
        "doc": "Flag values further than sigma baseline std from the baseline mean (null = off).", "range": POSITIVE})
    range: bool = field(default=False, metadata={"doc": "Also flag values outside the baseline [min, max]."})
    unseen: bool = field(default=True, metadata={"doc": "Flag a categorical value that the baseline never saw (rule unseen)."})


@dataclass(frozen=True)
class DriftMetricSpec:
    threshold: Union[float, Literal["auto"]] = field(
        default="auto", metadata={"doc": "A number, or 'auto': calibrated per window size to false_alarm_rate (ks, cvm: "
                                         "the test's own two-sample null at the training-sample and window sizes).",
                                  "range": Range(0)})
    false_alarm_rate: float = field(default=0.01, metadata={"doc": "For threshold 'auto': chance a baseline-like window is flagged.",
                                                            "range": Range(0, 1, open="both")})
    normalize: bool = field(default=False, metadata={"doc": "Wasserstein only: divide by the baseline std (unit-free)."})


CONTROL_METHODS = ("bh", "by", "bonferroni", "none")
"""`ControlSpec.method`'s names (`udfs.discovery` implements them)."""


@dataclass(frozen=True)
class ControlSpec:
    method: Literal["bh", "by", "bonferroni", "none"] = field(default="bh", metadata={
        "doc": "How a window's drift tests are controlled together: bh (Benjamini-Hochberg: the expected share of "
               "false discoveries among a window's discoveries at most q), by (Benjamini-Yekutieli: the same under any "
               "dependence, less power), bonferroni (the chance of any false discovery in a window at most q), none "
               "(each test at its own threshold: discovery is drift). The model's verdict per window is a false alarm "
               "on a window without drift with chance at most q (none: not controlled)."})
    q: float = field(default=0.05, metadata={"doc": "The control's level (bh, by: false discovery rate; bonferroni: "
                                                    "family-wise error rate; the model verdict's false-alarm rate).",
                                             "range": Range(0, 1, open="both")})


@dataclass(frozen=True)
class DriftSpec:
    metrics: Mapping[str, DriftMetricSpec] = field(
        default_factory=lambda: {name: DriftMetricSpec() for name in HISTOGRAM_METRICS},
        metadata={"doc": "Drift metrics by name: the histogram metrics wasserstein, kl, js, psi, hellinger (the "
                         "default set), and on request the two-sample tests ks (Kolmogorov-Smirnov) and cvm "
                         "(Cramer-von Mises) of the window's values against the baseline's training sample "
                         "(their cost grows with that sample: ~0.2 ms per feature and window on Iris, ~7 ms "
                         "at 10,000 values), and chi2 (Pearson's statistic of the window's histogram against "
                         "the baseline frequencies), and missing_rate (the window's share of missing values against the baseline's, "
                         "every feature), and outlier_rate (the window's share of values beyond outliers.sigma "
                         "baseline std from the baseline mean against the training sample's share: a feature whose tails "
                         "changed, one test per window instead of an alert per value). wasserstein, ks, cvm and "
                         "outlier_rate need ordered values: a spec with a categorical column "
                         "(feature or output) refuses them, and its default set is kl, js, psi, hellinger."})
    emit_all: bool = field(default=False, metadata={"doc": "Emit every drift value, not only those over the threshold "
                                                           "or discovered (drift.control)."})
    control: ControlSpec = field(default_factory=ControlSpec, metadata={
        "doc": "Control across the tests (features x metrics with threshold auto) of each window."})


@dataclass(frozen=True)
class EpisodeOpenSpec:
    k: int = field(default=2, metadata={"doc": "An episode opens when its feature (or the model) is discovered in k of "
                                               "its last m windows (k <= m).", "range": Range(1)})
    m: int = field(default=3, metadata={"doc": "The windows looked back on for k (the current one included).",
                                        "range": Range(1, 1000)})


@dataclass(frozen=True)
class AlertsSpec:
    open: EpisodeOpenSpec = field(default_factory=EpisodeOpenSpec, metadata={"doc": "When an alert episode opens."})
    close: int = field(default=3, metadata={"doc": "An open episode closes after this many windows in a row without a "
                                                   "discovery (a window without traffic counts as one).",
                                            "range": Range(1, 1000)})


@dataclass(frozen=True)
class TopicsSpec:
    inference: str = field(default="inference", metadata={"doc": "Topic the inference logger writes to."})
    labels: Optional[str] = field(default=None, metadata={
        "doc": "Topic of the label messages (ground_truth; null: they travel the inference topic)."})
    stats: str = field(default="stats", metadata={"doc": "Window statistics output topic."})
    outliers: str = field(default="outliers", metadata={"doc": "Per-instance outlier alerts topic."})
    drift: str = field(default="drift", metadata={"doc": "Drift records topic."})
    dead_letter: str = field(default="dead-letter", metadata={"doc": "Malformed and late records, with the reason."})
    performance: str = field(default="performance", metadata={"doc": "Realised performance records (ground_truth)."})
    comparison: str = field(default="comparison", metadata={
        "doc": "The candidate version compared with the stable one (versions.stable and versions.candidate)."})
    model_drift: str = field(default="model-drift", metadata={"doc": "The model's drift verdict per window."})
    alerts: str = field(default="alerts", metadata={"doc": "Alert episodes: open, update and close events."})


@dataclass(frozen=True)
class KafkaSpec:
    bootstrap_servers: str = field(default="127.0.0.1:9092", metadata={"doc": "Comma-separated host:port list."})
    group_id: str = field(default="mmon", metadata={"doc": "Consumer group of the job."})
    topics: TopicsSpec = field(default_factory=TopicsSpec, metadata={"doc": "Topic names."})
    properties: Mapping[str, str] = field(
        default_factory=dict, metadata={"doc": "Extra Kafka client properties passed through (SASL, SSL, ...)."})


@dataclass(frozen=True)
class JobSpec:
    parallelism: int = field(default=1, metadata={"doc": "Flink parallelism.",
                                                  "range": Range(1, MAX_PARALLELISM, why="Flink's largest")})
    checkpoint_interval: Duration = field(default=Duration(10_000), metadata={"doc": "Checkpoint interval (Kafka mode).",
                                                                              "range": Range(100, MAX_DURATION_MS)})
    delivery_guarantee: Literal["at-least-once", "exactly-once"] = field(
        default="at-least-once", metadata={"doc": "Kafka sink delivery guarantee."})
    metrics_port: int = field(default=9249, metadata={"doc": "Port of Flink's Prometheus reporter (0 = off).",
                                                      "range": Range(0, 65535)})
    shards: int = field(default=0, metadata={"doc": "Window state split into this many blocks of features, each its own key (0 = the parallelism).",
                                             "range": Range(0, MAX_PARALLELISM)})
    dead_letter_max_raw_bytes: int = field(
        default=65_536, metadata={"doc": "A dead letter keeps at most this many bytes of the raw record (plus its length and SHA-256).",
                                  "range": Range(1024, 262_144, why="a dead letter must fit a Kafka record")})


DEFAULT_VERSION_ATTRIBUTE = "endpoint"
"""The CloudEvent attribute that names a kserve-v1 message's model version (KServe's logger: default or canary)."""
MAX_VERSIONS = 64
"""The most model versions `VersionsSpec.max` allows: every result (windows, drift, joins) is kept per version."""


@dataclass(frozen=True)
class VersionsSpec:
    max: int = field(default=4, metadata={
        "doc": "At most this many distinct model versions are monitored, each with its own windows, drift, outliers "
               "and performance; a record of a further version is dead-lettered too_many_versions. A message's "
               "version: thesis the top-level \"version\", kserve-v1 the CloudEvent attribute `cloudevent_attribute`, "
               "oip-v2 `model_version`; absent: model.version.",
        "range": Range(1, MAX_VERSIONS, why="each version keeps its own window state")})
    cloudevent_attribute: str = field(default=DEFAULT_VERSION_ATTRIBUTE, metadata={
        "doc": "kserve-v1: the CloudEvent attribute that names a message's version (KServe's logger sets `endpoint` "
               "to default or canary; `component` or `inferenceservicename` also work, or any extension attribute "
               "your logger sets)."})
    stable: Optional[str] = field(default=None, metadata={
        "doc": "The stable version the candidate is compared with, window by window (with candidate; null: no "
               "comparison)."})
    candidate: Optional[str] = field(default=None, metadata={
        "doc": "The candidate (canary) version compared with the stable one (with stable)."})
    min_count: int = field(default=30, metadata={
        "doc": "A window is compared only when both versions have at least this many instances in it.",
        "range": Range(1)})


def _check_versions(versions: "VersionsSpec") -> None:
    """``stable`` and ``candidate`` come together and name two versions."""
    if (versions.stable is None) != (versions.candidate is None):
        given, missing = ("stable", "candidate") if versions.candidate is None else ("candidate", "stable")
        raise ConfigError(f"versions.{missing}: required with versions.{given} (the two versions compared)")
    if versions.stable is not None and versions.stable == versions.candidate:
        raise ConfigError(f"versions.candidate: must differ from versions.stable, both are {versions.stable!r}")
    if versions.stable is not None and versions.max < 2:
        raise ConfigError(f"versions.max: must be at least 2 to compare {versions.stable!r} with "
                          f"{versions.candidate!r}, got {versions.max}")


def shard_count(spec: "MonitorSpec") -> int:
    """The number of column blocks the window state is split into (never more than the columns)."""
    return min(spec.job.shards or spec.job.parallelism, len(spec.columns))


@dataclass(frozen=True)
class MonitorSpec:
    model: ModelSpec = field(metadata={"doc": "The monitored model."})
    input: InputSpec = field(metadata={"doc": "What the inference log looks like."})
    baseline: BaselineLocation = field(metadata={
        "doc": "Baseline JSON from `mmon baseline`: a file path, relative to the spec file, or an http:// or https:// "
               f"URL fetched at start (with ${BASELINE_AUTHORIZATION_ENV}, when set, as its Authorization header), "
               "or an s3://bucket/key URL read with the AWS credential chain (AWS_ACCESS_KEY_ID, "
               "AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3, IRSA, an instance profile)."})
    baseline_sha256: Optional[str] = field(default=None, metadata={
        "doc": "The baseline's SHA-256 (64 hex digits, as sha256sum prints it): a baseline whose content differs is "
               "refused at start (null = not checked)."})
    output: Optional[OutputSpec] = field(
        default=None, metadata={"doc": "The model's responses: joined to their requests by id, their predictions monitored as "
                                       "one more column (null: responses are not read; they are dead-lettered not_request, an OIP v2 "
                                       "response bad_envelope)."})
    ground_truth: Optional[GroundTruthSpec] = field(
        default=None, metadata={"doc": "Labels (the true outputs, known late): joined to their predictions by request id, "
                                       "the model's realised performance per window, alerted when worse than the "
                                       "baseline's. Needs output (null: label messages are dead-lettered not_request)."})
    window: WindowSpec = field(default_factory=WindowSpec, metadata={"doc": "Event-time windowing."})
    stats: StatsSpec = field(default_factory=StatsSpec, metadata={"doc": "Window statistics."})
    outliers: OutlierSpec = field(default_factory=OutlierSpec, metadata={"doc": "Per-instance outlier rules."})
    drift: DriftSpec = field(default_factory=DriftSpec, metadata={"doc": "Window drift against the baseline."})
    alerts: AlertsSpec = field(default_factory=AlertsSpec, metadata={"doc": "Alert episodes from the drift discoveries."})
    kafka: KafkaSpec = field(default_factory=KafkaSpec, metadata={"doc": "Kafka connection and topics."})
    job: JobSpec = field(default_factory=JobSpec, metadata={"doc": "Flink job settings."})
    versions: VersionsSpec = field(default_factory=VersionsSpec, metadata={
        "doc": "Model versions served side by side (canary, A/B): every result is kept per version."})

    @property
    def columns(self) -> tuple[str, ...]:
        """The monitored columns: the features, then the output when there is one."""
        return self.input.names + ((self.output.name,) if self.output else ())

    @property
    def column_types(self) -> tuple[str, ...]:
        """`columns`' types."""
        return tuple(f.type for f in self.input.features) + ((self.output.type,) if self.output else ())


def load_spec(path: Union[str, Path]) -> MonitorSpec:
    """Read and validate a monitor spec; a relative ``baseline`` resolves against the spec's folder."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read monitor spec {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    spec = with_env_kafka_properties(parse_spec(document))
    if isinstance(spec.baseline, Path) and not spec.baseline.is_absolute():
        spec = dataclasses.replace(spec, baseline=(path.parent / spec.baseline).resolve())
    return spec


def with_env_kafka_properties(spec: MonitorSpec, environ: Mapping[str, str] = os.environ) -> MonitorSpec:
    """The spec with the Kafka client properties of the environment (`kafka_properties.ENV_VAR`, a JSON
    object) merged over ``kafka.properties``: on Kubernetes they come from a Secret, so credentials never
    sit in the spec's ConfigMap (operator_glue/manifests.py)."""
    try:
        extra = kafka_properties.from_environment(environ)
    except kafka_properties.PropertyError as err:
        raise ConfigError(str(err)) from None
    if not extra:
        return spec
    merged = {**spec.kafka.properties, **extra}
    return dataclasses.replace(spec, kafka=dataclasses.replace(spec.kafka, properties=merged))


def parse_spec(document: Any) -> MonitorSpec:
    """Validate a spec already parsed from YAML/JSON (also used for the ModelMonitor CRD's spec)."""
    spec = _build(MonitorSpec, document, "")
    if CATEGORICAL in spec.column_types and "metrics" not in ((document or {}).get("drift") or {}):
        categorical_metrics = {name: DriftMetricSpec() for name in HISTOGRAM_METRICS if name not in NUMERIC_ONLY_METRICS}
        spec = dataclasses.replace(spec, drift=dataclasses.replace(spec.drift, metrics=categorical_metrics))
    spec = _default_ground_truth_metrics(spec, document)
    _check_semantics(spec)
    return spec


def _default_ground_truth_metrics(spec: MonitorSpec, document: Any) -> MonitorSpec:
    """A numeric output's default `ground_truth.metrics` (the field's own default is a categorical output's)."""
    if spec.ground_truth is None or spec.output is None or "metrics" in (document["ground_truth"] or {}):
        return spec
    metrics = DEFAULT_GROUND_TRUTH_METRICS[spec.output.type]
    return dataclasses.replace(spec, ground_truth=dataclasses.replace(spec.ground_truth, metrics=metrics))


def spec_to_dict(spec: Any) -> Any:
    """The inverse of :func:`parse_spec`: plain YAML-able data (durations as '<n>ms')."""
    if dataclasses.is_dataclass(spec):
        return {f.name: spec_to_dict(getattr(spec, f.name)) for f in dataclasses.fields(spec)}
    if isinstance(spec, Duration):
        return f"{int(spec)}ms"
    if isinstance(spec, Mapping):
        return {key: spec_to_dict(value) for key, value in spec.items()}
    if isinstance(spec, tuple):
        return [spec_to_dict(value) for value in spec]
    if isinstance(spec, (Path, BaselineUrl)):
        return str(spec)
    return spec


def _check_semantics(spec: MonitorSpec) -> None:
    if not spec.input.features:
        raise ConfigError("input.features: at least one feature is required")
    if len(set(spec.columns)) != len(spec.columns):
        where = "output.name" if spec.output and spec.output.name in spec.input.names else "input.features"
        raise ConfigError(f"{where}: names must be unique, got {list(spec.columns)}")
    for name in spec.stats.statistics:
        if name not in STATISTICS:
            raise ConfigError(f"stats.statistics: unknown statistic {name!r} (known: {', '.join(STATISTICS)})")
    for name, metric in spec.drift.metrics.items():
        if name not in DRIFT_METRICS:
            raise ConfigError(f"drift.metrics.{name}: unknown metric (known: {', '.join(DRIFT_METRICS)})")
        if name in NUMERIC_ONLY_METRICS and CATEGORICAL in spec.column_types:
            column = spec.columns[spec.column_types.index(CATEGORICAL)]
            raise ConfigError(f"drift.metrics.{name}: applies to numeric features only, and {column!r} is categorical "
                              "(use js, psi, hellinger, kl or chi2 for categorical features)")
    if OUTLIER_RATE in spec.drift.metrics and spec.outliers.sigma is None:
        raise ConfigError(f"drift.metrics.{OUTLIER_RATE}: needs outliers.sigma (the bounds it counts values beyond)")
    if spec.ground_truth is not None:
        _check_ground_truth(spec.ground_truth, spec.output)
    _check_versions(spec.versions)
    if spec.alerts.open.k > spec.alerts.open.m:
        raise ConfigError(f"alerts.open.k: must be at most alerts.open.m ({spec.alerts.open.m}), got {spec.alerts.open.k}")
    if spec.baseline_sha256 is not None and not SHA256_HEX.fullmatch(spec.baseline_sha256):
        raise ConfigError(f"baseline_sha256: expected 64 hexadecimal digits (as sha256sum prints them), got "
                          f"{spec.baseline_sha256!r}")


def _check_ground_truth(ground_truth: GroundTruthSpec, output: Optional[OutputSpec]) -> None:
    """Labels are the output's true values: they need an output, and metrics of its type, each once."""
    if output is None:
        raise ConfigError("ground_truth: needs an output section (the predictions the labels are compared with)")
    allowed = GROUND_TRUTH_METRICS[output.type]
    if not ground_truth.metrics:
        raise ConfigError(f"ground_truth.metrics: at least one metric is required (for a {output.type} output: "
                          f"{', '.join(allowed)})")
    for i, name in enumerate(ground_truth.metrics):
        if name not in allowed:
            other = NUMERIC if output.type == CATEGORICAL else CATEGORICAL
            why = (f"{name!r} applies to a {other} output, and output {output.name!r} is {output.type}"
                   if name in GROUND_TRUTH_METRICS[other] else f"unknown metric {name!r}")
            raise ConfigError(f"ground_truth.metrics[{i}]: {why} (for a {output.type} output: {', '.join(allowed)})")
        if name in ground_truth.metrics[:i]:
            raise ConfigError(f"ground_truth.metrics[{i}]: {name!r} is listed twice")


def _build(cls: type, data: Any, path: str) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and missing required ones."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'spec'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{_join(path, str(unknown[0]))}: unknown field (known: {', '.join(known)})")
    values = {}
    for name, f in known.items():
        field_path = _join(path, name)
        if name in data:
            values[name] = _convert(hints[name], data[name], field_path)
            bounds = field_range(f, hints[name])
            if bounds is not None:
                bounds.check(values[name], field_path, _shown(hints[name]))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{field_path}: required field is missing")
    return cls(**values)


def _convert(hint: Any, value: Any, path: str) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if hint is FeatureSpec:
        return FeatureSpec.parse(value, path)
    if hint == BaselineLocation:
        return BaselineUrl.location(value, path)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    if hint is Duration:
        return Duration.parse(value, path)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: must be one of {', '.join(map(str, args))}; got {value!r}")
        return value
    if origin is Union:
        return _convert_union(args, value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return tuple(_convert(args[0], item, f"{path}[{i}]") for i, item in enumerate(value))
    if origin in (collections.abc.Mapping, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return {str(key): _convert(args[1], item, _join(path, str(key))) for key, item in value.items()}
    return _scalar(hint, value, path)


def _convert_union(args: tuple, value: Any, path: str) -> Any:
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    if len(options) == 1:  # Optional[X]: X's own error, with its own path (a section's field)
        return _convert(options[0], value, path)
    errors = []
    for option in options:
        try:
            return _convert(option, value, path)
        except ConfigError as err:
            errors.append(str(err).split(": ", 1)[-1])
    raise ConfigError(f"{path}: {' or '.join(errors)}")


def _scalar(hint: type, value: Any, path: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: must be a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or value == "":
            raise ConfigError(f"{path}: expected a non-empty string, got {value!r}")
        return str(value)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: expected a file path, got {value!r}")
        return Path(value)
    raise TypeError(f"unsupported config type {hint!r} at {path}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
