"""The JVM side of a local run: the jars the job loads, and the flags of the JVM that PyFlink starts.

PyFlink launches its JVM (the local mini-cluster) when the first environment is created, reading the
flags from ``JVM_ARGS`` and extra classpath entries from ``HADOOP_CLASSPATH``; `prepare_local_jvm` sets
those two variables, once, before that. `local_jvm_args` decides the flags and changes nothing. On a
standalone cluster or Kubernetes the cluster's own configuration and ``lib/`` serve instead.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

REPO = Path(__file__).resolve().parent.parent
CONNECTOR_JAR = REPO / ".cache" / "jars" / "connector" / "flink-sql-connector-kafka-5.0.0-2.2.jar"
UDFS_JAR = REPO / ".cache" / "jars" / "udfs" / "mmon-flink-udfs.jar"  # jvm/udfs: the job's Java functions
SHORT_RUN_MAX_LINES = 500_000  # the crossover measured on two cores; see local_jvm_args
LOCAL_MAX_HEAP = "1g"


def job_jars(kafka: bool) -> list[Path]:
    """The jars the job loads: its Java functions, and the Kafka connector in Kafka mode."""
    return [UDFS_JAR, CONNECTOR_JAR] if kafka else [UDFS_JAR]


def local_jvm_args(current: str, kafka: bool, input_lines: int) -> str:
    """``current`` (the user's ``JVM_ARGS``) with this run's flags added, each only where ``current`` does
    not already choose:

    - a heap cap, ``-Xmx`` :data:`LOCAL_MAX_HEAP`: the Java heap holds little that lives (the SQL
      operators' five-second sub-batches, Kafka client buffers; the window state is Python's), but
      under the default cap (a quarter of RAM) it grows with the throughput: on the Kafka max-profile
      benchmark the job's peak RSS was 2.05 GB uncapped and 1.30 GB capped, at the same rate;
    - the throughput collector, ``-XX:+UseParallelGC``: the job allocates short-lived rows fast, and on two
      cores G1's concurrent work costs more than it saves (over a file, 1,000,000 instances: 73,000/s vs
      54,000/s); on Kafka, wide records make it worse: under G1 (1 MB regions at this heap) every Kafka fetch
      buffer and window sub-batch over 512 KB is a humongous object, and the 1,000-feature drain ran 42
      humongous-allocation collections, each starting a concurrent cycle. The job waits for windows of seconds,
      so the collector's short stop-the-world pauses on a 1 GB heap cost no latency that matters;
    - for a short run over a file (up to :data:`SHORT_RUN_MAX_LINES` lines), the client compiler only
      (``-XX:TieredStopAtLevel=1``): such a run processes for a few seconds, too few for the optimising
      compiler (C2) to earn back its CPU (250,000 instances: ~51,000/s vs ~42,000/s with C2); on longer
      inputs C2 pays (1,000,000: 73,000/s vs 42,000/s with C1 only).

    Kafka mode runs for hours: the optimising compiler pays there."""
    jvm_args = current
    if not re.search(r"-Xmx\d", jvm_args):
        jvm_args += f" -Xmx{LOCAL_MAX_HEAP}"
    if not kafka and input_lines <= SHORT_RUN_MAX_LINES and "TieredStopAtLevel" not in jvm_args:
        jvm_args += " -XX:TieredStopAtLevel=1"
    if not re.search(r"-XX:\+Use\w+GC\b", jvm_args):
        jvm_args += " -XX:+UseParallelGC"
    return jvm_args.strip()


def prometheus_reporter_jars() -> list[Path]:
    """The Prometheus reporter's jars in the PyFlink distribution. The local mini-cluster loads no plugins,
    only reporter factories on the JVM's classpath."""
    import pyflink

    return sorted((Path(pyflink.__file__).resolve().parent / "plugins" / "metrics-prometheus").glob("*.jar"))


def prepare_local_jvm(kafka: bool, input_lines: int, prometheus: bool,
                      environ: Mapping[str, str] = os.environ) -> None:
    """Sets ``JVM_ARGS`` (`local_jvm_args`) and, for the Prometheus reporter, ``HADOOP_CLASSPATH`` (PyFlink's
    gateway launcher appends it to the JVM's classpath). Must run before the JVM starts (first environment)."""
    environ["JVM_ARGS"] = local_jvm_args(environ.get("JVM_ARGS", ""), kafka, input_lines)
    if prometheus:
        entries = [environ.get("HADOOP_CLASSPATH", ""), *map(str, prometheus_reporter_jars())]
        environ["HADOOP_CLASSPATH"] = os.pathsep.join(entries).strip(os.pathsep)
