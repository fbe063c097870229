"""contract.upgrades: each spec change falls in its class (issue 20), and a refusal names the change and the way
forward."""
from __future__ import annotations

import copy

import pytest

from contract import upgrades
from contract.spec import parse_spec
from contract.upgrades import COMPATIBLE, INCOMPATIBLE, MIGRATABLE

IRIS = {
    "model": {"name": "iris"}, "baseline": "baseline.json",
    "input": {"features": ["sepal_length", "sepal_width", "petal_length", "petal_width"]},
    "window": {"duration": "60s"},
    "drift": {"metrics": {"js": {"threshold": "auto"}, "psi": {"threshold": 0.2}}},
}
PENGUINS = {
    "model": {"name": "penguins"}, "baseline": "baseline.json",
    "input": {"features": [{"name": "island", "type": "categorical"}, "bill_length_mm"]},
    "output": {"name": "prediction", "type": "categorical", "join_timeout": "10s"},
}


def _changed(document: dict, edit) -> upgrades.Upgrade:
    new = copy.deepcopy(document)
    edit(new)
    return upgrades.classify(parse_spec(document), parse_spec(new))


def test_an_unchanged_spec_is_compatible_with_no_change():
    upgrade = upgrades.classify(parse_spec(IRIS), parse_spec(copy.deepcopy(IRIS)))
    assert upgrade.kind == COMPATIBLE and upgrade.changes == () and upgrade.summary() == "spec unchanged"


@pytest.mark.parametrize("edit", [
    lambda d: d["output"].update(join_timeout="20s"),
    lambda d: d.setdefault("outliers", {}).update(sigma=4),
    lambda d: d.setdefault("stats", {}).update(top_k=3),
    lambda d: d.setdefault("drift", {}).update(metrics={"chi2": {"threshold": 5}}),
    lambda d: d.setdefault("window", {}).update(watermark_delay="2s"),
    lambda d: d.setdefault("kafka", {}).update(topics={"stats": "other-stats"}),
    lambda d: d["model"].update(name="penguins-2"),  # at-least-once: no transactions named after it
    lambda d: d.setdefault("drift", {}).update(metrics={}),  # the sink's id is stable: the graph may change
], ids=["join_timeout", "sigma", "top_k", "metrics", "watermark_delay", "stats topic", "model name", "drift off"])
def test_compatible_changes(edit):
    upgrade = _changed(PENGUINS, edit)
    assert upgrade.kind == COMPATIBLE and len(upgrade.changes) >= 1, upgrade.summary()


def test_the_versions_bound_changed_is_compatible_and_keeps_the_admitted_versions():
    """Issue 22: the version gate's admitted versions are restored whatever versions.max now is."""
    upgrade = _changed(IRIS, lambda d: d.update(versions={"max": 2, "stable": "a", "candidate": "b"}))
    assert upgrade.kind == COMPATIBLE
    assert {change.path: change.why.split(";")[0] for change in upgrade.changes}["versions.max"] == \
        "the versions admitted before the restore stay admitted"


def test_the_join_timeout_change_says_waiting_requests_keep_their_deadline():
    upgrade = _changed(PENGUINS, lambda d: d["output"].update(join_timeout="20s"))
    (change,) = upgrade.changes
    assert (change.path, change.before, change.after) == ("output.join_timeout", "10000ms", "20000ms")
    assert "deadline" in change.why


def test_a_dropped_feature_is_migratable_by_name():
    upgrade = _changed(IRIS, lambda d: d["input"]["features"].remove("petal_width"))
    assert upgrade.kind == MIGRATABLE
    (change,) = upgrade.changes
    assert change.path == "input.features" and "removed petal_width" in change.why and "by name" in change.why


def test_added_and_reordered_features_are_migratable():
    added = _changed(IRIS, lambda d: d["input"]["features"].append("sepal_area"))
    reordered = _changed(IRIS, lambda d: d["input"]["features"].reverse())
    assert added.kind == reordered.kind == MIGRATABLE
    assert "added sepal_area" in added.changes[0].why and "reordered" in reordered.changes[0].why


