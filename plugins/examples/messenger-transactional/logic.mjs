// Pure logic of the messenger-transactional plugin: no WIT imports, so it
// runs unchanged under Node for unit tests (plugin.test.mjs). plugin.js
// wires it to the host's `log` and `config` imports.
//
// Values follow componentize-js's WIT mapping (see plugins/sdk/js/README.md):
// the event is { id, name, userId?, timestampMs: bigint, properties: string },
// a decision is { tag: 'skip', val: reason } or { tag: 'fire', val: [request] },
// a request is { method: 'post', url, headers: [[name, value]], body: Uint8Array }.
// The JSDoc types come from plugins/sdk/js/wasmhook.d.ts.

/** @typedef {import('wasmhook:plugin/types@0.1.0').Event} Event */
/** @typedef {import('wasmhook:plugin/types@0.1.0').Request} Request */
/** @typedef {import('wasmhook:plugin/types@0.1.0').Decision} Decision */
/** @typedef {import('wasmhook:plugin/types@0.1.0').DecisionSkip} DecisionSkip */
/** @typedef {import('wasmhook:plugin/log@0.1.0').Level} Level */

/** The only event this plugin acts on. */
export const EVENT_NAME = 'order.shipped';

/** LINE Messaging API, send push message; default of config `line_push_url`. */
export const LINE_PUSH_URL = 'https://api.line.me/v2/bot/message/push';

/** Graph API version of the Messenger Send API; config `graph_api_version` replaces it. */
export const GRAPH_API_VERSION = 'v26.0';

/**
 * The Messenger Send API URL for a Graph API version; the page token is
 * filled in by the host.
 * @param {string} version e.g. `v26.0`
 */
export const messengerSendUrl = (version) =>
  `https://graph.facebook.com/${version}/me/messages?access_token={{secret:MESSENGER_PAGE_TOKEN}}`;

/** Default of config `messenger_send_url`. */
export const MESSENGER_SEND_URL = messengerSendUrl(GRAPH_API_VERSION);

/** Message tag of Messenger requests; config `messenger_tag` replaces it (`none`: no tag). */
export const MESSENGER_TAG = 'POST_PURCHASE_UPDATE';

/** Longest text of a LINE text message, in UTF-16 code units (LINE counts so). */
export const LINE_TEXT_MAX = 5000;

/** Longest text of a Messenger message, in characters (counted as UTF-16 code units here, which never undercounts). */
export const MESSENGER_TEXT_MAX = 2000;

/**
 * Namespace of the UUIDv5 LINE retry keys: a fixed random UUID, so the keys
 * are this plugin's own and stable across versions and hosts.
 */
export const RETRY_KEY_NAMESPACE = 'b84371c2-5132-4630-9a10-b872dc6cea90';

const encoder = new TextEncoder();

/**
 * @param {string} reason
 * @returns {DecisionSkip}
 */
const skip = (reason) => ({ tag: 'skip', val: reason });

/**
 * A non-empty string property, or undefined. Numbers are accepted when they
 * survived JSON parsing exactly (safe integers); anything else is "missing".
 * @param {Record<string, unknown>} props
 * @param {string} key
 * @returns {string | undefined}
 */
function stringProp(props, key) {
  const v = props[key];
  if (typeof v === 'string') {
    const t = v.trim();
    return t === '' ? undefined : t;
  }
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  return undefined;
}

/**
 * The notification text: "[greeting ]Your order <id> has shipped[ (tracking <no>)]".
 * @param {string} orderId
 * @param {string | undefined} tracking
 * @param {string | undefined} greeting
 */
export function messageText(orderId, tracking, greeting) {
  let text = `Your order ${orderId} has shipped`;
  if (tracking) text += ` (tracking ${tracking})`;
  const g = typeof greeting === 'string' ? greeting.trim() : '';
  return g ? `${g} ${text}` : text;
}

/**
 * `text`, at most `max` UTF-16 code units long: a longer text is cut, never
 * inside a surrogate pair, and ends with "…".
 * @param {string} text
 * @param {number} max
 */
export function capText(text, max) {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1; // a high surrogate: keep the pair whole
  return `${text.slice(0, end)}…`;
}

/**
 * SHA-1 of `bytes` (FIPS 180-4), for UUIDv5. Not for security.
 * @param {Uint8Array} bytes
 * @returns {Uint8Array} 20 bytes
 */
