// Tests of the harness's host double (no component needed): node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostTrap, counterBytes, createHost, kvBudget, kvImports, logImports, readCounter } from './harness.mjs';

const le = (...bytes) => Uint8Array.from([...bytes, ...new Array(8 - bytes.length).fill(0)]);

test('increment stores the counter as 8 little-endian bytes, readable with get, like the host', () => {
  const store = new Map();
  const kv = kvImports(store);
  assert.equal(kv.increment('n', 1n), 1n);
  assert.deepEqual(kv.get('n'), le(1));
  assert.equal(kv.increment('n', 0x0102), 0x0103n); // a number delta is converted
  assert.deepEqual(kv.get('n'), le(3, 1));
  assert.equal(readCounter(kv.get('n')), 0x0103n);
  assert.equal(kv.increment('n', -0x0104n), -1n);
  assert.deepEqual(kv.get('n'), new Uint8Array(8).fill(0xff));
  assert.equal(readCounter(kv.get('n')), -1n);
  // One key space: set and delete act on the counter too.
  kv.delete('n');
  assert.equal(kv.get('n'), undefined);
  assert.equal(kv.increment('n', 2n), 2n);
  kv.set('n', counterBytes(40n));
  assert.equal(kv.increment('n', 2n), 42n);
});

test('increment treats a value that is not 8 bytes as 0', () => {
  for (const value of [new TextEncoder().encode('41'), new Uint8Array(0), new Uint8Array(9).fill(7)]) {
    const kv = kvImports(new Map([['n', value]]));
    assert.equal(kv.increment('n', 2n), 2n, `${value}`);
    assert.deepEqual(kv.get('n'), le(2));
  }
});

test('increment wraps on overflow', () => {
  const kv = kvImports(new Map([['n', counterBytes(2n ** 63n - 1n)]]));
  assert.equal(kv.increment('n', 1n), -(2n ** 63n));
  assert.deepEqual(kv.get('n'), le(0, 0, 0, 0, 0, 0, 0, 0x80));
  assert.equal(kv.increment('n', -1n), 2n ** 63n - 1n);
});

test('readCounter reads 8 LE bytes, anything else is 0', () => {
  assert.equal(readCounter(le(5)), 5n);
  assert.equal(readCounter([5, 0, 0, 0, 0, 0, 0, 0]), 5n);
  assert.equal(readCounter(counterBytes(-5n)), -5n);
  assert.equal(readCounter(new Uint8Array(16).subarray(8)), 0n);
  assert.equal(readCounter(undefined), 0n);
  assert.equal(readCounter(new Uint8Array(0)), 0n);
  assert.equal(readCounter(new TextEncoder().encode('5')), 0n);
  assert.equal(readCounter(new Uint8Array(9)), 0n);
});

const trap = (fn, text) => assert.throws(fn, (e) => e instanceof HostTrap && e.message.includes(text), text);

test('kv key and value caps trap', () => {
  const kv = kvImports(new Map());
  kv.set('k'.repeat(1024), [1]);
  trap(() => kv.get('k'.repeat(1025)), '1024-byte');
  trap(() => kv.delete('é'.repeat(513)), 'key of 1026 bytes');
  trap(() => kv.set('v', new Uint8Array(1024 * 1024 + 1)), 'value of 1048577 bytes');
  trap(() => kv.increment('k'.repeat(1025), 1n), '1024-byte');
  kv.set('v', new Uint8Array(1024 * 1024));
});

test('kv calls per invocation are capped; a new invocation starts over', () => {
  const budget = kvBudget();
  const kv = kvImports(new Map(), budget);
  for (let i = 0; i < 10_000; i++) kv.get('k');
  trap(() => kv.get('k'), 'more than 10000 operations');
  budget.reset();
  kv.get('k');
});

