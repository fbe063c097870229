"""The floors of the wide benchmark: plain Flink SQL jobs that read a topic and count its records.

- The read floor: the value as a raw STRING, counted (issue 23's reference: what reading the topic costs).
- The parse floor (``--parse FORMAT``): the topic read again through Flink's JSON format with every instance's
  values declared as DOUBLE, so each value is parsed, then counted: what any job that looks at the values
  pays before doing anything with them.
- The job's parser floor (``--config SPEC``): the topic read again, each record through the job's own parse
  function (`flink_job.parse`, Java, the spec's schema), the records it accepts counted: the job's first step
  alone.

Run as its own process (``python -m benchmarks.floor --kafka HOST:PORT --topic T --result PATH [--parse F]``), like
the job: the same local JVM flags as the job (`flink_job.jvm.local_jvm_args`; under the wide benchmark,
``JVM_ARGS`` set to the embedded run's flags for the same stream, `benchmarks.wide.embedded_jvm_flags`), the same
connector jar, parallelism 1, the job's consumer properties (`flink_job.source.FETCH_PROPERTIES`), from the earliest
offset to the latest one at start (bounded). A rate is the records counted over the processing time from the
first record to the last (each record stamped by ``CURRENT_ROW_TIMESTAMP()``), so the JVM's start and the
job's deployment are left out, as the job's drain rate leaves them out. Writes ``{"records": n, "values": 0,
"seconds": s, "records_per_s": r}`` as JSON to ``--result``, with the parse floor's figures under ``"parse"``
and the job's parser floor's under ``"job_parse"`` (``records``: those the parser accepted). ``values`` is the
parse floor's check that it parsed the values: the first instance's, summed over the records. The JVM and
PyFlink print to stdout too.
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Optional

from contract import formats
from contract.spec import MonitorSpec, load_spec

from udfs.baseline import Baseline

from flink_job import jvm, parse, source

MINI_BATCH = {"table.exec.mini-batch.enabled": "true", "table.exec.mini-batch.allow-latency": "1 s",
              "table.exec.mini-batch.size": "100000"}
"""The count's updates once per mini-batch, not once per record (which would cost more than the read)."""


INSTANCES_FIELD = {formats.THESIS: "payload", formats.KSERVE_V1: "data"}
"""Where each format that carries ``{"instances": [[...]]}`` keeps it (oip-v2's tensors have no parse floor)."""


def source_ddl(bootstrap: str, topic: str, table: str = "floor_source", columns: str = "payload STRING",
               value_format: str = "raw") -> str:
    options = {"connector": "kafka", "topic": topic, "properties.bootstrap.servers": bootstrap,
               "properties.group.id": f"mmon-floor-{uuid.uuid4().hex[:8]}", "scan.startup.mode": "earliest-offset",
               "scan.bounded.mode": "latest-offset", "value.format": value_format,
               **{f"properties.{k}": v for k, v in source.FETCH_PROPERTIES.items()}}
    body = ",\n  ".join(f"{parse.sql_string(k)} = {parse.sql_string(v)}" for k, v in options.items())
    return f"CREATE TEMPORARY TABLE {table} ({columns}) WITH (\n  {body}\n)"


def parse_source_ddl(bootstrap: str, topic: str, format: str) -> str:
    """The topic through Flink's JSON format, every instance's values declared as DOUBLE, so each is parsed."""
    columns = f"{INSTANCES_FIELD[format]} ROW<instances ARRAY<ARRAY<DOUBLE>>>"
    return source_ddl(bootstrap, topic, "parse_source", columns, "json")


READ_AT = f"{source.EPOCH_MS}(CURRENT_ROW_TIMESTAMP()) AS read_at"


def count_sql(selected: str, table: str, counted: str = "*", values: str = "0", where: str = "") -> str:
    """A floor's count over ``table`` (``selected`` and each row's read time): ``COUNT(counted)``, the first and
    last read time, and the ``values`` check (an aggregate, or 0); in the order `_timed_count` reads them."""
    return (f"SELECT COUNT({counted}) AS n, MIN(read_at) AS first_ms, MAX(read_at) AS last_ms, {values} AS v FROM "
            f"(SELECT {selected}, {READ_AT} FROM {table}) AS r{where}")


