#!/usr/bin/env bash
# Fetch the JVM artifacts from Maven Central into .cache/jars (idempotent: a stamp records what was fetched).
#   .cache/jars/connector/  flink-sql-connector-kafka fat jar (loaded by the PyFlink job)
#   .cache/jars/kafka/      Apache Kafka broker + runtime dependencies (tests, benchmarks)
#   .cache/jars/udfs/       the job's Java SQL functions, built by Maven from jvm/udfs (rebuilt when its sources change)
# Used by `make setup` and by k8s/Dockerfile, so the laptop and the image get the same jars.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${JARS_DIR:-$root/.cache/jars}"
connector="org.apache.flink:flink-sql-connector-kafka:5.0.0-2.2"
pom="$root/jvm/pom.xml"
stamp="$dest/.stamp"
want="$connector $(sha256sum "$pom" | cut -d' ' -f1)"
mvn_q=(mvn -q -B -ntp)

udfs="$root/jvm/udfs"
udfs_stamp="$dest/udfs/.stamp"
udfs_want="$(cd "$udfs" && find pom.xml src -type f | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [[ -f "$udfs_stamp" && "$(cat "$udfs_stamp")" == "$udfs_want" ]]; then
  echo "jars: udfs up to date"
else
  echo "jars: building the job's Java SQL functions (jvm/udfs)"
  mkdir -p "$dest/udfs"
  "${mvn_q[@]}" -f "$udfs/pom.xml" package -DskipTests  # `make test` runs them
  cp "$udfs/target/mmon-flink-udfs.jar" "$dest/udfs/"
  echo "$udfs_want" > "$udfs_stamp"
fi

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "jars: up to date in $dest"
  exit 0
fi
mkdir -p "$dest/connector" "$dest/kafka"
echo "jars: fetching $connector"
"${mvn_q[@]}" -f "$pom" dependency:copy -Dartifact="$connector" -DoutputDirectory="$dest/connector" -Dmdep.overWriteReleases=false
echo "jars: fetching the Kafka broker and its runtime dependencies"
"${mvn_q[@]}" -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dest/kafka"
echo "$want" > "$stamp"
echo "jars: done ($(ls "$dest/connector" | wc -l) connector, $(ls "$dest/kafka" | wc -l) broker jars)"
