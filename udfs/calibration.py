"""Drift thresholds calibrated to the window size: ``threshold: auto``.

A drift metric between a window and the baseline is never 0 even without drift, because both are
finite samples; how large it gets by chance depends on the window's size ``n`` and the training size
``m``. :func:`threshold_curves` gives, per feature, the value that a window of ``n`` values drawn from
the training data's own distribution exceeds with probability ``false_alarm_rate``.

Histogram metrics: a two-sample null from the training sample's spacings. The ``m`` sorted training
values cut the line into ``m + 1`` spacings (two of them the open tails below the minimum and above the
maximum). For any continuous distribution, the probability masses of these spacings are jointly
``Dirichlet(1, ..., 1)`` (the spacings of uniform order statistics), whatever the distribution is. A
slot of the drift layout collects whole spacings, or, where an edge cuts a spacing, the fraction of it
below the edge (linear within the spacing), so the window's slot probabilities are
``pi ~ Dirichlet(alpha)`` with ``alpha_j`` the number of spacings in slot ``j``
(:func:`slot_concentrations`): 1 each for underflow and overflow, the reference count for a bin between
two training values. Then::

    pi ~ Dirichlet(alpha),   w ~ Multinomial(n, pi),   threshold = quantile_{1 - rate} metric(w, q)

with ``q`` the baseline's own histogram. With edges at training values this is the exact null of KL,
JS, PSI and Hellinger for every continuous feature, the reference's noise included: fresh training sets
give other edges but the same counts and the same ``alpha``. The default quantile edges sit midway
between two training values and split one spacing in halves, so ``alpha = (1, c_1 - 1/2, c_2, ...,
c_{k-1}, c_k - 1/2, 1)`` for counts ``c``: exact but for how each split spacing shares its mass. The tails beyond the
training range get the mass they really have (about ``1 / (m + 1)`` each), bins empty in the reference
get the fraction of the spacing they cover (equal-width bins), and a discrete feature's ties make
zero-length spacings inside their bin, so ``alpha`` is about the reference count there: the Bayesian
bootstrap of the binned data, right to first order. Wasserstein also depends on where the edges fall;
the calibration keeps the observed edges (again a Bayesian bootstrap), an approximation that the
benchmark (``mmon bench --profile calibration``) checks. When the baseline stores a subsample
(``count`` above :data:`udfs.baseline.MAX_SAMPLE`), ``alpha`` is scaled by ``(count + 1) / (sample + 1)``.
Assumed throughout: a window's values are independent draws (no autocorrelation within a window).

Categorical features (and a categorical output): the same null over their layout ``[c_1..c_K, other,
unseen]`` (:func:`category_concentrations`). A fresh training set of the same population would give
other counts; the window's slot probabilities are ``pi ~ Dirichlet(alpha)`` with ``alpha`` the baseline's
counts (the Bayesian bootstrap of the training values, what the spacings give a discrete numeric
feature), ``other`` included (an empty ``other`` keeps :data:`MIN_CONCENTRATION`), and the ``unseen``
slot the training count of the lumped values the baseline no longer names (``other_unnamed``, which
windows count as unseen too). One correction, Good-Turing's (Good 1953): a value seen once in ``m``
training values stands, in a fresh sample, for the values never seen, whose total chance is about
``singletons / m``; so the singletons' counts move from their slots to ``unseen`` (at least 1 there: the
mass each numeric tail gets, a chance of about ``1 / (m + 1)``). A feature of few categories thus has
``alpha_unseen = 1``, and a high-cardinality one (a postcode) expects the new values it really meets,
neither flagging every window for them nor counting the rare values twice.

``chi2`` joins the same simulation, but it is a test statistic that grows with ``n`` (about
``chi2(B - 1) * (1 + n / m)`` without drift): its curve is made monotone as ``chi2 / n`` (the chi-square
divergence, which shrinks with ``n`` like the distances), then multiplied back.

Two-sample tests (``ks``, ``cvm``): their own distribution-free two-sample nulls at sizes
``m = len(sample)`` and ``n`` (:func:`udfs.two_sample.ks_threshold`, :func:`udfs.two_sample.cvm_threshold`);
no simulation. ``missing_rate``: exact from the beta-binomial (:func:`missing_rate_thresholds`), no
simulation either.

Cost: per (baseline, rate), one simulation for every histogram metric: per distinct null (features
with equal ``alpha`` and counts share one), :data:`DRAWS` Dirichlet draws, and for each of the :data:`GRID` window sizes (powers of two) a multinomial window per
draw; seeded and so reproducible, cached. A larger window can only lessen the sampling noise, so each
curve is made non-increasing in the window size (a running minimum, which also irons out Monte-Carlo
wiggles). Other window sizes interpolate linearly in (log size, log threshold); sizes beyond the grid take
the nearest grid value. The running minimum starts at the curve's peak: KL and PSI, smoothed by a
pseudo-count, first grow with the window (with 42 bins PSI's 99 % point rises from 0.37 at 4 values to 0.69
at 32 and falls to 0.47 at 128, 0.28 at 256); a running minimum from the smallest window held it at 0.37 up
to 128 values and flagged 10.6 % of null windows of 150 values of a 300-feature model.

P-values (:meth:`ThresholdCurves.p_values`): the same simulation keeps, per grid size, the sorted null
values at :data:`NULL_LEVELS` (every one of the top :data:`EXACT_TAIL`, where a multiple-testing control
reads them, and every :data:`BODY_STEP`-th below), made non-increasing in the window size level by
level as the thresholds are (the running minimum from each level's peak on). A window of ``n`` values reads its null
quantile function interpolated like the thresholds, level by level in (log size, log value), and its
p-value is ``(1 + #{null >= observed}) / (1 + DRAWS)`` (linear in the value between two stored levels of
the body), and beyond the largest null value that times an exponential tail fitted to the top
:data:`EXACT_TAIL` values (`_tail_decay`), so that values past every draw still rank: a control over
thousands of tests needs p-values far below ``1 / (1 + DRAWS)``. So ``p <= rate`` exactly when the value exceeds the null's ``1 - rate`` point, up to one
order statistic of the :data:`DRAWS` (the threshold interpolates between two). ``ks``, ``cvm`` and
``missing_rate`` have closed-form p-values (:func:`udfs.two_sample.ks_p_value`,
:func:`udfs.two_sample.cvm_p_value`, :func:`missing_rate_p_values`).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from udfs import drift, two_sample
from udfs.baseline import CATEGORICAL, NUMERIC, Baseline, CategoricalBaseline, ColumnBaseline, FeatureBaseline

GRID = 2 ** np.arange(2, 17)  # window sizes 4 .. 65,536
_LOG_GRID = np.log(GRID)
DRAWS = 4000
SEED = 20_21_0611
MIN_CONCENTRATION = 1e-3  # a slot beyond the sample's range (thesis-format edges), an empty other: a trace
MISSING_PRIOR = 1.0  # Beta(missing + 1, count + 1): missing_rate_thresholds
TEST_THRESHOLDS = {"ks": two_sample.ks_threshold, "cvm": two_sample.cvm_threshold}
EXACT_TAIL = 200  # the top null values kept one by one: p-values <= 200 / DRAWS (5 %) exact
BODY_STEP = 100  # below them, every 100th sorted null value (p-values linear in between)
NULL_LEVELS = np.union1d(np.arange(0, DRAWS - EXACT_TAIL, BODY_STEP), np.arange(DRAWS - EXACT_TAIL, DRAWS))
"""Indices into the :data:`DRAWS` sorted null values of a (metric, column, window size) kept for p-values."""
TEST_P_VALUES = {"ks": two_sample.ks_p_value, "cvm": two_sample.cvm_p_value}
_CACHE_SIZE = 32
_cache: "OrderedDict[tuple, tuple[dict, dict]]" = OrderedDict()


@dataclass(frozen=True)
class ThresholdCurves:
    """Per feature, the calibrated thresholds on the :data:`GRID` window sizes; small and picklable,
    so a job computes them once at start and ships them to its workers."""

    values: dict[str, np.ndarray]
    nulls: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Per column, the logs of its null's sorted values at :data:`NULL_LEVELS` (``GRID x levels``, single precision:
    14 MB for Wasserstein at 1,000 features, shipped with the job), for p-values; columns sharing one null share one
    array. Empty for the two-sample tests (closed form)."""

    def p_values(self, feature: str, window_sizes, values) -> np.ndarray:
        """``feature``'s p-values of ``values`` observed in windows of ``window_sizes`` (module docstring)."""
        sizes = np.asarray(window_sizes, dtype=float)
        rows = np.broadcast_to(self.nulls[feature], (len(sizes), *self.nulls[feature].shape))
        return exceedance_p_values(interpolate_rows(rows, np.log(np.maximum(sizes, 1))), values)

    def at(self, window_size: int) -> dict[str, float]:
        """Per-feature threshold ``{feature: float}`` for a window of ``window_size`` values."""
        if window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        return {name: float(self.of(name, [window_size])[0]) for name in self.values}

    def of(self, feature: str, window_sizes) -> np.ndarray:
        """``feature``'s thresholds for windows of these sizes (log-log interpolation on the grid)."""
        sizes = np.asarray(window_sizes, dtype=float)
        if np.any(sizes < 1):
            raise ValueError(f"window sizes must be >= 1, got {sizes.min():g}")
        return np.exp(np.interp(np.log(sizes), np.log(GRID), np.log(self.values[feature])))


