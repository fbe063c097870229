"""The session's embedded `mmon run`s (fixtures of conftest.py), each a real Flink mini-cluster on a small
staged stream plus a multi-instance request, one malformed line per dead-letter reason and a late line,
its outputs loaded:

- `run_job` (fixture ``embedded_run``): the Iris example, with the two-sample tests (ks, cvm) added to
  its five histogram metrics; shared by the job's end-to-end tests (test_job_embedded.py) and the
  report tests (test_report.py);
- `wide_job` (fixture ``wide_run``): a seeded synthetic 128-feature Gaussian model (`streams.wide`)
  whose drift stage moves its first 13 features, at parallelism 2 with the window state in 3 shards
  (test_job_embedded.py, and test_job_parallelism.py against the same input at parallelism 1);
- `penguins_job` (fixture ``penguins_run``): the penguins example (categorical features, missing values,
  the model's predictions) over the staged penguins stream, as it is (test_job_penguins.py, test_report.py).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from contract import formats, outputs
from contract.spec import Duration

from udfs.baseline import Baseline

from streams import iris, penguins, wide

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "iris" / "monitor.yaml"
PENGUINS_EXAMPLE = REPO / "examples" / "penguins" / "monitor.yaml"
PENGUINS_STAGE_SIZE = 1_500  # 75 s a stage at 20 requests/s: five 15 s windows, three or four wholly inside it
PENGUINS_SEED = 31
PENGUINS_WINDOW_MS = 15_000  # the example's window
WINDOW_MS = 5_000
DELAY_MS = 1_000
RATES = (32.0, 61.0, 30.0, 61.0, 32.0)  # requests/s per stage: the drift stage spans whole windows
STAGE_SIZE = 300
MULTI_AT = 100  # the multi-instance request replaces this stream position
TWO_SAMPLE = {name: {"threshold": "auto", "false_alarm_rate": 0.01} for name in ("ks", "cvm")}
WIDE_FEATURES, WIDE_INSTANCES, WIDE_SPAN_S, WIDE_WINDOW_MS = 128, 3_000, 60.0, 3_000  # 20 windows of 150
WIDE_JOB = {"parallelism": 2, "shards": 3}
RUN_TIMEOUT_S = 540


def _bad_lines(t_ms: int, row: list[float]) -> dict[str, str]:
    """One malformed line per dead-letter reason the reference decoder gives, keyed by that reason; ``row``
    is a valid instance of the model."""
    n = len(row)
    lines = {
        formats.BAD_JSON: "this is not json",
        formats.BAD_ENVELOPE: json.dumps({"type": "request", "id": "x1", "time": t_ms, "payload": [row]}),
        formats.NOT_REQUEST: json.dumps({"type": "response", "id": "x2", "time": t_ms, "payload": {"instances": [row]}}),
        formats.BAD_ID: json.dumps({"type": "request", "time": t_ms, "payload": {"instances": [row]}}),
        formats.BAD_TIME: json.dumps({"type": "request", "id": "x3", "payload": {"instances": [row]}}),
        formats.NO_INSTANCES: json.dumps({"type": "request", "id": "x4", "time": t_ms, "payload": {"instances": []}}),
        formats.BAD_INSTANCE: json.dumps({"type": "request", "id": "x5", "time": t_ms,
                                          "payload": {"instances": [[row[0], str(row[1]), *row[2:]]]}}),
        formats.WRONG_FEATURE_COUNT: json.dumps({"type": "request", "id": "x6", "time": t_ms,
                                                 "payload": {"instances": [row[:-1]]}}),
        formats.NON_FINITE: json.dumps({"type": "request", "id": "x7", "time": t_ms,
                                        "payload": {"instances": [[row[0], math.nan, *row[2:]]]}}),
    }
    for reason, line in lines.items():  # the fixture itself must agree with the reference decoder
        with pytest.raises(formats.FormatError) as err:
            formats.decode(formats.THESIS, line, n_features=n)
        assert err.value.reason == reason
    return lines


def _load(output: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (output / name).read_text().splitlines()]


def run_mmon(spec: dict, input_path: Path, tmp: Path) -> dict:
    """`mmon run` embedded once over ``input_path`` with ``spec`` (written to ``tmp/monitor.yaml``): its
    stdout and every output file loaded, with the spec's figures that the checks need."""
    spec_path, out = tmp / "monitor.yaml", tmp / "out"
    spec_path.write_text(yaml.safe_dump(spec))
    proc = subprocess.run(
        [sys.executable, "-m", "mmon.cli", "run", "--config", str(spec_path), "--input", str(input_path),
         "--output", str(out)], cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {
        "output": out, "spec": spec, "spec_path": spec_path, "input_path": input_path, "stdout": proc.stdout,
        **{kind: _load(out, name) for kind, name in outputs.FILE_NAMES.items()},
        "summary": json.loads((out / outputs.SUMMARY_FILE).read_text()),
        "baseline": Baseline.load(spec["baseline"]), "features": tuple(spec["input"]["features"]),
        "model": spec["model"]["name"], "window_ms": int(Duration.parse(spec["window"]["duration"], "duration")),
        "metrics": set(spec["drift"]["metrics"]), "sigma": float(spec["outliers"]["sigma"]),
    }


def staged_run(tmp: Path, spec: dict, stream: iris.StagedStream, drifted: tuple[str, ...]) -> dict:
    """`run_mmon` on ``stream`` with the extra lines of the module docstring appended. Adds to the run:
    ``requests`` ((id, time, rows) of each monitored line), ``stages`` (each one's stage), ``drifted`` (the
    features the drift stage moves), ``bad`` (line by reason) and ``expected_dead`` ({source: (reason, raw)})."""
    requests = [(i, t, [row]) for i, t, row in zip(stream.ids.tolist(), stream.time_ms.tolist(),
                                                   stream.instances.tolist())]
    multi_id, multi_t, [multi_row] = requests[MULTI_AT]
    requests[MULTI_AT] = (multi_id, multi_t, [multi_row, requests[MULTI_AT + 1][2][0]])
    lines = [formats.encode(formats.THESIS, *request) for request in requests]
    bad = _bad_lines(int(stream.time_ms[len(stream) // 2]), requests[0][2][0])
    late_line = formats.encode(formats.THESIS, "late-1", requests[0][1], requests[0][2])
    tail = [*bad.items(), ("late", late_line)]
    input_path = tmp / "input.jsonl"
    input_path.write_text("\n".join(lines + [line for _, line in tail]) + "\n")
    run = run_mmon(spec, input_path, tmp)
    expected_dead = {f"{input_path}:{len(lines) + k}": entry for k, entry in enumerate(tail, start=1)}
    return {**run, "requests": requests, "stages": stream.stage.tolist(), "drifted": drifted, "bad": bad,
            "expected_dead": expected_dead, "n_lines": len(lines) + len(tail)}


def run_job(tmp: Path) -> dict:
    """The Iris example's run (module docstring)."""
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["baseline"] = str(EXAMPLE.parent / spec["baseline"])
    spec["window"].update(duration=f"{WINDOW_MS}ms", watermark_delay=f"{DELAY_MS}ms")
    spec["job"]["metrics_port"] = 0
    spec["drift"]["metrics"].update(TWO_SAMPLE)
    stream = iris.generate(seed=11, stage_size=STAGE_SIZE, rates=RATES)
    return staged_run(tmp, spec, stream, tuple(spec["input"]["features"]))


def wide_job(tmp: Path) -> dict:
    """The 128-feature model's run (module docstring): `streams.wide`'s model, spec and stream, with
    short windows, every drift value emitted, the two-sample tests and `WIDE_JOB`."""
    model = wide.make_model(WIDE_FEATURES, seed=7, work=tmp, template=EXAMPLE, instances=WIDE_INSTANCES,
                            span_s=WIDE_SPAN_S)
    spec = yaml.safe_load(model.spec_path.read_text())
    spec["window"].update(duration=f"{WIDE_WINDOW_MS}ms", watermark_delay=f"{DELAY_MS}ms")
    spec["drift"]["emit_all"] = True
    spec["drift"]["metrics"].update(TWO_SAMPLE)
    spec["job"].update(WIDE_JOB)
    drifted = tuple(spec["input"]["features"][j] for j in wide.drifted_columns(WIDE_FEATURES))
    return staged_run(tmp, spec, model.stream, drifted)


def penguins_job(tmp: Path) -> dict:
    """The penguins example's run over `streams.penguins` (seed `PENGUINS_SEED`, stages of
    `PENGUINS_STAGE_SIZE`), in the example's input format; adds ``stream`` and ``expected`` (one row per
    instance: its window, every feature as sent, None where missing, and the prediction the join must give
    it, None where no response came)."""
    spec = yaml.safe_load(PENGUINS_EXAMPLE.read_text())
    spec["baseline"] = str(PENGUINS_EXAMPLE.parent / spec["baseline"])
    spec["job"]["metrics_port"] = 0
    stream = penguins.generate(seed=PENGUINS_SEED, stage_size=PENGUINS_STAGE_SIZE, format=spec["input"]["format"])
    input_path = tmp / "penguins.jsonl"
    penguins.write_jsonl(stream, input_path)
    run = run_mmon(spec, input_path, tmp)
    frame = pd.DataFrame([{name: row.get(name) for name in stream.feature_names} for row in stream.rows])
    frame["prediction"] = [p if answered else None for p, answered in zip(stream.predictions, stream.answered)]
    frame["window_start"] = stream.time_ms - stream.time_ms % PENGUINS_WINDOW_MS
    frame["stage"] = stream.stage
    return {**run, "stream": stream, "expected": frame}
