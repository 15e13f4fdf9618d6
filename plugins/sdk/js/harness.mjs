// Run a built wasmhook plugin component under Node, for tests.
//
//   import { loadPlugin } from '../../sdk/js/harness.mjs';
//   const plugin = await loadPlugin('target/plugins/x.wasm', { config: { greeting: 'Hi' } });
//   const result = plugin.transform({ id, name, userId, timestampMs: 0n, properties: '{}' });
//   // result: { tag: 'ok', val: decision } | { tag: 'err', kind, val: message }
//
// `transform` judges the result as the host does (check.mjs): a request the
// host would refuse gives { tag: 'err', kind: 'invalid_output' }, a request
// holding `{{secret:` on an event whose own data holds it too gives
// { tag: 'err', kind: 'refused' } (kv writes made during that run are kept, as
// on the host), an err(...) from the plugin gives kind 'plugin'. A skip
// reason or error message is cut to 4 KiB.
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
// as 0 and wraps on overflow. `readCounter(bytes)` reads such a value. It
// enforces the host's caps by throwing a HostTrap (the host traps the
// invocation): keys of at most 1 KiB, values of at most 1 MiB, and per
// invocation (each `transform` call) 10 000 calls and 8 MiB written (key plus
// value of every set, key plus 8 bytes of every increment). The namespace
// quota (kv_max_mb) is not enforced. A trap is thrown out of `transform`.
//
// Config values are text, as on the host: numbers and booleans become their
// text (`true`, `3`, `2.5`; see configText in check.mjs), anything else
// throws. Log lines of the `log` import are capped like the host's: 100 per
// invocation (then a note of how many were dropped), each cut to 2 KiB.
// console.log/console.error go to Node's stdout/stderr, uncaptured.

import { transpileBytes } from '@bytecodealliance/jco-transpile';
import * as wasi from '@bytecodealliance/preview2-shim';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MAX_REASON_BYTES, checkDecision, configText, truncate } from './check.mjs';

export * from './check.mjs';

const here = dirname(fileURLToPath(import.meta.url));
// Under plugins/**/build/, which .gitignore excludes; inside plugins/sdk/js so
// the transpiled module resolves @bytecodealliance/* from its node_modules.
const CACHE_DIR = join(here, 'build', 'harness');

const camel = (s) => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());

/** Longest kv key and value, in bytes. */
export const MAX_KV_KEY_BYTES = 1024;
export const MAX_KV_VALUE_BYTES = 1024 * 1024;
/** kv calls, and bytes written, per invocation. */
export const MAX_KV_OPS = 10_000;
export const MAX_KV_WRITTEN_BYTES = 8 * 1024 * 1024;
/** Log lines kept per invocation, and the longest kept line in bytes. */
export const MAX_LOG_LINES = 100;
export const MAX_LOG_LINE_BYTES = 2048;

const utf8Len = (s) => new TextEncoder().encode(s).length;

/** Thrown by the doubles where the host traps the invocation (a kv call past a cap). */
export class HostTrap extends Error {
  constructor(message) { super(message); this.name = 'HostTrap'; this.kind = 'trap'; }
}

/**
 * Per-invocation kv counters; `reset()` starts a new invocation.
 * @returns {{ ops: number, written: number, reset(): void }}
 */
export function kvBudget() {
  return { ops: 0, written: 0, reset() { this.ops = 0; this.written = 0; } };
}

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
 * The `wasmhook:plugin/kv` import over `kv`, behaving like the host's store,
 * caps included (a call past one throws a HostTrap). `budget` counts one
 * invocation's calls and bytes; reset it between invocations.
 * @param {Map<string, Uint8Array>} kv
 * @param {{ ops: number, written: number, reset(): void }} [budget]
 */
export function kvImports(kv, budget = kvBudget()) {
  const op = (key) => {
    budget.ops += 1;
    if (budget.ops > MAX_KV_OPS) throw new HostTrap(`kv: more than ${MAX_KV_OPS} operations in one invocation`);
    const n = utf8Len(key);
    if (n > MAX_KV_KEY_BYTES) throw new HostTrap(`kv: key of ${n} bytes exceeds the ${MAX_KV_KEY_BYTES}-byte limit`);
  };
  const write = (key, valueLen) => {
    budget.written += utf8Len(key) + valueLen;
    if (budget.written > MAX_KV_WRITTEN_BYTES) {
      throw new HostTrap(`kv: more than ${MAX_KV_WRITTEN_BYTES} bytes written in one invocation (keys and values of every set and increment)`);
    }
  };
  return {
    get: (key) => { op(key); return kv.has(key) ? new Uint8Array(kv.get(key)) : undefined; },
    set: (key, value) => {
      op(key);
      const bytes = new Uint8Array(value);
      if (bytes.length > MAX_KV_VALUE_BYTES) throw new HostTrap(`kv: value of ${bytes.length} bytes exceeds the ${MAX_KV_VALUE_BYTES}-byte limit`);
      write(key, bytes.length);
      kv.set(key, bytes);
    },
    delete: (key) => { op(key); kv.delete(key); },
    /** @param {string} key @param {bigint | number} delta */
    increment(key, delta) {
      op(key);
      write(key, 8);
      const next = BigInt.asIntN(64, readCounter(kv.get(key)) + BigInt(delta));
      kv.set(key, counterBytes(next));
      return next;
    },
  };
}

