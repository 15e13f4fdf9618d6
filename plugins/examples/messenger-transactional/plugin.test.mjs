// Unit tests of the plugin's logic under Node (no component needed):
//   node --test plugins/examples/messenger-transactional/   or   scripts/plugins/js.sh test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decide,
  messageText,
  configUrl,
  capText,
  uuidV5,
  lineRetryKey,
  LINE_PUSH_URL,
  MESSENGER_SEND_URL,
  LINE_TEXT_MAX,
  MESSENGER_TEXT_MAX,
} from './logic.mjs';

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

// A LINE user id of the real shape: U + 32 hex digits.
const LINE_USER = 'U4af4980629a3c1d2e5f60718293a4b5c';
const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const lineHeaders = (key) => [
  ['content-type', 'application/json'],
  ['authorization', 'Bearer {{secret:LINE_CHANNEL_TOKEN}}'],
  ['x-line-retry-key', key],
];

test('LINE push request', () => {
  const h = host();
  const d = decide(event('order.shipped', { channel: 'line', line_user_id: LINE_USER, order_id: 'A-1001', tracking_number: '1Z999' }), h);
  assert.equal(d.tag, 'fire');
  assert.equal(d.val.length, 1);
  const [req] = d.val;
  assert.equal(req.method, 'post');
  assert.equal(req.url, LINE_PUSH_URL);
  // The retry key of event evt-1 (UUIDv5 of "line-push:evt-1").
  assert.deepEqual(req.headers, lineHeaders('40f11089-03c8-5e93-aa15-e5fc192e4eeb'));
  assert.ok(req.body instanceof Uint8Array);
  assert.deepEqual(bodyJson(req), {
    to: LINE_USER,
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
  assert.equal(req.url, 'https://graph.facebook.com/v26.0/me/messages?access_token={{secret:MESSENGER_PAGE_TOKEN}}');
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
  assert.deepEqual(req.headers, lineHeaders(lineRetryKey('evt-1')));
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

test('the LINE retry key is a UUIDv5 of the event id: the same for every retry, new for every event', () => {
  const key = (id) => decide(event('order.shipped', { channel: 'line', line_user_id: LINE_USER, order_id: '1' }, { id }), host()).val[0].headers[2];
  const [name, first] = key('evt-ship-0001');
  assert.equal(name, 'x-line-retry-key');
  assert.match(first, UUID_V5);
  assert.equal(first, lineRetryKey('evt-ship-0001'));
  assert.equal(key('evt-ship-0001')[1], first, 'a retry (the same event again) has the same key');
  assert.notEqual(key('evt-ship-0002')[1], first);
  // Checked against Python's uuid.uuid5(UUID("b84371c2-..."), "line-push:evt-ship-0001").
  assert.equal(first, '95260e6d-b8d0-5634-8721-69776256d53d');
  // Non-ASCII ids are hashed as UTF-8.
  assert.match(lineRetryKey('évènement-🎉'), UUID_V5);
});

test('uuidV5 matches RFC 9562 / Python uuid5', () => {
  assert.equal(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  assert.equal(uuidV5('6ba7b811-9dad-11d1-80b4-00c04fd430c8', 'é🎉'), 'fce3f4c7-c1cc-5772-b597-b8d172a14a30');
});

test('Messenger requests carry no retry key', () => {
  const d = decide(event('order.shipped', { channel: 'messenger', psid: '42', order_id: '1' }), host());
  assert.deepEqual(d.val[0].headers, [['content-type', 'application/json']]);
});

test('graph_api_version config picks the Graph API version', () => {
  const d = decide(event('order.shipped', { channel: 'messenger', psid: '42', order_id: '1' }), host({ graph_api_version: ' v25.0 ' }));
  assert.equal(d.val[0].url, 'https://graph.facebook.com/v25.0/me/messages?access_token={{secret:MESSENGER_PAGE_TOKEN}}');
  // messenger_send_url wins over it, and a LINE event never reads it.
  const h = host({ graph_api_version: 'latest', messenger_send_url: 'http://127.0.0.1:9000/m' });
  assert.equal(decide(event('order.shipped', { channel: 'messenger', psid: '42', order_id: '1' }), h).val[0].url, 'http://127.0.0.1:9000/m');
  assert.equal(decide(event('order.shipped', { channel: 'line', line_user_id: LINE_USER, order_id: '1' }), host({ graph_api_version: 'latest' })).tag, 'fire');
});

test('a malformed graph_api_version or messenger_tag throws (becomes err)', () => {
  const ev = event('order.shipped', { channel: 'messenger', psid: '42', order_id: '1' });
  for (const [config, message] of [
    [{ graph_api_version: '26.0' }, /graph_api_version must look like v26.0/],
    [{ graph_api_version: 'v26.0/../x' }, /graph_api_version must look like v26.0/],
    [{ messenger_tag: 'post purchase' }, /messenger_tag must be a message tag/],
  ]) {
    const h = host(config);
    assert.throws(() => decide(ev, h), (e) => typeof e === 'string' && message.test(e), JSON.stringify(config));
    assert.deepEqual(h.logs, []);
  }
});

test('messenger_tag config replaces the tag; none sends messaging_type UPDATE', () => {
  const ev = event('order.shipped', { channel: 'messenger', psid: '42', order_id: '1' });
  const tagged = bodyJson(decide(ev, host({ messenger_tag: 'account_update' })).val[0]);
  assert.equal(tagged.messaging_type, 'MESSAGE_TAG');
  assert.equal(tagged.tag, 'ACCOUNT_UPDATE');
  const plain = bodyJson(decide(ev, host({ messenger_tag: ' None ' })).val[0]);
  assert.deepEqual(plain, { recipient: { id: '42' }, messaging_type: 'UPDATE', message: { text: 'Your order 1 has shipped' } });
});

test('texts are capped: LINE at 5000 UTF-16 units, Messenger at 2000', () => {
  const long = 'x'.repeat(6000);
  const line = bodyJson(decide(event('order.shipped', { channel: 'line', line_user_id: LINE_USER, order_id: long }), host()).val[0]).messages[0].text;
  assert.equal(line.length, LINE_TEXT_MAX);
  assert.ok(line.startsWith('Your order xxx') && line.endsWith('x…'));
  const fb = bodyJson(decide(event('order.shipped', { channel: 'messenger', psid: '42', order_id: long }), host()).val[0]).message.text;
  assert.equal(fb.length, MESSENGER_TEXT_MAX);
  assert.ok(fb.endsWith('x…'));
  // A short text is left alone.
  assert.equal(capText('Your order 1 has shipped', MESSENGER_TEXT_MAX), 'Your order 1 has shipped');
});

test('capText never splits a surrogate pair', () => {
  assert.equal(capText('ab🎉cd', 4), 'ab…'); // "ab" + half of 🎉 would be 3 units: the pair is dropped whole
  assert.equal(capText('ab🎉cd', 5), 'ab🎉…');
  assert.equal(capText('abc', 3), 'abc');
  assert.equal(capText('abcd', 3), 'ab…');
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
