"""`flink run -py flink_job/main.py` against the local standalone cluster: the same job, submitted
through Flink's own CLI, runs on the cluster's TaskManager and writes the same outputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from streams import iris

from devtools.processes import live_start_ms

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "iris" / "monitor.yaml"
WINDOW_MS = 5_000


def test_flink_run_submits_the_job_to_the_standalone_cluster(flink_cluster, tmp_path):
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["baseline"] = str(EXAMPLE.parent / spec["baseline"])
    spec["window"].update(duration=f"{WINDOW_MS}ms", watermark_delay="1s")
    spec["job"]["metrics_port"] = 0
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(spec))
    stream = iris.generate(seed=3, stage_size=80, rates=(40.0,) * 5, start_ms=live_start_ms())
    iris.write_jsonl(stream, tmp_path / "input.jsonl")
    out = tmp_path / "out"

    proc = flink_cluster.submit_python(
        ["--config", str(tmp_path / "monitor.yaml"), "--input", str(tmp_path / "input.jsonl"), "--output", str(out)],
        py_file=REPO / "flink_job" / "main.py", detached=False, timeout_s=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "mmon run: done." in proc.stdout

    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    windows = stream.time_ms // WINDOW_MS * WINDOW_MS
    for record in stats:
        j = spec["input"]["features"].index(record["feature"])
        x = stream.instances[windows == record["window_start"], j]
        assert record["count"] == len(x) and record["mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert len(stats) == len(np.unique(windows)) * len(spec["input"]["features"])
    assert not (out / "dead_letter.jsonl").read_text()
    drift = (out / "drift.jsonl").read_text().splitlines()
    assert len(drift) == len(stats) * len(spec["drift"]["metrics"])  # emit_all

    assert flink_cluster.overview()["jobs-finished"] >= 1  # it ran on the cluster, not in a local mini-cluster
