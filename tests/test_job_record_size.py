"""A line of an input file longer than ``input.max_record_bytes`` (default: Kafka's default largest record,
1,048,588 bytes) is dead-lettered ``too_large`` before it is parsed, with its length and SHA-256, and the run
goes on (issue 20, finding 4: one valid line of 1,000,000 instances ended an embedded run with
OutOfMemoryError, and every output was lost).

One embedded run of the penguins example (its response join keys every parsed record across the network,
where the big line's parsed form exhausted the heap) over 300 small requests with three lines among them:
1,000,000 instances (about 55 MB), a valid request of exactly the cap (accepted, windowed) and one a byte
longer (``too_large``).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from contract import formats
from contract.spec import KAFKA_MAX_RECORD_BYTES, load_spec

from embedded_run import PENGUINS_EXAMPLE, run_mmon

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]

T0_MS = 1_800_000_000_000
STEP_MS = 100  # 300 requests: 30 s of event time, two 15 s windows
ROWS = [["Torgersen", 47.51302, 15.03117, 217.25309, 4501.25421, "female"],
        ["Biscoe", 39.11748, 18.70226, 190.00431, 3650.50037, "male"], ["Dream", 44.90651, 17.38819, 200.96502, None, None]]
HUGE_INSTANCES = 1_000_000


def _request(request_id: str, time_ms: int, rows: list) -> str:
    return formats.encode(formats.KSERVE_V1, request_id, time_ms, rows, source="mmon/penguins")


def _huge(time_ms: int) -> str:
    """A valid request of `HUGE_INSTANCES` instances: a request of 1,000 with its instance list's text repeated
    (no list of a million rows is built in Python)."""
    block = [ROWS[i % 3] for i in range(1_000)]
    inner = json.dumps(block, separators=(",", ":"))[1:-1]
    head, tail = _request("huge-1", time_ms, block).split(inner)
    return head + ",".join([inner] * (HUGE_INSTANCES // len(block))) + tail


def _of_size(size: int, request_id: str, time_ms: int) -> str:
    """A valid request of exactly ``size`` bytes: as many instances as fit, the id padded by what is left."""
    texts = [json.dumps(row, separators=(",", ":")) for row in ROWS]
    length, n = len(_request(request_id, time_ms, [])), 0
    while length + len(texts[n % 3]) + (n > 0) <= size:
        length, n = length + len(texts[n % 3]) + (n > 0), n + 1
    rows = [ROWS[i % 3] for i in range(n)]
    line = _request(request_id + "x" * (size - length), time_ms, rows)
    assert len(line.encode()) == size
    return line


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("record-size")
    spec = yaml.safe_load(PENGUINS_EXAMPLE.read_text())
    spec["baseline"] = str(PENGUINS_EXAMPLE.parent / spec["baseline"])
    spec["job"]["metrics_port"] = 0
    lines = [_request(f"r{i}", T0_MS + i * STEP_MS, [ROWS[i % 3]]) for i in range(300)]
    middle = T0_MS + 150 * STEP_MS
    big = {"huge": _huge(middle), "at_cap": _of_size(KAFKA_MAX_RECORD_BYTES, "at-cap", middle),
           "over_cap": _of_size(KAFKA_MAX_RECORD_BYTES + 1, "over-cap", middle)}
    assert len(big["huge"]) > 55_000_000 and big["huge"].count("],[") == HUGE_INSTANCES - 1
    lines[150:150] = big.values()
    input_path = tmp / "input.jsonl"
    input_path.write_text("\n".join(lines) + "\n")
    result = run_mmon(spec, input_path, tmp)
    line_no = {name: 151 + k for k, name in enumerate(big)}
    return {**result, "big": big, "line_no": line_no}


def test_lines_over_the_cap_are_dead_lettered_too_large_with_length_and_digest(run):
    dead = sorted(run["dead_letter"], key=lambda record: record["source"])
    assert [(r["reason"], r["source"]) for r in dead] == [
        (formats.TOO_LARGE, f"{run['input_path']}:{run['line_no'][name]}") for name in ("huge", "over_cap")]
    for record, name in zip(dead, ("huge", "over_cap")):
        raw = run["big"][name].encode()
        assert record["raw_bytes"] == len(raw) and record["raw_sha256"] == hashlib.sha256(raw).hexdigest()
        assert record["truncated"] is True and record["raw"].encode() == raw[:65_536]


def test_the_run_goes_on_and_a_line_at_the_cap_is_monitored(run):
    at_cap = formats.decode(formats.KSERVE_V1, run["big"]["at_cap"], schema=formats.Schema.from_spec(load_spec(run["spec_path"])))
    summary = run["summary"]
    assert (summary["records_read"], summary["requests_accepted"], summary["dead_letter"]) == (303, 301, 2)
    assert summary["instances_accepted"] == 300 + len(at_cap.instances) and summary["accounted"] is True
    island = [r for r in run["stats"] if r["feature"] == "island"]
    assert sum(r["count"] + r["missing"] for r in island) == 300 + len(at_cap.instances)
