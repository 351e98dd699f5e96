#!/usr/bin/env bash
# The test command: makes sure PostgreSQL, Redis and NATS (JetStream) answer on loopback —
# starting them, and installing them with apt-get first if they are missing — then runs the
# whole test suite, including a bounded schemathesis run of the REST API against its OpenAPI
# document (scripts/schemathesis.sh) and the real OpenFeature OFREP providers against the
# control plane (scripts/ofrep_clients.sh; its Node and browser checks need Node.js 20), and the
# dashboard's type-check, component tests, build and browser end-to-end test
# (scripts/dashboard.sh; Node.js 20 and Chromium), and prints a summary. Every wait is
# bounded; no service listens beyond 127.0.0.1. Runs unattended (CI=true, no stdin) as root on
# Debian 12, or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
export CHECKGATE_TEST_PG="${CHECKGATE_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
export CHECKGATE_TEST_REDIS="${CHECKGATE_TEST_REDIS:-redis://127.0.0.1:6379}"
export CHECKGATE_TEST_NATS="${CHECKGATE_TEST_NATS:-nats://127.0.0.1:4222}"

# Seconds a service gets to answer after it is started.
readonly SERVICE_WAIT=60

say() { printf '==> %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

# ---- summary: every step's outcome and time, printed however the script ends ----------------
steps=()
current=""
started_at=0
step() { # name: marks the previous step passed and starts timing the next
  finish_step
  current="$1"
  started_at=$SECONDS
  say "$1"
}
finish_step() {
  if [ -n "$current" ]; then
    steps+=("ok      $(printf '%4ds' $((SECONDS - started_at)))  $current")
    current=""
  fi
}
summary() {
  local status=$?
  if [ -n "$current" ]; then
    steps+=("FAILED  $(printf '%4ds' $((SECONDS - started_at)))  $current")
  fi
  printf '\n==> summary\n'
  local line
  for line in "${steps[@]}"; do printf '    %s\n' "$line"; done
  if [ "$status" -eq 0 ]; then
    printf '==> all checks passed in %ds\n' "$SECONDS"
  else
    printf '==> FAILED (exit %d) after %ds\n' "$status" "$SECONDS"
  fi
}
trap summary EXIT

# ---- services ---------------------------------------------------------------------------------
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo -n "$@"
  else die "need root (or sudo) to run: $*"; fi
}

# Whether something accepts TCP connections on 127.0.0.1:$1 (bounded: loopback refuses fast,
# and `timeout` covers the rest).
answers() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_for() { # port name
  local deadline=$((SECONDS + SERVICE_WAIT))
  until answers "$1"; do
    [ "$SECONDS" -lt "$deadline" ] || die "$2 did not answer on 127.0.0.1:$1 within ${SERVICE_WAIT}s"
    sleep 1
  done
}

apt_updated=0
install() {
  say "installing $*"
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null
}

ensure_postgres() {
  answers 5432 && return 0
  local fresh=0
  if ! command -v pg_ctlcluster >/dev/null; then
    install postgresql
    fresh=1
  fi
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || die "PostgreSQL is installed but has no cluster under /etc/postgresql"
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  # A cluster this script installed lets local test connections in as `postgres` without a
  # password; one an administrator installed keeps its own rules. Debian's default
  # listen_addresses is localhost, so the cluster stays on loopback.
  if [ "$fresh" -eq 1 ] && ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  say "starting PostgreSQL $version"
  # The package may have started the cluster already: then reload it to read the new rules.
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start \
    || as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload \
    || true
  wait_for 5432 PostgreSQL
}

ensure_redis() {
  answers 6379 && return 0
  command -v redis-server >/dev/null || install redis-server
  say "starting Redis"
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_for 6379 Redis
}

