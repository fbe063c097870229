"""Realised performance (udfs.performance): every metric equals scikit-learn's on random data, after merging
windows built from splits too; the alert test's false-alarm rate on null streams (each trial a fresh
baseline and a window from the same process) is at most 1.5x the configured rate, and its power against a
real drop is reported."""
import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as sk

from udfs import performance as perf
from udfs.performance import (ClassificationBaseline, ClassificationWindow, PerformanceTest, RegressionBaseline,
                              RegressionWindow)

from benchmarks import calibration as bench

CLASSES = ("Adelie", "Gentoo", "Chinstrap")


def _pairs(rng, n, classes=CLASSES + ("Emperor",), missing=0.05):
    """Labels and predictions (right 80 % of the time) over ``classes`` (the last one unseen by the baseline),
    with missing values (None) in both."""
    labels = rng.choice(classes, n, p=np.linspace(2, 1, len(classes)) / np.linspace(2, 1, len(classes)).sum())
    predicted = np.where(rng.random(n) < 0.8, labels, rng.choice(classes, n))
    return [_gap(rng, predicted, missing), _gap(rng, labels, missing)]


def _gap(rng, values, missing):
    values = values.astype(object)
    values[rng.random(len(values)) < missing] = None
    return values


def _batch(predicted, labels):
    """A batch as the job gives it: a dictionary of the batch's distinct names and int codes into it."""
    values = np.concatenate([predicted, labels])
    present = values != None  # noqa: E711 (elementwise)
    dictionary, inverse = np.unique(values[present].astype(str), return_inverse=True)
    codes = np.full(len(values), -1)
    codes[present] = inverse
    return dictionary, codes[:len(predicted)], codes[len(predicted):]


def _window(predicted, labels, splits=1, classes=CLASSES):
    """A window built from ``splits`` batches, each its own window, merged."""
    parts = []
    for p, y in zip(np.array_split(predicted, splits), np.array_split(labels, splits)):
        part = ClassificationWindow(classes)
        part.update(*_batch(p, y))
        parts.append(part)
    for part in parts[1:]:
        parts[0].merge(part)
    return parts[0]


def _scored(predicted, labels):
    keep = (predicted != None) & (labels != None)  # noqa: E711
    return predicted[keep].astype(str), labels[keep].astype(str)


def test_metric_names_are_spelled_once():
    assert perf.CLASSIFICATION_METRICS == ("accuracy", "precision", "recall", "f1", "f1_macro", "confusion")
    assert perf.REGRESSION_METRICS == ("mae", "rmse", "bias")
    assert perf.METRIC_NAMES == perf.CLASSIFICATION_METRICS + perf.REGRESSION_METRICS
    assert set(perf.WORSE) == set(perf.METRIC_NAMES) - {"confusion"}


@pytest.mark.parametrize("seed, n, splits", [(1, 500, 1), (2, 2000, 7), (3, 37, 5), (4, 3000, 64)])
def test_classification_metrics_equal_sklearn_after_merges(seed, n, splits):
    rng = np.random.default_rng(seed)
    predicted, labels = _pairs(rng, n)
    window = _window(predicted, labels, splits)
    p, y = _scored(predicted, labels)
    classes = list(window.all_classes)
    assert window.unseen == ("Emperor",) and window.labelled == len(y) and window.unscored == n - len(y)
    np.testing.assert_array_equal(window.confusion, sk.confusion_matrix(y, p, labels=classes))
    values = window.metrics()
    assert values["accuracy"] == pytest.approx(sk.accuracy_score(y, p), rel=1e-12)
    expected = sk.precision_recall_fscore_support(y, p, labels=classes, zero_division=np.nan)
    for name, reference in zip(("precision", "recall", "f1"), expected):
        np.testing.assert_allclose(values[name], reference, rtol=1e-12, equal_nan=True)
    assert values["f1_macro"] == pytest.approx(sk.f1_score(y, p, average="macro"), rel=1e-12)


