#!/usr/bin/env bash
# The run command: builds Checkgate and starts the control plane on its embedded default
# (a SQLite file under ./data; no external server needed). Extra arguments go to the binary,
# e.g. `scripts/run.sh --port 8080`; settings can also come from the environment (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p checkgate-control
exec ./target/release/checkgate-control "$@"
