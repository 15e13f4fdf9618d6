// End-to-end test of the built component (target/plugins/messenger-transactional.wasm)
// run under Node via jco; skipped when it has not been built.
//   scripts/plugins/js.sh test   (builds first)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const wasm = fileURLToPath(new URL('../../../target/plugins/messenger-transactional.wasm', import.meta.url));
const built = existsSync(wasm);

test('component: fire, skip and err through the WIT boundary', { skip: !built && `${wasm} not built` }, async () => {
  const { loadPlugin } = await import('../../sdk/js/harness.mjs');
  const plugin = await loadPlugin(wasm, { config: { greeting: 'Hi!' } });
  const event = (name, properties) => ({ id: 'e1', name, userId: undefined, timestampMs: 1700000000000n, properties });

  const line = plugin.transform(event('order.shipped', '{"channel":"line","line_user_id":"U1","order_id":"A-1","tracking_number":"T9"}'));
  assert.equal(line.tag, 'ok');
  assert.equal(line.val.tag, 'fire');
  const [req] = line.val.val;
  assert.equal(req.method, 'post');
  assert.equal(req.url, 'https://api.line.me/v2/bot/message/push');
  // X-Line-Retry-Key: UUIDv5 of "line-push:e1" (the event id), as in logic.mjs.
  assert.deepEqual(req.headers, [
    ['content-type', 'application/json'],
    ['authorization', 'Bearer {{secret:LINE_CHANNEL_TOKEN}}'],
    ['x-line-retry-key', '805421b3-34ea-515a-ada2-b5e709133a0c'],
  ]);
  assert.ok(req.body instanceof Uint8Array);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(req.body)), {
    to: 'U1',
    messages: [{ type: 'text', text: 'Hi! Your order A-1 has shipped (tracking T9)' }],
  });

  const fb = plugin.transform(event('order.shipped', '{"channel":"messenger","psid":"42","order_id":"A-2"}'));
  assert.equal(fb.val.tag, 'fire');
  assert.match(fb.val.val[0].url, /^https:\/\/graph\.facebook\.com\/v26\.0\/me\/messages\?access_token=\{\{secret:MESSENGER_PAGE_TOKEN\}\}$/);
  assert.equal(JSON.parse(new TextDecoder().decode(fb.val.val[0].body)).tag, 'POST_PURCHASE_UPDATE');

  assert.deepEqual(plugin.transform(event('user.signed_up', '{}')), {
    tag: 'ok', val: { tag: 'skip', val: 'event "user.signed_up" is not handled (only order.shipped)' },
  });
  const err = plugin.transform(event('order.shipped', 'not json'));
  assert.equal(err.tag, 'err');
  assert.match(err.val, /not valid JSON/);

  assert.deepEqual(plugin.logs, [
    { level: 'info', message: 'order A-1 shipped: notifying via LINE' },
    { level: 'info', message: 'order A-2 shipped: notifying via Messenger' },
  ]);
});

test('component: line_push_url and messenger_send_url config redirect the requests', { skip: !built && `${wasm} not built` }, async () => {
  const { loadPlugin } = await import('../../sdk/js/harness.mjs');
  const plugin = await loadPlugin(wasm, {
    config: {
      line_push_url: 'http://127.0.0.1:9000/line',
      messenger_send_url: 'http://127.0.0.1:9000/messenger?access_token={{secret:MESSENGER_PAGE_TOKEN}}',
    },
  });
  const event = (properties) => ({ id: 'e1', name: 'order.shipped', userId: undefined, timestampMs: 1700000000000n, properties });

  const line = plugin.transform(event('{"channel":"line","line_user_id":"U1","order_id":"A-1"}'));
  assert.equal(line.val.tag, 'fire');
  assert.equal(line.val.val[0].url, 'http://127.0.0.1:9000/line');
  assert.deepEqual(line.val.val[0].headers.slice(0, 2), [['content-type', 'application/json'], ['authorization', 'Bearer {{secret:LINE_CHANNEL_TOKEN}}']]);
  assert.equal(line.val.val[0].headers[2][0], 'x-line-retry-key');

  const fb = plugin.transform(event('{"channel":"messenger","psid":"42","order_id":"A-2"}'));
  assert.equal(fb.val.tag, 'fire');
  assert.equal(fb.val.val[0].url, 'http://127.0.0.1:9000/messenger?access_token={{secret:MESSENGER_PAGE_TOKEN}}');
});

test('component: graph_api_version and a malformed messenger_tag', { skip: !built && `${wasm} not built` }, async () => {
  const { loadPlugin } = await import('../../sdk/js/harness.mjs');
  const event = { id: 'e1', name: 'order.shipped', userId: undefined, timestampMs: 1700000000000n, properties: '{"channel":"messenger","psid":"42","order_id":"A-2"}' };
  const v25 = await loadPlugin(wasm, { config: { graph_api_version: 'v25.0' } });
  assert.equal(v25.transform(event).val.val[0].url, 'https://graph.facebook.com/v25.0/me/messages?access_token={{secret:MESSENGER_PAGE_TOKEN}}');
  const bad = await loadPlugin(wasm, { config: { messenger_tag: 'no tag' } });
  const err = bad.transform(event);
  assert.equal(err.tag, 'err');
  assert.match(err.val, /messenger_tag must be a message tag/);
});
