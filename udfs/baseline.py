"""The baseline: per-feature training statistics that windows are compared with, numeric or categorical,
and optionally the same for the model's output (its predictions).

Saved as versioned JSON::

    {"format": "mmon-baseline", "version": 4, "source": "...",
     "features": {
        "<numeric>": {"type": "numeric", "count": 120, "missing": 2, "missing_rate": 0.0164,
                      "mean": ..., "std": ..., "min": ..., "max": ..., "p25": ..., "p50": ..., "p75": ...,
                      "binning": "quantile", "edges": {"dtype": "float64", "data": "<k + 1 floats>"},
                      "counts": [k numbers], "sample": {"dtype": "float32", "data": "<sorted floats>"}},
        "<categorical>": {"type": "categorical", "count": 120, "missing": 0, "missing_rate": 0.0,
                          "distinct": 60, "singletons": 9, "categories": ["a", ...], "counts": [40, ...],
                          "other": 11, "other_values": ["x", ...], "other_unnamed": 0}},
     "output": {"name": "prediction", "type": ..., ...the fields of its type...},
     "performance": {"type": "categorical", "target": "species", "labelled": 258, "unscored": 0,
                     "classes": [...], "accuracy": ..., "precision": {...}, "recall": {...}, "f1": {...},
                     "f1_macro": ..., "confusion": [[...], ...]}}

``count`` is the number of present values and ``missing`` of missing ones (an empty or ``NA`` cell, or
NaN); ``missing_rate = missing / (count + missing)`` is written for readers and derived again on load.
``output`` is absent when the baseline has none. ``performance`` is the model's realised performance on
the baseline rows (`udfs.performance`): present only when ``mmon baseline --target COL`` named the label
column (the truth, the output column being the model's prediction), absent otherwise, so older version 3
files read as baselines without one. A categorical output stores the confusion matrix (rows labels,
columns predictions; every classification metric and its alert test are functions of it), a numeric
output ``{"type": "numeric", "target", "labelled", "unscored", "mae", "rmse", "bias", "sums": [r, |r|,
r^2], "residuals": [sorted]}``, the residuals ``r = prediction - label`` kept like a feature's ``sample``
(all up to :data:`MAX_SAMPLE`, else a seeded subsample). The metric values are written for readers and
derived again on load. Version 3 files (the same, but ``edges`` and ``sample`` JSON lists of numbers)
still load; version 2 files (no ``type``, no ``missing``, no ``output``) too, every feature numeric with
nothing missing; version 1 files (no sample, no binning) are refused with the command that regenerates them.

Numeric features (`FeatureBaseline`): ``std`` is the sample standard deviation (ddof=1); percentiles are
``numpy.percentile`` (linear). ``counts`` are the ``k`` inner bins; :meth:`FeatureBaseline.histogram_counts`
gives the drift layout ``[underflow, bin_1..bin_k, overflow]``. ``binning`` says how the edges were
chosen: ``quantile`` (default: equal-frequency edges at training values, :func:`udfs.histogram.quantile_edges`,
with :func:`udfs.histogram.default_bin_count` bins unless given) or ``equal-width`` (over ``[min, max]``,
:func:`udfs.histogram.equal_width_edges`). Either way the last edge sits one ulp above ``max``, so the
training maximum counts in the last bin and the baseline's underflow and overflow are 0. ``sample`` is the
sorted training column itself up to :data:`MAX_SAMPLE` values, else a seeded subsample of
:data:`MAX_SAMPLE` of them without replacement: the empirical CDF that ``threshold: auto``
(:mod:`udfs.calibration`) and the two-sample tests (:mod:`udfs.two_sample`) work from. A thesis-format
import has no raw values; its sample is the histogram's interpolated quantiles at ``(i + 1/2) / count``.

The sample and the edges are stored in binary (`encode_array`, exact), each column on one line: as a JSON
list a 2,000-value sample took 28 kB, more than everything else of its feature, and a 1,000-feature baseline
28 MB, past what a Kubernetes ConfigMap holds. Its ``dtype`` (``sample_dtype``) is chosen when the baseline
is built (`kept_precision`): a continuous feature (no training value repeats, and float32 keeps them
distinct) keeps its values at float32, 7 significant digits (a relative 6e-8, far below any bin or drift the
job resolves): every statistic, edge and the sample are of these rounded values, so a saved and a loaded
baseline are the same. A feature with ties (a discrete one, whose window values meet training values
exactly, which the two-sample tests and the edges between training values rely on) stays float64, as does
any feature built with ``sample_dtype="float64"`` (``mmon baseline --sample-dtype float64``). Encoded, the
float32 sample takes about 5.4 kB and a 1,000-feature baseline about 7 MB (`udfs.baseline_cli` reports it).

Categorical features (`CategoricalBaseline`): the ``max_categories`` (default :data:`MAX_CATEGORIES`)
most frequent values are the ``categories``, ties by value (string order), with their ``counts``; the
rest are lumped into ``other`` (their total count), so a high-cardinality feature keeps a bounded
baseline. A window must still tell a lumped training value (slot ``other``) from a value never seen in
training (slot ``unseen``), so the lumped values are named in ``other_values``, most frequent first, up to
:data:`MAX_OTHER_VALUES`; past that bound the rest are forgotten, a window counts them as unseen, and
``other_unnamed`` records their training count, which the baseline's own histogram puts in its
``unseen`` slot. Its drift layout (:meth:`CategoricalBaseline.histogram_counts`) is therefore
``[c_1..c_K, other - other_unnamed, other_unnamed]``: the baseline's unseen is 0 unless the training set
has more than ``max_categories + MAX_OTHER_VALUES`` distinct values. ``singletons`` (training values seen
once) gives the calibration the Good-Turing chance of a new value.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import urllib.error
import urllib.request
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from contract.spec import (  # noqa: F401 (the types re-exported to the core's users)
    BASELINE_AUTHORIZATION_ENV,
    CATEGORICAL,
    FEATURE_TYPES,
    NUMERIC,
    BaselineUrl,
    ConfigError,
)

from udfs.categorical import CategoryLayout, by_count, value_counts
from udfs.histogram import default_bin_count, equal_width_edges, interpolated_quantiles, layout_counts, quantile_edges
from udfs.performance import BASELINE_TYPES, PerformanceBaseline
from udfs.stats import PERCENTILES

FORMAT = "mmon-baseline"
VERSION = 4
READABLE_VERSIONS = (2, 3, VERSION)
MAX_SAMPLE = 10_000
SAMPLE_SEED = 20_26_1202
MAX_CATEGORIES = 50
MAX_OTHER_VALUES = 10_000
MISSING_CELLS = ("", "NA")
FETCH_TIMEOUT_S = 30.0
SAMPLE_DTYPES = ("auto", "float32", "float64")
"""``sample_dtype`` choices of :meth:`FeatureBaseline.from_values` (module docstring)."""


def _equal_width_over_range(values: np.ndarray, bins: int) -> np.ndarray:
    return equal_width_edges(values.min(), values.max(), bins)


BINNINGS = {"quantile": quantile_edges, "equal-width": _equal_width_over_range}
"""Edge rules by ``binning`` name: ``(values, bins) -> edges``."""


class BaselineError(ValueError):
    """A baseline that cannot be built or read; the message says why."""


class ChecksumError(BaselineError):
    """A baseline whose content is not the one its ``baseline_sha256`` pins."""


class _Missing:
    """The missing rate of a feature baseline with ``count`` present and ``missing`` missing values."""

    count: int
    missing: int

    @property
    def missing_rate(self) -> float:
        return self.missing / (self.count + self.missing)


@dataclass(frozen=True, eq=False)
class FeatureBaseline(_Missing):
    """Training statistics of one numeric feature (over its ``count`` present values)."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    p25: float
    p50: float
    p75: float
    edges: np.ndarray
    counts: np.ndarray
    sample: np.ndarray
    binning: str = "quantile"
    missing: int = 0
    sample_dtype: str = "float64"
    type: ClassVar[str] = NUMERIC

    @classmethod
    def from_values(cls, values: np.ndarray, bins: Optional[int] = None, binning: str = "quantile",
                    sample_dtype: str = "auto") -> "FeatureBaseline":
        """Statistics of ``values``, NaN being missing; ``bins=None`` takes :func:`udfs.histogram.default_bin_count`;
        ``sample_dtype`` (one of :data:`SAMPLE_DTYPES`) the precision the values are kept at (module docstring)."""
        values = np.asarray(values, dtype=float).ravel()
        missing = np.isnan(values)
        values = values[~missing]
        if len(values) < 2:
            raise BaselineError(f"need at least 2 present values, got {len(values)}")
        if not np.isfinite(values).all():
            raise BaselineError("holds infinite values")
        if binning not in BINNINGS:
            raise BaselineError(f"unknown binning {binning!r} (known: {', '.join(BINNINGS)})")
        sample_dtype = kept_precision(values, sample_dtype)
        values = values.astype(sample_dtype).astype(float)
        edges = BINNINGS[binning](values, bins or default_bin_count(len(values)))
        p25, p50, p75 = np.percentile(values, [25, 50, 75])
        return cls(count=len(values), mean=float(values.mean()), std=float(values.std(ddof=1)),
                   min=float(values.min()), max=float(values.max()), p25=float(p25), p50=float(p50),
                   p75=float(p75), edges=edges, counts=layout_counts(values, edges)[1:-1],
                   sample=training_sample(values), binning=binning, missing=int(missing.sum()),
                   sample_dtype=sample_dtype)

    def histogram_counts(self) -> np.ndarray:
        """The histogram in the drift layout ``[0, bin_1..bin_k, 0]`` (length ``len(edges) + 1``)."""
        return np.concatenate([[0], self.counts, [0]])

    def to_dict(self, arrays: Optional[Callable[[np.ndarray, str], Any]] = None) -> dict:
        """The JSON entry; ``arrays(values, dtype)`` writes the edges and the sample (default `encode_array`)."""
        arrays = arrays or encode_array
        return {
            "type": self.type, "count": self.count, "missing": self.missing, "missing_rate": self.missing_rate,
            "mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
            "p25": self.p25, "p50": self.p50, "p75": self.p75,
            "binning": self.binning, "edges": arrays(self.edges, "float64"),
            "counts": [_plain_number(c) for c in self.counts], "sample": arrays(self.sample, self.sample_dtype),
        }

    @classmethod
    def from_dict(cls, data: Mapping, where: str) -> "FeatureBaseline":
        """A version 4 ``numeric`` entry (its sample encoded, `decode_sample`), a version 3 one (the sample a
        list of numbers), or a version 2 feature (no ``missing``: 0)."""
        with _fields_of(where):
            fields = {name: float(data[name]) for name in ("mean", "std", "min", "max", "p25", "p50", "p75")}
            edges, _ = _array_of(data["edges"])
            counts = np.asarray(data["counts"], dtype=float)
            sample, sample_dtype = _array_of(data["sample"])
            count, binning, missing = int(data["count"]), str(data["binning"]), int(data.get("missing", 0))
        _check_histogram(edges, counts, where)
        _check_sample(sample, where)
        return cls(count=count, edges=edges, counts=counts, sample=sample, binning=binning, missing=missing,
                   sample_dtype=sample_dtype, **fields)


