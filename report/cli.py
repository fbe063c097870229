"""`mmon report`: one self-contained HTML page of a run's outputs, from an embedded run's folder or from
the Kafka output topics of a spec."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional

from contract.outputs import SPEC_FILE
from contract.spec import ConfigError, Duration, MonitorSpec, load_spec

from udfs.baseline import Baseline, BaselineError

from report.findings import DEFAULT_MAX_FEATURES, SelectionError
from report.outputs import OutputsError, RunOutputs, from_directory, from_kafka


class UsageError(Exception):
    """Arguments that do not make a report; the message says what to pass."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmon report",
        description="Write one self-contained HTML page (inline CSS and images, no network access) of what the "
                    "monitor found: a summary (instances, windows, time range, which features drifted when and by "
                    "which metrics, outliers by feature, dead letters by reason, the accounting identity), each "
                    "drift metric's timeline against its threshold, every flagged window's histogram beside the "
                    "baseline's (a categorical column's: its category shares), window statistics (missing shares "
                    "included) and outliers per window over time; with ground truth, the model's realised performance "
                    "per window (its revisions, alerts and label coverage) beside the prediction column's drift. "
                    "The summary covers every "
                    "feature; the detailed sections draw at most --max-features of them (the flagged ones first), "
                    "or the ones --features names. Reads the output folder of `mmon run --output DIR`, or with "
                    "--kafka the spec's output topics.",
        epilog="examples:  mmon report out/demo\n"
               "           mmon report --kafka 127.0.0.1:9092 --config examples/iris/monitor.yaml --since 1h -o report.html\n"
               "           mmon report out/wide --features f3,f17 -o f3-f17.html",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", type=Path, help="output folder of an embedded run (`mmon run --output DIR`)")
    parser.add_argument("-o", "--output", type=Path,
                        help="HTML file to write (default: DIR/report.html, or report.html with --kafka)")
    parser.add_argument("--config", type=Path,
                        help=f"monitor spec of the run (default for DIR: the DIR/{SPEC_FILE} that `mmon run` saves); "
                             "required with --kafka")
    parser.add_argument("--kafka", metavar="HOST:PORT", help="read the spec's output topics on this broker instead of a folder")
    parser.add_argument("--since", metavar="DURATION",
                        help="with --kafka: only records written in this last span, e.g. 1h, 30m (default: all records)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                        help="with --kafka: give up when the topics are not read to their end in this time (default: 120)")
    parser.add_argument("--max-features", type=_count, default=DEFAULT_MAX_FEATURES, metavar="N",
                        help="draw at most N features in the detailed sections: the flagged ones, most flagged "
                             f"windows first, then the others by outlier alerts (default: {DEFAULT_MAX_FEATURES}; "
                             "0: every feature). The summary covers every feature whatever N")
    parser.add_argument("--features", type=_names, metavar="F1,F2,...",
                        help="draw exactly these features in the detailed sections, in this order (instead of "
                             "--max-features)")
    return parser


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number, 0 or more")
    return int(text)


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("no feature named: give F1,F2,...")
    return names


def _spec(args: argparse.Namespace) -> MonitorSpec:
    if args.config is not None:
        return load_spec(args.config)
    if args.kafka:
        raise UsageError("--kafka needs --config SPEC (the topics and the baseline come from the spec)")
    saved = args.directory / SPEC_FILE
    if not saved.is_file():
        raise UsageError(f"{saved}: no saved spec (a run of an older mmon?): pass --config SPEC")
    return load_spec(saved)


def _outputs(args: argparse.Namespace, spec: MonitorSpec) -> RunOutputs:
    if args.kafka:
        since_ms = None
        if args.since:
            since_ms = int(time.time() * 1000) - Duration.parse(args.since, "--since")
        return from_kafka(args.kafka, spec, since_ms, args.timeout)
    return from_directory(args.directory)


def _check(args: argparse.Namespace) -> None:
    if (args.directory is None) == (args.kafka is None):
        raise UsageError("give an output folder DIR or --kafka HOST:PORT (one of them)")
    if args.since and not args.kafka:
        raise UsageError("--since reads Kafka record times: use it with --kafka")


def write_report(args: argparse.Namespace) -> Path:
    """Read, render and write; returns the page's path."""
    from report.page import render  # matplotlib and jinja2 load only when a report is made

    _check(args)
    spec = _spec(args)
    outputs = _outputs(args, spec)
    html = render(outputs, spec, Baseline.load(spec.baseline).columns, args.max_features, args.features)
    path = args.output or (Path("report.html") if args.kafka else args.directory / "report.html")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    try:
        path = write_report(args)
    except (UsageError, ConfigError, BaselineError, OutputsError, SelectionError) as err:
        print(f"mmon report: {err}", file=sys.stderr)
        return 2
    size_mb = path.stat().st_size / 1e6
    print(f"mmon report: wrote {path} ({size_mb:.1f} MB in {time.monotonic() - started:.1f} s); "
          f"open {path.resolve().as_uri()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
