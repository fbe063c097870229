"""The session's one embedded `mmon run` (the `embedded_run` fixture of conftest.py): a real Flink
mini-cluster on a small staged stream plus malformed, late and multi-instance lines, its outputs loaded.
Shared by the job's end-to-end tests (test_job_embedded.py) and the report tests (test_report.py). The
spec adds the two-sample tests (ks, cvm) to the example's five histogram metrics."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks import iris_stream
from flink_job import formats
from udfs.baseline import Baseline

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "iris" / "monitor.yaml"
WINDOW_MS = 5_000
DELAY_MS = 1_000
RATES = (32.0, 61.0, 30.0, 61.0, 32.0)  # requests/s per stage: the drift stage spans whole windows
STAGE_SIZE = 300
MULTI_AT = 100  # the multi-instance request replaces this stream position


def _bad_lines(t_ms: int) -> dict[str, str]:
    """One malformed line per dead-letter reason the reference decoder gives, keyed by that reason."""
    ok = [5.1, 3.5, 1.4, 0.2]
    lines = {
        formats.BAD_JSON: "this is not json",
        formats.BAD_ENVELOPE: json.dumps({"type": "request", "id": "x1", "time": t_ms, "payload": [ok]}),
        formats.NOT_REQUEST: json.dumps({"type": "response", "id": "x2", "time": t_ms, "payload": {"instances": [ok]}}),
        formats.BAD_ID: json.dumps({"type": "request", "time": t_ms, "payload": {"instances": [ok]}}),
        formats.BAD_TIME: json.dumps({"type": "request", "id": "x3", "payload": {"instances": [ok]}}),
        formats.NO_INSTANCES: json.dumps({"type": "request", "id": "x4", "time": t_ms, "payload": {"instances": []}}),
        formats.BAD_INSTANCE: json.dumps({"type": "request", "id": "x5", "time": t_ms,
                                          "payload": {"instances": [[5.1, "3.5", 1.4, 0.2]]}}),
        formats.WRONG_FEATURE_COUNT: json.dumps({"type": "request", "id": "x6", "time": t_ms,
                                                 "payload": {"instances": [[5.1, 3.5, 1.4]]}}),
        formats.NON_FINITE: '{"type":"request","id":"x7","time":%d,"payload":{"instances":[[5.1,NaN,1.4,0.2]]}}' % t_ms,
    }
    for reason, line in lines.items():  # the fixture itself must agree with the reference decoder
        with pytest.raises(formats.FormatError) as err:
            formats.decode(formats.THESIS, line, n_features=4)
        assert err.value.reason == reason
    return lines


def run_job(tmp: Path) -> dict:
    """Write the spec and input into ``tmp``, run `mmon run` once, load every output file."""
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["baseline"] = str(EXAMPLE.parent / spec["baseline"])
    spec["window"].update(duration=f"{WINDOW_MS}ms", watermark_delay=f"{DELAY_MS}ms")
    spec["job"]["metrics_port"] = 0
    spec["drift"]["metrics"].update(ks={"threshold": "auto", "false_alarm_rate": 0.01},
                                    cvm={"threshold": "auto", "false_alarm_rate": 0.01})
    (tmp / "monitor.yaml").write_text(yaml.safe_dump(spec))

    stream = iris_stream.generate(seed=11, stage_size=STAGE_SIZE,
                                  rates=RATES)
    lines = [formats.encode(formats.THESIS, i, t, [row]) for i, t, row in
             zip(stream.ids.tolist(), stream.time_ms.tolist(), stream.instances.tolist())]
    requests = [(i, t, [row]) for i, t, row in zip(stream.ids.tolist(), stream.time_ms.tolist(),
                                                    stream.instances.tolist())]
    multi_rows = [requests[MULTI_AT][2][0], requests[MULTI_AT + 1][2][0]]
    requests[MULTI_AT] = (requests[MULTI_AT][0], requests[MULTI_AT][1], multi_rows)
    lines[MULTI_AT] = formats.encode(formats.THESIS, *requests[MULTI_AT])
    middle = int(stream.time_ms[len(stream) // 2])
    bad = _bad_lines(middle)
    late_line = formats.encode(formats.THESIS, "late-1", int(stream.time_ms[0]), [requests[0][2][0]])
    tail = list(bad.values()) + [late_line]
    (tmp / "input.jsonl").write_text("\n".join(lines + tail) + "\n")

    out = tmp / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "flink_job.cli", "run", "--config", str(tmp / "monitor.yaml"),
         "--input", str(tmp / "input.jsonl"), "--output", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def load(name):
        return [json.loads(line) for line in (out / name).read_text().splitlines()]

    return {
        "output": out, "spec_path": tmp / "monitor.yaml", "stdout": proc.stdout, "requests": requests, "bad": bad, "n_lines": len(lines) + len(tail),
        "first_bad_line": len(lines) + 1, "late_line": len(lines) + len(tail),
        "stats": load("stats.jsonl"), "outliers": load("outliers.jsonl"), "drift": load("drift.jsonl"),
        "dead": load("dead_letter.jsonl"), "covariance": load("covariance.jsonl"),
        "summary": json.loads((out / "summary.json").read_text()),
        "baseline": Baseline.load(spec["baseline"]), "features": tuple(spec["input"]["features"]),
    }
