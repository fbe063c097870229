#!/usr/bin/env bash
# Best effort, for `make setup`: Debian's chromium, which the report's browser test opens the page in
# (tests/test_report.py skips without it). Installs only as root where apt-get exists; never fails setup.
set -u
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: no chromium, so the report's browser test will skip (install Debian's chromium package to run it)" >&2
  exit 0
fi
log="${TMPDIR:-/tmp}/mmon-chromium-install.log"
echo "setup: installing chromium with apt-get for the report's browser test (log: $log)"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$log" 2>&1; then
  echo "setup: apt-get could not install chromium (see $log); the report's browser test will skip" >&2
fi
exit 0
