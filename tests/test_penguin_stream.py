"""The staged penguins stream (benchmarks/penguins.py): reproducible, each stage holds what it claims,
the responses interleave as documented, and the per-stage flags are what the drift core (udfs.drift at the
thresholds of examples/penguins/monitor.yaml) raises on the stream's own windows."""
import hashlib
import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from contract import formats
from contract.spec import load_spec

from udfs import calibration, drift
from udfs.baseline import Baseline
from udfs.histogram import layout_counts

import streams
from streams import iris, penguin_model, penguins

SMALL = 300


@pytest.fixture(scope="module")
def stream():
    return penguins.generate()


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


def test_stage_flags_are_what_the_drift_core_raises_at_the_monitors_thresholds(stream):
    """Every window wholly inside a stage flags that stage's columns (by some metric), and no window flags
    any other column: the drift core on the stream's own windows, at the example monitor's thresholds."""
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
