#!/usr/bin/env bash
# The test command: makes sure PostgreSQL, Redis and NATS (JetStream) answer on loopback —
# starting them, and installing them with apt-get first if they are missing — then runs the
# whole test suite. Every wait is bounded; no traffic leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
export CHECKGATE_TEST_PG="${CHECKGATE_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
export CHECKGATE_TEST_REDIS="${CHECKGATE_TEST_REDIS:-redis://127.0.0.1:6379}"
export CHECKGATE_TEST_NATS="${CHECKGATE_TEST_NATS:-nats://127.0.0.1:4222}"

say() { printf '==> %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo -n "$@"
  else die "need root (or sudo) to run: $*"; fi
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # port name
  local i
  for i in $(seq 1 60); do answers "$1" && return 0; sleep 1; done
  die "$2 did not answer on 127.0.0.1:$1 within 60 s"
}

apt_updated=0
install() {
  if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  answers 5432 && return 0
  say "starting PostgreSQL"
  command -v pg_ctlcluster >/dev/null || install postgresql
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || die "PostgreSQL is installed but has no cluster under /etc/postgresql"
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for 5432 PostgreSQL
}

ensure_redis() {
  answers 6379 && return 0
  say "starting Redis"
  command -v redis-server >/dev/null || install redis-server
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_for 6379 Redis
}

ensure_nats() {
  answers 4222 && return 0
  say "starting NATS with JetStream"
  command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || install nats-server
  local bin
  bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  as_root mkdir -p /var/lib/nats-server
  as_root start-stop-daemon --start --oknodo --background --exec "$bin" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server
  wait_for 4222 NATS
}

ensure_postgres
ensure_redis
ensure_nats
say "PostgreSQL, Redis and NATS answer on 127.0.0.1"

say "workspace tests"
cargo test --workspace --locked

say "fuzz target builds"
cargo check --locked --manifest-path protocol/fuzz/Cargo.toml

say "load-test binary, functional check (figures are not judged here)"
result=$(cargo run --quiet --locked -p checkgate-loadtest -- ceiling --connections 4 --duration 1 --max-requests 2000)
printf '%s\n' "$result" | grep -q '"errors": 0' || die "the ceiling scenario reported errors: $result"
printf '%s\n' "$result" | grep -qE '"requests": [1-9]' || die "the ceiling scenario made no request: $result"

say "all tests passed"
