import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { Redis, type Command } from 'ioredis';
import { InvalidArgumentError } from '../../src/errors/errors.js';
import { COMMIT_OPS, encodeCommitOp, encodePatch, type CommitOpName } from '../../src/store/redis/redis.commit-ops.js';
import { RUN_FIELDS } from '../../src/store/redis/redis.fields.js';
import { APPLY_KEYS, RedisKeys, WORKFLOW_GROUP_KEYS, keySlot } from '../../src/store/redis/redis.keys.js';
import { ALL_SCRIPTS, APPLY_INDEX, CLAIM_CANDIDATES, FLOW_INDEX, INDEX_LAYOUT_SCRIPT, OWNED_CANDIDATES, PURGE_CANDIDATES } from '../../src/store/redis/redis.scripts.js';
import { ONE_NODE_PROBE, RedisStore } from '../../src/store/redis/redis.store.js';
import { RUN_STATUSES, TERMINAL_STATUSES } from '../../src/store/run-state-machine.js';
import { LIVE_GROUP_SAMPLE } from '../../src/store/workflow-store.interface.js';
import { testRedis } from '../setup/test-servers.js';

const redis = testRedis();
const url = () => redis.url;
const quiet = { log() {}, warn() {}, error() {} };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Ids that try to break key names, hash tags, Lua and JSON. */
const HOSTILE_IDS = [
  '{tag}',
  '}{',
  '{}',
  'a}b{c',
  'run:{1}:r',
  '"quoted" \'single\' `back`',
  'with spaces and\nnewline\tand\u0000nul',
  'ünï©ødé 🚀 漢字 \uFFFD',
  "]] redis.call('FLUSHALL') --[[",
  '%s %d \\ / ..',
  'x'.repeat(255),
  '{'.repeat(255),
];

const SLOT_OF_RUN_SCRIPTS = new Set(ALL_SCRIPTS.map((s) => s.name));
for (const global of [APPLY_INDEX, CLAIM_CANDIDATES, OWNED_CANDIDATES, PURGE_CANDIDATES, INDEX_LAYOUT_SCRIPT, FLOW_INDEX]) SLOT_OF_RUN_SCRIPTS.delete(global.name);
/**
 * Run scripts that, on a Redis that is not a Cluster only, take a run's admission themselves (rules F2, F3): their KEYS
 * end with index-slot keys (flow entries, and meta for createRun). On a Cluster they never do (redis-cluster.spec.ts).
 */
const ADMITTING_SCRIPTS: Record<string, (keys: RedisKeys) => string[]> = {
  createRun: (keys) => [keys.flow, keys.meta],
  claimRun: (keys) => [keys.flow],
  claimOwnedRun: (keys) => [keys.flow],
};

