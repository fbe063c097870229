"""Per-window drift flags without control against alert episodes with it, on a seeded wide model (issue 24).

Makes the `streams.wide` model of ``--width`` Gaussian features (its baseline, spec and staged stream: normal /
10 % outliers / drift of the first 10 % of the features / 10 % outliers / normal, 15 s windows), runs the job
embedded on it twice, with ``drift.control.method: none`` (every test at its own 1 % threshold, the behaviour
before issue 24) and with the default ``bh`` at q = 0.05, and prints per stage the windows, the drift flags of
each run, the windows the model's verdict called drifted and the alert episodes opened.

    python examples/wide/control.py --width 1000 --out /tmp/wide-control
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

from contract import outputs
from contract.spec import load_spec
from streams import iris, wide

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "examples" / "iris" / "monitor.yaml"
METHODS = ("none", "bh")


def run_job(model: wide.Model, method: str, out: Path) -> Path:
    """The job embedded on the model's stream with ``drift.control.method`` ``method``; its output folder."""
    spec = yaml.safe_load(model.spec_path.read_text())
    spec["drift"]["control"] = {"method": method, "q": 0.05}
    spec_path = out / f"monitor-{method}.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    output = out / method
    subprocess.run([sys.executable, "-m", "mmon.cli", "run", "--config", str(spec_path), "--input",
                    str(model.stream_path), "--output", str(output)], check=True, timeout=1800)
    return output


def _records(output: Path, kind: str) -> list[dict]:
    path = output / outputs.FILE_NAMES[kind]
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def stage_of(model: wide.Model, start: int, end: int) -> str:
    """The stage a window lies in wholly ("across" when it spans a stage change)."""
    edges = iris.stage_boundaries_ms(model.stream)
    for index, kind in enumerate(iris.STAGE_KINDS):
        if edges[index] <= start and end <= edges[index + 1]:
            return f"{index + 1} {kind}"
    return "across stages"


def stage_rows(model: wide.Model, outputs_by_method: dict[str, Path]) -> list[dict]:
    """Per stage and method: windows, drift flags (over their threshold), discoveries, windows the model drifted."""
    rows: dict[str, Counter] = {}
    for method, output in outputs_by_method.items():
        for record in _records(output, outputs.MODEL_DRIFT):
            stage = rows.setdefault(stage_of(model, record["window_start"], record["window_end"]), Counter())
            stage[f"windows {method}"] += 1
            stage[f"model drift {method}"] += record["drift"]
        for record in _records(output, outputs.DRIFT):
            stage = rows[stage_of(model, record["window_start"], record["window_end"])]
            stage[f"flags {method}"] += bool(record["drift"])
            stage[f"discoveries {method}"] += bool(record.get("discovery"))
    return [{"stage": stage, **counts} for stage, counts in sorted(rows.items())]


def episode_counts(model: wide.Model, output: Path) -> Counter:
    """Episodes opened and left open at the end, by subject: the model; a drifted feature opening in the drift stage
    (or the window straddling its start); any other feature ("false": a calm feature, or a drifted one elsewhere)."""
    drifted = {f"f{j}" for j in wide.drifted_columns(model.width)}
    edges = iris.stage_boundaries_ms(model.stream)
    drift_stage = iris.STAGE_KINDS.index("drift")
    window_ms = load_spec(model.spec_path).window.duration
    counts, last = Counter(), {}
    for event in _records(output, outputs.ALERTS):
        in_stage = edges[drift_stage] - window_ms < event["first_window"] < edges[drift_stage + 1]
        subject = ("model" if event["scope"] == "model"
                   else "drifted" if event["feature"] in drifted and in_stage else "false")
        counts[f"opened {subject}"] += event["event"] == "open"
        last[(event["scope"], event["feature"])] = event["event"]
    counts["open at the end"] = sum(event != "close" for event in last.values())
    return counts


def tables(stages: list[dict], episodes: dict[str, Counter]) -> str:
    """Per stage the flags per window without control against the discoveries per window with it, and the
    windows the model's verdict called drifted; then the episodes of each run."""
    lines = ["| stage | windows | flags per window, none | discoveries per window, bh | model drifted, none | "
             "model drifted, bh |", "|---|---:|---:|---:|---:|---:|"]
    for r in stages:
        windows = r.get("windows bh", 0)
        lines.append(f"| {r['stage']} | {windows} | {r.get('flags none', 0) / max(windows, 1):.1f} | "
                     f"{r.get('discoveries bh', 0) / max(windows, 1):.1f} | {r.get('model drift none', 0)} | "
                     f"{r.get('model drift bh', 0)} |")
    lines += ["", "| control | drift flags or discoveries in all | episodes opened: model / drifted features in the "
                  "drift stage / others | still open at the end |", "|---|---:|---|---:|"]
    for method, what in zip(METHODS, ("flags", "discoveries")):
        c = episodes[method]
        total = sum(r.get(f"{what} {method}", 0) for r in stages)
        lines.append(f"| {method} | {total:,} | {c['opened model']} / {c['opened drifted']} / {c['opened false']} | "
                     f"{c['open at the end']} |")
    return "\n".join(lines)


def summarize(width: int, seed: int, out: Path) -> str:
    """The tables of a finished comparison in ``out`` (the model is made again, seeded: the same stream)."""
    model = wide.make_model(width, seed, out, TEMPLATE)
    runs = {method: out / method for method in METHODS}
    return tables(stage_rows(model, runs), {method: episode_counts(model, output) for method, output in runs.items()})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=1000, help="features (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the model and its stream (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("out/wide-control"), help="work and output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    model = wide.make_model(args.width, args.seed, args.out, TEMPLATE)
    runs = {method: run_job(model, method, args.out) for method in METHODS}
    stages, episodes = stage_rows(model, runs), {method: episode_counts(model, output) for method, output in runs.items()}
    (args.out / "comparison.json").write_text(json.dumps({"stages": stages, "episodes": episodes}, indent=1) + "\n")
    print(tables(stages, episodes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
