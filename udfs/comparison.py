"""Two versions of a model compared window by window: a canary (the *candidate*) against the *stable* version.

**Drift between the versions.** For one window and one column, each version's drift-layout histogram (the
counts the stats rows carry: ``[underflow, bin_1..bin_k, overflow]`` on the baseline's edges, or a categorical
column's ``[c_1..c_K, other, unseen]``) is set against the other's with the configured drift metrics of
`udfs.drift`: ``metric(candidate, stable)``, the stable version in the baseline's place (KL, PSI and chi2 smooth
as there; Wasserstein reads the baseline's edges, divided by its std with ``normalize``).

The ``auto`` threshold is a *permutation* null. Two versions serving the same model see values from one
distribution, and then which of the ``n1 + n2`` values of the window went to which version is a random split of
the pooled values: the stable version's histogram is a multivariate hypergeometric draw of ``n1`` values from
the pooled counts, the candidate's the rest. The threshold is the ``1 - rate`` quantile (the next drawn value
above it) of the metric over ``20 / rate`` such splits (:func:`draws_for`: at least 2,000, at most :data:`DRAWS`),
so a pair of versions of one model is flagged with probability at most ``rate`` on average over the draws (the
threshold's own Monte-Carlo spread moves a window's chance by about ``rate / sqrt(20)``), *whatever* the
distribution, drifted from the baseline or not: the test is conditional on the window's own pooled values, so it
needs neither the baseline's slot probabilities nor a calibration grid. The split is of binned values (the
histograms are all the stats rows carry), exactly the statistic computed, so it is exact for it. One set of
splits serves every metric of a (window, column); draws are seeded by the two sizes, so a comparison is
reproducible. Cost per (window, column), measured on this shared 2-core machine at 10,000 draws (a rate of 0.001)
with js, psi, hellinger and chi2: about 30 ms for a five-slot categorical column and 160 ms for a numeric one of 20
slots (the split itself 40 ms of it, each metric 15-35 ms); at a rate of 0.01 (2,000 draws) a fifth of that. It
grows with the columns: meant for the few windows two versions share, not for a thousand features.

``missing_rate``: ``|missing_c / total_c - missing_s / total_s|``, its threshold exact from the same permutation
null (the stable version's missing count is hypergeometric given the pooled one), no simulation.

Not compared: the two-sample tests ``ks`` and ``cvm``. The stats rows carry their statistics against the
baseline's training sample only, not the windows' CDFs, so there is nothing to test one version's window against
the other's with.

**Realised performance.** The difference ``delta = candidate - stable`` of a metric between the versions'
windows, its two-sided confidence interval at ``1 - rate`` and a verdict: ``better`` or ``worse`` when the
interval excludes 0 (orientation per metric, :data:`udfs.performance.WORSE`: higher accuracy is better, lower
mae and rmse are better), else ``no_evidence``. So an identical candidate is judged ``worse`` with probability
about ``rate / 2``.

* ``accuracy``: Newcombe's hybrid score interval (Newcombe 1998, method 10) from each version's Wilson score
  interval (``scipy.stats.binomtest(...).proportion_ci(method="wilson")``): coverage close to nominal even at
  accuracies near 1, where the Wald interval collapses.
* ``mae``: Welch's interval for the difference of the mean absolute residuals (Satterthwaite's degrees of
  freedom), from the windows' sums of ``|r|`` and ``r^2`` (:class:`udfs.performance.RegressionWindow`).
* ``rmse``: the same with the delta method: ``Var(rmse) ~ Var(r^2) / (4 n mse)``, from the sums of ``r^2`` and
  ``r^4``.

Not compared: ``bias`` (no better or worse direction for a difference of signed means), the per-class
``precision``, ``recall``, ``f1`` and ``f1_macro`` (no interval from a window's record), ``confusion``.
Assumed throughout: a window's values (pairs) are independent draws.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import stats

from udfs import drift
from udfs.baseline import NUMERIC, Baseline
from udfs.performance import ACCURACY, MAE, RMSE, WORSE, ClassificationWindow, RegressionWindow, variances
from udfs.window_drift import MetricRule

DRAWS = 10_000
MIN_DRAWS = 2_000
TAIL_DRAWS = 20  # draws beyond the threshold: the Monte-Carlo error of the rate is about rate / sqrt(TAIL_DRAWS)
SEED = 2026_22
BETTER, WORSE_VERDICT, NO_EVIDENCE = "better", "worse", "no_evidence"
PERFORMANCE_METRICS = (ACCURACY, MAE, RMSE)
"""The realised-performance metrics two versions are compared by (module docstring)."""


# ---------------------------------------------------------------- drift between the versions


@dataclass(frozen=True)
class DriftComparison:
    """One metric of one (window, column): the candidate against the stable version."""

    metric: str
    value: float
    threshold: float
    flagged: bool


def histogram_values(metric: str, candidate: np.ndarray, stable: np.ndarray, spacing: Optional[np.ndarray] = None,
                     scale: float = 1.0) -> np.ndarray:
    """``metric`` of each row of ``candidate`` against the matching row of ``stable`` (2-D, windows x slots);
    Wasserstein as ``cdf_gaps . spacing / scale``, ``spacing`` the gaps of the column's support points."""
    if metric == "wasserstein":
        if spacing is None:
            raise ValueError("wasserstein needs a numeric column's support spacing")
        return drift.cdf_gaps(candidate, stable) @ spacing / scale
    return np.atleast_1d(drift.compute(metric, candidate, stable))


