#!/usr/bin/env bash
# Local Flink standalone cluster (from the PyFlink wheel) in the background; conf, lib, logs and pids in
# .cache/run/flink. The lib dir adds the Kafka connector jar, so `flink run -py job.py` needs no --jarfile.
#   scripts/flink-cluster.sh start [--rest-port 8081] [--rpc-port 6123] [--slots 2]
#   scripts/flink-cluster.sh stop | status
# A thin wrapper over `python -m devtools.services flink ...` (needs `make setup`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[[ -x .venv/bin/python ]] || { echo "$(basename "$0"): no .venv here; run \`make setup\` first" >&2; exit 1; }
if [[ $# -eq 0 ]]; then set -- --help; fi
exec "$root/.venv/bin/python" -m devtools.services flink "$@"
