#!/usr/bin/env bash
# What PostgreSQL alone can insert into the impressions table on this machine: the ceiling the
# stored-ingest figure in BENCHMARKS.md is read against. No control plane and no HTTP: pgbench
# sends the statement the store sends for a batch (500 items as one JSON parameter expanded by
# `json_to_recordset`, `synchronous_commit = off` as insights transactions set it), each
# evaluated at a random instant of one day, users drawn from 50,000, into a scratch database on
# the loopback server, for each index set below, with 4 clients (no lock between them) and with
# 1 (batches one at a time, as one environment's batches committed before they stopped sharing rows).
#
#   scripts/pgbench-impressions.sh [seconds per run, default 10]
#
# Index sets: `pk` — the primary key only; `ours` — migration 0010's (Checkgate's three, and
# ours by id and by user, beside the primary key and the environment's foreign key);
# `lean` — the primary key on (environment, id) in place of the index by id, and a BRIN index
# on `received_at` in place of its B-tree.
set -euo pipefail
seconds=${1:-10}
url=${PGURL:-postgres://postgres@127.0.0.1:5432}
db="checkgate_pgbench_$$"
command -v pgbench >/dev/null || { echo "pgbench is not installed (postgresql-client)" >&2; exit 1; }
work=$(mktemp -d)
cleanup() {
  psql -q "$url/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
env_id=01234567-89ab-cdef-0123-456789abcdef

# One batch of 500 items, as the store's statement receives it.
python3 - "$env_id" > "$work/insert.sql" <<'EOF'
import json, random, sys
random.seed(7)
items = [{"f": f"load-{n % 20}", "u": f"user-{random.randrange(50000)}",
          "v": random.choice(["true", "false", "blue"]),
          "c": json.dumps({"plan": "pro", "country": "NZ", "n": n}), "t": n}
         for n in range(500)]
batch = json.dumps(items).replace("'", "''")
print("INSERT INTO impressions (environment_id, flag_key, user_id, value, context, evaluated_at, received_at) "
      f"SELECT '{sys.argv[1]}', x.f, x.u, x.v, x.c::jsonb, "
      "(extract(epoch from now()) * 1000)::bigint - (random() * 86400000)::bigint, "
      "(extract(epoch from clock_timestamp()) * 1000)::bigint "
      f"FROM json_to_recordset('{batch}'::json) AS x(f text, u text, v text, c text, t bigint);")
EOF

schema() {
  local columns="environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    flag_key TEXT NOT NULL, user_id TEXT, value TEXT NOT NULL, context JSONB,
    evaluated_at BIGINT NOT NULL, received_at BIGINT NOT NULL"
  case $1 in
    pk) echo "CREATE TABLE impressions (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, $columns);" ;;
    ours) cat <<EOF
CREATE TABLE impressions (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, $columns);
CREATE INDEX impressions_by_flag ON impressions (environment_id, flag_key, evaluated_at DESC);
CREATE INDEX impressions_by_time ON impressions (environment_id, evaluated_at DESC);
CREATE INDEX impressions_received ON impressions (received_at);
CREATE INDEX impressions_by_id ON impressions (environment_id, id DESC);
CREATE INDEX impressions_by_user ON impressions (environment_id, user_id, id DESC);
EOF
    ;;
    lean) cat <<EOF
CREATE TABLE impressions (id BIGINT GENERATED ALWAYS AS IDENTITY, $columns,
    PRIMARY KEY (environment_id, id));
CREATE INDEX impressions_by_flag ON impressions (environment_id, flag_key, evaluated_at DESC);
CREATE INDEX impressions_by_time ON impressions (environment_id, evaluated_at DESC);
CREATE INDEX impressions_received ON impressions USING brin (received_at);
CREATE INDEX impressions_by_user ON impressions (environment_id, user_id, id DESC);
EOF
    ;;
  esac
}

printf '%-6s %-8s %12s %14s\n' "set" "clients" "batches/s" "impressions/s"
for set in pk ours lean; do
  for clients in 4 1; do
    psql -q "$url/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
    psql -q "$url/postgres" -c "CREATE DATABASE $db" >/dev/null
    {
      echo "CREATE TABLE environments (id TEXT PRIMARY KEY);"
      echo "INSERT INTO environments VALUES ('$env_id');"
      schema "$set"
    } | psql -q -v ON_ERROR_STOP=1 "$url/$db" >/dev/null
    tps=$(PGOPTIONS="-c synchronous_commit=off" pgbench -n -c "$clients" -j "$clients" \
      -T "$seconds" -f "$work/insert.sql" "$url/$db" 2>/dev/null |
      awk '/^tps/ {print $3; exit}')
    awk -v s="$set" -v c="$clients" -v t="$tps" 'BEGIN { printf "%-6s %-8s %12.1f %14.0f\n", s, c, t, t * 500 }'
  done
done
