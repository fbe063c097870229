"""`mmon bench --profile calibration`: false alarms and power of every drift metric, before and after.

Cells: six feature distributions x training (reference) sizes ``m`` x window sizes ``n``. In each cell
many features, each with its own seeded reference drawn from the true distribution, become baselines
exactly as `mmon baseline` makes them, with thresholds from `udfs.calibration` at ``rate`` (1 %).
Windows come from the true distribution (the null) and from drifted versions of it (location shifts
of 0.1 / 0.25 / 0.5 population sd, a x1.5 scale change about the mean); every metric is computed as
the job does (the window's histogram on the reference's edges in the drift layout, `udfs.drift`;
the window's CDF against the training sample, `udfs.two_sample`). The share of windows over the
threshold is the false-alarm rate (null) or the power (drift).

A window is drawn as its counts in the cells the metrics can see, not as ``n`` raw values: the
multinomial counts of ``n`` draws in the open gaps between the reference's distinct values and on
those values, with the true (drifted) probabilities. Histograms on edges at reference values (quantile
bins) and both tests' statistics are functions of these counts, and the counts of ``n`` raw values
have exactly this law; it lets a run afford the thousands of references that a 1 % rate needs when
``n`` outgrows ``m``. The legacy method's equal-width histograms are drawn the same way on its edges.
Beside them, on ``scipy_windows`` raw windows per (cell, scenario) from the same references:
scipy's ``ks_2samp``, ``cramervonmises_2samp`` and ``anderson_ksamp`` at alpha = rate.

Methods: ``current`` (quantile bins, `udfs.histogram.default_bin_count`, the spacings null of
`udfs.calibration`) and ``legacy`` (before issue 12, kept here only to measure it: 20 equal-width bins
and a null of multinomial draws from the pseudo-count-smoothed baseline histogram, 2,000 draws).
Thresholds are read at the window sizes themselves (the job interpolates the same simulation between
powers of two).

Realised performance (issue 21, `udfs.performance`): the accuracy test's false-alarm rate computed
exactly (summed over every baseline count, :func:`accuracy_alert_rate`) on a grid of baseline sizes, window
sizes and true accuracies, and measured on null streams (each trial a fresh baseline and a window from the
same process) for every classification metric and for ``mae``, ``rmse`` and ``bias``, with the power
against a real drop beside it; ``--performance-only`` runs this section alone (seconds).

False-discovery control (issue 24, `udfs.discovery`): wide models of 100 and 1,000 standard normal features, each
with its own reference, evaluated window by window as the job does (`udfs.window_drift.WindowDrift`: values,
thresholds and p-values of ``wasserstein``, ``js`` and ``ks`` at ``auto``); on null windows the false discoveries
per window and the share of windows the model's verdict calls drifted, and with k features shifted the power to
find them and the false discovery proportion, under each control method at q = 0.05 (``none``: the flags as
before); ``--discovery-only`` runs this section alone (about a minute).

Writes ``results.json``, ``report.md`` and ``calibration.png`` into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from scipy import stats

from contract.spec import CONTROL_METHODS

from udfs import calibration, discovery, drift, two_sample
from udfs import performance as perf
from udfs.baseline import Baseline, FeatureBaseline
from udfs.histogram import layout_counts
from udfs.window_drift import MetricRule, WindowDrift

HISTOGRAM_METRICS = tuple(drift.METRICS)
OUR_METRICS = (*HISTOGRAM_METRICS, *drift.TESTS)
SCIPY_TESTS = ("scipy_ks", "scipy_cvm", "scipy_ad")
SCENARIOS = {"null": (0.0, 1.0), "shift_0.1sd": (0.1, 1.0), "shift_0.25sd": (0.25, 1.0),
             "shift_0.5sd": (0.5, 1.0), "scale_x1.5": (0.0, 1.5)}
"""Scenario name -> (location shift in population sd, scale factor about the population mean)."""
LEGACY_BINS, LEGACY_DRAWS = 20, 2000


@dataclass(frozen=True)
class Distribution:
    """A feature's true distribution: a sampler, population mean and sd, and its CDF (continuous) or
    atoms and masses (discrete)."""

    draw: Callable[[np.random.Generator, tuple], np.ndarray]
    mean: float
    sd: float
    cdf: Optional[Callable[[np.ndarray], np.ndarray]] = None
    atoms: Optional[np.ndarray] = None
    masses: Optional[np.ndarray] = None

    def below(self, x: np.ndarray, scenario: str, strict: bool) -> np.ndarray:
        """``P(X' < x)`` (``strict``) or ``P(X' <= x)`` for the drifted variable ``X' = drifted(X)``."""
        if self.atoms is None:
            shift, scale = SCENARIOS[scenario]
            return self.cdf(self.mean + (x - self.mean - shift * self.sd) / scale)
        moved = drifted(self.atoms, self, scenario)
        hits = moved[None, :] < x[:, None] if strict else moved[None, :] <= x[:, None]
        return hits @ self.masses


def drifted(values: np.ndarray, dist: Distribution, scenario: str) -> np.ndarray:
    shift, scale = SCENARIOS[scenario]
    return dist.mean + scale * (values - dist.mean) + shift * dist.sd


