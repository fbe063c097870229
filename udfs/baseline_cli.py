"""`mmon baseline`: build a baseline JSON from a training CSV."""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from udfs import calibration_cache
from udfs.baseline import (
    BINNINGS,
    CATEGORICAL,
    MAX_CATEGORIES,
    NUMERIC,
    SAMPLE_DTYPES,
    Baseline,
    BaselineError,
    ColumnBaseline,
)
from udfs.performance import PerformanceBaseline

SHOWN_CATEGORIES = 5


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmon baseline",
        description="Compute per-feature training statistics and save them as JSON: for a numeric column "
                    "count, mean, sample std, min, max, p25/p50/p75, a histogram (equal-frequency bins by "
                    "default) and a training sample (up to 10,000 values); for a categorical column (any "
                    "present value not a number) the most frequent categories with their counts and the rest "
                    "lumped as other; for both the missing count (empty and NA cells, NaN).",
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
    parser.add_argument("--categorical", action="append", default=[], metavar="COL",
                        help="treat this column as categorical even if every value is a number (repeatable)")
    parser.add_argument("--numeric", action="append", default=[], metavar="COL",
                        help="treat this column as numeric: every present value must be a number (repeatable)")
    parser.add_argument("--max-categories", type=int, default=MAX_CATEGORIES, metavar="N",
                        help="categories kept per categorical column, the rest lumped as other (default: %(default)s)")
    parser.add_argument("--sample-dtype", choices=SAMPLE_DTYPES, default="auto",
                        help="precision of a numeric column's values (stats, edges, training sample): auto keeps a "
                             "continuous column (no value repeated) at float32, 7 significant digits, and one with "
                             "ties at float64 (default: %(default)s)")
    parser.add_argument("--calibrate", action="store_true",
                        help="also calibrate the default drift metrics' auto thresholds (false_alarm_rate 0.01) and "
                             "cache them beside the output (<output>.calibration/), so that a job's first start "
                             "skips the simulation (seconds at 1,000 features)")
    parser.add_argument("--output-column", metavar="COL",
                        help="the column holding the model's output (e.g. its predictions on the training set, or "
                             "the labels): its baseline is the output's, not a feature's")
    parser.add_argument("--target", metavar="COL",
                        help="the column holding the truth (the labels) for the output column's predictions: records "
                             "the model's performance on these rows (accuracy, precision, recall, f1, f1_macro and "
                             "the confusion matrix, or mae, rmse and bias), which windows' realised performance is "
                             "tested against; needs --output-column, and the column is no feature")
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


def describe(name: str, feature: ColumnBaseline, width: int = 16) -> str:
    """One printout line: the column's type, present and missing counts, then its statistics or top categories."""
    head = f"  {name:<{width}} {feature.type:<11}  count {feature.count}  missing {feature.missing} ({feature.missing_rate:.1%})"
    if feature.type == NUMERIC:
        return (f"{head}  mean {feature.mean:.7g}  std {feature.std:.7g}  min {feature.min:g}  max {feature.max:g}  "
                f"bins {len(feature.edges) - 1}")
    shown = ", ".join(f"{value} {count}" for value, count in
                      zip(feature.categories[:SHOWN_CATEGORIES], feature.counts[:SHOWN_CATEGORIES]))
    more = len(feature.categories) - SHOWN_CATEGORIES
    return (f"{head}  {len(feature.categories)} categories: {shown}{f' (+{more} more)' if more > 0 else ''}"
            f"{f'  other {feature.other}' if feature.other else ''}")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if (args.bins is not None and args.bins < 1) or args.max_categories < 1:
        print("mmon baseline: --bins and --max-categories must be at least 1", file=sys.stderr)
        return 2
    try:
        names = _feature_names(args.csv, args.features, args.label + ([args.target] if args.target else []))
        baseline = Baseline.from_csv(args.csv, features=names, bins=args.bins, binning=args.binning,
                                     categorical=args.categorical, numeric=args.numeric,
                                     max_categories=args.max_categories, output=args.output_column,
                                     target=args.target, sample_dtype=args.sample_dtype)
        baseline.save(args.output)
        footprint = size_and_load_time(args.output)
        calibrated = _calibrated(baseline, args.output) if args.calibrate else ""
    except (BaselineError, OSError) as err:
        print(f"mmon baseline: {err}", file=sys.stderr)
        return 1
    types = [feature.type for feature in baseline.features.values()]
    output = f"; output {baseline.output.name} ({baseline.output.feature.type})" if baseline.output else ""
    print(f"wrote {args.output}: {len(types)} features ({types.count(NUMERIC)} numeric, "
          f"{types.count(CATEGORICAL)} categorical), {args.binning} bins{output}")
    width = max(16, *map(len, baseline.columns))
    for name, feature in baseline.columns.items():
        print(describe(name, feature, width))
    if baseline.performance:
        print(describe_performance(baseline.output.name, baseline.performance))
    print(footprint + calibrated)
    return 0


def _calibrated(baseline: Baseline, path: Path) -> str:
    started = time.perf_counter()
    metrics = calibration_cache.calibrate_defaults(baseline, path)
    return f"; calibrated {', '.join(metrics)} in {time.perf_counter() - started:.1f} s (cached beside it)"


def size_and_load_time(path: Path) -> str:
    """One printout line: the baseline file's size and the time `Baseline.load` takes, in all and per column."""
    started = time.perf_counter()
    columns = len(Baseline.load(path).columns)
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    return (f"size {size / 1e6:.2f} MB ({size / 1e3 / columns:.1f} kB a column), loads in {seconds:.2f} s "
            f"({seconds * 1e3 / columns:.2f} ms a column)")


def describe_performance(output: str, performance: PerformanceBaseline) -> str:
    """One printout line: the output's metrics against the target over the scored rows."""
    metrics = performance.metrics()
    shown = (("accuracy", "f1_macro") if performance.type == CATEGORICAL else ("mae", "rmse", "bias"))
    values = "  ".join(f"{name} {float(metrics[name]):.4g}" for name in shown)
    return (f"performance of {output} against {performance.target}: {values}  over {performance.labelled} rows "
            f"({performance.unscored} unscored)")
