#!/usr/bin/env bash
# Regenerate the checked-in Iris manifests and the ModelMonitor CRD from examples/iris/monitor.yaml.
# Usage: k8s/iris/render.sh [OUT_DIR]   writes OUT_DIR/iris/*.yaml and OUT_DIR/crd/modelmonitor.yaml (default OUT_DIR: k8s)
# tests/test_k8s_manifests.py runs this into a temporary folder and diffs it against the checked-in files.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/k8s}"
iris="$out/iris"
crd_dir="$out/crd"
mkdir -p "$iris" "$crd_dir"
mmon="${MMON:-$root/.venv/bin/mmon}"
spec="$root/examples/iris/monitor.yaml"
common=(--namespace mmon --kafka-bootstrap mmon-kafka-bootstrap:9092 --kafka-cluster mmon --logger-allow-namespace monitoring)
"$mmon" k8s render "$spec" "${common[@]}" --out-dir "$iris"
"$mmon" k8s render "$spec" "${common[@]}" --session-cluster flink-session --out-dir "$iris"
"$mmon" k8s render "$spec" "${common[@]}" --as-modelmonitor --out-dir "$iris"
"$mmon" k8s crd > "$crd_dir/modelmonitor.yaml"
echo "wrote $crd_dir/modelmonitor.yaml"