/**
 * The `wasmhook:plugin/log` import into `logs`, capped like the host's: at
 * most 100 lines per invocation, each cut to 2 KiB. `begin()` starts an
 * invocation, `finish()` adds the host's note on dropped lines.
 * @param {Array<{ level: string, message: string }>} logs
 * @param {(level: string, message: string) => void} [onLog]
 */
export function logImports(logs, onLog) {
  let kept = 0;
  let dropped = 0;
  return {
    log(level, message) {
      if (kept >= MAX_LOG_LINES) { dropped += 1; return; }
      kept += 1;
      const line = truncate(String(message), MAX_LOG_LINE_BYTES);
      logs.push({ level, message: line });
      if (onLog) onLog(level, line);
    },
    begin() { kept = 0; dropped = 0; },
    finish() {
      if (dropped > 0) logs.push({ level: 'warn', message: `${dropped} log lines dropped (cap ${MAX_LOG_LINES} per invocation)` });
      dropped = 0;
    },
  };
}

/**
 * The host's side of one plugin, without a component: the wasmhook imports
 * (`imports`, served from `config`, `kv` and into `logs`, capped like the
 * host's) and `transform(fn, event)`, which runs `fn(event)` as one
 * invocation and judges the result as the host does. `loadPlugin` uses it
 * for a component; a unit test may use it with a plain function, e.g.
 * `host.transform((e) => decide(e, { getConfig: host.imports['wasmhook:plugin/config'].get, log: host.imports['wasmhook:plugin/log'].log }), event)`.
 * @param {{ config?: Record<string, string | number | boolean>, kv?: Map<string, Uint8Array>,
 *           onLog?: (level: string, message: string) => void }} [opts]
 */
export function createHost({ config = {}, kv = new Map(), onLog } = {}) {
  // Text, as the host holds config values; throws for anything else.
  const settings = new Map(Object.entries(config).map(([k, v]) => [k, configText(v)]));
  /** @type {Array<{ level: string, message: string }>} */
  const logs = [];
  const logImport = logImports(logs, onLog);
  const budget = kvBudget();
  return {
    logs,
    kv,
    config: settings,
    imports: {
      'wasmhook:plugin/log': { log: logImport.log },
      'wasmhook:plugin/config': { get: (key) => settings.get(key) },
      'wasmhook:plugin/kv': kvImports(kv, budget),
    },
    /**
     * Run `fn(event)` as one invocation (fresh kv and log caps) and judge
     * its result as the host does. `fn` follows the component's
     * conventions: it returns a decision (or { tag: 'ok', val }) or
     * { tag: 'err', val }, or throws a string or an object with an own
     * `payload` (an err). Returns { tag: 'ok', val: decision } or
     * { tag: 'err', kind, val: message }, kind being 'plugin' (the plugin's
     * err), 'invalid_output' or 'refused'. A trap (a HostTrap from a kv
     * cap, an Error thrown by `fn`) is thrown.
     * @param {(event: any) => any} fn
     * @param {{ id: string, name: string, userId?: string, timestampMs: bigint, properties: string }} event
     */
    transform(fn, event) {
      budget.reset();
      logImport.begin();
      let result;
      try {
        const out = fn(event);
        result = out && (out.tag === 'ok' || out.tag === 'err') ? out : { tag: 'ok', val: out };
      } catch (e) {
        if (typeof e === 'string') result = { tag: 'err', val: e };
        else if (e && Object.hasOwn(e, 'payload')) result = { tag: 'err', val: e.payload };
        else throw e;
      } finally {
        logImport.finish();
      }
      if (result.tag === 'err') result = { tag: 'err', val: truncate(String(result.val), MAX_REASON_BYTES) };
      return checkDecision(event, result);
    },
  };
}

/**
 * @param {string} wasmPath
 * @param {{ config?: Record<string, string | number | boolean>, kv?: Map<string, Uint8Array>,
 *           onLog?: (level: string, message: string) => void }} [opts]
 */
export async function loadPlugin(wasmPath, opts = {}) {
  const double = createHost(opts);
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

  const host = {
    ...double.imports,
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
    logs: double.logs,
    kv: double.kv,
    /**
     * Call the plugin's `transform` as the host would (a new invocation:
     * fresh kv and log caps) and judge its result as the host does. Returns
     * { tag: 'ok', val: decision } or { tag: 'err', kind, val: message },
     * kind being 'plugin' (the plugin's err), 'invalid_output' or 'refused'.
     * A trap (a HostTrap from a kv cap, or the engine's) is thrown, and
     * leaves this instance unusable.
     */
    transform(event) {
      return double.transform((e) => instance.transform(e), event);
    },
  };
}
