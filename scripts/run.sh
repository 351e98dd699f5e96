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
cargo build --release --locked -p checkgate-control
exec ./target/release/checkgate-control "$@"
