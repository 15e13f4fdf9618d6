// {{name}}: a wasmhook plugin in JavaScript. See README.md.
//
// This is the component's entry module: it wires the plain logic in
// logic.mjs (unit-tested under Node by plugin.test.mjs) to the host's
// imports. Import specifiers must carry the WIT package version.

import { log } from 'wasmhook:plugin/log@0.1.0';
import { get as getConfig } from 'wasmhook:plugin/config@0.1.0';
import { decide } from './logic.mjs';

/**
 * Called by the host once per event the plugin is subscribed to.
 * @param {import('wasmhook:plugin/types@0.1.0').Event} event
 * @returns {import('wasmhook:plugin/transformer@0.1.0').TransformResult}
 */
export function transform(event) {
  try {
    return decide(event, { getConfig, log });
  } catch (e) {
    // A thrown Error would trap the component (and kill the instance)
    // instead of becoming result::err: report bugs as err(message).
    return { tag: 'err', val: e instanceof Error ? e.message : String(e) };
  }
}
