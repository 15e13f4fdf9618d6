// messenger-transactional: tells a customer over LINE or Facebook Messenger
// that their order has shipped. See README.md.
//
// Build: scripts/plugins/js.sh  (or node plugins/sdk/js/build.mjs <this dir> <out.wasm>)

import { log } from 'wasmhook:plugin/log@0.1.0';
import { get as getConfig } from 'wasmhook:plugin/config@0.1.0';
import { decide } from './logic.mjs';

/**
 * @param {import('wasmhook:plugin/types@0.1.0').Event} event
 * @returns {import('wasmhook:plugin/transformer@0.1.0').TransformResult}
 */
export function transform(event) {
  try {
    return decide(event, { getConfig, log });
  } catch (e) {
    // Return err(...) explicitly: a thrown Error object would trap the
    // component instead of becoming result::err.
    return { tag: 'err', val: typeof e === 'string' ? e : e instanceof Error ? e.message : String(e) };
  }
}
