#!/usr/bin/env bash
# Build the JavaScript wasmhook plugins into WebAssembly components.
#
#   scripts/plugins/js.sh                     build plugins/examples/*/plugin.js -> target/plugins/<dir>.wasm
#   scripts/plugins/js.sh build DIR [-o OUT]  build the plugin directory DIR (holds plugin.js) into the file OUT
#                                             (default: target/plugins/<dir-name>.wasm)
#   scripts/plugins/js.sh test                build, then run the JS tests (node --test) of those plugins and the SDK
#
# Runnable from any directory; idempotent. Installs the toolchain
# (plugins/sdk/js, pinned in its package-lock.json) with `npm ci` when
# node_modules is missing or older than the lock file, and installs Node.js
# from Debian's packages only when `node` is absent. A component is rebuilt
# only when its plugin directory, build.mjs, the lock file or the WIT changed
# since it was written (componentize takes ~10 s). DIR and OUT are relative
# to the current directory.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SCRIPT="$ROOT/scripts/plugins/js.sh"
SDK="$ROOT/plugins/sdk/js"
OUT="$ROOT/target/plugins"
STAMPS="$ROOT/target/js-build/stamps"

usage() { sed -n '2,7p' "$SCRIPT" | sed 's/^# \{0,1\}//'; }

MODE=build
case "${1:-}" in
  build|test) MODE="$1"; shift ;;
  -h|--help|help) usage; exit 0 ;;
  "") ;;
  *) echo "js.sh: unknown command $1" >&2; usage >&2; exit 2 ;;
esac
one_dir=""
out_file=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--output)
      [ "$MODE" = build ] || { echo "js.sh: $1 only goes with build" >&2; exit 2; }
      [ $# -ge 2 ] && [ -n "$2" ] || { echo "js.sh: $1 needs a file" >&2; exit 2; }
      out_file="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "js.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *)
      [ "$MODE" = build ] || { echo "js.sh: test takes no directory" >&2; exit 2; }
      [ -z "$one_dir" ] || { echo "js.sh: build takes one plugin directory (got $one_dir and $1)" >&2; exit 2; }
      one_dir="$1"; shift ;;
  esac
done
if [ -n "$out_file" ] && [ -z "$one_dir" ]; then
  echo "js.sh: -o needs a plugin directory: build DIR -o OUT" >&2
  exit 2
fi
if [ -n "$one_dir" ]; then
  [ -d "$one_dir" ] || { echo "js.sh: $one_dir is not a directory" >&2; exit 1; }
  one_dir="$(cd "$one_dir" && pwd)"
  [ -f "$one_dir/plugin.js" ] || { echo "js.sh: $one_dir has no plugin.js (the component's entry module)" >&2; exit 1; }
  out_file="${out_file:-$OUT/$(basename "$one_dir").wasm}"
  out_file="$(realpath -m -- "$out_file")"
  [ ! -d "$out_file" ] || { echo "js.sh: output $out_file is a directory" >&2; exit 1; }
fi

if ! command -v node >/dev/null 2>&1; then
  echo "js.sh: node not found; installing nodejs and npm with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "js.sh: warning: tested with Node.js 20; found $(node -v)" >&2
fi

