#!/usr/bin/env bash
# Build Rust wasmhook plugins (and the test fixtures) as WebAssembly components.
#
#   scripts/plugins/rust.sh                     build the workspace's plugins and fixtures -> target/plugins/<name>.wasm
#   scripts/plugins/rust.sh build DIR [-o OUT]  build the standalone plugin crate in DIR into the file OUT
#                                               (default: target/plugins/<dir-name>.wasm)
#
# Installs the wasm32-wasip2 target when it is missing, builds with the
# release profile (cargo emits a component directly for wasm32-wasip2),
# checks each output is a component (not a core module) and copies it out.
# DIR holds the Cargo.toml of a crate with its own [workspace] and a cdylib
# (as generated from plugins/templates/rust); it is built with
# `cargo build --release --target wasm32-wasip2 --manifest-path DIR/Cargo.toml`
# into CARGO_TARGET_DIR (default: target/templates of the repo, a cache
# shared by all such builds). DIR and OUT are relative to the current
# directory. Runnable from any directory; running it twice is harmless.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target=wasm32-wasip2
# "\0asm", version 0x0d, layer 1: a component. A core module has 01 00 00 00.
component_magic="0061736d0d000100"

usage() { sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "rust.sh: $*" >&2; exit 1; }

ensure_target() {
    if ! rustup target list --installed | grep -qx "$target"; then
        rustup target add "$target"
    fi
}

# Fails unless file $1 starts with the component preamble.
check_component() {
    local magic
    magic="$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')"
    [[ "$magic" == "$component_magic" ]] || die "$1 is not a component (header ${magic:-empty}, want $component_magic)"
}

# The name cargo gives the library of the crate whose manifest is $1: [lib]
# name when set, else [package] name, with - replaced by _.
lib_name() {
    awk '
        function value(line) {
            sub(/^[^=]*=[ \t]*/, "", line)
            if (line ~ /^"/) { sub(/^"/, "", line); sub(/".*/, "", line) }
            else if (line ~ /^'\''/) { sub(/^'\''/, "", line); sub(/'\''.*/, "", line) }
            else line = ""
            return line
        }
        /^[ \t]*\[/ { section = $0; sub(/#.*/, "", section); gsub(/[ \t]/, "", section); next }
        section == "[package]" && /^[ \t]*name[ \t]*=/ && pkg == "" { pkg = value($0) }
        section == "[lib]" && /^[ \t]*name[ \t]*=/ && lib == "" { lib = value($0) }
        END { name = (lib != "" ? lib : pkg); gsub(/-/, "_", name); print name }
    ' "$1"
}

# --- build DIR [-o OUT] ------------------------------------------------------
if [[ $# -gt 0 ]]; then
    case "$1" in
        build) shift ;;
        -h | --help | help) usage; exit 0 ;;
        *) echo "rust.sh: unknown command $1" >&2; usage >&2; exit 2 ;;
    esac
fi
if [[ $# -gt 0 ]]; then
    dir=""
    out=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
            -o | --output) [[ $# -ge 2 && -n $2 ]] || { echo "rust.sh: $1 needs a file" >&2; exit 2; }; out="$2"; shift 2 ;;
            -h | --help) usage; exit 0 ;;
            -*) echo "rust.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
            *) [[ -z $dir ]] || { echo "rust.sh: build takes one plugin directory (got $dir and $1)" >&2; exit 2; }
               dir="$1"; shift ;;
        esac
    done
    [[ -n $dir ]] || { echo "rust.sh: build needs a plugin directory" >&2; usage >&2; exit 2; }
    [[ -d $dir ]] || die "$dir is not a directory"
    dir="$(cd "$dir" && pwd)"
    manifest="$dir/Cargo.toml"
    [[ -f $manifest ]] || die "$dir has no Cargo.toml (a Rust plugin is a cdylib crate)"
    out="${out:-$root/target/plugins/$(basename "$dir").wasm}"
    out="$(realpath -m -- "$out")"
    [[ ! -d $out ]] || die "output $out is a directory"
    lib="$(lib_name "$manifest")"
    [[ -n $lib ]] || die "no [package] name in $manifest"

    ensure_target
    target_dir="${CARGO_TARGET_DIR:-$root/target/templates}"
    start=$(date +%s%N)
    if ! CARGO_TARGET_DIR="$target_dir" cargo build --release --target "$target" --manifest-path "$manifest"; then
        grep -q '^[[:space:]]*\[workspace\]' "$manifest" ||
            echo "rust.sh: note: $manifest has no [workspace] table; a plugin crate outside the repo's workspace needs its own" >&2
        die "cargo build failed for $dir"
    fi
    built="$target_dir/$target/release/$lib.wasm"
    [[ -f $built ]] || die "cargo built no $built; does $manifest declare crate-type = [\"cdylib\"] under [lib]?"
    check_component "$built"
    mkdir -p "$(dirname "$out")"
    tmp="$out.tmp.$$"
    cp "$built" "$tmp" && mv -f "$tmp" "$out" || { rm -f "$tmp"; die "cannot write $out"; }
    size=$(wc -c <"$out")
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    printf '%s\t%s bytes (%s KiB)\t%s ms\n' "$out" "$size" "$(( (size + 1023) / 1024 ))" "$ms"
    exit 0
fi

# --- no arguments: the workspace's plugins and fixtures -----------------------
cd "$root"
plugins=(slack-notify lob-direct-mail login-to-salesforce hostile wrong-world wants-http)

ensure_target

packages=()
for name in "${plugins[@]}"; do
    packages+=(-p "$name")
done
target_dir="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release --target "$target" "${packages[@]}"

mkdir -p "$root/target/plugins"
for name in "${plugins[@]}"; do
    built="$target_dir/$target/release/${name//-/_}.wasm"
    if [[ ! -f "$built" ]]; then
        echo "rust.sh: $built was not built" >&2
        exit 1
    fi
    check_component "$built"
    out="$root/target/plugins/$name.wasm"
    cp "$built" "$out"
    echo "$name: target/plugins/$name.wasm ($(wc -c <"$out") bytes)"
done
