"""The canary example end to end (issue 22): `mmon run` of examples/canary/monitor.yaml over `streams.canary`, a
canary that never predicts Chinstrap and one identical to the stable version; the comparison records checked
against the stream and recomputed from the job's own per-version stats and performance records with
`udfs.comparison`."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy import stats as scipy_stats

from udfs import comparison
from udfs.window_drift import MetricRule

from streams import canary

from tests.embedded_run import REPO, run_mmon

pytestmark = [pytest.mark.flink, pytest.mark.timeout(900)]

EXAMPLE = REPO / "examples" / "canary" / "monitor.yaml"
STAGE_SIZE = 1_500  # the example's default: five 15 s windows a stage
HISTOGRAM_METRICS = ("js", "psi", "hellinger", "chi2")
DRIFT_FIELDS = ["kind", "window_start", "window_end", "feature", "metric", "value", "threshold", "flagged",
                "stable_count", "candidate_count"]
PERFORMANCE_FIELDS = ["kind", "window_start", "window_end", "metric", "stable", "candidate", "delta", "ci_low",
                      "ci_high", "verdict", "final"]


def _run(tmp, which: str, parallelism: int = 1) -> dict:
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["baseline"] = str((EXAMPLE.parent / spec["baseline"]).resolve())
    spec["job"].update(metrics_port=0, parallelism=parallelism)
    stream = canary.generate(stage_size=STAGE_SIZE, canary=which)
    input_path = tmp / "canary.jsonl"
    canary.write_jsonl(stream, input_path)
    return {**run_mmon(spec, input_path, tmp), "stream": stream}


@pytest.fixture(scope="module")
def dropping_run(tmp_path_factory) -> dict:
    return _run(tmp_path_factory.mktemp("canary-drops"), "drops")


@pytest.fixture(scope="module")
def identical_run(tmp_path_factory) -> dict:
    return _run(tmp_path_factory.mktemp("canary-identical"), "identical")


@pytest.fixture(scope="module")
def parallel_run(tmp_path_factory) -> dict:
    return _run(tmp_path_factory.mktemp("canary-parallel"), "drops", parallelism=2)


def _windows_inside(run: dict, kind: str) -> set[int]:
    """Windows whose every request lies in a stage of ``kind``."""
    stream, window_ms = run["stream"], run["window_ms"]
    starts = stream.time_ms - stream.time_ms % window_ms
    kinds = np.array(canary.STAGE_KINDS)[stream.stage - 1]
    return {int(s) for s in np.unique(starts) if (kinds[starts == s] == kind).all()}


def _of_kind(run: dict, kind: str) -> list[dict]:
    return [r for r in run["comparison"] if r["kind"] == kind]


def _layout(record: dict) -> list[int]:
    """A stats record's drift-layout histogram."""
    histogram = record["histogram"]
    if "categories" in histogram:
        return [*histogram["counts"], histogram["other"], histogram["unseen"]]
    return [histogram["underflow"], *histogram["counts"], histogram["overflow"]]


def test_records_have_the_issues_formats(dropping_run):
    drift, performance = _of_kind(dropping_run, "drift"), _of_kind(dropping_run, "performance")
    assert drift and performance
    assert {tuple(k for k in r if k != "emitted_at") for r in drift} == {tuple(DRIFT_FIELDS)}
    assert {tuple(k for k in r if k != "emitted_at") for r in performance} == {tuple(PERFORMANCE_FIELDS)}


def test_only_windows_where_both_versions_have_min_count_instances_are_compared(dropping_run):
    min_count = dropping_run["spec"]["versions"]["min_count"]
    compared = {r["window_start"] for r in _of_kind(dropping_run, "drift")}
    assert compared >= _windows_inside(dropping_run, "canary")
    assert not compared & _windows_inside(dropping_run, "stable")
    assert all(min(r["stable_count"], r["candidate_count"]) >= min_count for r in _of_kind(dropping_run, "drift"))


def test_the_canarys_prediction_column_is_flagged_in_its_windows(dropping_run):
    inside = _windows_inside(dropping_run, "canary")
    flagged = {(r["window_start"], r["metric"]) for r in _of_kind(dropping_run, "drift")
               if r["feature"] == "prediction" and r["flagged"]}
    assert {(start, metric) for start in inside for metric in HISTOGRAM_METRICS} <= flagged


def test_the_canary_is_judged_worse_in_its_windows(dropping_run):
    final = {r["window_start"]: r for r in _of_kind(dropping_run, "performance") if r["final"]}
    inside = _windows_inside(dropping_run, "canary")
    assert inside <= set(final)
    for start in inside:
        assert final[start]["verdict"] == "worse", final[start]
        assert final[start]["ci_high"] < 0 < final[start]["stable"] - final[start]["candidate"]