def threshold_curves(baseline: Baseline, metric: str, false_alarm_rate: float = 0.01, *,
                     normalize: bool = False) -> ThresholdCurves:
    """The calibrated `ThresholdCurves` of ``metric`` at ``false_alarm_rate`` for every column (features and
    output, :attr:`udfs.baseline.Baseline.columns`) of a type the metric applies to
    (:data:`udfs.drift.METRICS_BY_TYPE`).

    ``metric`` is a name in :data:`udfs.drift.METRIC_NAMES` but ``missing_rate``
    (:func:`missing_rate_thresholds`); ``normalize=True`` gives the Wasserstein thresholds divided by the
    baseline std (unit-free), matching ``wasserstein(..., normalize_by=std)``. The first call for a
    (baseline, rate) simulates every histogram metric at once (about 0.7 s per distinct null: Iris's four
    features take about 3 s); later calls, other metrics included, read the cache.
    """
    _check_rate(false_alarm_rate)
    if metric not in drift.METRIC_NAMES:
        raise ValueError(f"unknown drift metric {metric!r} (known: {', '.join(drift.METRIC_NAMES)})")
    if metric == drift.MISSING_RATE:
        raise ValueError("missing_rate thresholds are exact per window size: call missing_rate_thresholds")
    if normalize and metric != "wasserstein":
        raise ValueError(f"normalize applies to wasserstein only, not {metric}")
    columns = {name: column for name, column in baseline.columns.items()
               if metric in drift.METRICS_BY_TYPE[column.type]}
    if metric in TEST_THRESHOLDS:
        return ThresholdCurves({name: TEST_THRESHOLDS[metric](len(feature.sample), GRID, false_alarm_rate)
                                for name, feature in columns.items()})
    grids, nulls = _threshold_grids(baseline, false_alarm_rate)
    scales = {name: _scale(column, normalize) for name, column in columns.items()}
    return ThresholdCurves({name: grids[name][metric] / scales[name] for name in columns},
                           {name: _log_scaled(nulls[name][metric], scales[name]) for name in columns})


