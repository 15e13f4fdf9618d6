#!/usr/bin/env bash
# The timed reliability drivers of RELIABILITY.md, each a bench target in
# host/benches/ that starts the real `wasmhook serve` (release build, SQLite
# in a temp dir) against a loopback receiver and prints its figures.
#
#   scripts/reliability.sh crash   [KILLS] [RATE]          kill -9 loop (default 25 kills, 200 events/s)
#   scripts/reliability.sh soak    [DURATION_S] [RATE]     soak (default 600 s at half the probed max rate)
#   scripts/reliability.sh hostile [PHASE_S] [RATE]        healthy plugin alone vs with 7 hostile ones
#                                                          (default 30 s per phase at 50 events/s)
#   scripts/reliability.sh paused-restart [BACKLOG]        restart with a paused plugin's backlog parked,
#                                                          pause remembered vs forgotten (default 50 000)
#
# Arguments override the environment variables of the same name (see the
# `//!` docs of each driver for the rest: SEED, DRAIN_S, PROBE_EVENTS).
# Builds the plugin components first if target/plugins is missing any.
# Exit status: the driver's (crash: 1 if an accepted event was lost; soak:
# 1 if an event was not delivered or memory kept growing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

usage() {
    sed -n '6,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
what="$1"
shift
[[ -f target/plugins/hostile.wasm ]] || scripts/build-plugins.sh

case "$what" in
    crash)
        [[ $# -ge 1 ]] && export KILLS="$1"
        [[ $# -ge 2 ]] && export RATE="$2"
        bench=crash_loop
        ;;
    soak)
        [[ $# -ge 1 ]] && export DURATION_S="$1"
        [[ $# -ge 2 ]] && export RATE="$2"
        bench=soak
        ;;
    hostile)
        [[ $# -ge 1 ]] && export PHASE_S="$1"
        [[ $# -ge 2 ]] && export RATE="$2"
        bench=hostile_load
        ;;
    paused-restart)
        [[ $# -ge 1 ]] && export BACKLOG="$1"
        bench=paused_restart
        ;;
    *) usage ;;
esac
exec cargo bench -p wasmhook --bench "$bench"
