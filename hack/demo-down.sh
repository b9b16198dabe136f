#!/usr/bin/env bash
# Stops what a `make demo` left running (normally Ctrl-C does it): every
# process group listed in .demo/pids, then removes .demo.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pids="$root/.demo/pids"
if [[ -f "$pids" ]]; then
  while read -r pid; do
    [[ -n "$pid" ]] || continue
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done <"$pids"
  sleep 3
  while read -r pid; do
    [[ -n "$pid" ]] || continue
    kill -KILL -- "-$pid" 2>/dev/null || true
  done <"$pids"
fi
pkill -f "$root/.demo/manager" 2>/dev/null || true
rm -rf "$root/.demo"
echo "demo-down: stopped and removed .demo"
