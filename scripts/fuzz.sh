#!/usr/bin/env bash
# Run the property/fuzz tests of tests/fuzz.rs for a set time.
#
#   scripts/fuzz.sh [SECONDS]      (default 300)
#
# Splits the time between the test modules of tests/fuzz/ (ingest, egress,
# ip, config) and runs each one's properties again and again, with
# PROPTEST_CASES=$CASES (default 5000) fresh random inputs per property per
# run, until its share of the time is used up. Prints the cases executed
# per target (ingest, cloudevents, url, allowlist, ip, config) and the
# failures found; proptest's minimal failing inputs stay in
# target/fuzz-logs/. Exits 1 if anything failed. Set PROFILE=release for
# an optimised build (a long first compile).
#
# cargo-fuzz (libFuzzer, coverage-guided) needs a nightly toolchain, which
# this project does not use; proptest runs on stable: random and
# structure-aware, but not coverage-guided.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

seconds="${1:-300}"
cases="${CASES:-5000}"
profile=()
[[ "${PROFILE:-dev}" == release ]] && profile=(--release)
modules=(ingest egress ip config)
logs="$root/target/fuzz-logs"
mkdir -p "$logs"
stats="$logs/stats.txt"
: >"$stats"

echo "== building tests/fuzz.rs" >&2
# Build once and run the binary itself, so edits elsewhere in the tree do
# not trigger rebuilds in the middle of the run.
binary=$(cargo test "${profile[@]}" -p wasmhook --test fuzz --no-run 2>&1 |
    tee /dev/stderr | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[[ -x "$binary" ]] || { echo "fuzz test binary not found" >&2; exit 2; }

share=$(( seconds / ${#modules[@]} ))
(( share > 0 )) || share=1
failed=0
for module in "${modules[@]}"; do
    deadline=$(( $(date +%s) + share ))
    runs=0
    while (( $(date +%s) < deadline )); do
        log="$logs/$module-$runs.log"
        PROPTEST_CASES="$cases" "$binary" --nocapture --test-threads 1 "$module::" >"$log" 2>&1 || true
        grep -o 'fuzz-stat [a-z]* [0-9]*' "$log" | awk '{ print $2, $3 }' >>"$stats" || true
        if grep -q "panicked" "$log"; then
            echo "-- $module: failure, see $log" >&2
            grep -A6 "minimal failing input\|panicked" "$log" | head -40 >&2 || true
            echo "finding $module $log" >>"$stats"
            failed=1
        else
            rm -f "$log"
        fi
        runs=$(( runs + 1 ))
    done
    echo "$module: $runs runs" >&2
done

printf '%-12s %12s %9s\n' target cases findings
awk '$1 != "finding" { cases[$1] += $2 } $1 == "finding" { found[$2]++ }
     END { for (t in cases) printf "%-12s %12d %9d\n", t, cases[t], found[t] + 0 }' "$stats" | sort
echo "(findings are counted per module run: ingest covers ingest + cloudevents, egress covers url + allowlist)"
exit "$failed"
