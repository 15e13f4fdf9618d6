// Unit tests of logic.mjs under Node (no component needed): node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, setting } from './logic.mjs';

/** A fake host: config from `config`, log lines collected in `logs`. */
function host(config = {}) {
  const logs = [];
  return {
    logs,
    getConfig: (key) => config[key],
    log: (level, message) => logs.push([level, message]),
  };
}

const event = (name, properties = {}) => ({
  id: 'evt-1',
  name,
  userId: 'u-42',
  timestampMs: 1700000000000n,
  properties: JSON.stringify(properties),
});

const bodyJson = (request) => JSON.parse(new TextDecoder().decode(request.body));

test('posts the event as JSON to the configured url', () => {
  const h = host({ url: 'https://hooks.example.com/in' });
  const decision = decide(event('order.paid', { total: '12.00' }), h);
  assert.equal(decision.tag, 'fire');
  assert.equal(decision.val.length, 1);
  const [request] = decision.val;
  assert.equal(request.method, 'post');
  assert.equal(request.url, 'https://hooks.example.com/in');
  assert.deepEqual(request.headers, [['content-type', 'application/json']]);
  assert.deepEqual(bodyJson(request), {
    id: 'evt-1',
    name: 'order.paid',
    user_id: 'u-42',
    timestamp_ms: 1700000000000,
    properties: { total: '12.00' },
  });
  assert.deepEqual(h.logs, [['debug', 'forwarding order.paid to https://hooks.example.com/in']]);
});

test('an event without a user has a null user_id', () => {
  const decision = decide({ ...event('order.paid'), userId: undefined }, host({ url: 'https://x.test/' }));
  assert.equal(bodyJson(decision.val[0]).user_id, null);
});

test('skips events other than the configured one', () => {
  const h = host({ url: 'https://hooks.example.com/in', event: 'order.paid' });
  assert.deepEqual(decide(event('user.login'), h), { tag: 'skip', val: 'event user.login is not order.paid' });
  assert.equal(decide(event('order.paid'), h).tag, 'fire');
});

test('a missing url is an error', () => {
  assert.deepEqual(decide(event('order.paid'), host()), { tag: 'err', val: 'config `url` is not set' });
  assert.deepEqual(decide(event('order.paid'), host({ url: '  ' })), { tag: 'err', val: 'config `url` is not set' });
});

test('setting trims and treats blank as unset', () => {
  const get = (key) => ({ a: ' x ', b: ' ' })[key];
  assert.equal(setting(get, 'a'), 'x');
  assert.equal(setting(get, 'b'), undefined);
  assert.equal(setting(get, 'missing'), undefined);
});
