#!/usr/bin/env bash
# Side-by-side A/B of two `wasmhook` binaries under the pipeline bench.
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY [ROUNDS]
#
# Builds the pipeline bench, then for each round runs it with OLD and with
# NEW in turn (100 events per ingest request, then one), by putting each
# binary at target/release/wasmhook, the path the bench starts. The raw
# loopback baseline is measured in every run, so compare ratios within a
# round. The binary that was at that path is put back at the end.
# To get an older binary: `git worktree add /tmp/old REV`, build it there
# with CARGO_TARGET_DIR pointing elsewhere, and pass its target/release/wasmhook.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: scripts/bench-ab.sh OLD_BINARY NEW_BINARY [ROUNDS]}
new=${2:?usage: scripts/bench-ab.sh OLD_BINARY NEW_BINARY [ROUNDS]}
rounds=${3:-3}
events=${EVENTS:-20000}
bench=$(cargo bench -p wasmhook --bench pipeline --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*pipeline-[^"]*\)".*/\1/p' | tail -1)
[ -x "$bench" ] || { echo "cannot build the pipeline bench" >&2; exit 1; }
tmp=$(mktemp -d)
cp "$old" "$tmp/old"
cp "$new" "$tmp/new"
cp target/release/wasmhook "$tmp/original"
restore() { cp "$tmp/original" target/release/wasmhook; rm -rf "$tmp"; }
trap restore EXIT
for round in $(seq 1 "$rounds"); do
  for v in old new; do
    cp "$tmp/$v" target/release/wasmhook
    for batch in 100 1; do
      out=$(EVENTS=$events BATCH=$batch "$bench" 2>&1)
      raw=$(echo "$out" | awk '/raw loopback/ {print $5}')
      delivered=$(echo "$out" | awk '/delivered end/ {print $6, $8}')
      latency=$(echo "$out" | sed -n 's/.*latency: *//p')
      echo "round $round $v batch=$batch raw=$raw delivered=$delivered | $latency"
    done
  done
done
