#!/usr/bin/env node
// Build a JavaScript wasmhook plugin into a WebAssembly component.
//
//   node plugins/sdk/js/build.mjs <plugin-dir | plugin.js> <out.wasm> [--wit <path>] [--world <name>] [--quiet]
//
// <plugin-dir> means <plugin-dir>/plugin.js. The source is an ES module that
// exports `transform` and may import the host interfaces by their versioned
// names ('wasmhook:plugin/log@0.1.0', '.../config@0.1.0', '.../kv@0.1.0')
// and relative modules inside its own directory.
//
// componentize-js (StarlingMonkey) is called through its JS API with the
// `http` and `fetch-event` features disabled: the default build imports
// wasi:http, which the host refuses. After building, the component's
// top-level imports are read back and the build fails if any of them is
// wasi:http or wasi:sockets.

import { componentize } from '@bytecodealliance/componentize-js';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(here, '..', '..', '..');

/** Features componentize-js enables by default that a wasmhook plugin must not have. */
export const DISABLED_FEATURES = ['http', 'fetch-event'];
/** Import prefixes the host refuses; the build fails if the component has one. */
export const FORBIDDEN_IMPORTS = ['wasi:http/', 'wasi:sockets/'];
/** The 8-byte preamble of a component (a core module has version 01 00 00 00). */
export const COMPONENT_PREAMBLE = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);

function usage(msg) {
  if (msg) console.error(`build.mjs: ${msg}`);
  console.error('usage: node build.mjs <plugin-dir | plugin.js> <out.wasm> [--wit <path>] [--world <name>] [--quiet]');
  process.exit(2);
}

/**
 * The top-level import names of a component binary, in order.
 * Parses only the outer component's import sections (id 10); nested
 * modules and components are skipped as opaque sections.
 * @param {Uint8Array} bytes
 * @returns {string[]}
 */
export function componentImports(bytes) {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(COMPONENT_PREAMBLE)) {
    throw new Error('not a WebAssembly component (bad preamble)');
  }
  let pos = 8;
  const u32 = () => {
    let result = 0, shift = 0, byte;
    do {
      byte = buf[pos++];
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return result;
  };
  const sleb = () => { // only needs to be skipped
    let byte;
    do { byte = buf[pos++]; } while (byte & 0x80);
  };
  const name = () => {
    const len = u32();
    const s = buf.toString('utf8', pos, pos + len);
    pos += len;
    return s;
  };
  const imports = [];
  while (pos < buf.length) {
    const id = buf[pos++];
    const size = u32();
    const end = pos + size;
    if (id === 10) {
      const count = u32();
      for (let i = 0; i < count; i++) {
        const kind = buf[pos++]; // 0x00 plain name, 0x01 name + version suffix (older encoding)
        imports.push(name());
        if (kind === 0x01) name();
        const sort = buf[pos++];
        switch (sort) {
          case 0x00: pos++; u32(); break;                   // core module: 0x11 typeidx
          case 0x01: case 0x04: case 0x05: u32(); break;    // func / component / instance typeidx
          case 0x02: if (buf[pos++] === 0x00) u32(); else sleb(); break; // value bound
          case 0x03: if (buf[pos++] === 0x00) u32(); break; // type bound: eq idx | sub resource
          default: throw new Error(`unknown extern sort 0x${sort.toString(16)} in import section`);
        }
      }
    }
    pos = end;
  }
  return imports;
}

/**
 * Node's own syntax error for an ES module (componentize-js only reports a
 * count), e.g. "plugin.js:3 ... SyntaxError: Unexpected end of input".
 * Checks one file; relative imports are not followed.
 * @param {string} file
 */
function syntaxDiagnostics(file) {
  const r = spawnSync(process.execPath, ['--input-type=module', '--check'], {
    input: readFileSync(file),
    encoding: 'utf8',
  });
  const lines = (r.stderr || '').split('\n');
  const end = lines.findIndex((l) => /^\s+at /.test(l));
  return lines
    .slice(0, end < 0 ? 8 : end)
    .filter((l, i, a) => l.trim() !== '' || (i > 0 && a[i - 1].trim() !== ''))
    .join('\n')
    .replace(/^\[stdin\]/, file)
    .trim();
}

/**
 * Componentize one plugin.
 * @param {{ source: string, out: string, wit?: string, world?: string }} opts
 * @returns {Promise<{ size: number, imports: string[], ms: number }>}
 */
export async function buildPlugin({ source, out, wit = resolve(REPO_ROOT, 'wit'), world = 'transformer' }) {
  let sourcePath = resolve(source);
  if ((await stat(sourcePath)).isDirectory()) sourcePath = resolve(sourcePath, 'plugin.js');
  await stat(sourcePath); // clear ENOENT before componentize's less clear one
  const started = Date.now();
  // componentize-js maps the current directory (when it holds the source) to
  // the guest's "/", so relative imports resolve inside the plugin's directory.
  const prevCwd = process.cwd();
  process.chdir(dirname(sourcePath));
  let component;
  try {
    ({ component } = await componentize({
      sourcePath,
      witPath: resolve(wit),
      worldName: world,
      disableFeatures: DISABLED_FEATURES,
    }));
  } catch (e) {
    if (e instanceof Error && /failed to parse JS source/.test(e.message)) {
      e.message += `\n${syntaxDiagnostics(sourcePath)}`;
    }
    throw e;
  } finally {
    process.chdir(prevCwd);
  }
  const bytes = Buffer.from(component);
  // Interface imports only; the world's `use types.{event, decision}` also
  // shows up as two top-level type imports named "event" and "decision".
  const imports = componentImports(bytes).filter((i) => i.includes(':'));
  const forbidden = imports.filter((i) => FORBIDDEN_IMPORTS.some((p) => i.startsWith(p)));
  if (forbidden.length) {
    throw new Error(`component imports interfaces the host refuses: ${forbidden.join(', ')}`);
  }
  await mkdir(dirname(resolve(out)), { recursive: true });
  await writeFile(out, bytes);
  return { size: bytes.length, imports, ms: Date.now() - started };
}

async function main(argv) {
  const positional = [];
  let wit, world, quiet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--wit') wit = argv[++i];
    else if (a === '--world') world = argv[++i];
    else if (a === '--quiet' || a === '-q') quiet = true;
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 2) usage('expected <plugin-dir | plugin.js> and <out.wasm>');
  if ((wit !== undefined && !wit) || (world !== undefined && !world)) usage('--wit and --world need a value');
  const [source, out] = positional;
  const { size, imports, ms } = await buildPlugin({ source, out, wit, world });
  if (!quiet) {
    console.log(`${out}: ${size} bytes in ${(ms / 1000).toFixed(1)}s`);
    console.log(`imports: ${imports.join(' ')}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(`build.mjs: ${e && e.message ? e.message : e}`);
    process.exit(1);
  });
}

export { REPO_ROOT };
