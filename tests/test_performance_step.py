"""The performance step without Flink: `flink_job.performance.WindowPerformance`'s schedule driven by hand with a
fake keyed context (its event-time timers and watermark, its state), batch by batch; and `Metrics`, the spec's
metrics over `udfs.performance` from the label join's codes, against scikit-learn."""
from __future__ import annotations

import json
from typing import Optional

import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, mean_absolute_error,
                             precision_recall_fscore_support, root_mean_squared_error)

from contract import outputs

from udfs import performance as realised

from flink_job.performance import Metrics, WindowPerformance

WINDOW_MS, MAX_DELAY_MS, INTERVAL_MS = 10_000, 60_000, 5_000
START = 20_000
VERSION = "canary"
FINAL_AT = START + WINDOW_MS - 1 + MAX_DELAY_MS


class Correct:
    """A stand-in window accumulator: pairs scored and equal."""

    def __init__(self):
        self.labelled, self.correct = 0, 0


class Accuracy:
    """A stand-in for the spec's metrics (`flink_job.performance.Metrics`): the share of equal codes."""

    def new(self):
        return Correct()

    def update(self, window, predicted, truth, labels):
        window.correct += int(np.sum(predicted == truth))
        window.labelled += len(predicted)

    def results(self, window):
        value = window.correct / window.labelled if window.labelled else None
        return [{"metric": "accuracy", "value": value, "baseline": 0.9, "alert": value is not None and value < 0.5}]


class Keyed:
    """The keyed context of one window: its watermark, timers and state."""

    def __init__(self, start: int):
        self.watermark, self.timers, self.stored = -(1 << 63), set(), None

    def timer_service(self):
        return self

    def current_watermark(self) -> int:
        return self.watermark

    def register_event_time_timer(self, timestamp: int) -> None:
        self.timers.add(timestamp)

    def value(self):
        return self.stored

    def update(self, value) -> None:
        self.stored = value

    def clear(self) -> None:
        self.stored = None


def opened(max_delay_ms: int = MAX_DELAY_MS) -> tuple[WindowPerformance, Keyed]:
    function = WindowPerformance("m", Accuracy(), WINDOW_MS, max_delay_ms, INTERVAL_MS)
    keyed = Keyed(START)
    function.state = keyed
    return function, keyed


def batch(predictions: int, predicted=(), truth=()) -> tuple:
    packed = [np.asarray(values, dtype="<f8").tobytes() for values in (predicted, truth)]
    return (START, predictions, len(predicted), packed[0], packed[1], None, VERSION)


def send(function: WindowPerformance, keyed: Keyed, value: tuple) -> list[dict]:
    return [_record(row) for row in function.process_element(value, keyed)]


def fire(function: WindowPerformance, keyed: Keyed, watermark: int) -> list[dict]:
    """The watermark moved to ``watermark``: the timers at or before it fire in order."""
    keyed.watermark = watermark
    records = []
    for timestamp in sorted(t for t in keyed.timers if t <= watermark):
        keyed.timers.discard(timestamp)
        records += [_record(row) for row in function.on_timer(timestamp, keyed)]
    return records


def _record(row) -> dict:
    assert row[0] == outputs.PERFORMANCE and row[1] == "m" and row[2] == START
    record = json.loads(row[4])
    assert row[3] == record["metric"] and record["version"] == VERSION  # each window state is of one version
    return record


def assert_record(record: dict, revision: int, value: Optional[float], labelled: int, predictions: int,
                  final: bool = False) -> None:
    assert record["revision"] == revision and record["final"] is final
    assert record["value"] == value and record["labelled"] == labelled and record["predictions"] == predictions
    assert record["coverage"] == (labelled / predictions if predictions else None)
    assert (record["window_start"], record["window_end"]) == (START, START + WINDOW_MS)


