#!/usr/bin/env bash
# Load test with malformed requests mixed into valid traffic (issue 14, "Proof").
#
#   bench/malformed.sh [DURATION_SECS] [CONNECTIONS] [VALID_SHARE_PERCENT]
#
# Starts `tutela serve --demo` on SQLite in a fresh temporary data directory on a
# loopback port (body limit lowered to 16 KiB so oversized bodies are cheap to send),
# stores one administrator record, then runs `wrk` with bench/malformed.lua: by default
# half the requests are valid purpose-checked reads
# (`GET /v1/subjects/{s}/records/administrator?purpose=account_admin`), the other half
# malformed (bad JSON, NUL and unpaired surrogates, 5,000-deep nesting, wrong types,
# missing content type, oversized bodies, no/bad/unknown tokens, bad and foreign ids,
# unknown categories, bad, missing and prohibited purposes, bad query strings, wrong
# methods, unknown routes). Prints the answers per status and exits non-zero when any
# answer is a 5xx, a malformed request is answered 2xx, valid reads stop being answered
# 200, or connections fail; then checks the server still answers a valid read.
#
# The binary: $TUTELA_BIN if set (e.g. target/debug/tutela for a quick check), else the
# release build (built here). Needs `wrk` (Debian package `wrk`). Loopback only; bounded
# duration.
set -euo pipefail
duration="${1:-20}"
connections="${2:-8}"
valid_share="${3:-50}"
threads=2
body_limit=16384
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }

if [[ -n "${TUTELA_BIN:-}" ]]; then
  bin="$TUTELA_BIN"
else
  cargo build --release -q -p tutela-cli --manifest-path "$root/Cargo.toml"
  bin="$root/target/release/tutela"
fi
[[ -x "$bin" ]] || { echo "no tutela binary at $bin" >&2; exit 2; }

work="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
pid=""
trap '[[ -n "$pid" ]] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$work"' EXIT

TUTELA_LIMITS__BODY_BYTES="$body_limit" "$bin" serve --demo --data-dir "$work/data" \
  --listen "127.0.0.1:$port" >"$work/out.txt" 2>"$work/err.txt" &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
  curl -sf "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$base/healthz" >/dev/null || { echo "server did not start:" >&2; cat "$work/err.txt" >&2; exit 1; }
admin_token="$(awk '$1=="tenant_admin" {print $2}' "$work/out.txt")"
subject="$(awk '$1=="subject" && $3=="(administrator)" {print $2}' "$work/out.txt")"
[[ -n "$admin_token" && -n "$subject" ]] || { echo "demo output not understood" >&2; exit 1; }

curl -sf -X PUT "$base/v1/subjects/$subject/records/administrator" \
  -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
  -d '{"purpose":"account_admin","service":"azure","fields":{"name":"Load Test","email":"load@example.cn","phone":"13800138000"}}' >/dev/null

url="$base/v1/subjects/$subject/records/administrator?purpose=account_admin"
curl -sf "$url" -H "Authorization: Bearer $admin_token" >/dev/null

echo "binary: $bin"
echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "valid reads mixed with malformed requests (${valid_share}% valid), $connections connections, ${duration}s"
SUBJECT="$subject" ADMIN_TOKEN="$admin_token" BODY_LIMIT="$body_limit" VALID_SHARE="$valid_share" \
  CONNECTIONS="$connections" RESULT="$work/result.txt" \
  wrk -t "$threads" -c "$connections" -d "${duration}s" --timeout 10s \
  -s "$root/bench/malformed.lua" "$base"
cat "$work/result.txt"

status=0
grep -q '^verdict: PASS' "$work/result.txt" || status=1
# The server is still up and still answers a valid read after the run.
code="$(curl -s -o /dev/null -w '%{http_code}' "$url" -H "Authorization: Bearer $admin_token")"
echo "valid read after the run: $code"
[[ "$code" == 200 ]] || status=1
if grep -qi 'panicked' "$work/err.txt"; then
  echo "the server log shows a panic:" >&2
  grep -i -m5 'panicked' "$work/err.txt" >&2
  status=1
fi
exit "$status"
