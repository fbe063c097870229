"""The staged penguins stream (benchmarks/penguins.py): reproducible, each stage holds what it claims,
the responses interleave as documented, and the per-stage flags are what the drift core (udfs.drift at the
thresholds of examples/penguins/monitor.yaml) raises on the stream's own windows. The labelled stream
(labels=True, issue 21) leaves the default one byte for byte as it was, carries one label per labelled
request at its documented delay plus the deliberate faults, and its concept stage drops the model's accuracy
while no input column drifts."""
import csv
import hashlib
import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from scipy.stats import betabinom

from contract import formats
from contract.spec import load_spec

from udfs import calibration, drift
from udfs.baseline import Baseline
from udfs.histogram import layout_counts

import streams
from streams import iris, penguin_model, penguins

SMALL = 300
GROUND_TRUTH_SPEC = penguins.PENGUINS / "ground-truth.yaml"


@pytest.fixture(scope="module")
def stream():
    return penguins.generate()


@pytest.fixture(scope="module")
def labelled():
    return penguins.generate(labels=True)


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _events(stream):
    """(kind, id, time ms, payload) per line of a kserve-v1 stream."""
    out = []
    for line in stream.lines:
        event = json.loads(line)
        kind = event["type"].rsplit(".", 1)[-1]
        out.append((kind, event["id"], formats.parse_rfc3339_ms(event["time"]),
                    event["data"]["instances"][0] if kind == "request" else event["data"]["predictions"]))
    return out


def test_same_seed_same_bytes_other_seed_differs_and_formats_carry_the_same_data(tmp_path):
    paths = [tmp_path / name for name in ("a.jsonl", "b.jsonl", "c.jsonl")]
    for path, seed in zip(paths, (7, 7, 8)):
        penguins.write_jsonl(penguins.generate(seed=seed, stage_size=SMALL), path)
    assert _sha256(paths[0]) == _sha256(paths[1]) != _sha256(paths[2])
    v1, thesis = penguins.generate(seed=7, stage_size=SMALL), penguins.generate(seed=7, stage_size=SMALL, format=formats.THESIS)
    assert v1.rows == thesis.rows and v1.predictions == thesis.predictions
    assert np.array_equal(v1.response_ms, thesis.response_ms) and len(v1.lines) == len(thesis.lines)
    assert json.loads(thesis.lines[0])["payload"]["instances"] == [v1.rows[0]]