@dataclass(frozen=True, eq=False)
class CategoricalBaseline(_Missing):
    """Training frequencies of one categorical feature (module docstring): ``count`` present values in
    ``categories`` (with ``counts``) and ``other`` (``other_values`` named, ``other_unnamed`` not)."""

    count: int
    missing: int
    categories: tuple[str, ...]
    counts: np.ndarray
    other: int
    other_values: tuple[str, ...]
    other_unnamed: int
    distinct: int
    singletons: int
    type: ClassVar[str] = CATEGORICAL

    @classmethod
    def from_values(cls, values: Iterable[Optional[str]], max_categories: int = MAX_CATEGORIES) -> "CategoricalBaseline":
        """Frequencies of ``values`` (strings; None or NaN is missing)."""
        if max_categories < 1:
            raise BaselineError(f"max_categories must be at least 1, got {max_categories}")
        codes, dictionary = pd.factorize(np.asarray(list(values), dtype=object))
        names, counts, missing = value_counts(dictionary, codes)
        if counts.sum() < 2:
            raise BaselineError(f"need at least 2 present values, got {counts.sum()}")
        order = by_count(names, counts)
        names, counts = names[order], counts[order]
        lumped = counts[max_categories:]
        return cls(count=int(counts.sum()), missing=missing, categories=tuple(names[:max_categories]),
                   counts=counts[:max_categories], other=int(lumped.sum()),
                   other_values=tuple(names[max_categories:max_categories + MAX_OTHER_VALUES]),
                   other_unnamed=int(lumped[MAX_OTHER_VALUES:].sum()), distinct=len(names),
                   singletons=int((counts == 1).sum()))

    def histogram_counts(self) -> np.ndarray:
        """The drift layout ``[c_1..c_K, other - other_unnamed, other_unnamed]`` (int64)."""
        return np.concatenate([self.counts, [self.other - self.other_unnamed, self.other_unnamed]]).astype(np.int64)

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """Every value the baseline names: ``categories``, then ``other_values``. The job codes a known value
        by its index here (the parser in the JVM and the window step in Python share this order)."""
        return self.categories + self.other_values

    def layout(self) -> CategoryLayout:
        """The slots a window's values fall in (`udfs.categorical.CategoryLayout`)."""
        return CategoryLayout(self.categories, self.other_values)

    def to_dict(self, arrays: Optional[Callable[[np.ndarray, str], Any]] = None) -> dict:
        """The JSON entry (``arrays`` unused: no float arrays here)."""
        return {
            "type": self.type, "count": self.count, "missing": self.missing, "missing_rate": self.missing_rate,
            "distinct": self.distinct, "singletons": self.singletons, "categories": list(self.categories),
            "counts": self.counts.tolist(), "other": self.other, "other_values": list(self.other_values),
            "other_unnamed": self.other_unnamed,
        }

    @classmethod
    def from_dict(cls, data: Mapping, where: str) -> "CategoricalBaseline":
        with _fields_of(where):
            feature = cls(count=int(data["count"]), missing=int(data["missing"]),
                          categories=tuple(_strings(data["categories"])),
                          counts=np.asarray(data["counts"], dtype=np.int64), other=int(data["other"]),
                          other_values=tuple(_strings(data["other_values"])),
                          other_unnamed=int(data["other_unnamed"]), distinct=int(data["distinct"]),
                          singletons=int(data["singletons"]))
            feature.layout()  # categories and other values distinct
        _check_frequencies(feature, where)
        return feature


