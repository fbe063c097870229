"""Every result per model version (issue 22), embedded: a real Flink mini-cluster on a staged Iris stream whose
requests are served by two versions, as KServe's canary logs them (kserve-v1 CloudEvents, the version in the
``endpoint`` attribute; a stable request without one is of the spec's ``model.version``). The canary takes about a
third of the traffic and serves petal lengths one unit longer. A few requests of a third version come after both:
with ``versions.max: 2`` they are dead-lettered ``too_many_versions``. Every output is checked against numpy and
`udfs.drift` on the stream split by version.

Then the joins per version: the penguins stream with late labels (`labelled_streams`, as test_job_labels), a
seeded share of its request ids served by the canary (request, response and label each naming it, thesis
``version``): each version's final performance record of each window equals scikit-learn on that version's pairs."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import yaml

from contract import formats, outputs

from udfs import drift as drift_math

from embedded_run import DELAY_MS, EXAMPLE, PENGUINS_EXAMPLE, RATES, run_mmon
from labelled_streams import assert_metrics_equal_sklearn, by_window, expected_pairs, labelled_stream, penguins_baseline
from streams import iris, penguins
from window_checks import assert_stats_equal_numpy

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]

STABLE, CANARY, THIRD = "stable", "canary", "blue"
WINDOW_MS = 5_000
CANARY_SHARE = 0.35
CANARY_SHIFT = {"petal_length": 1.0}  # the canary's instances differ from the stable version's here
THIRD_AT = (150, 400, 700)  # stream positions after which a request of a third version is sent


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The run, with each monitored instance's (request id, time, version, row) and the third version's ids."""
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["baseline"] = str(EXAMPLE.parent / spec["baseline"])
    spec["model"]["version"] = STABLE
    spec["input"]["format"] = formats.KSERVE_V1
    spec["window"].update(duration=f"{WINDOW_MS}ms", watermark_delay=f"{DELAY_MS}ms")
    spec["job"]["metrics_port"] = 0
    spec["drift"]["emit_all"] = True
    spec["versions"] = {"max": 2}
    stream = iris.generate(seed=23, stage_size=200, rates=RATES)
    features = spec["input"]["features"]
    rng = np.random.default_rng(5)
    lines, instances, third = [], [], []
    for k, (rid, t, row) in enumerate(zip(stream.ids.tolist(), stream.time_ms.tolist(), stream.instances.tolist())):
        version = CANARY if k > 0 and rng.random() < CANARY_SHARE else STABLE
        if version == CANARY:
            row = [round(v + CANARY_SHIFT.get(name, 0.0), 2) for name, v in zip(features, row)]
        named = None if version == STABLE and k % 2 else version  # half the stable requests name no version
        lines.append(formats.encode(formats.KSERVE_V1, rid, t, [row], version=named))
        instances.append((rid, t, version, row))
        if k in THIRD_AT:
            third.append(f"third-{k}")
            lines.append(formats.encode(formats.KSERVE_V1, third[-1], t, [row], version=THIRD))
    input_path = tmp_path_factory.mktemp("versions") / "input.jsonl"
    input_path.write_text("\n".join(lines) + "\n")
    result = run_mmon(spec, input_path, input_path.parent)
    return {**result, "instances": instances, "third": third, "n_lines": len(lines)}


def _rows(run, version: str, window_start: int, feature: str) -> np.ndarray:
    """The values of ``feature`` of ``version``'s instances in the window at ``window_start``."""
    j = run["features"].index(feature)
    return np.array([row[j] for _, t, v, row in run["instances"]
                     if v == version and window_start <= t < window_start + WINDOW_MS])


def test_each_window_has_a_stats_record_per_version_and_feature(run):
    expected = Counter()
    for _, t, version, _ in run["instances"]:
        expected[(version, t - t % WINDOW_MS)] += 1
    keys = Counter((r["version"], r["window_start"], r["feature"]) for r in run["stats"])
    assert keys == {(v, w, f): 1 for (v, w) in expected for f in run["features"]}
    counts = {(r["version"], r["window_start"]): r["count"] for r in run["stats"]}
    assert counts == dict(expected)
    assert {v for v, _ in expected} == {STABLE, CANARY}


def test_per_version_statistics_equal_numpy_on_the_stream_split_by_version(run):
    for record in run["stats"]:
        x = _rows(run, record["version"], record["window_start"], record["feature"])
        assert_stats_equal_numpy(record, x, WINDOW_MS)
        edges = np.array(record["histogram"]["edges"])
        assert record["histogram"]["counts"] == np.histogram(x[(x >= edges[0]) & (x < edges[-1])], edges)[0].tolist()
    canary_means = [r["mean"] for r in run["stats"] if r["version"] == CANARY and r["feature"] == "petal_length"]
    stable_means = [r["mean"] for r in run["stats"] if r["version"] == STABLE and r["feature"] == "petal_length"]
    assert np.median(canary_means) > np.median(stable_means) + 0.5  # the canary's shift, seen in its own windows