def test_drift_comparisons_equal_the_numeric_core_on_the_jobs_stats(dropping_run):
    spec, baseline = dropping_run["spec"], dropping_run["baseline"]
    versions = (spec["versions"]["stable"], spec["versions"]["candidate"])
    rules = [MetricRule(name, None, config["false_alarm_rate"]) for name, config in spec["drift"]["metrics"].items()]
    columns = [f if isinstance(f, str) else f["name"] for f in spec["input"]["features"]] + [spec["output"]["name"]]
    compare = comparison.VersionDrift(baseline, columns, rules)
    by_key = {(r["version"], r["feature"], r["window_start"]): r for r in dropping_run["stats"] if "feature" in r}
    checked = 0
    for record in _of_kind(dropping_run, "drift"):
        sides = [by_key[(version, record["feature"], record["window_start"])] for version in versions]
        stable, candidate = (comparison.WindowSide(s["count"], s["missing"], _layout(s)) for s in sides)
        assert [record["stable_count"], record["candidate_count"]] == [stable.instances, candidate.instances]
        expected = {r.metric: r for r in compare.compare(record["feature"], stable, candidate)}[record["metric"]]
        assert record["value"] == pytest.approx(expected.value, rel=1e-12)
        assert record["threshold"] == pytest.approx(expected.threshold, rel=1e-12)
        assert record["flagged"] == expected.flagged
        checked += 1
    assert checked >= 10 * 7 * 5


def test_performance_comparisons_equal_the_numeric_core_on_the_jobs_records(dropping_run):
    spec = dropping_run["spec"]
    rate = spec["ground_truth"]["false_alarm_rate"]
    latest = {}
    for record in dropping_run["performance"]:
        if record["metric"] == "accuracy" and record["final"]:
            latest[(record["version"], record["window_start"])] = record
    finals = [r for r in _of_kind(dropping_run, "performance") if r["final"]]
    assert finals
    for record in finals:
        stable, candidate = (latest[(spec["versions"][side], record["window_start"])] for side in ("stable", "candidate"))
        expected = comparison.accuracy_difference(round(stable["value"] * stable["labelled"]), stable["labelled"],
                                                  round(candidate["value"] * candidate["labelled"]),
                                                  candidate["labelled"], rate)
        assert (record["stable"], record["candidate"]) == pytest.approx((expected.stable, expected.candidate))
        assert (record["ci_low"], record["ci_high"]) == pytest.approx((expected.ci_low, expected.ci_high), rel=1e-12)
        assert record["verdict"] == expected.verdict


def test_an_identical_canary_raises_nothing_beyond_the_rate(identical_run):
    drift = _of_kind(identical_run, "drift")
    rate = max(config["false_alarm_rate"] for config in identical_run["spec"]["drift"]["metrics"].values())
    assert len(drift) >= 10 * 7 * 5
    flagged = sum(r["flagged"] for r in drift)
    assert flagged <= scipy_stats.binom.ppf(0.999, len(drift), rate), [r for r in drift if r["flagged"]]
    finals = [r for r in _of_kind(identical_run, "performance") if r["final"]]
    assert len(finals) >= 10
    assert all(r["verdict"] != "worse" for r in finals), finals


def test_the_report_shows_the_versions_side_by_side(dropping_run, tmp_path):
    from test_report import _Tags, _mmon_report

    path = tmp_path / "report.html"
    proc = _mmon_report(str(dropping_run["output"]), "-o", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tags = _Tags(path.read_text())
    compared = {r["window_start"] for r in dropping_run["comparison"]}
    assert tags.having("data-candidate", "section")[0]["data-windows"] == str(len(compared))
    rows = {row["data-feature"]: {int(s) for s in row["data-windows"].split()} for row in tags.classed("versions-column")}
    assert rows["prediction"] >= _windows_inside(dropping_run, "canary")
    assert len(tags.classed("versions-plot")) == 1


def test_two_subtasks_compare_the_same_windows_alike(dropping_run, parallel_run):
    """At parallelism 2 the windows' rows of the two versions come from different subtasks: the timer waits for
    both. The drift comparisons and the final performance comparisons equal those at parallelism 1 (the earlier
    revisions depend on when labels meet the watermark)."""
    def stable(run):
        kept = [r for r in run["comparison"] if r["kind"] == "drift" or r["final"]]
        return sorted(tuple(sorted((k, v) for k, v in r.items() if k != "emitted_at")) for r in kept)
    assert stable(parallel_run) == stable(dropping_run)