def _log_scaled(log_levels: np.ndarray, scale: float) -> np.ndarray:
    """A column's log null levels divided by ``scale`` (the same array when 1: columns keep sharing it)."""
    return log_levels if scale == 1.0 else log_levels - np.log(scale)


def missing_rate_thresholds(feature: ColumnBaseline, totals, false_alarm_rate: float = 0.01) -> np.ndarray:
    """The ``missing_rate`` threshold of ``feature`` for windows of these ``totals`` (present + missing).

    Without drift a window of ``n`` values has ``X ~ Binomial(n, r)`` missing, ``r`` the population's
    rate, which the training set knows as ``missing`` out of ``count + missing``: with its posterior
    ``r ~ Beta(missing + 1, count + 1)`` (the training set's own noise, as in the histogram nulls),
    ``X ~ BetaBinomial(n, missing + 1, count + 1)``. The threshold is the smallest gap ``t`` with
    ``P(|X / n - r_hat| > t) <= false_alarm_rate``, ``r_hat`` the baseline's rate: two-sided, exact from
    the pmf over ``x = 0..n``, once per distinct window size (about a millisecond at 10,000 values). Same
    shape as ``totals``.

    The prior is the uniform one (:data:`MISSING_PRIOR` = 1 on each side, the mass each numeric tail
    gets) rather than Jeffreys' 1/2: summed exactly over fresh training sets and windows at a nominal
    5 %, Jeffreys' lets a training set with few missing values flag up to 7.1 % of the windows, the
    uniform prior at most 5.8 % for training sets of 100 rows and more (5.3 % from 300 rows; rates 1-50 %,
    windows of 5-10,000 values), and less where the counts are small or discrete. Very small training
    sets against much larger windows exceed it (30 rows, 10,000-value windows: 8.7 %).
    """
    _check_rate(false_alarm_rate)
    totals = np.asarray(totals)
    sizes, inverse = np.unique(np.maximum(totals, 1).astype(np.int64), return_inverse=True)
    limits = np.array([_missing_rate_quantile(feature, int(n), false_alarm_rate) for n in sizes])
    return limits[inverse].reshape(totals.shape)


