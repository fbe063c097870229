"""A mergeable, bounded-memory quantile sketch that is exact on small inputs.

Levels of compactors (Manku-Rajagopalan-Lindsay / KLL family): level ``h`` holds items that each stand
for ``2**h`` input values. Values enter level 0. Whenever a level holds more than ``capacity`` items it
is *compacted*: sorted, and every other item (starting at an offset that alternates between 0 and 1 from
one compaction of that level to the next) moves up one level with double weight; an odd item out stays.

Rank error. A compaction of weight-``w`` items changes the weighted rank of any point by at most ``w``.
Level ``h`` receives at most ``n / 2**h`` items and each of its compactions consumes more than
``capacity`` of them, so its compactions cost at most ``n / capacity`` together, and only levels
``h < log2(n / capacity)`` ever compact. Hence for every query::

    |rank error| <= n * ceil(log2(n / capacity)) / capacity

(0 while ``n <= capacity``: the sketch then holds every value and answers exactly). With the default
``capacity = 2048`` this is at most 1 % of ``n`` for any ``n`` below ``2048 * 2**20`` (about 2e9), and
memory is at most ``capacity`` floats per level (about ``log2(n / capacity) + 1`` levels). Merging
concatenates level by level and then compacts, so the same bound holds after merges in any split.
"""
from __future__ import annotations

import numpy as np

DEFAULT_CAPACITY = 2048


class QuantileSketch:
    """Mergeable quantiles: exact up to ``capacity`` values, then within the documented rank error."""

    __slots__ = ("capacity", "levels", "offsets")

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {capacity}")
        self.capacity = capacity
        self.levels: list[np.ndarray] = [np.empty(0)]
        self.offsets: list[int] = [0]

    @property
    def count(self) -> int:
        """Number of values summarised (the total weight)."""
        return int(sum(len(level) << h for h, level in enumerate(self.levels)))

    @property
    def is_exact(self) -> bool:
        """True while no compaction has happened: quantiles are then exact."""
        return len(self.levels) == 1

    def update(self, values: np.ndarray) -> None:
        """Add a batch of finite values."""
        self.levels[0] = np.concatenate([self.levels[0], np.asarray(values, dtype=float)])
        self._compact()

    def merge(self, other: "QuantileSketch") -> None:
        """Fold ``other`` into this sketch (``other`` is left unchanged)."""
        for h, level in enumerate(other.levels):
            if h == len(self.levels):
                self.levels.append(np.empty(0))
                self.offsets.append(0)
            self.levels[h] = np.concatenate([self.levels[h], level])
        self._compact()

    def quantiles(self, probs) -> list[float]:
        """Values at probabilities ``probs`` (each in [0, 1]); empty sketch gives ``[]``.

        Exact mode: ``numpy.quantile`` with its default linear interpolation. Compacted mode: the
        weighted inverse CDF, the smallest item ``x`` whose cumulative weight reaches ``q * n``.
        """
        probs = np.asarray(probs, dtype=float)
        if self.count == 0:
            return []
        if self.is_exact:
            return [float(v) for v in np.quantile(self.levels[0], probs)]
        items = np.concatenate(self.levels)
        weights = np.concatenate([np.full(len(level), 1 << h) for h, level in enumerate(self.levels)])
        order = np.argsort(items, kind="stable")
        cumulative = np.cumsum(weights[order])
        index = np.searchsorted(cumulative, probs * cumulative[-1], side="left")
        return [float(v) for v in items[order][np.minimum(index, len(items) - 1)]]

    def _compact(self) -> None:
        h = 0
        while h < len(self.levels):
            level = self.levels[h]
            if len(level) > self.capacity:
                if h + 1 == len(self.levels):
                    self.levels.append(np.empty(0))
                    self.offsets.append(0)
                ordered = np.sort(level)
                if len(ordered) % 2:
                    self.levels[h], ordered = ordered[-1:], ordered[:-1]
                else:
                    self.levels[h] = np.empty(0)
                self.levels[h + 1] = np.concatenate([self.levels[h + 1], ordered[self.offsets[h]::2]])
                self.offsets[h] ^= 1
            h += 1
