"""The penguins stream with label messages merged in, and what the job should make of them (tests of issue 21):
label messages added to `streams.penguins`' lines at their time, most a few seconds to 40 s after their request,
some just before their request's line, some never, some of the wrong count, some null, some for ids never seen;
the labels agree with the model by stage (`RIGHT`: as on its training rows in the first two, where the baseline's
accuracy is 1.0; half the time in the third, a concept change: the inputs as before, the model wrong; 90 % after).
Also the (prediction, label) pairs expected per window and their metrics by scikit-learn."""
from __future__ import annotations

import bisect
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from contract import formats

from udfs.baseline import Baseline

from streams import penguin_model, penguins

SHARES = {"none": 0.08, "before": 0.04, "wrong_count": 0.03, "null": 0.01}  # the rest: labelled after their request
RIGHT = {1: 1.0, 2: 1.0, 3: 0.5, 4: 0.9, 5: 0.9}  # by stage: the share of labels that agree with the prediction
CONCEPT_STAGE = 3
GHOSTS = 10  # labels for ids the stream never has
DELAY_MS = (2_000, 40_000)  # the labels after their request: delays drawn uniformly in this range
TRAINING = Path(__file__).resolve().parent.parent / "examples" / "penguins" / "training.csv"


@dataclass
class Labelled:
    """The stream with its label lines, and what the job should make of them."""

    lines: list[str]  # the stream's lines with the label lines merged in
    truth: dict[str, object]  # request id -> its label (None: a null label), for the labels that should join
    wrong_count: int
    ghosts: int
    labels: list[tuple[str, int, str]] = field(default_factory=list)  # (id, time, line) of every label line


def _arrival_clock(lines: list[str]) -> list[int]:
    """Each stream line's arrival time: the running maximum of the times its messages carry."""
    clock, latest = [], -1
    for line in lines:
        latest = max(latest, json.loads(line)["time"])
        clock.append(latest)
    return clock


def labelled_stream(stream: penguins.PenguinStream, rng: np.random.Generator) -> Labelled:
    """``stream``'s lines with label messages merged in by their time (module docstring)."""
    lines, clock = list(stream.lines), _arrival_clock(list(stream.lines))
    request_line = {json.loads(line)["id"]: k for k, line in enumerate(lines) if json.loads(line)["type"] == "request"}
    classes = sorted(set(stream.predictions))
    inserts, truth, wrong = [], {}, 0
    kinds = rng.choice([*SHARES, "after"], size=len(stream), p=[*SHARES.values(), 1 - sum(SHARES.values())])
    for i, (request_id, t, kind) in enumerate(zip(stream.ids.tolist(), stream.time_ms.tolist(), kinds)):
        if kind == "none":
            continue
        right = rng.random() < RIGHT[int(stream.stage[i])]
        label = stream.predictions[i] if right else str(rng.choice([c for c in classes if c != stream.predictions[i]]))
        label = None if kind == "null" else label
        values = [label, label] if kind == "wrong_count" else [label]
        wrong += kind == "wrong_count"
        if kind != "wrong_count":
            truth[request_id] = label
        if kind == "before":
            line = formats.encode_label(formats.THESIS, request_id, t + 1_000, values)
            inserts.append((request_line[request_id], 0, line))
        else:
            at = t + int(rng.integers(*DELAY_MS))
            line = formats.encode_label(formats.THESIS, request_id, at, values)
            inserts.append((bisect.bisect_right(clock, at), 1, line))
    for g in range(GHOSTS):
        at = int(rng.integers(int(stream.time_ms[0]), int(stream.time_ms[-1])))
        inserts.append((bisect.bisect_right(clock, at), 1, formats.encode_label(formats.THESIS, f"ghost-{g}", at, ["x"])))
    merged, taken = [], 0
    for position, _, line in sorted(inserts, key=lambda insert: insert[:2]):
        merged += lines[taken:position] + [line]
        taken = position
    labels = [(message["id"], message["time"], line) for message, line in
              ((json.loads(line), line) for _, _, line in sorted(inserts, key=lambda insert: insert[:2]))]
    return Labelled(merged + lines[taken:], truth, wrong, GHOSTS, labels)


def penguins_baseline(tmp: Path) -> str:
    """The example's baseline, with the model's performance on its training rows (the species as the truth)."""
    path = tmp / "baseline.json"
    Baseline.from_csv(TRAINING, features=penguin_model.FEATURES, output="prediction",
                      target="species").save(path)
    return str(path)


def expected_pairs(stream: penguins.PenguinStream, labelled: Labelled, dead: list[dict],
                   window_ms: int, version: Optional[Callable[[str], str]] = None) -> dict:
    """Window start -> the (prediction, label, labelled) of each of its requests: a request's prediction is its
    response's, unless none came or it was dead-lettered (then missing, as its label may be). With ``version`` (a
    request id's model version), keyed by (window start, version) instead."""
    truth = labelled.truth
    unjoined = {json.loads(d["raw"])["id"] for d in dead if d["reason"] in (formats.UNMATCHED_RESPONSE, formats.LATE)}
    pairs = defaultdict(list)
    for i, (request_id, t) in enumerate(zip(stream.ids.tolist(), stream.time_ms.tolist())):
        predicted = stream.predictions[i] if stream.answered[i] and request_id not in unjoined else None
        start = t - t % window_ms
        pairs[start if version is None else (start, version(request_id))].append(
            (predicted, truth.get(request_id, None), request_id in truth))
    return pairs


def none_for_nan(values) -> list:
    return [None if isinstance(v, float) and math.isnan(v) else float(v) for v in values]


def assert_metrics_equal_sklearn(records: dict, pairs: list[tuple], window_start: int) -> None:
    """``records`` (key -> the window's record: `by_window`) hold scikit-learn's metrics over ``pairs``; the
    metrics present are checked (``confusion`` always)."""
    scored = [(p, y) for p, y, _ in pairs if p is not None and y is not None]
    predicted, truth = [p for p, _ in scored], [y for _, y in scored]
    confusion = records["confusion"]
    classes = confusion["classes"]
    where = f"window {window_start}"
    assert confusion["labelled"] == len(scored), where
    assert confusion["predictions"] == sum(1 for p, _, _ in pairs if p is not None), where
    assert confusion["value"] == confusion_matrix(truth, predicted, labels=classes).tolist(), where
    assert records["accuracy"]["value"] == pytest.approx(accuracy_score(truth, predicted)), where
    if "f1_macro" in records:
        assert records["f1_macro"]["value"] == pytest.approx(f1_score(truth, predicted, average="macro")), where
    precision, recall, f1, _ = precision_recall_fscore_support(truth, predicted, labels=classes, zero_division=np.nan)
    for name, expected in (("precision", precision), ("recall", recall), ("f1", f1)):
        if f"{name}/{classes[0]}" not in records:
            continue
        got = [records[f"{name}/{c}"]["value"] for c in classes]
        assert got == pytest.approx(none_for_nan(expected), nan_ok=True), (where, name)


def by_window(performance: list[dict], version: Optional[str] = None) -> dict[int, dict[int, dict[str, dict]]]:
    """Window start -> revision -> key (metric or metric/class) -> record (of model ``version`` alone, when given); a
    key twice in a revision fails."""
    found = defaultdict(lambda: defaultdict(dict))
    for record in (r for r in performance if version is None or r["version"] == version):
        key = record["metric"] + (f"/{record['class']}" if "class" in record else "")
        assert key not in found[record["window_start"]][record["revision"]], record
        found[record["window_start"]][record["revision"]][key] = record
    return found
