// Run a built wasmhook plugin component under Node, for tests.
//
//   import { loadPlugin } from '../../sdk/js/harness.mjs';
//   const plugin = await loadPlugin('target/plugins/x.wasm', { config: { greeting: 'Hi' } });
//   const result = plugin.transform({ id, name, userId, timestampMs: 0n, properties: '{}' });
//   // result: { tag: 'ok', val: decision } | { tag: 'err', val: message }
//
// The component is transpiled with jco (the real StarlingMonkey engine runs
// inside Node's WebAssembly), its wasmhook imports are served by in-memory
// mocks (config from a plain object, kv from a Map, log into an array) and
// its WASI imports by @bytecodealliance/preview2-shim, with no preopened
// directories. This checks the component end to end, not the host: the
// wasmhook host runs plugins under wasmtime.
//
// The kv mock (`kvImports`) stores what the host stores: `increment` keeps
// a counter as 8 bytes, a little-endian two's-complement 64-bit integer,
// in the same Map as `get`/`set`, treats a value that is not 8 bytes long
// as 0 and wraps on overflow. `readCounter(bytes)` reads such a value. The
// host's caps (calls and bytes per invocation, the quota) are not enforced.

import { transpileBytes } from '@bytecodealliance/jco-transpile';
import * as wasi from '@bytecodealliance/preview2-shim';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Under plugins/**/build/, which .gitignore excludes; inside plugins/sdk/js so
// the transpiled module resolves @bytecodealliance/* from its node_modules.
const CACHE_DIR = join(here, 'build', 'harness');

const camel = (s) => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());

/**
 * The counter a stored kv value holds, as the host's `kv.increment` reads
 * it: 8 bytes as a little-endian signed 64-bit integer (a bigint), or 0n for
 * a value of any other length or none (`undefined`). A plugin reading its
 * own counter with `kv.get` does the same:
 * `new DataView(v.buffer, v.byteOffset, v.byteLength).getBigInt64(0, true)`.
 * @param {Uint8Array | ArrayLike<number> | undefined} bytes
 * @returns {bigint}
 */
export function readCounter(bytes) {
  if (bytes === undefined || bytes.length !== 8) return 0n;
  const copy = Uint8Array.from(bytes);
  return new DataView(copy.buffer).getBigInt64(0, true);
}

/**
 * The 8 bytes the host stores for counter value `n` (wrapped to 64 bits).
 * @param {bigint} n
 * @returns {Uint8Array}
 */
export function counterBytes(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, BigInt.asIntN(64, n), true);
  return out;
}

/**
 * The `wasmhook:plugin/kv` import over `kv`, behaving like the host's store.
 * @param {Map<string, Uint8Array>} kv
 */
export function kvImports(kv) {
  return {
    get: (key) => (kv.has(key) ? new Uint8Array(kv.get(key)) : undefined),
    set: (key, value) => { kv.set(key, new Uint8Array(value)); },
    delete: (key) => { kv.delete(key); },
    /** @param {string} key @param {bigint | number} delta */
    increment(key, delta) {
      const next = BigInt.asIntN(64, readCounter(kv.get(key)) + BigInt(delta));
      kv.set(key, counterBytes(next));
      return next;
    },
  };
}

/**
 * @param {string} wasmPath
 * @param {{ config?: Record<string, string>, kv?: Map<string, Uint8Array>,
 *           onLog?: (level: string, message: string) => void }} [opts]
 */
export async function loadPlugin(wasmPath, { config = {}, kv = new Map(), onLog } = {}) {
  const bytes = await readFile(wasmPath);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const { files, imports: needed } = await transpileBytes(bytes, {
    name: 'plugin',
    instantiation: 'async',
    // err(...) arrives as a ComponentError carrying `payload`, so it can be
    // told apart from a trap (a WebAssembly.RuntimeError).
    noComponentErrorWrapping: false,
  });
  const dir = join(CACHE_DIR, hash);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'plugin.js'), files['plugin.js']);
  const { instantiate } = await import(pathToFileURL(join(dir, 'plugin.js')).href);

  /** @type {Array<{ level: string, message: string }>} */
  const logs = [];
  const host = {
    'wasmhook:plugin/log': {
      log(level, message) {
        logs.push({ level, message });
        if (onLog) onLog(level, message);
      },
    },
    'wasmhook:plugin/config': {
      get: (key) => (Object.hasOwn(config, key) ? String(config[key]) : undefined),
    },
    'wasmhook:plugin/kv': kvImports(kv),
    // A plugin gets no directories (the host preopens at most a read-only assets dir).
    'wasi:filesystem/preopens': { getDirectories: () => [] },
  };
  const importObject = {};
  for (const name of needed) {
    if (host[name]) { importObject[name] = host[name]; continue; }
    const m = /^wasi:([a-z-]+)\/([a-z-]+)$/.exec(name);
    const impl = m && wasi[m[1]] && wasi[m[1]][camel(m[2])];
    if (!impl) throw new Error(`harness: no implementation for import ${name}`);
    importObject[name] = impl;
  }

  const instance = await instantiate(
    (file) => WebAssembly.compile(files[file]),
    importObject,
  );

  return {
    logs,
    kv,
    /**
     * Call the plugin's `transform`. Returns the WIT result as
     * { tag: 'ok', val: decision } or { tag: 'err', val: message }; a trap
     * is thrown (and leaves this instance unusable).
     */
    transform(event) {
      try {
        return { tag: 'ok', val: instance.transform(event) };
      } catch (e) {
        if (e && Object.hasOwn(e, 'payload')) return { tag: 'err', val: e.payload };
        throw e;
      }
    },
  };
}
