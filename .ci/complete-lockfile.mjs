#!/usr/bin/env node
/**
 * Completes package-lock.json for `npm ci`.
 *
 * The npm registry mirror on our machines has no metadata for other platforms' optional binaries (e.g.
 * `@swc/core-darwin-arm64`), so `npm install` leaves them out of the lock file, and `npm ci` then refuses the lock as
 * out of sync. This adds each missing optional platform package as a lock entry with its `os`/`cpu`/`libc`
 * constraints (derived from its name) and no download address, so `npm ci` accepts the lock and skips them.
 *
 * Run it after `npm install` changes the lock: `node .ci/complete-lockfile.mjs`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const file = resolve(import.meta.dirname, '../package-lock.json');
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages;

const OS = ['darwin', 'linux', 'win32', 'android', 'freebsd', 'openbsd', 'netbsd', 'sunos', 'aix', 'wasm32'];
const CPU = ['arm64', 'x64', 'ia32', 'arm', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el', 'wasm32'];

function constraints(name) {
  const parts = name.split('/').pop().split('-');
  const os = OS.find((o) => parts.includes(o));
  const cpu = CPU.find((c) => parts.includes(c) || parts.some((p) => p.startsWith(c) && /^(arm64|arm|x64|ia32)/.test(p)));
  if (!os && !cpu) return undefined;
  const out = {};
  if (os) out.os = [os === 'wasm32' ? 'wasm32' : os];
  if (cpu) out.cpu = [cpu];
  if (parts.includes('gnu') || parts.some((p) => p.startsWith('gnu'))) out.libc = ['glibc'];
  if (parts.includes('musl') || parts.some((p) => p.startsWith('musl'))) out.libc = ['musl'];
  return out;
}

/** Where npm would look for `dep` required from the package at `from` (node_modules/a/node_modules/b …). */
function lookup(from, dep) {
  let base = from;
  for (;;) {
    const candidate = `${base ? `${base}/` : ''}node_modules/${dep}`;
    if (packages[candidate]) return candidate;
    if (!base) return undefined;
    const i = base.lastIndexOf('/node_modules/');
    base = i === -1 ? '' : base.slice(0, i);
  }
}

let added = 0;
for (const [path, entry] of Object.entries(packages)) {
  for (const [dep, spec] of Object.entries(entry.optionalDependencies ?? {})) {
    if (lookup(path, dep)) continue;
    const c = constraints(dep);
    if (!c) continue; // not a platform binary: leave it to npm
    const version = String(spec).replace(/^[\^~=]/, '');
    if (!/^\d+\.\d+\.\d+/.test(version)) continue;
    packages[`node_modules/${dep}`] = { version, ...(entry.dev ? { dev: true } : {}), optional: true, ...c };
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
lock.packages = sorted;
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`complete-lockfile: added ${added} optional platform package entr${added === 1 ? 'y' : 'ies'}`);
