"""The false-alarm rate of the histogram metrics' `auto` thresholds on short windows (a defect the 1,000-feature
comparison showed in its last, partial window): one normal baseline of 2,000 rows, 2,000 null windows per size
drawn from the same population, the share over the 1 % threshold per metric and window size.

    python examples/wide/short_windows.py
"""
from __future__ import annotations

import numpy as np

from udfs import calibration, drift
from udfs.baseline import Baseline, FeatureBaseline
from udfs.histogram import layout_counts

SIZES = (35, 100, 500)
WINDOWS = 2000


def main() -> None:
    rng = np.random.default_rng(1)
    feature = FeatureBaseline.from_values(rng.normal(size=2000))
    baseline = Baseline({"x": feature}, source="short windows")
    reference = feature.histogram_counts()
    print("| metric | " + " | ".join(f"n = {n}" for n in SIZES) + " |")
    print("|---|" + "---:|" * len(SIZES))
    for metric in drift.METRICS:
        curves = calibration.threshold_curves(baseline, metric, 0.01)
        rates = []
        for n in SIZES:
            windows = np.stack([layout_counts(rng.normal(size=n), feature.edges) for _ in range(WINDOWS)])
            values = np.array([drift.compute(metric, w, reference, feature.edges) for w in windows])
            rates.append(float((values > curves.at(n)["x"]).mean()))
        print(f"| {metric} | " + " | ".join(f"{100 * r:.1f} %" for r in rates) + " |")


if __name__ == "__main__":
    main()
