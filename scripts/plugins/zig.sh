#!/usr/bin/env bash
# Build (and test) the Zig wasmhook plugins.
#
#   scripts/plugins/zig.sh                      build plugins/examples/*/plugin.zig -> target/plugins/<dir>.wasm
#   scripts/plugins/zig.sh build [DIR...]       build those plugin directories instead (each holds plugin.zig)
#   scripts/plugins/zig.sh build --out-dir OUT DIR...   write OUT/<dir>.wasm instead of target/plugins/
#   scripts/plugins/zig.sh build DIR -o FILE    build one plugin directory into the file FILE
#   scripts/plugins/zig.sh test [DIR...]        unit tests, natively (zig test): the SDK, every plugin
#                                               (default: the examples, and the template as generated,
#                                               which is then also built)
#
# The Zig compiler comes from PyPI (`ziglang`, pinned in
# plugins/sdk/zig/requirements.txt) in a venv at target/venv-zig; it is
# installed when missing or older than the pin file (python3-venv from
# Debian when the venv module is missing). Zig's caches go to
# target/zig-cache. Steps per plugin: the C bindings of the WIT world from
# `wasmhook-toolchain bindgen-c` (target/zig-bindings/, translated to Zig
# with `zig translate-c`), `zig build-exe` for wasm32-wasi as a reactor
# core module (plugin.zig + the SDK plugins/sdk/zig/wasmhook.zig + the
# generated transformer.c and component-type object), then
# `wasmhook-toolchain componentize`. A plugin is rebuilt only when one of
# its inputs is newer than its component (with -o, a copy of the component
# cached per plugin directory in target/zig-build/one/).
#
# Runnable from any directory; idempotent; DIR and FILE are relative to the
# current directory. Environment: CARGO_TARGET_DIR
# (default: target/ of the repo), ZIG_OPTIMIZE (safe, the default: safety
# checks on, a panic logs and traps; or small: about half the size, no
# checks).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SDK="$ROOT/plugins/sdk/zig"
TEMPLATE="$ROOT/plugins/templates/zig"
VENV="$TARGET_DIR/venv-zig"
OPTIMIZE="${ZIG_OPTIMIZE:-safe}"
STACK_BYTES=1048576
export ZIG_GLOBAL_CACHE_DIR="$TARGET_DIR/zig-cache" ZIG_LOCAL_CACHE_DIR="$TARGET_DIR/zig-cache"

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

MODE=build
if [[ $# -gt 0 ]]; then
    case "$1" in
        build | test) MODE="$1"; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) ;;
        *) ;;
    esac