def drift_thresholds(baseline: Baseline, metric: str, window_size: int, false_alarm_rate: float = 0.01,
                     *, normalize: bool = False) -> dict[str, float]:
    """Per-feature threshold ``{feature: float}`` for a window of ``window_size`` values: the
    `threshold_curves` of ``metric`` read at ``window_size`` (tens of microseconds once calibrated)."""
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    return threshold_curves(baseline, metric, false_alarm_rate, normalize=normalize).at(window_size)


def slot_concentrations(feature: ColumnBaseline) -> np.ndarray:
    """``alpha``: the Dirichlet concentrations of the window's slot probabilities (module docstring)."""
    return category_concentrations(feature) if feature.type == CATEGORICAL else spacing_concentrations(feature)


def category_concentrations(feature: CategoricalBaseline) -> np.ndarray:
    """``alpha`` of a categorical feature: its layout counts ``[c_1..c_K, other, unseen]`` (the baseline's
    unseen being ``other_unnamed``) with the training singletons' counts moved to ``unseen`` (Good-Turing:
    at least 1 there), each at least :data:`MIN_CONCENTRATION` (module docstring)."""
    alpha = feature.histogram_counts().astype(float) - _singletons_by_slot(feature)
    alpha[-1] += max(1, feature.singletons)
    return np.maximum(alpha, MIN_CONCENTRATION)


def _singletons_by_slot(feature: CategoricalBaseline) -> np.ndarray:
    """How many training values seen once each slot holds. Values rank by count, so the singletons are
    the last: categories of count 1, then, in ``other``, the unnamed values first (the rarest)."""
    in_categories = feature.counts == 1
    lumped = feature.singletons - int(in_categories.sum())
    unnamed = feature.distinct - len(feature.categories) - len(feature.other_values)
    in_unseen = min(lumped, unnamed)
    return np.concatenate([in_categories, [lumped - in_unseen, in_unseen]]).astype(float)


