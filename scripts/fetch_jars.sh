#!/usr/bin/env bash
# Fetch the JVM artifacts from Maven Central into .cache/jars (idempotent: a stamp records what was fetched).
#   .cache/jars/connector/  flink-sql-connector-kafka fat jar (loaded by the PyFlink job)
#   .cache/jars/kafka/      Apache Kafka broker + runtime dependencies (tests, benchmarks)
#   .cache/jars/s3proxy/    S3Proxy (org.gaul:s3proxy, Apache-2.0) + runtime dependencies: the S3 server of the tests
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

# once STAMP WANT WHAT COMMAND...: run COMMAND unless STAMP already records WANT, then record it.
once() {
  local stamp="$1" want="$2" what="$3"
  shift 3
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "jars: $what up to date"
    return
  fi
  mkdir -p "$(dirname "$stamp")"
  "$@"
  echo "$want" > "$stamp"
}

udfs="$root/jvm/udfs"
build_udfs() {
  echo "jars: building the job's Java SQL functions (jvm/udfs)"
  "${mvn_q[@]}" -f "$udfs/pom.xml" package -DskipTests  # `make test` runs them
  cp "$udfs/target/mmon-flink-udfs.jar" "$dest/udfs/"
}
once "$dest/udfs/.stamp" "$(cd "$udfs" && find pom.xml src -type f | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)" \
  udfs build_udfs

# S3Proxy (org.gaul:s3proxy, Apache-2.0): the S3-compatible server of the s3:// baseline tests.
s3proxy_pom="$root/jvm/s3proxy-pom.xml"
fetch_s3proxy() {
  echo "jars: fetching S3Proxy (Apache-2.0) and its runtime dependencies"
  find "$dest/s3proxy" -name '*.jar' -delete
  "${mvn_q[@]}" -f "$s3proxy_pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dest/s3proxy"
}
once "$dest/s3proxy/.stamp" "$(sha256sum "$s3proxy_pom" | cut -d' ' -f1)" s3proxy fetch_s3proxy

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
