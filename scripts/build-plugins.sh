#!/usr/bin/env bash
# Build every plugin component (example plugins and test fixtures) into
# target/plugins/<name>.wasm, installing the toolchains that are missing:
# Rust (wasm32-wasip2 target), JavaScript (componentize-js via npm), C
# (clang + wasi-libc via apt), Python (componentize-py via pip, in
# target/venv-py) and Zig (ziglang via pip, in target/venv-zig). Runnable
# from any directory; idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for lang in rust js c python zig; do
    echo "== building $lang plugins" >&2
    bash "$root/scripts/plugins/$lang.sh"
done
