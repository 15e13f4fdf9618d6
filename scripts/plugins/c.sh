#!/usr/bin/env bash
# Build C wasmhook plugins into WebAssembly components.
#
#   scripts/plugins/c.sh                     build plugins/examples/*/plugin.c -> target/plugins/<dir-name>.wasm
#   scripts/plugins/c.sh build DIR [-o OUT]  build the plugin directory DIR (plugin.c, maybe .h files) into the
#                                            file OUT (default: target/plugins/<dir-name>.wasm)
#   scripts/plugins/c.sh test [DIR...]       native unit tests: each DIR's test_plugin.c (default: every
#                                            plugins/examples/*/test_plugin.c), compiled with the machine's cc
#
# Steps: install the Debian packages for clang's wasm32-wasi target when
# missing; build wasmhook-toolchain; generate the C bindings of the WIT world
# into target/c-bindings/ (never committed; a file there is replaced only
# when its content changed); compile each plugin's plugin.c with clang-14
# (include path: the bindings and the plugin's directory) into a wasm32-wasi
# reactor core module (target/c-build/); turn that into a component with
# `wasmhook-toolchain componentize`.
#
# Runnable from any directory and idempotent; DIR and OUT are relative to the
# current directory. Needs root (or sudo) only when packages are missing.
# Environment: CARGO_TARGET_DIR (default: target/ of the repo), WASI_SYSROOT
# (default: /usr, where Debian's wasi-libc lives).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WASI_SYSROOT="${WASI_SYSROOT:-/usr}"
PACKAGES=(clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)
CC=clang-14

usage() { sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

MODE=build
test_dirs=()
if [[ $# -gt 0 ]]; then
    case "$1" in
        build) shift ;;
        test) MODE=test; shift ;;
        -h | --help | help) usage; exit 0 ;;
        *) echo "c.sh: unknown command $1" >&2; usage >&2; exit 2 ;;
    esac