def test_a_grown_vocabulary_is_migratable():
    spec = parse_spec(PENGUINS)
    upgrade = upgrades.classify(spec, spec, {"island": ("Biscoe", "Dream")}, {"island": ("Biscoe", "Dream", "Anvers")})
    assert upgrade.kind == MIGRATABLE and upgrade.changes[0].path == "baseline.island.vocabulary"


@pytest.mark.parametrize("edit,path", [
    (lambda d: d["window"].update(duration="15s"), "window.duration"),
    (lambda d: d["input"]["features"].__setitem__(0, {"name": "sepal_length", "type": "categorical"}),
     "input.features.sepal_length.type"),
    (lambda d: d.setdefault("job", {}).update(delivery_guarantee="exactly-once"), "job.delivery_guarantee"),
    (lambda d: d.setdefault("kafka", {}).update(topics={"inference": "other"}), "kafka.topics.inference"),
], ids=["window length", "feature type", "delivery", "input topic"])
def test_incompatible_changes(edit, path):
    upgrade = _changed(IRIS, edit)
    assert upgrade.kind == INCOMPATIBLE and path in [change.path for change in upgrade.refused], upgrade.summary()


def test_the_window_length_refusal_names_the_change_and_the_way_forward():
    upgrade = _changed(IRIS, lambda d: d["window"].update(duration="15s"))
    message = upgrade.refusal()
    assert "window.duration: '60000ms' -> '15000ms'" not in message  # durations shown as they are written
    assert "window.duration: 60000ms -> 15000ms (incompatible: an open window cannot be re-cut" in message
    assert "flink stop --drain" in message and "without --restore-from" in message


def test_the_output_removed_is_incompatible_and_added_migratable():
    without = {key: value for key, value in PENGUINS.items() if key != "output"}
    assert upgrades.classify(parse_spec(PENGUINS), parse_spec(without)).kind == INCOMPATIBLE
    assert upgrades.classify(parse_spec(without), parse_spec(PENGUINS)).kind == MIGRATABLE
    renamed = _changed(PENGUINS, lambda d: d["output"].update(name="species"))
    assert renamed.kind == INCOMPATIBLE


def test_ground_truth_added_is_compatible_removed_incompatible_and_its_max_delay_compatible_within_a_backend():
    labelled = {**PENGUINS, "ground_truth": {"max_delay": "1m"}}
    assert upgrades.classify(parse_spec(PENGUINS), parse_spec(labelled)).kind == COMPATIBLE
    removed = upgrades.classify(parse_spec(labelled), parse_spec(PENGUINS))
    assert removed.kind == INCOMPATIBLE and removed.refused[0].path == "ground_truth"
    (change,) = _changed(labelled, lambda d: d["ground_truth"].update(max_delay="5m")).changes
    assert (change.path, change.kind) == ("ground_truth.max_delay", COMPATIBLE) and "deadline" in change.why


def test_a_max_delay_across_the_rocksdb_threshold_changes_the_state_backend_incompatibly():
    labelled = {**PENGUINS, "ground_truth": {"max_delay": "1m"}}
    upgrade = _changed(labelled, lambda d: d["ground_truth"].update(max_delay="7d"))
    assert upgrade.kind == INCOMPATIBLE
    assert [(c.path, c.before, c.after) for c in upgrade.refused] == [("state.backend.type", "hashmap", "rocksdb")]
    assert upgrades.classify(parse_spec(PENGUINS), parse_spec({**PENGUINS, "ground_truth": {}})).kind == INCOMPATIBLE


def test_the_model_name_under_exactly_once_is_incompatible():
    exactly_once = {**PENGUINS, "job": {"delivery_guarantee": "exactly-once"}}
    upgrade = _changed(exactly_once, lambda d: d["model"].update(name="other"))
    assert upgrade.kind == INCOMPATIBLE and "transactional" in upgrade.refused[0].why


def test_the_most_severe_change_decides():
    def edit(document):
        document["window"]["duration"] = "15s"
        document["input"]["features"].pop()
        document["drift"]["metrics"]["js"]["threshold"] = 0.1
    upgrade = _changed(IRIS, edit)
    assert [change.kind for change in upgrade.changes].count(INCOMPATIBLE) == 1
    assert {change.kind for change in upgrade.changes} == {COMPATIBLE, MIGRATABLE, INCOMPATIBLE}
    assert upgrade.kind == INCOMPATIBLE
