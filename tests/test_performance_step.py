"""The performance step's schedule without Flink: `flink_job.performance.WindowPerformance` driven by hand with a
fake keyed context (the window's key, its event-time timers and watermark, its state), batch by batch."""
from __future__ import annotations

import json
from typing import Optional

import numpy as np

from contract import outputs

from flink_job.performance import WindowPerformance

WINDOW_MS, MAX_DELAY_MS, INTERVAL_MS = 10_000, 60_000, 5_000
START = 20_000
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
    return (START, predictions, len(predicted), packed[0], packed[1], None)


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
    assert row[3] == record["metric"]
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
