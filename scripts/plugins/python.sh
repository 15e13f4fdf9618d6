#!/usr/bin/env bash
# Build the Python wasmhook plugins into WebAssembly components.
#
#   scripts/plugins/python.sh                  build plugins/examples/*/app.py -> target/plugins/<dir>.wasm
#   scripts/plugins/python.sh build DIR...     build these plugin directories (each holds app.py)
#   scripts/plugins/python.sh build DIR -o F   build one plugin directory into the file F
#   scripts/plugins/python.sh test [DIR...]    build, then run the plugins' and the SDK's unit tests
#
# Runnable from any directory; idempotent; a plugin is rebuilt only when its
# directory, the SDK module, the toolchain pins, the WIT or this script
# changed since its component was written. The toolchain (componentize-py and
# wasm-tools, pinned in plugins/sdk/python/requirements.txt) goes into the
# venv target/venv-py, made with the machine's python3 (Debian's python3 and
# python3-venv are installed with apt-get when missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SDK="$ROOT/plugins/sdk/python"
VENV="$ROOT/target/venv-py"
WORK="$ROOT/target/py-build"
BINDINGS="$ROOT/target/py-bindings"
OUT_DIR="$ROOT/target/plugins"
SCRIPT="$ROOT/scripts/plugins/python.sh"

usage() { sed -n '2,7p' "$SCRIPT" | sed 's/^# \{0,1\}//'; }

MODE=build
case "${1:-}" in
  build|test) MODE="$1"; shift ;;
  -h|--help|help) usage; exit 0 ;;