COUNT_SQL = count_sql("payload", "floor_source", counted="payload")


def parse_count_sql(format: str) -> str:
    """The parse floor's count, with the values parsed (the first instance's per record) as a check."""
    field = INSTANCES_FIELD[format]
    return count_sql(field, "parse_source", values=f"SUM(CAST(CARDINALITY(r.{field}.instances[1]) AS BIGINT))")


def job_parse_count_sql(spec: MonitorSpec) -> str:
    """The job's parser floor's count: the records the job's own parse function (`flink_job.parse`, the spec's
    schema) accepted (a record it rejects is read and parsed, not counted)."""
    parsed = parse.call_sql(parse.PARSE_FUNCTION, spec, live=False, raw="payload", default_id="'floor'",
                            default_time_ms="CAST(0 AS BIGINT)")
    return count_sql(f"{parsed} AS parsed", "floor_source", where=" WHERE r.parsed.reason IS NULL")


def count(bootstrap: str, topic: str, parse_format: Optional[str] = None, spec_path: Optional[Path] = None) -> dict:
    """Reads ``topic`` through Flink SQL; its records and their rate, and with ``parse_format`` (a format of
    `INSTANCES_FIELD`) the parse floor's too, under ``"parse"``: the topic read again, every value parsed; with
    ``spec_path`` (the job's spec) the job's parser floor's, under ``"job_parse"``: read again, each record through
    the job's own parse function."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    jvm.prepare_local_jvm(kafka=True, input_lines=0, prometheus=False)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = t_env.get_config()
    for key, value in {"pipeline.jars": ";".join(j.as_uri() for j in jvm.job_jars(kafka=True)),
                       "parallelism.default": "1", **MINI_BATCH}.items():
        config.set(key, value)
    source.register_functions(t_env)
    t_env.execute_sql(source_ddl(bootstrap, topic))
    result = _timed_count(t_env, COUNT_SQL)
    if parse_format:
        t_env.execute_sql(parse_source_ddl(bootstrap, topic, parse_format))
        result["parse"] = _timed_count(t_env, parse_count_sql(parse_format))
    if spec_path:
        spec = load_spec(spec_path)
        parse.register_functions(t_env, parse.java_schema(spec, Baseline.load(spec.baseline, spec.baseline_sha256)))
        result["job_parse"] = _timed_count(t_env, job_parse_count_sql(spec))
    return result


def _timed_count(t_env, sql: str) -> dict:
    """Runs a bounded count query to its end: records, values checked, and records/s from the first to the last."""
    last = None
    with t_env.execute_sql(sql).collect() as results:
        for row in results:
            last = row  # the final update holds the totals
    n, first_ms, last_ms, values = (last[0], last[1], last[2], last[3]) if last else (0, None, None, 0)
    seconds = (last_ms - first_ms) / 1000 if n > 1 else None
    return {"records": n, "values": values, "seconds": seconds, "records_per_s": (n - 1) / seconds if seconds else None}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", required=True, metavar="HOST:PORT")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--result", required=True, type=Path, metavar="PATH", help="where the JSON result goes")
    parser.add_argument("--parse", choices=sorted(INSTANCES_FIELD), metavar="FORMAT",
                        help="also the parse floor: the topic read again through Flink's JSON format, every value "
                             f"parsed as a DOUBLE (the records' format: {', '.join(sorted(INSTANCES_FIELD))})")
    parser.add_argument("--config", type=Path, metavar="SPEC",
                        help="also the job's parser floor: the topic read again, each record through the job's own "
                             "parse function under this monitor spec")
    args = parser.parse_args(argv)
    args.result.write_text(json.dumps(count(args.kafka, args.topic, args.parse, args.config)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
