# shellcheck shell=bash
# A control plane for one check, shared by the scripts that drive a live checkgate-control
# (scripts/schemathesis.sh, scripts/ofrep_clients.sh). Sourced from the repository's root,
# after `set -euo pipefail`:
#
#   control_prerequisites [PACKAGE...]  curl, python3 and its venv, and the packages named, from apt
#   control_venv DIR PIP_ARGS...        a fresh venv at DIR with PIP_ARGS installed into it
#   control_build                       builds the debug binary; sets control_bin
#   control_start TAG [NAME=VALUE...]   starts it over a fresh data directory on a free loopback
#                                       port and waits for /ready; sets control_work, control_log
#                                       and control_base; stops it and removes the data on exit
#   control_setup BODY                  first-run setup, signed in; sets control_session
#   control_api METHOD PATH [BODY]      a signed-in JSON request; prints the body
#   control_field EXPR                  a Python expression over the JSON on stdin, bound to `j`
#   control_first_project               the id of the first project
#   control_sdk_key PROJECT ENV NAME [KIND]  creates an SDK key; prints the answer
#   control_panicked                    whether the server's log holds a panic (shown on stderr)
#
# Every wait is bounded: installs by CONTROL_INSTALL_TIMEOUT, the start by CONTROL_READY_WAIT,
# each request by curl's --max-time.

readonly CONTROL_INSTALL_TIMEOUT=600
readonly CONTROL_READY_WAIT=60

say() { printf '==> %s\n' "$*"; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }

control_target="${CARGO_TARGET_DIR:-$PWD/target}"
control_bin=""
control_work=""
control_log=""
control_base=""
control_pid=""
control_session=""

control_prerequisites() {
  local missing=()
  command -v curl >/dev/null || missing+=(curl)
  command -v python3 >/dev/null || missing+=(python3)
  python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
  missing+=("$@")
  [ "${#missing[@]}" -gt 0 ] || return 0
  say "installing ${missing[*]}"
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
  as_root timeout "$CONTROL_INSTALL_TIMEOUT" apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive timeout "$CONTROL_INSTALL_TIMEOUT" \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
}

control_venv() {
  local dir=$1
  shift
  rm -rf "$dir"
  python3 -m venv "$dir"
  timeout "$CONTROL_INSTALL_TIMEOUT" "$dir/bin/pip" install --quiet --disable-pip-version-check \
    --no-input "$@" </dev/null
}

control_build() {
  say "building checkgate-control"
  cargo build --quiet --locked -p checkgate-control --bin checkgate-control
  control_bin="$control_target/debug/checkgate-control"
}

control_cleanup() {
  if [ -n "$control_pid" ]; then
    kill "$control_pid" 2>/dev/null || true
    wait "$control_pid" 2>/dev/null || true
  fi
  [ -z "$control_work" ] || rm -rf "$control_work"
}

# TAG names the temporary directory; NAME=VALUE pairs are more of the server's environment
# (a later one wins over the defaults: RUST_LOG=warn, COOKIE_SECURE=false).
control_start() {
  local tag=$1 port
  shift
  [ -n "$control_bin" ] || control_build
  control_work=$(mktemp -d -t "checkgate-$tag.XXXXXX")
  control_log="$control_work/server.log"
  trap control_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  control_base="http://127.0.0.1:$port"
  say "starting checkgate-control on $control_base"
  # FEED_PORT=0: the feed on a port of its own, never the default one a local service may hold.
  env CHECKGATE_DATA_DIR="$control_work/data" COOKIE_SECURE=false HOST=127.0.0.1 PORT="$port" FEED_PORT=0 \
    RUST_LOG=warn "$@" "$control_bin" </dev/null >"$control_log" 2>&1 &
  control_pid=$!

  local deadline=$((SECONDS + CONTROL_READY_WAIT))
  until curl -sf --max-time 2 "$control_base/ready" >/dev/null 2>&1; do
    kill -0 "$control_pid" 2>/dev/null || { cat "$control_log" >&2; die "the server exited before it was ready"; }
    [ "$SECONDS" -lt "$deadline" ] || die "the server was not ready within ${CONTROL_READY_WAIT}s"
    sleep 0.5
  done
}

control_api() {
  local args=(-sS --fail-with-body --max-time 30 -X "$1" -b "$control_work/jar" -c "$control_work/jar"
              -H 'X-Checkgate-Request: 1')
  [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' -d "$3")
  curl "${args[@]}" "$control_base$2"
}

control_field() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }

control_setup() {
  control_api POST /api/setup/complete "$1" >/dev/null
  control_session=$(awk '$6 == "cg_session" { print $7 }' "$control_work/jar")
  [ -n "$control_session" ] || die "setup set no session cookie"
}

control_first_project() { control_api GET /api/projects | control_field 'j[0]["id"]'; }

control_sdk_key() {
  local body="{\"name\":\"$3\",\"environment_id\":\"$2\""
  [ $# -lt 4 ] || body+=",\"kind\":\"$4\""
  control_api POST "/api/projects/$1/keys" "$body}"
}

control_panicked() {
  grep -q 'panicked' "$control_log" || return 1
  grep -A3 'panicked' "$control_log" >&2
}
