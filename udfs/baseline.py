"""The baseline: per-feature training statistics, histograms and a training sample that windows are
compared with.

Saved as versioned JSON::

    {"format": "mmon-baseline", "version": 2, "source": "...", "features": {
        "<name>": {"count": 120, "mean": ..., "std": ..., "min": ..., "max": ...,
                   "p25": ..., "p50": ..., "p75": ..., "binning": "quantile",
                   "edges": [k + 1 floats], "counts": [k numbers], "sample": [sorted floats]}}}

``std`` is the sample standard deviation (ddof=1); percentiles are ``numpy.percentile`` (linear).
``counts`` are the ``k`` inner bins; :meth:`FeatureBaseline.histogram_counts` gives the drift layout
``[underflow, bin_1..bin_k, overflow]``. ``binning`` says how the edges were chosen: ``quantile``
(default: equal-frequency edges at training values, :func:`udfs.histogram.quantile_edges`, with
:func:`udfs.histogram.default_bin_count` bins unless given) or ``equal-width`` (over ``[min, max]``,
:func:`udfs.histogram.equal_width_edges`). Either way the last edge sits one ulp above ``max``, so the
training maximum counts in the last bin and the baseline's underflow and overflow are 0.

``sample`` is the sorted training column itself up to :data:`MAX_SAMPLE` values, else a seeded
subsample of :data:`MAX_SAMPLE` of them without replacement: the empirical CDF that ``threshold: auto``
(:mod:`udfs.calibration`) and the two-sample tests (:mod:`udfs.two_sample`) work from. A thesis-format
import has no raw values; its sample is the histogram's interpolated quantiles at ``(i + 1/2) / count``.
Version 1 files (no sample, no binning) are refused with the command that regenerates them.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from udfs.histogram import (default_bin_count, equal_width_edges, interpolated_quantiles, layout_counts,
                            quantile_edges)
from udfs.stats import PERCENTILES

FORMAT = "mmon-baseline"
VERSION = 2
MAX_SAMPLE = 10_000
SAMPLE_SEED = 20_26_1202


def _equal_width_over_range(values: np.ndarray, bins: int) -> np.ndarray:
    return equal_width_edges(values.min(), values.max(), bins)


BINNINGS = {"quantile": quantile_edges, "equal-width": _equal_width_over_range}
"""Edge rules by ``binning`` name: ``(values, bins) -> edges``."""


class BaselineError(ValueError):
    """A baseline that cannot be built or read; the message says why."""


@dataclass(frozen=True, eq=False)
class FeatureBaseline:
    """Training statistics of one feature."""

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

    @classmethod
    def from_values(cls, values: np.ndarray, bins: Optional[int] = None, binning: str = "quantile") -> "FeatureBaseline":
        """Statistics of ``values``; ``bins=None`` takes :func:`udfs.histogram.default_bin_count`."""
        values = np.asarray(values, dtype=float)
        if len(values) < 2:
            raise BaselineError(f"need at least 2 values, got {len(values)}")
        if binning not in BINNINGS:
            raise BaselineError(f"unknown binning {binning!r} (known: {', '.join(BINNINGS)})")
        edges = BINNINGS[binning](values, bins or default_bin_count(len(values)))
        p25, p50, p75 = np.percentile(values, [25, 50, 75])
        return cls(count=len(values), mean=float(values.mean()), std=float(values.std(ddof=1)),
                   min=float(values.min()), max=float(values.max()), p25=float(p25), p50=float(p50),
                   p75=float(p75), edges=edges, counts=layout_counts(values, edges)[1:-1],
                   sample=training_sample(values), binning=binning)

    def histogram_counts(self) -> np.ndarray:
        """The histogram in the drift layout ``[0, bin_1..bin_k, 0]`` (length ``len(edges) + 1``)."""
        return np.concatenate([[0], self.counts, [0]])

    def to_dict(self) -> dict:
        return {
            "count": self.count, "mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
            "p25": self.p25, "p50": self.p50, "p75": self.p75,
            "binning": self.binning, "edges": self.edges.tolist(),
            "counts": [_plain_number(c) for c in self.counts], "sample": self.sample.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping, where: str) -> "FeatureBaseline":
        try:
            fields = {name: float(data[name]) for name in ("mean", "std", "min", "max", "p25", "p50", "p75")}
            edges = np.asarray(data["edges"], dtype=float)
            counts = np.asarray(data["counts"], dtype=float)
            sample = np.asarray(data["sample"], dtype=float)
            count, binning = int(data["count"]), str(data["binning"])
        except KeyError as err:
            raise BaselineError(f"{where}: missing field {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise BaselineError(f"{where}: {err}") from None
        _check_histogram(edges, counts, where)
        _check_sample(sample, where)
        return cls(count=count, edges=edges, counts=counts, sample=sample, binning=binning, **fields)


@dataclass(frozen=True, eq=False)
class Baseline:
    """Per-feature baselines in feature order; ``features[name]`` is a :class:`FeatureBaseline`."""

    features: Mapping[str, FeatureBaseline]
    source: str = ""

    @classmethod
    def from_csv(cls, path: Union[str, Path], features: Optional[Sequence[str]] = None, bins: Optional[int] = None,
                 binning: str = "quantile") -> "Baseline":
        """Baseline of the numeric columns ``features`` (default: every column) of a CSV with a header;
        ``bins`` and ``binning`` as in :meth:`FeatureBaseline.from_values`."""
        columns = _read_csv_columns(Path(path), features)
        return cls({name: FeatureBaseline.from_values(values, bins, binning) for name, values in columns.items()},
                   source=Path(path).name)

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
        """Indented JSON with each list of numbers on one line (a full sample is about 200 kB a feature)."""
        document = {"format": FORMAT, "version": VERSION, "source": self.source,
                    "features": {name: feature.to_dict() for name, feature in self.features.items()}}
        text = re.sub(r"\[[-+0-9.eE,\s]*\]", lambda match: " ".join(match.group().split()), json.dumps(document, indent=2))
        Path(path).write_text(text + "\n")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Baseline":
        """Read a baseline saved by :meth:`save`; any problem raises :class:`BaselineError`."""
        try:
            document = json.loads(Path(path).read_text())
        except OSError as err:
            raise BaselineError(f"cannot read baseline {path}: {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise BaselineError(f"{path}: not valid JSON: {err}") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise BaselineError(f"{path}: not an {FORMAT} document")
        if document.get("version") == 1:
            raise BaselineError(f"{path}: a version 1 baseline (no training sample, which threshold: auto and the "
                                f"two-sample tests now need); regenerate it: mmon baseline <training.csv> -o {path}")
        if document.get("version") != VERSION:
            raise BaselineError(f"{path}: unsupported baseline version {document.get('version')!r} (expected {VERSION})")
        features = document.get("features")
        if not isinstance(features, dict) or not features:
            raise BaselineError(f"{path}: 'features' must be a non-empty mapping")
        return cls({name: FeatureBaseline.from_dict(data, f"{path}: features.{name}") for name, data in features.items()},
                   source=str(document.get("source", "")))

    @cached_property
    def fingerprint(self) -> str:
        """A digest of the statistics, identifying this baseline in caches."""
        canonical = json.dumps({name: f.to_dict() for name, f in self.features.items()}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


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


def _read_csv_columns(path: Path, features: Optional[Sequence[str]]) -> dict[str, np.ndarray]:
    try:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as err:
        raise BaselineError(f"cannot read {path}: {err.strerror}") from None
    if len(rows) < 3:
        raise BaselineError(f"{path}: need a header and at least 2 data rows")
    header = [name.strip() for name in rows[0]]
    wanted = list(features) if features else header
    missing = [name for name in wanted if name not in header]
    if missing:
        raise BaselineError(f"{path}: no column {missing[0]!r} (columns: {', '.join(header)})")
    columns = {}
    for name in wanted:
        index = header.index(name)
        try:
            columns[name] = np.array([float(row[index]) for row in rows[1:] if row], dtype=float)
        except (ValueError, IndexError):
            raise BaselineError(f"{path}: column {name!r} is not numeric on every row") from None
        if not np.isfinite(columns[name]).all():
            raise BaselineError(f"{path}: column {name!r} holds NaN or infinite values")
    return columns


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

