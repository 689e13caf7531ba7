import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Redis, type Command } from 'ioredis';
import { ONE_NODE_PROBE, RedisStore } from '../../src/store/redis/redis.store.js';
import { CLAIM_RUN, FLOW_INDEX } from '../../src/store/redis/redis.scripts.js';
import type { ConcurrencySpec, NewRun, StoredRun } from '../../src/store/workflow-store.interface.js';
import { testRedis } from '../setup/test-servers.js';
import { recordingClient } from './redis-test-helpers.js';

/**
 * Flow control on Redis, beyond the conformance suite: a claim of a run with limits is an admission in the index slot
 * (the run id joins its key's holder set) then the claim in the run's slot (see `redis.keys.ts`). These tests cut that
 * in two, as a crash would, and check the slot is neither doubled nor lost; and that runs without limits cost what
 * they always did.
 */
const redis = testRedis();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const LEASE = { owner: 'flow', leaseMs: 30_000 };
const quiet = { log() {}, warn() {}, error() {} };

redis.describe('Redis store: flow control across slots', () => {
  let admin: Redis;
  let client: Redis;
  let store: RedisStore;
  let prefix: string;
  let sent: ReturnType<typeof recordingClient>['sent'];

  beforeAll(async () => {
    admin = new Redis(redis.url);
    ({ client, sent } = recordingClient(redis.url));
    prefix = `cairn-flow-${randomUUID().slice(0, 8)}:`;
    store = new RedisStore({ client, keyPrefix: prefix, logger: quiet });
    await store.init();
  });

  afterAll(async () => {
    await store.close();
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length) await admin.del(...keys);
    await client.quit();
    await admin.quit();
  });

  let seq = 0;
  const fresh = () => `wf-${randomUUID().slice(0, 6)}`;
  const newRun = (workflow: string, over: Partial<NewRun> = {}): NewRun => ({ runId: `${workflow}-${++seq}`, workflow, version: 1, input: '1', state: '{}', ...over });
  const limited = (key: string, limit: number, scope: ConcurrencySpec['scope'] = 'run'): Partial<NewRun> => ({ concurrency: { key, limit, scope } });
  const create = async (workflow: string, over: Partial<NewRun> = {}) => (await store.createRun(newRun(workflow, over), { onConflict: 'keep' })).run;
  const holders = async (key: string) => (await admin.smembers(store.keys.holders(key))).sort();

  /** The index-slot half of a claim alone (`FLOW_INDEX` `admit`), as a claimer that died before the run-slot half. */
  async function admitOnly(runId: string): Promise<string> {
    await store.listRuns({ limit: 1 }); // the index records in flight are applied
    const [se, cc, rl, sh] = await admin.hmget(store.keys.run(runId).run, 'se', 'cc', 'rl', 'sh');
    const keys = [store.keys.flow, store.keys.meta, store.keys.debounces];
    const [admission] = (await admin.eval(FLOW_INDEX.lua, keys.length, ...keys, 'admit', runId, se!, cc ?? '', rl ?? '', sh === '1' ? '0' : '1', '0')) as string[];
    return admission;
  }

  it('an admission whose claim never happened neither doubles the slot when the run is claimed nor keeps it once the run ends', async () => {
    const workflow = fresh();
    const key = `${workflow}:k`;
    const x = await create(workflow, limited(key, 2));
    const y = await create(workflow, limited(key, 2));
    const z = await create(workflow, limited(key, 2));
    // the claimer admits x in the index slot, then dies; a retry of the admission (another claimer) takes nothing more
    expect(await admitOnly(x.runId)).toMatch(/^\d+:1:0$/);
    expect(await admitOnly(x.runId)).toMatch(/^\d+:1:0$/);
    expect(await holders(key)).toEqual([x.runId]);
    const admitted = (await store.getRun(x.runId))!;
    expect([admitted.status, admitted.slotHeld, admitted.blockedBy]).toEqual(['pending', undefined, undefined]);
    // (a) claimed now, x takes the slot it was admitted to: x and y hold the two slots, z waits
    const claimed = await store.claimRuns(LEASE, 10, [{ workflow, version: 1 }]);
    expect(claimed.map((r) => r.runId).sort()).toEqual([x.runId, y.runId].sort());
    expect(claimed.every((r) => r.slotHeld)).toBe(true);
    expect(await holders(key)).toEqual([x.runId, y.runId].sort());
    expect((await store.getRun(z.runId))!.blockedBy).toBe('concurrency');
    expect(await store.claimRun(z.runId, LEASE)).toBeUndefined();
    // (b) x ends: its slot goes back, z takes it
    const tokenX = claimed.find((r) => r.runId === x.runId)!.leaseToken;
    expect((await store.commit(x.runId, tokenX, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
    await store.listRuns({ limit: 1 });
    expect(await holders(key)).toEqual([y.runId]);
    expect((await store.claimRun(z.runId, LEASE))?.slotHeld).toBe(true);
    expect(await holders(key)).toEqual([y.runId, z.runId].sort());
  });

  it('frees the slot of an admitted run that ends without ever being claimed with it', async () => {
    const workflow = fresh();
    const key = `${workflow}:k`;
    const x = await create(workflow, limited(key, 1));
    const y = await create(workflow, limited(key, 1));
    expect(await admitOnly(x.runId)).toMatch(/^\d+:1:0$/);
    expect((await store.getRun(y.runId))!.blockedBy).toBe('concurrency');
    // x is cancelled before anyone claims it: claimed without a slot (F1), it ends, and the slot it was admitted to
    // goes with its end
    expect((await store.control(x.runId, { action: 'cancel', compensate: false })).outcome).toBe('ok');
    const cancelled = (await store.claimRun(x.runId, LEASE))!;
    expect(cancelled.slotHeld).toBeUndefined();
    expect((await store.commit(x.runId, cancelled.leaseToken, { leaseMs: 30_000, status: 'cancelled', clearCancel: true })).ok).toBe(true);
    await store.listRuns({ limit: 1 });
    expect(await holders(key)).toEqual([]);
    expect((await store.claimRun(y.runId, LEASE))?.slotHeld).toBe(true);
  });

  it('refuses a claim with the admission of an earlier slot epoch (the run gave its slot back since)', async () => {
    const workflow = fresh();
    const key = `${workflow}:k`;
    const x = await create(workflow, limited(key, 1, 'step'));
    const stale = await admitOnly(x.runId);
    // x is claimed with that admission, releases its lease (scope step: a new epoch, the slot goes back), and the old
    // admission is then presented again, as a claimer that stalled between its two writes would
    const claimed = (await store.claimRun(x.runId, LEASE))!;
    await store.releaseLease(x.runId, claimed.leaseToken);
    await store.listRuns({ limit: 1 });
    expect(await holders(key)).toEqual([]);
    const keys = store.keys.run(x.runId);
    const reply = (await admin.eval(CLAIM_RUN.lua, 2, keys.run, keys.steps, x.runId, 'stalled', '30000', randomUUID(), '-1', stale)) as unknown[];
    expect(reply[0]).toBe(2);
    expect(await admin.hget(keys.run, 'lt')).toBeNull();
    // a claim through the store admits it again, for the current epoch
    expect((await store.claimRun(x.runId, LEASE))?.slotHeld).toBe(true);
    expect(await holders(key)).toEqual([x.runId]);
  });

  /** The run ids among a concurrency key's waiters, first in claim order first. */
  const waiters = async (key: string) => (await admin.zrange(store.keys.waiters(key), 0, -1)).map((m) => m.slice(m.indexOf('|') + 1));
  const redisNow = async () => Number((await admin.time())[0]) * 1000;

  it('a parked run comes back by itself after its park interval, even when no slot wakes it', async () => {
    const workflow = fresh();
    const refs = [{ workflow, version: 1 }];
    const key = `${workflow}:k`;
    const holder = await create(workflow, limited(key, 1));
    const [claimed] = await store.claimRuns(LEASE, 1, refs);
    expect(claimed.runId).toBe(holder.runId);
    const blocked = await create(workflow, limited(key, 1));
    const before = await redisNow();
    expect(await store.claimRuns(LEASE, 5, refs)).toEqual([]);
    // parked: both its due entries pushed about a second ahead, and it waits among its key's waiters; its dueAt and
    // blockedBy are what they were
    const pairKey = store.keys.dueByVersion(workflow, 1);
    for (const due of [pairKey, store.keys.due]) expect(Number(await admin.zscore(due, blocked.runId))).toBeGreaterThan(before + 500);
    expect(await waiters(key)).toEqual([blocked.runId]);
    expect(await admin.hget(store.keys.parked, blocked.runId)).toMatch(/^1\|/);
    const read = (await store.getRun(blocked.runId))!;
    expect(read.blockedBy).toBe('concurrency');
    expect(read.dueAt!.getTime()).toBeLessThanOrEqual(Date.now());
    // its wake-up is lost (as if its waiter entry had been dropped): the holder's end wakes nobody
    await admin.del(store.keys.waiters(key));
    await admin.hdel(store.keys.parked, blocked.runId);
    expect((await store.commit(holder.runId, claimed.leaseToken, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
    expect(await store.claimRuns(LEASE, 5, refs)).toEqual([]);
    // ... until its pushed score comes due
    await sleep(1300);
    const back = await store.claimRuns(LEASE, 5, refs);
    expect(back.map((r) => r.runId)).toEqual([blocked.runId]);
    expect(back[0].slotHeld).toBe(true);
    expect(await admin.hget(store.keys.parked, blocked.runId)).toBeNull();
  });

  it('a freed slot wakes the first waiter still parked: a cancelled, paused or moved one is not brought back', async () => {
    const workflow = fresh();
    const refs = [{ workflow, version: 1 }];
    const key = `${workflow}:k`;
    const t = Date.now();
    const holder = await create(workflow, { ...limited(key, 1), due: { at: new Date(t - 10_000) } });
    const [claimed] = await store.claimRuns(LEASE, 1, refs);
    expect(claimed.runId).toBe(holder.runId);
    const paused = await create(workflow, { ...limited(key, 1), due: { at: new Date(t - 5000) } });
    const cancelled = await create(workflow, { ...limited(key, 1), due: { at: new Date(t - 4000) } });
    const moved = await create(workflow, { ...limited(key, 1), due: { at: new Date(t - 3000) } });
    const next = await create(workflow, { ...limited(key, 1), due: { at: new Date(t - 2000) } });
    const last = await create(workflow, { ...limited(key, 1), due: { at: new Date(t - 1000) } });
    expect(await store.claimRuns(LEASE, 5, refs)).toEqual([]);
    expect(await waiters(key)).toEqual([paused, cancelled, moved, next, last].map((r) => r.runId));
    // the paused and the cancelled run: their own index updates rewrite their due entries and drop them as waiters
    expect((await store.control(paused.runId, { action: 'pause' })).outcome).toBe('ok');
    expect((await store.control(cancelled.runId, { action: 'cancel', compensate: false })).outcome).toBe('ok');
    await store.listRuns({ limit: 1 });
    expect(await waiters(key)).toEqual([moved, next, last].map((r) => r.runId));
    // the moved run: its due entries changed while it was still a waiter (as an index update not seen by the waiters)
    const pairKey = store.keys.dueByVersion(workflow, 1);
    const far = String((await redisNow()) + 600_000);
    for (const due of [pairKey, store.keys.due]) await admin.zadd(due, 'XX', far, moved.runId);
    // the holder ends: its slot wakes `next` (the cancelled run is claimed for its cancel, without a slot: F1)
    expect((await store.commit(holder.runId, claimed.leaseToken, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
    const got = await store.claimRuns(LEASE, 5, refs);
    expect(got.map((r) => r.runId).sort()).toEqual([cancelled.runId, next.runId].sort());
    expect(got.find((r) => r.runId === next.runId)!.slotHeld).toBe(true);
    expect(got.find((r) => r.runId === cancelled.runId)!.slotHeld).toBeFalsy();
    for (const due of [pairKey, store.keys.due]) {
      expect(await admin.zscore(due, moved.runId)).toBe(far);
      expect(await admin.zscore(due, paused.runId)).toBeNull();
    }
    expect(await waiters(key)).toEqual([last.runId]);
    expect(await admin.hget(store.keys.parked, moved.runId)).toBeNull();
    expect((await store.getRun(paused.runId))!.status).toBe('paused');
  });

  it('parks a run created while its key is full at once; a reindex parks it anew, and the holder\'s end still wakes it', async () => {
    const workflow = fresh();
    const refs = [{ workflow, version: 1 }];
    const key = `${workflow}:k`;
    await create(workflow, limited(key, 1));
    const [holder] = await store.claimRuns(LEASE, 1, refs);
    const blocked = await create(workflow, limited(key, 1));
    await store.listRuns({ limit: 1 });
    const pairKey = store.keys.dueByVersion(workflow, 1);
    const dueAt = (await store.getRun(blocked.runId))!.dueAt!.getTime();
    // its index update found the key full: parked before any claim read it
    expect(Number(await admin.zscore(pairKey, blocked.runId))).toBeGreaterThan(dueAt + 500);
    expect(await waiters(key)).toEqual([blocked.runId]);
    // its waiter entry is lost, and its due entries are back at their original score (as an index repair leaves them)
    await admin.del(store.keys.waiters(key));
    await admin.hdel(store.keys.parked, blocked.runId);
    for (const due of [pairKey, store.keys.due]) await admin.zadd(due, 'XX', dueAt, blocked.runId);
    await store.reindex();
    const parked = (await admin.hget(store.keys.parked, blocked.runId))!.split('|');
    expect(parked.slice(0, 1)).toEqual(['1']);
    expect(Number(parked[2])).toBe(dueAt);
    for (const due of [pairKey, store.keys.due]) expect(await admin.zscore(due, blocked.runId)).toBe(parked[1]);
    expect(await waiters(key)).toEqual([blocked.runId]);
    expect(await store.claimRuns(LEASE, 5, refs)).toEqual([]);
    expect((await store.commit(holder.runId, holder.leaseToken, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
    expect((await store.claimRuns(LEASE, 5, refs)).map((r) => r.runId)).toEqual([blocked.runId]);
    expect(await waiters(key)).toEqual([]);
  });

  it('claims runs without limits with the scripts they always took', async () => {
    const workflow = fresh();
    const refs = [{ workflow, version: 1 }];
    expect(await sent(() => store.createRun(newRun(workflow), { onConflict: 'keep', lease: LEASE }))).toEqual(['zadd', 'script:createRun', 'script:applyIndex']);
    await create(workflow);
    expect(await sent(() => store.claimRuns(LEASE, 5, refs))).toEqual(['script:claimCandidates', 'script:claimRun', 'script:applyIndex']);
    const other = await create(workflow);
    expect(await sent(() => store.claimRun(other.runId, LEASE))).toEqual(['script:claimRun', 'script:applyIndex']);
    expect(await sent(() => store.getRun(other.runId))).toEqual(['script:readRun']);
    // a run with limits: on a Redis that is not a Cluster, the create script admits it itself (one script)
    const key = `${workflow}:k`;
    expect(await sent(() => store.createRun(newRun(workflow, limited(key, 1)), { onConflict: 'keep', lease: LEASE }))).toEqual([
      'zadd',
      'script:createRun',
      'script:applyIndex',
    ]);
  });

  it('leases a start of a key whose previous run ended here a moment ago (its index update goes first), in one script', async () => {
    const workflow = fresh();
    const key = `${workflow}:k`;
    const start = () => store.createRun(newRun(workflow, limited(key, 1)), { onConflict: 'keep', lease: LEASE });
    const x = (await start()).run;
    expect([x.status, x.slotHeld]).toEqual(['running', true]);
    // x ends; the index update that gives its slot back is still queued here when the next start of the key comes
    expect((await store.commit(x.runId, x.leaseToken!, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
    const y = (await start()).run;
    expect([y.status, y.slotHeld, typeof y.leaseToken]).toEqual(['running', true, 'string']);
    expect(await holders(key)).toEqual([y.runId]);
    // the next start finds the slot taken: created pending, without the slot or a lease, by the same one script
    let z: Awaited<ReturnType<typeof start>>['run'] | undefined;
    expect(await sent(async () => (z = (await start()).run))).toEqual(['zadd', 'script:createRun', 'script:applyIndex']);
    expect([z!.status, z!.slotHeld, z!.leaseToken, z!.steps]).toEqual(['pending', undefined, undefined, []]);
    expect((await store.getRun(z!.runId))!.blockedBy).toBe('concurrency');
    expect(await holders(key)).toEqual([y.runId]);
    // an id the index knows gets no admission (kept, never leased at once)
    const again = await store.createRun({ ...newRun(workflow, limited(`${key}2`, 1)), runId: z!.runId }, { onConflict: 'keep', lease: LEASE });
    expect([again.created, again.run.status, again.run.leaseToken]).toEqual([false, 'pending', undefined]);
    expect(await holders(`${key}2`)).toEqual([]);
  });

  it('claims a run with limits in one script (the claim script takes its admission), and refuses a blocked one in one', async () => {
    const workflow = fresh();
    const key = `${workflow}:k`;
    const x = await create(workflow, limited(key, 1));
    const y = await create(workflow, limited(key, 1));
    await store.listRuns({ limit: 1 });
    let claimed: Awaited<ReturnType<typeof store.claimRun>>;
    expect(await sent(async () => (claimed = await store.claimRun(x.runId, LEASE)))).toEqual(['script:claimRun', 'script:applyIndex']);
    expect(claimed!).toMatchObject({ runId: x.runId, slotHeld: true });
    expect(await sent(async () => expect(await store.claimRun(y.runId, LEASE)).toBeUndefined())).toEqual(['script:claimRun', 'script:applyIndex']);
    expect(await holders(key)).toEqual([x.runId]);
    // candidates past the ones the candidates script reserved for are admitted by their claim scripts
    const others = await Promise.all([1, 2, 3].map((i) => create(workflow, limited(`${key}-${i}`, 1))));
    await store.listRuns({ limit: 1 });
    let batch: Awaited<ReturnType<typeof store.claimRuns>> = [];
    const commands = await sent(async () => (batch = await store.claimRuns(LEASE, 10, [{ workflow, version: 1 }])));
    expect(commands.filter((c) => c !== 'script:claimRun')).toEqual(['script:claimCandidates', 'script:applyIndex']);
    expect(batch.map((r) => r.runId).sort()).toEqual(others.map((r) => r.runId).sort());
    expect(batch.every((r) => r.slotHeld)).toBe(true);
    for (const [i, run] of others.entries()) expect(await holders(`${key}-${i + 1}`)).toEqual([run.runId]);
    expect(await holders(key)).toEqual([x.runId]);
  });

  const proxies: [string, (command: Command) => boolean][] = [
    ['refuses a script given keys of two slots', () => true],
    [
      'runs a script where its first key lives',
      (command) => {
        command.args[3] = `${String(command.args[3])}:elsewhere`;
        return false;
      },
    ],
  ];
  it.each(proxies)('admits in a write of its own behind a proxy that %s (the one-node check of init fails)', async (_what, refuses) => {
    const { client: proxied, sent: sentBy } = recordingClient(redis.url);
    const send = proxied.sendCommand.bind(proxied) as (command: Command, stream?: unknown) => unknown;
    proxied.sendCommand = ((command: Command, stream?: unknown) => {
      if (command.name === 'eval' && String(command.args[0]) === ONE_NODE_PROBE && refuses(command)) {
        command.reject(new Error("CROSSSLOT Keys in request don't hash to the same slot"));
        return command.promise;
      }
      return send(command, stream);
    }) as typeof proxied.sendCommand;
    const other = new RedisStore({ client: proxied, keyPrefix: prefix, logger: quiet });
    try {
      await other.init();
      const workflow = fresh();
      const key = `${workflow}:k`;
      let x: StoredRun | undefined;
      const created = await sentBy(async () => (x = (await other.createRun(newRun(workflow, limited(key, 1)), { onConflict: 'keep', lease: LEASE })).run));
      expect(created).toEqual(['script:flowIndex', 'zadd', 'script:createRun', 'script:applyIndex']);
      expect(x).toMatchObject({ status: 'running', slotHeld: true });
      const y = await create(workflow, limited(key, 1));
      await other.listRuns({ limit: 1 });
      expect(await sentBy(async () => expect(await other.claimRun(y.runId, LEASE)).toBeUndefined())).toEqual([
        'script:claimRun',
        'script:flowIndex',
        'script:applyIndex',
      ]);
      expect(await holders(key)).toEqual([x!.runId]);
    } finally {
      await other.close();
      await proxied.quit();
    }
  });

  it('keeps priority levels only while they have due runs', async () => {
    const workflow = fresh();
    const refs = [{ workflow, version: 1 }];
    const high = await create(workflow, { priority: 7 });
    await create(workflow);
    await store.listRuns({ limit: 1 });
    const pairKey = store.keys.dueByVersion(workflow, 1);
    expect(await admin.zrange(store.keys.dueLevels(pairKey), 0, -1)).toEqual(['7']);
    expect(await admin.zrange(store.keys.dueLevel(pairKey, 7), 0, -1)).toEqual([high.runId]);
    expect(await admin.hget(store.keys.meta, high.runId)).toMatch(/^\d+:7\|pending\|/);
    const [first] = await store.claimRuns(LEASE, 1, refs);
    expect(first.runId).toBe(high.runId);
    expect((await store.commit(high.runId, first.leaseToken, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
    await store.listRuns({ limit: 1 });
    expect(await admin.exists(store.keys.dueLevel(pairKey, 7), store.keys.dueLevels(pairKey))).toBe(0);
    expect(await admin.exists(store.keys.dueLevel(store.keys.due, 7), store.keys.dueLevels(store.keys.due))).toBe(0);
  });

  it('reindexes runs of every priority, and drops entries left at a level a run is not of', async () => {
    const workflow = fresh();
    const low = await create(workflow, { priority: -2 });
    await store.listRuns({ limit: 1 });
    const pairKey = store.keys.dueByVersion(workflow, 1);
    const score = await admin.zscore(store.keys.dueLevel(pairKey, -2), low.runId);
    expect(score).not.toBeNull();
    // a stale entry at another level (as an index update lost halfway would leave), and the run's own entry lost
    await admin.zadd(store.keys.dueLevel(pairKey, 4), score!, low.runId);
    await admin.zadd(store.keys.dueLevels(pairKey), 4, '4');
    await admin.zrem(store.keys.dueLevel(pairKey, -2), low.runId);
    await store.reindex();
    expect(await admin.zscore(store.keys.dueLevel(pairKey, -2), low.runId)).toBe(score);
    expect(await admin.exists(store.keys.dueLevel(pairKey, 4))).toBe(0);
    expect(await admin.zrange(store.keys.dueLevels(pairKey), 0, -1)).toEqual(['-2']);
    const [claimed] = await store.claimRuns(LEASE, 1, [{ workflow, version: 1 }]);
    expect(claimed).toMatchObject({ runId: low.runId, priority: -2 });
  });

  it('drops the flow entry of a purged run, and a debounce key whose run is gone starts a new one', async () => {
    const workflow = fresh();
    const key = `${workflow}:k`;
    const run = (await store.createRun(newRun(workflow, { rateLimit: { key, limit: 3, perMs: 60_000 } }), { onConflict: 'keep', lease: LEASE })).run;
    await store.listRuns({ limit: 1 });
    expect(await admin.hget(store.keys.flow, run.runId)).not.toBeNull();
    expect((await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
    await sleep(5);
    expect(await store.purge(['completed'], 0)).toBeGreaterThanOrEqual(1);
    expect(await store.getRun(run.runId)).toBeUndefined();
    expect(await admin.hget(store.keys.flow, run.runId)).toBeNull();

    // a key pointed at a run that was never written: recently (its creator is slow or died), a start creates that run;
    // long ago, it is gone, and the start's own run is the key's
    const debounce = { key: `${workflow}:d`, delayMs: 60_000 };
    const time = async () => Number((await admin.time())[0]) * 1000;
    await admin.hset(store.keys.debounces, debounce.key, `ghost-${workflow}|${await time()}`);
    const folded = await store.createRun(newRun(workflow), { onConflict: 'keep', debounce });
    expect(folded).toMatchObject({ created: false, debounced: true, run: { runId: `ghost-${workflow}`, status: 'pending' } });
    const other = { key: `${workflow}:e`, delayMs: 60_000 };
    await admin.hset(store.keys.debounces, other.key, `gone-${workflow}|${(await time()) - 3_600_000}`);
    const own = await store.createRun(newRun(workflow), { onConflict: 'keep', debounce: other });
    expect(own.created).toBe(true);
    expect(own.run.runId).not.toBe(`gone-${workflow}`);
    expect(await store.getRun(`gone-${workflow}`)).toBeUndefined();
    expect(await admin.hget(store.keys.debounces, other.key)).toMatch(new RegExp(`^${own.run.runId}\\|\\d+$`));
  });

  it('counts the queued signals of a queue written without its count field (maxQueued), and writes the count from then on', async () => {
    const workflow = fresh();
    const run = (await store.createRun(newRun(workflow), { onConflict: 'keep', lease: LEASE })).run;
    const token = run.leaseToken!;
    const q = store.keys.run(run.runId).signals;
    const send = (name: string, maxQueued?: number) => store.sendSignal(run.runId, name, `"${name}"`, undefined, maxQueued === undefined ? undefined : { maxQueued });
    const count = () => admin.hget(q, 'c');
    const queued = async () => (await store.listSignals(run.runId)).length;
    // a queue as this release writes it: the count follows every send and take
    for (const name of ['a', 'b', 'a', 'c']) expect((await send(name)).outcome).toBe('ok');
    expect(await count()).toBe('4');
    expect(await store.takeSignal(run.runId, token, ['a'])).toMatchObject({ ok: true, payload: '"a"' });
    expect(await count()).toBe('3');
    expect(await queued()).toBe(3); // the count field is no signal

    // the same queue as an earlier release left it (no count): counted from its heads and tails
    await admin.hdel(q, 'c');
    expect((await send('d', 3)).outcome).toBe('full');
    expect(await admin.hexists(q, 'c')).toBe(0); // a refused signal writes nothing
    expect((await send('d', 4)).outcome).toBe('ok');
    expect(await count()).toBe('4');
    expect((await send('d', 4)).outcome).toBe('full');
    await admin.hdel(q, 'c');
    expect(await store.takeSignal(run.runId, token, ['a'])).toMatchObject({ ok: true, payload: '"a"' }); // a's queue empties
    expect(await count()).toBe('3');
    await admin.hset(q, 'c', 'damaged');
    const waited = await store.commit(run.runId, token, { leaseMs: 30_000, wait: { signals: ['b'] } });
    expect(waited).toMatchObject({ ok: true, consumedSignal: { name: 'b', payload: '"b"' } });
    expect(await count()).toBe('2');
    expect(await queued()).toBe(2);

    // a queue written by hand in the old layout (no order fields, no send counter, no count), large enough that it
    // is scanned in several pages, with a damaged head (past its tail) that holds nothing
    await admin.del(q);
    const fields: string[] = ['h:old', '1', 't:old', '3', 'v:2:old', '"o2"', 'v:3:old', '"o3"', 'h:bad', '5', 't:bad', '2'];
    for (let i = 0; i < 1500; i++) fields.push(`t:n${i}`, '1', `v:1:n${i}`, `"${i}"`);
    await admin.hset(q, ...fields);
    expect(await queued()).toBe(1502);
    expect((await send('x', 1502)).outcome).toBe('full');
    expect((await send('x', 1503)).outcome).toBe('ok');
    expect(await count()).toBe('1503');
    await admin.hdel(q, 'c');
    expect(await store.takeSignal(run.runId, token, ['old'])).toMatchObject({ ok: true, payload: '"o2"' });
    expect(await count()).toBe('1502');
    expect(await queued()).toBe(1502);
  });
});