export function sha1(bytes) {
  const bitLength = bytes.length * 8;
  const padded = new Uint8Array(((bytes.length + 9 + 63) >> 6) << 6);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLength / 0x100000000));
  view.setUint32(padded.length - 4, bitLength >>> 0);
  let h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476, h4 = 0xc3d2e1f0;
  const w = new Uint32Array(80);
  /** @type {(x: number, n: number) => number} */
  const rotl = (x, n) => (x << n) | (x >>> (32 - n));
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(block + i * 4);
    for (let i = 16; i < 80; i++) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    let a = h0, b = h1, c = h2, d = h3, e = h4;
    for (let i = 0; i < 80; i++) {
      const [f, k] =
        i < 20 ? [(b & c) | (~b & d), 0x5a827999]
        : i < 40 ? [b ^ c ^ d, 0x6ed9eba1]
        : i < 60 ? [(b & c) | (b & d) | (c & d), 0x8f1bbcdc]
        : [b ^ c ^ d, 0xca62c1d6];
      const t = (rotl(a, 5) + f + e + k + w[i]) >>> 0;
      e = d;
      d = c;
      c = rotl(b, 30) >>> 0;
      b = a;
      a = t;
    }
    h0 = (h0 + a) >>> 0;
    h1 = (h1 + b) >>> 0;
    h2 = (h2 + c) >>> 0;
    h3 = (h3 + d) >>> 0;
    h4 = (h4 + e) >>> 0;
  }
  const out = new Uint8Array(20);
  const outView = new DataView(out.buffer);
  [h0, h1, h2, h3, h4].forEach((h, i) => outView.setUint32(i * 4, h));
  return out;
}

/**
 * The name-based UUID (version 5, RFC 9562) of `name` in `namespace`.
 * @param {string} namespace a UUID, e.g. RETRY_KEY_NAMESPACE
 * @param {string} name
 * @returns {string} lower-case `xxxxxxxx-xxxx-5xxx-yxxx-xxxxxxxxxxxx`
 */
