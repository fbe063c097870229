#!/usr/bin/env bash
# Local single-node KRaft Kafka broker in the background (data, broker.log and pid in .cache/run/kafka).
#   scripts/kafka-local.sh start [--port 9092] [--controller-port 9093] [--topics a,b] [--partitions N] [--fresh]
#   scripts/kafka-local.sh stop | status
# A thin wrapper over `python -m devtools.services kafka ...` (needs `make setup`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[[ -x .venv/bin/python ]] || { echo "$(basename "$0"): no .venv here; run \`make setup\` first" >&2; exit 1; }
if [[ $# -eq 0 ]]; then set -- --help; fi
exec "$root/.venv/bin/python" -m devtools.services kafka "$@"
