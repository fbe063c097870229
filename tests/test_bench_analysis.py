"""The benchmark's figures on small hand-built inputs whose answers are known."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks.analysis import (
    GroundTruth,
    Outputs,
    WindowTiming,
    analyse,
    drift_flags,
    outlier_quality,
    processed_rate_over_time,
    summarize,
    window_latencies_s,
    window_stages,
)

FEATURES = ("a", "b")


@pytest.fixture
def truth():
    """Ten requests one second apart, two per stage; r2 has feature b replaced, r7 feature a."""
    return GroundTruth(ids=np.array([f"r{i}" for i in range(10)]),
                       stage=np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
                       outlier_feature=np.array([-1, -1, 1, -1, -1, -1, -1, 0, -1, -1]),
                       time_ms=np.arange(10, dtype=np.int64) * 1000, features=FEATURES)


def alert(request_id, feature, request_time=0, detected_at=100):
    return {"model": "m", "request_id": request_id, "feature": feature, "value": 9.0, "rule": "sigma",
            "threshold": 3.0, "request_time": request_time, "detected_at": detected_at}


def drift_record(start, end, metric, flagged, feature="a"):
    return {"model": "m", "feature": feature, "window_start": start, "window_end": end, "metric": metric,
            "value": 0.5, "threshold": 0.1, "drift": flagged, "count": 2, "emitted_at": end + 7000}


def stats_record(start, end, feature, emitted_at, count=2):
    return {"model": "m", "feature": feature, "window_start": start, "window_end": end, "count": count,
            "mean": 0.0, "emitted_at": emitted_at}


def test_summarize_matches_numpy_percentiles():
    sample = np.random.default_rng(1).exponential(2.0, 1001)
    summary = summarize(sample)
    for q in (25, 50, 75, 90, 99):
        assert summary[f"p{q}"] == pytest.approx(np.percentile(sample, q))
    assert summary["max"] == sample.max() and summary["min"] == sample.min() and summary["count"] == 1001


def test_summarize_of_nothing_is_null_not_zero():
    assert summarize([]) is None


def test_window_latency_from_mid_point_and_end():
    records = [stats_record(0, 15_000, "a", emitted_at=21_500), stats_record(15_000, 30_000, "a", emitted_at=37_000)]
    assert window_latencies_s(records, "mid").tolist() == [14.0, 14.5]
    assert window_latencies_s(records, "end").tolist() == [6.5, 7.0]
    assert WindowTiming(15_000, 6_000).floor_from_mid_s() == 13.5
    with pytest.raises(ValueError):
        window_latencies_s(records, "start")


def test_outlier_quality_counts_distinct_pairs_outside_the_drift_stage(truth):
    alerts = [alert("r2", "b"), alert("r7", "a"), alert("r7", "a"), alert("r0", "a"),
              alert("r4", "a"), alert("end-marker", "a")]
    quality = outlier_quality(truth, alerts)
    assert quality["recall"] == 1.0
    assert quality["precision"] == pytest.approx(2 / 3)
    # 8 requests on stages 1,2,4,5 x 2 features = 16 values, 2 of them injected: 1 false alert in 14
    assert quality["false_alerts_per_10k"] == pytest.approx(10_000 / 14)
    assert quality["per_feature"] == {"a": {"recall": 1.0, "precision": 0.5}, "b": {"recall": 1.0, "precision": 1.0}}
    assert quality["duplicate_alerts"] == 1 and quality["drift_stage_alerts"] == 1


def test_a_missed_outlier_lowers_recall_and_is_named(truth):
    quality = outlier_quality(truth, [alert("r2", "b")])
    assert quality["recall"] == 0.5 and quality["precision"] == 1.0
    assert quality["missed"] == ["r7/a"] and quality["false_alerts_per_10k"] == 0.0


def test_no_alerts_gives_null_precision(truth):
    quality = outlier_quality(truth, [])
    assert quality["recall"] == 0.0 and quality["precision"] is None


def test_windows_take_the_stage_of_their_instances_and_straddlers_none(truth):
    stages = window_stages(truth, [(0, 2000), (1000, 3000), (4000, 6000), (20_000, 22_000)])
    assert stages == {(0, 2000): 1, (1000, 3000): None, (4000, 6000): 3, (20_000, 22_000): None}


def test_drift_fraction_per_stage_and_metric(truth):
    records = [drift_record(0, 2000, "js", False), drift_record(0, 2000, "wasserstein", False),
               drift_record(4000, 6000, "js", True), drift_record(4000, 6000, "js", False, feature="b"),
               drift_record(4000, 6000, "wasserstein", True),
               drift_record(8000, 10_000, "js", True), drift_record(8000, 10_000, "wasserstein", False),
               drift_record(1000, 3000, "js", True)]
    flags = drift_flags(truth, records)
    assert flags["drift_windows_flagged"] == {"1": {"js": 0.0, "wasserstein": 0.0},
                                              "3": {"js": 1.0, "wasserstein": 1.0},
                                              "5": {"js": 1.0, "wasserstein": 0.0}}
    assert flags["boundary_windows"] == 1
    assert flags["normal_stage_false_alarm_windows"] == {"js": 1, "wasserstein": 0}


def test_processed_rate_uses_one_feature_and_skips_covariance_records():
    stats = [stats_record(0, 2000, "a", 9000, count=10), stats_record(0, 2000, "b", 9000, count=10),
             stats_record(2000, 4000, "a", 11000, count=4), {"features": ["a", "b"], "window_start": 0,
                                                             "window_end": 2000, "emitted_at": 9000}]
    assert [p["ips"] for p in processed_rate_over_time(stats)] == [5.0, 2.0]


def test_analyse_reports_every_figure(truth):
    outputs = Outputs(
        stats=[stats_record(0, 2000, "a", 9000), stats_record(0, 2000, "b", 9500)],
        outliers=[alert("r2", "b", request_time=2000, detected_at=2150),
                  alert("r7", "a", request_time=7000, detected_at=7250),
                  alert("end-marker", "a", request_time=0, detected_at=99_000)],
        drift=[drift_record(4000, 6000, "js", True)],
        dead_letter=[{"reason": "late", "raw": "{}", "source": "t/0/1", "at": 1},
                     {"reason": "parse", "raw": "x", "source": "t/0/2", "at": 2}])
    figures = analyse(truth, outputs, WindowTiming(2000, 500), exclude_ids=frozenset({"end-marker"}))
    assert figures["outlier_latency_s"]["max"] == pytest.approx(0.25)
    assert figures["outlier_latency_s"]["p50"] == pytest.approx(0.2)
    assert figures["stats_latency_from_mid_s"]["max"] == pytest.approx(8.5)
    assert figures["stats_latency_from_end_s"]["min"] == pytest.approx(7.0)
    assert figures["window_latency_floor_s"] == {"from_mid": 1.5, "from_end": 0.5}
    assert figures["drift_latency_from_mid_s"]["p50"] == pytest.approx(8.0)
    assert figures["dead_letters"] == 2 and figures["late_events"] == 1
    assert figures["outlier_recall"] == 1.0 and figures["outlier_precision"] == 1.0
    assert figures["drift_windows_flagged"] == {"3": {"js": 1.0}}
    assert figures["instances_in_windows"] == 2


def test_ground_truth_from_an_unsorted_stream_is_sorted_by_time():
    stream = SimpleNamespace(ids=np.array(["x", "y", "z"]), stage=np.array([2, 1, 3]),
                             outlier_feature=np.array([0, -1, -1]), time_ms=np.array([20, 10, 30]),
                             feature_names=["a", "b"])
    truth = GroundTruth.from_stream(stream)
    assert truth.ids.tolist() == ["y", "x", "z"] and truth.stage.tolist() == [1, 2, 3]
    assert truth.injected() == {("x", "a")}


def test_report_has_every_required_key_and_judges_targets(tmp_path, truth):
    from benchmarks import report
    outputs = Outputs(stats=[stats_record(0, 2000, "a", 9000)],
                      outliers=[alert("r2", "b", 2000, 2100), alert("r7", "a", 7000, 9000)],
                      drift=[drift_record(4000, 6000, "js", True), drift_record(4000, 6000, "wasserstein", False)])
    figures = analyse(truth, outputs, WindowTiming(2000, 500))
    figures.update({"profile": "thesis", "job_peak_rss_mb": 900.0, "instances_sent": 10})
    results = report.write(tmp_path, figures)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert set(report.REQUIRED_KEYS) <= set(on_disk)
    assert on_disk["raw_consumer_ips"] is None  # thesis profile: not measured, visibly
    verdicts = {t["target"]: t["met"] for t in on_disk["targets"]}
    assert verdicts["outlier latency p75"] is False  # p75 of (0.1 s, 2 s) is 1.525 s
    assert verdicts["outlier recall"] is True and verdicts["job peak RSS"] is True
    assert verdicts["drift-stage windows flagged, JS"] is True
    assert verdicts["drift-stage windows flagged, Wasserstein"] is False
    assert verdicts["max-profile throughput"] is None
    assert on_disk["versions"]["flink"].startswith("2.2") and on_disk["machine"]["cores"] >= 1
    markdown = (tmp_path / "report.md").read_text()
    assert "| outlier alert, from request time p75 | 5.90 s | 1.52 s | 3.9x |" in markdown
    assert results["targets"] == on_disk["targets"]


def test_plots_are_written(tmp_path, truth):
    from benchmarks import plots
    outputs = Outputs(stats=[stats_record(0, 2000, f, 9000) | {"min": -1, "max": 1, "stddev": 0.5}
                             for f in FEATURES],
                      outliers=[alert("r2", "b", 2000, 2100)],
                      drift=[drift_record(4000, 6000, "js", True), drift_record(4000, 6000, "js", False, "b")])
    paths = plots.write_all(tmp_path, outputs, np.array([0, 2000, 4000, 6000, 8000, 10_000]), FEATURES,
                            WindowTiming(2000, 500), sent_per_second=[(0.5, 1), (1.5, 1)])
    assert sorted(p.name for p in paths) == ["drift.png", "latency.png", "throughput.png", "window_stats.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_windows_outside_the_stream_are_left_out(truth):
    warm_up_window = stats_record(-3_600_000, -3_598_000, "a", emitted_at=500)
    figures = analyse(truth, Outputs(stats=[warm_up_window, stats_record(0, 2000, "a", 9000)]),
                      WindowTiming(2000, 500))
    assert figures["windows_emitted"] == 1 and figures["stats_latency_from_mid_s"]["count"] == 1


def test_drain_rate_counts_instances_after_the_first_alert(truth):
    from benchmarks.harness import drain_rate
    # the first alert (r2, index 2) at t=10 s; the last window out at t=14 s: 8 instances in 4 s
    outputs = Outputs(stats=[stats_record(0, 2000, "a", emitted_at=14_000)],
                      outliers=[alert("r7", "a", detected_at=12_000), alert("r2", "b", detected_at=10_000),
                                alert("end-marker", "a", detected_at=9_000)])
    assert drain_rate(truth, outputs) == pytest.approx(2.0)
    assert drain_rate(truth, Outputs(stats=outputs.stats)) is None


def test_sender_figures_rates_and_success(truth):
    from benchmarks.harness import sender_figures
    from benchmarks.load import ReplayResult
    # every request answered 0.1 s after its request time, r9 failed
    status = np.full(10, 200, dtype=np.int32)
    status[9] = 503
    replayed = ReplayResult(answered_at=truth.time_ms / 1000 + 0.1, response_s=np.full(10, 0.1), status=status,
                            lag_s=np.zeros(10))
    figures = sender_figures(truth, replayed)
    assert figures["instances_sent"] == 9 and figures["http_success_rate"] == pytest.approx(0.9)
    assert figures["throughput_ips"] == pytest.approx(9 / 8.1)  # last ok answer at 8.1 s
    assert figures["throughput_per_stage_ips"]["1"] == pytest.approx(2 / 1.1)
    assert "5" not in figures["throughput_per_stage_ips"]  # one ok request: no rate
    assert replayed.acked_per_second(0.0) == [(float(s) + 0.5, 1) for s in range(9)]


@pytest.mark.parametrize("fmt", ["thesis", "kserve-v1", "oip-v2"])
def test_dead_letters_of_excluded_requests_are_not_counted(truth, fmt):
    from contract import formats

    marker = formats.encode(fmt, "end-marker-15000", 21_000, [[0.0]])
    other = formats.encode(fmt, "end-marker-150001", 21_000, [[0.0]])  # an id that merely starts alike
    outputs = Outputs(dead_letter=[{"reason": "wrong_feature_count", "raw": marker, "source": "t/0/1", "at": 1},
                                   {"reason": "wrong_feature_count", "raw": other, "source": "t/0/2", "at": 2}])
    figures = analyse(truth, outputs, WindowTiming(2000, 500), exclude_ids=frozenset({"end-marker-15000"}))
    assert figures["dead_letters_by_reason"] == {"wrong_feature_count": 1}


@pytest.mark.parametrize("last_request_ms, expected_times", [
    (31_000, [36_000, 51_000]),  # 1 s after the end of [15 s, 30 s): that window gets a marker of its own
    (37_000, [51_000]),          # 7 s after it: the request itself closed it
    (30_000, [36_000, 51_000]),  # on the boundary: opens the last window, leaves [15 s, 30 s) open
    (40_000, [51_000]),          # mid-window: only the last window is open
])
def test_closing_markers_close_every_window_the_stream_leaves_open(last_request_ms, expected_times):
    from benchmarks.harness import END_MARKER_ID, closing_markers

    truth = GroundTruth(ids=np.array(["r0", "r1"]), stage=np.array([1, 1]), outlier_feature=np.array([-1, -1]),
                        time_ms=np.array([1_000, last_request_ms], dtype=np.int64), features=FEATURES)
    baseline = SimpleNamespace(features={f: SimpleNamespace(mean=1.5) for f in FEATURES})
    markers = closing_markers(truth, WindowTiming(15_000, 6_000), baseline)
    assert [m.time_ms for m in markers] == expected_times
    assert markers[-1].request_id == END_MARKER_ID and list(markers[-1].instance) == [1.5, 1.5]
    assert all(len(m.instance) == 1 for m in markers[:-1])  # dead-lettered: no window gains an instance
