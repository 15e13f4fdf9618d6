#!/usr/bin/env bash
# The main job, from a fresh checkout: build the example plugins (installing
# the toolchains that are missing) and wasmhook, start a local receiver
# (`wasmhook sink` on 127.0.0.1:9000) and `wasmhook serve` on the embedded
# SQLite store with examples/local.toml (127.0.0.1:8080), send the sample
# events from examples/events/, show what arrived, then keep serving until
# Ctrl-C.
#
#   scripts/start.sh           build, run, send samples, keep serving
#   scripts/start.sh --once    the same, but stop after the samples arrived
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
once=false
[[ "${1:-}" == "--once" ]] && once=true

if ! command -v curl >/dev/null 2>&1; then
    echo "start.sh: installing curl (used to send the sample events)" >&2
    apt-get update -qq && apt-get install -y -qq curl >/dev/null
fi
bash scripts/build-plugins.sh
cargo build -p wasmhook
wasmhook="$root/target/debug/wasmhook"
mkdir -p target/demo
# A fresh demo store each run: the sample events keep their ids, and a
# store that already holds them would take them as duplicates and send
# nothing (as it should for a real event sent twice).
rm -f target/demo/wasmhook.db target/demo/wasmhook.db-wal target/demo/wasmhook.db-shm

# Demo credentials, unless the caller set real ones.
export WASMHOOK_INGEST_TOKEN="${WASMHOOK_INGEST_TOKEN:-demo-ingest-token}"
export WASMHOOK_ADMIN_TOKEN="${WASMHOOK_ADMIN_TOKEN:-demo-admin-token}"
export WASMHOOK_SIGNING_SECRET="${WASMHOOK_SIGNING_SECRET:-whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}"
export SLACK_WEBHOOK_PATH="${SLACK_WEBHOOK_PATH:-T000/B000/demo}"
export LINE_CHANNEL_TOKEN="${LINE_CHANNEL_TOKEN:-demo-line-token}"
export MESSENGER_PAGE_TOKEN="${MESSENGER_PAGE_TOKEN:-demo-page-token}"
export GAME_API_KEY="${GAME_API_KEY:-demo-game-key}"
export PUSH_TOKEN="${PUSH_TOKEN:-demo-push-token}"
export LOB_API_KEY_BASIC="${LOB_API_KEY_BASIC:-ZGVtby1sb2Ita2V5Og==}"
export SALESFORCE_TOKEN="${SALESFORCE_TOKEN:-demo-salesforce-token}"
export HUBSPOT_TOKEN="${HUBSPOT_TOKEN:-demo-hubspot-token}"
export LOYALTY_API_KEY="${LOYALTY_API_KEY:-demo-loyalty-key}"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$wasmhook" sink --listen 127.0.0.1:9000 --secret "$WASMHOOK_SIGNING_SECRET" > target/demo/sink.jsonl &
pids+=($!)
"$wasmhook" serve --config examples/local.toml &
pids+=($!)

for _ in $(seq 1 300); do
    curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS http://127.0.0.1:8080/healthz >/dev/null

echo
echo "== sending the sample events (examples/events/*.json)"
for f in examples/events/*.json; do
    echo "\$ curl -X POST localhost:8080/v1/events -H 'authorization: Bearer \$WASMHOOK_INGEST_TOKEN' -d @$f"
    curl -sS -X POST http://127.0.0.1:8080/v1/events \
        -H "authorization: Bearer $WASMHOOK_INGEST_TOKEN" -H 'content-type: application/json' \
        --data-binary "@$f"
    echo
done

# 9 webhooks: slack-notify ×3 (order.paid, order.shipped ×2), LINE, game-reward ×2,
# Lob, Salesforce, HubSpot; the first flight booking counts without firing.
for _ in $(seq 1 300); do
    [[ $(wc -l < target/demo/sink.jsonl) -ge 9 ]] && break
    sleep 0.1
done
echo
echo "== what the sink received (target/demo/sink.jsonl): method path signature"
python3 -c '
import json
for line in open("target/demo/sink.jsonl"):
    r = json.loads(line)
    print("  %s %s  signature: %s" % (r["method"], r["path"], r["signature"]))
'
echo
echo "== the delivery log of one event"
echo "\$ curl localhost:8080/v1/events/evt-level-0001 -H 'authorization: Bearer \$WASMHOOK_ADMIN_TOKEN'"
curl -sS http://127.0.0.1:8080/v1/events/evt-level-0001 -H "authorization: Bearer $WASMHOOK_ADMIN_TOKEN" \
    | python3 -c 'import json,sys; v=json.load(sys.stdin); print(json.dumps({"plugins": v["plugins"], "deliveries": [{k: d[k] for k in ("id","status","attempts")} for d in v["deliveries"]]}, indent=2))'

if $once; then
    exit 0
fi
echo
echo "wasmhook is serving on http://127.0.0.1:8080 (Ctrl-C to stop); webhooks land in target/demo/sink.jsonl"
wait
