"""The canary penguins stream (issue 22): a stable version and a canary of the penguin classifier side by side.

Four stages of `stage_size` requests, one instance each, drawn like the penguins stream's ``normal`` stage
(`streams.penguins`: training rows with replacement, measurements jittered, the training data's gaps):

1. ``stable``   every request served by the stable version (KServe's ``default`` endpoint);
2. ``canary``   a share `CANARY_SHARE` of the requests, chosen at random, served by the canary instead;
3. ``canary``   as stage 2;
4. ``stable``   as stage 1.

The stable version answers with the example's model (`streams.penguin_model`). The canary (``canary="drops"``,
the default) is that model with a bug: it never predicts `DROPPED_CLASS` and answers `REPLACEMENT` instead, so its
prediction column differs from the stable version's (no Chinstrap at all) and its accuracy falls by about the
Chinstraps' share (about 0.2); the inputs of both versions come from one distribution. ``canary="identical"``
serves the stable model on the canary endpoint too: two versions of one model, which a comparison must not flag
beyond its false-alarm rate.

Every message carries its version (the encoders' ``version``, `contract.formats.version_key`): a kserve-v1
CloudEvent its ``endpoint`` extension attribute (the value KServe's payload logger sets, ``default`` or ``canary``),
a thesis message a top-level ``version``, an OIP v2 message ``model_version``. Each request's response follows it by ``1 + Exp(LATENCY_MS)`` ms, and its label
(the drawn training row's species) by a delay uniform in [`LABEL_DELAY_MIN_MS`, `LABEL_DELAY_MAX_MS`) of event
time; no faults (every request answered and labelled). Arrivals are a Poisson process at ``rate`` requests per
second. One seed gives the same data in every format.

API: `generate` -> `CanaryStream`; `write_example`. CLI: ``mmon stream canary -o canary.jsonl``.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from contract import formats

from streams import penguin_model, penguins

FEATURES = penguin_model.FEATURES
STAGE_KINDS = ("stable", "canary", "canary", "stable")
STABLE, CANARY = "default", "canary"  # KServe's endpoint attribute of the two versions
CANARY_SHARE = 0.3
CANARY_MODELS = ("drops", "identical")
DROPPED_CLASS, REPLACEMENT = "Chinstrap", "Adelie"
DEFAULT_STAGE_SIZE = 1_500
DEFAULT_RATE = 20.0  # requests per second: 75 s a stage, 5 windows of 15 s
DEFAULT_SEED = 2026
DEFAULT_START_MS = penguins.DEFAULT_START_MS
LATENCY_MS = 20.0
LABEL_DELAY_MIN_MS, LABEL_DELAY_MAX_MS = 1_000, 20_000


@dataclass(frozen=True)
class CanaryStream:
    """The requests in time order (arrays of length N) and the log lines in arrival order."""

    ids: np.ndarray  # str
    time_ms: np.ndarray  # int64, non-decreasing
    stage: np.ndarray  # int8, 1..4
    version: np.ndarray  # object: STABLE or CANARY
    predictions: tuple  # str: the serving version's answer
    truth: tuple  # str: the true species
    lines: tuple  # str, no newline
    format: str
    canary: str  # a CANARY_MODELS entry

    def __len__(self) -> int:
        return len(self.ids)

    def accuracy(self, version: str, mask=None) -> float:
        """The share of ``version``'s requests (within ``mask``) answered right."""
        chosen = (self.version == version) & (True if mask is None else mask)
        right = np.array(self.predictions, dtype=object)[chosen] == np.array(self.truth, dtype=object)[chosen]
        return float(right.mean())


def canary_predictions(predictions, canary: str) -> list[str]:
    """What the canary answers where the stable model answers ``predictions``."""
    if canary not in CANARY_MODELS:
        raise ValueError(f"unknown canary {canary!r}; expected one of {', '.join(CANARY_MODELS)}")
    if canary == "identical":
        return list(predictions)
    return [REPLACEMENT if p == DROPPED_CLASS else p for p in predictions]


