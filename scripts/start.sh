#!/usr/bin/env bash
# The main job, from a fresh checkout: build the example plugins (installing
# toolchains when missing), build wasmhook, then check each example plugin
# and run it on its sample event. No network is used.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/build-plugins.sh
cargo build -p wasmhook
wasmhook=target/debug/wasmhook

for plugin in slack-notify messenger-transactional game-reward; do
    echo
    echo "== wasmhook check target/plugins/$plugin.wasm"
    "$wasmhook" check "target/plugins/$plugin.wasm"
done

echo
echo "== wasmhook run slack-notify"
"$wasmhook" run target/plugins/slack-notify.wasm --event examples/events/slack-notify.json --config 'channel=#orders'
echo
echo "== wasmhook run messenger-transactional"
"$wasmhook" run target/plugins/messenger-transactional.wasm --event examples/events/messenger-transactional.json
echo
echo "== wasmhook run game-reward (fires two requests)"
"$wasmhook" run target/plugins/game-reward.wasm --event examples/events/game-reward.json \
    --config backend_url=https://game.example.com/api --config firebase_project=demo
echo
echo "== wasmhook run game-reward (level below the threshold: skips)"
"$wasmhook" run target/plugins/game-reward.wasm --event examples/events/game-reward-skip.json \
    --config backend_url=https://game.example.com/api
