"""The calibration benchmark's windows-as-cell-counts give what raw windows give; a tiny run reports, the
realised-performance section included."""
import json

import numpy as np
import pytest

from udfs import drift, two_sample
from udfs.histogram import layout_counts

from benchmarks import calibration as bench


def _cell_counts(windows: bench.CellWindows, raw: np.ndarray) -> np.ndarray:
    """Raw values counted into the cells (-inf, u_1), {u_1}, (u_1, u_2), ..."""
    j = np.searchsorted(windows.points, raw, side="left")
    on_point = windows.points[np.minimum(j, len(windows.points) - 1)] == raw
    cells = np.where(on_point, 2 * j + 1, 2 * j)
    return np.stack([np.bincount(row, minlength=2 * len(windows.points) + 1) for row in cells])


@pytest.mark.parametrize("name", ["normal", "poisson4"])
def test_cell_counts_give_the_raw_windows_histograms_and_tests(name):
    rng = np.random.default_rng(3)
    dist = bench.DISTRIBUTIONS[name]
    feature = bench.baseline_feature(dist.draw(rng, (150,)), "current")
    windows = bench.CellWindows(feature)
    raw = bench.drifted(dist.draw(rng, (5, 400)), dist, "shift_0.25sd")
    cells = _cell_counts(windows, raw)
    assert windows.histograms(cells).tolist() == [layout_counts(w, feature.edges).tolist() for w in raw]
    for test in drift.TESTS.values():
        np.testing.assert_allclose(test(windows.window_cdf(cells), 400, 0.0, feature.sample),
                                   test(two_sample.empirical_cdf(raw), 400, 0.0, feature.sample), atol=1e-12)


@pytest.mark.parametrize("name, scenario", [("t3", "scale_x1.5"), ("poisson4", "shift_0.5sd")])
def test_cell_probabilities_are_the_drifted_law(name, scenario):
    """The mean of many drawn windows matches raw drifted windows' cell counts (law of large numbers)."""
    rng = np.random.default_rng(4)
    dist = bench.DISTRIBUTIONS[name]
    windows = bench.CellWindows(bench.baseline_feature(dist.draw(rng, (120,)), "current"))
    drawn = windows.draw(rng, dist, scenario, 20_000, 1)[0] / 20_000
    raw = _cell_counts(windows, bench.drifted(dist.draw(rng, (1, 200_000)), dist, scenario))[0] / 200_000
    assert np.abs(np.cumsum(drawn) - np.cumsum(raw)).max() < 0.015


def test_a_tiny_run_writes_results_report_and_plot(tmp_path, monkeypatch):
    tiny = bench.Sizes(references={120: 4}, null_windows={120: 3}, drift_windows={120: 2}, legacy_share=2,
                       scipy_windows=2, window_sizes=(200,))
    monkeypatch.setattr(bench, "QUICK", tiny)
    monkeypatch.setattr(bench, "PERFORMANCE_QUICK", bench.PerformanceSizes(
        n_base=(50,), n_window=(40,), accuracy=(0.9,), trials=10, draws=100, cells=((60, 30),)))
    monkeypatch.setattr(bench, "DISTRIBUTIONS", {k: bench.DISTRIBUTIONS[k] for k in ("uniform", "poisson4")})
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["rows"]) == 2 * len(bench.SCENARIOS) * 3  # 2 distributions x scenarios x 3 methods
    assert {row["method"] for row in results["rows"]} == {"current", "legacy", "scipy"}
    report = (tmp_path / "report.md").read_text()
    assert "## Null false-alarm rate, summary" in report and "| uniform | 120 | 200 |" in report
    assert (tmp_path / "calibration.png").stat().st_size > 10_000
    performance = results["performance"]
    assert [row["n_base"] for row in performance["exact_accuracy"]] == [50]
    assert {(row["output"], row["scenario"]) for row in performance["simulated"]} == {
        ("categorical", "null"), ("categorical", "drop_0.05"), ("numeric", "null"), ("numeric", "scale_x1.25")}
    assert "## Realised performance: false alarms and power (issue 21)" in report


def test_performance_only_prints_and_writes_its_section(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "PERFORMANCE_QUICK", bench.PerformanceSizes(
        n_base=(258,), n_window=(100,), accuracy=(0.9,), trials=5, draws=100, cells=((60, 30),)))
    assert bench.main(["--quick", "--performance-only", "--out", str(tmp_path)]) == 0
    exact = json.loads((tmp_path / "performance.json").read_text())["exact_accuracy"]
    assert exact[0]["false_alarm"] == pytest.approx(0.0063, abs=5e-5)  # tests/test_performance.py's null streams
    printed = capsys.readouterr().out
    assert "| 258 | 100 | 0.9 | 0.6 |" in printed and (tmp_path / "performance.md").exists()