def _bimodal(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """0.6 N(0, 1) + 0.4 N(4, 1): mean 1.6, variance 0.6 + 0.4 * 17 - 1.6^2 = 4.84."""
    return rng.normal(0.0, 1.0, shape) + 4.0 * (rng.random(shape) < 0.4)


_POISSON_ATOMS = np.arange(60.0)
DISTRIBUTIONS = {
    "normal": Distribution(lambda rng, shape: rng.normal(0.0, 1.0, shape), 0.0, 1.0, stats.norm.cdf),
    "lognormal": Distribution(lambda rng, shape: rng.lognormal(0.0, 1.0, shape), np.exp(0.5),
                              np.sqrt((np.e - 1.0) * np.e), stats.lognorm(1.0).cdf),
    "bimodal": Distribution(_bimodal, 1.6, 2.2, lambda x: 0.6 * stats.norm.cdf(x) + 0.4 * stats.norm.cdf(x - 4.0)),
    "uniform": Distribution(lambda rng, shape: rng.random(shape), 0.5, np.sqrt(1.0 / 12.0), stats.uniform.cdf),
    "t3": Distribution(lambda rng, shape: rng.standard_t(3, shape), 0.0, np.sqrt(3.0), stats.t(3).cdf),
    "poisson4": Distribution(lambda rng, shape: rng.poisson(4.0, shape).astype(float), 4.0, 2.0,
                             atoms=_POISSON_ATOMS, masses=stats.poisson(4.0).pmf(_POISSON_ATOMS)),
}


@dataclass(frozen=True)
class Sizes:
    references: dict  # reference size m -> features (each its own reference) per distribution
    null_windows: dict  # m -> null windows per reference and window size
    drift_windows: dict  # m -> windows per reference, window size and drift scenario
    legacy_share: int  # the legacy method runs on every legacy_share-th reference
    scipy_windows: int  # raw windows per (cell, scenario) scored by scipy
    window_sizes: tuple


FULL = Sizes(references={120: 2000, 1000: 300, 10_000: 50}, null_windows={120: 3, 1000: 15, 10_000: 60},
             drift_windows={120: 1, 1000: 4, 10_000: 8}, legacy_share=8, scipy_windows=40,
             window_sizes=(200, 1000, 4000))
"""When ``n`` outgrows ``m`` a window mostly measures its reference's own error: many references, few
windows each."""
QUICK = Sizes(references={120: 60, 1000: 20}, null_windows={120: 10, 1000: 20}, drift_windows={120: 3, 1000: 5},
              legacy_share=4, scipy_windows=6, window_sizes=(200, 1000))


def baseline_feature(reference: np.ndarray, method: str) -> FeatureBaseline:
    """The reference as `mmon baseline` makes it (``legacy``: 20 equal-width bins)."""
    if method == "legacy":
        return FeatureBaseline.from_values(reference, LEGACY_BINS, "equal-width")
    return FeatureBaseline.from_values(reference)


def legacy_null_thresholds(feature: FeatureBaseline, rate: float, window_sizes: tuple,
                           seed_index: int) -> dict[str, np.ndarray]:
    """The null before issue 12: ``pi = (slots + 0.5) / sum``, ``b ~ Mult(count, pi)``,
    ``w ~ Mult(n, pi)``, threshold the ``1 - rate`` quantile of ``metric(w, b)``."""
    slots = feature.histogram_counts() + drift.DEFAULT_PSEUDO_COUNT
    pi = slots / slots.sum()
    rng = np.random.default_rng([calibration.SEED, seed_index])
    references = rng.multinomial(feature.count, pi, size=LEGACY_DRAWS)
    result = {metric: np.empty(len(window_sizes)) for metric in HISTOGRAM_METRICS}
    for i, size in enumerate(window_sizes):
        windows = rng.multinomial(size, pi, size=LEGACY_DRAWS)
        for metric, values in result.items():
            values[i] = np.quantile(drift.compute(metric, windows, references, feature.edges), 1.0 - rate)
    return result


class CellWindows:
    """Windows of one reference as counts in the cells ``(-inf, u_1), {u_1}, (u_1, u_2), ..., {u_J},
    (u_J, inf)`` of the points ``u``: the reference's distinct values and its edges; their histograms
    and CDFs."""

    def __init__(self, feature: FeatureBaseline):
        self.feature = feature
        self.points = np.union1d(feature.sample, feature.edges)
        slot_of_value = np.searchsorted(feature.edges, self.points, side="right")
        cell_slots = np.empty(2 * len(self.points) + 1, dtype=int)
        cell_slots[1::2] = slot_of_value
        cell_slots[0::2] = np.concatenate([[0], slot_of_value])  # no edge inside a gap: u_{j-1}'s slot
        cell_slots[-1] = len(feature.edges)  # above the maximum: overflow
        self.slot_starts = np.searchsorted(cell_slots, np.arange(len(feature.edges) + 1))  # non-decreasing slots

    def draw(self, rng: np.random.Generator, dist: Distribution, scenario: str, n: int, count: int) -> np.ndarray:
        bounds = np.column_stack([dist.below(self.points, scenario, True), dist.below(self.points, scenario, False)])
        cells = np.clip(np.diff(np.concatenate([[0.0], bounds.ravel(), [1.0]])), 0.0, None)
        return rng.multinomial(n, cells / cells.sum(), size=count)

    def histograms(self, cells: np.ndarray) -> np.ndarray:
        return np.add.reduceat(cells, self.slot_starts, axis=-1)

    def window_cdf(self, cells: np.ndarray):
        """The windows' CDF, valid where the tests read it: at each ``u_j`` and just below it."""
        cumulative = np.cumsum(cells, axis=-1) / cells.sum(axis=-1, keepdims=True)

        def cdf(x: np.ndarray) -> np.ndarray:
            j = np.searchsorted(self.points, x, side="left")
            on_value = self.points[np.minimum(j, len(self.points) - 1)] == x
            return cumulative[..., np.where(on_value, 2 * j + 1, 2 * j)]
        return cdf


def current_flags(windows: CellWindows, cells: np.ndarray, limits: dict[str, float]) -> dict[str, np.ndarray]:
    """Per metric, which windows exceed their threshold (the job's rule: value > threshold)."""
    feature = windows.feature
    counts, reference = windows.histograms(cells), feature.histogram_counts()
    flags = {metric: drift.compute(metric, counts, reference, feature.edges) > limits[metric]
             for metric in HISTOGRAM_METRICS}
    n = int(cells[0].sum())
    for name, test in drift.TESTS.items():
        flags[name] = test(windows.window_cdf(cells), n, 0.0, feature.sample) > limits[name]
    return flags


def legacy_flags(rng: np.random.Generator, feature: FeatureBaseline, dist: Distribution, scenario: str, n: int,
                 count: int, limits: dict[str, float]) -> dict[str, np.ndarray]:
    below = dist.below(feature.edges, scenario, True)
    slots = np.clip(np.diff(np.concatenate([[0.0], below, [1.0]])), 0.0, None)
    counts = rng.multinomial(n, slots / slots.sum(), size=count)
    reference = feature.histogram_counts()
    return {metric: drift.compute(metric, counts, reference, feature.edges) > limits[metric]
            for metric in HISTOGRAM_METRICS}


def scipy_flags(window: np.ndarray, reference: np.ndarray, rate: float) -> dict[str, bool]:
    """scipy's two-sample tests on the raw values, p < rate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"scipy_ks": stats.ks_2samp(window, reference).pvalue < rate,
                "scipy_cvm": stats.cramervonmises_2samp(window, reference).pvalue < rate,
                "scipy_ad": stats.anderson_ksamp([window, reference], variant="midrank").pvalue < rate}


def run_group(dist_name: str, m: int, sizes: Sizes, rate: float, seed: int) -> list[dict]:
    """Every (window size, scenario) cell of one distribution and reference size, for both methods."""
    dist = DISTRIBUTIONS[dist_name]
    rng = np.random.default_rng([seed, list(DISTRIBUTIONS).index(dist_name), m])
    references = dist.draw(rng, (sizes.references[m], m))
    current = [baseline_feature(r, "current") for r in references]
    legacy = [baseline_feature(r, "legacy") for r in references[::sizes.legacy_share]]
    limits = _current_limits(current, rate, sizes.window_sizes)
    legacy_limits = [legacy_null_thresholds(f, rate, sizes.window_sizes, i) for i, f in enumerate(legacy)]
    cells = [CellWindows(f) for f in current]
    rows = []
    for s, n in enumerate(sizes.window_sizes):
        for scenario in SCENARIOS:
            count = (sizes.null_windows if scenario == "null" else sizes.drift_windows)[m]
            key = {"distribution": dist_name, "m": m, "n": n, "scenario": scenario}
            ours = [current_flags(c, c.draw(rng, dist, scenario, n, count), _at(l, s)) for c, l in zip(cells, limits)]
            before = [legacy_flags(rng, f, dist, scenario, n, count, _at(l, s)) for f, l in zip(legacy, legacy_limits)]
            raw = [(references[i % len(references)], drifted(dist.draw(rng, (n,)), dist, scenario))
                   for i in range(sizes.scipy_windows)]
            rows += [{"method": "current", **key, **_rates(ours, OUR_METRICS)},
                     {"method": "legacy", **key, **_rates(before, HISTOGRAM_METRICS)},
                     {"method": "scipy", **key, **_rates([scipy_flags(w, r, rate) for r, w in raw], SCIPY_TESTS)}]
    return rows


def _current_limits(features: list, rate: float, window_sizes: tuple) -> list[dict[str, np.ndarray]]:
    limits = calibration.null_thresholds(features, rate, window_sizes)
    for feature, limit in zip(features, limits):
        for name in drift.TESTS:
            limit[name] = calibration.TEST_THRESHOLDS[name](len(feature.sample), np.asarray(window_sizes), rate)
    return limits


def _at(limits: dict[str, np.ndarray], index: int) -> dict[str, float]:
    return {metric: float(values[index]) for metric, values in limits.items()}


def _rates(flags: list[dict], metrics: tuple) -> dict:
    """Share of flagged windows per metric over all references, and how many windows that is."""
    return {"windows": int(sum(np.size(f[metrics[0]]) for f in flags)),
            **{metric: float(np.mean(np.concatenate([np.atleast_1d(f[metric]) for f in flags])))
               for metric in metrics}}


def run(sizes: Sizes, rate: float, seed: int) -> list[dict]:
    rows = []
    for dist_name in DISTRIBUTIONS:
        for m in sizes.references:
            started = time.monotonic()
            rows += run_group(dist_name, m, sizes, rate, seed)
            print(f"calibration: {dist_name} m={m} in {time.monotonic() - started:.1f} s", flush=True)
    return rows


# ---------------------------------------------------------------- realised performance


@dataclass(frozen=True)
class PerformanceSizes:
    n_base: tuple  # baseline rows of the exact accuracy grid
    n_window: tuple  # labelled pairs per window
    accuracy: tuple  # true accuracies
    trials: int  # null streams per simulated cell, each a fresh baseline
    draws: int  # each simulated test's null draws
    cells: tuple  # (n_base, n_window) of the simulated cells


PERFORMANCE_FULL = PerformanceSizes(n_base=(30, 100, 258, 1000), n_window=(100, 1000, 10_000),
                                    accuracy=(0.8, 0.9, 0.95, 0.99), trials=2000, draws=1000,
                                    cells=((258, 100), (258, 1000)))
PERFORMANCE_QUICK = PerformanceSizes(n_base=(100, 258), n_window=(100, 1000), accuracy=(0.9, 0.97), trials=150,
                                     draws=400, cells=((258, 200),))
ACCURACY_DROPS = (0.02, 0.05, 0.10)
SIMULATED_ACCURACY, SIMULATED_DROP = 0.9, 0.05  # the classifier of the simulated cells, and its drift
RESIDUAL_PROCESSES = {"normal": lambda rng, n: rng.normal(0.2, 1.0, n),
                      "gamma": lambda rng, n: rng.gamma(2.0, 1.0, n) - 2.0}
"""Residuals of a regressor: normal with a bias of 0.2 sd, and right-skewed (gamma, shape 2, centred)."""
RESIDUAL_SCALE = 1.25  # the drift of the regression cells: residuals 25 % larger


def accuracy_alert_rate(accuracy: float, n_base: int, n_window: int, rate: float,
                        window_accuracy: Optional[float] = None) -> float:
    """Exactly how often the accuracy test alerts a window of ``n_window`` pairs of ``window_accuracy``
    (default ``accuracy``: the false-alarm rate; lower: the power) against baselines of ``n_base`` rows of
    ``accuracy``: the sum over baseline counts ``k`` of ``P(k) * P(window count < threshold(k))``
    (counts of probability below 1e-12 of the largest left out)."""
    k = np.arange(n_base + 1)
    weights = stats.binom.pmf(k, n_base, accuracy)
    keep = weights > 1e-12 * weights.max()
    limits = np.array([perf.accuracy_threshold(perf.accuracy_cdf(n_window, int(c), n_base), rate) for c in k[keep]])
    window = accuracy if window_accuracy is None else window_accuracy
    return float(weights[keep] @ stats.binom.cdf(limits - 1, n_window, window))


def confusion_process(accuracy: float, classes: int = 3) -> np.ndarray:
    """Cell probabilities (rows labels) of a classifier: class shares falling from 2 to 1, errors spread evenly."""
    shares = np.linspace(2, 1, classes) / np.linspace(2, 1, classes).sum()
    cells = np.outer(shares, np.full(classes, (1 - accuracy) / (classes - 1)))
    np.fill_diagonal(cells, shares * accuracy)
    return cells


# Each trial's test is seeded by the trial, so that a rate measures the method over its Monte Carlo error
# rather than the one seed's draws at one window size (the job's seed is fixed: udfs.performance says
# what that error is).


def _alert_shares(verdicts: list) -> dict[str, float]:
    """Per metric, the share of its defined tests (per class pooled) that alerted."""
    flags = {}
    for verdict in verdicts:
        if verdict.value is not None:
            flags.setdefault(verdict.metric, []).append(verdict.alert)
    return {metric: float(np.mean(values)) for metric, values in flags.items()}


def classification_alert_rates(rng: np.random.Generator, sizes: PerformanceSizes, n_base: int, n_window: int,
                               accuracy: float, rate: float, window_accuracy: float) -> dict[str, float]:
    """Fresh baselines of ``accuracy``, windows of ``window_accuracy``: each metric's alert rate."""
    base, window = confusion_process(accuracy).ravel(), confusion_process(window_accuracy).ravel()
    verdicts = []
    for trial in range(sizes.trials):
        baseline = perf.ClassificationBaseline("label", ("a", "b", "c"), rng.multinomial(n_base, base).reshape(3, 3))
        tested = baseline.window()
        tested.confusion = rng.multinomial(n_window, window).reshape(3, 3)
        verdicts += perf.PerformanceTest(baseline, rate, draws=sizes.draws, seed=trial).verdicts(tested)
    return _alert_shares(verdicts)


def regression_alert_rates(rng: np.random.Generator, sizes: PerformanceSizes, n_base: int, n_window: int,
                           process: str, rate: float, scale: float) -> dict[str, float]:
    """Fresh baselines of ``process`` residuals, windows of them times ``scale``: each metric's alert rate."""
    draw = RESIDUAL_PROCESSES[process]
    verdicts = []
    for trial in range(sizes.trials):
        baseline = perf.RegressionBaseline.from_pairs("label", draw(rng, n_base), np.zeros(n_base))
        tested = baseline.window()
        tested.update(draw(rng, n_window) * scale, np.zeros(n_window))
        verdicts += perf.PerformanceTest(baseline, rate, draws=sizes.draws, seed=trial).verdicts(tested)
    return _alert_shares(verdicts)


def run_performance(sizes: PerformanceSizes, rate: float, seed: int) -> dict:
    """The exact accuracy grid (false alarms, power at :data:`ACCURACY_DROPS`) and the simulated cells."""
    started = time.monotonic()
    exact = [{"n_base": m, "n_window": n, "accuracy": p, "false_alarm": accuracy_alert_rate(p, m, n, rate),
              **{f"power_drop_{d}": accuracy_alert_rate(p, m, n, rate, p - d) for d in ACCURACY_DROPS}}
             for m in sizes.n_base for n in sizes.n_window for p in sizes.accuracy]
    rng = np.random.default_rng([seed, 21])
    simulated = []
    for m, n in sizes.cells:
        for scenario, window in (("null", SIMULATED_ACCURACY), (f"drop_{SIMULATED_DROP}", SIMULATED_ACCURACY - SIMULATED_DROP)):
            simulated.append({"output": "categorical", "n_base": m, "n_window": n, "scenario": scenario,
                              "process": f"accuracy {SIMULATED_ACCURACY}",
                              **classification_alert_rates(rng, sizes, m, n, SIMULATED_ACCURACY, rate, window)})
        for process in RESIDUAL_PROCESSES:
            for scenario, scale in (("null", 1.0), (f"scale_x{RESIDUAL_SCALE}", RESIDUAL_SCALE)):
                simulated.append({"output": "numeric", "n_base": m, "n_window": n, "process": process,
                                  "scenario": scenario, **regression_alert_rates(rng, sizes, m, n, process, rate, scale)})
        print(f"calibration: performance m={m} n={n} in {time.monotonic() - started:.0f} s", flush=True)
    return {"rate": rate, "trials": sizes.trials, "draws": sizes.draws, "exact_accuracy": exact,
            "simulated": simulated, "seconds": time.monotonic() - started}


def performance_lines(results: dict) -> list[str]:
    """The report section: the exact accuracy grid, then the simulated cells, rates in percent."""
    rate, exact = results["rate"], results["exact_accuracy"]
    worst = max(exact, key=lambda row: row["false_alarm"])
    lines = ["## Realised performance: false alarms and power (issue 21)", "",
             f"Nominal rate {_percent(rate)} %. The accuracy test exactly (summed over every baseline count): worst "
             f"cell {_percent(worst['false_alarm'])} % (m={worst['n_base']}, n={worst['n_window']}, accuracy "
             f"{worst['accuracy']}), mean {_percent(np.mean([row['false_alarm'] for row in exact]))} %.", ""]
    drops = [f"power at -{d}" for d in ACCURACY_DROPS]
    lines += _table(["baseline rows m", "window n", "accuracy", "false alarms", *drops],
                    [[str(r["n_base"]), str(r["n_window"]), str(r["accuracy"]), _percent(r["false_alarm"])]
                     + [_percent(r[f"power_drop_{d}"]) for d in ACCURACY_DROPS] for r in exact])
    metrics = [m for m in perf.METRIC_NAMES if m in perf.WORSE]
    lines += ["", f"Null streams ({results['trials']} per row, each a fresh baseline; {results['draws']} null draws "
                  f"per simulated test; per-class metrics pooled over the classes) and drifted ones:", ""]
    lines += _table(["output", "m", "n", "process", "scenario", *metrics],
                    [[r["output"], str(r["n_base"]), str(r["n_window"]), r["process"], r["scenario"]]
                     + [_percent(r[m]) if m in r else "" for m in metrics] for r in results["simulated"]])
    return lines


# ---------------------------------------------------------------- false-discovery control (issue 24)


@dataclass(frozen=True)
class DiscoverySizes:
    """A wide model of ``width`` standard normal features, each with its own seeded reference of ``reference``
    values, windows of ``window`` values per feature; ``null_windows`` per width where nothing drifts, and
    ``drift_windows`` per width and k where the first k features are shifted by ``shift`` population sd."""

    widths: tuple = (100, 1000)
    reference: int = 1000
    window: int = 500
    null_windows: tuple = (400, 100)  # per width, in the order of ``widths``
    drifted: tuple = (1, 10, 50)
    drift_windows: tuple = (40, 10)
    shift: float = 0.25
    metric_sets: tuple = (("wasserstein", "js", "ks"), ("wasserstein", "js"))
    """Each set is run apart: with ``ks`` (closed-form p-values) and with histogram metrics alone (Monte-Carlo
    p-values, never below ``1 / (1 + calibration.DRAWS)``)."""


DISCOVERY_FULL = DiscoverySizes()
DISCOVERY_QUICK = DiscoverySizes(null_windows=(60, 15), drifted=(1, 10), drift_windows=(15, 5))
DISCOVERY_Q = 0.05


class WideModel:
    """One width's features, baseline and `udfs.window_drift.WindowDrift`, built as the job builds them."""

    def __init__(self, rng: np.random.Generator, width: int, sizes: DiscoverySizes, metrics: tuple, rate: float):
        self.sizes, self.metrics = sizes, metrics
        self.features = [baseline_feature(rng.normal(size=sizes.reference), "current") for _ in range(width)]
        names = [f"f{j}" for j in range(width)]
        baseline = Baseline(dict(zip(names, self.features)), source="calibration benchmark")
        rules = [MetricRule(metric, None, rate) for metric in metrics]
        curves = {metric: calibration.threshold_curves(baseline, metric, rate)
                  for metric in metrics if metric in drift.LAYOUT_METRICS}
        self.window_drift = WindowDrift(baseline, names, rules, curves)

    def window(self, rng: np.random.Generator, drifted: int) -> tuple[np.ndarray, np.ndarray]:
        """One window's tests (features x metrics): their p-values and their flags (value over threshold);
        the first ``drifted`` features shifted."""
        n, width = self.sizes.window, len(self.features)
        values = rng.normal(size=(width, n))
        values[:drifted] += self.sizes.shift
        histograms = [layout_counts(row, feature.edges) for row, feature in zip(values, self.features)]
        tests = {name: np.array([float(test(two_sample.empirical_cdf(row), n, 0.0, feature.sample))
                                 for row, feature in zip(values, self.features)])
                 for name, test in drift.TESTS.items() if name in self.metrics}
        results = self.window_drift.evaluate(np.arange(width), np.full(width, n), histograms, tests)
        p_values = np.stack([results[metric].p_values for metric in self.metrics], axis=1)
        flags = np.stack([results[metric].values > results[metric].thresholds for metric in self.metrics], axis=1)
        return p_values, flags


def _window_outcomes(windows: list[tuple[np.ndarray, np.ndarray]], drifted: int, q: float) -> dict[str, dict]:
    """Per control method, over ``windows`` (p-values and flags of features x metrics): the mean false discoveries
    (tests of calm features) per window, the share of windows the model's verdict calls drifted, the share of
    (drifted feature, window) found by at least one metric, and the mean false discovery proportion of the
    windows with a discovery."""
    outcomes = {}
    for method in CONTROL_METHODS:
        false, verdicts, found, proportions = [], [], [], []
        for p_values, flags in windows:
            verdict = discovery.window_verdict(p_values.ravel(), flags.ravel(), method, q)
            discovered = verdict.discoveries.reshape(p_values.shape)
            false.append(int(discovered[drifted:].sum()))
            verdicts.append(verdict.drift)
            found.append(discovered[:drifted].any(axis=1).mean() if drifted else np.nan)
            if discovered.any():
                proportions.append(false[-1] / int(discovered.sum()))
        outcomes[method] = {"false_discoveries_per_window": float(np.mean(false)), "model_drift": float(np.mean(verdicts)),
                            "power": float(np.mean(found)) if drifted else None,
                            "fdp": float(np.mean(proportions)) if proportions else 0.0}
    return outcomes


def run_discovery(sizes: DiscoverySizes, rate: float, q: float, seed: int) -> dict:
    """Per metric set and width: the null windows' outcomes, then each k's, under every control method
    (`_window_outcomes`)."""
    started = time.monotonic()
    rows = []
    for metrics in sizes.metric_sets:
        for width, null_windows, drift_windows in zip(sizes.widths, sizes.null_windows, sizes.drift_windows):
            rng = np.random.default_rng([seed, 24, width])
            model = WideModel(rng, width, sizes, metrics, rate)
            for drifted, count in ((0, null_windows), *((k, drift_windows) for k in sizes.drifted if k < width)):
                windows = [model.window(rng, drifted) for _ in range(count)]
                for method, outcome in _window_outcomes(windows, drifted, q).items():
                    rows.append({"metrics": ", ".join(metrics), "width": width, "drifted": drifted, "windows": count,
                                 "method": method, **outcome})
            print(f"calibration: discovery {', '.join(metrics)} width={width} in {time.monotonic() - started:.0f} s",
                  flush=True)
    return {"q": q, "rate": rate, "sizes": {k: str(v) for k, v in asdict(sizes).items()}, "rows": rows,
            "seconds": time.monotonic() - started}


def discovery_lines(results: dict) -> list[str]:
    """The report section: the null windows' false discoveries and model verdicts, then the power per k."""
    sizes, rows = results["sizes"], results["rows"]
    lines = ["## False-discovery control across a window (issue 24)", "",
             f"Standard normal features, each with its own reference of {sizes['reference']} values; windows of "
             f"{sizes['window']} values per feature; the metrics at `auto` ({_percent(results['rate'])} %), their "
             f"p-values from the same null (a Monte-Carlo null's never below 1 / (1 + {calibration.DRAWS:,})); control "
             f"at q = {results['q']} (`none`: every flag, as before). Drifted features shifted by {sizes['shift']} sd. "
             f"{results['seconds']:.0f} s.", ""]
    null = [r for r in rows if r["drifted"] == 0]
    lines += _table(["metrics", "features", "null windows", "method", "false discoveries per window",
                     "windows the model drifted (%)"],
                    [[r["metrics"], f"{r['width']:,}", str(r["windows"]), r["method"],
                      f"{r['false_discoveries_per_window']:.2f}", _percent(r["model_drift"])] for r in null])
    lines += ["", "Drift windows: the share of (drifted feature, window) found by any metric, and the mean false "
                  "discovery proportion of the windows with a discovery:", ""]
    lines += _table(["metrics", "features", "k drifted", "windows", "method", "power (%)", "FDP (%)",
                     "false discoveries per window"],
                    [[r["metrics"], f"{r['width']:,}", str(r["drifted"]), str(r["windows"]), r["method"],
                      _percent(r["power"]), _percent(r["fdp"]), f"{r['false_discoveries_per_window']:.2f}"]
                     for r in rows if r["drifted"]])
    return lines


# ---------------------------------------------------------------- report


def _cells(rows: list[dict], method: str, scenario: str) -> list[dict]:
    return [r for r in rows if r["method"] == method and r["scenario"] == scenario]


def _cell_key(row: dict) -> tuple:
    return row["distribution"], row["m"], row["n"]


def null_summary(rows: list[dict], rate: float) -> list[dict]:
    """Per method and metric: worst and mean null rate, and the cells over 1.5x ``rate``."""
    summary = []
    for method, metrics in (("legacy", HISTOGRAM_METRICS), ("current", OUR_METRICS), ("scipy", SCIPY_TESTS)):
        cells = _cells(rows, method, "null")
        for metric in metrics:
            values = [c[metric] for c in cells]
            over = [f"{c['distribution']} m={c['m']} n={c['n']}" for c in cells if c[metric] > 1.5 * rate]
            summary.append({"method": method, "metric": metric, "max": max(values), "mean": float(np.mean(values)),
                            "cells": len(values), "over_1.5x": over})
    return summary


def power_verdicts(rows: list[dict]) -> list[dict]:
    """Location shifts at n >= 1,000: the best histogram metric and the best of all ours against KS."""
    verdicts = []
    for scenario in ("shift_0.1sd", "shift_0.25sd", "shift_0.5sd", "scale_x1.5"):
        for cell in _cells(rows, "current", scenario):
            if cell["n"] < 1000:
                continue
            best_histogram = max(HISTOGRAM_METRICS, key=lambda metric: cell[metric])
            verdicts.append({"scenario": scenario, "distribution": cell["distribution"], "m": cell["m"],
                             "n": cell["n"], "ks": cell["ks"], "best_histogram": best_histogram,
                             "best_histogram_power": cell[best_histogram], "cvm": cell["cvm"]})
    return verdicts


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _table(header: list[str], lines: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(l) + " |" for l in lines]


def report_lines(results: dict) -> list[str]:
    rows, rate = results["rows"], results["rate"]
    lines = [f"# Calibration benchmark: false alarms and power at {_percent(rate)} %", "",
             f"`{results['command_line']}`, {results['seconds']:.0f} s, seed {results['seed']}.", "",
             "Rates in percent. `legacy`: before issue 12 (20 equal-width bins, smoothed-histogram null); "
             "`current`: quantile bins and the spacings null (histogram metrics), the two-sample nulls (ks, cvm). "
             "scipy's tests ran on fewer raw windows per cell (column `w`). Windows per cell and method: "
             + ", ".join(f"`{k}`: {v}" for k, v in results["windows"].items()) + ".", "",
             "## Null false-alarm rate, summary (target: at most 1.5x nominal in every cell)", ""]
    lines += _table(["method", "metric", "worst cell", "mean", "cells over 1.5x"],
                    [[s["method"], s["metric"], _percent(s["max"]), _percent(s["mean"]),
                      f"{len(s['over_1.5x'])} / {s['cells']}" + (f" ({'; '.join(s['over_1.5x'])})" if s["over_1.5x"] else "")]
                     for s in results["null_summary"]])
    verdicts = results["power_verdicts"]
    shifts = [v for v in verdicts if v["scenario"].startswith("shift")]
    lost = [v for v in shifts if v["best_histogram_power"] < v["ks"]]
    lines += ["", "## Power against KS (location shifts, n >= 1,000)", "",
              f"Best histogram metric at least as powerful as KS in {len(shifts) - len(lost)} of {len(shifts)} cells; "
              f"ks itself is one of our metrics now, so the best of all ours matches KS everywhere.", ""]
    lines += _table(["scenario", "distribution", "m", "n", "best histogram metric", "its power", "ks", "cvm"],
                    [[v["scenario"], v["distribution"], str(v["m"]), str(v["n"]), v["best_histogram"],
                      _percent(v["best_histogram_power"]), _percent(v["ks"]), _percent(v["cvm"])] for v in lost]
                    or [["-"] * 8])
    lines += ["", "## Mean over all cells, by scenario (before → after for the histogram metrics)", ""]
    lines += _mean_table(rows)
    for scenario in SCENARIOS:
        lines += ["", f"## {scenario}: {'false-alarm rate' if scenario == 'null' else 'power'}", ""]
        lines += _scenario_table(rows, scenario)
    return lines


def _mean_table(rows: list[dict]) -> list[str]:
    """Per scenario: each metric's mean rate over the cells, and the mean of the best histogram metric."""
    lines = []
    for scenario in SCENARIOS:
        legacy, current, scipy_rows = (_cells(rows, method, scenario) for method in ("legacy", "current", "scipy"))
        def mean(cells, metric):
            return _percent(np.mean([c[metric] for c in cells]))
        def best(cells):
            return _percent(np.mean([max(c[m] for m in HISTOGRAM_METRICS) for c in cells]))
        lines.append([scenario] + [f"{mean(legacy, m)} → {mean(current, m)}" for m in HISTOGRAM_METRICS]
                     + [f"{best(legacy)} → {best(current)}", mean(current, "ks"), mean(current, "cvm")]
                     + [mean(scipy_rows, t) for t in SCIPY_TESTS])
    return _table(["scenario", *HISTOGRAM_METRICS, "best histogram metric", "ks", "cvm", *SCIPY_TESTS], lines)


def _scenario_table(rows: list[dict], scenario: str) -> list[str]:
    legacy = {_cell_key(r): r for r in _cells(rows, "legacy", scenario)}
    scipy_rows = {_cell_key(r): r for r in _cells(rows, "scipy", scenario)}
    header = ["distribution", "m", "n"] + [f"{m} (before → after)" for m in HISTOGRAM_METRICS] + ["ks", "cvm"] \
        + ["scipy ks", "scipy cvm", "scipy ad", "w"]
    lines = []
    for cell in _cells(rows, "current", scenario):
        key = _cell_key(cell)
        lines.append([cell["distribution"], str(cell["m"]), str(cell["n"])]
                     + [f"{_percent(legacy[key][m])} → {_percent(cell[m])}" for m in HISTOGRAM_METRICS]
                     + [_percent(cell["ks"]), _percent(cell["cvm"])]
                     + [_percent(scipy_rows[key][t]) for t in SCIPY_TESTS] + [str(scipy_rows[key]["windows"])])
    return _table(header, lines)


def plot(results: dict, path: Path) -> None:
    """Null rates per cell (before and after) and power at a 0.25 sd shift and the x1.5 scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, rate = results["rows"], results["rate"]
    figure, axes = plt.subplots(3, 1, figsize=(14, 12))
    for method, marker in (("legacy", "x"), ("current", "o")):
        cells = _cells(rows, method, "null")
        for metric in (OUR_METRICS if method == "current" else HISTOGRAM_METRICS):
            axes[0].plot(range(len(cells)), [100 * c[metric] for c in cells], marker, label=f"{metric} ({method})",
                         alpha=0.7)
    axes[0].axhline(150 * rate, color="red", linestyle="--", label="1.5x nominal")
    axes[0].set_ylabel("null false-alarm rate (%)")
    axes[0].set_title("False alarms per cell (distribution, m, n), before (x) and after (o)")
    for axis, scenario in zip(axes[1:], ("shift_0.25sd", "scale_x1.5")):
        cells = _cells(rows, "current", scenario)
        legacy = _cells(rows, "legacy", scenario)
        for metric in OUR_METRICS:
            axis.plot(range(len(cells)), [100 * c[metric] for c in cells], "o-", label=metric, alpha=0.7)
        axis.plot(range(len(legacy)), [100 * max(c[m] for m in HISTOGRAM_METRICS) for c in legacy], "kx--",
                  label="best histogram metric (legacy)")
        axis.set_ylabel(f"power at {scenario} (%)")
    labels = [f"{c['distribution']} {c['m']}/{c['n']}" for c in _cells(rows, "current", "null")]
    for axis in axes:
        axis.set_xticks(range(len(labels)))
        axis.set_xticklabels(labels, fontsize=6, rotation=90)
        axis.set_xlabel("distribution m/n", fontsize=7)
        axis.legend(fontsize=6, ncol=4)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmon bench --profile calibration", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="False-alarm rate and power of every drift metric (legacy and current calibration) beside "
                    "scipy's two-sample tests, on seeded synthetic features; writes results.json, report.md and "
                    "calibration.png.")
    parser.add_argument("--profile", choices=("calibration",), default="calibration")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/calibration"), help="output directory")
    parser.add_argument("--quick", action="store_true", help="small sizes (m 120 and 1,000; n 200 and 1,000)")
    parser.add_argument("--rate", type=float, default=0.01, help="nominal false-alarm rate")
    parser.add_argument("--seed", type=int, default=12, help="seed of references and windows")
    parser.add_argument("--performance-only", action="store_true",
                        help="only the realised-performance section (the accuracy test exactly, every metric on "
                             "null and drifted streams)")
    parser.add_argument("--discovery-only", action="store_true",
                        help="only the false-discovery control section (false discoveries per null window, power "
                             "to find k drifted features among 100 and 1,000)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    if args.discovery_only:
        return _discovery_only(args)
    performance = run_performance(PERFORMANCE_QUICK if args.quick else PERFORMANCE_FULL, args.rate, args.seed)
    section = performance_lines(performance)
    print("\n".join(section), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.performance_only:
        (args.out / "performance.json").write_text(json.dumps(performance, indent=1) + "\n")
        (args.out / "performance.md").write_text("\n".join(section) + "\n")
        print(f"calibration: wrote {args.out / 'performance.json'} and performance.md in {performance['seconds']:.0f} s")
        return 0
    sizes = QUICK if args.quick else FULL
    rows = run(sizes, args.rate, args.seed)
    discoveries = run_discovery(DISCOVERY_QUICK if args.quick else DISCOVERY_FULL, args.rate, DISCOVERY_Q, args.seed)
    discovery_section = discovery_lines(discoveries)
    print("\n".join(discovery_section), flush=True)
    results = {"command_line": shlex.join(["mmon", "bench", *argv]), "seconds": time.monotonic() - started,
               "seed": args.seed, "rate": args.rate, "sizes": {k: str(v) for k, v in asdict(sizes).items()},
               "windows": _window_counts(rows), "rows": rows, "performance": performance, "discovery": discoveries}
    results.update({"null_summary": null_summary(rows, args.rate), "power_verdicts": power_verdicts(rows)})
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "report.md").write_text("\n".join(report_lines(results) + [""] + section + [""] + discovery_section) + "\n")
    plot(results, args.out / "calibration.png")
    print(f"calibration: wrote {args.out / 'results.json'}, report.md and calibration.png in {results['seconds']:.0f} s")
    return 0


def _discovery_only(args: argparse.Namespace) -> int:
    results = run_discovery(DISCOVERY_QUICK if args.quick else DISCOVERY_FULL, args.rate, DISCOVERY_Q, args.seed)
    section = discovery_lines(results)
    print("\n".join(section), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "discovery.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "discovery.md").write_text("\n".join(section) + "\n")
    print(f"calibration: wrote {args.out / 'discovery.json'} and discovery.md in {results['seconds']:.0f} s")
    return 0


def _window_counts(rows: list[dict]) -> dict[str, str]:
    """The range of windows per cell, by method."""
    counts = {}
    for method in ("current", "legacy", "scipy"):
        numbers = sorted({r["windows"] for r in rows if r["method"] == method})
        counts[method] = f"{numbers[0]}-{numbers[-1]}" if len(numbers) > 1 else str(numbers[0])
    return counts
