"""`mmon baseline`: build a baseline JSON from a training CSV."""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from udfs.baseline import BINNINGS, Baseline, BaselineError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmon baseline",
        description="Compute per-feature training statistics (count, mean, sample std, min, max, "
                    "p25/p50/p75), histograms (equal-frequency bins by default) and a training sample "
                    "(up to 10,000 values), and save them as JSON.",
        epilog="example: mmon baseline examples/iris/iris_training.csv --label species -o examples/iris/baseline.json")
    parser.add_argument("csv", type=Path, help="training data: a CSV file with a header row")
    parser.add_argument("-o", "--output", type=Path, default=Path("baseline.json"),
                        help="where to write the baseline JSON (default: %(default)s)")
    parser.add_argument("--label", action="append", default=[],
                        help="a column to leave out, such as the target (repeatable)")
    parser.add_argument("--features", help="comma-separated feature columns (default: every column but the labels)")
    parser.add_argument("--bins", type=int, default=None,
                        help="histogram bins per feature (default: clip(round(2 * rows ** 0.4), 5, 50))")
    parser.add_argument("--binning", choices=tuple(BINNINGS), default="quantile",
                        help="quantile: equal-frequency edges at training values; equal-width: over [min, max] "
                             "(default: %(default)s)")
    return parser


def _feature_names(path: Path, features: str | None, labels: list[str]) -> list[str]:
    if features:
        names = [name.strip() for name in features.split(",") if name.strip()]
    else:
        try:
            with path.open(newline="") as handle:
                names = [name.strip() for name in next(csv.reader(handle), [])]
        except OSError as err:
            raise BaselineError(f"cannot read {path}: {err.strerror}") from None
    unknown = [label for label in labels if not features and label not in names]
    if unknown:
        raise BaselineError(f"{path}: no label column {unknown[0]!r}")
    names = [name for name in names if name not in labels]
    if not names:
        raise BaselineError("no feature columns left")
    return names


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.bins is not None and args.bins < 1:
        print("mmon baseline: --bins must be at least 1", file=sys.stderr)
        return 2
    try:
        names = _feature_names(args.csv, args.features, args.label)
        baseline = Baseline.from_csv(args.csv, features=names, bins=args.bins, binning=args.binning)
        baseline.save(args.output)
    except (BaselineError, OSError) as err:
        print(f"mmon baseline: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {len(names)} features, {args.binning} bins")
    for name, feature in baseline.features.items():
        print(f"  {name:<16} count {feature.count}  mean {feature.mean:.7g}  std {feature.std:.7g}  "
              f"min {feature.min:g}  max {feature.max:g}  bins {len(feature.edges) - 1}")
    return 0
