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
# Seconds: each client's run.
readonly CLIENT_TIMEOUT=60

source scripts/lib/control.sh
src=scripts/ofrep
venv="$control_target/ofrep-venv"
node_dir="$control_target/ofrep-node"

# ---- Node.js 20 or later, for the Node providers and the browser check -----------------------
# Installed from Debian's packages when missing. Where that gives an older Node (Debian 12 has
# 18), those three checks are skipped, loudly, and the Python provider still runs.
node_ok() {
  command -v node >/dev/null && command -v npm >/dev/null \
    && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]
}

# ---- the Python provider, pinned, in its own venv ---------------------------------------------
missing=()
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
control_prerequisites "${missing[@]}"
chromium=$(command -v chromium || command -v chromium-browser || true)
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
  control_venv "$venv" -r "$src/requirements.txt"
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
    timeout "$CONTROL_INSTALL_TIMEOUT" npm ci --prefix "$node_dir" --no-audit --no-fund \
      --loglevel=error </dev/null
  fi
  # The programs run from the prefix, so that Node resolves their imports there.
  cp "$src"/*.mjs "$node_dir/"
else
  have=$(node --version 2>/dev/null || echo "no node")
  skipped+=("the Node providers and the browser check (they need Node.js 20 or later; this machine has $have)")
fi

# ---- the server -------------------------------------------------------------------------------
control_build
# The debug log has one line per request (path and status, never the query or headers): it
# shows each provider's requests when a check fails.
control_start ofrep FEED_ENABLED=false RUST_LOG=warn,checkgate_edge::ops::metrics=debug

# ---- workspace, keys and flags ------------------------------------------------------------------
control_setup '{"workspace_name":"Acme","name":"Admin","email":"admin@example.com","password":"correct horse battery"}'
project=$(control_first_project)
env=$(control_api GET "/api/projects/$project/environments" | control_field 'j[0]["id"]')
new_key() { # kind
  control_sdk_key "$project" "$env" "ofrep-$1" "$1" | control_field 'j["key"]'
}
server_key=$(new_key server)
client_key=$(new_key client)
"$py" -c 'import json, sys; [print(json.dumps(f)) for f in json.load(open(sys.argv[1]))["flags"]]' \
  "$src/cases.json" | while IFS= read -r flag; do
    control_api POST "/api/environments/$env/flags" "$flag" >/dev/null
  done
status=$(curl -s -o /dev/null -w '%{http_code}' -b "$control_work/jar" "$control_base/api/environments/$env/flags/missing-flag")
[ "$status" = 404 ] || die "missing-flag must not exist (GET answered $status)"

# ---- the clients ---------------------------------------------------------------------------------
export CHECKGATE_URL="$control_base" CHECKGATE_ENV="$env" CHECKGATE_SESSION="$control_session"
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

if control_panicked; then
  failed+=("the server panicked")
fi
if [ "${#failed[@]}" -gt 0 ]; then
  printf '%s\n' '--- the server log (last 60 lines)' >&2
  tail -n 60 "$control_log" >&2
  for f in "${failed[@]}"; do printf 'ofrep_clients.sh: FAILED: %s\n' "$f" >&2; done
  exit 1
fi
for s in "${skipped[@]}"; do printf 'ofrep_clients.sh: SKIPPED: %s\n' "$s" >&2; done
say "the OFREP clients found nothing"
