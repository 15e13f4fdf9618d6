#!/usr/bin/env bash
# Build the JavaScript wasmhook plugins into WebAssembly components.
#
#   scripts/plugins/js.sh          build plugins/examples/*/plugin.js -> target/plugins/<dir>.wasm
#   scripts/plugins/js.sh test     build, then run the JS tests (node --test) of those plugins
#
# Runnable from any directory; idempotent. Installs the toolchain
# (plugins/sdk/js, pinned in its package-lock.json) with `npm ci` when
# node_modules is missing or older than the lock file, and installs Node.js
# from Debian's packages only when `node` is absent.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SDK="$ROOT/plugins/sdk/js"
OUT="$ROOT/target/plugins"
MODE="${1:-build}"

case "$MODE" in
  build|test) ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac

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
  if [ "${#tests[@]}" -eq 0 ]; then
    echo "js.sh: no *.test.mjs next to the JS plugins" >&2
    exit 0
  fi
  node --test "${tests[@]}"
fi
