"""`mmon`: one command, a subcommand per task. Each subcommand lives in its own module and is imported
only when used, so `mmon baseline` does not start a JVM and `mmon --help` stays fast."""
from __future__ import annotations

import importlib
import sys

# name -> (module:function taking argv, one-line help)
SUBCOMMANDS = {
    "baseline": ("udfs.baseline_cli:main", "build a baseline JSON from a training CSV"),
    "stream": ("streams.cli:main", "write an example's staged inference stream to a file (iris, penguins)"),
    "run": ("flink_job.main:main", "run the monitoring job (embedded mini-cluster, or on Kafka)"),
    "logger": ("inference_logger.server:main", "HTTP inference logger: KServe CloudEvents in, Kafka out"),
    "report": ("report.cli:main", "a self-contained HTML report of a run's outputs (folder or Kafka topics)"),
    "bench": ("benchmarks.harness:main", "replay the staged stream and measure latency, throughput, quality"),
    "k8s": ("operator_glue.cli:k8s_main", "render or apply the Kubernetes manifests for a monitor spec"),
    "operator": ("operator_glue.cli:operator_main", "run the ModelMonitor controller loop"),
}


def usage() -> str:
    lines = ["usage: mmon <command> [options]   (mmon <command> --help for its options)", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"mmon: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, func_name = SUBCOMMANDS[name][0].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name.split(".")[0]:
            raise
        print(f"mmon {name}: not installed here (the {err.name} package ships with the repository, not the image)",
              file=sys.stderr)
        return 2
    func = getattr(module, func_name)
    return int(func(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
