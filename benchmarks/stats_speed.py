"""Micro-benchmark of the numeric core's window statistics: feature values/s on one core, by width.

A window is what the Flink job does per shard: a fresh accumulator, ``--sub-batches`` updates with an
(instances x features) sub-batch each, then every feature's ``result()`` and histogram counts. Two ways
to do it, timed in the same run on the same data:

* ``block``: one `udfs.stats.BlockStats` for all the features (one vectorised pass per sub-batch);
* ``loop``: one one-column `udfs.stats.BlockStats` per feature, each updated with its column (the old wiring).

Rates are feature values per second of this process's CPU time (windows x sub-batches x instances x
width / CPU seconds; numpy and the sketches run on one thread, so this is one core's rate, and other
load on a shared machine does not count against it; ``block wall`` is the same on the wall clock),
best of ``--repeat`` runs of enough windows to reach ``--values`` feature values. ``state kB`` is the pickled size of the block at the window's end (what Flink keeps)
and ``state ms`` the time to pickle and unpickle it once.

    python -m benchmarks.stats_speed [--instances 3000] [--widths 4 32 128 512 1000] [--values 3000000]
"""
from __future__ import annotations

import argparse
import pickle
import time
from typing import Callable

import numpy as np

from udfs.histogram import equal_width_edges
from udfs.stats import BlockStats

BINS = 20


def baseline_edges(width: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Per-feature edges over different ranges, like a baseline of ``width`` features."""
    centres = rng.normal(0.0, 10.0, width)
    spreads = rng.uniform(0.5, 5.0, width)
    return [equal_width_edges(c - 3 * s, c + 3 * s, BINS) for c, s in zip(centres, spreads)]


def sub_batches(edges: list[np.ndarray], instances: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` row-major (instances x features) float64 sub-batches centred on the features' edges."""
    centres = np.array([(e[0] + e[-1]) / 2 for e in edges])
    spreads = np.array([(e[-1] - e[0]) / 6 for e in edges])
    return [rng.normal(size=(instances, len(edges))) * spreads + centres for _ in range(count)]


def block_window(edges: list[np.ndarray], batches: list[np.ndarray]) -> BlockStats:
    block = BlockStats(edges)
    for batch in batches:
        block.update(batch)
    block.results()
    block.histogram_counts()
    return block


def loop_window(edges: list[np.ndarray], batches: list[np.ndarray]) -> None:
    features = [BlockStats([e]) for e in edges]
    for batch in batches:
        for j, stats in enumerate(features):
            stats.update(batch[:, j:j + 1])
    for stats in features:
        stats.results()
        stats.histogram_counts()


def best_seconds(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the run with the least CPU time."""
    best = (np.inf, np.inf)
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        run()
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    return best


def measure(width: int, instances: int, n_batches: int, repeat: int, target_values: int,
            rng: np.random.Generator) -> dict:
    edges = baseline_edges(width, rng)
    batches = sub_batches(edges, instances, n_batches, rng)
    windows = max(1, round(target_values / (n_batches * instances * width)))
    values = windows * n_batches * instances * width
    block_s, block_wall = best_seconds(lambda: [block_window(edges, batches) for _ in range(windows)], repeat)
    loop_s, _ = best_seconds(lambda: [loop_window(edges, batches) for _ in range(windows)], repeat)
    block = block_window(edges, batches)
    result_s, _ = best_seconds(block.results, repeat)
    state_s, _ = best_seconds(lambda: pickle.loads(pickle.dumps(block)), repeat)
    return {"width": width, "block": values / block_s, "block_wall": values / block_wall, "loop": values / loop_s,
            "ratio": loop_s / block_s, "result_ms": 1e3 * result_s, "state_kb": len(pickle.dumps(block)) / 1e3,
            "state_ms": 1e3 * state_s}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[4, 32, 128, 512, 1000])
    parser.add_argument("--instances", type=int, default=3000, help="instances per sub-batch")
    parser.add_argument("--sub-batches", type=int, default=3, help="sub-batches per window (15 s / 5 s)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--values", type=int, default=3_000_000, help="feature values per timed run (at least a window)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{args.sub_batches} sub-batches of {args.instances} instances per window; feature values per CPU second "
          f"(one core), best of {args.repeat}")
    print(f"{'features':>8} {'block values/s':>15} {'block wall':>11} {'loop values/s':>14} {'block/loop':>10} "
          f"{'results() ms':>13} {'state kB':>9} {'state ms':>9}")
    for width in args.widths:
        row = measure(width, args.instances, args.sub_batches, args.repeat, args.values, rng)
        print(f"{row['width']:>8} {row['block']:>15,.0f} {row['block_wall']:>11,.0f} {row['loop']:>14,.0f} {row['ratio']:>9.1f}x "
              f"{row['result_ms']:>13.1f} {row['state_kb']:>9,.0f} {row['state_ms']:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
