#!/usr/bin/env bash
# Load test of the purpose-checked read path against the real server (issue 3).
#
#   bench/load.sh [DURATION_SECS] [CONNECTIONS]
#   TUTELA_BENCH_DB=postgres://postgres@127.0.0.1:5432/bench bench/load.sh 20 16
#
# Builds the release binary, starts `tutela serve --demo` (SQLite in a fresh temporary
# data directory, or the PostgreSQL database named by TUTELA_BENCH_DB) on a loopback
# port, stores one administrator record, then runs `wrk` twice with the same duration and
# connections: first against `GET /healthz` (what the HTTP stack alone serves here), then
# against `GET /v1/subjects/{s}/records/administrator?purpose=account_admin` with the
# tenant admin's token (issue 15 reports the ratio of the two). Every read's audit entry
# is durable before its response is sent.
# Needs `wrk` (Debian package `wrk`). Loopback only; bounded duration.
set -euo pipefail
duration="${1:-20}"
connections="${2:-16}"
threads=2
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }

cargo build --release -q -p tutela-cli --manifest-path "$root/Cargo.toml"
work="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

db_args=()
if [ -n "${TUTELA_BENCH_DB:-}" ]; then
  mkdir -p -m 700 "$work/data"
  db_args=(--database-url "$TUTELA_BENCH_DB")
fi
"$root/target/release/tutela" serve --demo --data-dir "$work/data" "${db_args[@]}" \
  --listen "127.0.0.1:$port" >"$work/out.txt" 2>"$work/err.txt" &
pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
admin_token="$(awk '$1=="tenant_admin" {print $2}' "$work/out.txt")"
subject="$(awk '$1=="subject" && $3=="(administrator)" {print $2}' "$work/out.txt")"
base="http://127.0.0.1:$port"

curl -sf -X PUT "$base/v1/subjects/$subject/records/administrator" \
  -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
  -d '{"purpose":"account_admin","service":"azure","fields":{"name":"Load Test","email":"load@example.cn","phone":"13800138000"}}' >/dev/null

url="$base/v1/subjects/$subject/records/administrator?purpose=account_admin"
curl -sf "$url" -H "Authorization: Bearer $admin_token" >/dev/null

echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
if [ -n "${TUTELA_BENCH_DB:-}" ]; then echo "backend: postgres"; else echo "backend: sqlite"; fi
echo "GET /healthz, $connections connections, ${duration}s"
wrk -t "$threads" -c "$connections" -d "${duration}s" --latency "$base/healthz"
echo
echo "GET records/administrator?purpose=account_admin, $connections connections, ${duration}s"
wrk -t "$threads" -c "$connections" -d "${duration}s" --latency \
  -H "Authorization: Bearer $admin_token" "$url"

# Every read left an audit entry: show the count the sealer reached.
auditor_token="$(awk '$1=="auditor" {print $2}' "$work/out.txt")"
sleep 2
echo "audit head after the run: $(curl -sf "$base/v1/audit/head" -H "Authorization: Bearer $auditor_token")"
