"""`mmon bench --profile cardinality`: the peak memory of one window full of distinct long categorical values.

A model of one categorical feature (a baseline of `CATEGORIES` values), and a stream whose requests each
carry a value the baseline never saw, every one distinct and `VALUE_CHARS` characters long (the longest a
categorical value may be), all in one `WINDOW_S` window: the worst case for the router's window buffer,
which keeps each distinct value of a window as a label. Two cases (issue 20): 100,000 CJK values and
150,000 ASCII ones. Each runs embedded (``mmon run --input``) while `benchmarks.resources.ProcessTreeSampler` sums the resident
memory of the whole process tree (client, JVM, Python workers); the target is a peak under 2 GB.

Writes ``results.json`` and ``report.md`` into ``--out`` and prints the figures.
"""
from __future__ import annotations

import argparse
import json
import shlex
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import yaml

from contract import formats

from udfs.baseline import Baseline

from benchmarks import harness

VALUE_CHARS = 1024
WINDOW_S = 15
CATEGORIES = 20
TARGET_MB = 2048
CASES = {"cjk": (100_000, (0x4E00, 0x9FA5)), "ascii": (150_000, (0x61, 0x7B))}
"""Case -> (distinct values, the code-point range [low, high) of their characters)."""
FEATURE = "value"
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a window start
CHUNK = 1_000


def distinct_values(n: int, alphabet: tuple[int, int], seed: int):
    """``n`` distinct strings of `VALUE_CHARS` characters: the index in six digits, then seeded characters of
    ``alphabet``; yielded in chunks (a chunk's characters are drawn as one array and decoded at once)."""
    rng = np.random.default_rng(seed)
    for first in range(0, n, CHUNK):
        rows = min(CHUNK, n - first)
        codes = rng.integers(*alphabet, size=(rows, VALUE_CHARS - 6), dtype=np.uint32)
        text = codes.astype("<u4").tobytes().decode("utf-32-le")
        width = VALUE_CHARS - 6
        yield [f"{first + i:06d}" + text[i * width:(i + 1) * width] for i in range(rows)]


def write_stream(path: Path, n: int, alphabet: tuple[int, int], seed: int) -> int:
    """One request a value, spread over one window; returns the file's size in bytes."""
    with open(path, "w", encoding="utf-8") as out:
        for chunk_start, chunk in zip(range(0, n, CHUNK), distinct_values(n, alphabet, seed)):
            for i, value in enumerate(chunk, start=chunk_start):
                time_ms = START_MS + i * WINDOW_S * 1000 // n
                out.write(formats.encode(formats.THESIS, f"r{i}", time_ms, [[value]]) + "\n")
    return path.stat().st_size


def write_model(work: Path) -> Path:
    """The baseline (one categorical column of `CATEGORIES` values) and the spec; returns the spec's path."""
    training = work / "training.csv"
    training.write_text(FEATURE + "\n" + "".join(f"c{i % CATEGORIES:02d}\n" for i in range(10 * CATEGORIES)))
    Baseline.from_csv(training, categorical=[FEATURE]).save(work / "baseline.json")
    spec = {"model": {"name": "cardinality"}, "baseline": str(work / "baseline.json"),
            "input": {"format": formats.THESIS, "features": [{"name": FEATURE, "type": "categorical"}]},
            "window": {"duration": f"{WINDOW_S}s"}, "job": {"metrics_port": 0}}
    path = work / "monitor.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run_case(name: str, spec_path: Path, work: Path, seed: int, timeout_s: float) -> dict:
    """One case embedded: its peak RSS, wall time and the window's figures (None where the run did not end)."""
    n, alphabet = CASES[name]
    stream = work / f"{name}.jsonl"
    size = write_stream(stream, n, alphabet, seed)
    output = work / f"out-{name}"
    command = harness.mmon("run", "--config", str(spec_path), "--input", str(stream), "--output", str(output))
    started = time.monotonic()
    with harness.sampled(f"embedded job ({name})", command, work / f"{name}.log") as (job, sampler):
        while job.alive() and time.monotonic() - started < timeout_s:
            time.sleep(0.5)
        finished = not job.alive() and job.process.returncode == 0
        seconds = time.monotonic() - started
    figures = {"case": name, "values": n, "value_chars": VALUE_CHARS, "input_mb": size / 2**20,
               "peak_rss_mb": sampler.peak_rss_mb, "seconds": seconds, "finished": finished}
    if finished:
        figures.update(_window(output, n))
    return figures


def _window(output: Path, n: int) -> dict:
    """The summary's accounting and the window's categorical record."""
    summary = json.loads((output / "summary.json").read_text())
    stats = [json.loads(line) for line in (output / "stats.jsonl").read_text().splitlines()]
    return {"accounted": summary["accounted"], "instances": summary["instances"], "windows": len(stats),
            "distinct": [record["distinct"] for record in stats], "unseen": [record["unseen"] for record in stats],
            "exact_count": sum(record["count"] for record in stats) == n}


def report_lines(results: dict) -> list[str]:
    lines = ["# High-cardinality windows: peak memory", "", f"Command: `{results['command_line']}`", "",
             f"One categorical feature; every request a distinct value of {VALUE_CHARS:,} characters that the baseline "
             f"never saw, all in one {WINDOW_S} s window; embedded; peak RSS of the whole process tree "
             f"(target < {TARGET_MB:,} MB).", "",
             "| case | values | input (MB) | peak RSS (MB) | seconds | finished | instances | distinct | accounted |",
             "|---|---:|---:|---:|---:|---|---:|---|---|"]
    for row in results["rows"]:
        lines.append(f"| {row['case']} | {row['values']:,} | {row['input_mb']:,.0f} | {row['peak_rss_mb']:,.0f} | "
                     f"{row['seconds']:.0f} | {'yes' if row['finished'] else 'no'} | {row.get('instances', 'n/a')} | "
                     f"{row.get('distinct', 'n/a')} | {row.get('accounted', 'n/a')} |")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmon bench --profile cardinality", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Peak RSS of an embedded run whose one window holds 100,000 distinct 1,024-character CJK "
                    "values (case cjk) or 150,000 distinct ASCII ones (case ascii); writes results.json and report.md.")
    parser.add_argument("--profile", choices=("cardinality",), default="cardinality")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the values")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds a case may run before it is stopped")
    parser.add_argument("--out", type=Path, default=Path("bench-out/cardinality"), help="output directory")
    parser.add_argument("--work", type=Path, help="folder for the streams and outputs (default: a temporary one)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows = []
    with ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mmon-cardinality-")))
        work.mkdir(parents=True, exist_ok=True)
        spec_path = write_model(work)
        for name in args.cases.split(","):
            rows.append(run_case(name, spec_path, work, args.seed, args.timeout))
            print(f"cardinality: {name}: peak RSS {rows[-1]['peak_rss_mb']:,.0f} MB in {rows[-1]['seconds']:.0f} s, "
                  f"{'finished' if rows[-1]['finished'] else 'did not finish'}", flush=True)
    results = {"rows": rows, "command_line": shlex.join(["mmon", "bench", *argv]), "seed": args.seed,
               "seconds": time.monotonic() - started}
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "report.md").write_text("\n".join(report_lines(results)) + "\n")
    print("\n".join(report_lines(results)))
    return 0 if all(row["finished"] and row["peak_rss_mb"] < TARGET_MB for row in rows) else 1
