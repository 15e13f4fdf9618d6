// The logic of {{name}}: no WIT imports, so it runs unchanged under Node
// for unit tests (plugin.test.mjs); plugin.js passes in the host's `config`
// and `log` imports.
//
// As generated it forwards events: every event (or only the one named by
// config `event`) is POSTed as JSON to config `url`. Change `decide` to
// build the request your destination expects.
//
// Values follow componentize-js's mapping of the WIT contract (see
// plugins/sdk/js/README.md in the wasmhook repository): the event is
// { id, name, userId?, timestampMs: bigint, properties: string (JSON) };
// return { tag: 'skip', val: reason }, { tag: 'fire', val: [request] } or
// { tag: 'err', val: message }; a request is
// { method: 'post', url, headers: [[name, value]], body: Uint8Array }.

/** @typedef {import('wasmhook:plugin/types@0.1.0').Event} Event */
/** @typedef {import('wasmhook:plugin/types@0.1.0').Request} Request */
/** @typedef {import('wasmhook:plugin/transformer@0.1.0').TransformResult} TransformResult */
/** @typedef {import('wasmhook:plugin/log@0.1.0').Level} Level */
/**
 * What `decide` needs from the host (plugin.js passes the real imports,
 * tests pass fakes).
 * @typedef {object} Host
 * @property {(key: string) => string | undefined} getConfig config.get
 * @property {(level: Level, message: string) => void} log log.log
 */

const encoder = new TextEncoder();

/**
 * Config `key` trimmed, or undefined when it is unset or blank.
 * @param {Host['getConfig']} getConfig
 * @param {string} key
 * @returns {string | undefined}
 */
export function setting(getConfig, key) {
  const value = getConfig(key);
  const trimmed = typeof value === 'string' ? value.trim() : '';
  return trimmed === '' ? undefined : trimmed;
}

/**
 * Decide what to do with one event.
 * @param {Event} event
 * @param {Host} host
 * @returns {TransformResult}
 */
export function decide(event, host) {
  // Skip events this plugin is not about, with a reason for the log.
  const wanted = setting(host.getConfig, 'event');
  if (wanted !== undefined && wanted !== event.name) {
    return { tag: 'skip', val: `event ${event.name} is not ${wanted}` };
  }
  // A missing setting is an error: recorded, nothing is sent.
  const url = setting(host.getConfig, 'url');
  if (url === undefined) {
    return { tag: 'err', val: 'config `url` is not set' };
  }

  const body = {
    id: event.id,
    name: event.name,
    user_id: event.userId ?? null,
    // A bigint, which JSON.stringify refuses; milliseconds fit a number.
    timestamp_ms: Number(event.timestampMs),
    // The host guarantees a JSON object.
    properties: JSON.parse(event.properties),
  };
  host.log('debug', `forwarding ${event.name} to ${url}`);
  /** @type {Request} */
  const request = {
    method: 'post',
    url,
    headers: [['content-type', 'application/json']],
    body: encoder.encode(JSON.stringify(body)),
  };
  return { tag: 'fire', val: [request] };
}
