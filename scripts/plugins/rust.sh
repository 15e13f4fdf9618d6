#!/usr/bin/env bash
# Build the Rust plugins and fixtures as WebAssembly components.
#
# Installs the wasm32-wasip2 target when it is missing, builds the crates
# with the release profile, checks each output is a component (not a core
# module) and copies it to target/plugins/<name>.wasm. Runnable from any
# directory; running it twice is harmless.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

target=wasm32-wasip2
plugins=(slack-notify lob-direct-mail login-to-salesforce hostile wrong-world wants-http)

if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi

packages=()
for name in "${plugins[@]}"; do
    packages+=(-p "$name")
done
target_dir="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release --target "$target" "${packages[@]}"

# "\0asm", version 0x0d, layer 1: a component. A core module has 01 00 00 00.
component_magic="0061736d0d000100"
mkdir -p "$root/target/plugins"
for name in "${plugins[@]}"; do
    built="$target_dir/$target/release/${name//-/_}.wasm"
    if [[ ! -f "$built" ]]; then
        echo "rust.sh: $built was not built" >&2
        exit 1
    fi
    magic="$(head -c 8 "$built" | od -An -tx1 | tr -d ' \n')"
    if [[ "$magic" != "$component_magic" ]]; then
        echo "rust.sh: $built is not a component (header $magic)" >&2
        exit 1
    fi
    out="$root/target/plugins/$name.wasm"
    cp "$built" "$out"
    echo "$name: target/plugins/$name.wasm ($(wc -c <"$out") bytes)"
done
