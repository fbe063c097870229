"""Inputs and checks of the job's windows shared by the job tests: rows within the iris baseline's normal
range, and a per-feature stats record compared with numpy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from udfs.baseline import Baseline

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "iris" / "monitor.yaml"


def normal_rows(n: int, seed: int) -> list[list[float]]:
    """Rows around the iris example's baseline means, within 2 sigma of each (no outliers)."""
    spec = yaml.safe_load(EXAMPLE.read_text())
    baseline = Baseline.load(EXAMPLE.parent / spec["baseline"])
    stats = [baseline.features[name] for name in spec["input"]["features"]]
    z = np.clip(np.random.default_rng(seed).standard_normal((n, len(stats))), -2, 2)
    return np.round([[s.mean + s.std * v for s, v in zip(stats, row)] for row in z], 2).tolist()


def assert_stats_equal_numpy(record: dict, x: np.ndarray, window_ms: int) -> None:
    """A per-feature stats record equals numpy on ``x``, its window's values of that feature (the sample
    standard deviation only when there are two or more values), and spans ``window_ms``."""
    assert record["count"] == len(x)
    assert record["mean"] == pytest.approx(x.mean(), rel=1e-12)
    if len(x) > 1:
        assert record["stddev"] == pytest.approx(x.std(ddof=1), rel=1e-9, abs=1e-12)
    assert (record["min"], record["max"]) == (x.min(), x.max())
    assert record["window_end"] - record["window_start"] == window_ms
