#!/usr/bin/env bash
# Builds every C plugin, plugins/examples/*/plugin.c, into a WebAssembly
# component at target/plugins/<dir-name>.wasm.
#
# Steps: install the Debian packages for clang's wasm32-wasi target when
# missing; build wasmhook-toolchain; generate the C bindings of the WIT world
# into target/c-bindings/ (never committed); compile each plugin with
# clang-14 into a wasm32-wasi reactor core module (target/c-build/); turn
# that into a component with `wasmhook-toolchain componentize`.
#
# Runnable from any directory and idempotent. Needs root (or sudo) only when
# packages are missing. Environment: CARGO_TARGET_DIR (default: target/ of
# the repo), WASI_SYSROOT (default: /usr, where Debian's wasi-libc lives).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WASI_SYSROOT="${WASI_SYSROOT:-/usr}"
PACKAGES=(clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)
CC=clang-14

install_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "c.sh: need root to install: ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "c.sh: installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_packages

cd "$ROOT"
cargo build --quiet -p wasmhook-toolchain
TOOLCHAIN="$TARGET_DIR/debug/wasmhook-toolchain"

BINDINGS="$TARGET_DIR/c-bindings"
BUILD="$TARGET_DIR/c-build"
OUT="$TARGET_DIR/plugins"
mkdir -p "$BUILD" "$OUT"
"$TOOLCHAIN" bindgen-c --wit "$ROOT/wit" --world transformer --out-dir "$BINDINGS" >/dev/null

shopt -s nullglob
sources=("$ROOT"/plugins/examples/*/plugin.c)
if [[ ${#sources[@]} -eq 0 ]]; then
    echo "c.sh: no plugins/examples/*/plugin.c found" >&2
    exit 1
fi

for src in "${sources[@]}"; do
    dir="$(dirname "$src")"
    name="$(basename "$dir")"
    core="$BUILD/$name.core.wasm"
    component="$OUT/$name.wasm"
    # -mexec-model=reactor: a library-style module (exports _initialize, no
    # main). --strip-debug drops the DWARF that Debian's libc.a carries but
    # keeps the names section and the component-type section.
    "$CC" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -mexec-model=reactor \
        -O2 -Wall -Wextra -I"$BINDINGS" -I"$dir" \
        "$src" "$BINDINGS/transformer.c" "$BINDINGS/transformer_component_type.o" \
        -Wl,--strip-debug -o "$core"
    "$TOOLCHAIN" componentize "$core" --wit "$ROOT/wit" --world transformer -o "$component"
    magic="$(head -c 8 "$component" | od -An -tx1 | tr -d ' \n')"
    if [[ $magic != 0061736d0d000100 ]]; then
        echo "c.sh: $component is not a component (header $magic)" >&2
        exit 1
    fi
    echo "$name: ${component#"$ROOT"/} ($(wc -c <"$component") bytes)"
done
