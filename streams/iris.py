"""The staged Iris inference stream of the thesis's experiment (ch. 5.4), reproducible to the byte.

Five stages of `stage_size` requests, one instance each:

1. normal   2. normal with 10% outliers   3. drift   4. normal with 10% outliers   5. normal

- normal: a training row drawn with replacement plus Gaussian jitter N(0, (0.05 σ_j)²) per feature j
  (a kernel-density sample, so it matches the baseline histograms);
- outlier: a normal instance whose feature j, chosen uniformly, is replaced by μ_j ± U(3.5, 6) σ_j,
  the sign at random; exactly round(0.1 n) positions of the stage, chosen without replacement;
- drift: every feature (or the features `drifted` names) of a normal instance mapped to
  μ_j + 1.0 σ_j + 1.5 (x_j − μ_j), so the stage's mean sits one σ higher and its spread is 1.5 times wider;
- arrivals: a Poisson process per stage (exponential gaps of mean 1000 / rate ms), the stages back to
  back from `start_ms`; times are floored to whole milliseconds.

μ and σ (sample std) come from `udfs.baseline.Baseline`. All randomness comes from one
``numpy.random.Generator(PCG64(seed))`` drawn in a fixed order, and values are rounded to `DECIMALS`
places before they are written, so one seed gives one byte string.

API: `generate` -> `StagedStream`; `write_jsonl`, `write_labels`, `stage_boundaries_ms`.
CLI: ``mmon stream iris -o stream.jsonl`` (see ``mmon stream iris --help``).
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Optional, Sequence, Union

import numpy as np

from contract import formats

from udfs.baseline import Baseline

STAGE_KINDS = ("normal", "outliers", "drift", "outliers", "normal")
DEFAULT_RATES = (64.0, 122.0, 177.0, 122.0, 64.0)  # the thesis's measured requests per second
DEFAULT_STAGE_SIZE = 50_000
DEFAULT_SEED = 2021
DEFAULT_START_MS = 1_800_000_000_000  # 2027-01-15T08:00:00Z: a constant, so the default output is fixed
DEFAULT_LABEL = "species"
SOURCE = "mmon/iris"  # the kserve-v1 CloudEvents' source: the generated stream names its model
DEFAULT_TRAINING = Path(__file__).resolve().parent.parent / "examples" / "iris" / "iris_training.csv"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")  # the default training CSV's features

DECIMALS = 4
JITTER_SIGMAS = 0.05
OUTLIER_SHARE = 0.10
OUTLIER_SIGMAS = (3.5, 6.0)
DRIFT_SHIFT_SIGMAS = 1.0
DRIFT_SCALE = 1.5


@dataclass(frozen=True)
class StagedStream:
    """One row per request, in request-time order."""

    ids: np.ndarray  # str, "req-000000123"
    time_ms: np.ndarray  # int64 epoch milliseconds, non-decreasing
    instances: np.ndarray  # float64, n x k, rounded to DECIMALS
    stage: np.ndarray  # int8, 1..5
    outlier_feature: np.ndarray  # int8, index of the replaced feature, -1 for none
    feature_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class _Training:
    rows: np.ndarray  # n x k
    mean: np.ndarray  # k
    std: np.ndarray  # k
    feature_names: tuple[str, ...]


def _load_training(path: Path, label: str) -> _Training:
    """The training rows and their baseline mean/std; `label` is dropped if it is a column."""
    if not path.is_file():
        raise ValueError(f"training CSV not found: {path}")
    with path.open(newline="") as fh:
        header = [name.strip() for name in next(csv.reader(fh), [])]
    features = tuple(name for name in header if name != label)
    if not features:
        raise ValueError(f"{path}: no feature columns")
    columns = [header.index(name) for name in features]
    try:
        rows = np.loadtxt(path, delimiter=",", skiprows=1, usecols=columns, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: feature columns must be numeric ({exc})") from None
    baseline = Baseline.from_csv(path, features=list(features))
    mean = np.array([baseline.features[name].mean for name in features])
    std = np.array([baseline.features[name].std for name in features])
    return _Training(rows=rows, mean=mean, std=std, feature_names=features)


def _normal(rng: np.random.Generator, train: _Training, n: int) -> np.ndarray:
    picks = rng.integers(0, len(train.rows), size=n)
    jitter = rng.standard_normal((n, len(train.mean))) * (JITTER_SIGMAS * train.std)
    return train.rows[picks] + jitter


def _drift(train: _Training, x: np.ndarray, columns: Optional[Sequence[int]]) -> np.ndarray:
    """``x`` with ``columns`` (all when None) drifted."""
    drifted = train.mean + DRIFT_SHIFT_SIGMAS * train.std + DRIFT_SCALE * (x - train.mean)
    if columns is None:
        return drifted
    x[:, columns] = drifted[:, columns]
    return x


def _inject_outliers(rng: np.random.Generator, train: _Training, x: np.ndarray) -> np.ndarray:
    """Replace one feature of exactly round(OUTLIER_SHARE n) rows in place; return per-row feature or -1."""
    n, k = x.shape
    count = int(round(OUTLIER_SHARE * n))
    rows = np.sort(rng.choice(n, size=count, replace=False))
    feature = rng.integers(0, k, size=count)
    magnitude = rng.uniform(*OUTLIER_SIGMAS, size=count)
    sign = rng.choice(np.array([-1.0, 1.0]), size=count)
    x[rows, feature] = train.mean[feature] + sign * magnitude * train.std[feature]
    labels = np.full(n, -1, dtype=np.int8)
    labels[rows] = feature
    return labels


def _stage(rng: np.random.Generator, train: _Training, kind: str, n: int,
           drifted: Optional[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    x = _normal(rng, train, n)
    if kind == "drift":
        x = _drift(train, x, drifted)
    labels = _inject_outliers(rng, train, x) if kind == "outliers" else np.full(n, -1, dtype=np.int8)
    return x, labels


def generate(seed: int = DEFAULT_SEED, stage_size: int = DEFAULT_STAGE_SIZE,
             rates: Sequence[float] = DEFAULT_RATES, start_ms: int = DEFAULT_START_MS,
             training_csv: Union[str, Path] = DEFAULT_TRAINING, label: str = DEFAULT_LABEL,
             drifted: Optional[Sequence[int]] = None) -> StagedStream:
    """The staged stream for `seed`; ``drifted``: the column indices the drift stage moves (default: all).
    Raises ValueError for bad arguments or an unreadable CSV."""
    if len(rates) != len(STAGE_KINDS) or min(rates) <= 0:
        raise ValueError(f"need {len(STAGE_KINDS)} positive rates, got {list(rates)}")
    if stage_size < 1:
        raise ValueError(f"stage size must be positive, got {stage_size}")
    train = _load_training(Path(training_csv), label)
    rng = np.random.Generator(np.random.PCG64(seed))
    parts, labels, gaps = [], [], []
    for kind, rate in zip(STAGE_KINDS, rates):
        x, outlier_feature = _stage(rng, train, kind, stage_size, drifted)
        parts.append(x)
        labels.append(outlier_feature)
        gaps.append(rng.exponential(1000.0 / rate, size=stage_size))
    n = stage_size * len(STAGE_KINDS)
    offsets_ms = np.floor(np.cumsum(np.concatenate(gaps))).astype(np.int64)
    return StagedStream(
        ids=np.array([f"req-{i:09d}" for i in range(n)]),
        time_ms=int(start_ms) + offsets_ms,
        instances=np.round(np.concatenate(parts), DECIMALS),
        stage=np.repeat(np.arange(1, len(STAGE_KINDS) + 1, dtype=np.int8), stage_size),
        outlier_feature=np.concatenate(labels),
        feature_names=train.feature_names)


def stage_boundaries_ms(stream: StagedStream) -> np.ndarray:
    """Stage edges for plots: ``b[s - 1]`` is the first request time of stage s, and the last entry is
    one past the final request, so stage s spans ``[b[s - 1], b[s])``."""
    stages = np.unique(stream.stage)
    firsts = [int(stream.time_ms[np.argmax(stream.stage == s)]) for s in stages]
    return np.array(firsts + [int(stream.time_ms[-1]) + 1], dtype=np.int64)


def _lines(stream: StagedStream, format: str):
    for request_id, time_ms, row in zip(stream.ids.tolist(), stream.time_ms.tolist(), stream.instances.tolist()):
        yield formats.encode(format, request_id, time_ms, [row], source=SOURCE) + "\n"


def write_jsonl(stream: StagedStream, path_or_file: Union[str, Path, IO[str]], format: str = formats.THESIS) -> None:
    """One request per line, in `format` (see `contract.formats`); '-' means stdout."""
    if format not in formats.FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(formats.FORMATS)}")
    if hasattr(path_or_file, "write"):
        path_or_file.writelines(_lines(stream, format))
    elif str(path_or_file) == "-":
        sys.stdout.writelines(_lines(stream, format))
    else:
        with open(path_or_file, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(_lines(stream, format))


def write_labels(stream: StagedStream, path: Union[str, Path]) -> None:
    """CSV ``id,stage,outlier_feature`` (the feature's column index, -1 for none)."""
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("id,stage,outlier_feature\n")
        rows = zip(stream.ids.tolist(), stream.stage.tolist(), stream.outlier_feature.tolist())
        fh.writelines(f"{i},{s},{o}\n" for i, s, o in rows)


def labels_path_for(output: Union[str, Path]) -> Path:
    return Path(f"{output}.labels.csv")


def write_files(stream, output, labels: Optional[Path], write_stream, write_stream_labels) -> Optional[Path]:
    """``mmon stream``'s files: the stream by ``write_stream(stream, output)`` (``-``: stdout), then its labels
    by ``write_stream_labels(stream, path)`` at ``labels`` or beside the output (none for stdout); returns
    the labels' path."""
    write_stream(stream, output)
    labels = labels or (None if output == "-" else labels_path_for(output))
    if labels is not None:
        write_stream_labels(stream, labels)
    return labels


# ----------------------------------------------------------------------------------------------- CLI

def _rates(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(r) for r in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmon stream iris",
        description="Generate the staged Iris inference stream (normal / 10% outliers / drift / "
                    "10% outliers / normal) as JSON lines, plus a labels CSV beside it.")
    parser.add_argument("-o", "--output", default="iris.jsonl",
                        help="JSON-lines output file, '-' for stdout (default: %(default)s)")
    parser.add_argument("--format", choices=formats.FORMATS, default=formats.THESIS,
                        help="wire format of each line (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument("--stage-size", type=int, default=DEFAULT_STAGE_SIZE,
                        help="requests per stage (default: %(default)s)")
    parser.add_argument("--rates", type=_rates, default=DEFAULT_RATES,
                        help="Poisson arrival rates of the 5 stages in requests/s, comma-separated "
                             "(default: 64,122,177,122,64)")
    parser.add_argument("--start", type=int, default=DEFAULT_START_MS,
                        help="start epoch in milliseconds (default: %(default)s, a fixed constant)")
    parser.add_argument("--training", type=Path, default=DEFAULT_TRAINING,
                        help="training CSV the instances are drawn from (default: the bundled Iris split)")
    parser.add_argument("--label", default=DEFAULT_LABEL,
                        help="label column of the training CSV, dropped if present (default: %(default)s)")
    parser.add_argument("--labels", type=Path, default=None,
                        help="labels CSV path (default: <output>.labels.csv; none when writing to stdout)")
    return parser


def write_example(path: Path, format: str, seed: Optional[int] = None, stage_size: Optional[int] = None,
                  rate_scale: float = 1.0) -> str:
    """The Iris example's staged stream (defaults unless given) in ``format`` at ``path``; says what it wrote."""
    stream = generate(seed=DEFAULT_SEED if seed is None else seed,
                      stage_size=stage_size or DEFAULT_STAGE_SIZE, rates=tuple(r * rate_scale for r in DEFAULT_RATES))
    write_jsonl(stream, path, format)
    return f"the staged Iris stream: {len(stream):,} requests"


def main(argv: list[str]) -> int:
    """``mmon stream iris``."""
    args = _parser().parse_args(argv)
    began = time.perf_counter()
    try:
        stream = generate(seed=args.seed, stage_size=args.stage_size, rates=args.rates, start_ms=args.start,
                          training_csv=args.training, label=args.label)
        labels = write_files(stream, args.output, args.labels,
                             lambda s, out: write_jsonl(s, out, args.format), write_labels)
    except (ValueError, OSError) as exc:
        print(f"mmon stream: error: {exc}", file=sys.stderr)
        return 1
    span_s = (stream.time_ms[-1] - stream.time_ms[0]) / 1000.0
    outliers = int((stream.outlier_feature >= 0).sum())
    print(f"mmon stream: {len(stream)} requests ({args.format}, seed {args.seed}) spanning {span_s:.0f} s, "
          f"{outliers} outliers -> {args.output}" + (f", labels -> {labels}" if labels else "")
          + f" in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return 0
