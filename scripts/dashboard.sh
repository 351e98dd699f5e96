#!/usr/bin/env bash
# The dashboard's checks, run by the test command: installs its npm packages (pinned by
# dashboard/package-lock.json), type-checks it, runs its component tests (Vitest), builds it,
# and runs its end-to-end test (dashboard/e2e/run.mjs) in headless Chromium against debug
# builds of checkgate-control and of an edge relay following its feed, on free loopback ports. Needs Node.js 20 or later with npm;
# installs Debian's chromium with apt-get if it is missing. Screenshots of the main screens land
# in dashboard/e2e/artifacts/. Every step is bounded by `timeout`; runs unattended.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly INSTALL_TIMEOUT=600
readonly STEP_TIMEOUT=600

say() { printf '==> %s\n' "$*"; }
die() { printf 'dashboard.sh: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "installing nodejs and npm"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    nodejs npm </dev/null >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "the dashboard needs Node.js 20 or later (this machine has $(node --version)); \
install it (e.g. from nodejs.org or NodeSource) and run this again"
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  say "installing chromium"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium </dev/null >/dev/null
  chromium=$(command -v chromium || command -v chromium-browser || die "chromium did not install")
fi

cd dashboard
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing the dashboard's packages (npm ci)"
  timeout "$INSTALL_TIMEOUT" npm ci --no-audit --no-fund </dev/null
fi
say "type-check (tsc)"
timeout "$STEP_TIMEOUT" npx --no-install tsc --noEmit
say "component tests (vitest)"
timeout "$STEP_TIMEOUT" npx --no-install vitest run </dev/null
say "build (vite)"
timeout "$STEP_TIMEOUT" npx --no-install vite build --logLevel warn
cd ..

say "end-to-end in headless Chromium against checkgate-control and an edge relay"
cargo build --quiet --locked -p checkgate-control -p checkgate-edge
CHECKGATE_CONTROL_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/checkgate-control" \
  CHECKGATE_EDGE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/checkgate-edge" CHROMIUM="$chromium" \
  timeout "$STEP_TIMEOUT" node dashboard/e2e/run.mjs </dev/null
