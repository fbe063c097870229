"""The calibration benchmark's windows-as-cell-counts give what raw windows give; a tiny run reports, the
realised-performance section included."""
import json

import numpy as np
import pytest

from scipy import stats

from contract.spec import CONTROL_METHODS

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
    monkeypatch.setattr(bench, "DISCOVERY_QUICK", TINY_DISCOVERY)
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
    assert "## False-discovery control across a window (issue 24)" in report
    assert {row["method"] for row in results["discovery"]["rows"]} == set(CONTROL_METHODS)


def test_performance_only_prints_and_writes_its_section(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "PERFORMANCE_QUICK", bench.PerformanceSizes(
        n_base=(258,), n_window=(100,), accuracy=(0.9,), trials=5, draws=100, cells=((60, 30),)))
    assert bench.main(["--quick", "--performance-only", "--out", str(tmp_path)]) == 0
    exact = json.loads((tmp_path / "performance.json").read_text())["exact_accuracy"]
    assert exact[0]["false_alarm"] == pytest.approx(0.0063, abs=5e-5)  # tests/test_performance.py's null streams
    printed = capsys.readouterr().out
    assert "| 258 | 100 | 0.9 | 0.6 |" in printed and (tmp_path / "performance.md").exists()


TINY_DISCOVERY = bench.DiscoverySizes(widths=(30,), reference=300, window=200, null_windows=(12,), drifted=(3,),
                                      drift_windows=(4,), shift=1.0, metric_sets=(("wasserstein", "js", "ks"),))


def test_window_outcomes_count_what_scipys_false_discovery_control_finds():
    """Hand-made windows of 40 features x 2 tests, the first 4 features drifted: the outcomes per method equal
    those of scipy.stats.false_discovery_control (bh, by), of p <= q / tests (bonferroni) and of the flags (none)."""
    rng = np.random.default_rng(8)
    windows = []
    for _ in range(30):
        p_values = rng.random((40, 2))
        p_values[:4] *= rng.choice([1e-4, 1e-2, 1.0], size=(4, 2))
        windows.append((p_values, p_values <= 0.01))
    expected = {"bh": lambda p: stats.false_discovery_control(p, method="bh") <= 0.05,
                "by": lambda p: stats.false_discovery_control(p, method="by") <= 0.05,
                "bonferroni": lambda p: p <= 0.05 / p.size, "none": lambda p: p <= 0.01}
    outcomes = bench._window_outcomes(windows, 4, 0.05)
    for method, discover in expected.items():
        found = [discover(p.ravel()).reshape(p.shape) for p, _ in windows]
        assert outcomes[method]["false_discoveries_per_window"] == pytest.approx(np.mean([f[4:].sum() for f in found]))
        assert outcomes[method]["model_drift"] == pytest.approx(np.mean([f.any() for f in found]))
        assert outcomes[method]["power"] == pytest.approx(np.mean([f[:4].any(axis=1).mean() for f in found]))
        proportions = [f[4:].sum() / f.sum() for f in found if f.any()]
        assert outcomes[method]["fdp"] == pytest.approx(np.mean(proportions))
    assert outcomes["none"]["false_discoveries_per_window"] > outcomes["bh"]["false_discoveries_per_window"]


def test_discovery_only_runs_the_wide_null_and_drifted_windows(tmp_path, monkeypatch, capsys):
    """A tiny run: the null windows' flags under `none` are the tests over their threshold; features shifted by
    1 sd in windows of 200 are all found under bh (their KS p-values are far below q / tests)."""
    monkeypatch.setattr(bench, "DISCOVERY_QUICK", TINY_DISCOVERY)
    assert bench.main(["--quick", "--discovery-only", "--out", str(tmp_path)]) == 0
    rows = {(r["drifted"], r["method"]): r for r in json.loads((tmp_path / "discovery.json").read_text())["rows"]}
    assert set(rows) == {(k, method) for k in (0, 3) for method in CONTROL_METHODS}
    assert all(rows[(3, method)]["power"] == 1.0 for method in ("bh", "bonferroni", "none"))
    assert rows[(0, "none")]["false_discoveries_per_window"] >= rows[(0, "bh")]["false_discoveries_per_window"]
    printed = capsys.readouterr().out
    assert "## False-discovery control across a window (issue 24)" in printed
    assert "| wasserstein, js, ks | 30 | 12 | bh |" in printed
    assert (tmp_path / "discovery.md").read_text().startswith("## False-discovery control")


def test_a_wide_window_flags_a_shifted_feature_and_its_p_values_follow_the_flags():
    """`WideModel.window`: each test's flag (value over its threshold at 1 %) agrees with its p-value <= 1 %
    (the same null), up to the Monte-Carlo grid's interpolation; the shifted features' KS p-values are tiny."""
    model = bench.WideModel(np.random.default_rng(2), 40, TINY_DISCOVERY, ("wasserstein", "js", "ks"), 0.01)
    p_values, flags = model.window(np.random.default_rng(3), drifted=5)
    assert p_values.shape == flags.shape == (40, 3)
    assert ((p_values <= 0.01) == flags).mean() > 0.97
    ks = model.metrics.index("ks")
    assert p_values[:5, ks].max() < 1e-6 and flags[:5].all()
