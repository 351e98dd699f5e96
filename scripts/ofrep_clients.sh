#!/usr/bin/env bash
# Drives the control plane's OFREP endpoints with the real OpenFeature providers, unmodified:
#
#   - Python: openfeature-sdk + openfeature-provider-ofrep (dynamic context, one flag per POST);
#   - Node: @openfeature/server-sdk + @openfeature/ofrep-provider (the same checks);
#   - Node: @openfeature/web-sdk + @openfeature/ofrep-web-provider with the `eventsource`
#     package as EventSource (static context, bulk endpoint, ETag and 304, change
#     notifications over the advertised SSE stream);
#   - the same web provider in headless Chromium, on a page of another origin, where the
#     browser enforces CORS (Debian's chromium package, installed with apt-get if missing).
#
# Installs them, pinned, into a venv and an npm prefix under the target directory; starts a
# debug build of checkgate-control on a free loopback port over a fresh data directory; sets
# up a workspace, a server key and a client key for development, and the flags of
# scripts/ofrep/cases.json; then runs scripts/ofrep/*.{py,mjs} against it, each under
# `timeout`. Every request goes to 127.0.0.1. Runs unattended (CI=true, no stdin).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly PY_SDK=0.10.0
readonly PY_PROVIDER=0.3.0
# Seconds: the server's start, each client's run, each install.
readonly READY_WAIT=60
readonly CLIENT_TIMEOUT=60
readonly INSTALL_TIMEOUT=600

say() { printf '==> %s\n' "$*"; }
die() { printf 'ofrep_clients.sh: %s\n' "$*" >&2; exit 1; }

src=scripts/ofrep
target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target/ofrep-venv"
node_dir="$target/ofrep-node"

# ---- Node.js 20 or later, for the Node providers and the browser check -----------------------
# Installed from Debian's packages when missing. Where that gives an older Node (Debian 12 has
# 18), those three checks are skipped, loudly, and the Python provider still runs.
node_ok() {
  command -v node >/dev/null && command -v npm >/dev/null \
    && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]
}

# ---- the Python provider, pinned, in its own venv ---------------------------------------------
missing=()
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" </dev/null >/dev/null
  chromium=$(command -v chromium || command -v chromium-browser || true)
fi
py_installed() {
  "$venv/bin/python" - "$src/requirements.txt" 2>/dev/null <<'EOF'
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, want = line.split("==")
        if version(name) != want:
            sys.exit(1)
EOF
}
if ! py_installed; then
  say "installing openfeature-sdk $PY_SDK and openfeature-provider-ofrep $PY_PROVIDER into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  timeout "$INSTALL_TIMEOUT" "$venv/bin/pip" install --quiet --disable-pip-version-check \
    --no-input -r "$src/requirements.txt" </dev/null
  py_installed || die "$venv does not hold the versions of $src/requirements.txt after installing them"
fi
py="$venv/bin/python"

