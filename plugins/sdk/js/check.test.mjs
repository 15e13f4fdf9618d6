// Tests of check.mjs, the host's checks on plugin output: node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FORBIDDEN_HEADERS, InvalidOutput, Refused, checkDecision, configText, eventHoldsPlaceholder,
  isSecretName, secret, truncate, validateDecision, validateRequest, validateUrl,
} from './check.mjs';

const enc = new TextEncoder();
const req = (extra = {}) => ({ method: 'post', url: 'https://example.com/', headers: [], body: new Uint8Array(0), ...extra });
const event = (extra = {}) => ({ id: 'e', name: 'n', userId: undefined, timestampMs: 0n, properties: '{}', ...extra });
const invalid = (fn, text) => assert.throws(fn, (e) => e instanceof InvalidOutput && e.message.includes(text), text);

test('URLs the host accepts', () => {
  for (const url of [
    'https://api.example.com/v1/x', 'http://example.com', 'HTTPS://Example.COM:8443/a?b=c#d',
    'https://hooks.slack.com/services/{{secret:SLACK_PATH}}', 'https://graph.facebook.com/me?access_token={{secret:TOKEN}}',
    'http://127.0.0.1:9000/hook', 'http://[::1]:8080/x', 'https://bücher.example/', 'http://0x7f.1/', 'https:///x',
  ]) validateUrl(url);
});

test('URLs the host refuses', () => {
  for (const [url, why] of [
    ['not a url', 'whitespace'], ['/relative/path', 'absolute'], ['ftp://example.com/x', 'scheme'],
    ['https://exa\nmple.com', 'control'], ['https://example.com/\u00a0', 'whitespace'],
    ['https://example.com\\@evil.com/', 'backslash'], ['https://{{secret:HOST}}/x', 'host'],
    ['https://example.com/{{secret:}}', 'malformed'], ['https://example.com/{{secret:A-B}}', 'malformed'],
    ['https://user:pass@example.com/', 'credentials'], ['https://example.com:99999/', 'absolute'],
    ['https://[fe80::1%25eth0]/', 'zone'], ['https://[nope]/', 'absolute'], ['https://', 'absolute'],
    ['http://a"b.example/', 'refuses'], ['http://999.1.1.1/', 'absolute'],
    [`https://example.com/${'a'.repeat(9000)}`, 'limit'],
  ]) invalid(() => validateUrl(url), why);
});

test('headers', () => {
  validateRequest(req({ headers: [['X-Ok', 'fine\there']] }));
  invalid(() => validateRequest(req({ headers: [['x-bad', 'a\r\nInjected: 1']] })), 'CR/LF');
  for (const name of ['bad name', '', 'a:b', 'é']) invalid(() => validateRequest(req({ headers: [[name, 'v']] })), 'header name');
  for (const name of [...FORBIDDEN_HEADERS, 'Host', 'Content-Length', 'TRANSFER-ENCODING', 'Connection', 'Expect']) {
    invalid(() => validateRequest(req({ headers: [[name, 'x']] })), 'set by the host');
  }
  invalid(() => validateRequest(req({ headers: Array.from({ length: 65 }, (_, i) => [`x-${i}`, 'v']) })), 'at most 64');
  invalid(() => validateRequest(req({ headers: [['x-big', 'v'.repeat(64 * 1024)]] })), '65536-byte');
  invalid(() => validateRequest(req({ headers: [['authorization', 'Bearer {{secret:A B}}']] })), 'malformed');
  invalid(() => validateRequest(req({ headers: [['x', 5]] })), 'pair of strings');
  invalid(() => validateRequest(req({ method: 'POST' })), 'method');
});

test('body', () => {
  validateRequest(req({ body: enc.encode(JSON.stringify({ k: secret('KEY') })) }));
  validateRequest(req({ body: new Uint8Array(1024 * 1024) }));
  validateRequest(req({ body: [1, 2, 3] }));
  invalid(() => validateRequest(req({ body: new Uint8Array(1024 * 1024 + 1) })), 'max_body_bytes');
  invalid(() => validateRequest(req({ body: enc.encode('{"k":"{{secret:KEY"}') })), 'body: malformed');
  invalid(() => validateRequest(req({ body: 'text' })), 'Uint8Array');
  // A body that is not UTF-8 is not searched for placeholders.
  validateRequest(req({ body: Uint8Array.from([0xff, ...enc.encode('{{secret:')]) }));
});

test('decisions: count, then each request', () => {
  validateDecision(event(), { tag: 'skip', val: 'x' });
  invalid(() => validateDecision(event(), { tag: 'fire', val: Array(17).fill(req()) }), '17 requests');
  invalid(() => validateDecision(event(), { tag: 'fire', val: [req(), req({ url: 'gopher://b' })] }), 'request 1: ');
  assert.deepEqual(checkDecision(event(), { tag: 'fire', val: [req({ headers: [['Host', 'x']] })] }).kind, 'invalid_output');
  assert.deepEqual(checkDecision(event(), { tag: 'err', val: 'nope' }), { tag: 'err', kind: 'plugin', val: 'nope' });
  const long = checkDecision(event(), { tag: 'skip', val: 'é'.repeat(3000) });
  assert.ok(long.val.val.endsWith('bytes truncated)'));
});

test('the refused rule', () => {
  const plain = req();
  const withSecret = req({ headers: [['authorization', 'Bearer {{secret:TOKEN}}']] });
  for (const ev of [
    event({ id: '{{secret:X}}' }), event({ name: '{{secret:X}}' }), event({ userId: 'u{{secret:' }),
    event({ properties: '{"note":["hi {{secret:TOKEN}}"]}' }), event({ properties: '{"{{secret:":1}' }),
    event({ properties: '{"a":"\\u007b{secret:X}}"}' }),
  ]) {
    assert.ok(eventHoldsPlaceholder(ev), ev.properties);
    assert.throws(() => validateDecision(ev, { tag: 'fire', val: [plain, withSecret] }),
      (e) => e instanceof Refused && e.message.startsWith('request 1 '));
    assert.equal(checkDecision(ev, { tag: 'fire', val: [withSecret] }).kind, 'refused');
  }
  const ev = event({ properties: '{"note":"{{secret:"}' });
  validateDecision(ev, { tag: 'fire', val: [plain] });
  validateDecision(ev, { tag: 'skip', val: 's' });
  validateDecision(ev, { tag: 'fire', val: [req({ body: Uint8Array.from([0xff, ...enc.encode('{{secret:X}}')]) })] });
  validateDecision(event(), { tag: 'fire', val: [withSecret] });
});

test('secret names', () => {
  for (const bad of ['', 'API-TOKEN', 'A B', 'X}}', 'é', '\u212a', undefined, 5]) {
    assert.equal(isSecretName(bad), false);
    assert.throws(() => secret(bad), TypeError);
  }
  assert.equal(secret('A_1'), '{{secret:A_1}}');
});

test('config values become text as on the host', () => {
  assert.deepEqual(
    [true, false, 3, -7, 2.5, 2.0, 1e20, 1e21, 1e-7, 0.1, -0, 12345678901234567890].map(configText),
    ['true', 'false', '3', '-7', '2.5', '2', '100000000000000000000', '1000000000000000000000', '0.0000001', '0.1', '-0', '12345678901234567000'],
  );
  for (const bad of [null, undefined, [1], { a: 1 }]) assert.throws(() => configText(bad), TypeError);
});

test('truncate cuts on a character boundary', () => {
  assert.equal(truncate('héllo', 10), 'héllo');
  assert.equal(truncate('héllo', 2), 'h\u2026 (5 bytes truncated)');
});
