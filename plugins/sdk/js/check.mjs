// The host's checks on what a plugin returns (host/src/runtime/output.rs and
// the egress policy, host/src/policy), for tests under Node: a unit test of a
// plugin's logic fails where the host would refuse.
//
//   import { validateRequest, validateDecision } from '../../sdk/js/check.mjs';
//   validateRequest(request);                 // throws InvalidOutput
//   validateDecision(event, decision);        // throws InvalidOutput or Refused
//   checkDecision(event, decision);           // { tag: 'ok', val } or { tag: 'err', kind, val }
//
// `harness.mjs` applies the same checks to what a built component returns.
// The limits are the host's defaults (an operator may change max_requests,
// max_body_bytes and max_headers per plugin). Not checked, because they depend
// on the operator's configuration: allowed_hosts, allowed_methods, the
// private-network block, and whether a named secret exists. URLs are parsed
// with Node's WHATWG `URL`, the standard the host's `url` crate implements.

/** Most requests one decision may hold (the default `max_requests`). */
export const MAX_REQUESTS = 16;
/** Largest request body, in bytes (the default `max_body_bytes`). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Longest URL, in bytes. */
export const MAX_URL_BYTES = 8 * 1024;
/** Most headers on one request (the default `max_headers`). */
export const MAX_HEADERS = 64;
/** Most bytes of header names and values on one request. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Longest skip reason or error message the host keeps, in bytes. */
export const MAX_REASON_BYTES = 4 * 1024;

/**
 * Headers a plugin may not set (compared case-insensitively): hop-by-hop and
 * framing headers, and the signing headers the host adds itself.
 */
export const FORBIDDEN_HEADERS = Object.freeze([
  'host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive',
  'proxy-authorization', 'proxy-authenticate', 'proxy-connection', 'te', 'trailer',
  'upgrade', 'expect', 'http2-settings', 'webhook-id', 'webhook-timestamp', 'webhook-signature',
]);

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const PLACEHOLDER_OPEN = '{{secret:';
const encoder = new TextEncoder();
const utf8Len = (/** @type {string} */ s) => encoder.encode(s).length;

/** A request or decision the host refuses as `invalid_output`. */
export class InvalidOutput extends Error {
  constructor(/** @type {string} */ message) { super(message); this.name = 'InvalidOutput'; this.kind = 'invalid_output'; }
}

/** A decision the host refuses as `refused`: the event's own data and a request both hold `{{secret:`. */
export class Refused extends Error {
  constructor(/** @type {string} */ message) { super(message); this.name = 'Refused'; this.kind = 'refused'; }
}

/** Whether `name` is a valid secret name, `[A-Za-z0-9_]+`. */
export function isSecretName(name) {
  return typeof name === 'string' && /^[A-Za-z0-9_]+$/.test(name);
}

/**
 * The placeholder `{{secret:NAME}}`; throws a TypeError for a name that is
 * not `[A-Za-z0-9_]+` (the host would refuse it as malformed). For tests; a
 * plugin writes the placeholder itself.
 */
export function secret(name) {
  if (!isSecretName(name)) throw new TypeError(`secret name ${JSON.stringify(name)} is invalid: use letters, digits and _ only`);
  return `{{secret:${name}}}`;
}

/**
 * `text` cut to `maxBytes` of UTF-8 on a character boundary, with the host's
 * mark `… (N bytes truncated)`.
 * @param {string} text
 * @param {number} maxBytes
 */
export function truncate(text, maxBytes) {
  const bytes = encoder.encode(text);
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return `${new TextDecoder().decode(bytes.subarray(0, end))}\u2026 (${bytes.length - end} bytes truncated)`;
}

/** Every `{{secret:` must open `{{secret:NAME}}`; the error, or undefined. */
function placeholderProblem(/** @type {string} */ text) {
  let at = text.indexOf(PLACEHOLDER_OPEN);
  while (at !== -1) {
    const m = /^[A-Za-z0-9_]+\}\}/.exec(text.slice(at + PLACEHOLDER_OPEN.length));
    if (!m) return 'malformed secret placeholder: expected {{secret:NAME}} with NAME of letters, digits and _';
    at = text.indexOf(PLACEHOLDER_OPEN, at + PLACEHOLDER_OPEN.length + m[0].length);
  }
  return undefined;
}

