"""Synthetic wide models: a seeded Gaussian model of any width, its baseline, monitor spec and staged stream.

For a width, a training set of `TRAINING_ROWS` rows (feature j: mean and sd drawn from the seed; ten
significant digits, so without ties, and the features share one calibration null), its baseline as
`mmon baseline --calibrate` makes it (its default drift thresholds calibrated and cached beside it), a monitor spec from a template (the Iris example's, with ``emit_all: false``
and covariance/correlation off), and the staged stream of `streams.iris` drawn from it (normal /
10 % outliers / drift / 10 % outliers / normal), whose drift stage moves only the first `DRIFTED_SHARE`
of the features (`drifted_columns`, the known subset).

Every width's stream holds about `VALUES_PER_STREAM` feature values (instances = values / width, within
`INSTANCES`), spread over the same `SPAN_S` of event time, so every stream has the same number of windows
and wider models have fewer instances per window. Used by ``mmon bench --profile wide`` and the tests'
128-feature run.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np
import yaml

from contract.spec import load_spec, spec_to_dict

from udfs import calibration_cache
from udfs.baseline import Baseline

from streams import iris

TRAINING_ROWS = 2000
DRIFTED_SHARE = 0.1
VALUES_PER_STREAM = 10_000_000
INSTANCES = (20_000, 250_000)
SPAN_S = 540.0  # 36 windows of 15 s


@dataclasses.dataclass(frozen=True)
class Model:
    """One width's synthetic model: its files and stream."""

    width: int
    spec_path: Path
    stream_path: Path
    stream: iris.StagedStream


def instances_for(width: int) -> int:
    """Instances of the width's stream: `VALUES_PER_STREAM` values, within `INSTANCES`, a multiple of 5 stages."""
    n = int(np.clip(VALUES_PER_STREAM // width, *INSTANCES))
    return n - n % len(iris.STAGE_KINDS)


def make_model(width: int, seed: int, work: Path, template: Path, instances: Optional[int] = None,
               span_s: float = SPAN_S) -> Model:
    """The width's training CSV, baseline, spec and stream under ``work/<width>``: ``instances`` requests
    (default `instances_for`) over ``span_s`` seconds of event time."""
    folder = work / f"w{width}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, width])
    names = [f"f{j}" for j in range(width)]
    training = rng.normal(rng.uniform(-5, 5, width), rng.uniform(0.5, 3, width), (TRAINING_ROWS, width))
    csv_path = folder / "training.csv"
    np.savetxt(csv_path, training, delimiter=",", header=",".join(names), comments="", fmt="%.10g")
    baseline = Baseline.from_csv(csv_path)
    baseline.save(folder / "baseline.json")
    calibration_cache.calibrate_defaults(baseline, folder / "baseline.json")  # as `mmon baseline --calibrate`
    spec = _spec_document(template, width, folder / "baseline.json")
    spec_path = folder / "monitor.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    stage_size = (instances or instances_for(width)) // len(iris.STAGE_KINDS)
    rates = tuple(stage_size * len(iris.STAGE_KINDS) / span_s for _ in iris.STAGE_KINDS)
    stream = iris.generate(seed=seed, stage_size=stage_size, rates=rates, training_csv=csv_path, label="",
                                  drifted=drifted_columns(width))
    stream_path = folder / "stream.jsonl"
    iris.write_jsonl(stream, stream_path)
    return Model(width, spec_path, stream_path, stream)


def _spec_document(template: Path, width: int, baseline: Path) -> dict:
    spec = spec_to_dict(load_spec(template))
    spec["model"]["name"] = f"wide{width}"
    spec["input"]["features"] = [f"f{j}" for j in range(width)]
    spec["baseline"] = str(baseline.resolve())
    spec["stats"].update(covariance=False, correlation=False)
    spec["drift"]["emit_all"] = False
    spec["job"]["metrics_port"] = 0
    return spec


def drifted_columns(width: int) -> list[int]:
    """The columns the drift stage moves: the first `DRIFTED_SHARE` of them (at least one)."""
    return list(range(max(1, int(np.ceil(DRIFTED_SHARE * width)))))
