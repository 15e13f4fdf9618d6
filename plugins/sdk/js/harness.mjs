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
  const counters = new Map();
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
    'wasmhook:plugin/kv': {
      get: (key) => (kv.has(key) ? new Uint8Array(kv.get(key)) : undefined),
      set: (key, value) => { kv.set(key, new Uint8Array(value)); },
      delete: (key) => { kv.delete(key); counters.delete(key); },
      increment(key, delta) {
        const next = BigInt.asIntN(64, (counters.get(key) ?? 0n) + delta);
        counters.set(key, next);
        return next;
      },
    },
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