def spacing_concentrations(feature: FeatureBaseline) -> np.ndarray:
    """``alpha`` of a numeric feature, from the spacings of its training sample (module docstring).

    With ``x_1 <= ... <= x_s`` the sample and ``r(e)`` the number of inner spacings below edge ``e``
    (``i - 1 + (e - x_{i-1}) / (x_i - x_{i-1})`` for ``x_{i-1} < e <= x_i``, 0 below ``x_1``, ``s - 1``
    above ``x_s``), the cumulative spacings are ``[0, 1 + r(e_0), ..., 1 + r(e_k), s + 1]`` and
    ``alpha`` their differences, times ``(count + 1) / (s + 1)``, at least :data:`MIN_CONCENTRATION`,
    rounded to 1e-9 (a quantile edge halves its spacing up to rounding; features alike share a null).
    """
    sample = feature.sample
    cumulative = np.concatenate([[0.0], 1.0 + _spacings_below(sample, feature.edges), [len(sample) + 1.0]])
    alpha = np.diff(cumulative) * (feature.count + 1) / (len(sample) + 1)
    return np.round(np.maximum(alpha, MIN_CONCENTRATION), 9)


def null_thresholds(features: Sequence[ColumnBaseline], rate: float,
                    window_sizes: Sequence[int]) -> list[dict[str, np.ndarray]]:
    """Per feature, the ``1 - rate`` quantile of every histogram metric's null (:data:`udfs.drift.LAYOUT_METRICS`,
    Wasserstein for numeric features only) at each window size.

    Features with the same ``alpha`` and reference histogram (e.g. equal training sizes, no ties,
    quantile bins) share one simulation: their KL, JS, PSI, Hellinger and chi2 thresholds are equal, and
    Wasserstein's differ only through their edges, ``W = cdf_gaps(w, q) @ diff(support_points(edges))``.
    """
    return [{metric: thresholds for metric, (thresholds, _) in null.items()}
            for null in null_summaries(features, rate, window_sizes)]


