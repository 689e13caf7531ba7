import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Redis, type Command } from 'ioredis';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import { COMMIT } from '../../src/store/redis/redis.scripts.js';
import type { RunPatch } from '../../src/store/workflow-store.interface.js';
import { testRedis } from '../setup/test-servers.js';
import { recordingClient } from './redis-test-helpers.js';

/**
 * Child runs on Redis, where a parent and its children are in different slots: what the two-write design (see
 * `RedisStore.commit`) adds to the conformance suite: the recheck that repairs a crash between the writes, and the
 * writes each kind of commit costs.
 */
const redis = testRedis();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const LEASE = { owner: 'children', leaseMs: 30_000 };
const quiet = { log() {}, warn() {}, error() {} };

redis.describe('Redis store: child runs across slots', () => {
  let admin: Redis;
  let client: Redis;
  let store: RedisStore;
  let prefix: string;
  let sent: ReturnType<typeof recordingClient>['sent'];

  beforeAll(async () => {
    admin = new Redis(redis.url);
    ({ client, sent } = recordingClient(redis.url));
    prefix = `cairn-children-${randomUUID().slice(0, 8)}:`;
    store = new RedisStore({ client, keyPrefix: prefix, logger: quiet, childRecheckMs: 400 });
    await store.init();
  });

  afterAll(async () => {
    await store.close();
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length) await admin.del(...keys);
    await client.quit();
    await admin.quit();
  });

  async function parentWaitingFor(count: number) {
    const workflow = `wf-${randomUUID().slice(0, 6)}`;
    const parentId = `parent-${randomUUID()}`;
    const parent = (await store.createRun({ runId: parentId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    const spawn = Array.from({ length: count }, (_, i) => ({ runId: `${parentId}-child-${i}`, workflow, version: 1, input: String(i), state: '{}' }));
    const result = await store.commit(parentId, parent.leaseToken!, { leaseMs: 30_000, children: { spawn, endedAtLeast: count, failFast: false } });
    expect(result).toEqual({ ok: true });
    return { parentId, childIds: spawn.map((c) => c.runId) };
  }

  it('keeps a waiting parent due at its recheck, not never', async () => {
    const before = Date.now();
    const { parentId } = await parentWaitingFor(1);
    const parent = (await store.getRun(parentId))!;
    expect(parent.status).toBe('waiting');
    expect(parent.children).toEqual({ ended: 0, failed: false, wait: { endedAtLeast: 1, failFast: false } });
    expect(parent.dueAt!.getTime()).toBeGreaterThanOrEqual(before + 400 - 50);
    expect(parent.dueAt!.getTime()).toBeLessThanOrEqual(Date.now() + 400 + 50);
  });

  it('wakes the parent by its recheck when a child ended without telling it (a crash between the two scripts)', async () => {
    const { parentId, childIds } = await parentWaitingFor(1);
    const child = (await store.claimRun(childIds[0], LEASE))!;
    expect(child.parentRunId).toBe(parentId);
    // the child's terminal commit script alone, as a process that died before the parent's script would have sent it
    const keys = store.keys.run(child.runId);
    const reply = (await admin.eval(COMMIT.lua, 6, keys.run, keys.steps, keys.signals, keys.events, keys.signalIds, keys.children,
      child.runId, child.leaseToken, '30000', store.keys.channel, 'st', 'completed', 'out', '"done"')) as unknown[];
    expect(reply[0]).toBe(1);
    expect(reply[10]).toBe(parentId); // the script named the parent to tell
    // the parent was not told: its count is still 0 and it is not claimable before its recheck
    expect((await store.getRun(parentId))!.children).toMatchObject({ ended: 0 });
    expect(await store.claimRun(parentId, LEASE)).toBeUndefined();
    await sleep(450);
    // its recheck makes it due: its engine reads the outcomes and finds the child ended
    const woken = (await store.claimRun(parentId, LEASE))!;
    expect(woken).toMatchObject({ runId: parentId, status: 'waiting' });
    expect(await store.getRunOutcomes(childIds)).toEqual([{ runId: child.runId, status: 'completed', output: '"done"', parentRunId: parentId, held: false }]);
    // the engine then commits what it read (no live child left to wait for): the parent goes on
    expect(await store.commit(parentId, woken.leaseToken, { leaseMs: 30_000, children: { endedAtLeast: 0, failFast: false } })).toEqual({
      ok: true,
      childrenReady: true,
    });
  });

  it('wakes the parent at once when the second script runs', async () => {
    const { parentId, childIds } = await parentWaitingFor(1);
    const child = (await store.claimRun(childIds[0], LEASE))!;
    expect(await store.commit(child.runId, child.leaseToken, { leaseMs: 30_000, status: 'failed' })).toEqual({ ok: true });
    const parent = (await store.getRun(parentId))!;
    expect(parent.children).toEqual({ ended: 1, failed: true, wait: { endedAtLeast: 1, failFast: false } });
    expect(parent.dueAt!.getTime()).toBeLessThanOrEqual(Date.now());
    expect(await store.claimRun(parentId, LEASE)).toMatchObject({ runId: parentId });
  });

  it('releases held children at the recheck when the step after the parent\'s commit was lost', async () => {
    const workflow = `wf-${randomUUID().slice(0, 6)}`;
    const parentId = `parent-${randomUUID()}`;
    const childId = `${parentId}-held`;
    const parent = (await store.createRun({ runId: parentId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    // step (1) and (2) only: the child created held, the parent counting it (as a process that died before step 3)
    const spawn = [{ runId: childId, workflow, version: 1, input: '1', state: '{}', held: true }];
    await store.commit(parentId, parent.leaseToken!, { leaseMs: 30_000, children: { spawn, endedAtLeast: 1, failFast: false } });
    expect(await store.getRunOutcomes([childId])).toEqual([{ runId: childId, status: 'pending', parentRunId: parentId, held: true }]);
    expect(await store.claimRun(childId, LEASE)).toBeUndefined();
    await sleep(450);
    // the recheck: the engine reads the held child and releases it
    const woken = (await store.claimRun(parentId, LEASE))!;
    await store.commit(parentId, woken.leaseToken, { leaseMs: 30_000, children: { release: [childId], endedAtLeast: 1, failFast: false } });
    expect(await store.claimRun(childId, LEASE)).toMatchObject({ runId: childId, status: 'running' });
  });

  it('keeps a run id\'s children list when the parent is replaced, and drops a purged child from it', async () => {
    const { parentId, childIds } = await parentWaitingFor(2);
    const listed = async () => (await store.listRuns({ parentRunId: parentId, limit: 10 })).map((r) => r.runId).sort();
    expect(await listed()).toEqual([...childIds].sort());
    // a replaced parent: its children still name it (as in the memory store), so they are still listed
    await store.createRun({ runId: parentId, workflow: 'other', version: 1, input: '2', state: '{}' }, { onConflict: 'replace' });
    expect(await listed()).toEqual([...childIds].sort());
    // a purged child leaves the list; a replaced one (no parent any more) is dropped when listed
    const child = (await store.claimRun(childIds[0], LEASE))!;
    await store.commit(child.runId, child.leaseToken, { leaseMs: 30_000, status: 'completed' });
    await sleep(5);
    expect(await store.purge(['completed'], 0)).toBeGreaterThanOrEqual(1);
    const list = store.keys.run(parentId).children;
    expect(await admin.zrange(list, 0, -1)).toEqual([childIds[1]]);
    await store.createRun({ runId: childIds[1], workflow: 'other', version: 1, input: '2', state: '{}' }, { onConflict: 'replace' });
    expect(await listed()).toEqual([]);
    expect(await admin.exists(list)).toBe(0);
  });

  it('reads a signal wait written by an earlier release (one name in `ws`) and queues without an order field', async () => {
    const runId = `legacy-${randomUUID()}`;
    const run = (await store.createRun({ runId, workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    await store.commit(runId, run.leaseToken!, { leaseMs: 30_000, wait: { signals: ['go'] } });
    const keys = store.keys.run(runId);
    // the wait and a queued signal as an earlier release wrote them
    await admin.hdel(keys.run, 'wn');
    await admin.hset(keys.run, 'ws', 'go', 'due', String(Date.now() + 60_000));
    await admin.hset(keys.signals, 'h:old', '0', 't:old', '1', 'v:1:old', '"first"');
    expect((await store.getRun(runId))!.waitSignals).toEqual(['go']);
    expect((await store.sendSignal(runId, 'go', '"second"')).outcome).toBe('ok');
    const claimed = (await store.claimRun(runId, LEASE))!; // the signal made it due
    expect(claimed.runId).toBe(runId);
    // a queued signal without an order field counts as sent first
    expect(await store.takeSignal(runId, claimed.leaseToken, ['go', 'old'])).toEqual({ ok: true, payload: '"first"', signal: 'old', timedOut: false });
  });

  it('costs an ordinary commit one script, and a linked child\'s end one more script on its parent', async () => {
    const workflow = `wf-${randomUUID().slice(0, 6)}`;
    const runId = `plain-${randomUUID()}`;
    const run = (await store.createRun({ runId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    const step: RunPatch = { leaseMs: 30_000, currentStep: 'b', steps: [{ index: 0, step: { name: 'a', status: 'completed', attempts: 1, output: '1' } }] };
    expect(await sent(() => store.commit(runId, run.leaseToken!, step))).toEqual(['script:commit']);
    expect(await sent(() => store.commit(runId, run.leaseToken!, { leaseMs: 30_000, status: 'completed', output: '1' }))).toEqual([
      'script:commit',
      'script:applyIndex',
    ]);
    const { parentId, childIds } = await parentWaitingFor(1);
    const child = (await store.claimRun(childIds[0], LEASE))!;
    expect(await sent(() => store.commit(child.runId, child.leaseToken, step))).toEqual(['script:commit']);
    const ended = await sent(() => store.commit(child.runId, child.leaseToken, { leaseMs: 30_000, status: 'completed', output: '1' }));
    expect(ended).toEqual(['script:commit', 'script:childEnded', 'script:applyIndex']);
    expect((await store.getRun(parentId))!.children).toMatchObject({ ended: 1 });
  });

  it('never loses a child\'s end that happens between the parent\'s read of its counter and its commit', async () => {
    const workflow = `wf-${randomUUID().slice(0, 6)}`;
    const parentId = `parent-${randomUUID()}`;
    const parent = (await store.createRun({ runId: parentId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    const spawn = [0, 1].map((i) => ({ runId: `${parentId}-child-${i}`, workflow, version: 1, input: String(i), state: '{}' }));
    // wake at the first end
    expect(await store.commit(parentId, parent.leaseToken!, { leaseMs: 30_000, children: { spawn, endedAtLeast: 1, failFast: false } })).toEqual({ ok: true });
    const [a, b] = [(await store.claimRun(spawn[0].runId, LEASE))!, (await store.claimRun(spawn[1].runId, LEASE))!];
    await store.commit(a.runId, a.leaseToken, { leaseMs: 30_000, status: 'completed', output: '"a"' });
    const woken = (await store.claimRun(parentId, LEASE))!;
    expect(woken.runId).toBe(parentId);
    // the engine reads itself first, then its children: 1 ended, b live
    const read = await store.getRunOutcomes([parentId, a.runId, b.runId]);
    expect(read.find((o) => o.runId === parentId)!.childrenEnded).toBe(1);
    expect(read.find((o) => o.runId === b.runId)!.status).toBe('running');
    // b ends before the parent's commit: its end is counted on top of what the parent read, not overwritten by it
    await store.commit(b.runId, b.leaseToken, { leaseMs: 30_000, status: 'completed', output: '"b"' });
    expect(await store.commit(parentId, woken.leaseToken, { leaseMs: 30_000, children: { endedAtLeast: 2, failFast: false } })).toEqual({
      ok: true,
      childrenReady: true,
    });
    expect((await store.getRun(parentId))!.children).toEqual({ ended: 2, failed: false });
  });

  it('counts a linked live run that ends between its spawn and the parent\'s commit', async () => {
    const workflow = `wf-${randomUUID().slice(0, 6)}`;
    const parentId = `parent-${randomUUID()}`;
    const orphanId = `orphan-${randomUUID()}`;
    const parent = (await store.createRun({ runId: parentId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    const orphan = (await store.createRun({ runId: orphanId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    // the orphan ends right after step 1 linked it, before step 2 (the parent's commit)
    const internals = store as unknown as { spawnChildren: (...args: unknown[]) => Promise<unknown> };
    const original = internals.spawnChildren;
    internals.spawnChildren = async (...args: unknown[]) => {
      const spawned = await original.apply(store, args);
      await store.commit(orphanId, orphan.leaseToken!, { leaseMs: 30_000, status: 'failed', error: { name: 'Error', message: 'x' } });
      return spawned;
    };
    try {
      const spawn = [{ runId: orphanId, workflow, version: 1, input: '1', state: '{}' }];
      expect(await store.commit(parentId, parent.leaseToken!, { leaseMs: 30_000, children: { spawn, endedAtLeast: 1, failFast: true } })).toEqual({
        ok: true,
        childrenReady: true,
      });
    } finally {
      internals.spawnChildren = original;
    }
    expect((await store.getRun(orphanId))!.parentRunId).toBe(parentId);
    expect((await store.getRun(parentId))!.children).toEqual({ ended: 1, failed: false });
  });

  it('counts spawn entries whose run had already ended, and never another parent\'s live run', async () => {
    const workflow = `wf-${randomUUID().slice(0, 6)}`;
    const id = () => `run-${randomUUID()}`;
    const parentId = id();
    const parent = (await store.createRun({ runId: parentId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    const endedId = id();
    const ended = (await store.createRun({ runId: endedId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    await store.commit(endedId, ended.leaseToken!, { leaseMs: 30_000, status: 'completed' });
    // another parent's live child
    const otherId = id();
    const other = (await store.createRun({ runId: otherId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    const theirsId = `${otherId}-child`;
    await store.commit(otherId, other.leaseToken!, { leaseMs: 30_000, children: { spawn: [{ runId: theirsId, workflow, version: 1, input: '1', state: '{}' }], endedAtLeast: 1, failFast: false } });
    const spawn = [endedId, theirsId].map((runId) => ({ runId, workflow, version: 1, input: '1', state: '{}' }));
    expect(await store.commit(parentId, parent.leaseToken!, { leaseMs: 30_000, children: { spawn, endedAtLeast: 2, failFast: false } })).toEqual({ ok: true });
    expect((await store.getRun(parentId))!.children).toEqual({ ended: 1, failed: false, wait: { endedAtLeast: 2, failFast: false } });
    // the ended run linked for listing, another parent's left as is
    expect((await store.getRun(endedId))!.parentRunId).toBe(parentId);
    expect((await store.getRun(theirsId))!.parentRunId).toBe(otherId);
  });

  it('reads the first id of getRunOutcomes before it sends the others, and the others in one pipeline', async () => {
    const { parentId, childIds } = await parentWaitingFor(3);
    const log: string[] = [];
    const original = client.sendCommand.bind(client) as (command: Command, stream?: unknown) => unknown;
    const key = (command: Command) => String(command.args[0]);
    client.sendCommand = ((command: Command, stream?: unknown) => {
      if (command.name === 'hmget') {
        log.push(`send ${key(command)}`);
        command.promise.then(() => log.push(`reply ${key(command)}`), () => undefined);
      }
      return original(command, stream);
    }) as typeof client.sendCommand;
    let outcomes;
    try {
      outcomes = await store.getRunOutcomes([parentId, ...childIds]);
    } finally {
      client.sendCommand = original as typeof client.sendCommand;
    }
    const parentKey = store.keys.run(parentId).run;
    expect(log.slice(0, 2)).toEqual([`send ${parentKey}`, `reply ${parentKey}`]);
    expect(log.slice(2, 5).sort()).toEqual(childIds.map((c) => `send ${store.keys.run(c).run}`).sort());
    expect(outcomes.find((o) => o.runId === parentId)).toMatchObject({ status: 'waiting', childrenEnded: 0 });
    expect(outcomes.filter((o) => o.runId !== parentId).map((o) => o.status)).toEqual(['pending', 'pending', 'pending']);
    // one id: one command
    expect(await sent(() => store.getRunOutcomes([childIds[0]]))).toEqual(['hmget']);
  });

});
