#!/usr/bin/env bash
# PII engine benchmark (issue 8): throughput, peak RSS and P/R/F1 on the public corpus.
#
#   bench/pii.sh [MB ...]        default: 10 100
#
# Generates the corpus with ../shared/bench/pii_corpus.py (seed 42; same seed, same
# bytes) unless present in $PII_CORPUS_DIR (default /tmp/tutela-pii), runs the release
# `tutela pii scan` on it three times (one core; the best wall time is reported), and
# scores the spans with ../shared/bench/pii_score.py.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${TUTELA_SHARED:-$root/../shared}"
dir="${PII_CORPUS_DIR:-/tmp/tutela-pii}"
sizes=("$@"); [ ${#sizes[@]} -eq 0 ] && sizes=(10 100)
cargo build --release -q -p tutela-cli --manifest-path "$root/Cargo.toml"
bin="$root/target/release/tutela"
for mb in "${sizes[@]}"; do
  out="$dir/c${mb}m"
  [ -f "$out/corpus.txt" ] || python3 "$shared/bench/pii_corpus.py" --mb "$mb" --seed 42 --out "$out" >/dev/null
  bytes=$(stat -c %s "$out/corpus.txt")
  best=""
  for _ in 1 2 3; do
    /usr/bin/time -o "$out/time.txt" -f "%e %M" taskset -c 0 "$bin" pii scan "$out/corpus.txt" >"$out/pred.jsonl" 2>/dev/null
    t=$(tail -1 "$out/time.txt")
    secs=${t% *}; rss=${t#* }
    if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; best_rss=$rss; fi
  done
  echo "== ${mb} MB corpus: $bytes bytes, best of 3: ${best} s, $(awk "BEGIN{printf \"%.1f\", $bytes/1e6/$best}") MB/s, peak RSS $((best_rss / 1024)) MiB"
  python3 "$shared/bench/pii_score.py" --corpus "$out" --pred "$out/pred.jsonl"
done
