#!/usr/bin/env bash
# HTTP load on the release crm-server over PostgreSQL with a 100,000-contact base:
# authenticated GET /api/contacts?limit=50 with a filter, GET /api/contacts/{id} and
# POST /api/contacts, each with wrk at 64 connections; the server's RSS under that load;
# and the same list query straight from PostgreSQL with pgbench, for the ratio.
#
#   benches/http-load.sh                 # figures printed and written to target/crm-bench/http-load.txt
#   CRM_LOAD_CONTACTS=20000 CRM_LOAD_SECONDS=10 benches/http-load.sh
#   CRM_LOAD_BIN=/tmp/crm-server-before benches/http-load.sh   # another build of crm-server
#
# Needs: the local PostgreSQL (postgres@127.0.0.1:5432, trust), wrk (apt), pgbench, curl, jq.
set -euo pipefail
cd "$(dirname "$0")/.."

contacts="${CRM_LOAD_CONTACTS:-100000}"
seconds="${CRM_LOAD_SECONDS:-20}"
conns="${CRM_LOAD_CONNECTIONS:-64}"
port="${CRM_LOAD_PORT:-18090}"
db=crm_load
pg=postgres://postgres@127.0.0.1:5432
base="http://127.0.0.1:$port"
out=target/crm-bench
mkdir -p "$out"
for tool in wrk pgbench curl jq; do
  command -v "$tool" >/dev/null || { echo "http-load: $tool is missing (apt-get install wrk postgresql-client curl jq)" >&2; exit 1; }
done

# CRM_LOAD_BIN: a crm-server built elsewhere (another commit, for a before/after).
if [ -n "${CRM_LOAD_BIN:-}" ]; then
  bin="$CRM_LOAD_BIN"
else
  cargo build --release --locked -q -p crm-http --bin crm-server
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/crm-server"
fi
work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

psql "$pg/postgres" -qc "drop database if exists $db with (force)" -qc "create database $db" >/dev/null
export CRM_DATABASE_URL="$pg/$db" CRM_SECRETS_FILE="$work/secrets.json" CRM_MAIL_DIR="$work/mail" CRM_FILES_DIR="$work/files"
password='correct horse battery staple'
(cd "$work" && "$bin" create-admin --username admin --email admin@example.com --password "$password" 2>/dev/null)
echo "seeding $contacts contacts through the services…" >&2
seed_start=$(date +%s.%N)
(cd "$work" && "$bin" seed-demo --companies 300 --contacts "$contacts" --deals 0 2>/dev/null)
seed_end=$(date +%s.%N)
psql "$pg/$db" -qc 'analyze' >/dev/null

(cd "$work" && CRM_LOG=warn "$bin" --bind "127.0.0.1:$port" >"$work/server.log" 2>&1) &
server_pid=$!
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
# A generous per-IP limit would still stop wrk at the login route only; the load uses one token.
token=$(curl -sf "$base/api/auth/login" -H 'content-type: application/json' \
  -d "{\"username\": \"admin\", \"password\": \"$password\"}" | jq -r .accessToken)
id=$(curl -sf "$base/api/contacts?limit=1" -H "authorization: Bearer $token" | jq -r '.data[0].id')
server_rss() { ps -o rss= -p "$(pgrep -f "$bin --bind 127.0.0.1:$port" | head -1)" | tr -d ' '; }

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"name": "Load Test", "lifecycleStage": "lead"}'
LUA

run() {
  local name=$1 url=$2; shift 2
  local file
  file="$work/$(echo "$name" | tr -c 'a-zA-Z0-9' '_').txt"
  wrk -t2 -c"$conns" -d"${seconds}s" --latency -H "authorization: Bearer $token" "$@" "$url" >"$file"
  local rps p99 p50 rss
  rps=$(awk '/^Requests\/sec/ {print $2}' "$file")
  p50=$(awk '$1 == "50%" {print $2}' "$file")
  p99=$(awk '$1 == "99%" {print $2}' "$file")
  rss=$(server_rss)
  local errors
  errors=$(awk '/Non-2xx or 3xx responses/ {print $5}' "$file")
  printf '%-34s %10s req/s   p50 %8s   p99 %8s   server RSS %6d MB   non-2xx %s\n' \
    "$name" "$rps" "$p50" "$p99" "$((rss / 1024))" "${errors:-0}"
}

filter='filter=lifecycleStage%5Beq%5D:customer'
# The same page straight from PostgreSQL (the statement the store sends for that request,
# written out), with as many connections as the server's pool (10) and prepared
# statements, as sqlx does. Run before the POST load, whose new rows would change it.
cat >"$work/list.sql" <<'SQL'
SELECT * FROM contacts WHERE lifecycle_stage = 'customer' AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 51;
SQL
results=$(
  echo "http load: $(nproc) cores, $contacts contacts on PostgreSQL, $conns connections, ${seconds}s each, $(date -u +%F)"
  printf 'seeding %s contacts through the services: %.1f s\n' "$contacts" "$(echo "$seed_end - $seed_start" | bc)"
  run "GET /api/contacts?limit=50&filter" "$base/api/contacts?limit=50&$filter"
  raw=$(pgbench -n -M prepared -c 10 -j 2 -T "$seconds" -f "$work/list.sql" "$pg/$db" 2>/dev/null | awk '/^tps/ {print $3; exit}')
  printf 'pgbench, the same list query (10 connections, prepared): %.0f queries/s\n' "$raw"
  run "GET /api/contacts/{id}" "$base/api/contacts/$id"
  run "POST /api/contacts" "$base/api/contacts" -s "$work/post.lua"
)
kill "$server_pid" 2>/dev/null || true
server_pid=""
raw=$(echo "$results" | awk '/^pgbench/ {print $(NF-1)}')
api=$(echo "$results" | awk -F'  +' '/GET \/api\/contacts\?limit/ {print $2}' | awk '{print $1}')
results="$results
$(printf 'API list throughput / raw query:    %10.2f\n' "$(echo "$api / $raw" | bc -l)")"
echo "$results" | tee "$out/http-load.txt"
sleep 1
psql "$pg/postgres" -qc "drop database if exists $db with (force)" >/dev/null
