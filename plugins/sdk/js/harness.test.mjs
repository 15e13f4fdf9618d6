// Tests of the harness's kv double (no component needed): node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { counterBytes, kvImports, readCounter } from './harness.mjs';

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