def test_a_windows_first_labels_go_out_at_once_then_revisions_at_most_once_per_interval_then_final():
    function, keyed = opened()
    assert send(function, keyed, batch(8)) == []  # predictions alone: no record yet
    assert keyed.timers == {FINAL_AT}
    keyed.watermark = 30_000
    [first] = send(function, keyed, batch(2, [0, 1], [0, 0]))
    assert_record(first, 0, 0.5, 2, 10)
    assert send(function, keyed, batch(0, [1], [1])) == []  # within the interval: a revision is due
    assert send(function, keyed, batch(0, [2], [2])) == []
    assert keyed.timers == {FINAL_AT, 35_000}  # one revision timer, update_interval after the first record
    assert fire(function, keyed, 34_999) == []
    [revised] = fire(function, keyed, 36_000)
    assert_record(revised, 1, 0.75, 4, 10)
    assert fire(function, keyed, 50_000) == []  # nothing new, nothing out
    assert send(function, keyed, batch(0, [0], [2])) == []
    assert keyed.timers == {FINAL_AT, 50_001}  # the interval has passed: at the next watermark
    [again] = fire(function, keyed, 50_001)
    assert_record(again, 2, 0.6, 5, 10)
    [final] = fire(function, keyed, FINAL_AT)
    assert_record(final, 3, 0.6, 5, 10, final=True)
    assert keyed.stored is None


def test_a_window_without_labels_has_one_final_record_without_a_value():
    function, keyed = opened()
    send(function, keyed, batch(5))
    [final] = fire(function, keyed, FINAL_AT)
    assert_record(final, 0, None, 0, 5, final=True)
    assert final["alert"] is False


def test_the_revision_due_at_the_final_watermark_goes_out_as_the_final_record():
    function, keyed = opened()
    keyed.watermark = FINAL_AT - 1
    send(function, keyed, batch(2, [0, 0], [0, 0]))
    send(function, keyed, batch(0, [0], [1]))
    records = fire(function, keyed, 1 << 62)  # the end of a bounded input
    assert [(r["revision"], r["final"], r["labelled"]) for r in records] == [(1, True, 3)]


def test_a_watermark_past_the_windows_end_plus_max_delay_gives_the_final_record_alone():
    function, keyed = opened()
    keyed.watermark = 30_000
    send(function, keyed, batch(2, [0, 0], [0, 0]))
    send(function, keyed, batch(0, [0], [1]))  # a revision due at 35,000
    records = fire(function, keyed, 1 << 62)  # the end of a bounded input: both timers at once
    assert [(r["revision"], r["final"], r["labelled"]) for r in records] == [(1, True, 3)]


def test_a_window_restored_under_a_longer_max_delay_is_final_at_the_later_time():
    function, keyed = opened()
    send(function, keyed, batch(3))
    function.max_delay_ms = 2 * MAX_DELAY_MS  # as if restored under another spec
    send(function, keyed, batch(1))
    assert keyed.timers == {FINAL_AT, FINAL_AT + MAX_DELAY_MS}
    assert fire(function, keyed, FINAL_AT) == []
    [final] = fire(function, keyed, FINAL_AT + MAX_DELAY_MS)
    assert_record(final, 0, None, 0, 4, final=True)


# ------------------------------------------------------------------ the metrics over udfs.performance

VOCABULARY = np.array(["Adelie", "Chinstrap", "Gentoo"], dtype=object)
CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "f1_macro", "confusion")
NAN = float("nan")


def _decoded(codes: np.ndarray, labels: list) -> list:
    """The class names of a batch's codes (None: missing), as the job's label join writes them."""
    names = [*VOCABULARY, *labels]
    return [None if np.isnan(c) else names[int(c) if c >= 0 else len(VOCABULARY) - 1 - int(c)] for c in codes]


def _results(metrics: Metrics, window) -> dict:
    return {r["metric"] + (f"/{r['class']}" if "class" in r else ""): r for r in metrics.results(window)}


def _classification_batches() -> list[tuple]:
    """Batches of (predicted, truth, labels): codes into the vocabulary, an unseen class in each batch's own
    labels (Kiwi is -1 in one batch and -2 in the other), missing values."""
    return [(np.array([0, 1, 2, -1, NAN, 0, 2]), np.array([0, 2, 2, 0, 1, -1, NAN]), ["Kiwi"]),
            (np.array([1, 1, -2, 0, 2]), np.array([1, 0, -2, -1, 2]), ["Emperor", "Kiwi"])]