esac
dirs=()
out_file=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--output) [ $# -ge 2 ] || { echo "python.sh: $1 needs a file" >&2; exit 2; }; out_file="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "python.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -d "$1" ] || { echo "python.sh: $1 is not a directory" >&2; exit 2; }
       dirs+=("$(cd "$1" && pwd)"); shift ;;
  esac
done
if [ -n "$out_file" ] && [ "${#dirs[@]}" -ne 1 ]; then
  echo "python.sh: -o needs exactly one plugin directory" >&2
  exit 2
fi
only_dirs="${dirs[*]:-}"
if [ "${#dirs[@]}" -eq 0 ]; then
  shopt -s nullglob
  for app in "$ROOT"/plugins/examples/*/app.py; do dirs+=("$(dirname "$app")"); done
  shopt -u nullglob
  if [ "${#dirs[@]}" -eq 0 ]; then
    echo "python.sh: no plugins/examples/*/app.py found" >&2
    exit 1
  fi
fi
for dir in "${dirs[@]}"; do
  [ -f "$dir/app.py" ] || { echo "python.sh: $dir has no app.py (the component's entry module)" >&2; exit 2; }
done

apt_install() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "python.sh: need root to run: apt-get install $*" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "python.sh: installing $* with apt-get" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- toolchain: target/venv-py with the pinned requirements -----------------
if [ ! -x "$VENV/bin/python" ]; then
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  echo "python.sh: creating $VENV with $(python3 --version 2>&1)" >&2
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 ships venv without ensurepip unless python3-venv is in.
    rm -rf "$VENV"
    apt_install python3-venv
    python3 -m venv "$VENV"
  fi
fi
stamp="$VENV/.requirements.stamp"
if [ ! -f "$stamp" ] || [ "$SDK/requirements.txt" -nt "$stamp" ]; then
  echo "python.sh: pip install -r plugins/sdk/python/requirements.txt into target/venv-py" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$SDK/requirements.txt" >&2
  touch "$stamp"
fi
CPY="$VENV/bin/componentize-py"
WASM_TOOLS="$VENV/bin/wasm-tools"

# --- bindings for editors and type checkers (stubs; never committed) --------
# componentize-py generates the real ones on the fly during `componentize`.
if [ ! -f "$BINDINGS/.stamp" ] || [ -n "$(find "$ROOT/wit" "$SDK/requirements.txt" -newer "$BINDINGS/.stamp" -print -quit)" ]; then
  rm -rf "$BINDINGS"
  "$CPY" -q -d "$ROOT/wit" -w transformer bindings "$BINDINGS"
  touch "$BINDINGS/.stamp"
fi

# --- build -------------------------------------------------------------------
# Writes the component of plugin directory $1 to $2.
build_one() {
  local dir="$1" out="$2" name work log sockets magic
  name="$(basename "$dir")"
  work="$WORK/$name"
  log="$work/log"
  rm -rf "$work"
  mkdir -p "$work" "$(dirname "$out")"

  # 1. CPython + app.py (and what it imports from the plugin directory and
  #    wasmhook_plugin) pre-initialized into a component. VIRTUAL_ENV is
  #    cleared so a caller's activated venv is not searched for modules.
  if ! (cd "$work" && env -u VIRTUAL_ENV "$CPY" -q -d "$ROOT/wit" -w transformer \
        componentize -p "$dir" -p "$SDK" app -o "$work/app.wasm") >"$log" 2>&1; then
    cat "$log" >&2
    echo "python.sh: componentize-py failed for $dir" >&2
    return 1
  fi

  # 2. The runtime's libc imports wasi:sockets whether or not the app uses
  #    it; the host refuses such components. Compose in a component that
  #    exports those interfaces as trapping stubs (socket use traps), keeping
  #    every other WASI import (stdout/stderr, clocks, random) real.
  "$WASM_TOOLS" component wit "$work/app.wasm" --out-dir "$work/wit" >/dev/null
  sockets="$(grep -Eo 'import wasi:sockets/[a-z0-9-]+@[0-9][0-9a-z.+-]*;' "$work/wit/component.wit" || true)"
  if [ -n "$sockets" ]; then
    {
      printf '\nworld sockets-stub {\n'
      printf '%s\n' "$sockets" | sed 's/^import /  export /'
      printf '}\n'
    } >>"$work/wit/component.wit"
    if ! { "$WASM_TOOLS" component embed --dummy --world sockets-stub "$work/wit" -o "$work/stub.core.wasm" &&
           "$WASM_TOOLS" component new "$work/stub.core.wasm" -o "$work/stub.wasm" &&
           "$WASM_TOOLS" compose "$work/app.wasm" -d "$work/stub.wasm" -o "$work/composed.wasm"; } >"$log" 2>&1; then
      cat "$log" >&2
      echo "python.sh: stubbing wasi:sockets failed for $dir" >&2
      return 1
    fi
  else
    cp "$work/app.wasm" "$work/composed.wasm"
  fi

  # 3. Check what the host will check first: a component, no network imports.
  magic="$(head -c 8 "$work/composed.wasm" | od -An -tx1 | tr -d ' \n')"
  if [ "$magic" != 0061736d0d000100 ]; then
    echo "python.sh: $work/composed.wasm is not a component (header $magic)" >&2
    return 1
  fi
  if "$WASM_TOOLS" component wit "$work/composed.wasm" | grep -E '^ *import wasi:(sockets|http)/' >&2; then
    echo "python.sh: $name still imports the network interfaces above; the host would refuse it" >&2
    return 1
  fi
  mv -f "$work/composed.wasm" "$out"
}

# Prints "up to date" when $2 is newer than everything $1 is built from.
up_to_date() {
  [ -f "$2" ] && [ -z "$(find "$1" "$SDK/wasmhook_plugin.py" "$SDK/requirements.txt" "$ROOT/wit" "$SCRIPT" -newer "$2" -print -quit)" ]
}

for dir in "${dirs[@]}"; do
  name="$(basename "$dir")"
  out="${out_file:-$OUT_DIR/$name.wasm}"
  shown="${out#"$ROOT/"}"
  if up_to_date "$dir" "$out"; then
    printf '%s\tup to date\n' "$shown"
    continue
  fi
  start=$SECONDS
  build_one "$dir" "$out"
  size=$(wc -c <"$out")
  printf '%s\t%s bytes (%s KiB)\t%ss\n' "$shown" "$size" "$(( (size + 1023) / 1024 ))" "$(( SECONDS - start ))"
done

[ "$MODE" = test ] || exit 0

# --- test --------------------------------------------------------------------
# Each directory's test_*.py under the venv's python, in its own process (every
# plugin has a module named `plugin`). The SDK's tests also see the generated
# binding stubs, to check wasmhook_plugin.export against the real WIT types.
passed=0
failed=0
skips=0
run_tests() {
  local dir="$1" pythonpath="$2" log rc ran bad skipped
  if ! compgen -G "$dir/test_*.py" >/dev/null; then
    echo "python.sh: no test_*.py in ${dir#"$ROOT/"}" >&2
    return 0
  fi
  log="$(mktemp)"
  rc=0
  (cd "$dir" && PYTHONPATH="$pythonpath" PYTHONDONTWRITEBYTECODE=1 \
     "$VENV/bin/python" -m unittest discover -s "$dir" -t "$dir" -p 'test_*.py') >"$log" 2>&1 || rc=$?
  ran="$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} .*/\1/p' "$log" | tail -n 1)"
  ran="${ran:-0}"
  bad=0
  if [ "$rc" -ne 0 ]; then
    cat "$log"
    for n in $(grep -Eo '(failures|errors)=[0-9]+' "$log" | cut -d= -f2 || true); do bad=$(( bad + n )); done
    [ "$bad" -gt 0 ] || bad=1
  fi
  skipped="$(grep -Eo 'skipped=[0-9]+' "$log" | tail -n 1 | cut -d= -f2 || true)"
  skipped="${skipped:-0}"
  [ "$skipped" -eq 0 ] || grep -E ' skipped ' "$log" | sed 's/^/  /' || true
  rm -f "$log"
  printf '%s\t%s tests, %s failed, %s skipped\n' "${dir#"$ROOT/"}" "$ran" "$bad" "$skipped"
  passed=$(( passed + ran - bad - skipped ))
  failed=$(( failed + bad ))
  skips=$(( skips + skipped ))
}

run_tests "$SDK" "$SDK:$BINDINGS"
for dir in "${dirs[@]}"; do
  run_tests "$dir" "$dir:$SDK"
done

# The template, generated as `wasmhook new` would (copied, {{name}} replaced,
# source mtimes kept so that the build is skipped when nothing changed), must
# build and pass its own tests.
TEMPLATE="$ROOT/plugins/templates/python"
if [ -z "$only_dirs" ] && [ -f "$TEMPLATE/app.py" ]; then
  generated="$WORK/template/python-template"
  mkdir -p "$generated"
  for f in "$TEMPLATE"/*; do
    [ -f "$f" ] || continue
    sed 's/{{name}}/python-template/g' "$f" >"$generated/$(basename "$f")"
    touch -r "$f" "$generated/$(basename "$f")"
  done
  out="$WORK/template/python-template.wasm"
  if up_to_date "$generated" "$out"; then
    printf '%s\tup to date\n' "${out#"$ROOT/"}"
  else
    build_one "$generated" "$out"
    printf '%s\t%s bytes\n' "${out#"$ROOT/"}" "$(wc -c <"$out")"
  fi
  run_tests "$generated" "$generated:$SDK"
fi
echo "python: $passed passed, $failed failed, $skips skipped"
[ "$failed" -eq 0 ]