def generate(seed: int = DEFAULT_SEED, stage_size: int = DEFAULT_STAGE_SIZE, rate: float = DEFAULT_RATE,
             start_ms: int = DEFAULT_START_MS, format: str = formats.KSERVE_V1, canary: str = "drops",
             training_csv: Union[str, Path] = penguins.DEFAULT_TRAINING,
             model_json: Union[str, Path] = penguins.DEFAULT_MODEL) -> CanaryStream:
    """The canary stream for ``seed``. Raises ValueError for bad arguments."""
    if stage_size < 1 or not rate > 0:
        raise ValueError(f"need a positive stage size and rate, got {stage_size} and {rate}")
    if format not in formats.FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(formats.FORMATS)}")
    data = penguins._load_training(Path(training_csv))
    model = penguin_model.load(Path(model_json))
    rng = np.random.Generator(np.random.PCG64(seed))
    rows, picks = [], []
    for _ in STAGE_KINDS:
        stage_rows, _, stage_picks = penguins._stage_rows(rng, data, "normal", stage_size)
        rows += stage_rows
        picks.append(stage_picks)
    n = len(rows)
    time_ms = int(start_ms) + np.floor(np.cumsum(rng.exponential(1000.0 / rate, size=n))).astype(np.int64)
    stage = np.repeat(np.arange(1, len(STAGE_KINDS) + 1, dtype=np.int8), stage_size)
    on_canary = np.isin(stage, [i + 1 for i, kind in enumerate(STAGE_KINDS) if kind == "canary"])
    version = np.where(on_canary & (rng.random(n) < CANARY_SHARE), CANARY, STABLE).astype(object)
    stable = penguin_model.predict(model, rows)
    predictions = tuple(np.where(version == CANARY, canary_predictions(stable, canary), stable).tolist())
    truth = tuple(str(s) for s in data.species[np.concatenate(picks)])
    latency = 1 + np.floor(rng.exponential(LATENCY_MS, size=n)).astype(np.int64)
    label_delay = rng.integers(LABEL_DELAY_MIN_MS, LABEL_DELAY_MAX_MS, size=n)
    ids = np.array([f"req-{i:09d}" for i in range(n)])
    lines = _lines(format, ids, time_ms, rows, version, predictions, truth, time_ms + latency, time_ms + label_delay)
    return CanaryStream(ids=ids, time_ms=time_ms, stage=stage, version=version, predictions=predictions, truth=truth,
                        lines=lines, format=format, canary=canary)


def _lines(format: str, ids, time_ms, rows, version, predictions, truth, response_ms, label_ms) -> tuple:
    """Requests, responses and labels, each naming its version, in arrival order (ties: request, response, label)."""
    schema = formats.Schema(features=tuple(FEATURES), types=tuple(
        formats.CATEGORICAL if name in penguin_model.CATEGORICAL else formats.NUMERIC for name in FEATURES),
        output_name=penguins.OUTPUT, output_type=formats.CATEGORICAL)
    source = penguins.SOURCE
    events = []
    for i, request_id in enumerate(ids.tolist()):
        tagged = dict(source=source, version=str(version[i]))
        messages = (formats.encode(format, request_id, int(time_ms[i]), [rows[i]], schema=schema, **tagged),
                    formats.encode_response(format, request_id, int(response_ms[i]), [predictions[i]], **tagged),
                    formats.encode_label(format, request_id, int(label_ms[i]), [truth[i]], **tagged))
        times = (time_ms[i], response_ms[i], label_ms[i])
        events += [(int(t), rank, i, line) for rank, (t, line) in enumerate(zip(times, messages))]
    events.sort(key=lambda event: event[:3])
    return tuple(event[3] for event in events)


def write_jsonl(stream: CanaryStream, path: Union[str, Path]) -> None:
    """The stream's lines, one per line; '-' means stdout."""
    penguins.write_jsonl(stream, path)


def write_example(path: Path, format: str, seed=None, stage_size=None, rate_scale: float = 1.0,
                  canary: str = "drops") -> str:
    """The canary example's stream (defaults unless given) in ``format`` at ``path``; says what it wrote."""
    stream = generate(seed=DEFAULT_SEED if seed is None else seed, stage_size=stage_size or DEFAULT_STAGE_SIZE,
                      rate=DEFAULT_RATE * rate_scale, format=format, canary=canary)
    write_jsonl(stream, path)
    return (f"the canary penguins stream: {len(stream):,} requests, {int((stream.version == CANARY).sum()):,} of "
            f"them on the {canary} canary, with their responses and labels")


OPTIONS = {
    ("-o", "--output"): dict(default="canary_stream.jsonl", help="JSON-lines output file, '-' for stdout"),
    ("--canary",): dict(choices=CANARY_MODELS, default="drops",
                        help=f"drops: never predicts {DROPPED_CLASS}; identical: the stable model"),
    ("--format",): dict(choices=formats.FORMATS, default=formats.KSERVE_V1, help="wire format of each line"),
    ("--seed",): dict(type=int, default=DEFAULT_SEED, help="random seed"),
    ("--stage-size",): dict(type=int, default=DEFAULT_STAGE_SIZE, help="requests per stage"),
    ("--rate",): dict(type=float, default=DEFAULT_RATE, help="Poisson arrival rate in requests/s"),
}
"""``mmon stream canary``'s options, each with its default."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mmon stream canary",
        description="Generate the canary penguins stream (stable / 30 percent canary / 30 percent canary / stable), responses "
                    "and labels interleaved, each message naming its version (kserve-v1: the endpoint attribute).")
    for flags, options in OPTIONS.items():
        parser.add_argument(*flags, **{**options, "help": options["help"] + " (default: %(default)s)"})
    args = parser.parse_args(argv)
    try:
        stream = generate(seed=args.seed, stage_size=args.stage_size, rate=args.rate, format=args.format,
                          canary=args.canary)
        write_jsonl(stream, args.output)
    except (ValueError, OSError) as exc:
        print(f"mmon stream: error: {exc}", file=sys.stderr)
        return 1
    print(f"mmon stream: {len(stream)} penguin requests, {int((stream.version == CANARY).sum())} on the "
          f"{args.canary} canary ({args.format}, seed {args.seed}) -> {args.output}", file=sys.stderr)
    return 0
