// Unit tests of the plugin's logic under Node (no component needed):
//   node --test plugins/examples/messenger-transactional/   or   scripts/plugins/js.sh test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, messageText, configUrl, LINE_PUSH_URL, MESSENGER_SEND_URL } from './logic.mjs';

function host(config = {}) {
  const logs = [];
  return {
    logs,
    getConfig: (k) => config[k],
    log: (level, message) => logs.push([level, message]),
  };
}

const event = (name, props, extra = {}) => ({
  id: 'evt-1',
  name,
  userId: 'user-1',
  timestampMs: 1700000000000n,
  properties: typeof props === 'string' ? props : JSON.stringify(props),
  ...extra,
});

const bodyJson = (req) => JSON.parse(new TextDecoder().decode(req.body));

test('LINE push request', () => {
  const h = host();
  const d = decide(event('order.shipped', { channel: 'line', line_user_id: 'U4af4980629', order_id: 'A-1001', tracking_number: '1Z999' }), h);
  assert.equal(d.tag, 'fire');
  assert.equal(d.val.length, 1);
  const [req] = d.val;
  assert.equal(req.method, 'post');
  assert.equal(req.url, LINE_PUSH_URL);
  assert.deepEqual(req.headers, [
    ['content-type', 'application/json'],
    ['authorization', 'Bearer {{secret:LINE_CHANNEL_TOKEN}}'],
  ]);
  assert.ok(req.body instanceof Uint8Array);
  assert.deepEqual(bodyJson(req), {
    to: 'U4af4980629',
    messages: [{ type: 'text', text: 'Your order A-1001 has shipped (tracking 1Z999)' }],
  });
  assert.deepEqual(h.logs, [['info', 'order A-1001 shipped: notifying via LINE']]);
});

test('Messenger send request', () => {
  const h = host();
  const d = decide(event('order.shipped', { channel: 'messenger', psid: '2468013579', order_id: 'A-1002' }), h);
  assert.equal(d.tag, 'fire');
  const [req] = d.val;
  assert.equal(req.method, 'post');
  assert.equal(req.url, 'https://graph.facebook.com/v19.0/me/messages?access_token={{secret:MESSENGER_PAGE_TOKEN}}');
  assert.equal(req.url, MESSENGER_SEND_URL);
  assert.deepEqual(req.headers, [['content-type', 'application/json']]);
  assert.deepEqual(bodyJson(req), {
    recipient: { id: '2468013579' },
    messaging_type: 'MESSAGE_TAG',
    tag: 'POST_PURCHASE_UPDATE',
    message: { text: 'Your order A-1002 has shipped' },
  });
  assert.equal(h.logs.length, 1);
  assert.equal(h.logs[0][0], 'info');
});

test('greeting from config prefixes the text', () => {
  const d = decide(event('order.shipped', { channel: 'line', line_user_id: 'U1', order_id: 7, tracking_number: 'T' }), host({ greeting: '  Hi from Acme!  ' }));
  assert.equal(bodyJson(d.val[0]).messages[0].text, 'Hi from Acme! Your order 7 has shipped (tracking T)');
});

test('line_push_url config redirects the LINE request', () => {
  const h = host({ line_push_url: 'http://127.0.0.1:9000/line', messenger_send_url: 'http://127.0.0.1:9000/messenger' });
  const d = decide(event('order.shipped', { channel: 'line', line_user_id: 'U1', order_id: 'A-1' }), h);
  assert.equal(d.tag, 'fire');
  const [req] = d.val;
  assert.equal(req.url, 'http://127.0.0.1:9000/line');
  // Only the URL changes: headers (with their placeholder) and body stay.
  assert.deepEqual(req.headers, [
    ['content-type', 'application/json'],
    ['authorization', 'Bearer {{secret:LINE_CHANNEL_TOKEN}}'],
  ]);
  assert.deepEqual(bodyJson(req), { to: 'U1', messages: [{ type: 'text', text: 'Your order A-1 has shipped' }] });
});

