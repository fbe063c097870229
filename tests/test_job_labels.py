"""Late labels end to end (issue 21), embedded: the penguins stream with label messages merged in
(`labelled_streams`: after their request by seconds, before it, never, of the wrong count, null, for ids never
seen; right as in training in the first two stages, half the time in the third).

Each window's final performance record equals scikit-learn's metrics over the window's (prediction, label) pairs;
the records of a window are numbered revisions with the labels counted so far, the last one final; the concept
stage's windows are alerted and the first stages' are not; unmatched and wrong-count labels are dead-lettered;
and the accounting holds: lines = records read + responses joined + labels joined. The same stream under a
max_delay long enough for the RocksDB state backend gives the same final records."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import yaml

from contract import formats, outputs

from streams import penguins

from embedded_run import PENGUINS_EXAMPLE, run_mmon
from labelled_streams import (CONCEPT_STAGE, assert_metrics_equal_sklearn, by_window, expected_pairs,
                              labelled_stream, penguins_baseline)

pytestmark = [pytest.mark.flink, pytest.mark.timeout(900)]

SEED = 21
WINDOW_MS = 15_000
METRICS = ["accuracy", "precision", "recall", "f1", "f1_macro", "confusion"]
STAGE_SIZE = 900  # 45 s a stage at 20 requests/s: at least one 15 s window wholly inside each
MAX_DELAY_S = 60


def _spec(baseline: str, max_delay_s: int) -> dict:
    spec = yaml.safe_load(PENGUINS_EXAMPLE.read_text())
    spec["baseline"] = baseline
    spec["input"]["format"] = formats.THESIS
    spec["job"]["metrics_port"] = 0
    spec["drift"] = {"metrics": {"js": {"threshold": 0.5}}}
    spec["ground_truth"] = {"max_delay": f"{max_delay_s}s", "metrics": METRICS, "update_interval": "5s"}
    return spec


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labels")
    stream = penguins.generate(seed=SEED, stage_size=STAGE_SIZE, rate=20.0, format=formats.THESIS)
    labelled = labelled_stream(stream, np.random.default_rng(SEED))
    input_path = tmp / "input.jsonl"
    input_path.write_text("\n".join(labelled.lines) + "\n")
    baseline = penguins_baseline(tmp)
    run = run_mmon(_spec(baseline, MAX_DELAY_S), input_path, tmp)
    return {**run, "stream": stream, "labelled": labelled, "tmp": tmp, "baseline_path": baseline}


def test_each_windows_final_record_equals_scikit_learn(labelled_run):
    pairs = expected_pairs(labelled_run["stream"], labelled_run["labelled"], labelled_run["dead_letter"], WINDOW_MS)
    windows = by_window(labelled_run[outputs.PERFORMANCE])
    assert set(windows) == set(pairs)
    for start, revisions in windows.items():
        final = revisions[max(revisions)]
        assert all(record["final"] for record in final.values())
        assert_metrics_equal_sklearn(final, pairs[start], start)


def test_a_windows_records_are_numbered_revisions_with_more_labels_each_and_the_last_final(labelled_run):
    windows = by_window(labelled_run[outputs.PERFORMANCE])
    revised = 0
    for start, revisions in windows.items():
        assert sorted(revisions) == list(range(len(revisions))), start
        keys = {frozenset(records) for records in revisions.values()}
        labelled = [next(iter(revisions[r].values()))["labelled"] for r in sorted(revisions)]
        assert labelled == sorted(labelled), start
        assert [any(rec["final"] for rec in revisions[r].values()) for r in sorted(revisions)] == \
            [False] * (len(revisions) - 1) + [True], start
        assert len(keys) <= 2  # the classes of the confusion may grow; the metrics stay
        revised += len(revisions) > 1
        for records in revisions.values():
            coverage = {record["coverage"] for record in records.values()}
            assert len(coverage) == 1 and next(iter(coverage)) <= 1
    assert revised > 0


def test_the_concept_stage_is_alerted_and_the_stages_as_in_training_are_not(labelled_run):
    stages = {stage.number: stage for stage in labelled_run["stream"].stages}
    finals = {r["window_start"]: r for r in labelled_run[outputs.PERFORMANCE] if r["final"] and r["metric"] == "accuracy"}

    def inside(number: int) -> list[dict]:
        stage = stages[number]
        return [r for start, r in finals.items() if start >= stage.first_ms and start + WINDOW_MS <= stage.end_ms]

    concept, first = inside(CONCEPT_STAGE), inside(1) + inside(2)
    assert concept and first
    assert all(r["alert"] and r["value"] < r["low"] for r in concept), concept
    assert not any(r["alert"] for r in first), first
    assert all(r["baseline"] == 1.0 for r in finals.values())


def test_unmatched_and_wrong_count_labels_are_dead_lettered_and_the_accounting_holds(labelled_run):
    labelled, summary, dead = labelled_run["labelled"], labelled_run["summary"], labelled_run["dead_letter"]
    by_reason = Counter(d["reason"] for d in dead)
    assert by_reason[formats.UNMATCHED_LABEL] == labelled.ghosts
    assert by_reason[formats.WRONG_LABEL_COUNT] == labelled.wrong_count
    assert {json.loads(d["raw"])["id"] for d in dead if d["reason"] == formats.UNMATCHED_LABEL} == \
        {f"ghost-{g}" for g in range(labelled.ghosts)}
    assert summary[outputs.LABELS_JOINED] == len(labelled.truth)
    assert summary["records_read"] + summary["responses_joined"] + summary[outputs.LABELS_JOINED] == \
        len(labelled.lines)
    assert summary["accounted"] is True, summary


def test_the_rocksdb_state_backend_gives_the_same_final_records(labelled_run):
    tmp = labelled_run["tmp"] / "rocksdb"
    tmp.mkdir()
    run = run_mmon(_spec(labelled_run["baseline_path"], 2 * 3600), labelled_run["input_path"], tmp)
    assert "state in RocksDB" in run["stdout"]

    def finals(performance):
        return sorted((r["window_start"], r["metric"], r.get("class"), json.dumps(r["value"]), r["labelled"],
                       r["predictions"]) for r in performance if r["final"])

    assert finals(run[outputs.PERFORMANCE]) == finals(labelled_run[outputs.PERFORMANCE])
