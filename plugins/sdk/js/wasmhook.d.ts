// TypeScript declarations of the wasmhook plugin contract for JavaScript
// plugins built with componentize-js (plugins/sdk/js/build.mjs).
//
// Contract: wit/wasmhook.wit, package wasmhook:plugin@0.1.0, world `transformer`.
// Generated from the WIT by jco's guest-types generator (jco 1.35.0,
// js-component-bindgen), merged into one file and annotated with what the
// componentize-js 0.23.0 bindings actually accept and produce (checked by
// running a built component; see README.md next to this file).
//
// Use from a plain JS plugin with JSDoc and `// @ts-check`:
//
//   /// <reference path="../../sdk/js/wasmhook.d.ts" />
//   import { log } from 'wasmhook:plugin/log@0.1.0';
//   /** @type {import('wasmhook:plugin/transformer@0.1.0').Transform} */
//   export function transform(event) { return { tag: 'skip', val: 'nothing to do' }; }
//
// WIT -> JS, as componentize-js maps it:
//   string                 string
//   u64 / s64              bigint (Event.timestampMs is a bigint; kv.increment returns a bigint
//                          and takes a bigint, a number is converted)
//   option<T>              T | undefined (none arrives as undefined)
//   list<u8>               Uint8Array (a plain array of bytes is accepted as input)
//   list<T>                Array<T>
//   tuple<A, B>            [A, B]
//   record                 plain object, field names in lowerCamelCase (user-id -> userId)
//   enum                   the case name as a string ('post', 'info')
//   variant                { tag: '<case>', val: <payload> }
//   result<T, E> (export)  return T (or { tag: 'ok', val: T }) for ok;
//                          return { tag: 'err', val: E }, or throw a string, for err.
//                          Throwing an Error object does NOT become err: the component
//                          traps (the host records a plugin failure and the instance is dead).
// Import specifiers must carry the version: 'wasmhook:plugin/log@0.1.0'
// ('wasmhook:plugin/log' without it fails at build time).

declare module 'wasmhook:plugin/types@0.1.0' {
  /**
   * One event, as accepted by the host's ingest API.
   */
  export interface Event {
    /**
     * The sender's idempotency key, or one the host generated.
     * Stable across retries of the same event.
     */
    id: string;
    /**
     * The event name, e.g. "email.unsubscribed" or "level.reached".
     */
    name: string;
    /**
     * The user the event is about, when the sender gave one
     * (`undefined` for none).
     */
    userId?: string;
    /**
     * When the event happened, in milliseconds since the Unix epoch.
     * A `bigint` (WIT u64): use `Number(event.timestampMs)` for a Date.
     */
    timestampMs: bigint;
    /**
     * The event's properties: a JSON object, serialized as text.
     * Always a valid JSON object ("{}" when the sender gave none).
     * Use `JSON.parse(event.properties)`.
     */
    properties: string;
  }

  /**
   * The HTTP method of an outbound request (lower case).
   */
  export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

  /**
   * One outbound HTTP request the plugin wants the host to send.
   *
   * The host validates it before anything else: the URL must be an
   * absolute http or https URL, header names and values must be valid
   * (no CR or LF), and the body must fit the plugin's size cap.
   *
   * The host fills every `{{secret:NAME}}` in the URL, a header value or a
   * UTF-8 body wherever it appears, including inside text copied from the
   * event: never copy untrusted event text into a request expecting it to
   * be sent verbatim when it could contain `{{secret:`. When the event's
   * own data (id, name, user id or properties) holds `{{secret:`, the host
   * refuses to fill any request of that invocation that holds it too:
   * nothing is sent, and the invocation is recorded as an error of kind
   * `refused`.
   */
  export interface Request {
    /**
     * The HTTP method. Any other string (e.g. 'POST') traps the component.
     */
    method: Method;
    /**
     * An absolute http(s) URL. May hold `{{secret:NAME}}` placeholders,
     * which the host fills in at send time wherever they appear (see
     * `Request`); the plugin never sees the secret's value.
     */
    url: string;
    /**
     * Request headers as [name, value] pairs, in order. Values may hold
     * `{{secret:NAME}}` placeholders, filled wherever they appear (see
     * `Request`). Hop-by-hop and framing headers
     * (Host, Content-Length, Transfer-Encoding, Connection, ...) are
     * set by the host and refused from plugins.
     */
    headers: Array<[string, string]>;
    /**
     * The request body; may be empty (`new Uint8Array()`). A UTF-8 body may
     * hold `{{secret:NAME}}` placeholders, filled wherever they appear,
     * inside JSON strings too (see `Request`). Use
     * `new TextEncoder().encode(JSON.stringify(obj))` for JSON.
     * A plain array of byte values is accepted too.
     */
    body: Uint8Array | number[];
  }