def permutation_splits(stable, candidate, draws: int = DRAWS, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``(stable_draws, candidate_draws)``, each ``(draws, slots)``: random splits of the two histograms' pooled
    counts into ``n1`` and ``n2`` values (multivariate hypergeometric), seeded by the sizes."""
    stable, candidate = np.asarray(stable, dtype=np.int64), np.asarray(candidate, dtype=np.int64)
    n1, n2 = int(stable.sum()), int(candidate.sum())
    pooled = stable + candidate
    rng = np.random.default_rng([seed, n1, n2])
    drawn = rng.multivariate_hypergeometric(pooled, n1, size=draws)
    return drawn, pooled - drawn


def null_threshold(values: np.ndarray, rate: float) -> float:
    """The smallest drawn value that at most ``rate`` of the draws exceed: flagged above it."""
    return float(np.quantile(values, 1.0 - rate, method="higher"))


def draws_for(rate: float, most: int = DRAWS) -> int:
    """Permutation draws for a threshold at ``rate``: enough that :data:`TAIL_DRAWS` of them lie beyond it, at
    least :data:`MIN_DRAWS`, at most ``most``."""
    return int(min(most, max(MIN_DRAWS, np.ceil(TAIL_DRAWS / rate))))


def histogram_drift(stable, candidate, rules: Sequence[MetricRule], spacing: Optional[np.ndarray] = None,
                    std: float = 1.0, draws: int = DRAWS, seed: int = SEED) -> list[DriftComparison]:
    """Every histogram metric of ``rules`` (`udfs.drift.LAYOUT_METRICS`) of the candidate's window against the
    stable version's, with its fixed or permutation threshold (module docstring); ``spacing`` and ``std`` a
    numeric column's (Wasserstein)."""
    stable_counts, candidate_counts = np.asarray(stable, dtype=float), np.asarray(candidate, dtype=float)
    if stable_counts.shape != candidate_counts.shape:
        raise ValueError(f"histograms differ in length: {stable_counts.shape} vs {candidate_counts.shape}")
    rules = [rule for rule in rules if rule.name in drift.LAYOUT_METRICS
             and (rule.name != "wasserstein" or spacing is not None)]
    auto = [rule.false_alarm_rate for rule in rules if rule.threshold is None]
    null = None
    if auto:
        null = [split.astype(float) for split in permutation_splits(stable, candidate, draws_for(min(auto), draws), seed)]
    results = []
    for rule in rules:
        scale = std if rule.normalize and std > 0 else 1.0
        value = float(histogram_values(rule.name, candidate_counts[None], stable_counts[None], spacing, scale)[0])
        if rule.threshold is not None:
            threshold = float(rule.threshold)
        else:
            threshold = null_threshold(histogram_values(rule.name, null[1], null[0], spacing, scale),
                                       rule.false_alarm_rate)
        results.append(DriftComparison(rule.name, value, threshold, bool(value > threshold)))
    return results


def missing_rate_drift(stable_missing: int, stable_total: int, candidate_missing: int, candidate_total: int,
                       rule: MetricRule) -> DriftComparison:
    """``missing_rate`` between the versions, ``|m_c / t_c - m_s / t_s|``, against its fixed threshold or the exact
    permutation quantile: the smallest gap that the split of the pooled missing values exceeds with probability
    at most the rate."""
    value = abs(candidate_missing / candidate_total - stable_missing / stable_total)
    if rule.threshold is not None:
        return DriftComparison(drift.MISSING_RATE, value, float(rule.threshold), bool(value > rule.threshold))
    missing = stable_missing + candidate_missing
    x = np.arange(max(0, missing - candidate_total), min(missing, stable_total) + 1)
    gaps = np.abs((missing - x) / candidate_total - x / stable_total)
    pmf = stats.hypergeom.pmf(x, stable_total + candidate_total, missing, stable_total)
    order = np.argsort(gaps, kind="stable")
    gaps, beyond = gaps[order], 1.0 - np.cumsum(pmf[order])  # beyond[i]: P(gap > gaps[i]) once ties are passed
    exceed = beyond[np.searchsorted(gaps, gaps, side="right") - 1]
    threshold = float(gaps[np.argmax(exceed <= rule.false_alarm_rate + 1e-12)])
    return DriftComparison(drift.MISSING_RATE, float(value), threshold, bool(value > threshold))


@dataclass(frozen=True)
class WindowSide:
    """One version's window of one column, as its stats row gives it: present values, missing ones, histogram."""

    count: int
    missing: int
    histogram: np.ndarray

    @property
    def instances(self) -> int:
        return self.count + self.missing


class VersionDrift:
    """The drift comparisons of ``rules`` (the spec's drift metrics less ``ks``, ``cvm``) for windows of the
    ``columns`` of ``baseline`` (features and output): what a column's comparison needs of the baseline, its
    Wasserstein support spacing and std when numeric."""

    def __init__(self, baseline: Baseline, columns: Sequence[str], rules: Sequence[MetricRule]):
        self.rules = tuple(rule for rule in rules if rule.name not in drift.TESTS)
        self.spacing, self.std = {}, {}
        for name in columns:
            column = baseline.columns[name]
            if column.type == NUMERIC:
                self.spacing[name] = np.diff(drift.support_points(column.edges))
                self.std[name] = float(column.std)

    def compare(self, column: str, stable: WindowSide, candidate: WindowSide) -> list[DriftComparison]:
        """Every metric of the candidate's window of ``column`` against the stable version's; the histogram
        metrics only where both have present values."""
        results = []
        if stable.count and candidate.count:
            results += histogram_drift(stable.histogram, candidate.histogram, self.rules, self.spacing.get(column),
                                       self.std.get(column, 1.0))
        results += [missing_rate_drift(stable.missing, stable.instances, candidate.missing, candidate.instances, rule)
                    for rule in self.rules if rule.name == drift.MISSING_RATE]
        return results


# ---------------------------------------------------------------- realised performance


@dataclass(frozen=True)
class PerformanceComparison:
    """One metric of one window: the two versions' values, ``delta = candidate - stable`` with its interval, and
    the verdict on the candidate."""

    metric: str
    stable: float
    candidate: float
    delta: float
    ci_low: float
    ci_high: float
    verdict: str


def verdict(metric: str, ci_low: float, ci_high: float) -> str:
    """``better``, ``worse`` or ``no_evidence`` for the candidate, by the interval of ``candidate - stable`` and
    which way ``metric`` gets worse."""
    if not ci_low > 0 and not ci_high < 0:
        return NO_EVIDENCE
    higher = ci_low > 0
    return (WORSE_VERDICT if higher else BETTER) if WORSE[metric] == "high" else (BETTER if higher else WORSE_VERDICT)


def _compared(metric: str, stable: float, candidate: float, low: float, high: float) -> PerformanceComparison:
    return PerformanceComparison(metric, float(stable), float(candidate), float(candidate - stable), float(low),
                                 float(high), verdict(metric, low, high))


def accuracy_difference(stable_correct: int, stable_labelled: int, candidate_correct: int, candidate_labelled: int,
                        rate: float) -> PerformanceComparison:
    """Accuracy: Newcombe's hybrid score interval at ``1 - rate`` from the two Wilson intervals."""
    def wilson(correct: int, labelled: int) -> tuple[float, float, float]:
        interval = stats.binomtest(int(correct), int(labelled)).proportion_ci(1 - rate, method="wilson")
        return correct / labelled, interval.low, interval.high

    p1, low1, high1 = wilson(stable_correct, stable_labelled)
    p2, low2, high2 = wilson(candidate_correct, candidate_labelled)
    delta = p2 - p1
    low = delta - np.hypot(p2 - low2, high1 - p1)
    high = delta + np.hypot(high2 - p2, p1 - low1)
    return _compared(ACCURACY, p1, p2, low, high)


def welch_interval(means: Sequence[float], variances_of_mean: Sequence[float], counts: Sequence[int],
                   rate: float) -> tuple[float, float]:
    """The ``1 - rate`` interval of ``means[1] - means[0]`` with Satterthwaite's degrees of freedom, given each
    mean's variance (the sample variance over its count)."""
    v1, v2 = variances_of_mean
    n1, n2 = counts
    spread = v1 + v2
    if spread == 0:
        return means[1] - means[0], means[1] - means[0]
    df = spread ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1))
    half = stats.t.ppf(1 - rate / 2, df) * np.sqrt(spread)
    return means[1] - means[0] - half, means[1] - means[0] + half