def null_summaries(features: Sequence[ColumnBaseline], rate: float,
                   window_sizes: Sequence[int]) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per feature and histogram metric, ``(thresholds, levels)`` at each window size: `null_thresholds`' and
    the sorted null values at :data:`NULL_LEVELS` (``sizes x levels``; one array shared by the features of
    a shared null, Wasserstein's apart)."""
    results: list[dict[str, tuple[np.ndarray, np.ndarray]]] = [{} for _ in features]
    for group_index, members in enumerate(_shared_nulls(features)):
        group = [features[i] for i in members]
        for i, summary in zip(members, _group_nulls(group, rate, window_sizes, group_index)):
            results[i] = summary
    return results


def _group_nulls(group: Sequence[ColumnBaseline], rate: float, window_sizes: Sequence[int],
                 group_index: int) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """`null_summaries` of features sharing one null, simulated once (seeded by ``group_index``)."""
    first = group[0]
    rng = np.random.default_rng([SEED, group_index])
    slot_probabilities = rng.dirichlet(slot_concentrations(first), size=DRAWS)
    reference = first.histogram_counts()
    numeric = [feature for feature in group if feature.type == NUMERIC]
    support_gaps = np.array([np.diff(drift.support_points(feature.edges)) for feature in numeric]).T
    sizes = len(window_sizes)
    shared = {metric: (np.empty(sizes), np.empty((sizes, len(NULL_LEVELS))))
              for metric in drift.LAYOUT_METRICS if metric != "wasserstein"}
    wasserstein = (np.empty((len(numeric), sizes)), np.empty((len(numeric), sizes, len(NULL_LEVELS))))
    for s, size in enumerate(window_sizes):
        windows = rng.multinomial(size, slot_probabilities)
        for metric, (thresholds, levels) in shared.items():
            null = np.sort(drift.compute(metric, windows, reference))
            thresholds[s], levels[s] = np.quantile(null, 1.0 - rate), null[NULL_LEVELS]
        if numeric:
            null = np.sort(drift.cdf_gaps(windows, reference) @ support_gaps, axis=0)
            wasserstein[0][:, s], wasserstein[1][:, s] = np.quantile(null, 1.0 - rate, axis=0), null[NULL_LEVELS].T
    numeric_rows = iter(range(len(numeric)))  # in group order
    results = []
    for feature in group:
        summary = {metric: (thresholds.copy(), levels) for metric, (thresholds, levels) in shared.items()}
        if feature.type == NUMERIC:
            row = next(numeric_rows)
            summary["wasserstein"] = (wasserstein[0][row], wasserstein[1][row])
        results.append(summary)
    return results


def _shared_nulls(features: Sequence[ColumnBaseline]) -> list[list[int]]:
    """Indices of ``features`` grouped by (``alpha``, reference histogram), in order of first appearance."""
    groups: dict[bytes, list[int]] = {}
    for index, feature in enumerate(features):
        key = slot_concentrations(feature).tobytes() + feature.histogram_counts().astype(float).tobytes()
        groups.setdefault(key, []).append(index)
    return list(groups.values())


def _spacings_below(sample: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``r(e)`` of :func:`slot_concentrations` for every edge; a tied value's spacings count above it."""
    last = len(sample) - 1
    upper = np.searchsorted(sample, edges, side="left")
    below = np.where(upper == 0, 0.0, float(last))
    inside = (upper > 0) & (upper <= last)
    lo, hi = sample[upper[inside] - 1], sample[upper[inside]]
    below[inside] = upper[inside] - 1 + (edges[inside] - lo) / (hi - lo)
    return below


def _check_rate(false_alarm_rate: float) -> None:
    if not 0 < false_alarm_rate < 1:
        raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}")


def _missing_rate_quantile(feature: ColumnBaseline, n: int, rate: float) -> float:
    """The smallest gap ``t = |x / n - r_hat|`` with ``P(|X / n - r_hat| > t) <= rate`` under the
    beta-binomial of :func:`missing_rate_thresholds`; the gaps are the statistic's own floats."""
    return _tail_quantile(_missing_rate_null(feature, n), rate)


def _missing_rate_null(feature: ColumnBaseline, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct gaps ``|x / n - r_hat|`` (``x = 0..n``) in increasing order and ``P(gap >= each)`` under the
    beta-binomial of :func:`missing_rate_thresholds`."""
    x = np.arange(n + 1)
    pmf = stats.betabinom.pmf(x, n, feature.missing + MISSING_PRIOR, feature.count + MISSING_PRIOR)
    return _tail_null(np.abs(x / n - feature.missing_rate), pmf)


def _tail_null(statistic: np.ndarray, pmf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A discrete statistic's distinct values in increasing order and the chance of each or more (``pmf``: the
    chance of each entry of ``statistic``)."""
    distinct, inverse = np.unique(statistic, return_inverse=True)
    mass = np.bincount(inverse.ravel(), weights=pmf, minlength=len(distinct))
    return distinct, np.cumsum(mass[::-1])[::-1]


def _tail_quantile(null: tuple[np.ndarray, np.ndarray], rate: float) -> float:
    """The smallest value ``t`` of a `_tail_null` with ``P(statistic > t) <= rate``."""
    values, at_or_beyond = null
    beyond = np.append(at_or_beyond[1:], 0.0)  # P(statistic > values[i])
    return float(values[np.argmax(beyond <= rate)])


def _tail_p_values(null: tuple[np.ndarray, np.ndarray], observed: np.ndarray) -> np.ndarray:
    """``P(statistic >= each observed value)`` of a `_tail_null` (the observed values are among its own floats)."""
    values, at_or_beyond = null
    found = np.searchsorted(values, observed * (1 - 1e-12), side="left")
    return np.minimum(np.append(at_or_beyond, 0.0)[found], 1.0)


def _per_window_size(totals, values, per_size) -> np.ndarray:
    """``per_size(n, rows)`` for each distinct window size ``n`` of ``totals`` (at least 1) over the rows of that
    size; NaN where ``values`` is (a window without values)."""
    totals, values = np.maximum(np.asarray(totals), 1).astype(np.int64), np.asarray(values, dtype=float)
    result = np.full(len(values), np.nan)
    for n in np.unique(totals):
        rows = np.flatnonzero(totals == n)
        result[rows] = per_size(int(n), rows)
    return np.where(np.isnan(values), np.nan, result)


def missing_rate_p_values(feature: ColumnBaseline, totals, values) -> np.ndarray:
    """``P(|X / n - r_hat| >= value)`` under the beta-binomial of :func:`missing_rate_thresholds` for each
    window of ``totals`` values and observed ``missing_rate`` ``values``: ``p <= rate`` exactly when the value
    exceeds the threshold at ``rate`` (the statistic is discrete: its p-values are conservative)."""
    values = np.asarray(values, dtype=float)
    return _per_window_size(totals, values,
                            lambda n, rows: _tail_p_values(_missing_rate_null(feature, n), values[rows]))


def _outlier_rate_null(feature: FeatureBaseline, lower: float, upper: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The window's share ``x / n`` of values beyond ``[lower, upper]`` and ``P(share >= each)`` without drift: the
    training sample has ``k`` of its ``m`` values beyond, so with the uniform prior the population's share is
    ``Beta(k + 1, m - k + 1)`` and ``X ~ BetaBinomial(n, k + 1, m - k + 1)`` (the ``missing_rate`` null, one-sided:
    fewer outliers than the baseline's is no alarm)."""
    sample = feature.sample
    return _share_null(int(np.count_nonzero((sample < lower) | (sample > upper))), len(sample), n)


@lru_cache(maxsize=4096)
def _share_null(beyond: int, sample_size: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`_outlier_rate_null` by its counts, remembered: features of a wide model share few (k, m, n)."""
    x = np.arange(n + 1)
    return _tail_null(x / n, stats.betabinom.pmf(x, n, beyond + MISSING_PRIOR, sample_size - beyond + MISSING_PRIOR))


def outlier_rate_thresholds(feature: FeatureBaseline, lower: float, upper: float, totals,
                            false_alarm_rate: float = 0.01) -> np.ndarray:
    """The ``outlier_rate`` threshold of ``feature`` (bounds ``[lower, upper]``) for windows of ``totals`` present
    values: the smallest share ``t`` with ``P(X / n > t) <= false_alarm_rate`` (`_outlier_rate_null`)."""
    _check_rate(false_alarm_rate)
    totals = np.asarray(totals)
    return _per_window_size(totals, np.zeros(len(totals)), lambda n, rows: _tail_quantile(
        _outlier_rate_null(feature, lower, upper, n), false_alarm_rate))


def outlier_rate_p_values(feature: FeatureBaseline, lower: float, upper: float, totals, values) -> np.ndarray:
    """``P(X / n >= value)`` under `_outlier_rate_null` for each window of ``totals`` present values and observed
    share ``values``: ``p <= rate`` exactly when the share exceeds its threshold at ``rate``."""
    values = np.asarray(values, dtype=float)
    return _per_window_size(totals, values, lambda n, rows: _tail_p_values(
        _outlier_rate_null(feature, lower, upper, n), values[rows]))


def _scale(feature: ColumnBaseline, normalize: bool) -> float:
    return feature.std if normalize and feature.std > 0 else 1.0


def _threshold_grids(baseline: Baseline, rate: float) -> tuple[dict[str, dict[str, np.ndarray]],
                                                                   dict[str, dict[str, np.ndarray]]]:
    """Per column and histogram metric, its monotone threshold curve on `GRID` and its log null levels
    (`ThresholdCurves.nulls`), cached per (baseline, rate)."""
    key = (baseline.fingerprint, rate)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    columns = baseline.columns
    summaries = null_summaries(list(columns.values()), rate, GRID)
    grids = {name: {metric: _monotone(metric, thresholds) for metric, (thresholds, _) in summary.items()}
             for name, summary in zip(columns, summaries)}
    logs: dict[int, np.ndarray] = {}  # one log array per shared levels array
    nulls = {name: {metric: logs.setdefault(id(levels), np.log(_monotone_levels(metric, levels)).astype(np.float32))
                    for metric, (_, levels) in summary.items()}
             for name, summary in zip(columns, summaries)}
    _cache[key] = grids, nulls
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return grids, nulls


def _monotone(metric: str, thresholds: np.ndarray) -> np.ndarray:
    """Non-increasing in the window size from the curve's peak on (running minimum) and positive (the curves
    interpolate logs); chi2 as ``chi2 / n`` (module docstring)."""
    return _monotone_levels(metric, thresholds[:, None])[:, 0]


def _monotone_levels(metric: str, levels: np.ndarray) -> np.ndarray:
    """`_monotone` of every level (``GRID x levels``): each level's curve non-increasing in the window size
    from its peak on, left as simulated before it."""
    per_value = GRID[:, None] if metric == "chi2" else 1
    scaled = levels / per_value
    after_peak = np.arange(len(scaled))[:, None] >= np.argmax(scaled, axis=0)[None, :]
    ironed = np.minimum.accumulate(np.where(after_peak, scaled, np.inf), axis=0)
    return np.maximum(np.where(after_peak, ironed, scaled), np.finfo(float).tiny) * per_value


def interpolate_rows(log_curves: np.ndarray, log_sizes: np.ndarray) -> np.ndarray:
    """Row ``i`` of ``log_curves`` (``rows x GRID``, or ``rows x GRID x levels``) read at ``log_sizes[i]``:
    linear in the log size between grid points (``numpy.interp``), clamped at the grid's ends, in one pass."""
    position = np.interp(log_sizes, _LOG_GRID, np.arange(len(GRID), dtype=float))
    lower = np.minimum(position.astype(int), len(GRID) - 2)
    fraction = (position - lower).reshape(-1, *[1] * (log_curves.ndim - 2))
    rows = np.arange(len(log_sizes))
    return log_curves[rows, lower] * (1 - fraction) + log_curves[rows, lower + 1] * fraction


def exceedance_p_values(log_levels: np.ndarray, values) -> np.ndarray:
    """``(1 + #{null >= value}) / (1 + DRAWS)`` per row: ``log_levels`` (``rows x levels``) the logs of each
    row's sorted null values at :data:`NULL_LEVELS`; between two stored levels of the body the count is
    linear in the log value. NaN where the value is NaN (a window without values)."""
    values = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore"):
        logs = np.log(np.maximum(values, 0.0))
    below = (log_levels < np.nan_to_num(logs, nan=-np.inf)[:, None]).sum(axis=1)  # stored levels under the value
    upper = np.minimum(below, len(NULL_LEVELS) - 1)
    lower = np.maximum(below - 1, 0)
    rows = np.arange(len(values))
    low, high = log_levels[rows, lower], log_levels[rows, upper]
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.clip(np.where(high > low, (logs - low) / (high - low), 1.0), 0.0, 1.0)
    first_at_or_above = NULL_LEVELS[lower] + 1 + (NULL_LEVELS[upper] - NULL_LEVELS[lower] - 1) * fraction
    exceed = np.where(below == 0, DRAWS, np.where(below == len(NULL_LEVELS), 0, DRAWS - first_at_or_above))
    beyond = np.where(below == len(NULL_LEVELS), _tail_decay(log_levels, values), 1.0)
    return np.where(np.isnan(values), np.nan, beyond * (1.0 + exceed) / (1.0 + DRAWS))


def _tail_decay(log_levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Beyond the largest null value ``x_max``, ``exp(-(value - x_max) / beta)``: an exponential tail whose scale
    ``beta`` is the mean excess of the top :data:`EXACT_TAIL` null values over the lowest of them (the exponential
    law's maximum-likelihood scale, memoryless). Without it every value beyond the draws would get the same
    ``1 / (1 + DRAWS)``, and a control over thousands of tests could discover none of them."""
    tail = np.exp(log_levels[:, -EXACT_TAIL:].astype(float))
    scale = np.maximum(tail.mean(axis=1) - tail[:, 0], np.finfo(float).tiny)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(-np.maximum(values - tail[:, -1], 0.0) / scale)
