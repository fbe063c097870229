"""`mmon bench` end to end on a scaled-down stream: real broker, real logger, real Flink job.

4,500 requests (5 stages of 900) at twice the thesis's rates, 1 s windows with a 0.5 s watermark delay
so that the drift stage (about 2.5 s) holds whole windows. Asserts on the results.json it writes.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks.report import REQUIRED_KEYS

ROOT = Path(__file__).resolve().parent.parent
STAGE_SIZE = 900
N_REQUESTS = 5 * STAGE_SIZE

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.timeout(480)]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, kafka_broker):
    """Run `mmon bench` once for the module; returns (results, out_dir)."""
    out = tmp_path_factory.mktemp("bench")
    spec = yaml.safe_load((ROOT / "examples" / "iris" / "monitor.yaml").read_text())
    spec["window"].update({"duration": "1s", "watermark_delay": "500ms"})
    spec["baseline"] = str(ROOT / "examples" / "iris" / "baseline.json")
    config = out / "smoke-monitor.yaml"
    config.write_text(yaml.safe_dump(spec))
    command = [sys.executable, "-m", "mmon.cli", "bench", "--profile", "thesis", "--stage-size", str(STAGE_SIZE),
               "--scale", "2", "--config", str(config), "--kafka", kafka_broker.bootstrap, "--out", str(out / "run"),
               "--job-start-timeout", "240", "--drain-timeout", "120"]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=450)
    assert finished.returncode == 0, f"mmon bench failed:\n{finished.stdout[-3000:]}\n{finished.stderr[-3000:]}"
    return json.loads((out / "run" / "results.json").read_text()), out / "run"


def test_every_figure_is_present(bench_run):
    results, _ = bench_run
    missing = [key for key in REQUIRED_KEYS if key not in results]
    assert not missing
    for key in ("outlier_latency_s", "stats_latency_from_mid_s", "drift_latency_from_mid_s", "stats_latency_from_end_s"):
        assert set(results[key]) >= {"p25", "p50", "p75", "p90", "p99", "max"}, key
    assert results["raw_consumer_ips"] is None  # measured by --profile max only
    assert results["versions"]["flink"].startswith("2.2") and results["job_peak_rss_mb"] > 100


def test_every_request_arrived_and_was_windowed_once(bench_run):
    results, _ = bench_run
    assert results["instances_sent"] == N_REQUESTS and results["http_success_rate"] == 1.0
    assert results["instances_in_windows"] == N_REQUESTS
    assert results["dead_letters"] == 0 and results["late_events"] == 0


def test_every_injected_outlier_is_alerted(bench_run):
    results, _ = bench_run
    quality = results["outlier_quality"]
    assert quality["injected"] == 2 * round(0.1 * STAGE_SIZE)
    assert results["outlier_recall"] == 1.0, quality["missed"]


def test_drift_stage_windows_are_flagged(bench_run):
    results, _ = bench_run
    assert results["drift_window_counts"]["3"]["windows"] >= 1
    assert results["drift_windows_flagged"]["3"]["wasserstein"] == 1.0
    assert results["drift_windows_flagged"]["3"]["js"] == 1.0


def test_window_results_wait_for_the_watermark(bench_run):
    """No window can be out before its end + watermark delay: a latency below the floor is a clock bug."""
    results, _ = bench_run
    assert results["stats_latency_from_end_s"]["min"] >= results["window_latency_floor_s"]["from_end"] - 0.05


def test_report_and_plots_are_written(bench_run):
    _, out = bench_run
    assert "| outlier alert, from request time p75 | 5.90 s |" in (out / "report.md").read_text()
    for name in ("window_stats", "drift", "latency", "throughput"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