  /**
   * Do nothing. The string is a human-readable reason, recorded in
   * the delivery log (e.g. "address incomplete").
   */
  export interface DecisionSkip {
    tag: 'skip';
    val: string;
  }

  /**
   * Send these requests, each delivered and retried independently.
   * An empty list is allowed and means nothing is sent.
   */
  export interface DecisionFire {
    tag: 'fire';
    val: Array<Request>;
  }

  /**
   * What the plugin decided to do with an event.
   */
  export type Decision = DecisionSkip | DecisionFire;
}

declare module 'wasmhook:plugin/log@0.1.0' {
  /**
   * Severity of a log message.
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /**
   * Write one message to the host's log at the given level. Messages are
   * size- and rate-capped by the host. (console.log / console.error also
   * work: they go to stdout / stderr, which end up in the plugin's log.)
   */
  export function log(level: Level, message: string): void;
}

declare module 'wasmhook:plugin/config@0.1.0' {
  /**
   * The value of setting `key` from the operator's `[plugins.config]`,
   * or `undefined` when it is not set. Secrets are never readable here.
   */
  export function get(key: string): string | undefined;
}

declare module 'wasmhook:plugin/kv@0.1.0' {
  /**
   * The value stored under `key`, or `undefined` when absent. A counter
   * made by `increment` is 8 bytes, a little-endian signed 64-bit integer:
   * read it with
   * `new DataView(v.buffer, v.byteOffset, v.byteLength).getBigInt64(0, true)`
   * (when `v.length === 8`), never as decimal text.
   */
  export function get(key: string): Uint8Array | undefined;
  /**
   * Store `value` under `key`, replacing any previous value.
   */
  export function set(key: string, value: Uint8Array | number[]): void;
  /**
   * Remove `key`; removing an absent key does nothing.
   * (`delete` is a reserved word: use `import * as kv from ...; kv.delete(key)`
   * or `import { delete as kvDelete } from ...`.)
   */
  function _delete(key: string): void;
  export { _delete as delete };
  /**
   * Atomically add `delta` to the signed 64-bit counter under `key`
   * and return the new value, as a bigint. The counter is stored as 8
   * little-endian bytes in the same key space as `get`/`set`; an absent
   * key or a value that is not 8 bytes long counts as 0 (and is
   * overwritten); the addition wraps on overflow. Every call writes, so
   * it counts against the host's per-invocation caps.
   * `delta` may be a number; it is converted with BigInt().
   */
  export function increment(key: string, delta: bigint | number): bigint;
}

declare module 'wasmhook:plugin/transformer@0.1.0' {
  export type Event = import('wasmhook:plugin/types@0.1.0').Event;
  export type Decision = import('wasmhook:plugin/types@0.1.0').Decision;
  export type Request = import('wasmhook:plugin/types@0.1.0').Request;
  export type Method = import('wasmhook:plugin/types@0.1.0').Method;

  /** The WIT `result<T, E>` in its explicit form. */
  export type Result<T, E> = { tag: 'ok'; val: T } | { tag: 'err'; val: E };

  /**
   * What `transform` may return: a decision (taken as ok(decision)), or the
   * explicit result form. `{ tag: 'err', val: message }` records a plugin
   * error and sends nothing.
   */
  export type TransformResult = Decision | Result<Decision, string>;

  /**
   * The export every plugin module must provide:
   *
   *   export function transform(event) { ... }
   *
   * Decide what to do with one event. Return a decision to skip or fire;
   * return `{ tag: 'err', val: message }` (or throw a string) when the
   * plugin cannot handle the event. Do not throw Error objects: the
   * component traps instead of returning err.
   *
   * It should be synchronous. (The bindings await the returned value, so a
   * Promise that resolves without real I/O also works, but there is no I/O
   * to wait for: no fetch, no sockets, no wasi:http.)
   */
  export type Transform = (event: Event) => TransformResult;
  export function transform(event: Event): TransformResult;
}
