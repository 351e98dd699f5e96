#!/usr/bin/env bash
# User-space instructions the edge spends per request of one evaluation route, counted by
# callgrind: the load test runs twice against an edge under `valgrind --tool=callgrind`
# (1,000 and 5,000 requests, 4 connections), and the difference of the two totals is divided
# by 4,000, so start-up cancels out. Deterministic where timings on a shared machine are not.
#
#   scripts/callgrind-edge.sh [one|ofrep-one|all|…]    (after a release build; needs valgrind)
#
# FROM=dir takes `checkgate-edge` and `checkgate-control` from dir instead (another build, to
# compare).
# valgrind hides the CPU's SHA extensions, so SHA-256 (the key check) runs its portable code
# here: a few thousand instructions per request more than natively.
set -euo pipefail
cd "$(dirname "$0")/.."
route=${1:-one}
bin=target/release
work=$(mktemp -d)
trap 'pkill -TERM -f "$work/checkgate-edge.real" 2>/dev/null || true; rm -rf "$work"' EXIT
from=${FROM:-$bin}
cp "$from/checkgate-control" "$work/"
cp "$from/checkgate-edge" "$work/checkgate-edge.real"
# The load test starts `checkgate-edge` beside the control plane's binary and kills it at the
# end; this stand-in keeps valgrind running past that kill, so it can be stopped with SIGTERM
# and write its counts.
cat >"$work/checkgate-edge" <<EOF
#!/bin/sh
valgrind --tool=callgrind --callgrind-out-file="$work/out" "$work/checkgate-edge.real" "\$@" &
wait
EOF
chmod +x "$work/checkgate-edge"
total() {
  "$bin/checkgate-loadtest" eval --route "$route" --flags 100 --connections 4 \
    --max-requests "$1" --duration 120s --control-bin "$work/checkgate-control" >/dev/null 2>&1
  pkill -TERM -f "$work/checkgate-edge.real" || true
  for _ in $(seq 60); do [ -s "$work/out" ] && ! pgrep -f "$work/checkgate-edge.real" >/dev/null && break; sleep 0.5; done
  sed -n 's/^summary: //p' "$work/out"
  rm -f "$work/out"
}
small=$(total 1000)
large=$(total 5000)
echo "route $route: $(( (large - small) / 4000 )) instructions per request (totals $small, $large)"