# npm writes node_modules/.package-lock.json on every install; it is older
# than package-lock.json when the lock file changed since.
stamp="$SDK/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$SDK/package-lock.json" -nt "$stamp" ] || [ "$SDK/package.json" -nt "$stamp" ]; then
  echo "js.sh: npm ci in plugins/sdk/js" >&2
  (cd "$SDK" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$stamp"
fi

# --- build DIR -o OUT: one plugin directory into one file ----------------------
if [ -n "$one_dir" ]; then
  # The stamp, keyed by OUT, names the directory OUT was built from, so that
  # building another directory into the same file is never "up to date".
  out_stamp="$STAMPS/$(printf '%s' "$out_file" | sha256sum | cut -c1-32)"
  status=""
  if [ -f "$out_file" ] && [ -f "$out_stamp" ] && [ "$(cat "$out_stamp")" = "$one_dir" ] && [ ! "$out_file" -nt "$out_stamp" ] &&
     [ -z "$(find "$one_dir" "$SDK/build.mjs" "$SDK/package-lock.json" "$ROOT/wit" "$SCRIPT" -newer "$out_file" -print -quit)" ]; then
    status="up to date"
  else
    mkdir -p "$(dirname "$out_file")" "$STAMPS"
    rm -f "$out_stamp"
    tmp="$out_file.tmp.$$.wasm"
    start=$(date +%s%N)
    if ! node "$SDK/build.mjs" --quiet "$one_dir" "$tmp"; then
      rm -f "$tmp"
      echo "js.sh: componentize-js failed for $one_dir" >&2
      exit 1
    fi
    mv -f "$tmp" "$out_file"
    # Newer than the directory entry the rename just changed, for when OUT
    # is inside DIR (e.g. DIR/build/).
    touch "$out_file"
    printf '%s\n' "$one_dir" >"$out_stamp"
    status="$(( ($(date +%s%N) - start) / 1000000 )) ms"
  fi
  magic="$(head -c 8 "$out_file" | od -An -tx1 | tr -d ' \n')"
  if [ "$magic" != 0061736d0d000100 ]; then
    rm -f "$out_stamp"
    echo "js.sh: $out_file is not a component (header ${magic:-empty}, want 0061736d0d000100)" >&2
    exit 1
  fi
  size=$(wc -c <"$out_file")
  printf '%s\t%s bytes (%s KiB)\t%s\n' "$out_file" "$size" "$(( (size + 1023) / 1024 ))" "$status"
  exit 0
fi

# --- no directory: the examples -------------------------------------------------
mkdir -p "$OUT"
shopt -s nullglob
plugins=("$ROOT"/plugins/examples/*/plugin.js)
if [ "${#plugins[@]}" -eq 0 ]; then
  echo "js.sh: no plugins/examples/*/plugin.js found" >&2
  exit 1
fi

for src in "${plugins[@]}"; do
  dir="$(dirname "$src")"
  name="$(basename "$dir")"
  out="$OUT/$name.wasm"
  # Up to date when nothing it is built from changed since (componentize
  # takes ~10 s per plugin; the test command runs this every time).
  if [ -f "$out" ] && [ -z "$(find "$dir" "$SDK/build.mjs" "$SDK/package-lock.json" "$ROOT/wit" -newer "$out" -print -quit)" ]; then
    printf '%s\tup to date\n' "target/plugins/$name.wasm"
    continue
  fi
  start=$SECONDS
  node "$SDK/build.mjs" --quiet "$dir" "$out"
  size=$(wc -c <"$out")
  printf '%s\t%s bytes (%s KiB)\t%ss\n' "target/plugins/$name.wasm" "$size" "$(( (size + 1023) / 1024 ))" "$(( SECONDS - start ))"
done

if [ "$MODE" = test ]; then
  cd "$ROOT"
  # Type-check the plugins' sources (not their tests) against the contract's
  # declarations, plugins/sdk/js/wasmhook.d.ts.
  sources=()
  tests=()
  for src in "${plugins[@]}"; do
    for f in "$(dirname "$src")"/*.js "$(dirname "$src")"/*.mjs; do
      case "$f" in
        *.test.mjs) tests+=("${f#"$ROOT/"}") ;;
        *) sources+=("${f#"$ROOT/"}") ;;
      esac
    done
  done
  echo "js.sh: type-checking ${#sources[@]} files against plugins/sdk/js/wasmhook.d.ts" >&2
  node "$SDK/node_modules/typescript/bin/tsc" --noEmit --allowJs --checkJs --strict \
    --target es2022 --module esnext --moduleResolution bundler --lib es2022,dom \
    plugins/sdk/js/wasmhook.d.ts "${sources[@]}"
  # The SDK's own tests (the harness's kv double).
  for f in "$SDK"/*.test.mjs; do tests+=("${f#"$ROOT/"}"); done
  if [ "${#tests[@]}" -eq 0 ]; then
    echo "js.sh: no *.test.mjs next to the JS plugins" >&2
    exit 0
  fi
  node --test "${tests[@]}"
fi
