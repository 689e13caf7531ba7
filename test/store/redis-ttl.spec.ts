import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { ConfigurationError } from '../../src/errors/errors.js';
import { createStore } from '../../src/store/create-store.js';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import type { WorkflowStore } from '../../src/store/workflow-store.interface.js';
import { testRedis } from '../setup/test-servers.js';
import { deletePrefix } from './redis-test-helpers.js';

/** `RedisStore({ ttl })`: ended runs' keys expire; their index entries go at the next list, purge or reindex. */
const redis = testRedis();
const quiet = { log() {}, warn() {}, error() {} };
const LEASE = { owner: 'ttl', leaseMs: 30_000 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RedisStore ttl options', () => {
  it('refuses a ttl that is not a positive duration', async () => {
    for (const ttl of [0, -1, NaN, Infinity, '', 'soon', '-5s', '0ms', {} as never]) {
      expect(() => new RedisStore({ ttl, logger: quiet })).toThrow(ConfigurationError);
    }
    await expect(createStore({ type: 'redis', url: 'redis://127.0.0.1:1', ttl: 'nope' }, quiet)).rejects.toThrow(/ttl must be a positive/);
    expect(new RedisStore({ ttl: '30d', logger: quiet }).ttlMs).toBe(30 * 24 * 3_600_000);
    expect(new RedisStore({ ttl: 1.5, logger: quiet }).ttlMs).toBe(2);
    expect(new RedisStore({ logger: quiet }).ttlMs).toBeUndefined();
  });
});