fi
OUT="$TARGET_DIR/plugins"
dirs=()
out_file=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out-dir) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; OUT="$2"; shift 2 ;;
        -o | --output) [[ $# -ge 2 && -n $2 ]] || { echo "zig.sh: $1 needs a file" >&2; exit 2; }; out_file="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "zig.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) [[ -d $1 ]] || { echo "zig.sh: $1 is not a directory" >&2; exit 2; }
           dirs+=("$(cd "$1" && pwd)"); shift ;;
    esac
done
CORE_DIR=""
if [[ -n $out_file ]]; then
    if [[ $MODE != build || ${#dirs[@]} -ne 1 ]]; then
        echo "zig.sh: -o goes with build and exactly one plugin directory: build DIR -o FILE" >&2
        exit 2
    fi
    out_file="$(realpath -m -- "$out_file")"
    [[ ! -d $out_file ]] || { echo "zig.sh: output $out_file is a directory" >&2; exit 1; }
    # Build into a directory of its own per plugin directory (so its
    # up-to-date check is about this plugin), then copy to FILE.
    OUT="$TARGET_DIR/zig-build/one/$(printf '%s' "${dirs[0]}" | sha256sum | cut -c1-32)"
    CORE_DIR="$OUT"
fi
case "$OPTIMIZE" in
    safe | small | fast) ;;
    *) echo "zig.sh: ZIG_OPTIMIZE must be safe, small or fast (got $OPTIMIZE)" >&2; exit 2 ;;
esac

# --- toolchain --------------------------------------------------------------

install_zig() {
    local stamp="$VENV/.requirements-installed"
    if [[ -f $stamp && ! $SDK/requirements.txt -nt $stamp ]]; then
        return 0
    fi
    if [[ ! -x $VENV/bin/python ]]; then
        command -v python3 >/dev/null || install_debian python3 python3-venv
        if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
            rm -rf "$VENV"
            install_debian python3-venv
            python3 -m venv "$VENV"
        fi
    fi
    echo "zig.sh: pip install -r plugins/sdk/zig/requirements.txt into ${VENV#"$ROOT"/}" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$SDK/requirements.txt" >&2
    touch "$stamp"
}

install_debian() {
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "zig.sh: need root to install: $*" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "zig.sh: apt-get install $*" >&2
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

zig() { "$VENV/bin/python" -m ziglang "$@"; }

install_zig

# --- unit tests (native) ----------------------------------------------------

# Runs `zig test` on one plugin directory's plugin.zig with the SDK.
test_plugin() {
    local dir="$1"
    echo "zig.sh: zig test ${dir#"$ROOT"/}/plugin.zig" >&2
    zig test --dep wasmhook -Mroot="$dir/plugin.zig" -Mwasmhook="$SDK/wasmhook.zig" 2>&1 | count_passed
}

# Passes `zig test` output through and records its passed count.
count_passed() {
    local line n
    while IFS= read -r line; do
        printf '%s\n' "$line"
        if [[ $line =~ ^All\ ([0-9]+)\ tests?\ passed ]]; then
            n=${BASH_REMATCH[1]}
            echo "$n" >>"$PASSED_FILE"
        fi
    done
}

# Copies the template into $1 with {{name}} replaced by the directory's name,
# as `wasmhook new` does.
instantiate_template() {
    local dest="$1" name f
    name="$(basename "$dest")"
    rm -rf "$dest"
    mkdir -p "$dest"
    for f in "$TEMPLATE"/*; do
        sed "s/{{name}}/$name/g" "$f" >"$dest/$(basename "$f")"
    done
}

if [[ $MODE == test ]]; then
    set -o pipefail
    PASSED_FILE="$(mktemp)"
    trap 'rm -f "$PASSED_FILE"' EXIT
    echo "zig.sh: zig test plugins/sdk/zig/wasmhook.zig" >&2
    zig test "$SDK/wasmhook.zig" 2>&1 | count_passed
    if [[ ${#dirs[@]} -eq 0 ]]; then
        for src in "$ROOT"/plugins/examples/*/plugin.zig; do
            [[ -e $src ]] && dirs+=("$(dirname "$src")")
        done
        generated="$TARGET_DIR/zig-build/template/zig-template-check"
        instantiate_template "$generated"
        dirs+=("$generated")
    fi
    for dir in "${dirs[@]}"; do
        test_plugin "$dir"
    done
    if [[ -n ${generated:-} ]]; then
        # The template must also build as generated.
        bash "${BASH_SOURCE[0]}" build --out-dir "$TARGET_DIR/zig-build/template" "$generated"
    fi
    # `zig test` exits non-zero on any failure (and set -e stops here), so
    # reaching this line means none failed.
    PASSED=$(awk '{ n += $1 } END { print n + 0 }' "$PASSED_FILE")
    echo "zig: $PASSED passed, 0 failed"
    exit 0
fi

# --- build ------------------------------------------------------------------

if [[ ${#dirs[@]} -eq 0 ]]; then
    for src in "$ROOT"/plugins/examples/*/plugin.zig; do
        [[ -e $src ]] && dirs+=("$(dirname "$src")")
    done
    if [[ ${#dirs[@]} -eq 0 ]]; then
        echo "zig.sh: no plugins/examples/*/plugin.zig found" >&2
        exit 1
    fi
fi
for dir in "${dirs[@]}"; do
    [[ -f $dir/plugin.zig ]] || { echo "zig.sh: $dir has no plugin.zig" >&2; exit 1; }
done

(cd "$ROOT" && cargo build --quiet -p wasmhook-toolchain)
TOOLCHAIN="$TARGET_DIR/debug/wasmhook-toolchain"

# The bindings are regenerated every run but replaced only when their
# content changed, so their timestamps say when the WIT really changed.
BINDINGS="$TARGET_DIR/zig-bindings"
BUILD="$TARGET_DIR/zig-build"
mkdir -p "$BINDINGS" "$BUILD" "$OUT"
fresh="$(mktemp -d "$BUILD/bindings.XXXXXX")"
trap 'rm -rf "$fresh"' EXIT
"$TOOLCHAIN" bindgen-c --wit "$ROOT/wit" --world transformer --out-dir "$fresh" >/dev/null
for f in transformer.h transformer.c transformer_component_type.o; do
    cmp -s "$fresh/$f" "$BINDINGS/$f" || cp "$fresh/$f" "$BINDINGS/$f"
done
if [[ ! -f $BINDINGS/transformer.zig || $BINDINGS/transformer.h -nt $BINDINGS/transformer.zig ]]; then
    zig translate-c -target wasm32-wasi -lc "$BINDINGS/transformer.h" >"$BINDINGS/transformer.zig.tmp"
    mv "$BINDINGS/transformer.zig.tmp" "$BINDINGS/transformer.zig"
fi

for dir in "${dirs[@]}"; do
    name="$(basename "$dir")"
    core="${CORE_DIR:-$BUILD}/$name.core.wasm"
    component="$OUT/$name.wasm"
    shown="${component#"$ROOT"/}"
    if [[ -f $component && "$(cat "$core.optimize" 2>/dev/null)" == "$OPTIMIZE" &&
        -z "$(find "$dir" "$SDK" "$BINDINGS" "$ROOT/wit" "$TOOLCHAIN" \
            "${BASH_SOURCE[0]}" -newer "$component" -print -quit)" ]]; then
        status="up to date"
        [[ -n $out_file ]] || printf '%s\tup to date\n' "$shown"
        continue
    fi
    start=$(date +%s%N)
    # A reactor (exports _initialize, no main) linking wasi-libc, whose
    # malloc/free the generated bindings use. -fstrip drops debug info;
    # the component-type custom section of the .o is kept. Without
    # -fno-stack-protector, safe builds guard the C code's stack with a
    # canary that pulls in WASI random and stderr; Zig's own safety checks
    # stay on. --stack: Zig's default of 16 MiB would make every instance
    # start with 16 MiB of linear memory (wasm stacks live in it).
    zig build-exe -target wasm32-wasi -O "$OPTIMIZE" -fstrip -fno-stack-protector -mexec-model=reactor -lc \
        --stack "$STACK_BYTES" \
        -I "$BINDINGS" "$BINDINGS/transformer.c" "$BINDINGS/transformer_component_type.o" \
        --dep wasmhook -Mroot="$dir/plugin.zig" \
        --dep transformer -Mwasmhook="$SDK/wasmhook.zig" \
        -Mtransformer="$BINDINGS/transformer.zig" \
        --name "$name" -femit-bin="$core" ||
        { echo "zig.sh: zig build-exe failed for $dir" >&2; exit 1; }
    "$TOOLCHAIN" componentize "$core" --wit "$ROOT/wit" --world transformer -o "$component" ||
        { echo "zig.sh: componentize failed for $dir" >&2; exit 1; }
    magic="$(head -c 8 "$component" | od -An -tx1 | tr -d ' \n')"
    if [[ $magic != 0061736d0d000100 ]]; then
        echo "zig.sh: $component is not a component (header $magic)" >&2
        exit 1
    fi
    echo "$OPTIMIZE" >"$core.optimize"
    size=$(wc -c <"$component")
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    status="$ms ms"
    [[ -n $out_file ]] || printf '%s\t%s bytes (%s KiB)\t%s ms\n' "$shown" "$size" "$(( (size + 1023) / 1024 ))" "$ms"
done

# build DIR -o FILE: copy the component out.
if [[ -n $out_file ]]; then
    magic="$(head -c 8 "$component" | od -An -tx1 | tr -d ' \n')"
    if [[ $magic != 0061736d0d000100 ]]; then
        echo "zig.sh: $component is not a component (header ${magic:-empty}, want 0061736d0d000100)" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$out_file")"
    cp "$component" "$out_file.tmp.$$"
    mv -f "$out_file.tmp.$$" "$out_file"
    # When FILE is inside DIR (e.g. DIR/build/), writing it changed DIR:
    # make FILE and the cached component newer than that change, so that
    # the next build is still up to date.
    touch "$out_file"
    touch -r "$out_file" "$component"
    size=$(wc -c <"$out_file")
    printf '%s\t%s bytes (%s KiB)\t%s\n' "$out_file" "$size" "$(( (size + 1023) / 1024 ))" "$status"
fi