def test_a_categorical_outputs_metrics_equal_scikit_learn_over_codes_with_unseen_classes():
    metrics = Metrics(CLASSIFICATION, VOCABULARY, None, None)
    window, predicted, truth = metrics.new(), [], []
    for p, y, labels in _classification_batches():
        metrics.update(window, p, y, labels)
        predicted += _decoded(p, labels)
        truth += _decoded(y, labels)
    scored = [(p, y) for p, y in zip(predicted, truth) if p is not None and y is not None]
    p, y = [s[0] for s in scored], [s[1] for s in scored]
    results = _results(metrics, window)
    classes = results["confusion"]["classes"]
    assert classes == [*VOCABULARY, "Emperor", "Kiwi"]
    assert results["confusion"]["value"] == confusion_matrix(y, p, labels=classes).tolist()
    assert results["accuracy"]["value"] == pytest.approx(accuracy_score(y, p))
    assert results["f1_macro"]["value"] == pytest.approx(f1_score(y, p, average="macro"))
    expected = precision_recall_fscore_support(y, p, labels=classes, zero_division=np.nan)
    for name, values in zip(("precision", "recall", "f1"), expected):
        got = [results[f"{name}/{c}"]["value"] for c in classes]
        assert got == pytest.approx([None if np.isnan(v) else v for v in values], nan_ok=True), name
    assert all(r["baseline"] is None and r["alert"] is False for r in results.values())  # no baseline performance


def test_a_numeric_outputs_metrics_equal_scikit_learn():
    metrics = Metrics(("mae", "rmse", "bias"), None, None, None)
    window = metrics.new()
    predicted, truth = np.array([1.0, -2.5, 3.0, NAN, 0.5]), np.array([1.5, -2.0, 1.0, 2.0, NAN])
    metrics.update(window, predicted[:2], truth[:2], None)
    metrics.update(window, predicted[2:], truth[2:], None)
    results = _results(metrics, window)
    p, y = predicted[:3], truth[:3]
    assert results["mae"]["value"] == pytest.approx(mean_absolute_error(y, p))
    assert results["rmse"]["value"] == pytest.approx(root_mean_squared_error(y, p))
    assert results["bias"]["value"] == pytest.approx(float(np.mean(p - y)))
    assert window.labelled == 3


def test_with_the_baselines_performance_each_result_carries_its_baseline_and_the_calibrated_alert():
    rng = np.random.default_rng(5)
    truth = rng.choice(VOCABULARY, size=400)
    right = rng.random(400) < 0.9
    predicted = np.where(right, truth, rng.choice(VOCABULARY, size=400))
    reference = realised.ClassificationBaseline.from_pairs("species", list(predicted), list(truth))
    metrics = Metrics(("accuracy", "recall"), VOCABULARY, reference,
                      realised.PerformanceTest(reference, 0.01, ("accuracy", "recall")))
    codes = {name: float(k) for k, name in enumerate(VOCABULARY)}
    good, bad = metrics.new(), metrics.new()
    metrics.update(good, np.array([codes[c] for c in truth[:100]]), np.array([codes[c] for c in truth[:100]]), None)
    wrong = np.array([codes[VOCABULARY[(list(VOCABULARY).index(c) + 1) % 3]] for c in truth[:100]])
    metrics.update(bad, np.concatenate([wrong[:60], [codes[c] for c in truth[60:100]]]),
                   np.array([codes[c] for c in truth[:100]]), None)
    baseline_accuracy = float(np.mean(predicted == truth))
    for window, alerted in ((good, False), (bad, True)):
        results = _results(metrics, window)
        assert results["accuracy"]["baseline"] == pytest.approx(baseline_accuracy)
        assert results["accuracy"]["alert"] is alerted
        assert {"low", "p_value"} <= set(results["accuracy"])
        assert set(results) == {"accuracy", *(f"recall/{c}" for c in VOCABULARY)}
    empty = _results(metrics, metrics.new())
    assert empty["accuracy"]["value"] is None and empty["accuracy"]["alert"] is False
    assert empty["accuracy"]["baseline"] == pytest.approx(baseline_accuracy)