def test_cli_writes_what_the_api_writes(tmp_path):
    out = tmp_path / "cli.jsonl"
    proc = subprocess.run([sys.executable, "-m", "mmon.cli", "stream", "penguins",
                           "--seed", "3", "--stage-size", "200", "--format", "thesis", "-o", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1000 penguin requests" in proc.stderr
    expected = penguins.generate(seed=3, stage_size=200, format=formats.THESIS)
    penguins.write_jsonl(expected, tmp_path / "api.jsonl")
    penguins.write_labels(expected, tmp_path / "api.labels.csv")
    assert _sha256(out) == _sha256(tmp_path / "api.jsonl")
    assert _sha256(tmp_path / "cli.jsonl.labels.csv") == _sha256(tmp_path / "api.labels.csv")


def test_the_job_finds_each_example_stream_by_its_models_features():
    assert streams.example_for(reversed(penguins.FEATURES)) == "penguins"
    assert streams.example_for(iris.FEATURES) == "iris"
    assert streams.example_for(("a", "b")) is None
    with open(iris.DEFAULT_TRAINING) as handle:
        assert tuple(handle.readline().strip().split(",")[:4]) == iris.FEATURES


def test_instances_are_objects_in_feature_order_with_the_training_gaps(stream):
    n = 5 * penguins.DEFAULT_STAGE_SIZE
    assert len(stream) == n and np.all(np.diff(stream.time_ms) >= 0)
    assert np.array_equal(np.bincount(stream.stage), [0] + [penguins.DEFAULT_STAGE_SIZE] * 5)
    names = list(stream.feature_names)
    for row, stage in zip(stream.rows, stream.stage):
        assert list(row) == names or (stage == 3 and list(row) == names[:-1])  # only stage 3 leaves a key out
    normal = [row for row, stage in zip(stream.rows, stream.stage) if stage in (1, 5)]
    assert any(row["body_mass_g"] is None for row in normal) and any(row["sex"] is None for row in normal)
    numbers = [v for row in stream.rows for name, v in row.items() if name not in ("island", "sex") and v is not None]
    assert all(isinstance(v, float) and round(v, penguins.DECIMALS) == v for v in numbers)


def test_each_stage_holds_what_it_claims(stream):
    baseline = Baseline.load(penguins.PENGUINS / "baseline.json")
    stage_rows = {s: [row for row, g in zip(stream.rows, stream.stage) if g == s] for s in range(1, 6)}
    size = penguins.DEFAULT_STAGE_SIZE
    # stage 2: island drawn from the shifted mix, exactly 1% an island the baseline never saw
    islands = Counter(row["island"] for row in stage_rows[2])
    assert islands[penguins.UNSEEN_ISLAND] == round(penguins.UNSEEN_SHARE * size) == stream.stages[1].unseen
    assert np.array_equal(np.flatnonzero(stream.unseen), [i for i, r in enumerate(stream.rows) if r["island"] == penguins.UNSEEN_ISLAND])
    for island, share in penguins.SHIFTED_ISLAND_MIX.items():
        assert abs(islands[island] / size - share * (1 - penguins.UNSEEN_SHARE)) < 0.03
    assert {row["island"] for s in (1, 3, 4, 5) for row in stage_rows[s]} == set(baseline.features["island"].categories)
    # stage 3: sex missing in exactly 40% (the drawn rows' nulls, the rest absent keys); elsewhere about the baseline's rate
    assert sum(row.get("sex") is None for row in stage_rows[3]) == round(penguins.SEX_MISSING_SHARE * size)
    assert stream.stages[2].missing["sex"] == round(penguins.SEX_MISSING_SHARE * size)
    assert sum("sex" not in row for row in stage_rows[3]) > 0.35 * size
    for s in (1, 2, 4, 5):
        assert abs(stream.stages[s - 1].missing["sex"] / size - baseline.features["sex"].missing_rate) < 0.02
    # stage 4: body mass one sd higher; the other measurements as in training
    mass = baseline.features["body_mass_g"]

    def mean(s, name):
        return np.mean([row[name] for row in stage_rows[s] if row[name] is not None])

    assert abs((mean(4, "body_mass_g") - mass.mean) / mass.std - penguins.BODY_MASS_SHIFT_SIGMAS) < 0.1
    for s in (1, 2, 3, 5):
        assert abs(mean(s, "body_mass_g") - mass.mean) / mass.std < 0.1
    assert [info.kind for info in stream.stages] == list(penguins.STAGE_KINDS)
    assert [info.flags for info in stream.stages] == [(), ("island",), ("sex",), ("body_mass_g",), ()]


def test_responses_interleave_as_documented(stream):
    events = _events(stream)
    position = {}
    for i, (kind, event_id, _, _) in enumerate(events):
        assert (kind, event_id) not in position
        position[kind, event_id] = i
    n = len(stream)
    assert sum(stream.early) == round(penguins.EARLY_SHARE * n) and sum(~stream.answered) == round(penguins.NO_RESPONSE_SHARE * n)
    assert not np.any(stream.early & ~stream.answered)
    for i, request_id in enumerate(stream.ids.tolist()):
        if not stream.answered[i]:
            assert ("response", request_id) not in position
            continue
        kind, _, time_ms, predictions = events[position["response", request_id]]
        assert predictions == [stream.predictions[i]] and time_ms == stream.response_ms[i] > stream.time_ms[i]
        assert (position["response", request_id] < position["request", request_id]) == stream.early[i]
    orphans = [event for event in events if event[1].startswith("orphan-")]
    assert len(orphans) == len(stream.orphan_ids) == round(penguins.ORPHAN_SHARE * n)
    assert all(kind == "response" and event_id not in set(stream.ids.tolist()) for kind, event_id, _, _ in orphans)
    assert len(events) == n + int(stream.answered.sum()) + len(orphans)
    assert stream.predictions == tuple(penguin_model.predict(penguin_model.load(), list(stream.rows)))
    quiet = penguins.generate(stage_size=SMALL, responses=False)
    assert len(quiet.lines) == len(quiet) and not quiet.answered.any() and quiet.orphan_ids == ()


@pytest.mark.parametrize("name", ["stream", "labelled"])
def test_stage_flags_are_what_the_drift_core_raises_at_the_monitors_thresholds(name, request):
    """Every window wholly inside a stage flags that stage's columns (by some metric), and no window flags
    any other column: the drift core on the stream's own windows, at the example monitor's thresholds. In the
    labelled stream, the concept stage's windows flag nothing: its inputs and predictions are drawn as normal."""
    stream = request.getfixturevalue(name)
    assert name == "stream" or [info.flags for info in stream.stages if info.kind == "concept"] == [()]
    spec = load_spec(penguins.PENGUINS / "monitor.yaml")
    baseline = Baseline.load(spec.baseline)
    window = spec.window.duration
    histogram_metrics = [m for m in spec.drift.metrics if m != drift.MISSING_RATE]
    starts = stream.time_ms // window * window
    values = {name: np.array([row.get(name) for row in stream.rows], dtype=object) for name in stream.feature_names}
    values[spec.output.name] = np.array([p if answered else None for p, answered in
                                         zip(stream.predictions, stream.answered)], dtype=object)
    for start in np.unique(starts):
        rows = starts == start
        stages = set(stream.stage[rows].tolist())
        expected = {name for info in stream.stages if info.number in stages for name in info.flags}
        for name, column in baseline.columns.items():
            cells = values[name][rows]
            present = [v for v in cells if v is not None]
            if column.type == "categorical":
                layout = column.layout()
                p = np.bincount(layout.slots(np.array(present, dtype=object)), minlength=layout.n_slots)
                q = column.histogram_counts()
            else:
                p, q = layout_counts(np.array(present, dtype=float), column.edges), np.r_[0, column.counts, 0]
            flagged = [m for m in histogram_metrics if drift.compute(m, p, q) > calibration.drift_thresholds(
                baseline, m, len(present), spec.drift.metrics[m].false_alarm_rate)[name]]
            rate = spec.drift.metrics[drift.MISSING_RATE].false_alarm_rate
            if drift.missing_rate(len(cells) - len(present), len(cells), column.missing_rate) > \
                    calibration.missing_rate_thresholds(column, len(cells), rate):
                flagged.append(drift.MISSING_RATE)
            where = f"window {start} (stages {sorted(stages)}), {name}"
            if name not in expected:
                assert flagged == [], where
            elif len(stages) == 1:
                info = stream.stages[stages.pop() - 1]
                stages.add(info.number)
                assert flagged, where
                assert (name in info.missing_rate_drifted) == (drift.MISSING_RATE in flagged), where


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_every_line_decodes_with_the_monitors_schema_to_the_stream_data(fmt):
    """formats.decode (the job's reference parser) with the schema of examples/penguins/monitor.yaml."""
    stream = penguins.generate(stage_size=SMALL, format=fmt)
    schema = formats.Schema.from_spec(load_spec(penguins.PENGUINS / "monitor.yaml"))
    rows = {request_id: row for request_id, row in zip(stream.ids.tolist(), stream.rows)}
    predictions = dict(zip(stream.ids.tolist(), stream.predictions)) | dict(zip(stream.orphan_ids, stream.orphan_predictions))
    seen = Counter()
    for line in stream.lines:
        parsed = formats.decode(fmt, line, schema=schema)
        if isinstance(parsed, formats.ParsedResponse):
            assert parsed.predictions == [predictions[parsed.request_id]]
            seen["response"] += 1
        else:
            assert parsed.instances == [[rows[parsed.request_id].get(name) for name in stream.feature_names]]
            seen["request"] += 1
    assert seen == {"request": len(stream), "response": int(stream.answered.sum()) + len(stream.orphan_ids)}


# ------------------------------------------------------------------------------------------- ground truth

# sha256 of the lines (each with its newline) and of write_labels' CSV, from the generator as it was before
# labels: the job's penguins tests and the README's figures read the default stream.
DEFAULT_SHA256 = {
    (formats.KSERVE_V1, None): ("19676aad033ed447ed574a63c43b56b59f60e157f20f0d6a3b613f7c6e85b183",
                                "1d4854ace21fb91145967143f8964901e26ed17c15abb1709721337b60c6433b"),
    (formats.THESIS, 7): ("a70181dba377dd7101d7761f42de7cbc4219295b18f05f521d88373f0817606a",
                          "79d882d009d577d1a8a91b7503bc006f84d0e5e37d720505e6f45254533940ed"),
    (formats.OIP_V2, 7): ("14b3de6362d939a1465fb141a90a0144983d97b5ee90dfcd26ae73ad95d22791",
                          "79d882d009d577d1a8a91b7503bc006f84d0e5e37d720505e6f45254533940ed"),
}


@pytest.mark.parametrize("fmt, seed", list(DEFAULT_SHA256))
def test_without_labels_the_stream_is_byte_for_byte_as_before(fmt, seed, stream, tmp_path):
    generated = stream if seed is None else penguins.generate(seed=seed, stage_size=SMALL, format=fmt, labels=False)
    penguins.write_labels(generated, tmp_path / "labels.csv")
    lines = "".join(line + "\n" for line in generated.lines).encode()
    assert (hashlib.sha256(lines).hexdigest(), _sha256(tmp_path / "labels.csv")) == DEFAULT_SHA256[fmt, seed]
    assert not generated.labelled and len(generated.stages) == len(penguins.STAGE_KINDS)
    assert all(info.accuracy is None and not info.performance_drop for info in generated.stages)


def test_labelled_stream_adds_the_concept_stage_after_the_same_first_four_stages(stream, labelled):
    size = penguins.DEFAULT_STAGE_SIZE
    assert [info.kind for info in labelled.stages] == list(penguins.STAGE_KINDS_WITH_LABELS)
    assert len(labelled) == len(penguins.STAGE_KINDS_WITH_LABELS) * size
    first = 4 * size  # the requests before the concept stage: as in the default stream
    assert labelled.rows[:first] == stream.rows[:first] and np.array_equal(labelled.time_ms[:first], stream.time_ms[:first])
    assert labelled.predictions == tuple(penguin_model.predict(penguin_model.load(), list(labelled.rows)))
    concept = labelled.stages[4]
    assert concept.relabelled == int(labelled.relabelled.sum()) == round(penguins.CONCEPT_SHARE * size)
    assert np.all(labelled.stage[labelled.relabelled] == concept.number)
    # the concept stage's inputs are drawn as normal: its missing counts about stage 1's
    for name in labelled.feature_names:
        assert abs(concept.missing[name] - labelled.stages[0].missing[name]) < 0.02 * size, name


def test_every_request_has_its_true_species_changed_only_in_the_concept_stage(labelled):
    with open(penguins.DEFAULT_TRAINING, newline="") as handle:
        species = {row[penguin_model.LABEL] for row in csv.DictReader(handle)}
    truth = np.array(labelled.truth, dtype=object)
    assert set(truth) == species == set(penguin_model.load()["classes"])
    predictions = np.array(labelled.predictions, dtype=object)
    # outside the concept stage the truth is the drawn row's species: the model, right on every training row,
    # gets it right but for the few the stages' changes of its inputs mislead it
    kept = ~labelled.relabelled
    assert np.mean(truth[kept & (labelled.stage != 2)] == predictions[kept & (labelled.stage != 2)]) > 0.99


def test_label_messages_count_time_and_faults(labelled):
    n = len(labelled)
    events = [json.loads(line) for line in labelled.lines]
    label_lines = [event for event in events if event["type"] == formats.CLOUDEVENT_LABEL_TYPE]
    never = int((labelled.label_ms < 0).sum())
    wrong = int((labelled.wrong_count_ms >= 0).sum())
    assert never == round(penguins.UNLABELLED_SHARE * n)
    assert wrong == round(penguins.WRONG_LABEL_COUNT_SHARE * n) and np.all(labelled.label_ms[labelled.wrong_count_ms >= 0] < 0)
    assert len(labelled.unmatched_label_ids) == round(penguins.UNMATCHED_LABEL_SHARE * n) > 0
    assert len(label_lines) == n - never + wrong + len(labelled.unmatched_label_ids) == penguins.label_messages(labelled)
    index = {request_id: i for i, request_id in enumerate(labelled.ids.tolist())}
    seen = Counter()
    for event in label_lines:
        time_ms, labels = formats.parse_rfc3339_ms(event["time"]), event["data"]["labels"]
        if event["id"] not in index:
            assert event["id"].startswith(penguins.UNMATCHED_LABEL_PREFIX) and len(labels) == 1
            seen["unmatched"] += 1
            continue
        i = index[event["id"]]
        assert labels == [labelled.truth[i]] * len(labels)
        seen["wrong_count" if len(labels) == 2 else "labelled"] += 1
        assert time_ms == (labelled.label_ms[i] if len(labels) == 1 else labelled.wrong_count_ms[i])
        assert penguins.LABEL_DELAY_MIN_MS <= time_ms - labelled.time_ms[i] < penguins.LABEL_DELAY_MAX_MS
        assert labelled.response_ms[i] < time_ms  # after its response (or there is none)
    assert seen == {"labelled": n - never, "wrong_count": wrong, "unmatched": len(labelled.unmatched_label_ids)}
    # the delays span seconds to hours: log-uniform, so about as many under a minute as between 1 h and 3 h
    delay_s = (labelled.label_ms - labelled.time_ms)[labelled.label_ms >= 0] / 1000
    assert delay_s.min() < 2 and delay_s.max() > 2.9 * 3600
    assert abs(np.mean(delay_s < 60) - np.log(60) / np.log(3 * 3600)) < 0.02
    # lines in arrival order (an early response aside): each label after its request's line
    position = {(event["type"], event["id"]): k for k, event in enumerate(events)}
    assert all(position[formats.CLOUDEVENT_LABEL_TYPE, request_id] > position[formats.CLOUDEVENT_REQUEST_TYPE, request_id]
               for request_id in labelled.ids[labelled.label_ms >= 0].tolist())
    times = [formats.parse_rfc3339_ms(event["time"]) for event in events if event["type"] != formats.CLOUDEVENT_RESPONSE_TYPE]
    assert times == sorted(times)


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_every_line_of_the_labelled_stream_decodes_with_the_ground_truth_schema(fmt):
    """formats.decode with the schema of examples/penguins/ground-truth.yaml: requests, responses and labels."""
    stream = penguins.generate(stage_size=SMALL, format=fmt, labels=True)
    spec = load_spec(GROUND_TRUTH_SPEC)
    assert spec.ground_truth is not None and spec.ground_truth.max_delay >= penguins.LABEL_DELAY_MAX_MS
    schema = formats.Schema.from_spec(spec)
    index = {request_id: i for i, request_id in enumerate(stream.ids.tolist())}
    unmatched = dict(zip(stream.unmatched_label_ids, zip(stream.unmatched_label_ms.tolist(), stream.unmatched_labels)))
    seen = Counter()
    for line in stream.lines:
        parsed = formats.decode(fmt, line, schema=schema)
        if isinstance(parsed, formats.ParsedLabels):
            if parsed.request_id in unmatched:
                assert (parsed.time_ms, parsed.labels) == (unmatched[parsed.request_id][0], [unmatched[parsed.request_id][1]])
            else:
                i = index[parsed.request_id]
                assert parsed.labels == [stream.truth[i]] * len(parsed.labels)
                assert parsed.time_ms == (stream.label_ms[i] if len(parsed.labels) == 1 else stream.wrong_count_ms[i])
            seen["label"] += 1
        else:
            seen["response" if isinstance(parsed, formats.ParsedResponse) else "request"] += 1
    assert seen == {"request": len(stream), "response": int(stream.answered.sum()) + len(stream.orphan_ids),
                    "label": penguins.label_messages(stream)}


def test_concept_stage_accuracy_falls_far_below_the_normal_stages(labelled):
    truth, predictions = np.array(labelled.truth, dtype=object), np.array(labelled.predictions, dtype=object)
    scored = (labelled.label_ms >= 0) & labelled.answered
    accuracy = {info.number: float(np.mean(truth[scored & (labelled.stage == info.number)] ==
                                           predictions[scored & (labelled.stage == info.number)]))
                for info in labelled.stages}
    assert accuracy == {info.number: info.accuracy for info in labelled.stages}
    normal = [accuracy[info.number] for info in labelled.stages if info.kind == "normal"]
    concept = accuracy[5]
    assert min(normal) > 0.99 and 0.55 < concept < 0.75
    assert concept < min(normal) - 0.25
    assert min(accuracy[info.number] for info in labelled.stages if info.kind != "concept") > 0.95


def test_performance_drops_are_what_an_exact_accuracy_test_alerts_per_window(labelled):
    """Each window wholly inside a stage, all its labels in: its accuracy against the model's on the training
    rows (every one right), by the posterior predictive of the baseline's accuracy (a beta-binomial, Jeffreys'
    prior: udfs.performance's accuracy test) at the spec's false-alarm rate, is alerted exactly in the stages
    whose `performance_drop` says so: the concept stage and the island mix, never a normal stage."""
    spec = load_spec(GROUND_TRUTH_SPEC)
    with open(penguins.DEFAULT_TRAINING, newline="") as handle:
        training = list(csv.DictReader(handle))
    m, k = len(training), sum(row[penguin_model.LABEL] == row[penguin_model.PREDICTION] for row in training)
    truth, predictions = np.array(labelled.truth, dtype=object), np.array(labelled.predictions, dtype=object)
    scored = (labelled.label_ms >= 0) & labelled.answered
    starts = labelled.time_ms // spec.window.duration * spec.window.duration
    alerted = Counter()
    for start in np.unique(starts):
        stages = set(labelled.stage[starts == start].tolist())
        if len(stages) > 1:
            continue
        info = labelled.stages[stages.pop() - 1]
        rows = (starts == start) & scored
        right = int(np.sum(truth[rows] == predictions[rows]))
        p_value = betabinom.cdf(right, int(rows.sum()), k + 0.5, m - k + 0.5)
        assert (p_value < spec.ground_truth.false_alarm_rate) == info.performance_drop, (start, info.kind, p_value)
        alerted[info.kind] += 1
    assert alerted["concept"] >= 5 and alerted["normal"] >= 10
    assert [info.kind for info in labelled.stages if info.performance_drop] == ["island_mix", "concept"]


def test_labels_csv_and_cli_write_the_ground_truth(tmp_path, labelled):
    out = tmp_path / "cli.jsonl"
    proc = subprocess.run([sys.executable, "-m", "mmon.cli", "stream", "penguins", "--ground-truth",
                           "--seed", "3", "--stage-size", "200", "-o", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = penguins.generate(seed=3, stage_size=200, labels=True)
    assert "1200 penguin requests" in proc.stderr and f"{penguins.label_messages(expected)} label messages" in proc.stderr
    penguins.write_jsonl(expected, tmp_path / "api.jsonl")
    assert _sha256(out) == _sha256(tmp_path / "api.jsonl")
    with open(tmp_path / "cli.jsonl.labels.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == list(penguins.LABEL_COLUMNS + penguins.TRUTH_COLUMNS)
    requests = [row for row in table if row["stage"] != "0"]
    assert [row["truth"] for row in requests] == list(expected.truth)
    assert Counter(row["label"] for row in table) == {
        "labelled": int((expected.label_ms >= 0).sum()), "never": int((expected.label_ms < 0).sum()) -
        int((expected.wrong_count_ms >= 0).sum()), "wrong_count": int((expected.wrong_count_ms >= 0).sum()),
        "unmatched": len(expected.unmatched_label_ids), "": len(expected.orphan_ids)}
    for row, t, label_ms in zip(requests, expected.time_ms.tolist(), expected.label_ms.tolist()):
        assert row["label_ms"] == ("" if row["label"] == "never" else row["label_ms"])
        if row["label"] == "labelled":
            assert (int(row["label_ms"]), int(row["delay_ms"])) == (label_ms, label_ms - t)
    assert sum(row["relabelled"] == "1" for row in requests) == int(expected.relabelled.sum())
    # the job's default input for a spec with ground_truth
    message = penguins.write_example(tmp_path / "example.jsonl", formats.KSERVE_V1, stage_size=200, seed=3,
                                     ground_truth=True)
    assert _sha256(tmp_path / "example.jsonl") == _sha256(out) and "label messages" in message