def test_undefined_values_are_none_and_absent_classes_leave_f1_macro_alone():
    """Gentoo never predicted (precision undefined), Chinstrap in neither column (out of f1_macro)."""
    predicted = np.array(["Adelie", "Adelie", "Adelie"], dtype=object)
    labels = np.array(["Adelie", "Gentoo", "Adelie"], dtype=object)
    result = _window(predicted, labels).result()
    assert result["precision"] == {"Adelie": pytest.approx(2 / 3), "Gentoo": None, "Chinstrap": None}
    assert result["recall"] == {"Adelie": 1.0, "Gentoo": 0.0, "Chinstrap": None}
    assert result["f1_macro"] == pytest.approx(sk.f1_score(labels.astype(str), predicted.astype(str), average="macro"))
    assert result["confusion"] == [[2, 0, 0], [1, 0, 0], [0, 0, 0]] and result["labelled"] == 3


def test_unseen_classes_are_ordered_by_name_whatever_the_merge_order():
    rng = np.random.default_rng(5)
    classes = CLASSES + ("Emperor", "King", "Macaroni")
    predicted, labels = _pairs(rng, 600, classes)
    forward, backward = _window(predicted, labels, 6), _window(predicted[::-1], labels[::-1], 6)
    assert forward.unseen == backward.unseen == ("Emperor", "King", "Macaroni")
    np.testing.assert_array_equal(forward.confusion, backward.confusion)


def test_regression_metrics_equal_sklearn_after_merges():
    rng = np.random.default_rng(6)
    labels = rng.normal(10, 3, 2001)
    predicted = labels + rng.standard_t(4, 2001) + 0.3
    predicted[rng.random(2001) < 0.05] = np.nan
    parts = [RegressionWindow() for _ in range(9)]
    for part, p, y in zip(parts, np.array_split(predicted, 9), np.array_split(labels, 9)):
        part.update(p, y)
    for part in parts[1:]:
        parts[0].merge(part)
    keep = ~np.isnan(predicted)
    y, p = labels[keep], predicted[keep]
    values = parts[0].metrics()
    assert parts[0].labelled == keep.sum() and parts[0].unscored == (~keep).sum()
    assert values["mae"] == pytest.approx(sk.mean_absolute_error(y, p), rel=1e-12)
    assert values["rmse"] == pytest.approx(sk.root_mean_squared_error(y, p), rel=1e-12)
    assert values["bias"] == pytest.approx(np.mean(p - y), rel=1e-12)


def test_baselines_round_trip_through_their_dicts():
    rng = np.random.default_rng(7)
    predicted, labels = _pairs(rng, 300)
    categorical = ClassificationBaseline.from_pairs("species", predicted, labels)
    assert categorical.classes[:2] == ("Adelie", "Gentoo") and "Emperor" in categorical.classes
    again = ClassificationBaseline.from_dict(categorical.to_dict())
    assert again.classes == categorical.classes and np.array_equal(again.confusion, categorical.confusion)
    assert categorical.to_dict()["accuracy"] == pytest.approx(sk.accuracy_score(*_scored(labels, predicted)))
    numeric = RegressionBaseline.from_pairs("mass", rng.normal(size=50), rng.normal(size=50))
    again = RegressionBaseline.from_dict(numeric.to_dict())
    assert again.metrics() == pytest.approx(numeric.metrics()) and np.array_equal(again.residuals, numeric.residuals)


# ---------------------------------------------------------------- the alert on null streams and against drops

def _sizes(trials: int, draws: int = 400) -> bench.PerformanceSizes:
    return bench.PerformanceSizes(n_base=(), n_window=(), accuracy=(), trials=trials, draws=draws, cells=())


def _accuracy_alerts(rng, trials, n_base, n_window, accuracy, rate, drop=0.0):
    """The exact accuracy test on ``trials`` (baseline, window) pairs, one threshold per distinct baseline count."""
    base, window = rng.binomial(n_base, accuracy, trials), rng.binomial(n_window, accuracy - drop, trials)
    limits = {k: perf.accuracy_threshold(perf.accuracy_cdf(n_window, k, n_base), rate) for k in np.unique(base)}
    return window < np.array([limits[k] for k in base])