// Unicode White_Space and the C0/C1 controls, as Rust's char::is_whitespace
// and char::is_control see them.
const SPACE_OR_CONTROL = /[\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;

/**
 * Check a request URL as the host and its egress policy do; throws
 * InvalidOutput. At most 8 KiB; no whitespace, control character or
 * backslash; well-formed placeholders, none in the scheme, host or port; an
 * absolute http(s) URL with a host; no `user:pass@`; no IPv6 zone id; a host
 * of characters an HTTP client accepts.
 * @param {string} url
 */
export function validateUrl(url) {
  if (typeof url !== 'string') throw new InvalidOutput(`URL is a ${typeof url}, not a string`);
  const shown = JSON.stringify(truncate(url, 256));
  if (utf8Len(url) > MAX_URL_BYTES) throw new InvalidOutput(`URL of ${utf8Len(url)} bytes exceeds the ${MAX_URL_BYTES}-byte limit`);
  if (SPACE_OR_CONTROL.test(url)) throw new InvalidOutput('URL contains whitespace or control characters');
  if (url.includes('\\')) throw new InvalidOutput('URL contains a backslash (refused by the egress policy)');
  const problem = placeholderProblem(url);
  if (problem) throw new InvalidOutput(`URL: ${problem}`);
  const colon = url.indexOf(':');
  if (colon < 1 || !/^[A-Za-z][A-Za-z0-9+.-]*$/.test(url.slice(0, colon))) throw new InvalidOutput(`URL ${shown} is not an absolute URL`);
  const scheme = url.slice(0, colon).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') throw new InvalidOutput(`URL scheme "${scheme}" is not allowed; use http or https`);
  const rest = url.slice(colon + 1).replace(/^\/*/, '');
  const authority = rest.split(/[/?#]/, 1)[0];
  if (authority.includes('{{')) throw new InvalidOutput("secret placeholders are not allowed in the URL's scheme, host or port");
  if (authority.includes('@')) throw new InvalidOutput('URL holds credentials (user:pass@), refused by the egress policy; send them in a header');
  if (authority.includes('[') && authority.includes('%')) throw new InvalidOutput('URL has an IPv6 zone id, refused by the egress policy');
  let parsed;
  try {
    parsed = new URL(url);
  } catch (e) {
    throw new InvalidOutput(`URL ${shown} is not an absolute URL: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (parsed.hostname === '') throw new InvalidOutput(`URL ${shown} has no host`);
  if (!parsed.hostname.startsWith('[') && !/^[A-Za-z0-9\-._~!$&'()*+,;=]+$/.test(parsed.hostname)) {
    throw new InvalidOutput(`URL ${shown}: the host ${JSON.stringify(parsed.hostname)} has characters an HTTP client refuses`);
  }
}

/** @param {unknown} body @returns {Uint8Array} */
function bodyBytes(body) {
  if (body instanceof Uint8Array) return body;
  if (Array.isArray(body) && body.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) return Uint8Array.from(body);
  throw new InvalidOutput('body must be a Uint8Array or an array of bytes (anything else traps at the component boundary)');
}

/**
 * Check one request as the host does before sending it; throws InvalidOutput
 * saying what the host would refuse: the method (one of get, post, put,
 * patch, delete), the URL (validateUrl), at most 64 headers of 64 KiB in all,
 * header names that are HTTP tokens and not in FORBIDDEN_HEADERS, values
 * without control characters (TAB allowed), a body of at most 1 MiB, and
 * well-formed placeholders in header values and a UTF-8 body.
 * @param {{ method: string, url: string, headers?: Array<[string, string]>, body?: Uint8Array | number[] }} request
 */
export function validateRequest(request) {
  if (!METHODS.includes(request.method)) {
    throw new InvalidOutput(`method must be one of ${METHODS.join(', ')}, not ${JSON.stringify(request.method)} (anything else traps)`);
  }
  validateUrl(request.url);
  const headers = request.headers ?? [];
  if (headers.length > MAX_HEADERS) throw new InvalidOutput(`${headers.length} headers; at most ${MAX_HEADERS} are allowed`);
  for (const h of headers) {
    if (!Array.isArray(h) || h.length !== 2 || typeof h[0] !== 'string' || typeof h[1] !== 'string') {
      throw new InvalidOutput('a header must be a [name, value] pair of strings (anything else traps)');
    }
  }
  const size = headers.reduce((n, [name, value]) => n + utf8Len(name) + utf8Len(value), 0);
  if (size > MAX_HEADER_BYTES) throw new InvalidOutput(`headers of ${size} bytes exceed the ${MAX_HEADER_BYTES}-byte limit (names and values)`);
  for (const [name, value] of headers) {
    const shown = JSON.stringify(truncate(name, 64));
    if (!/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/.test(name) || name.length >= 65536) throw new InvalidOutput(`invalid header name ${shown}`);
    const lower = name.toLowerCase();
    if (FORBIDDEN_HEADERS.includes(lower)) {
      throw new InvalidOutput(`header "${lower}" is set by the host (hop-by-hop, framing or signing header); remove it from the request`);
    }
    if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) {
      throw new InvalidOutput(`invalid value for header ${shown} (control characters such as CR/LF are not allowed)`);
    }
    const problem = placeholderProblem(value);
    if (problem) throw new InvalidOutput(`header ${shown}: ${problem}`);
  }
  const body = bodyBytes(request.body ?? new Uint8Array(0));
  if (body.length > MAX_BODY_BYTES) throw new InvalidOutput(`body of ${body.length} bytes exceeds the ${MAX_BODY_BYTES}-byte limit (max_body_bytes)`);
  const text = utf8Text(body);
  const problem = text === undefined ? undefined : placeholderProblem(text);
  if (problem) throw new InvalidOutput(`body: ${problem}`);
}

/** The body as text when it is valid UTF-8. @param {Uint8Array} body */
function utf8Text(body) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    return undefined;
  }
}

