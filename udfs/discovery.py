"""Control across the tests of a window, one verdict per model, and alert episodes.

A wide model runs hundreds of drift tests per window (features x metrics). Each ``auto`` threshold keeps its
false-alarm rate per test, so a window of 1,000 features and five metrics at 1 % raises about 50 false flags,
every window. Here the window's p-values (`udfs.window_drift.MetricResult.p_values`) are controlled together:

- ``bh`` (Benjamini-Hochberg 1995): the expected share of false discoveries among a window's discoveries is at
  most ``q`` when the p-values are independent or positively dependent (PRDS: the metrics of one feature, all
  large together under drift, and features that move together);
- ``by`` (Benjamini-Yekutieli 2001): the same under any dependence, at the cost of ``q / (1 + 1/2 + ... + 1/m)``;
- ``bonferroni``: the chance of any false discovery in the window (family-wise) at most ``q``;
- ``none``: every test at its own threshold, as without control (``discovery`` is ``drift``).

The model's verdict per window is the global null "nothing drifted" tested with the p-value that matches the
method, so that it says drift exactly when the method finds a discovery: Simes' (1986) ``min_i m p_(i) / i`` for
``bh`` (BH finds one exactly when Simes' p-value is at most ``q``), that times ``1 + 1/2 + ... + 1/m`` for ``by``,
and ``m min_i p_i`` for ``bonferroni`` and ``none`` (whose verdict is still any flag). On a window where nothing
drifted, the verdict is a false alarm with chance at most ``q`` (Simes under PRDS, the others always).

Tests with a fixed threshold have no p-value (NaN): they are not counted in ``m``, their ``discovery`` is their
own flag, and the model verdict leaves them out (but under ``none``).

Episodes (`Episodes`) turn discoveries in a run of windows into few alerts: a subject (a feature, or the model)
opens an episode when discovered in ``k`` of its last ``m`` windows and closes it after ``close`` windows in a
row without a discovery.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from contract.spec import CONTROL_METHODS as METHODS
MODEL = None  # the subject of a model-level episode (its ``feature``)


def control(p_values, method: str, q: float) -> np.ndarray:
    """The discoveries among ``p_values`` (NaN: not tested, never a discovery) under ``method`` at level ``q``;
    ``none`` discovers ``p <= q`` (the job's `window_verdict` takes each test's own threshold instead). Same shape
    as ``p_values``."""
    p = np.asarray(p_values, dtype=float)
    tested = ~np.isnan(p)
    m = int(tested.sum())
    if method not in METHODS:
        raise ValueError(f"unknown control method {method!r} (known: {', '.join(METHODS)})")
    if m == 0:
        return np.zeros(p.shape, dtype=bool)
    if method in ("bh", "by"):
        ordered = np.sort(p[tested])
        level = q / _harmonic(m) if method == "by" else q
        passing = np.flatnonzero(ordered <= level * np.arange(1, m + 1) / m)
        cutoff = ordered[passing[-1]] if len(passing) else -np.inf
        return tested & (np.nan_to_num(p, nan=np.inf) <= cutoff)
    limit = q / m if method == "bonferroni" else q
    return tested & (np.nan_to_num(p, nan=np.inf) <= limit)


def global_p_value(p_values, method: str) -> Optional[float]:
    """The p-value of "no test of the window drifted" matching ``method`` (module docstring); None without tests."""
    p = np.asarray(p_values, dtype=float)
    p = np.sort(p[~np.isnan(p)])
    m = len(p)
    if m == 0:
        return None
    if method in ("bh", "by"):
        simes = float(np.min(m * p / np.arange(1, m + 1)))
        return min(1.0, simes * (_harmonic(m) if method == "by" else 1.0))
    return min(1.0, float(m * p[0]))


def _harmonic(m: int) -> float:
    return float(np.sum(1.0 / np.arange(1, m + 1)))


@dataclass(frozen=True)
class Verdict:
    """A window's outcome: the discovery of each test, the tests counted (with a p-value), the model's p-value
    (None without tests) and drift verdict."""

    discoveries: np.ndarray
    tests: int
    p_value: Optional[float]
    drift: bool


def window_verdict(p_values, flags, method: str, q: float) -> Verdict:
    """The control of one window's tests: ``p_values`` (NaN for a fixed threshold or a window without values)
    and ``flags`` (each test over its own threshold). Under ``none`` the discoveries are the flags; else the
    controlled discoveries, and the fixed-threshold tests' own flags."""
    p, flags = np.asarray(p_values, dtype=float), np.asarray(flags, dtype=bool)
    tested, p_value = ~np.isnan(p), global_p_value(p, method)
    if method == "none":
        return Verdict(flags.copy(), int(tested.sum()), p_value, bool(flags.any()))
    controlled = control(p, method, q)
    return Verdict(np.where(tested, controlled, flags), int(tested.sum()), p_value, bool(controlled.any()))