def regression_difference(metric: str, stable: RegressionWindow, candidate: RegressionWindow,
                          rate: float) -> PerformanceComparison:
    """``mae`` (Welch on ``|r|``) or ``rmse`` (Welch with the delta method on ``r^2``) between the versions'
    windows, each with at least two scored pairs."""
    windows = (stable, candidate)
    counts = [w.labelled for w in windows]
    if min(counts) < 2:
        raise ValueError("a regression comparison needs at least two scored pairs in each window")
    column = {MAE: 1, RMSE: 2}[metric]
    values = [w.metrics()[metric] for w in windows]
    spreads = [variances(w.labelled, w.sums)[column] / w.labelled for w in windows]
    if metric == RMSE:  # d sqrt(m) = dm / (2 sqrt(m))
        spreads = [s / (4 * v * v) if v > 0 else 0.0 for s, v in zip(spreads, values)]
    low, high = welch_interval(values, spreads, counts, rate)
    return _compared(metric, values[0], values[1], low, high)


def window_difference(metric: str, stable, candidate, rate: float) -> PerformanceComparison:
    """``metric`` (:data:`PERFORMANCE_METRICS`) between two windows of `udfs.performance` accumulators."""
    if metric not in PERFORMANCE_METRICS:
        raise ValueError(f"{metric!r} is not compared between versions (compared: {', '.join(PERFORMANCE_METRICS)})")
    if metric == ACCURACY:
        if not isinstance(stable, ClassificationWindow):
            raise ValueError("accuracy needs classification windows")
        return accuracy_difference(int(np.trace(stable.confusion)), stable.labelled,
                                   int(np.trace(candidate.confusion)), candidate.labelled, rate)
    return regression_difference(metric, stable, candidate, rate)