describe('Redis store keys', () => {
  it('computes Cluster key slots like Redis (cross-checked with cluster-key-slot)', () => {
    const require = createRequire(import.meta.url);
    const calculateSlot = require('cluster-key-slot') as (key: string) => number;
    const keys = new RedisKeys('cairn:');
    const samples = ['foo', '{user1000}.following', 'foo{{bar}}zap', 'foo{bar}{zap}', keys.due, keys.created];
    for (const id of HOSTILE_IDS) samples.push(...Object.values(keys.run(id)));
    for (const key of samples) expect(keySlot(key)).toBe(calculateSlot(key));
    expect(keySlot('123456789')).toBe(12739); // CRC16/XMODEM check value 0x31C3 % 16384
    // An empty first tag hashes the whole key (Redis answers CLUSTER KEYSLOT foo{}{bar} = 8363; cluster-key-slot 1.1
    // says 4015). The store never makes such keys: a run id is never empty, so its tag never is.
    expect(keySlot('foo{}{bar}')).toBe(8363);
  });

  it('encodes every id into one brace-free hash tag, without collisions', () => {
    const keys = new RedisKeys('cairn:');
    const seen = new Set<string>();
    for (const id of [...HOSTILE_IDS, 'a', 'b', 'A', 'a ', ' a', '\u00e9', 'e\u0301']) {
      const runKeys = keys.run(id);
      expect(runKeys.run).toMatch(/^cairn:\{[A-Za-z0-9_-]+\}:r$/);
      expect(runKeys.steps).toBe(runKeys.run.replace(/:r$/, ':s'));
      expect(runKeys.signals).toBe(runKeys.run.replace(/:r$/, ':q'));
      expect(runKeys.events).toBe(runKeys.run.replace(/:r$/, ':e'));
      expect(runKeys.signalIds).toBe(runKeys.run.replace(/:r$/, ':i'));
      expect(runKeys.children).toBe(runKeys.run.replace(/:r$/, ':c'));
      expect(Object.keys(runKeys).sort()).toEqual(['children', 'events', 'run', 'signalIds', 'signals', 'steps']);
      const slots = new Set(Object.values(runKeys).map(keySlot));
      expect(slots.size).toBe(1);
      expect(seen.has(runKeys.run)).toBe(false);
      seen.add(runKeys.run);
    }
    expect(() => keys.run('')).toThrow(InvalidArgumentError);
    expect(() => keys.run('lone \uD800 surrogate')).toThrow(InvalidArgumentError);
    // every global index key shares one slot
    const global = [
      ...keys.applyBase(),
      ...keys.workflowGroup('wf {x}'),
      keys.dueByVersion('wf {x}', 2),
      keys.dueByVersion('wf {x}', '{damaged}'),
      keys.legacyDueByWorkflow('wf {x}'),
      keys.kicks,
      keys.pipelines,
      keys.layout,
      keys.layoutLock,
    ];
    expect(keys.pipelines.startsWith(keys.index)).toBe(true);
    expect(new Set(global.map(keySlot)).size).toBe(1);
  });

  it('names one due index per (workflow, version), injectively, and reads the pair back from the name', () => {
    const keys = new RedisKeys('cairn:');
    const pairs: [string, string][] = [];
    for (const workflow of ['wf', 'wf:1', 'w', 'f', '{x}', '', 'ünï 🚀']) {
      for (const version of ['1', '2', '10', '-1', '0', '01', '1.5', 'abc', '', '~', 'MQ', '~MQ']) pairs.push([workflow, version]);
    }
    const names = new Map<string, [string, string]>();
    for (const [workflow, version] of pairs) {
      const key = keys.dueByVersion(workflow, version);
      expect(names.has(key)).toBe(false);
      names.set(key, [workflow, version]);
      expect(keys.parseDueByVersion(key)).toEqual({ workflow, version });
      expect(keySlot(key)).toBe(keySlot(keys.due));
    }
    // a claim filter's number names the key of the version the store wrote for it
    expect(keys.dueByVersion('wf', 3)).toBe(keys.dueByVersion('wf', '3'));
    expect(keys.dueByVersion('wf', 3)).toBe(`${keys.index}:dv:d2Y:3`);
    expect(keys.parseDueByVersion(keys.due)).toBeUndefined();
    expect(keys.parseDueByVersion(keys.legacyDueByWorkflow('wf'))).toBeUndefined();
    expect(keys.parseDueByVersion(`${keys.index}:dv:d2Y:~`)).toEqual({ workflow: 'wf', version: '' });
    expect(keys.parseDueByVersion(`${keys.index}:dv:d2Y:x`)).toBeUndefined();
  });

  it('computes the apply script\'s key positions from the order of applyBase() and workflowGroup()', () => {
    const keys = new RedisKeys('cairn:');
    const base = keys.applyBase();
    const at = (position: number) => base[position - 1]; // Lua KEYS are 1-based
    expect([at(APPLY_KEYS.created), at(APPLY_KEYS.meta), at(APPLY_KEYS.kicks), at(APPLY_KEYS.due)]).toEqual([keys.created, keys.meta, keys.kicks, keys.due]);
    RUN_STATUSES.forEach((status, i) => expect(at(APPLY_KEYS.byStatus + i)).toBe(keys.byStatus(status)));
    TERMINAL_STATUSES.forEach((status, i) => expect(at(APPLY_KEYS.finished + i)).toBe(keys.finished(status)));
    expect(APPLY_KEYS.groups).toBe(base.length + 1);
    const group = keys.workflowGroup('wf');
    expect(WORKFLOW_GROUP_KEYS.size).toBe(group.length);
    expect(group[WORKFLOW_GROUP_KEYS.byWorkflow]).toBe(keys.byWorkflow('wf'));
    RUN_STATUSES.forEach((status, i) => expect(group[WORKFLOW_GROUP_KEYS.byWorkflowStatus + i]).toBe(keys.byWorkflowStatus('wf', status)));
  });

  it('reads and writes only the run hash fields documented in RUN_FIELDS', () => {
    const dir = resolve(import.meta.dirname, '../../src/store/redis/lua');
    const documented = new Set<string>(Object.values(RUN_FIELDS));
    const used = new Set<string>();
    for (const file of readdirSync(dir)) {
      const code = readFileSync(join(dir, file), 'utf8');
      for (const [, command, args] of code.matchAll(/redis\.call\('(HMGET|HGET|HDEL|HSET)', (?:r|run), ([^\n]*)/g)) {
        const literals = [...args.matchAll(/'([^']*)'/g)].map((m) => m[1]);
        // HSET alternates fields and values: its first argument is the only one surely a field
        for (const field of command === 'HSET' ? [args.match(/^'([^']*)'/)?.[1]].filter((f) => f !== undefined) : literals) used.add(field);
      }
    }
    expect([...used].filter((field) => !documented.has(field))).toEqual([]);
    expect(used.size).toBeGreaterThan(15);
  });

  it('encodes every commit op with its code and as many arguments as COMMIT_OPS says', () => {
    const step = { name: 's', status: 'completed' as const, attempts: 1 };
    const encoded: Record<CommitOpName, readonly string[]> = {
      setStatus: encodeCommitOp.setStatus('completed'),
      setState: encodeCommitOp.setState('{}'),
      setCurrentStep: encodeCommitOp.setCurrentStep('s'),
      clearCurrentStep: encodeCommitOp.clearCurrentStep(),
      setOutput: encodeCommitOp.setOutput('1'),
      clearOutput: encodeCommitOp.clearOutput(),
      setError: encodeCommitOp.setError({ name: 'E', message: 'm' }),
      clearError: encodeCommitOp.clearError(),
      putStep: encodeCommitOp.putStep(0, step),
      dueIn: encodeCommitOp.dueIn(5),
      dueAt: encodeCommitOp.dueAt(new Date(1_000)),
      clearDue: encodeCommitOp.clearDue(),
      wait: encodeCommitOp.wait(['go'], undefined),
      restart: encodeCommitOp.restart('1'),
      children: encodeCommitOp.children(1, 0, true, 30_000),
      childLink: encodeCommitOp.childLink('c', '1000'),
      release: encodeCommitOp.release(),
      clearCancel: encodeCommitOp.clearCancel(),
      keepInput: encodeCommitOp.keepInput(),
      midStep: encodeCommitOp.midStep(),
      appendEvent: encodeCommitOp.appendEvent('{"t":1}'),
      expireOnEnd: encodeCommitOp.expireOnEnd(1_000),
    };
    for (const [name, op] of Object.entries(COMMIT_OPS)) {
      expect([name, encoded[name as CommitOpName][0], encoded[name as CommitOpName].length]).toEqual([name, op.code, 1 + op.arity]);
    }
    expect(new Set(Object.values(COMMIT_OPS).map((op) => op.code)).size).toBe(Object.keys(COMMIT_OPS).length);
    expect(encodePatch({ leaseMs: 1, status: 'sleeping', due: { delayMs: 10 }, release: true })).toEqual(['st', 'sleeping', 'due', '10', 'rel']);
    // history events go last, in order; a patch without them has no event op
    expect(encodePatch({ leaseMs: 1, keepInput: true, midStep: true, events: ['{"a":1}', 'ev'], state: '{}' })).toEqual([
      'state', '{}', 'ki', 'mid', 'ev', '{"a":1}', 'ev', 'ev',
    ]);
    expect(encodePatch({ leaseMs: 1, events: [] })).toEqual([]);
    expect(() => encodePatch({ leaseMs: 1, events: [7 as never] })).toThrow(InvalidArgumentError);
  });

  redis.describe('script keys on a live server', () => {
    const prefix = `cairn-test-slots-${randomUUID().slice(0, 8)}:`;
    let client: Redis;
    let store: RedisStore;
    const calls: { name: string; args: unknown[] }[] = [];

    beforeAll(async () => {
      client = new Redis(url());
      const original = client.sendCommand.bind(client);
      client.sendCommand = ((command: Command, stream?: unknown) => {
        calls.push({ name: command.name, args: [...command.args] });
        return (original as (c: Command, s?: unknown) => unknown)(command, stream);
      }) as typeof client.sendCommand;
      store = new RedisStore({ client, keyPrefix: prefix, logger: quiet });
      await store.init();
    });
    afterAll(async () => {
      await store.close();
      const keys = await client.keys(`${prefix}*`);
      if (keys.length) await client.del(...keys);
      await client.quit();
    });

    it('runs every script with all its KEYS in one slot, for hostile ids, and stores them as data', async () => {
      const lease = { owner: 'slots', leaseMs: 30_000 };
      const workflow = `wf {${randomUUID().slice(0, 6)}}:"x"`;
      const payload = "]] redis.call('FLUSHALL') --[[ \"{p}\" ünï 🚀";
      for (const runId of HOSTILE_IDS) {
        const created = await store.createRun(
          { runId, workflow, version: 2, input: payload, state: runId, events: [payload] },
          { onConflict: 'keep' },
        );
        expect(created.created).toBe(true);
        expect(created.lastEventSeq).toBe(1);
        expect((await store.getRun(runId))).toMatchObject({ runId, workflow, input: payload, state: runId });
      }
      // the pipeline fingerprint and description are data, and their hash is in the index slot; the summary reads the
      // runs with one HMGET of each run's own hash
      const fingerprint = `fp {${payload}}`;
      await store.savePipeline(fingerprint, payload);
      await store.savePipeline(fingerprint, 'another body');
      expect(await store.getPipelines([fingerprint, `${fingerprint}x`])).toEqual({ [fingerprint]: payload });
      const pipelineCalls = calls.filter((c) => c.name === 'hsetnx' || (c.name === 'hmget' && String(c.args[0]) === store.keys.pipelines));
      expect(pipelineCalls.length).toBe(3);
      for (const call of pipelineCalls) expect(keySlot(String(call.args[0]))).toBe(keySlot(store.keys.due));
      const before = calls.length;
      const live = (await store.summarizeLiveRuns()).filter((g) => g.workflow === workflow);
      expect(live).toEqual([{ workflow, version: 2, count: HOSTILE_IDS.length, runIds: expect.any(Array) }]);
      expect([...live[0].runIds].sort()).toEqual([...HOSTILE_IDS].sort().slice(0, LIVE_GROUP_SAMPLE));
      const reads = calls.slice(before).filter((c) => c.name === 'hmget');
      expect(reads.map((c) => String(c.args[0])).sort()).toEqual(HOSTILE_IDS.map((id) => store.keys.run(id).run).sort());
      for (const call of calls.slice(before).filter((c) => c.name === 'zscan')) expect(keySlot(String(call.args[0]))).toBe(keySlot(store.keys.due));
      const claimed = await store.claimRuns(lease, 100, [{ workflow, version: 2 }]);
      expect(claimed.map((r) => r.runId).sort()).toEqual([...HOSTILE_IDS].sort());
      const reclaimed = await store.claimOwnedRuns(lease, 100, [{ workflow, version: 2 }]);
      expect(reclaimed.map((r) => r.runId).sort()).toEqual([...HOSTILE_IDS].sort());
      for (const run of reclaimed) expect(run).toMatchObject({ recovered: true, previousOwner: lease.owner, orphanedMs: 0 });
      for (const run of reclaimed) {
        const { runId, leaseToken: token } = run;
        const signal = `sig:{${runId}}:1`;
        expect((await store.renewLease(runId, token, 30_000)).ok).toBe(true);
        expect(await store.sendSignal(runId, signal, payload, runId)).toMatchObject({ outcome: 'ok', eventSeq: 2 });
        expect(await store.listSignals(runId)).toEqual([{ name: signal, payload }]);
        const consumed = await store.commit(runId, token, {
          leaseMs: 30_000,
          steps: [{ index: 0, step: { name: runId, status: 'completed', attempts: 1, output: payload } }],
          wait: { signals: [signal] },
          events: [signal, payload],
        });
        expect(consumed).toEqual({ ok: true, consumedSignal: { name: signal, payload }, lastEventSeq: 4 });
        expect((await store.commit(runId, token, { leaseMs: 30_000, wait: { signals: [`${signal}x`] } })).ok).toBe(true);
        await store.sendSignal(runId, `${signal}x`, runId);
        const again = (await store.claimRun(runId, lease))!;
        expect(await store.takeSignal(runId, again.leaseToken, [`${signal}x`])).toEqual({ ok: true, payload: runId, signal: `${signal}x`, timedOut: false });
        await store.releaseLease(runId, again.leaseToken);
        expect(await store.control(runId, { action: 'pause' }, `${payload}:pause`)).toMatchObject({ outcome: 'ok', eventSeq: 5 });
        expect((await store.control(runId, { action: 'resume' })).outcome).toBe('ok');
        expect((await store.control(runId, { action: 'cancel', compensate: false })).outcome).toBe('ok');
        const last = (await store.claimRun(runId, lease))!;
        expect((await store.commit(runId, last.leaseToken, { leaseMs: 30_000, status: 'cancelled', clearCancel: true })).ok).toBe(true);
        const stored = (await store.getRun(runId))!;
        expect(stored.steps).toEqual([{ name: runId, status: 'completed', attempts: 1, output: payload }]);
        expect(await store.listEvents(runId, { afterSeq: 1, limit: 10 })).toEqual([
          { seq: 2, body: runId },
          { seq: 3, body: signal },
          { seq: 4, body: payload },
          { seq: 5, body: `${payload}:pause` },
        ]);
        expect(stored.status).toBe('cancelled');
      }
      const listed = await store.listRuns({ workflow, statuses: ['cancelled'], limit: 100 });
      expect(await store.countRuns({ workflow })).toEqual({ cancelled: HOSTILE_IDS.length });
      expect(listed.map((r) => r.runId).sort()).toEqual([...HOSTILE_IDS].sort());
      await sleep(5);
      expect(await store.purge(['cancelled'], 0)).toBe(HOSTILE_IDS.length);
      for (const runId of HOSTILE_IDS) expect(await store.getRun(runId)).toBeUndefined();
      for (const runId of HOSTILE_IDS) expect(await store.listEvents(runId, { limit: 10 })).toEqual([]);
      // purge deleted every key of the runs, their histories included
      expect((await client.keys(`${prefix}{*}:*`)).filter((key) => !key.startsWith(store.keys.index))).toEqual([]);
      expect(await store.listRuns({ workflow, limit: 100 })).toEqual([]);

      // child runs with hostile ids: spawned (half held), released, signalled with ids, ended (each end tells the
      // parent), read back as outcomes and listed by parent
      const parentId = `${HOSTILE_IDS[1]} parent`;
      const parent = (await store.createRun({ runId: parentId, workflow, version: 2, input: payload, state: '{}' }, { onConflict: 'keep', lease })).run;
      const all = HOSTILE_IDS.length;
      const spawn = HOSTILE_IDS.map((runId, i) => ({ runId, workflow, version: 2, input: payload, state: runId, events: [payload], held: i % 2 === 0 }));
      const held = spawn.filter((child) => child.held).map((child) => child.runId);
      const kept = { leaseMs: 30_000, children: { spawn, endedAtLeast: 0, failFast: false } };
      expect(await store.commit(parentId, parent.leaseToken!, kept)).toEqual({ ok: true, childrenReady: true });
      expect((await store.getRunOutcomes([...HOSTILE_IDS, 'unknown'])).filter((o) => o.held).map((o) => o.runId).sort()).toEqual([...held].sort());
      const release = { leaseMs: 30_000, children: { release: held, endedAtLeast: 1, failFast: false } };
      expect(await store.commit(parentId, parent.leaseToken!, release)).toEqual({ ok: true });
      for (const runId of HOSTILE_IDS) {
        expect(await store.sendSignal(runId, payload, payload, undefined, { id: runId })).toMatchObject({ outcome: 'ok' });
        expect(await store.sendSignal(runId, payload, payload, undefined, { id: runId })).toMatchObject({ outcome: 'noop' });
        const child = (await store.claimRun(runId, lease))!;
        expect(child.parentRunId).toBe(parentId);
        expect((await store.commit(runId, child.leaseToken, { leaseMs: 30_000, status: 'completed', output: runId })).ok).toBe(true);
      }
      expect((await store.getRun(parentId))!.children).toEqual({ ended: all, failed: false, wait: { endedAtLeast: 1, failFast: false } });
      const outcomes = await store.getRunOutcomes(HOSTILE_IDS);
      expect(outcomes.map((o) => [o.runId, o.status, o.output, o.parentRunId]).sort()).toEqual(
        HOSTILE_IDS.map((runId) => [runId, 'completed', runId, parentId]).sort(),
      );
      expect((await store.listRuns({ parentRunId: parentId, limit: 100 })).map((r) => r.runId).sort()).toEqual([...HOSTILE_IDS].sort());
      const woken = (await store.claimRun(parentId, lease))!;
      expect((await store.commit(parentId, woken.leaseToken, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
      await sleep(5);
      expect(await store.purge(['completed'], 0)).toBe(all + 1);
      expect((await client.keys(`${prefix}{*}:*`)).filter((key) => !key.startsWith(store.keys.index))).toEqual([]);

      // flow control with hostile concurrency, rate and debounce keys: data, in the index slot
      const flowWorkflow = `${workflow} flow`;
      for (const [i, key] of HOSTILE_IDS.entries()) {
        const runId = `${key} flow`;
        const limits = { concurrency: { key, limit: 1, scope: 'step' as const }, rateLimit: { key, limit: 5, perMs: 60_000 }, priority: i - 3 };
        const flowRun = (id: string) => ({ runId: id, workflow: flowWorkflow, version: 1, input: payload, state: '{}', ...limits });
        const first = (await store.createRun(flowRun(runId), { onConflict: 'keep', lease })).run;
        expect(first).toMatchObject({ slotHeld: true, priority: i - 3, concurrency: limits.concurrency, rateLimit: limits.rateLimit });
        const second = (await store.createRun(flowRun(`${runId} 2`), { onConflict: 'keep' })).run;
        expect((await store.getRun(second.runId))!.blockedBy).toBe('concurrency');
        await store.releaseLease(runId, first.leaseToken!);
        expect((await store.claimRun(second.runId, lease))?.slotHeld).toBe(true);
        expect(await client.smembers(store.keys.holders(key))).toEqual([second.runId]);
        expect(keySlot(store.keys.holders(key))).toBe(keySlot(store.keys.due));
        const debounce = { key, delayMs: 60_000 };
        const folded = await store.createRun(flowRun(`${runId} d1`), { onConflict: 'keep', debounce });
        expect(await store.createRun({ ...flowRun(`${runId} d2`), input: key }, { onConflict: 'keep', debounce })).toMatchObject({
          created: false,
          debounced: true,
          run: { runId: folded.run.runId, input: key },
        });
      }

      // every script ran, and each call's KEYS hash to one slot
      const byName = new Map(ALL_SCRIPTS.map((s) => [s.sha, s.name]));
      const seen = new Set<string>();
      const index = new RedisKeys(prefix);
      const indexSlot = keySlot(index.due);
      const admitted = new Set<string>();
      // init() checked once that one node holds every key (a script of its own, not one of the store's)
      expect(calls.filter((call) => call.name === 'eval' && String(call.args[0]) === ONE_NODE_PROBE)).toHaveLength(1);
      for (const call of calls) {
        if (call.name !== 'evalsha' && call.name !== 'eval') continue;
        if (call.name === 'eval' && String(call.args[0]) === ONE_NODE_PROBE) continue;
        // NOTE: other suites share the server and flush its scripts (NOSCRIPT test): an EVAL fallback carries the source.
        const name = call.name === 'evalsha' ? byName.get(String(call.args[0]))! : ALL_SCRIPTS.find((s) => s.lua === String(call.args[0]))!.name;
        const numKeys = Number(call.args[1]);
        let keys = call.args.slice(2, 2 + numKeys).map(String);
        seen.add(name);
        const admitting = ADMITTING_SCRIPTS[name]?.(index);
        if (admitting && keys.length > admitting.length && keys.slice(-admitting.length).join('\n') === admitting.join('\n')) {
          // a run script that admits the run itself: its own keys in one slot, then the index slot's
          expect(admitting.every((key) => keySlot(key) === indexSlot)).toBe(true);
          keys = keys.slice(0, -admitting.length);
          admitted.add(name);
        }
        expect(keys.length).toBeGreaterThan(0);
        const slots = new Set(keys.map(keySlot));
        expect({ name, slots: slots.size }).toEqual({ name, slots: 1 });
        if (SLOT_OF_RUN_SCRIPTS.has(name)) {
          // a run's keys are in its own slot: the run's hash tag
          expect(keys[0].startsWith(`${prefix}{`) && keys[0].endsWith('}:r')).toBe(true);
          if (name !== 'renewLease') expect(keys[0]).toBe(index.run(String(call.args[2 + numKeys])).run);
        } else {
          expect([...slots][0]).toBe(indexSlot);
        }
      }
      expect([...seen].sort()).toEqual(ALL_SCRIPTS.map((s) => s.name).sort());
      expect([...admitted].sort()).toEqual(['claimOwnedRun', 'claimRun', 'createRun']);
    });
  });
});