ensure_nats() {
  # The feed's NATS tests start nats-server processes of their own, so the binary is needed
  # even where a server already answers.
  [ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null || install nats-server
  answers 4222 && return 0
  local bin=/usr/sbin/nats-server
  [ -x "$bin" ] || bin=$(command -v nats-server)
  say "starting NATS with JetStream"
  as_root mkdir -p /var/lib/nats-server
  as_root start-stop-daemon --start --oknodo --background --exec "$bin" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server
  wait_for 4222 NATS
}

step "build tools: make, for jemalloc (the binaries' allocator, built from C)"
command -v make >/dev/null || install make

step "services: PostgreSQL, Redis and NATS on 127.0.0.1"
ensure_postgres
ensure_redis
ensure_nats

# ---- tests ------------------------------------------------------------------------------------
step "workspace tests (cargo test --workspace --locked)"
cargo test --workspace --locked

step "REST API against its OpenAPI document (schemathesis, bounded)"
bash scripts/schemathesis.sh

step "dashboard: type-check, component tests, build, end-to-end in headless Chromium"
bash scripts/dashboard.sh

step "OFREP with the real OpenFeature providers (Python, Node server, Node web with SSE, Chromium)"
bash scripts/ofrep_clients.sh

# The fuzz targets (the feed's frame decoder, the front door's head parser), 20 s each; their
# properties also run as proptests within the workspace tests above.
step "fuzz targets, briefly (cargo-fuzz, nightly; built only where neither can be had)"
bash scripts/fuzz.sh

# The dependency policy in deny.toml: licences, banned and duplicate crates, sources — and
# RustSec advisories where the advisory database (on GitHub) can be fetched; it cannot from
# every machine, and then this says so rather than failing or passing silently.
readonly CARGO_DENY_VERSION=0.20.2
step "dependency policy (cargo-deny $CARGO_DENY_VERSION: licenses, bans, sources, advisories)"
if ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
  say "installing cargo-deny $CARGO_DENY_VERSION (a few minutes, once)"
  cargo install --quiet --locked --no-default-features cargo-deny --version "$CARGO_DENY_VERSION"
fi
# cargo-deny reads the metadata of every platform's dependencies (Windows and wasm ones too),
# which a Linux build never downloads: fetch them first, from crates.io.
cargo fetch --locked --quiet
cargo deny --offline check licenses bans sources
if timeout 5 bash -c 'exec 3<>/dev/tcp/github.com/443' 2>/dev/null; then
  cargo deny check advisories
else
  say "advisories NOT checked: github.com (the RustSec advisory database) is unreachable from here"
fi

step "load-test binary, functional check (every scenario, small; figures are not judged here)"
# Debug builds, which the tests above already compiled: this checks that every scenario works
# (no error, every change received), not how fast — BENCHMARKS.md has the figures and the
# release commands behind them.
cargo build --quiet --locked -p checkgate-loadtest -p checkgate-control -p checkgate-edge
target/debug/checkgate-loadtest --out target/loadtest-quick.json --plot target/loadtest-plots quick
say "results in target/loadtest-quick.json, plots in target/loadtest-plots/"
check_scenario() { # name, then the scenario's arguments
  local name=$1 result
  shift
  result=$(target/debug/checkgate-loadtest "$@")
  printf '%s\n' "$result" | grep -q '"errors": 0,' || die "the $name scenario reported errors: $result"
}
check_scenario api-update-flag-postgres api --route update-flag --flags 20 --connections 4 --duration 1s \
  --postgres "$CHECKGATE_TEST_PG"
check_scenario feed-apply-postgres feed-apply --rate 50 --duration 1s --postgres "$CHECKGATE_TEST_PG"
# The NATS transport, each on a nats-server of the scenario's own (installed above).
check_scenario feed-apply-nats feed-apply --transport nats --rate 50 --duration 1s
check_scenario feed-fanout-nats feed-fanout --edges 1,5 --changes 5
check_scenario read-your-writes-nats read-your-writes --transport nats --rate 20 --duration 1s

finish_step