def test_accuracy_verdict_is_the_beta_binomial_cdf_and_its_threshold():
    rng = np.random.default_rng(10)
    baseline = ClassificationBaseline("y", CLASSES, rng.multinomial(258, bench.confusion_process(0.9).ravel()).reshape(3, 3))
    test = PerformanceTest(baseline, 0.01, metrics=["accuracy"])
    for n in (5, 80, 700):
        for correct in range(0, n + 1, max(1, n // 40)):
            window = baseline.window()
            window.confusion = np.diag([correct, 0, 0]) + np.array([[0, n - correct, 0], [0, 0, 0], [0, 0, 0]])
            (verdict,) = test.verdicts(window)
            k = np.trace(baseline.confusion)
            assert verdict.p_value == pytest.approx(stats.betabinom.cdf(correct, n, k + 1, 258 - k + 1), rel=1e-9)
            assert verdict.alert == (verdict.p_value < 0.01) == (verdict.value < verdict.low)


@pytest.mark.parametrize("n_base, n_window, accuracy", [(258, 100, 0.9), (258, 2000, 0.97), (1000, 500, 0.8),
                                                        (30, 20_000, 0.89)])
def test_accuracy_false_alarms_on_null_streams_within_1_5x_and_equal_to_the_exact_rate(n_base, n_window, accuracy):
    """20,000 trials, each a fresh baseline: the alert rate is at most 1.5x the 1 % configured and agrees
    with the exact rate (summed over every baseline count) within 4.5 standard errors."""
    rng = np.random.default_rng([11, n_base, n_window])
    rate, trials = 0.01, 20_000
    observed = _accuracy_alerts(rng, trials, n_base, n_window, accuracy, rate).mean()
    exact = bench.accuracy_alert_rate(accuracy, n_base, n_window, rate)
    print(f"accuracy null m={n_base} n={n_window} p={accuracy}: {observed:.4f} (exact {exact:.4f}) at 0.01")
    assert observed <= 1.5 * rate and exact <= 1.5 * rate
    assert abs(observed - exact) < 4.5 * np.sqrt(exact * (1 - exact) / trials) + 1e-4


def test_jeffreys_prior_would_alert_lucky_baselines_too_often(monkeypatch):
    """Why PRIOR is 1: with 1/2 a small baseline against a large window alerts 3x the rate."""
    monkeypatch.setattr(perf, "PRIOR", 0.5)
    rate = bench.accuracy_alert_rate(0.89, 30, 20_000, 0.01)
    assert rate > 2.5 * 0.01


@pytest.mark.parametrize("n_base, n_window, accuracy", [(258, 200, 0.9), (1000, 1000, 0.8)])
def test_simulated_classification_tests_false_alarms_within_1_5x(n_base, n_window, accuracy):
    rng = np.random.default_rng([12, n_base])
    rates = bench.classification_alert_rates(rng, _sizes(400), n_base, n_window, accuracy, 0.05, accuracy)
    print(f"classification null m={n_base} n={n_window} accuracy={accuracy} at 0.05:",
          {metric: round(value, 4) for metric, value in rates.items()})
    assert set(rates) == {"accuracy", "precision", "recall", "f1", "f1_macro"}
    assert max(rates.values()) <= 1.5 * 0.05


@pytest.mark.parametrize("residuals", list(bench.RESIDUAL_PROCESSES))
@pytest.mark.parametrize("n_base, n_window", [(300, 30), (300, 300)])
def test_regression_tests_false_alarms_within_1_5x(residuals, n_base, n_window):
    rng = np.random.default_rng([13, n_base, n_window, len(residuals)])
    rates = bench.regression_alert_rates(rng, _sizes(400), n_base, n_window, residuals, 0.05, 1.0)
    print(f"regression null {residuals} m={n_base} n={n_window} at 0.05:", rates)
    assert max(rates.values()) <= 1.5 * 0.05


def test_power_against_real_drops():
    """Accuracy 0.95 -> 0.85 in windows of 200 against 258 baseline rows (exact: 88.5 %); residuals 1.5x
    larger in windows of 200 against 300 rows."""
    rng = np.random.default_rng(14)
    accuracy = _accuracy_alerts(rng, 5000, 258, 200, 0.95, 0.01, drop=0.10).mean()
    classification = bench.classification_alert_rates(rng, _sizes(200), 258, 200, 0.95, 0.01, 0.85)
    regression = bench.regression_alert_rates(rng, _sizes(200), 300, 200, "normal", 0.01, 1.5)
    print(f"power at 1 %: accuracy {accuracy:.3f}; simulated {classification}; regression {regression}")
    assert accuracy == pytest.approx(bench.accuracy_alert_rate(0.95, 258, 200, 0.01, 0.85), abs=0.015)
    assert accuracy > 0.85 and classification["accuracy"] > 0.8 and classification["f1_macro"] > 0.7
    assert regression["mae"] > 0.95 and regression["rmse"] > 0.95 and regression["bias"] < 0.2
