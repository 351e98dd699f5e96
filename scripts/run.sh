#!/usr/bin/env bash
# The run command: builds Checkgate and starts the control plane on its embedded default
# (a SQLite file under ./data; no external server needed). Extra arguments go to the binary,
# e.g. `scripts/run.sh --port 8080`; settings can also come from the environment (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
# jemalloc, the binaries' allocator, is built from C with make; Debian's Rust toolchain setup
# may not have it.
if ! command -v make >/dev/null; then
  echo "run.sh: installing make (jemalloc is built with it)" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends make </dev/null >/dev/null
  else
    sudo -n apt-get update -qq && sudo -n apt-get install -y -qq --no-install-recommends make </dev/null >/dev/null \
      || { echo "run.sh: install make (apt-get install make), then run this again" >&2; exit 1; }
  fi
fi
# The dashboard: built with Node.js 20+ and npm when its sources are newer than the build,
# then served from dashboard/dist (PUBLIC_DIR). Without Node, the API still runs.
if [ -z "${PUBLIC_DIR:-}" ]; then
  node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$node_major" -ge 20 ] && command -v npm >/dev/null; then
    stamp=dashboard/dist/index.html
    if [ ! -f "$stamp" ] || [ -n "$(find dashboard/src dashboard/index.html dashboard/package-lock.json dashboard/vite.config.ts -newer "$stamp" -print -quit)" ]; then
      echo "run.sh: building the dashboard" >&2
      (cd dashboard && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; } && npm run build) >&2
    fi
    export PUBLIC_DIR="$PWD/dashboard/dist"
  else
    echo "run.sh: Node.js 20 or newer with npm is needed to build the dashboard; serving the API only" >&2
  fi
fi
cargo build --release --locked -p checkgate-control
exec ./target/release/checkgate-control "$@"
