#!/usr/bin/env bash
# The whole test suite, on a fresh machine or an old one:
#   1. install missing toolchains and build every plugin component,
#   2. the plugins' own tests in their languages (node --test, Python
#      unittest, zig test, C test programs built natively),
#   3. formatting and lints (cargo fmt --check, clippy -D warnings),
#   4. every Rust test in the workspace (host unit tests, end-to-end tests
#      in tests/, SDK and plugin unit tests compiled natively).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# A one-off CI build gains nothing from incremental caches, which would
# roughly double target/'s size on disk.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

bash scripts/build-plugins.sh
# The host first: some plugin tests run their component through `wasmhook run`.
cargo build -p wasmhook
echo "== plugin tests in their own languages" >&2
bash scripts/plugins/js.sh test
bash scripts/plugins/python.sh test
bash scripts/plugins/zig.sh test
bash scripts/plugins/c.sh test
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test" >&2
log="$root/target/test-output.log"
cargo test --workspace 2>&1 | tee "$log"
# One closing line over every test binary (cargo's own last line is the
# doc-tests of the last crate, often "0 passed").
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "rust: %d passed, %d failed\n", p, f }' "$log"