# ---- the Node providers, pinned by package-lock.json, under one prefix -------------------------
skipped=()
if node_ok; then
  # `npm ci` installs exactly the lock file; it runs again only when the lock file changed.
  if ! cmp -s "$src/package-lock.json" "$node_dir/package-lock.json" \
     || [ ! -d "$node_dir/node_modules/@openfeature/ofrep-web-provider" ]; then
    say "installing the Node OpenFeature providers into $node_dir"
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    cp "$src/package.json" "$src/package-lock.json" "$node_dir/"
    timeout "$INSTALL_TIMEOUT" npm ci --prefix "$node_dir" --no-audit --no-fund \
      --loglevel=error </dev/null
  fi
  # The programs run from the prefix, so that Node resolves their imports there.
  cp "$src"/*.mjs "$node_dir/"
else
  have=$(node --version 2>/dev/null || echo "no node")
  skipped+=("the Node providers and the browser check (they need Node.js 20 or later; this machine has $have)")
fi

# ---- the server -------------------------------------------------------------------------------
say "building checkgate-control"
cargo build --quiet --locked -p checkgate-control --bin checkgate-control
bin="$target/debug/checkgate-control"

work=$(mktemp -d -t checkgate-ofrep.XXXXXX)
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
say "starting checkgate-control on $base"
# The debug log has one line per request (path and status, never the query or headers): it
# shows each provider's requests when a check fails.
CHECKGATE_DATA_DIR="$work/data" COOKIE_SECURE=false HOST=127.0.0.1 PORT="$port" \
  FEED_ENABLED=false RUST_LOG=warn,checkgate_edge::ops::metrics=debug \
  "$bin" </dev/null >"$work/server.log" 2>&1 &
server=$!

deadline=$((SECONDS + READY_WAIT))
until curl -sf --max-time 2 "$base/ready" >/dev/null 2>&1; do
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; die "the server exited before it was ready"; }
  [ "$SECONDS" -lt "$deadline" ] || die "the server was not ready within ${READY_WAIT}s"
  sleep 0.5
done

# ---- workspace, keys and flags ------------------------------------------------------------------
# api METHOD PATH [BODY]: a signed-in JSON request; prints the body, fails on an HTTP error.
api() {
  local args=(-sS --fail-with-body --max-time 30 -X "$1" -b "$work/jar" -c "$work/jar"
              -H 'X-Checkgate-Request: 1')
  [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' -d "$3")
  curl "${args[@]}" "$base$2"
}
# field EXPR: evaluates a Python expression over the JSON on stdin, bound to `j`.
field() { "$py" -c "import json, sys; j = json.load(sys.stdin); print($1)"; }

api POST /api/setup/complete '{"workspace_name":"Acme","name":"Admin","email":"admin@example.com","password":"correct horse battery"}' >/dev/null
session=$(awk '$6 == "cg_session" { print $7 }' "$work/jar")
[ -n "$session" ] || die "setup set no session cookie"
project=$(api GET /api/projects | field 'j[0]["id"]')
env=$(api GET "/api/projects/$project/environments" | field 'j[0]["id"]')
new_key() { # kind
  api POST "/api/projects/$project/keys" "{\"name\":\"ofrep-$1\",\"environment_id\":\"$env\",\"kind\":\"$1\"}" \
    | field 'j["key"]'
}
server_key=$(new_key server)
client_key=$(new_key client)
"$py" -c 'import json, sys; [print(json.dumps(f)) for f in json.load(open(sys.argv[1]))["flags"]]' \
  "$src/cases.json" | while IFS= read -r flag; do
    api POST "/api/environments/$env/flags" "$flag" >/dev/null
  done
status=$(curl -s -o /dev/null -w '%{http_code}' -b "$work/jar" "$base/api/environments/$env/flags/missing-flag")
[ "$status" = 404 ] || die "missing-flag must not exist (GET answered $status)"

# ---- the clients ---------------------------------------------------------------------------------
export CHECKGATE_URL="$base" CHECKGATE_ENV="$env" CHECKGATE_SESSION="$session"
export OFREP_SERVER_KEY="$server_key" OFREP_CLIENT_KEY="$client_key"
cases="$PWD/$src/cases.json"
failed=()
run() { # name, then the command
  local name=$1 status=0
  shift
  say "$name"
  timeout --kill-after=5 "$CLIENT_TIMEOUT" "$@" </dev/null || status=$?
  case "$status" in
    0) ;;
    124|137) failed+=("$name (did not finish within ${CLIENT_TIMEOUT}s)") ;;
    *) failed+=("$name (exit $status)") ;;
  esac
}
run "Python: openfeature-provider-ofrep $PY_PROVIDER, server key" \
  "$py" "$src/python_provider.py" "$cases"
if [ "${#skipped[@]}" -eq 0 ]; then
  run "Node: @openfeature/ofrep-provider, server key" \
    node "$node_dir/node_server_provider.mjs" "$cases"
  run "Node: @openfeature/ofrep-web-provider, client key, SSE" \
    node "$node_dir/node_web_provider.mjs" "$cases"
  run "Browser: @openfeature/ofrep-web-provider in Chromium, page of another origin (CORS)" \
    "$py" "$src/browser_provider.py" "$chromium" "$cases" "$node_dir/node_modules"
fi

if grep -q 'panicked' "$work/server.log"; then
  grep -A3 'panicked' "$work/server.log" >&2
  failed+=("the server panicked")
fi
if [ "${#failed[@]}" -gt 0 ]; then
  printf '%s\n' '--- the server log (last 60 lines)' >&2
  tail -n 60 "$work/server.log" >&2
  for f in "${failed[@]}"; do printf 'ofrep_clients.sh: FAILED: %s\n' "$f" >&2; done
  exit 1
fi
for s in "${skipped[@]}"; do printf 'ofrep_clients.sh: SKIPPED: %s\n' "$s" >&2; done
say "the OFREP clients found nothing"
