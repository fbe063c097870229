"""The read floor of the wide benchmark: a plain Flink SQL job that only reads a topic and counts its records.

Run as its own process (``python -m benchmarks.floor --kafka HOST:PORT --topic T --result PATH``), like the job: the same
local JVM flags as the job (`flink_job.jvm.local_jvm_args`; under the wide benchmark, ``JVM_ARGS`` set to the
embedded run's flags for the same stream, `benchmarks.wide.embedded_jvm_flags`), the same connector jar, parallelism 1, the value
as a raw STRING with the job's consumer properties (`flink_job.source.FETCH_PROPERTIES`), from the earliest
offset to the latest one at start (bounded). The rate is the records counted over the processing time from the
first record to the last (each record stamped by ``CURRENT_ROW_TIMESTAMP()``), so the JVM's start and the
job's deployment are left out, as the job's drain rate leaves them out. Writes ``{"records": n, "seconds": s, "records_per_s": r}`` as JSON to
``--result`` (the JVM and PyFlink print to stdout too).
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

from flink_job import jvm, parse, source

MINI_BATCH = {"table.exec.mini-batch.enabled": "true", "table.exec.mini-batch.allow-latency": "1 s",
              "table.exec.mini-batch.size": "100000"}
"""The count's updates once per mini-batch, not once per record (which would cost more than the read)."""


def source_ddl(bootstrap: str, topic: str) -> str:
    options = {"connector": "kafka", "topic": topic, "properties.bootstrap.servers": bootstrap,
               "properties.group.id": f"mmon-floor-{uuid.uuid4().hex[:8]}", "scan.startup.mode": "earliest-offset",
               "scan.bounded.mode": "latest-offset", "value.format": "raw",
               **{f"properties.{k}": v for k, v in source.FETCH_PROPERTIES.items()}}
    body = ",\n  ".join(f"{parse.sql_string(k)} = {parse.sql_string(v)}" for k, v in options.items())
    return f"CREATE TEMPORARY TABLE floor_source (payload STRING) WITH (\n  {body}\n)"


COUNT_SQL = (f"SELECT COUNT(payload) AS n, MIN(read_at) AS first_ms, MAX(read_at) AS last_ms FROM "
             f"(SELECT payload, {source.EPOCH_MS}(CURRENT_ROW_TIMESTAMP()) AS read_at FROM floor_source)")


def count(bootstrap: str, topic: str) -> dict:
    """Reads ``topic`` once through Flink SQL; the records and their rate."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    jvm.prepare_local_jvm(kafka=True, input_lines=0, prometheus=False)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = t_env.get_config()
    for key, value in {"pipeline.jars": ";".join(j.as_uri() for j in jvm.job_jars(kafka=True)),
                       "parallelism.default": "1", **MINI_BATCH}.items():
        config.set(key, value)
    source.register_functions(t_env)
    t_env.execute_sql(source_ddl(bootstrap, topic))
    last = None
    with t_env.execute_sql(COUNT_SQL).collect() as results:
        for row in results:
            last = row  # the final update holds the totals
    n, first_ms, last_ms = (last[0], last[1], last[2]) if last else (0, None, None)
    seconds = (last_ms - first_ms) / 1000 if n > 1 else None
    return {"records": n, "seconds": seconds, "records_per_s": (n - 1) / seconds if seconds else None}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", required=True, metavar="HOST:PORT")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--result", required=True, type=Path, metavar="PATH", help="where the JSON result goes")
    args = parser.parse_args(argv)
    args.result.write_text(json.dumps(count(args.kafka, args.topic)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