@dataclass
class Subject:
    """One feature's (or the model's) recent windows and its open episode, if any."""

    recent: deque = field(default_factory=deque)  # (window_start, metrics discovered) of the last m windows
    first_window: Optional[int] = None  # the open episode's first discovered window (None: no episode open)
    last_window: Optional[int] = None
    windows: int = 0  # discovered windows in the open episode
    metrics: list = field(default_factory=list)  # the metrics discovered in the open episode, in order
    quiet: int = 0  # windows in a row without a discovery


@dataclass
class Episodes:
    """Alert episodes of one model (a pure state machine, kept by the job in keyed state).

    Feed it every window in order (`step`) with what was discovered (feature -> metrics; `MODEL` for the
    model's verdict). A subject opens an episode when discovered in ``k`` of its last ``m`` windows, updates it
    with each further discovered window, and closes it after ``close`` windows in a row without one; windows
    missing between two steps (no traffic) count as windows without a discovery. Events are dicts
    ``{"event", "scope", "feature", "metrics", "first_window", "last_window", "windows", "window_start"}``
    (``window_start``: the window whose verdict caused the event; ``first_window``/``last_window``: the
    episode's first and latest discovered windows, by start)."""

    k: int
    m: int
    close: int
    window_ms: int
    subjects: dict = field(default_factory=dict)
    last_start: Optional[int] = None

    def step(self, window_start: int, discovered: Mapping[Optional[str], Sequence[str]]) -> list[dict]:
        """The events of the window starting at ``window_start``; ``discovered``: subject -> metrics discovered."""
        events = []
        if self.last_start is not None and window_start <= self.last_start:
            return events  # a window seen already (a second record of a window restored mid-way): no new step
        gap = 0 if self.last_start is None else (window_start - self.last_start) // self.window_ms - 1
        for skipped in range(min(max(gap, 0), self.m + self.close)):
            events += self._advance(window_start - (gap - skipped) * self.window_ms, {})
        events += self._advance(window_start, discovered)
        self.last_start = window_start
        return events

    def active(self) -> list[Optional[str]]:
        """The subjects with an open episode."""
        return [name for name, subject in self.subjects.items() if subject.first_window is not None]

    def _advance(self, window_start: int, discovered: Mapping[Optional[str], Sequence[str]]) -> list[dict]:
        events = []
        for name in sorted(set(self.subjects) | set(discovered), key=lambda name: (name is not MODEL, name or "")):
            subject = self.subjects.setdefault(name, Subject())
            event = self._subject_step(name, subject, window_start, list(discovered.get(name, ())))
            if event is not None:
                events.append(event)
            if subject.first_window is None and not any(metrics for _, metrics in subject.recent):
                del self.subjects[name]  # calm again: nothing to remember
        return events

    def _subject_step(self, name: Optional[str], subject: Subject, window_start: int,
                      metrics: list[str]) -> Optional[dict]:
        subject.recent.append((window_start, metrics))
        while len(subject.recent) > self.m:
            subject.recent.popleft()
        if not metrics:
            subject.quiet += 1
            if subject.first_window is not None and subject.quiet >= self.close:
                event = _event("close", name, subject, window_start)
                subject.first_window, subject.last_window, subject.windows, subject.metrics = None, None, 0, []
                return event
            return None
        subject.quiet = 0
        if subject.first_window is not None:
            subject.last_window, subject.windows = window_start, subject.windows + 1
            subject.metrics += [metric for metric in metrics if metric not in subject.metrics]
            return _event("update", name, subject, window_start)
        hits = [(start, found) for start, found in subject.recent if found]
        if len(hits) < self.k:
            return None
        subject.first_window, subject.last_window, subject.windows = hits[0][0], window_start, len(hits)
        subject.metrics = list(dict.fromkeys(metric for _, found in hits for metric in found))
        return _event("open", name, subject, window_start)


def _event(kind: str, name: Optional[str], subject: Subject, window_start: int) -> dict:
    return {"event": kind, "scope": "model" if name is MODEL else "feature", "feature": name,
            "metrics": list(subject.metrics), "first_window": subject.first_window, "last_window": subject.last_window,
            "windows": subject.windows, "window_start": window_start}


def discovered_metrics(features: Iterable[str], metrics: Iterable[str], discoveries: Iterable[bool]
                       ) -> dict[str, list[str]]:
    """Feature -> the metrics discovered for it, from parallel sequences of a window's tests."""
    found: dict[str, list[str]] = {}
    for feature, metric, discovery in zip(features, metrics, discoveries):
        if discovery:
            found.setdefault(feature, []).append(metric)
    return found
