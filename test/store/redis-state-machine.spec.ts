/**
 * The Redis store's Lua against the run state machine definition (src/store/run-state-machine.ts): statically (the
 * scripts name statuses, commit ops and index keys only through the constants and tables rendered from their
 * TypeScript definitions, and spell out no status list of their own) and by behaviour against a real Redis (each status class,
 * for every status).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { COMMIT_OPS } from '../../src/store/redis/redis.commit-ops.js';
import { APPLY_KEYS, WORKFLOW_GROUP_KEYS } from '../../src/store/redis/redis.keys.js';
import { LUA_DEFINITION_NAMES, LUA_LIMITS } from '../../src/store/redis/redis.lua-definitions.js';
import { ALL_SCRIPTS, COMMIT } from '../../src/store/redis/redis.scripts.js';
import { RUN_HISTORY_LIMIT } from '../../src/store/workflow-store.interface.js';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import {
  CLAIMABLE_STATUSES,
  DUE_ON_RELEASE,
  RUN_STATUSES,
  STARTED_BY_CLAIM,
  TERMINAL_STATUSES,
  statusAfterClaim,
  type RunStatus,
} from '../../src/store/run-state-machine.js';
import { testRedis } from '../setup/test-servers.js';

const LUA_DIR = resolve(import.meta.dirname, '../../src/store/redis/lua');
const LEASE = { owner: 'state-machine', leaseMs: 60_000 };
const FAR_MS = 600_000;
/** Control actions (`ControlRequest['action']`): words of the control script that are close to status names. */
const CONTROL_ACTIONS = ['pause', 'resume', 'cancel', 'retry'];

/** Each `.lua` file of the store, without its comments. */
function luaSources(): { file: string; code: string }[] {
  return readdirSync(LUA_DIR)
    .filter((file) => file.endsWith('.lua'))
    .map((file) => ({ file, code: readFileSync(join(LUA_DIR, file), 'utf8').replace(/--[^\n]*/g, '') }));
}