/**
 * Whether the event's own data (id, name, userId, any key or value of its
 * properties) holds `{{secret:`, as the host decides it (on the properties as
 * parsed, so `\u007b` escapes count).
 * @param {{ id: string, name: string, userId?: string, properties: string }} event
 */
export function eventHoldsPlaceholder(event) {
  let properties = event.properties ?? '';
  try {
    properties = JSON.stringify(JSON.parse(properties));
  } catch {
    // as written
  }
  return [event.id, event.name, event.userId, properties].some((t) => typeof t === 'string' && t.includes(PLACEHOLDER_OPEN));
}

/** @param {{ url: string, headers?: Array<[string, string]>, body?: Uint8Array | number[] }} r */
function requestHoldsPlaceholder(r) {
  if (String(r.url).includes(PLACEHOLDER_OPEN)) return true;
  if ((r.headers ?? []).some((h) => Array.isArray(h) && String(h[1]).includes(PLACEHOLDER_OPEN))) return true;
  let text;
  try {
    text = utf8Text(bodyBytes(r.body ?? new Uint8Array(0)));
  } catch {
    return false;
  }
  return text !== undefined && text.includes(PLACEHOLDER_OPEN);
}

/**
 * Check a decision as the host checks what `transform` returned for `event`:
 * at most 16 requests (InvalidOutput), then the `refused` rule (Refused: the
 * event's own data holds `{{secret:` and so does a request, in its URL, a
 * header value or a UTF-8 body), then validateRequest on each request
 * (InvalidOutput, "request N: ..."). A skip passes.
 * @param {{ id: string, name: string, userId?: string, properties: string }} event
 * @param {{ tag: string, val: any }} decision
 */
export function validateDecision(event, decision) {
  if (decision.tag === 'skip') return;
  if (decision.tag !== 'fire' || !Array.isArray(decision.val)) {
    throw new InvalidOutput(`a decision is { tag: 'skip', val } or { tag: 'fire', val: [...] }, not ${JSON.stringify(decision)} (anything else traps)`);
  }
  const requests = decision.val;
  if (requests.length > MAX_REQUESTS) {
    throw new InvalidOutput(`the plugin returned ${requests.length} requests; at most ${MAX_REQUESTS} are allowed per event (max_requests)`);
  }
  if (eventHoldsPlaceholder(event)) {
    const i = requests.findIndex(requestHoldsPlaceholder);
    if (i !== -1) {
      throw new Refused(`request ${i} holds a secret placeholder, and the event's own data holds the text "{{secret:": the host fills no placeholder it cannot tell from event text`);
    }
  }
  requests.forEach((r, i) => {
    try {
      validateRequest(r);
    } catch (e) {
      if (e instanceof InvalidOutput) throw new InvalidOutput(truncate(`request ${i}: ${e.message}`, MAX_REASON_BYTES));
      throw e;
    }
  });
}

/**
 * What the host records for `result` (a decision, or the harness's
 * `{ tag: 'ok' | 'err', val }`) on `event`: `{ tag: 'ok', val: decision }`
 * (a skip reason cut to 4 KiB) or `{ tag: 'err', kind, val: message }` with
 * kind `plugin`, `invalid_output` or `refused`.
 * @param {{ id: string, name: string, userId?: string, properties: string }} event
 * @param {{ tag: string, val: any }} result
 */
export function checkDecision(event, result) {
  if (result.tag === 'err') return { tag: 'err', kind: 'plugin', val: truncate(String(result.val), MAX_REASON_BYTES) };
  const decision = result.tag === 'ok' ? result.val : result;
  try {
    validateDecision(event, decision);
  } catch (e) {
    if (e instanceof InvalidOutput || e instanceof Refused) return { tag: 'err', kind: e.kind, val: e.message };
    throw e;
  }
  if (decision.tag === 'skip') return { tag: 'ok', val: { tag: 'skip', val: truncate(String(decision.val), MAX_REASON_BYTES) } };
  return { tag: 'ok', val: decision };
}

/**
 * A config value as the host holds it: always text. Strings stay as they are;
 * booleans become "true"/"false", numbers their shortest text without an
 * exponent (2 for 2.0, "100000000000000000000" for 1e20), as the host reads
 * them from TOML. Anything else throws a TypeError (the host refuses it).
 * @param {unknown} value
 */
export function configText(value) {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
    if (Object.is(value, -0)) return '-0';
    const [mantissa, exponent = '0'] = String(Math.abs(value)).split('e');
    const [whole, fraction = ''] = mantissa.split('.');
    const all = whole + fraction;
    const lead = all.length - all.replace(/^0+/, '').length;
    const digits = all.slice(lead).replace(/0+$/, '');
    const point = whole.length + Number(exponent) - lead;
    const sign = value < 0 ? '-' : '';
    if (digits === '') return '0';
    if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
    if (point >= digits.length) return sign + digits + '0'.repeat(point - digits.length);
    return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  throw new TypeError(`config values are strings, numbers or booleans, not ${value === null ? 'null' : typeof value}`);
}