redis.describe('RedisStore ttl', () => {
  const prefix = `cairn-ttl-${randomUUID().slice(0, 8)}:`;
  let store: RedisStore;
  let admin: Redis;

  beforeAll(async () => {
    store = (await createStore({ type: 'redis', url: redis.url, keyPrefix: prefix, ttl: 200 }, quiet)) as RedisStore;
    await store.init();
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    await store.close();
    admin.disconnect();
    await deletePrefix(redis.url, prefix);
  });

  /** Every key of a run: run, steps, signals, events (history). */
  const runKeys = (runId: string) => {
    const keys = store.keys.run(runId);
    return [keys.run, keys.steps, keys.signals, keys.events];
  };
  const pttls = async (runId: string) => Promise.all(runKeys(runId).map((key) => admin.pttl(key)));
  const indexed = async (runId: string) => {
    const keys = await admin.keys(`${store.keys.index}*`);
    const hits: string[] = [];
    for (const key of keys) {
      const type = await admin.type(key);
      if (type === 'zset' ? (await admin.zscore(key, runId)) !== null : type === 'hash' && (await admin.hexists(key, runId)) === 1) hits.push(key);
    }
    return hits;
  };

  async function start(workflow: string, signal = false): Promise<{ runId: string; token: string }> {
    const runId = randomUUID();
    const { run } = await store.createRun(
      { runId, workflow, version: 1, input: '1', state: '{}', events: ['{"t":"start"}'] },
      { onConflict: 'keep', lease: LEASE },
    );
    const token = run.leaseToken!;
    const steps = [{ index: 0, step: { name: 'a', status: 'completed' as const, attempts: 1, output: '1' } }];
    expect((await store.commit(runId, token, { leaseMs: 30_000, steps, currentStep: 'b', events: ['{"t":"a"}'] })).ok).toBe(true);
    if (signal) expect((await store.sendSignal(runId, 'later', '"x"')).outcome).toBe('ok');
    return { runId, token };
  }

  it('expires every key of an ended run; list and purge drop its index entries', async () => {
    const workflow = `wf-${randomUUID()}`;
    const { runId, token } = await start(workflow, true);
    expect(await pttls(runId)).toEqual([-1, -1, -1, -1]); // a live run never expires
    expect((await store.commit(runId, token, { leaseMs: 30_000, status: 'completed', output: '2', events: ['{"t":"end"}'] })).ok).toBe(true);
    const [run, steps, signals, events] = await pttls(runId);
    expect(run).toBeGreaterThan(0);
    expect(run).toBeLessThanOrEqual(200);
    expect(steps).toBeGreaterThan(0);
    expect(signals).toBe(-2); // deleted when the run ended
    expect(events).toBeGreaterThan(0);
    expect(events).toBeLessThanOrEqual(200);
    expect((await store.listEvents(runId, { limit: 10 })).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect((await store.listRuns({ workflow, limit: 10 })).map((r) => r.runId)).toEqual([runId]);

    await sleep(400);
    expect(await store.getRun(runId)).toBeUndefined();
    expect(await admin.exists(...runKeys(runId))).toBe(0);
    expect(await store.listEvents(runId, { limit: 10 })).toEqual([]);
    expect((await indexed(runId)).length).toBeGreaterThan(0); // index entries outlive the run…
    expect(await store.listRuns({ workflow, limit: 10 })).toEqual([]);
    expect(await store.listRuns({ limit: 1000 })).not.toContainEqual(expect.objectContaining({ runId }));
    await sleep(50); // the index writer applies its queue right after
    expect(await indexed(runId)).toEqual([]); // …until a list passes over them

    // purge (retention) drops them without any list
    const other = await start(workflow);
    await store.commit(other.runId, other.token, { leaseMs: 30_000, status: 'failed', error: { name: 'E', message: 'm' } });
    await sleep(400);
    expect((await indexed(other.runId)).length).toBeGreaterThan(0);
    expect(await store.purge(['completed'], 60_000)).toBe(0);
    expect(await indexed(other.runId)).toEqual([]);
    expect(await store.listRuns({ workflow, limit: 10 })).toEqual([]);
  });

  it('a retried run loses its expiry, and a replaced one starts without', async () => {
    const { runId, token } = await start(`wf-${randomUUID()}`);
    await store.commit(runId, token, { leaseMs: 30_000, status: 'failed', error: { name: 'E', message: 'm' } });
    expect((await pttls(runId))[0]).toBeGreaterThan(0);
    expect((await pttls(runId))[3]).toBeGreaterThan(0);
    expect(await store.control(runId, { action: 'retry' }, '{"t":"retry"}')).toMatchObject({ outcome: 'ok', eventSeq: 3 });
    expect(await pttls(runId)).toEqual([-1, -1, -2, -1]);
    await sleep(300);
    expect((await store.getRun(runId))?.status).toBe('pending');
    expect((await store.listEvents(runId, { limit: 10 })).map((e) => e.body)).toEqual(['{"t":"start"}', '{"t":"a"}', '{"t":"retry"}']);

    const ended = await start(`wf-${randomUUID()}`);
    await store.commit(ended.runId, ended.token, { leaseMs: 30_000, status: 'cancelled' });
    const replaced = await store.createRun(
      { runId: ended.runId, workflow: 'wf2', version: 1, input: '1', state: '{}', events: ['{"t":"again"}'] },
      { onConflict: 'replace' },
    );
    expect(replaced).toMatchObject({ created: true, lastEventSeq: 1 });
    expect(await pttls(ended.runId)).toEqual([-1, -2, -2, -1]);
    await sleep(300);
    expect((await store.getRun(ended.runId))?.status).toBe('pending');
    expect(await store.listEvents(ended.runId, { limit: 10 })).toEqual([{ seq: 1, body: '{"t":"again"}' }]);
    expect((await store.listRuns({ workflow: 'wf2', limit: 10 })).map((r) => r.runId)).toContain(ended.runId);
  });

  it('counts an expired run until its index entries are dropped (the documented overcount)', async () => {
    const workflow = `wf-${randomUUID()}`;
    const { runId, token } = await start(workflow);
    await start(workflow);
    await store.commit(runId, token, { leaseMs: 30_000, status: 'completed' });
    expect(await store.countRuns({ workflow })).toEqual({ completed: 1, running: 1 });
    await sleep(400);
    expect(await store.getRun(runId)).toBeUndefined();
    expect(await store.countRuns({ workflow })).toEqual({ completed: 1, running: 1 }); // the index outlives the run…
    expect(await store.sweepExpired()).toBeGreaterThanOrEqual(1);
    expect(await store.countRuns({ workflow })).toEqual({ running: 1 }); // …until a sweep (or purge, list, reindex)
  });

  it('reindex drops the entries of expired runs', async () => {
    const workflow = `wf-${randomUUID()}`;
    const { runId, token } = await start(workflow);
    await store.commit(runId, token, { leaseMs: 30_000, status: 'completed' });
    await sleep(400);
    await store.reindex();
    expect(await indexed(runId)).toEqual([]);
  });

  it('claims skip a due entry whose run is gone, and drop it', async () => {
    const workflow = `wf-${randomUUID()}`;
    const runId = randomUUID();
    await store.createRun({ runId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
    await sleep(20);
    expect((await indexed(runId)).length).toBeGreaterThan(0);
    await admin.del(...runKeys(runId)); // as an expiry whose index update was lost would leave it
    expect(await store.claimRuns(LEASE, 10, [{ workflow, version: 1 }])).toEqual([]);
    await sleep(20);
    expect(await indexed(runId)).toEqual([]);
  });

  it('a store without ttl sets none', async () => {
    const plain: WorkflowStore = new RedisStore({ url: redis.url, keyPrefix: prefix, logger: quiet });
    await plain.init();
    try {
      const runId = randomUUID();
      const { run } = await plain.createRun({ runId, workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE });
      await plain.commit(runId, run.leaseToken!, { leaseMs: 30_000, status: 'completed' });
      expect((await pttls(runId))[0]).toBe(-1);
    } finally {
      await plain.close();
    }
  });
});
