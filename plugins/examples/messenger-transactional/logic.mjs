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

/**
 * Messenger Send API; the page token is filled in by the host. Default of
 * config `messenger_send_url`.
 */
export const MESSENGER_SEND_URL =
  'https://graph.facebook.com/v19.0/me/messages?access_token={{secret:MESSENGER_PAGE_TOKEN}}';

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
 * @returns {Request}
 */
export function linePush(to, text, url = LINE_PUSH_URL) {
  return {
    method: 'post',
    url,
    headers: [
      ['content-type', 'application/json'],
      ['authorization', 'Bearer {{secret:LINE_CHANNEL_TOKEN}}'],
    ],
    body: jsonBody({ to, messages: [{ type: 'text', text }] }),
  };
}

/**
 * @param {string} psid page-scoped user id
 * @param {string} text
 * @param {string} [url] where to POST (config `messenger_send_url`)
 * @returns {Request}
 */
export function messengerSend(psid, text, url = MESSENGER_SEND_URL) {
  return {
    method: 'post',
    url,
    headers: [['content-type', 'application/json']],
    body: jsonBody({
      recipient: { id: psid },
      messaging_type: 'MESSAGE_TAG',
      tag: 'POST_PURCHASE_UPDATE',
      message: { text },
    }),
  };
}

/**
 * Per channel: the recipient property, the config key overriding the URL
 * (for demos and tests against a local receiver) and its default.
 * @type {Record<string, { label: string, recipientKey: string, urlKey: string, defaultUrl: string,
 *                         build: (recipient: string, text: string, url: string) => Request }>}
 */
const CHANNELS = {
  line: { label: 'LINE', recipientKey: 'line_user_id', urlKey: 'line_push_url', defaultUrl: LINE_PUSH_URL, build: linePush },
  messenger: {
    label: 'Messenger',
    recipientKey: 'psid',
    urlKey: 'messenger_send_url',
    defaultUrl: MESSENGER_SEND_URL,
    build: messengerSend,
  },
};

/**
 * Decide what to do with one event.
 *
 * @param {Event} event
 * @param {{ getConfig: (key: string) => string | undefined,
 *           log: (level: Level, message: string) => void }} host
 * @returns {Decision}
 * @throws {string} when the properties are not valid JSON (the host guarantees they are)
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
  host.log('info', `order ${orderId} shipped: notifying via ${channel.label}`);
  const url = configUrl(host.getConfig, channel.urlKey, channel.defaultUrl);
  return { tag: 'fire', val: [channel.build(recipient, text, url)] };
}