ColumnBaseline = Union[FeatureBaseline, CategoricalBaseline]
"""A feature's (or the output's) baseline, of either type."""


@dataclass(frozen=True)
class OutputBaseline:
    """The baseline of the model's output column (e.g. the training labels or the model's predictions on
    the training set), monitored like a feature under its own ``name``."""

    name: str
    feature: ColumnBaseline


@dataclass(frozen=True, eq=False)
class Baseline:
    """Per-feature baselines in feature order (each a `FeatureBaseline` or a `CategoricalBaseline`), and
    optionally the model output's (`OutputBaseline`) and the model's performance on the baseline rows
    (`udfs.performance.ClassificationBaseline` or `RegressionBaseline`, of the output's type)."""

    features: Mapping[str, ColumnBaseline]
    source: str = ""
    output: Optional[OutputBaseline] = None
    performance: Optional[PerformanceBaseline] = None

    def __post_init__(self):
        if self.output is not None and self.output.name in self.features:
            raise BaselineError(f"output {self.output.name!r} is also a feature")
        if self.performance is not None and (self.output is None or self.output.feature.type != self.performance.type):
            raise BaselineError("a performance baseline needs an output of its type")
        if self.performance is not None and self.performance.target in self.columns:
            raise BaselineError(f"target {self.performance.target!r} is also a monitored column")

    @property
    def columns(self) -> dict[str, ColumnBaseline]:
        """Every monitored column's baseline by name: the features, then the output (if any)."""
        output = {self.output.name: self.output.feature} if self.output else {}
        return {**self.features, **output}

    @classmethod
    def from_csv(cls, path: Union[str, Path], features: Optional[Sequence[str]] = None, bins: Optional[int] = None,
                 binning: str = "quantile", *, categorical: Sequence[str] = (), numeric: Sequence[str] = (),
                 max_categories: int = MAX_CATEGORIES, output: Optional[str] = None,
                 target: Optional[str] = None, sample_dtype: str = "auto") -> "Baseline":
        """Baseline of the columns ``features`` (default: every column but ``output`` and ``target``) of a
        CSV with a header, and of the ``output`` column if one is named; with a ``target`` (the labels,
        which needs an ``output``: the model's predictions) the model's performance on these rows too.

        A column is categorical when any present cell is not a number (Python's ``float``), numeric
        otherwise; ``categorical`` and ``numeric`` name columns whose type is forced (a forced numeric
        column must hold numbers). Empty and ``NA`` cells (spaces around them ignored) are missing, and so
        is NaN in a numeric column. ``bins`` and ``binning`` as in :meth:`FeatureBaseline.from_values`,
        ``max_categories`` as in :meth:`CategoricalBaseline.from_values`, ``sample_dtype`` as in
        :meth:`FeatureBaseline.from_values`.
        """
        path = Path(path)
        header, cells = _read_csv(path)
        if target is not None and output is None:
            raise BaselineError("a target (the labels) needs an output column (the model's predictions)")
        names = [name for name in (features or header) if name not in (output, target)] + ([output] if output else [])
        forced = {**{name: CATEGORICAL for name in categorical}, **{name: NUMERIC for name in numeric}}
        both = set(categorical) & set(numeric)
        if both:
            raise BaselineError(f"column {sorted(both)[0]!r} cannot be both categorical and numeric")
        unknown = [name for name in [*names, *forced, *([target] if target else [])] if name not in header]
        if unknown:
            raise BaselineError(f"{path}: no column {unknown[0]!r} (columns: {', '.join(header)})")
        built = {name: _column_baseline(f"{path}: column {name!r}", cells[:, header.index(name)], forced.get(name),
                                        bins, binning, max_categories, sample_dtype) for name in names}
        result = OutputBaseline(output, built.pop(output)) if output else None
        performance = None if target is None else _performance(
            f"{path}: column {target!r}", target, result.feature.type, cells[:, header.index(output)],
            cells[:, header.index(target)])
        return cls(built, source=path.name, output=result, performance=performance)

    @classmethod
    def from_thesis_format(cls, descriptive: Mapping[str, Mapping[str, float]],
                           distributions: Mapping[str, Mapping[str, float]]) -> "Baseline":
        """Import the thesis framework's baseline maps (its Appendix A, ``baseline.descriptive`` and
        ``baseline.distributions``).

        ``descriptive[feature]`` holds ``count``, ``avg`` (preferred: the thesis's ``mean`` aggregator
        computed ``(max - min) / count``, so ``mean`` is used only when ``avg`` is absent), ``stddev``
        (sample), ``min``, ``max`` and optionally ``perc`` percentiles as ``p25``/``p50``/``p75``.
        ``distributions[feature]`` maps a bin label to a value, as the thesis's ``DistrAggregator``
        produced: the label is the bin's lower bound written as a number, a bin spans from its label to
        the next label, and the last bin is as wide as the label spacing (the thesis's own bounds started
        one bin above ``min`` and dropped the values below the first label; they stay out here too,
        as underflow). The values are counts, or
        relative frequencies when they sum to 1 (then scaled by ``count``). Missing percentiles are
        interpolated from the histogram (:func:`udfs.histogram.interpolated_quantiles`).
        """
        result = {}
        for name, stats in descriptive.items():
            if name not in distributions:
                raise BaselineError(f"distributions: no histogram for feature {name!r}")
            result[name] = _thesis_feature(name, stats, distributions[name])
        return cls(result, source="thesis-format")

    def save(self, path: Union[str, Path]) -> None:
        """JSON with one line per column, the samples and edges encoded (module docstring)."""
        document = {"format": FORMAT, "version": VERSION, "source": self.source, **self._content()}
        Path(path).write_text(_dumps(document) + "\n")

    @classmethod
    def load(cls, path: Union[str, Path], sha256: Optional[str] = None) -> "Baseline":
        """Read a baseline saved by :meth:`save` (version 4, or 3, or 2) from a file or an ``http(s)://`` or
        ``s3://`` URL (`read_bytes`), its content checked against ``sha256`` when given (`ChecksumError`); any
        problem raises :class:`BaselineError`."""
        content = read_bytes(path)
        if sha256 is not None and hashlib.sha256(content).hexdigest() != sha256.lower():
            raise ChecksumError(f"{path} has SHA-256 {hashlib.sha256(content).hexdigest()}, not the pinned {sha256.lower()}")
        try:
            document = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise BaselineError(f"{path}: not valid JSON: {err}") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise BaselineError(f"{path}: not an {FORMAT} document")
        version = document.get("version")
        if version == 1:
            raise BaselineError(f"{path}: a version 1 baseline (no training sample, which threshold: auto and the "
                                f"two-sample tests now need); regenerate it: mmon baseline <training.csv> -o {path}")
        if version not in READABLE_VERSIONS:
            raise BaselineError(f"{path}: unsupported baseline version {version!r} (expected one of "
                                f"{', '.join(map(str, READABLE_VERSIONS))})")
        features = document.get("features")
        if not isinstance(features, dict) or not features:
            raise BaselineError(f"{path}: 'features' must be a non-empty mapping")
        return cls({name: _column_from_dict(data, f"{path}: features.{name}", version) for name, data in features.items()},
                   source=str(document.get("source", "")), output=_output_from_dict(document.get("output"), path),
                   performance=_performance_from_dict(document.get("performance"), path))

    @cached_property
    def fingerprint(self) -> str:
        """A digest of the statistics (features, output and performance), identifying this baseline in caches and
        in the job's shard keys; the arrays enter by the SHA-256 of their values at their dtype (`_array_digest`),
        so a saved and a loaded baseline agree without encoding anything."""
        canonical = json.dumps(self._content(_array_digest), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def _content(self, arrays: Optional[Callable[[np.ndarray, str], Any]] = None) -> dict:
        output = ({"output": {"name": self.output.name, **self.output.feature.to_dict(arrays)}} if self.output else {})
        performance = {"performance": self.performance.to_dict()} if self.performance else {}
        return {"features": {name: feature.to_dict(arrays) for name, feature in self.features.items()}, **output,
                **performance}


def read_bytes(location: Union[str, Path]) -> bytes:
    """The content of a baseline file, of an ``http://`` or ``https://`` URL (`_fetch_http`) or of an
    ``s3://bucket/key`` object (`_read_s3`); a failure raises `BaselineError` saying what went wrong."""
    if "://" not in str(location):
        try:
            return Path(location).read_bytes()
        except OSError as err:
            raise BaselineError(f"cannot read baseline {location}: {err.strerror}") from None
    url = BaselineUrl(location)
    return _read_s3(url) if url.is_s3 else _fetch_http(url)


def _fetch_http(url: str) -> bytes:
    """GET ``url`` (:data:`FETCH_TIMEOUT_S`, redirects followed, ``$MMON_BASELINE_AUTHORIZATION`` as the
    Authorization header when set and never sent on to a redirect's target)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if os.environ.get(BASELINE_AUTHORIZATION_ENV):
        request.add_unredirected_header("Authorization", os.environ[BASELINE_AUTHORIZATION_ENV])
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as err:
        raise BaselineError(f"cannot fetch {url}: the server answered {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise BaselineError(f"cannot fetch {url}: {reason} (is the server up, the address right?)") from None


S3_ERRORS = {
    "NoSuchKey": "no such key", "NoSuchBucket": "no such bucket",
    "AccessDenied": "access denied", "InvalidAccessKeyId": "access denied (unknown access key id)",
    "SignatureDoesNotMatch": "access denied (wrong secret access key)",
}
"""What `_read_s3` says of S3's error codes; any other is named by its code and HTTP status."""


def _read_s3(url: str) -> bytes:
    """GET the object of ``s3://bucket/key`` with boto3 and its standard credential chain and settings
    (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_REGION`` / ``AWS_ENDPOINT_URL_S3`` or
    ``AWS_ENDPOINT_URL``, IRSA, an instance profile), within :data:`FETCH_TIMEOUT_S` per connection and read.
    It asks for no response checksum (boto3's ``x-amz-checksum-mode``, which S3-compatible servers such as
    S3Proxy refuse with 501): ``baseline_sha256`` pins the content. boto3 is imported here: only a job with
    an s3 baseline needs it."""
    import boto3
    import botocore.config
    import botocore.exceptions as aws

    try:
        bucket, key = BaselineUrl.s3_object(url)
    except ConfigError as err:
        raise BaselineError(str(err)) from None
    config = botocore.config.Config(connect_timeout=FETCH_TIMEOUT_S, read_timeout=FETCH_TIMEOUT_S,
                                    response_checksum_validation="when_required")
    try:
        client = boto3.session.Session().client("s3", config=config)
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except aws.NoCredentialsError:
        raise BaselineError(f"cannot fetch {url}: no AWS credentials (set AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY, or use IRSA or an instance profile)") from None
    except aws.ClientError as err:
        raise BaselineError(f"cannot fetch {url}: {_s3_failure(err.response)}") from None
    except aws.BotoCoreError as err:
        raise BaselineError(f"cannot fetch {url}: {err} (is the S3 endpoint up, AWS_ENDPOINT_URL_S3 right?)") from None


def _s3_failure(response: Mapping) -> str:
    """An S3 error answer in words: ``access denied (403 AccessDenied)``, ``no such key (404 NoSuchKey)``."""
    code = response.get("Error", {}).get("Code", "?")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
    return f"{S3_ERRORS.get(code, 'the server refused')} ({status} {code})"


def kept_precision(values: np.ndarray, requested: str = "auto") -> str:
    """The dtype a numeric column's present ``values`` are kept at: ``requested``, or for ``auto`` float32
    when the values are continuous (no value repeats, and float32 keeps them distinct and finite), float64
    when they have ties (a discrete feature, whose window values meet training values exactly)."""
    if requested not in SAMPLE_DTYPES:
        raise BaselineError(f"unknown sample dtype {requested!r} (known: {', '.join(SAMPLE_DTYPES)})")
    with np.errstate(over="ignore"):
        rounded = values.astype(np.float32)
    if not np.isfinite(rounded).all() and requested != "float64":
        if requested == "float32":
            raise BaselineError("values beyond float32's range: use sample dtype float64")
        return "float64"
    if requested != "auto":
        return requested
    distinct = len(np.unique(values))
    return "float32" if distinct == len(values) == len(np.unique(rounded)) else "float64"


def encode_array(values: np.ndarray, dtype: str) -> dict:
    """Floats as ``{"dtype", "data"}``, exact at ``dtype`` (float32 or float64): the values' order-preserving
    unsigned integers (sign bit flipped, negatives all bits), each minus the previous one (small in a sorted
    array), bytes grouped by significance (all lowest bytes first), raw deflate (zlib, no header), base85
    (Python's `base64.b85encode`, RFC 1924's alphabet)."""
    typed = np.asarray(values, dtype=dtype)
    if not np.array_equal(typed.astype(float), values):
        raise BaselineError(f"sample values are not all exact in {dtype}")
    keys = _order_keys(typed)
    deltas = np.diff(keys, prepend=keys.dtype.type(0))
    grouped = deltas.astype(f"<u{typed.itemsize}").view(np.uint8).reshape(len(deltas), typed.itemsize).T.tobytes()
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return {"dtype": dtype, "data": base64.b85encode(deflate.compress(grouped) + deflate.flush()).decode("ascii")}


def decode_array(data: Mapping) -> tuple[np.ndarray, str]:
    """The float64 values and dtype of an `encode_array` record; a malformed one raises ValueError."""
    dtype = data["dtype"]
    if dtype not in _ORDER_INTEGERS:
        raise ValueError(f"unknown dtype {dtype!r} (known: {', '.join(_ORDER_INTEGERS)})")
    try:
        grouped = zlib.decompress(b85decode(data["data"]), -zlib.MAX_WBITS)
    except zlib.error as err:
        raise ValueError(f"bad compressed data ({err})") from None
    width = np.dtype(dtype).itemsize
    size = len(grouped) // width
    if len(grouped) != size * width:
        raise ValueError(f"{len(grouped)} bytes are no whole number of {dtype} values")
    unsigned = _ORDER_INTEGERS[dtype]
    deltas = np.frombuffer(grouped, np.uint8).reshape(width, size).T.copy().view(f"<u{width}").ravel().astype(unsigned)
    keys = np.cumsum(deltas, dtype=unsigned)
    top = unsigned(1) << unsigned(8 * width - 1)
    bits = np.where(keys & top, keys ^ top, ~keys)
    return bits.view(dtype).astype(float), dtype


_ORDER_INTEGERS = {"float32": np.uint32, "float64": np.uint64}
_B85_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~"  # RFC 1924
_B85_DIGITS = np.full(256, 85, dtype=np.uint64)  # 85: not a digit
_B85_DIGITS[np.frombuffer(_B85_ALPHABET, np.uint8)] = np.arange(85)
_B85_POWERS = 85 ** np.arange(4, -1, -1, dtype=np.uint64)


def b85decode(text: str) -> bytes:
    """`base64.b85decode` in numpy: the same bytes, about 50 times faster (a 1,000-feature baseline holds
    2,000 encoded arrays)."""
    chars = np.frombuffer(text.encode("ascii"), np.uint8)
    padding = -len(chars) % 5
    digits = _B85_DIGITS[np.concatenate([chars, np.full(padding, ord("~"), np.uint8)])].reshape(-1, 5)
    if (digits == 85).any():
        raise ValueError("bad base85 character")
    words = (digits * _B85_POWERS).sum(axis=1)
    if (words > 0xFFFFFFFF).any():
        raise ValueError("base85 group out of range")
    return words.astype(">u4").tobytes()[:len(words) * 4 - padding]


def _order_keys(values: np.ndarray) -> np.ndarray:
    """Unsigned integers in the floats' order: a positive float with its sign bit set, a negative one inverted."""
    unsigned = _ORDER_INTEGERS[values.dtype.name]
    bits = values.view(unsigned)
    top = unsigned(1) << unsigned(8 * values.itemsize - 1)
    return np.where(bits & top, ~bits, bits | top)


def _array_digest(values: np.ndarray, dtype: str) -> str:
    """The SHA-256 of the values as float64: the same values have the same digest, stored at any dtype."""
    return hashlib.sha256(np.asarray(values, dtype=float).tobytes()).hexdigest()


def _array_of(data) -> tuple[np.ndarray, str]:
    """A stored array (edges, sample) and its dtype: an `encode_array` record (version 4) or a list of numbers
    (before)."""
    return decode_array(data) if isinstance(data, Mapping) else (np.asarray(data, dtype=float), "float64")


def training_sample(values: np.ndarray) -> np.ndarray:
    """The sorted values, or a seeded subsample of :data:`MAX_SAMPLE` of them without replacement."""
    values = np.asarray(values, dtype=float)
    if len(values) > MAX_SAMPLE:
        values = np.random.default_rng(SAMPLE_SEED).choice(values, MAX_SAMPLE, replace=False)
    return np.sort(values)


def _plain_number(value) -> Union[int, float]:
    return int(value) if float(value).is_integer() else float(value)


def _check_histogram(edges: np.ndarray, counts: np.ndarray, where: str) -> None:
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise BaselineError(f"{where}: edges must be strictly increasing, at least 2 of them")
    if counts.shape != (len(edges) - 1,):
        raise BaselineError(f"{where}: {len(edges) - 1} bins need as many counts, got {counts.size}")
    if np.any(counts < 0) or counts.sum() <= 0:
        raise BaselineError(f"{where}: counts must be non-negative with a positive total")


def _check_sample(sample: np.ndarray, where: str) -> None:
    if sample.ndim != 1 or len(sample) < 2 or not np.isfinite(sample).all() or np.any(np.diff(sample) < 0):
        raise BaselineError(f"{where}: sample must be at least 2 finite values in ascending order")


@contextmanager
def _fields_of(where: str) -> Iterator[None]:
    """Reading an entry's fields: a missing or malformed one raises a `BaselineError` naming ``where``."""
    try:
        yield
    except KeyError as err:
        raise BaselineError(f"{where}: missing field {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        raise BaselineError(f"{where}: {err}") from None


def _check_frequencies(feature: CategoricalBaseline, where: str) -> None:
    counts = feature.counts
    if counts.shape != (len(feature.categories),) or not feature.categories or np.any(counts < 1):
        raise BaselineError(f"{where}: need a positive count for each of at least one category")
    if feature.count != counts.sum() + feature.other or not 0 <= feature.other_unnamed <= feature.other:
        raise BaselineError(f"{where}: count must be the categories' counts plus other, other_unnamed within other")
    if min(feature.missing, feature.singletons) < 0 or feature.distinct < len(feature.categories):
        raise BaselineError(f"{where}: negative missing or singletons, or fewer distinct values than categories")


def _strings(values) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise TypeError("expected a list of strings")
    return values


def _column_from_dict(data, where: str, version: int) -> ColumnBaseline:
    """A feature entry: version 2 is numeric; version 3 says its ``type``."""
    if not isinstance(data, dict):
        raise BaselineError(f"{where}: must be a mapping")
    if version == 2:
        return FeatureBaseline.from_dict(data, where)
    kinds = {NUMERIC: FeatureBaseline, CATEGORICAL: CategoricalBaseline}
    if data.get("type") not in kinds:
        raise BaselineError(f"{where}: type must be one of {', '.join(kinds)}, got {data.get('type')!r}")
    return kinds[data["type"]].from_dict(data, where)


def _output_from_dict(data, path) -> Optional[OutputBaseline]:
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise BaselineError(f"{path}: output must be a mapping with a name")
    return OutputBaseline(data["name"], _column_from_dict(data, f"{path}: output", VERSION))


def _performance_from_dict(data, path) -> Optional[PerformanceBaseline]:
    where = f"{path}: performance"
    if data is None:
        return None
    if not isinstance(data, dict) or data.get("type") not in BASELINE_TYPES:
        raise BaselineError(f"{where}: must be a mapping with a type, one of {', '.join(BASELINE_TYPES)}")
    with _fields_of(where):
        return BASELINE_TYPES[data["type"]].from_dict(data)


def _performance(where: str, target: str, kind: str, predicted: np.ndarray, labels: np.ndarray) -> PerformanceBaseline:
    """The model's performance from its ``predicted`` cells against the ``labels`` (the target's cells),
    of the output's type ``kind``; missing cells are unscored rows."""
    with _fields_of(where):
        if kind == CATEGORICAL:
            return BASELINE_TYPES[kind].from_pairs(target, np.where(_present(predicted), predicted, None),
                                                   np.where(_present(labels), labels, None))
        return BASELINE_TYPES[kind].from_pairs(target, _number_cells(predicted), _number_cells(labels),
                                               training_sample)


def _dumps(value, indent: str = "", levels: int = 2) -> str:
    """JSON with the first ``levels`` of mappings indented (the document, its columns) and each column on one line."""
    if not isinstance(value, dict) or not value or not levels:
        return json.dumps(value, separators=(",", ":"))
    inner = indent + "  "
    items = ",\n".join(f"{inner}{json.dumps(key)}: {_dumps(item, inner, levels - 1)}" for key, item in value.items())
    return "{\n" + items + "\n" + indent + "}"


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """The header and the (rows x columns) object array of cells, blank lines skipped."""
    try:
        with path.open(newline="") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except OSError as err:
        raise BaselineError(f"cannot read {path}: {err.strerror}") from None
    if len(rows) < 3:
        raise BaselineError(f"{path}: need a header and at least 2 data rows")
    header = [name.strip() for name in rows[0]]
    for number, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            raise BaselineError(f"{path}: data row {number} has {len(row)} cells, the header {len(header)}")
    return header, np.array(rows[1:], dtype=object)


def _column_baseline(where: str, cells: np.ndarray, forced: Optional[str], bins: Optional[int], binning: str,
                     max_categories: int, sample_dtype: str = "auto") -> ColumnBaseline:
    """One column's baseline: numeric when ``forced`` so or when every present cell is a number."""
    present = _present(cells)
    try:
        if (forced or (NUMERIC if _numbers(cells[present]) is not None else CATEGORICAL)) == CATEGORICAL:
            return CategoricalBaseline.from_values(np.where(present, cells, None), max_categories)
        return FeatureBaseline.from_values(_number_cells(cells), bins, binning, sample_dtype)
    except BaselineError as err:
        raise BaselineError(f"{where}: {err}") from None


def _present(cells: np.ndarray) -> np.ndarray:
    """Which cells hold a value (not empty, not ``NA``, spaces around ignored)."""
    return np.array([cell.strip() not in MISSING_CELLS for cell in cells], dtype=bool)


def _number_cells(cells: np.ndarray) -> np.ndarray:
    """The cells as floats, NaN where missing; a present cell that is not a number raises `BaselineError`."""
    present = _present(cells)
    numbers = _numbers(cells[present])
    if numbers is None:
        bad = next(i for i in np.flatnonzero(present) if _numbers(cells[i:i + 1]) is None)
        raise BaselineError(f"numeric, but {cells[bad]!r} on data row {bad + 1} is not a number")
    values = np.full(len(cells), np.nan)
    values[present] = numbers
    return values


def _numbers(cells: np.ndarray) -> Optional[np.ndarray]:
    """The cells as floats (Python's ``float``, correctly rounded), or None if any is not a number."""
    try:
        return cells.astype(float)
    except ValueError:
        return None


def _thesis_feature(name: str, stats: Mapping[str, float], distribution: Mapping[str, float]) -> FeatureBaseline:
    where = f"descriptive.{name}"
    try:
        count = int(stats["count"])
        mean = float(stats["avg"] if "avg" in stats else stats["mean"])
        std, lo, hi = float(stats["stddev"]), float(stats["min"]), float(stats["max"])
    except KeyError as err:
        raise BaselineError(f"{where}: missing {err.args[0]!r}") from None
    try:
        bins = sorted((float(label), float(value)) for label, value in distribution.items())
    except ValueError:
        raise BaselineError(f"distributions.{name}: bin labels and values must be numbers") from None
    if len(bins) < 2:
        raise BaselineError(f"distributions.{name}: need at least 2 bins")
    lower = np.array([label for label, _ in bins])
    edges = np.append(lower, lower[-1] + (lower[-1] - lower[-2]))
    counts = np.array([value for _, value in bins])
    if np.isclose(counts.sum(), 1.0) and count > 1:
        counts = counts * count
    _check_histogram(edges, counts, f"distributions.{name}")
    given = [stats.get(key) for key in ("p25", "p50", "p75")]
    p25, p50, p75 = (float(v) if v is not None else q
                     for v, q in zip(given, interpolated_quantiles(edges, counts, PERCENTILES)))
    sample_size = min(max(count, 2), MAX_SAMPLE)
    sample = np.asarray(interpolated_quantiles(edges, counts, (np.arange(sample_size) + 0.5) / sample_size))
    return FeatureBaseline(count=count, mean=mean, std=std, min=lo, max=hi, p25=p25, p50=p50, p75=p75,
                           edges=edges, counts=counts, sample=sample, binning="equal-width")

