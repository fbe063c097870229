"""A response whose request comes late (issue 20, finding 5), embedded: the response waits in the join, the
watermark passes its request's time, then the request comes. The request is dead-lettered ``late`` by the
router, and the response with it, also ``late``: it is not counted in ``responses_joined`` (its predictions
are in no window), and the accounting identity of the summary holds (records read = requests accepted +
dead letters; lines = records read + responses joined). Before the fix the response counted as joined and
vanished."""
from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from contract import formats

from streams import penguins

from embedded_run import PENGUINS_EXAMPLE, run_mmon

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]


def test_a_response_whose_request_is_late_is_dead_lettered_late(tmp_path):
    spec = yaml.safe_load(PENGUINS_EXAMPLE.read_text())
    spec["baseline"] = str(PENGUINS_EXAMPLE.parent / spec["baseline"])
    spec["input"]["format"] = formats.THESIS
    spec["job"]["metrics_port"] = 0
    stream = penguins.generate(seed=4, stage_size=120, rate=20.0, format=formats.THESIS)
    first, last = int(stream.time_ms[0]), int(stream.time_ms[-1])
    late_response = formats.encode_response(formats.THESIS, "late-1", last, [stream.predictions[0]])
    late_request = formats.encode(formats.THESIS, "late-1", first, [stream.rows[0]])
    lines = [*stream.lines, late_response, late_request]
    input_path = tmp_path / "input.jsonl"
    input_path.write_text("\n".join(lines) + "\n")

    run = run_mmon(spec, input_path, tmp_path)

    summary, dead = run["summary"], run["dead_letter"]
    late = [json.loads(d["raw"]) for d in dead if d["reason"] == formats.LATE]
    assert sorted((message["id"], message["type"]) for message in late) == [("late-1", "request"),
                                                                            ("late-1", "response")]
    assert Counter(d["reason"] for d in dead) == {formats.LATE: 2,
                                                  formats.UNMATCHED_RESPONSE: len(stream.orphan_ids)}
    assert summary["responses_joined"] == int(stream.answered.sum())
    assert summary["records_read"] + summary["responses_joined"] == len(lines)
    assert summary["accounted"] is True, summary
