"""Realised performance per window from (prediction, label) pairs, and a calibrated alert when it drops.

**Metrics.** A categorical output (a classifier) is scored by :data:`CLASSIFICATION_METRICS`: ``accuracy``,
per class ``precision``, ``recall`` and ``f1``, ``f1_macro`` and the ``confusion`` matrix; a numeric output
(a regressor) by :data:`REGRESSION_METRICS`: ``mae``, ``rmse`` and ``bias`` (the mean of prediction minus
label). They equal scikit-learn's ``accuracy_score``, ``precision_recall_fscore_support(...,
zero_division=nan)``, ``f1_score(average='macro')``, ``confusion_matrix``, ``mean_absolute_error`` and
``root_mean_squared_error`` (tests/test_performance.py). An undefined value is NaN in :meth:`metrics` and
None in :meth:`result`: the precision of a class never predicted, the recall of a class never true. ``f1``
is ``2 tp / (2 tp + fp + fn)`` (0 for a class true or predicted but never both), and ``f1_macro`` its mean
over the classes that occur in the window (as truth or prediction), scikit-learn's default ``labels``.

**Windows.** `ClassificationWindow` and `RegressionWindow` are mergeable accumulators: a window's state
is built from batches (``update``, arrays of codes or values, one ``bincount`` or a few sums per batch,
no loop over pairs) and windows merge (``merge``) exactly. A classification window counts pairs in a
confusion matrix over the baseline's classes, then the classes the baseline never saw (``unseen``, in
string order, whatever order the batches and merges came in). A pair with its label or its prediction
missing is ``unscored``, never scored.

**Baselines.** `ClassificationBaseline` (the confusion matrix of the baseline's rows: every categorical
metric and its null are functions of it) and `RegressionBaseline` (the metrics over every row and a
sample of up to 10,000 residuals) are what ``mmon baseline --target COL --output-column COL`` stores
under ``performance`` (:mod:`udfs.baseline`).

**The alert** (`PerformanceTest`): a window is alerted when its metric is worse than the baseline's by
more than chance at the window's labelled count, with probability at most ``false_alarm_rate`` when the
window comes from the process the baseline rows came from. The baseline's metric is itself an estimate
from its rows (a few hundred for the penguins), and each test carries that error as well as the window's,
so a model as good as in training is not alerted because its baseline happened to be lucky:

* ``accuracy``: exact. A window of ``n`` labelled pairs has ``X ~ Binomial(n, p)`` correct; the baseline's
  ``k`` correct of ``m`` give ``p`` the posterior ``Beta(k + 1, m - k + 1)`` (uniform prior, :data:`PRIOR`),
  so ``X ~ BetaBinomial(n, k + 1, m - k + 1)`` (its posterior predictive) and the p-value is ``P(X <= x)``
  for the window's ``x`` correct (:func:`accuracy_cdf`). Why the uniform prior and not Jeffreys' ``1/2``:
  summed exactly over every baseline outcome (``m`` 30 to 1,000, ``n`` 200 to 20,000, true accuracy 0.5
  to 0.999, rates 1 % and 5 %), Jeffreys' prior alerts up to 3.0x the rate where the window outgrows the
  baseline and the accuracy is near 1 (a baseline of 30 rows all right), since the posterior of a lucky
  baseline then leaves too little room for errors; the uniform prior stays within 1.16x everywhere
  (0.55x on average over that grid: conservative near accuracy 1 with small baselines, the price of
  the guarantee), ``(1/2, 3/4)`` within 1.53x and ``(1/2, 1)`` within 0.98x but with less power.
  ``benchmarks/calibration.py`` recomputes the rates (``mmon bench --profile calibration``). A baseline
  with every row right still leaves room for one error, so the first error a window shows alerts nobody.
* ``precision``, ``recall``, ``f1`` of each baseline class and ``f1_macro``: the same posterior predictive,
  simulated. The baseline's confusion cells get the posterior ``pi ~ Dirichlet(cells + prior)`` and a window
  of ``n`` pairs ``Multinomial(n, pi)``; the threshold is the ``rate`` quantile of the metric over
  :data:`DRAWS` seeded draws. A class's metrics read only its cells ``(tp, fn, fp, rest)``, and the
  Dirichlet and multinomial aggregate exactly, so its null is drawn over those four cells, each with
  :data:`PRIOR` (its precision's posterior is then ``Beta(tp + 1, fp + 1)``, the accuracy test's prior);
  ``f1_macro`` is drawn over all ``K x K`` cells, with a prior that gives every class's ``tp``, ``fn`` and
  ``fp`` margins :data:`PRIOR` as well (:func:`_macro_prior`: ``1/2`` a cell everywhere would add ``K^2 / 2``
  pseudo-pairs, mostly errors, and made ``f1_macro`` alert at 0.04x the rate). Draws where a metric is
  undefined (a class absent from the simulated window) are left out, so the null is that of windows where
  it is defined, as it is in the window tested.
* ``mae``, ``rmse``, ``bias``: a two-sample bootstrap of the difference of the means of ``r``, ``|r|`` and
  ``r^2`` (``rmse`` is tested as its square): ``D* = mean(W*) - mean(B*)`` with ``B*`` the baseline's
  ``count`` residuals and ``W*`` the window's ``n``, both resampled from the baseline's residual sample,
  then rescaled by ``sqrt(pooled variance / baseline variance)``, the pooled variance over the baseline's
  and the window's pairs (from the window's sums of ``r^2`` and ``r^4``). The bootstrap gives the shape
  (a small window's mean of ``r^2`` is right-skewed), the pooled variance the scale: a baseline that
  happened to miss the residuals' tail has too small a variance, and the plain bootstrap alerted ``rmse``
  at 2.2x the rate on gamma residuals and 3x on Student t (4 degrees of freedom) at 5 %; under the null
  the window's own pairs estimate the same variance. ``mae`` and ``rmse`` alert above the ``1 - rate`` quantile, ``bias`` outside the central
  ``1 - rate``. Above :data:`DIRECT_LIMIT` residuals a resampled mean is drawn at that size and its
  deviation scaled by ``sqrt(limit / size)``: the variance exact, the skewness of the smaller sample
  kept. Valid for residuals with a finite fourth moment: with Student t residuals of 3 or 4 degrees of
  freedom (whose fourth moment is infinite) ``rmse`` alerted at up to 1.8x the rate (300 baseline rows,
  windows of 30) and 2.5x (t3, 2,000 rows, windows of 200), ``mae`` at up to 1.7x, at 1 % (4,000 null
  streams, 2,000 draws).

Measured (``mmon bench --profile calibration --performance-only``, 2,000 null streams a row at 1 %, each a
fresh baseline of 258 rows; tests/test_performance.py at 5 %): windows of 100 and 1,000 pairs alert
0.3-0.8 % for every classification metric and 0.7-1.6 % for ``mae``, ``rmse`` and ``bias`` (normal and
gamma residuals; the 1.6 % rechecked over 4,000 streams: 0.9 %); the exact accuracy grid's worst cell
0.9 %.

Cost, once per distinct window size: the per-class nulls ``DRAWS x K x 4`` cells, ``f1_macro``'s
``DRAWS x K^2`` (60 ms at ``K`` = 3, 0.6 s at 20, 3.7 s at 50 classes on this machine), the regression
null ``DRAWS x min(n, 1,024)`` resampled rows (0.5 s at 1,000 pairs, the baseline's own once more); a
verdict afterwards costs under a millisecond, ``accuracy`` a pass over ``0..n`` (12 ms at 65,536).

Monte Carlo error: each simulated null is seeded and fixed per window size, so its threshold's own error
does not average out over the windows of one size: the chance of an alert at a threshold read from
:data:`DRAWS` = 10,000 draws is the method's within about ``2 * sqrt(rate / draws)`` (2 sd): 1 +- 0.2 %
at a rate of 1 %. Each simulated null is drawn once per window size (sizes above :data:`EXACT_SIZES` rounded to the nearest
power of ``2 ** (1/8)``: at most 4.4 % off, which moves the window's part of the spread by at most 2.2 %) and seeded by
that size, so a test is reproducible and the same in every worker. A verdict alerts when its p-value is
below the rate: equivalently, when the value is outside ``[low, high]``. The simulated p-value counts the
draws at least as bad as the window (ties against alerting). ``confusion`` is reported, never tested;
a class the baseline never saw has no baseline and no test. Each (metric, class) is its own test at
``false_alarm_rate``, as each drift metric is; assumed throughout: a window's pairs are independent.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
from scipy import stats

from contract.spec import CATEGORICAL, NUMERIC

from udfs.categorical import by_count, lookup

ACCURACY, PRECISION, RECALL, F1, F1_MACRO, CONFUSION = "accuracy", "precision", "recall", "f1", "f1_macro", "confusion"
MAE, RMSE, BIAS = "mae", "rmse", "bias"
CLASSIFICATION_METRICS: tuple[str, ...] = (ACCURACY, PRECISION, RECALL, F1, F1_MACRO, CONFUSION)
REGRESSION_METRICS: tuple[str, ...] = (MAE, RMSE, BIAS)
METRIC_NAMES: tuple[str, ...] = CLASSIFICATION_METRICS + REGRESSION_METRICS
"""Every performance metric name, once; the spec's list is checked against these."""
METRICS_BY_TYPE: dict[str, tuple[str, ...]] = {CATEGORICAL: CLASSIFICATION_METRICS, NUMERIC: REGRESSION_METRICS}
PER_CLASS: tuple[str, ...] = (PRECISION, RECALL, F1)
WORSE: dict[str, str] = {ACCURACY: "low", PRECISION: "low", RECALL: "low", F1: "low", F1_MACRO: "low",
                         MAE: "high", RMSE: "high", BIAS: "both"}
