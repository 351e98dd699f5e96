#!/usr/bin/env bash
# User-space instructions the edge spends per request of one evaluation route, counted by
# callgrind: the load test runs twice against an edge under `valgrind --tool=callgrind`
# (1,000 and 5,000 requests, 4 connections), and the difference of the two totals is divided
# by the difference of the requests answered, so start-up cancels out. Nearly deterministic
# (work that follows the clock — readiness polls while valgrind starts, timers — moves it by a
# few hundred instructions between runs) where timings on a shared machine move by tens of
# per cent.
#
#   scripts/callgrind-edge.sh [one|ofrep-one|all|…]    (after a release build; needs valgrind)
#
# FROM=dir takes `checkgate-edge` and `checkgate-control` from dir instead (another build, to
# compare). EDGE_ENV="NAME=value …" gives the edge further settings (COUNT_EVALUATIONS=false,
# say, to count what a setting costs). valgrind hides the CPU's SHA extensions, so SHA-256 (the key check) runs its
# portable code here: a few thousand instructions per request more than natively.
set -euo pipefail
shopt -s inherit_errexit
from=$(realpath "${FROM:-$(dirname "$0")/../target/release}")
cd "$(dirname "$0")/.."
route=${1:-one}
bin=target/release
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
work=$(mktemp -d)
# The edge under valgrind writes its pid here; it is stopped by that pid only.
stop_edge() {
  [[ -s $work/pid ]] || return 0
  local pid
  pid=$(cat "$work/pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  rm -f "$work/pid"
}
trap 'stop_edge; rm -rf "$work"' EXIT
cp "$from/checkgate-control" "$work/"
cp "$from/checkgate-edge" "$work/checkgate-edge.real"
# The load test starts `checkgate-edge` beside the control plane's binary and kills it at the
# end; this stand-in keeps valgrind running past that kill, so it can be stopped with SIGTERM
# and write its counts.
cat >"$work/checkgate-edge" <<EOF
#!/bin/sh
valgrind --tool=callgrind --callgrind-out-file="$work/out" "$work/checkgate-edge.real" "\$@" &
echo \$! >"$work/pid"
wait
EOF
chmod +x "$work/checkgate-edge"
# Prints "<instructions> <requests answered>" for a run of at most $1 requests.
edge_env=()
for setting in ${EDGE_ENV:-}; do
  edge_env+=(--edge-env "$setting")
done
total() {
  "$bin/checkgate-loadtest" eval --route "$route" --flags 100 --connections 4 \
    --max-requests "$1" --duration 120s --control-bin "$work/checkgate-control" \
    "${edge_env[@]}" --out "$work/report.json" 2>"$work/log" || { cat "$work/log" >&2; return 1; }
  stop_edge
  local instructions answered
  instructions=$(sed -n 's/^summary: //p' "$work/out")
  answered=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r=r[-1] if isinstance(r,list) else r; print(r["requests"] - r["errors"])' "$work/report.json")
  [[ $instructions =~ ^[0-9]+$ && $answered =~ ^[0-9]+$ ]] || { echo "no callgrind summary or report" >&2; return 1; }
  rm -f "$work/out"
  echo "$instructions $answered"
}
first=$(total 1000)
second=$(total 5000)
read -r small small_n <<<"$first"
read -r large large_n <<<"$second"
(( large_n > small_n )) || { echo "the runs answered $small_n and $large_n requests" >&2; exit 1; }
echo "route $route: $(( (large - small) / (large_n - small_n) )) instructions per request" \
  "(totals $small for $small_n requests, $large for $large_n)"