function stringLiterals(code: string): string[] {
  return [...code.matchAll(/'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] ?? m[2]);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

function names(code: string, table: string): string[] {
  return [...code.matchAll(new RegExp(`\\b${table}\\.([A-Za-z_][A-Za-z0-9_]*)`, 'g'))].map((m) => m[1]);
}

describe('Redis Lua against the state machine definition (static)', () => {
  const sources = luaSources();

  it('has every script in its own file, next to the prelude', () => {
    const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    expect(sources.map((s) => s.file).sort()).toEqual(['prelude.lua', ...ALL_SCRIPTS.map((s) => `${kebab(s.name)}.lua`)].sort());
  });

  it('spells no status (nor a near miss of one) as a string: statuses are named through ST', () => {
    for (const { file, code } of sources) {
      for (const literal of stringLiterals(code)) {
        if (CONTROL_ACTIONS.includes(literal)) continue;
        const near = RUN_STATUSES.filter((status) => editDistance(literal.toLowerCase(), status) <= 2);
        expect({ file, literal, near }).toEqual({ file, literal, near: [] });
      }
    }
  });

  it('names only statuses, commit ops, apply keys and limits that exist', () => {
    for (const { file, code } of sources) {
      for (const name of names(code, 'ST')) expect({ file, status: name, known: (RUN_STATUSES as readonly string[]).includes(name) }).toEqual({ file, status: name, known: true });
      for (const name of names(code, 'OP')) expect({ file, op: name, known: name in COMMIT_OPS }).toEqual({ file, op: name, known: true });
      for (const name of names(code, 'AK')) expect({ file, key: name, known: name in APPLY_KEYS }).toEqual({ file, key: name, known: true });
      for (const name of names(code, 'GK')) expect({ file, key: name, known: name in WORKFLOW_GROUP_KEYS }).toEqual({ file, key: name, known: true });
      for (const name of names(code, 'LIM')) expect({ file, limit: name, known: name in LUA_LIMITS }).toEqual({ file, limit: name, known: true });
    }
  });

  it('defines no status list or class of its own', () => {
    for (const { file, code } of sources) {
      for (const table of LUA_DEFINITION_NAMES) expect({ file, table, defined: new RegExp(`\\b${table}\\s*=[^=]`).test(code) }).toEqual({ file, table, defined: false });
      // a table constructor naming statuses is a hand-written list
      expect({ file, lists: code.match(/\{[^{}]*\bST\.[^{}]*\}/g) ?? [] }).toEqual({ file, lists: [] });
      // so is a chain of comparisons with more than two statuses
      for (const line of code.split('\n')) expect({ file, line, statuses: names(line, 'ST').length <= 2 }).toEqual({ file, line, statuses: true });
    }
  });

  it('takes the history limit from the port, never a number of its own', () => {
    expect(LUA_LIMITS.history).toBe(RUN_HISTORY_LIMIT);
    const prelude = sources.find((s) => s.file === 'prelude.lua')!.code;
    expect(names(prelude, 'LIM')).toContain('history');
    const history = prelude.slice(prelude.indexOf('local function lastEventSeq'));
    expect(history).not.toContain(String(RUN_HISTORY_LIMIT));
    // rendered into the scripts that append history
    expect(COMMIT.lua).toContain(`local skip = n - ${RUN_HISTORY_LIMIT}`);
  });

  it('handles every commit op in the commit script', () => {
    const commit = sources.find((s) => s.file === 'commit.lua')!.code;
    for (const name of Object.keys(COMMIT_OPS)) expect({ op: name, handled: names(commit, 'OP').includes(name) }).toEqual({ op: name, handled: true });
  });
});

const redis = testRedis();

redis.describe('Redis store against the state machine definition (behaviour)', () => {
  let admin: Redis;
  const stores: RedisStore[] = [];
  const prefixes: string[] = [];
  let seq = 0;

  const open = async () => {
    const keyPrefix = `cairn-test-sm-${randomUUID().slice(0, 8)}:`;
    prefixes.push(keyPrefix);
    const store = new RedisStore({ url: redis.url, keyPrefix, logger: { log() {}, warn() {}, error() {} } });
    stores.push(store);
    await store.init();
    return store;
  };

  /** A run leased by LEASE, then put in `status` through the port: unleased and due now where the status allows. */
  const runIn = async (store: RedisStore, status: RunStatus, workflow: string) => {
    const runId = `sm-${++seq}`;
    if (status === 'paused') {
      await store.createRun({ runId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
      await store.control(runId, { action: 'pause' });
      return runId;
    }
    const { run } = await store.createRun({ runId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE });
    await store.commit(runId, run.leaseToken!, { status, due: { delayMs: 0 }, release: true, leaseMs: LEASE.leaseMs });
    return runId;
  };

  beforeAll(() => {
    admin = new Redis(redis.url);
  });

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });

  afterAll(async () => {
    for (const prefix of prefixes) {
      const keys = await admin.keys(`${prefix}*`);
      if (keys.length > 0) await admin.del(...keys);
    }
    await admin.quit();
  });

  it.each(RUN_STATUSES.map((s) => [s]))('a %s run is claimable (by id and from the due index) iff the definition says so', async (status) => {
    const store = await open();
    const workflow = `wf-${status}`;
    const runId = await runIn(store, status, workflow);
    expect((await store.getRun(runId))!.status).toBe(status);
    const claimable = CLAIMABLE_STATUSES.includes(status);
    const claimed = await store.claimRuns(LEASE, 10, [{ workflow, version: 1 }]);
    expect(claimed.map((run) => run.runId)).toEqual(claimable ? [runId] : []);
    if (claimed.length > 0) {
      expect(claimed[0].status).toBe(statusAfterClaim(status));
      expect(claimed[0].status === 'running' && status !== 'running').toBe(STARTED_BY_CLAIM.includes(status));
    } else {
      expect(await store.claimRun(runId, LEASE)).toBeUndefined();
    }
  });

  it.each(RUN_STATUSES.map((s) => [s]))('releasing the lease of a %s run makes it due at once iff the definition says so', async (status) => {
    const store = await open();
    const runId = `rel-${++seq}`;
    const { run } = await store.createRun({ runId, workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE });
    await store.commit(runId, run.leaseToken!, { due: { delayMs: FAR_MS }, leaseMs: LEASE.leaseMs });
    // NOTE: the port cannot hold a lease on a paused or ended run; the status is written by hand to reach every one.
    await admin.hset(store.keys.run(runId).run, 'st', status);
    await store.releaseLease(runId, run.leaseToken!);
    const after = (await store.getRun(runId))!;
    expect(after.leaseToken).toBeUndefined();
    expect(after.dueAt!.getTime() < Date.now() + FAR_MS / 2).toBe(DUE_ON_RELEASE.includes(status));
  });

  it.each(RUN_STATUSES.map((s) => [s]))('a commit to %s ends the run iff the status is terminal', async (status) => {
    const store = await open();
    const runId = `end-${++seq}`;
    const { run } = await store.createRun({ runId, workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE });
    expect(await store.commit(runId, run.leaseToken!, { status, leaseMs: LEASE.leaseMs })).toEqual({ ok: true });
    const after = (await store.getRun(runId))!;
    const terminal = TERMINAL_STATUSES.includes(status);
    expect(after.status).toBe(status);
    expect(after.finishedAt !== undefined).toBe(terminal);
    expect(after.leaseToken === undefined).toBe(terminal);
    expect((await store.sendSignal(runId, 's', '1')).outcome).toBe(terminal ? 'not-active' : 'ok');
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await store.purge([status], 0)).toBe(terminal ? 1 : 0);
  });
});