"""Which way each tested metric gets worse; ``confusion`` is not tested."""

PRIOR = 1.0
DRAWS = 10_000
DIRECT_LIMIT = 1024
EXACT_SIZES = 256
SEED = 2026_21


# ---------------------------------------------------------------- metric values


def confusion_metrics(confusion) -> dict[str, np.ndarray]:
    """Every classification metric of one confusion matrix ``(K, K)`` or a stack ``(..., K, K)`` (rows
    the labels, columns the predictions): ``accuracy`` and ``f1_macro`` of shape ``(...)``, ``precision``,
    ``recall`` and ``f1`` of shape ``(..., K)``; NaN where undefined (module docstring)."""
    cells = np.asarray(confusion, dtype=float)
    tp = np.diagonal(cells, axis1=-2, axis2=-1)
    truth, predicted = cells.sum(axis=-1), cells.sum(axis=-2)
    present = (truth + predicted) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * tp / (truth + predicted)
        return {ACCURACY: tp.sum(axis=-1) / truth.sum(axis=-1), PRECISION: tp / predicted, RECALL: tp / truth,
                F1: f1, F1_MACRO: np.where(present, f1, 0.0).sum(axis=-1) / present.sum(axis=-1)}


def residual_metrics(count, sums) -> dict[str, np.ndarray]:
    """``mae``, ``rmse`` and ``bias`` from the count of pairs and ``sums`` ``(..., 3 or 4)`` of the residual
    ``r = prediction - label``, ``|r|`` and ``r^2`` (:func:`moments`; NaN for no pairs)."""
    sums = np.asarray(sums, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / np.asarray(count, dtype=float)[..., None]
    return {MAE: means[..., 1], RMSE: np.sqrt(means[..., 2]), BIAS: means[..., 0]}


def moments(residuals: np.ndarray) -> np.ndarray:
    """``(..., 4)``: each residual's ``r``, ``|r|``, ``r^2`` and ``r^4``, whose sums a window keeps: the
    metrics read the first three, their variances the squares of those (``r^2``, ``r^2``, ``r^4``)."""
    square = residuals * residuals
    return np.stack([residuals, np.abs(residuals), square, square * square], axis=-1)


def variances(count, sums) -> np.ndarray:
    """``(..., 3)``: the sample variances of ``r``, ``|r|`` and ``r^2`` from ``count`` pairs' four
    :func:`moments` sums."""
    count = np.asarray(count, dtype=float)[..., None]
    means = np.asarray(sums, dtype=float) / count
    return (means[..., [2, 2, 3]] - means[..., :3] ** 2) * count / (count - 1)


def _json_value(value):
    """A metric value for a JSON record: a float, None where undefined, lists and mappings of those."""
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if np.ndim(value):
        return [_json_value(item) for item in value]
    return None if np.isnan(value) else float(value)


# ---------------------------------------------------------------- windows


def _codes(codes, size: int, name: str) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 1 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array, got {codes.dtype} of shape {codes.shape}")
    if codes.size and (codes.min() < -1 or codes.max() >= size):
        raise ValueError(f"{name} must lie in [-1, {size}) for a dictionary of {size}")
    return codes


class ClassificationWindow:
    """Mergeable realised performance of a classifier over a window: the confusion matrix (rows labels,
    columns predictions) over ``classes`` (the baseline's) then the ``unseen`` ones, and the unscored pairs."""

    __slots__ = ("classes", "unseen", "confusion", "unscored", "_known", "_known_index")

    def __init__(self, classes: Sequence[str]):
        self.classes = tuple(map(str, classes))
        names = np.array(self.classes, dtype=object)
        order = np.argsort(names)
        self._known, self._known_index = names[order], order
        if not self.classes or np.any(self._known[1:] == self._known[:-1]):
            raise ValueError("a window needs at least one class, all distinct")
        self.unseen: tuple[str, ...] = ()
        self.confusion = np.zeros((len(self.classes),) * 2, dtype=np.int64)
        self.unscored = 0

    @property
    def labelled(self) -> int:
        """Pairs scored: a label and a prediction both present."""
        return int(self.confusion.sum())

    @property
    def all_classes(self) -> tuple[str, ...]:
        """The matrix's classes: the baseline's, then the unseen ones in string order."""
        return self.classes + self.unseen

    def update(self, dictionary, predicted, labels) -> None:
        """Add a batch: ``predicted`` and ``labels`` are int codes into ``dictionary`` (the batch's distinct
        class names), one of each per pair; -1 is missing."""
        dictionary = np.asarray(dictionary, dtype=object).reshape(-1)
        predicted, labels = _codes(predicted, len(dictionary), "predicted"), _codes(labels, len(dictionary), "labels")
        if predicted.shape != labels.shape:
            raise ValueError(f"{len(predicted)} predictions but {len(labels)} labels")
        scored = (predicted >= 0) & (labels >= 0)
        self.unscored += int(len(scored) - scored.sum())
        used = np.unique(np.concatenate([predicted[scored], labels[scored]]))
        position = np.full(len(dictionary), -1, dtype=np.intp)
        position[used] = self._positions(dictionary[used])
        size = len(self.all_classes)
        cells = np.bincount(position[labels[scored]] * size + position[predicted[scored]], minlength=size * size)
        self.confusion += cells.reshape(size, size)

    def merge(self, other: "ClassificationWindow") -> None:
        """Fold ``other`` (same baseline classes) into this window; ``other`` is left unchanged."""
        if other.classes != self.classes:
            raise ValueError("cannot merge windows of different baseline classes")
        at = self._positions(np.array(other.all_classes, dtype=object))
        self.confusion[np.ix_(at, at)] += other.confusion
        self.unscored += other.unscored

    def metrics(self) -> dict[str, np.ndarray]:
        """:func:`confusion_metrics` of the window, per class in :attr:`all_classes` order."""
        return confusion_metrics(self.confusion)

    def result(self) -> dict:
        """JSON-ready: ``labelled``, ``unscored``, ``classes`` (:attr:`all_classes`), each metric (per class
        as ``{class: value}``; None where undefined) and ``confusion`` (rows labels, columns predictions)."""
        metrics = self.metrics()
        per_class = {name: dict(zip(self.all_classes, metrics[name])) for name in PER_CLASS}
        return {"labelled": self.labelled, "unscored": self.unscored, "classes": list(self.all_classes),
                ACCURACY: _json_value(metrics[ACCURACY]), **_json_value(per_class),
                F1_MACRO: _json_value(metrics[F1_MACRO]), CONFUSION: self.confusion.tolist()}

    def _positions(self, names: np.ndarray) -> np.ndarray:
        """Each name's row in the matrix, adding the names not yet known to :attr:`unseen`."""
        position, known = lookup(self._known, names)
        fresh = sorted(set(names[~known]) - set(self.unseen))
        if fresh:
            self._grow(fresh)
        result = np.empty(len(names), dtype=np.intp)
        result[known] = self._known_index[position[known]]
        result[~known] = len(self.classes) + np.searchsorted(np.array(self.unseen, dtype=object), names[~known])
        return result

    def _grow(self, fresh: list[str]) -> None:
        unseen = tuple(sorted((*self.unseen, *fresh)))
        keep = np.concatenate([np.arange(len(self.classes)),
                               len(self.classes) + np.searchsorted(np.array(unseen, dtype=object), self.unseen)])
        grown = np.zeros((len(self.classes) + len(unseen),) * 2, dtype=np.int64)
        grown[np.ix_(keep.astype(np.intp), keep.astype(np.intp))] = self.confusion
        self.unseen, self.confusion = unseen, grown


class RegressionWindow:
    """Mergeable realised performance of a regressor over a window: the count of scored pairs and the sums
    of the :func:`moments` ``r``, ``|r|``, ``r^2``, ``r^4`` of the residual ``r = prediction - label``."""

    __slots__ = ("labelled", "sums", "unscored")

    def __init__(self):
        self.labelled, self.unscored = 0, 0
        self.sums = np.zeros(4)

    def update(self, predicted, labels) -> None:
        """Add a batch of predictions and their labels (float arrays, one of each per pair; NaN is missing)."""
        predicted, labels = np.asarray(predicted, dtype=float), np.asarray(labels, dtype=float)
        if predicted.ndim != 1 or predicted.shape != labels.shape:
            raise ValueError(f"need two 1-D arrays of one length, got shapes {predicted.shape} and {labels.shape}")
        residuals = predicted - labels
        scored = ~np.isnan(residuals)
        self.labelled += int(scored.sum())
        self.unscored += int(len(residuals) - scored.sum())
        self.sums += moments(residuals[scored]).sum(axis=0)

    def merge(self, other: "RegressionWindow") -> None:
        self.labelled += other.labelled
        self.unscored += other.unscored
        self.sums += other.sums

    def metrics(self) -> dict[str, float]:
        return {name: float(value) for name, value in residual_metrics(self.labelled, self.sums).items()}

    def result(self) -> dict:
        """JSON-ready: ``labelled``, ``unscored`` and each metric (None without pairs)."""
        return {"labelled": self.labelled, "unscored": self.unscored, **_json_value(self.metrics())}


PerformanceWindow = Union[ClassificationWindow, RegressionWindow]


# ---------------------------------------------------------------- baselines


@dataclass(frozen=True, eq=False)
class ClassificationBaseline:
    """The model's performance on the baseline rows: ``target`` names the label column, ``confusion`` counts
    the rows by (label, prediction) over ``classes``, ``unscored`` the rows missing either."""

    target: str
    classes: tuple[str, ...]
    confusion: np.ndarray
    unscored: int = 0
    type: ClassVar[str] = CATEGORICAL

    def __post_init__(self):
        shape = (len(self.classes),) * 2
        if self.confusion.shape != shape or np.any(self.confusion < 0) or self.confusion.sum() < 1:
            raise ValueError(f"confusion must be {shape} non-negative counts, at least one")
        self.window()  # classes distinct

    @classmethod
    def from_pairs(cls, target: str, predicted: Sequence[Optional[str]], labels: Sequence[Optional[str]]):
        """The baseline of these predictions and labels (strings; None is missing). Its classes are every
        value of either, most frequent first, ties by value."""
        codes, names = pd.factorize(np.array([*predicted, *labels], dtype=object))
        names = np.asarray(names, dtype=object)
        window = ClassificationWindow(names[by_count(names, np.bincount(codes[codes >= 0], minlength=len(names)))])
        window.update(names, codes[:len(predicted)], codes[len(predicted):])
        return cls(target, window.classes, window.confusion, window.unscored)

    @property
    def labelled(self) -> int:
        return int(self.confusion.sum())

    def window(self) -> ClassificationWindow:
        """An empty window over this baseline's classes."""
        return ClassificationWindow(self.classes)

    def metrics(self) -> dict[str, np.ndarray]:
        return confusion_metrics(self.confusion)

    def to_dict(self) -> dict:
        window = self.window()
        window.confusion, window.unscored = self.confusion, self.unscored
        return {"type": self.type, "target": self.target, **window.result()}

    @classmethod
    def from_dict(cls, data: Mapping) -> "ClassificationBaseline":
        """The entry :meth:`to_dict` wrote (its metrics are for readers, derived again here)."""
        classes = data["classes"]
        if not isinstance(classes, list) or not all(isinstance(name, str) for name in classes):
            raise TypeError("classes must be a list of strings")
        return cls(str(data["target"]), tuple(classes), np.asarray(data[CONFUSION], dtype=np.int64),
                   int(data["unscored"]))


@dataclass(frozen=True, eq=False)
class RegressionBaseline:
    """The model's performance on the baseline rows: ``labelled`` rows scored (``unscored`` missing either),
    the sums of their :func:`moments` (``r = prediction - label``), and ``residuals``: every ``r`` sorted,
    or a seeded subsample (the caller's, :func:`udfs.baseline.training_sample`)."""

    target: str
    labelled: int
    sums: np.ndarray
    residuals: np.ndarray
    unscored: int = 0
    type: ClassVar[str] = NUMERIC

    def __post_init__(self):
        if self.labelled < 2 or len(self.residuals) < 2 or not np.isfinite(self.residuals).all():
            raise ValueError("need at least 2 scored rows and finite residuals")
        if self.sums.shape != (4,) or not np.all(variances(self.labelled, self.sums) > 0):
            raise ValueError("need the 4 sums of r, |r|, r^2, r^4 and residuals of at least two sizes")

    @classmethod
    def from_pairs(cls, target: str, predicted, labels, sample=np.sort) -> "RegressionBaseline":
        """The baseline of these predictions and labels (NaN is missing); ``sample`` keeps the residuals."""
        window = RegressionWindow()
        window.update(predicted, labels)
        residuals = np.asarray(predicted, dtype=float) - np.asarray(labels, dtype=float)
        return cls(target, window.labelled, window.sums, sample(residuals[~np.isnan(residuals)]), window.unscored)

    def window(self) -> RegressionWindow:
        return RegressionWindow()

    def metrics(self) -> dict[str, float]:
        return {name: float(value) for name, value in residual_metrics(self.labelled, self.sums).items()}

    def to_dict(self) -> dict:
        return {"type": self.type, "target": self.target, "labelled": self.labelled, "unscored": self.unscored,
                **_json_value(self.metrics()), "sums": self.sums.tolist(), "residuals": self.residuals.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping) -> "RegressionBaseline":
        return cls(str(data["target"]), int(data["labelled"]), np.asarray(data["sums"], dtype=float),
                   np.asarray(data["residuals"], dtype=float), int(data["unscored"]))


PerformanceBaseline = Union[ClassificationBaseline, RegressionBaseline]
BASELINE_TYPES: dict[str, type] = {CATEGORICAL: ClassificationBaseline, NUMERIC: RegressionBaseline}


# ---------------------------------------------------------------- the alert test


@dataclass(frozen=True)
class Verdict:
    """One (window, metric[, class]) test: ``value`` against ``baseline``, alerted when ``p_value`` is below
    the rate, equivalently when ``value`` is below ``low`` or above ``high`` (None: no bound that side)."""

    metric: str
    value: Optional[float]
    baseline: Optional[float]
    low: Optional[float]
    high: Optional[float]
    p_value: Optional[float]
    alert: bool
    label: Optional[str] = None

    def to_dict(self) -> dict:
        return {"metric": self.metric, **({"class": self.label} if self.label is not None else {}),
                "value": self.value, "baseline": self.baseline, "low": self.low, "high": self.high,
                "p_value": self.p_value, "alert": self.alert}


def accuracy_cdf(n: int, baseline_correct: int, baseline_labelled: int) -> np.ndarray:
    """``P(X <= x)`` for ``x = 0..n`` and ``X ~ BetaBinomial(n, k + 1/2, m - k + 1/2)``, ``k`` of ``m`` the
    baseline's correct rows: the exact accuracy test's p-value of a window of ``n`` with ``x`` correct
    (module docstring). One pass over the counts, so that the p-value and the threshold agree."""
    k = float(baseline_correct)
    pmf = stats.betabinom.pmf(np.arange(n + 1), n, k + PRIOR, baseline_labelled - k + PRIOR)
    return np.minimum(np.cumsum(pmf), 1.0)


def accuracy_threshold(cdf: np.ndarray, rate: float) -> int:
    """The fewest correct pairs not alerted: a window is alerted when its count is below this, which is
    when its p-value (``cdf`` at its count) is below ``rate``."""
    return int(np.searchsorted(cdf, rate, side="left"))


def simulated_size(n: int) -> int:
    """The window size a simulated null is drawn at: ``n`` up to :data:`EXACT_SIZES`, else the nearest
    power of ``2 ** (1/8)``."""
    return int(n) if n <= EXACT_SIZES else int(round(2 ** (round(8 * np.log2(n)) / 8)))


def _tail_p_values(draws: np.ndarray, value: float, worse: str) -> float:
    """The share of the (defined) draws at least as bad as ``value``; ``both``: twice the smaller tail."""
    draws = draws[~np.isnan(draws)]
    if not len(draws):
        return float("nan")
    low, high = np.mean(draws <= value), np.mean(draws >= value)
    return float({"low": low, "high": high, "both": min(1.0, 2 * min(low, high))}[worse])


def _bounds(draws: np.ndarray, rate: float, worse: str) -> tuple[Optional[float], Optional[float]]:
    """``(low, high)`` with ``p < rate`` exactly when a value is below ``low`` or above ``high``: the
    ``ceil(rate * B)``-th smallest (largest) of the ``B`` defined draws (at ``rate / 2`` a side for ``both``)."""
    draws = np.sort(draws[~np.isnan(draws)])
    side = rate / 2 if worse == "both" else rate
    rank = int(np.ceil(side * len(draws) - 1e-9)) - 1
    if not len(draws) or rank < 0:
        return None, None
    low = float(draws[rank]) if worse in ("low", "both") else None
    high = float(draws[-1 - rank]) if worse in ("high", "both") else None
    return low, high


def _verdict(metric: str, value: float, baseline: float, draws: np.ndarray, rate: float,
             label: Optional[str] = None) -> Verdict:
    """A simulated test: ``draws`` of the metric under the null at the window's size."""
    worse = WORSE[metric]
    low, high = _bounds(draws, rate, worse)
    p = float("nan") if np.isnan(value) else _tail_p_values(draws, value, worse)
    return Verdict(metric, _json_value(value), _json_value(baseline), low, high, _json_value(p),
                   bool(p < rate), label)


class PerformanceTest:
    """The calibrated alert of each requested metric against a baseline (module docstring)."""

    def __init__(self, baseline: PerformanceBaseline, false_alarm_rate: float = 0.01,
                 metrics: Optional[Sequence[str]] = None, draws: int = DRAWS, seed: int = SEED):
        if not 0 < false_alarm_rate < 1:
            raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}")
        known = METRICS_BY_TYPE[baseline.type]
        metrics = tuple(known if metrics is None else metrics)
        unknown = [name for name in metrics if name not in known]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a {baseline.type} output's metric (known: {', '.join(known)})")
        self.baseline, self.rate, self.metrics, self.draws, self.seed = baseline, false_alarm_rate, metrics, draws, seed
        self._nulls: dict[int, dict[str, np.ndarray]] = {}

    def verdicts(self, window: PerformanceWindow) -> list[Verdict]:
        """Every requested metric's `Verdict` for ``window`` (per baseline class for the per-class metrics);
        none for a window without scored pairs."""
        if window.labelled == 0:
            return []
        if self.baseline.type == NUMERIC:
            return self._regression(window)
        return self._classification(window)

    def null(self, n: int) -> dict[str, np.ndarray]:
        """The simulated null draws at window size ``n`` (:func:`simulated_size`), per metric: ``(draws,)``,
        or ``(draws, K)`` per class."""
        size = simulated_size(n)
        if size not in self._nulls:
            rng = np.random.default_rng([self.seed, size])
            draw = self._regression_null if self.baseline.type == NUMERIC else self._classification_null
            self._nulls[size] = draw(size, rng)
        return self._nulls[size]

    # ---- classification

    def _classification(self, window: ClassificationWindow) -> list[Verdict]:
        values, reference = window.metrics(), self.baseline.metrics()
        null = self.null(window.labelled)
        result = [self._accuracy(window)] if ACCURACY in self.metrics else []
        if F1_MACRO in self.metrics:
            result.append(_verdict(F1_MACRO, values[F1_MACRO], reference[F1_MACRO], null[F1_MACRO], self.rate))
        for metric in (m for m in PER_CLASS if m in self.metrics):
            result += [_verdict(metric, values[metric][c], reference[metric][c], null[metric][:, c], self.rate, name)
                       for c, name in enumerate(self.baseline.classes)]
        return result

    def _accuracy(self, window: ClassificationWindow) -> Verdict:
        n, correct = window.labelled, int(np.trace(window.confusion))
        baseline_correct, baseline_labelled = int(np.trace(self.baseline.confusion)), self.baseline.labelled
        cdf = accuracy_cdf(n, baseline_correct, baseline_labelled)
        p = float(cdf[correct])
        return Verdict(ACCURACY, correct / n, baseline_correct / baseline_labelled,
                       accuracy_threshold(cdf, self.rate) / n, None, p, p < self.rate)

    def _classification_null(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        cells = self.baseline.confusion
        result = {}
        if any(m in self.metrics for m in PER_CLASS):
            per_class = _class_cells(cells)  # (K, 4): tp, fn, fp, rest
            drawn = rng.multinomial(n, _dirichlet(rng, per_class + PRIOR, self.draws))
            metrics = confusion_metrics(drawn.reshape(*drawn.shape[:-1], 2, 2))
            result.update({metric: metrics[metric][..., 0] for metric in PER_CLASS})
        if F1_MACRO in self.metrics:
            drawn = rng.multinomial(n, _dirichlet(rng, (cells + _macro_prior(len(cells))).reshape(-1), self.draws))
            drawn = drawn.reshape(self.draws, *cells.shape)
            result[F1_MACRO] = confusion_metrics(drawn)[F1_MACRO]
        return result

    # ---- regression

    def _regression(self, window: RegressionWindow) -> list[Verdict]:
        """The window's means of ``r``, ``|r|``, ``r^2`` under the null: the baseline's, plus the bootstrap's
        differences rescaled to the pooled variance (module docstring), as metrics."""
        baseline = self.baseline
        values, reference = window.metrics(), baseline.metrics()
        pooled = variances(baseline.labelled + window.labelled, baseline.sums + window.sums)
        scale = np.sqrt(pooled / variances(baseline.labelled, baseline.sums))
        means = baseline.sums[:3] / baseline.labelled + self.null(window.labelled)["means"] * scale
        null = residual_metrics(1, np.maximum(means, [-np.inf, 0.0, 0.0]))
        return [_verdict(metric, values[metric], reference[metric], null[metric], self.rate) for metric in self.metrics]

    def _regression_null(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``means``: ``(draws, 3)`` differences ``mean(W*) - mean(B*)`` of ``r``, ``|r|``, ``r^2``."""
        return {"means": _resampled_deviations(self._residual_moments, n, self.draws, rng) - self._baseline_deviations}

    @cached_property
    def _residual_moments(self) -> np.ndarray:
        return moments(self.baseline.residuals)[:, :3]

    @cached_property
    def _baseline_deviations(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 0])
        return _resampled_deviations(self._residual_moments, self.baseline.labelled, self.draws, rng)


def _class_cells(confusion: np.ndarray) -> np.ndarray:
    """``(K, 4)``: each class's ``tp, fn, fp`` and the rest of the pairs, in the order of a 2 x 2 confusion
    matrix of (this class, any other)."""
    tp = np.diag(confusion)
    fn, fp = confusion.sum(axis=1) - tp, confusion.sum(axis=0) - tp
    return np.stack([tp, fn, fp, confusion.sum() - tp - fn - fp], axis=-1)


def _macro_prior(classes: int) -> np.ndarray:
    """``(K, K)``: :data:`PRIOR` on the diagonal, ``PRIOR / (K - 1)`` off it, so that every class's
    ``(tp, fn, fp)`` margins get :data:`PRIOR` each, as in its own per-class test."""
    off = PRIOR / max(classes - 1, 1)
    return np.full((classes, classes), off) + np.eye(classes) * (PRIOR - off)


def _dirichlet(rng: np.random.Generator, concentrations: np.ndarray, draws: int) -> np.ndarray:
    """``(draws, *concentrations.shape)``: draws of ``Dirichlet(concentrations)`` over the last axis."""
    gammas = rng.standard_gamma(np.broadcast_to(concentrations, (draws, *concentrations.shape)))
    return gammas / gammas.sum(axis=-1, keepdims=True)


def _resampled_deviations(rows: np.ndarray, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(draws, columns)``: means of ``n`` rows resampled from ``rows`` (with replacement) minus the rows'
    mean; above :data:`DIRECT_LIMIT` rows drawn at that size and scaled by ``sqrt(limit / n)``."""
    size, columns = min(n, DIRECT_LIMIT), np.ascontiguousarray(rows.T)
    chunk = max(1, 2 ** 22 // size)

    def means(count: int) -> np.ndarray:
        """One chunk of draws; a column at a time, summed along the contiguous axis (ten times numpy's mean
        over the middle axis of the gathered rows)."""
        index = rng.integers(len(rows), size=(count, size))
        return np.stack([np.take(column, index).sum(axis=-1) for column in columns], axis=-1) / size
    drawn = np.concatenate([means(min(chunk, draws - start)) for start in range(0, draws, chunk)])
    return (drawn - rows.mean(axis=0)) * np.sqrt(size / n)