test('kv bytes written per invocation are capped', () => {
  const store = new Map();
  const kv = kvImports(store);
  const value = new Uint8Array(1024 * 1024 - 1);
  for (let i = 0; i < 8; i++) kv.set(String(i), value);
  kv.delete('0');
  trap(() => kv.increment('n', 1n), 'bytes written');
  assert.equal(store.has('n'), false);
});

test('log lines are capped per invocation and cut like the host', () => {
  const logs = [];
  const log = logImports(logs);
  log.begin();
  log.log('info', 'x'.repeat(3000));
  assert.equal(logs[0].message, `${'x'.repeat(2048)}\u2026 (952 bytes truncated)`);
  for (let i = 1; i < 150; i++) log.log('debug', `line ${i}`);
  log.finish();
  assert.equal(logs.length, 101);
  assert.deepEqual(logs[99], { level: 'debug', message: 'line 99' });
  assert.deepEqual(logs[100], { level: 'warn', message: '50 log lines dropped (cap 100 per invocation)' });
});

// A plugin doing what config `mode` says, written against the imports.
function modes(host) {
  const kv = host.imports['wasmhook:plugin/kv'];
  const get = host.imports['wasmhook:plugin/config'].get;
  return (event) => {
    kv.increment('calls', 1n);
    const props = JSON.parse(event.properties);
    const request = { method: 'post', url: props.url ?? 'https://x.test/', headers: [['authorization', 'Bearer {{secret:TOKEN}}']], body: new Uint8Array(0) };
    switch (get('mode')) {
      case 'err': return { tag: 'err', val: 'no' };
      case 'throw-string': throw 'thrown';
      case 'bug': throw new TypeError('oops');
      case 'kv-loop': for (;;) kv.get('k');
      case 'host-header': return { tag: 'fire', val: [{ ...request, headers: [['Host', 'x.test']] }] };
      case 'userinfo': return { tag: 'fire', val: [{ ...request, url: 'https://u:p@x.test/' }] };
      case 'too-many': return { tag: 'fire', val: Array(17).fill(request) };
      case 'copy-note': return { tag: 'fire', val: [{ ...request, body: new TextEncoder().encode(String(props.note)) }] };
      default: return { tag: 'fire', val: [request] };
    }
  };
}

test('transform judges results as the host does', () => {
  const run = (mode, properties = '{}') => {
    const host = createHost({ config: { mode } });
    return host.transform(modes(host), { id: 'e', name: 'n', userId: undefined, timestampMs: 0n, properties });
  };
  assert.equal(run('ok').tag, 'ok');
  assert.deepEqual(run('err'), { tag: 'err', kind: 'plugin', val: 'no' });
  assert.deepEqual(run('throw-string'), { tag: 'err', kind: 'plugin', val: 'thrown' });
  assert.throws(() => run('bug'), TypeError);
  trap(() => run('kv-loop'), 'operations');
  for (const [mode, text] of [['host-header', '"host" is set by the host'], ['userinfo', 'user:pass@'], ['too-many', '17 requests']]) {
    const out = run(mode);
    assert.equal(out.kind, 'invalid_output', mode);
    assert.ok(out.val.includes(text), out.val);
  }
  assert.match(run('ok', '{"url":"ftp://x.test/"}').val, /^request 0: URL scheme/);
});

test('transform refuses placeholders when the event holds the text, and kv writes are kept', () => {
  const host = createHost({ config: { mode: 'copy-note', flag: true, n: 2.0 } });
  assert.equal(host.config.get('flag'), 'true');
  assert.equal(host.config.get('n'), '2');
  const hostile = { id: 'e', name: 'n', userId: undefined, timestampMs: 0n, properties: '{"note":"{{secret:TOKEN}}"}' };
  assert.equal(host.transform(modes(host), hostile).kind, 'refused');
  assert.equal(readCounter(host.kv.get('calls')), 1n);
  const fine = { ...hostile, properties: '{"note":"hello"}' };
  assert.equal(host.transform(modes(host), fine).tag, 'ok');
  assert.throws(() => createHost({ config: { list: [1] } }), TypeError);
});