test('messenger_send_url config redirects the Messenger request, placeholders unchanged', () => {
  const url = ' http://127.0.0.1:9000/messenger?access_token={{secret:MESSENGER_PAGE_TOKEN}} ';
  const d = decide(event('order.shipped', { channel: 'messenger', psid: '42', order_id: 'A-2' }), host({ messenger_send_url: url, line_push_url: 'http://x.test/' }));
  assert.equal(d.tag, 'fire');
  assert.equal(d.val[0].url, 'http://127.0.0.1:9000/messenger?access_token={{secret:MESSENGER_PAGE_TOKEN}}');
  assert.equal(bodyJson(d.val[0]).recipient.id, '42');
});

test('blank URL settings fall back to the real APIs', () => {
  const h = host({ line_push_url: '  ', messenger_send_url: '' });
  assert.equal(decide(event('order.shipped', { channel: 'line', line_user_id: 'U1', order_id: '1' }), h).val[0].url, LINE_PUSH_URL);
  assert.equal(decide(event('order.shipped', { channel: 'messenger', psid: '1', order_id: '1' }), h).val[0].url, MESSENGER_SEND_URL);
});

test('configUrl', () => {
  const get = (k) => ({ a: ' http://a.test/ ', b: ' ' })[k];
  assert.equal(configUrl(get, 'a', 'd'), 'http://a.test/');
  assert.equal(configUrl(get, 'b', 'd'), 'd');
  assert.equal(configUrl(get, 'missing', 'd'), 'd');
});

test('messageText', () => {
  assert.equal(messageText('1', undefined, undefined), 'Your order 1 has shipped');
  assert.equal(messageText('1', 'X', ''), 'Your order 1 has shipped (tracking X)');
  assert.equal(messageText('1', '', 'Hello,'), 'Hello, Your order 1 has shipped');
});

test('channel is case-insensitive', () => {
  assert.equal(decide(event('order.shipped', { channel: 'LINE', line_user_id: 'U1', order_id: '1' }), host()).tag, 'fire');
});

test('text is JSON-escaped in the body', () => {
  const d = decide(event('order.shipped', { channel: 'line', line_user_id: 'U1', order_id: 'a"b\\c' }), host({ greeting: 'Ünïcødé 🎉' }));
  assert.equal(bodyJson(d.val[0]).messages[0].text, 'Ünïcødé 🎉 Your order a"b\\c has shipped');
});

const skips = [
  ['other event', event('order.placed', { channel: 'line', line_user_id: 'U1', order_id: '1' }), /order\.placed.*not handled/],
  ['missing channel', event('order.shipped', { line_user_id: 'U1', order_id: '1' }), /missing property "channel"/],
  ['unknown channel', event('order.shipped', { channel: 'sms', order_id: '1' }), /unknown channel "sms"/],
  ['non-string channel', event('order.shipped', { channel: 5, order_id: '1' }), /unknown channel 5/],
  ['LINE without user id', event('order.shipped', { channel: 'line', psid: '1', order_id: '1' }), /missing property "line_user_id"/],
  ['LINE with empty user id', event('order.shipped', { channel: 'line', line_user_id: '  ', order_id: '1' }), /missing property "line_user_id"/],
  ['Messenger without psid', event('order.shipped', { channel: 'messenger', line_user_id: 'U1', order_id: '1' }), /missing property "psid"/],
  ['Messenger with an imprecise numeric psid', event('order.shipped', '{"channel":"messenger","psid":24680135791234567,"order_id":"1"}'), /missing property "psid"/],
  ['missing order id', event('order.shipped', { channel: 'line', line_user_id: 'U1' }), /missing property "order_id"/],
  ['properties not an object', event('order.shipped', '[]'), /missing property "channel"/],
];
for (const [what, ev, reason] of skips) {
  test(`skip: ${what}`, () => {
    const h = host();
    const d = decide(ev, h);
    assert.equal(d.tag, 'skip');
    assert.match(d.val, reason);
    assert.deepEqual(h.logs, []);
  });
}

test('invalid properties JSON throws a string (becomes err)', () => {
  assert.throws(() => decide(event('order.shipped', '{nope'), host()), (e) => typeof e === 'string' && /not valid JSON/.test(e));
});