fi
one_dir=""
out_file=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        -o | --output) [[ $MODE == build ]] || { echo "c.sh: $1 only goes with build" >&2; exit 2; }
            [[ $# -ge 2 && -n $2 ]] || { echo "c.sh: $1 needs a file" >&2; exit 2; }; out_file="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "c.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) if [[ $MODE == test ]]; then
               [[ -f $1/test_plugin.c ]] || { echo "c.sh: $1 has no test_plugin.c" >&2; exit 1; }
               test_dirs+=("$(cd "$1" && pwd)"); shift; continue
           fi
           [[ -z $one_dir ]] || { echo "c.sh: build takes one plugin directory (got $one_dir and $1)" >&2; exit 2; }
           one_dir="$1"; shift ;;
    esac
done
if [[ -n $out_file && -z $one_dir ]]; then
    echo "c.sh: -o needs a plugin directory: build DIR -o OUT" >&2
    exit 2
fi
if [[ -n $one_dir ]]; then
    [[ -d $one_dir ]] || { echo "c.sh: $one_dir is not a directory" >&2; exit 1; }
    one_dir="$(cd "$one_dir" && pwd)"
    [[ -f $one_dir/plugin.c ]] || { echo "c.sh: $one_dir has no plugin.c" >&2; exit 1; }
    out_file="${out_file:-$ROOT/target/plugins/$(basename "$one_dir").wasm}"
    out_file="$(realpath -m -- "$out_file")"
    [[ ! -d $out_file ]] || { echo "c.sh: output $out_file is a directory" >&2; exit 1; }
fi

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
mkdir -p "$BINDINGS" "$BUILD"

# Scratch space of this run (builds may run side by side).
work="$(mktemp -d "$BUILD/run.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Generated afresh, but a file is replaced (atomically) only when its content
# changed, so a build running at the same time never sees a half-written one.
"$TOOLCHAIN" bindgen-c --wit "$ROOT/wit" --world transformer --out-dir "$work/bindings" >/dev/null
for f in "$work"/bindings/*; do
    name="$(basename "$f")"
    if ! cmp -s "$f" "$BINDINGS/$name"; then
        cp "$f" "$BINDINGS/.$name.$$"
        mv -f "$BINDINGS/.$name.$$" "$BINDINGS/$name"
    fi
done

# --- test: native unit tests ---------------------------------------------------
# A plugin's test_plugin.c includes its plugin.c and stands in for the
# bindings' helpers and the host's imports (see
# plugins/examples/game-reward/test_plugin.c); it is compiled for this
# machine with the generated transformer.h, under AddressSanitizer and
# UBSan when the compiler has them, and run.
if [[ $MODE == test ]]; then
    HOST_CC="${HOST_CC:-cc}"
    if [[ ${#test_dirs[@]} -eq 0 ]]; then
        shopt -s nullglob
        for t in "$ROOT"/plugins/examples/*/test_plugin.c; do test_dirs+=("$(dirname "$t")"); done
        shopt -u nullglob
    fi
    [[ ${#test_dirs[@]} -gt 0 ]] || { echo "c.sh: no plugins/examples/*/test_plugin.c found" >&2; exit 1; }
    sanitize=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
    printf 'int main(void) { return 0; }\n' >"$work/probe.c"
    if ! "$HOST_CC" "${sanitize[@]}" "$work/probe.c" -o "$work/probe" 2>/dev/null || ! "$work/probe"; then
        echo "c.sh: $HOST_CC cannot build with sanitizers here; testing without them" >&2
        sanitize=()
    fi
    failed=0
    for dir in "${test_dirs[@]}"; do
        name="$(basename "$dir")"
        echo "c.sh: test ${dir#"$ROOT"/}/test_plugin.c" >&2
        if ! "$HOST_CC" -std=c11 -g -O1 -Wall -Wextra -Werror "${sanitize[@]}" -I"$BINDINGS" -I"$dir" \
            "$dir/test_plugin.c" -o "$work/$name-test"; then
            echo "c.sh: compiling ${dir#"$ROOT"/}/test_plugin.c failed" >&2
            failed=$(( failed + 1 ))
            continue
        fi
        "$work/$name-test" || failed=$(( failed + 1 ))
    done
    echo "c: $(( ${#test_dirs[@]} - failed )) passed, $failed failed"
    [[ $failed -eq 0 ]]
    exit
fi

# Compiles plugin directory $1 (its plugin.c) into the component file $2.
build_one() {
    local dir="$1" component="$2" name core magic
    name="$(basename "$dir")"
    core="$work/$name.core.wasm"
    # -mexec-model=reactor: a library-style module (exports _initialize, no
    # main). --strip-debug drops the DWARF that Debian's libc.a carries but
    # keeps the names section and the component-type section.
    if ! "$CC" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -mexec-model=reactor \
        -O2 -Wall -Wextra -I"$BINDINGS" -I"$dir" \
        "$dir/plugin.c" "$BINDINGS/transformer.c" "$BINDINGS/transformer_component_type.o" \
        -Wl,--strip-debug -o "$core"; then
        echo "c.sh: compiling $dir/plugin.c failed" >&2
        return 1
    fi
    if ! "$TOOLCHAIN" componentize "$core" --wit "$ROOT/wit" --world transformer -o "$work/$name.wasm"; then
        echo "c.sh: componentize failed for $dir (does plugin.c define exports_transformer_transform?)" >&2
        return 1
    fi
    magic="$(head -c 8 "$work/$name.wasm" | od -An -tx1 | tr -d ' \n')"
    if [[ $magic != 0061736d0d000100 ]]; then
        echo "c.sh: $work/$name.wasm is not a component (header ${magic:-empty}, want 0061736d0d000100)" >&2
        return 1
    fi
    mkdir -p "$(dirname "$component")"
    mv -f "$work/$name.wasm" "$component"
}

if [[ -n $one_dir ]]; then
    start=$(date +%s%N)
    build_one "$one_dir" "$out_file"
    size=$(wc -c <"$out_file")
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    printf '%s\t%s bytes (%s KiB)\t%s ms\n' "$out_file" "$size" "$(( (size + 1023) / 1024 ))" "$ms"
    exit 0
fi

shopt -s nullglob
sources=("$ROOT"/plugins/examples/*/plugin.c)
if [[ ${#sources[@]} -eq 0 ]]; then
    echo "c.sh: no plugins/examples/*/plugin.c found" >&2
    exit 1
fi

for src in "${sources[@]}"; do
    dir="$(dirname "$src")"
    name="$(basename "$dir")"
    component="$OUT/$name.wasm"
    build_one "$dir" "$component"
    echo "$name: ${component#"$ROOT"/} ($(wc -c <"$component") bytes)"
done