export function uuidV5(namespace, name) {
  const ns = namespace.replace(/-/g, '');
  const nameBytes = encoder.encode(name);
  const input = new Uint8Array(16 + nameBytes.length);
  for (let i = 0; i < 16; i++) input[i] = parseInt(ns.slice(i * 2, i * 2 + 2), 16);
  input.set(nameBytes, 16);
  const hash = sha1(input).slice(0, 16);
  hash[6] = (hash[6] & 0x0f) | 0x50; // version 5
  hash[8] = (hash[8] & 0x3f) | 0x80; // RFC 9562 variant
  const hex = Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The `X-Line-Retry-Key` of the push for event `eventId`: a UUID derived
 * from the event id, so every retry of the delivery carries the same key
 * and LINE accepts the push once. The plugin sends one LINE request per
 * event; the name says which, should it ever send more.
 * @param {string} eventId
 */
export const lineRetryKey = (eventId) => uuidV5(RETRY_KEY_NAMESPACE, `line-push:${eventId}`);

/** @param {unknown} obj */
const jsonBody = (obj) => encoder.encode(JSON.stringify(obj));

/**
 * Setting `key` (surrounding whitespace ignored) or `fallback` when it is
 * unset or blank. The value is used as written: `{{secret:NAME}}`
 * placeholders in it are left for the host to fill.
 * @param {(key: string) => string | undefined} getConfig
 * @param {string} key
 * @param {string} fallback
 * @returns {string}
 */
export function configUrl(getConfig, key, fallback) {
  const v = getConfig(key);
  const t = typeof v === 'string' ? v.trim() : '';
  return t === '' ? fallback : t;
}

/**
 * @param {string} to LINE user id
 * @param {string} text
 * @param {string} [url] where to POST (config `line_push_url`)
 * @param {string} [retryKey] `X-Line-Retry-Key`, a UUID (see lineRetryKey)
 * @returns {Request}
 */
export function linePush(to, text, url = LINE_PUSH_URL, retryKey = undefined) {
  /** @type {[string, string][]} */
  const headers = [
    ['content-type', 'application/json'],
    ['authorization', 'Bearer {{secret:LINE_CHANNEL_TOKEN}}'],
  ];
  if (retryKey) headers.push(['x-line-retry-key', retryKey]);
  return { method: 'post', url, headers, body: jsonBody({ to, messages: [{ type: 'text', text: capText(text, LINE_TEXT_MAX) }] }) };
}

/**
 * @param {string} psid page-scoped user id
 * @param {string} text
 * @param {string} [url] where to POST (config `messenger_send_url`)
 * @param {string | null} [tag] message tag; null: no tag, `messaging_type: UPDATE`
 * @returns {Request}
 */
export function messengerSend(psid, text, url = MESSENGER_SEND_URL, tag = MESSENGER_TAG) {
  const kind = tag ? { messaging_type: 'MESSAGE_TAG', tag } : { messaging_type: 'UPDATE' };
  return {
    method: 'post',
    url,
    headers: [['content-type', 'application/json']],
    body: jsonBody({ recipient: { id: psid }, ...kind, message: { text: capText(text, MESSENGER_TEXT_MAX) } }),
  };
}

/**
 * Config `graph_api_version` (e.g. `v26.0`), or GRAPH_API_VERSION.
 * @param {(key: string) => string | undefined} getConfig
 * @throws {string} when it is set but not `v<major>.<minor>`
 */
export function graphApiVersion(getConfig) {
  const v = configUrl(getConfig, 'graph_api_version', GRAPH_API_VERSION);
  if (!/^v\d{1,3}\.\d{1,3}$/.test(v)) {
    throw `config graph_api_version must look like v26.0, not ${JSON.stringify(v.slice(0, 40))}`;
  }
  return v;
}

/**
 * Config `messenger_tag` upper-cased, MESSENGER_TAG when unset, null for
 * `none`.
 * @param {(key: string) => string | undefined} getConfig
 * @throws {string} when it is not a tag name (letters and _)
 */
export function messengerTag(getConfig) {
  const t = configUrl(getConfig, 'messenger_tag', MESSENGER_TAG).toUpperCase();
  if (t === 'NONE') return null;
  if (!/^[A-Z][A-Z_]{0,63}$/.test(t)) {
    throw `config messenger_tag must be a message tag such as POST_PURCHASE_UPDATE, or none, not ${JSON.stringify(t.slice(0, 40))}`;
  }
  return t;
}

/**
 * Per channel: the recipient property, the config key overriding the URL
 * (for demos and tests against a local receiver), its default (read from
 * config only when needed) and the request.
 * @type {Record<string, { label: string, recipientKey: string, urlKey: string,
 *                         defaultUrl: (getConfig: (key: string) => string | undefined) => string,
 *                         build: (recipient: string, text: string, url: string, event: Event,
 *                                 getConfig: (key: string) => string | undefined) => Request }>}
 */
const CHANNELS = {
  line: {
    label: 'LINE',
    recipientKey: 'line_user_id',
    urlKey: 'line_push_url',
    defaultUrl: () => LINE_PUSH_URL,
    build: (to, text, url, event) => linePush(to, text, url, lineRetryKey(event.id)),
  },
  messenger: {
    label: 'Messenger',
    recipientKey: 'psid',
    urlKey: 'messenger_send_url',
    defaultUrl: (getConfig) => messengerSendUrl(graphApiVersion(getConfig)),
    build: (psid, text, url, _event, getConfig) => messengerSend(psid, text, url, messengerTag(getConfig)),
  },
};

/**
 * Decide what to do with one event.
 *
 * @param {Event} event
 * @param {{ getConfig: (key: string) => string | undefined,
 *           log: (level: Level, message: string) => void }} host
 * @returns {Decision}
 * @throws {string} when the properties are not valid JSON (the host guarantees
 *   they are), or a Messenger setting is malformed (`graph_api_version`, `messenger_tag`)
 */
export function decide(event, host) {
  if (event.name !== EVENT_NAME) {
    return skip(`event "${event.name}" is not handled (only ${EVENT_NAME})`);
  }

  let props;
  try {
    props = JSON.parse(event.properties);
  } catch (e) {
    throw `properties are not valid JSON: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (props === null || typeof props !== 'object' || Array.isArray(props)) props = {};

  const rawChannel = props.channel;
  if (rawChannel === undefined || rawChannel === null || rawChannel === '') {
    return skip('missing property "channel" (expected "line" or "messenger")');
  }
  const channelName = typeof rawChannel === 'string' ? rawChannel.trim().toLowerCase() : '';
  const channel = Object.hasOwn(CHANNELS, channelName) ? CHANNELS[channelName] : undefined;
  if (!channel) {
    return skip(`unknown channel ${JSON.stringify(rawChannel)} (expected "line" or "messenger")`);
  }

  const recipient = stringProp(props, channel.recipientKey);
  if (!recipient) {
    return skip(`missing property "${channel.recipientKey}" (${channel.label} recipient id)`);
  }

  const orderId = stringProp(props, 'order_id');
  if (!orderId) {
    return skip('missing property "order_id"');
  }

  const text = messageText(orderId, stringProp(props, 'tracking_number'), host.getConfig('greeting'));
  const configured = configUrl(host.getConfig, channel.urlKey, '');
  const url = configured || channel.defaultUrl(host.getConfig);
  const request = channel.build(recipient, text, url, event, host.getConfig);
  host.log('info', `order ${orderId} shipped: notifying via ${channel.label}`);
  return { tag: 'fire', val: [request] };
}