def test_drift_is_per_version_against_the_baseline(run):
    by_window = {(r["version"], r["feature"], r["window_start"]): r for r in run["stats"]}
    histogram_metrics = [r for r in run["drift"] if r["metric"] in drift_math.METRICS]
    assert len(histogram_metrics) == len(run["stats"]) * len(set(run["metrics"]) & set(drift_math.METRICS))
    for record in histogram_metrics:
        stats = by_window[(record["version"], record["feature"], record["window_start"])]
        hist = stats["histogram"]
        observed = np.array([hist["underflow"], *hist["counts"], hist["overflow"]], dtype=float)
        reference = run["baseline"].features[record["feature"]]
        expected = drift_math.compute(record["metric"], observed, reference.histogram_counts(), reference.edges)
        assert record["value"] == pytest.approx(float(expected), rel=1e-9, abs=1e-12)
        assert record["count"] == stats["count"]


def test_outlier_alerts_carry_their_requests_version(run):
    versions = {rid: version for rid, _, version, _ in run["instances"]}
    assert run["outliers"], "the stream's outlier stages raise alerts"
    assert Counter(alert["version"] for alert in run["outliers"]).keys() == {STABLE, CANARY}
    for alert in run["outliers"]:
        assert alert["version"] == versions[alert["request_id"]]


def test_a_third_version_is_dead_lettered_too_many_versions_and_the_accounting_holds(run):
    dead = [r for r in run["dead_letter"] if r["reason"] == formats.TOO_MANY_VERSIONS]
    assert sorted(formats.decode(formats.KSERVE_V1, r["raw"]).request_id for r in dead) == sorted(run["third"])
    assert {r["version"] for r in dead} == {THIRD}
    assert len(run["dead_letter"]) == len(dead)
    summary = run["summary"]
    assert summary["records_read"] == run["n_lines"] == summary["requests_accepted"] + len(dead)
    assert summary["instances"] == summary["instances_accepted"] == len(run["instances"])
    assert summary["accounted"] is True


LABELS_SEED, LABELS_WINDOW_MS = 22, 15_000


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    """The penguins stream with its labels, a seeded ~40 % of its request ids served by the canary."""
    tmp = tmp_path_factory.mktemp("versions-labels")
    stream = penguins.generate(seed=LABELS_SEED, stage_size=600, rate=20.0, format=formats.THESIS)
    labelled = labelled_stream(stream, np.random.default_rng(LABELS_SEED))
    rng = np.random.default_rng(LABELS_SEED + 1)
    canary = {rid for rid in stream.ids.tolist() if rng.random() < 0.4}
    lines = []
    for line in labelled.lines:
        message = json.loads(line)
        if message["id"] in canary:
            message = {"version": CANARY, **message}
        lines.append(json.dumps(message, separators=(",", ":")))
    input_path = tmp / "input.jsonl"
    input_path.write_text("\n".join(lines) + "\n")
    spec = yaml.safe_load(PENGUINS_EXAMPLE.read_text())
    spec["baseline"] = penguins_baseline(tmp)
    spec["model"]["version"] = STABLE
    spec["input"]["format"] = formats.THESIS
    spec["job"]["metrics_port"] = 0
    spec["drift"] = {"metrics": {"js": {"threshold": 0.5}}}
    spec["ground_truth"] = {"max_delay": "60s", "metrics": ["accuracy", "f1_macro", "confusion"],
                            "update_interval": "5s"}
    run = run_mmon(spec, input_path, tmp)
    return {**run, "stream": stream, "labelled": labelled,
            "version": lambda rid: CANARY if rid in canary else STABLE}


def test_each_versions_final_performance_equals_scikit_learn_on_its_own_pairs(labelled_run):
    run = labelled_run
    pairs = expected_pairs(run["stream"], run["labelled"], run["dead_letter"], LABELS_WINDOW_MS, run["version"])
    for version in (STABLE, CANARY):
        windows = by_window(run[outputs.PERFORMANCE], version)
        assert set(windows) == {start for start, v in pairs if v == version}
        for start, revisions in windows.items():
            final = revisions[max(revisions)]
            assert all(record["final"] for record in final.values())
            assert_metrics_equal_sklearn(final, pairs[(start, version)], start)
    assert run["summary"]["accounted"] is True
