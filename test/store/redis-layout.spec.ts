import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { StoreError } from '../../src/errors/errors.js';
import { INDEX_LAYOUT } from '../../src/store/redis/redis.keys.js';
import { scanIndexKeys } from '../../src/store/redis/redis.layout.js';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import type { WorkflowRef } from '../../src/store/workflow-store.interface.js';
import { testRedis } from '../setup/test-servers.js';
import { deletePrefix, dueIndexes, seedVersions, toLayout1 } from './redis-test-helpers.js';

/**
 * The Redis store's key layout (`redis.layout.ts`): due indexes per (workflow, version), and the one-time migration of
 * a store written by an earlier release (layout 1: one due index per workflow).
 */
const redis = testRedis();
const OTHER = { owner: 'layout-other', leaseMs: 30_000 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function recorder() {
  const lines: string[] = [];
  return { lines, log: (m: string) => lines.push(m), warn: (m: string) => lines.push(`warn: ${m}`), error: (m: string) => lines.push(`error: ${m}`) };
}

redis.describe('Redis store key layout', () => {
  let admin: Redis;
  const prefixes: string[] = [];
  const stores: RedisStore[] = [];
  const newPrefix = () => {
    const prefix = `cairn-layout-${randomUUID().slice(0, 8)}:`;
    prefixes.push(prefix);
    return prefix;
  };
  const open = async (prefix: string, logger = recorder()) => {
    const store = new RedisStore({ url: redis.url, keyPrefix: prefix, logger });
    stores.push(store);
    await store.init();
    return store;
  };
  const ref = (workflow: string, version: number): WorkflowRef => ({ workflow, version });

  beforeAll(() => {
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
    for (const prefix of prefixes) await deletePrefix(redis.url, prefix);
    await admin.quit();
  });

  it('starts a new store at the current layout, without migrating', async () => {
    const logger = recorder();
    const store = await open(newPrefix(), logger);
    expect(await admin.get(store.keys.layout)).toBe(String(INDEX_LAYOUT));
    expect(logger.lines.filter((l) => l.includes('migrat'))).toEqual([]);
  });

  it('migrates a store written by an earlier release once, with several instances starting at once, and claims from it', async () => {
    const prefix = newPrefix();
    const writer = await open(prefix);
    const seeded = await seedVersions(writer);
    await writer.close();
    const keys = writer.keys;
    const expected = await dueIndexes(admin, keys);
    expect(Object.keys(expected)).toHaveLength(3); // (wf, 1), (wf, 2), (other, 3)
    await toLayout1(admin, keys);
    expect(await dueIndexes(admin, keys)).toEqual({});
    expect(await admin.zcard(keys.legacyDueByWorkflow(seeded.workflow))).toBe(15);

    const loggers = Array.from({ length: 4 }, () => recorder());
    const instances = await Promise.all(loggers.map((logger) => open(prefix, logger)));
    expect(loggers.filter((l) => l.lines.some((line) => line.startsWith('Redis store: migrating'))).length).toBe(1);
    expect(loggers.flatMap((l) => l.lines).filter((line) => line.startsWith('warn') || line.startsWith('error'))).toEqual([]);
    expect(await admin.get(keys.layout)).toBe(String(INDEX_LAYOUT));
    expect(await admin.exists(keys.layoutLock)).toBe(0);
    expect(await scanIndexKeys(admin, keys.legacyDuePattern)).toEqual([]);
    expect(await dueIndexes(admin, keys)).toEqual(expected);

    // versions side by side: 12 due runs of version 1 ahead of one of version 2 do not hold it back
    const [a, b, c, d] = instances;
    const v2 = await a.claimRuns(OTHER, 3, [ref(seeded.workflow, 2)]);
    expect(v2.map((r) => r.runId)).toEqual([seeded.v2]);
    const v1 = await b.claimRuns(OTHER, 50, [ref(seeded.workflow, 1)]);
    expect(v1.map((r) => r.runId).sort()).toEqual([...seeded.v1].sort()); // not the sleeping one
    expect((await c.claimOwnedRuns(seeded.owner, 10, [ref(seeded.workflow, 2)])).map((r) => r.runId)).toEqual([seeded.leased]);
    expect((await d.claimRuns(OTHER, 10, [ref(seeded.other, 3)])).map((r) => r.runId)).toEqual([seeded.otherRun]);
    expect(await d.claimRuns(OTHER, 10)).toEqual([]);
  });

  it('finishes a migration cut short, and gives the same indexes however often it runs', async () => {
    const prefix = newPrefix();
    const writer = await open(prefix);
    await seedVersions(writer);
    await writer.close();
    const keys = writer.keys;
    const expected = await dueIndexes(admin, keys);
    await toLayout1(admin, keys);
    // an instance died halfway: some due runs are in their version's index, the layout is not set
    const [firstKey, entries] = Object.entries(expected)[0];
    const half = entries.slice(0, Math.ceil(entries.length / 2)).flatMap((entry) => entry.split(' ').reverse());
    await admin.zadd(firstKey, ...half);
    const store = await open(prefix);
    expect(await dueIndexes(admin, keys)).toEqual(expected);
    // once more, as if the layout key were lost
    await admin.del(keys.layout);
    const again = await open(prefix);
    expect(await dueIndexes(admin, keys)).toEqual(expected);
    expect(await scanIndexKeys(admin, keys.legacyDuePattern)).toEqual([]);
    await store.close();
    await again.close();
  });

  it('waits for another instance that is migrating, and takes over when its lock expires', async () => {
    const prefix = newPrefix();
    const writer = await open(prefix);
    const seeded = await seedVersions(writer);
    await writer.close();
    const keys = writer.keys;
    const expected = await dueIndexes(admin, keys);
    await toLayout1(admin, keys);
    await admin.set(keys.layoutLock, 'an instance that died', 'PX', 400);
    const logger = recorder();
    const started = Date.now();
    const store = await open(prefix, logger);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(logger.lines.some((line) => line.includes('waiting for another instance'))).toBe(true);
    expect(await dueIndexes(admin, keys)).toEqual(expected);
    expect((await store.claimRuns(OTHER, 3, [ref(seeded.workflow, 2)])).map((r) => r.runId)).toEqual([seeded.v2]);
  });

  it('refuses keys of a newer layout', async () => {
    const prefix = newPrefix();
    const store = await open(prefix);
    await store.close();
    await admin.set(store.keys.layout, String(INDEX_LAYOUT + 1));
    const later = new RedisStore({ url: redis.url, keyPrefix: prefix, logger: recorder() });
    stores.push(later);
    await expect(later.init()).rejects.toThrow(StoreError);
    await expect(later.init()).rejects.toThrow(/index layout 3, newer than layout 2/);
  });

  it('drops a due entry of another version or of a run that is gone when a claimer meets it', async () => {
    const store = await open(newPrefix());
    const seeded = await seedVersions(store);
    const keys = store.keys;
    const v2Key = keys.dueByVersion(seeded.workflow, 2);
    // as a hand edit or a lost index update would leave them: a version 1 run and a missing run in version 2's index
    await admin.zadd(v2Key, 0, seeded.v1[0], 0, 'gone-run');
    const got = await store.claimRuns(OTHER, 3, [ref(seeded.workflow, 2)]);
    expect(got.map((r) => r.runId)).toEqual([seeded.v2]);
    await store.listRuns({ limit: 1 }); // applies the queued index records
    expect(await admin.zscore(v2Key, seeded.v1[0])).toBeNull();
    expect(await admin.zscore(v2Key, 'gone-run')).toBeNull();
    expect(await admin.zscore(keys.dueByVersion(seeded.workflow, 1), seeded.v1[0])).not.toBeNull();
  });

  it('moves the due entry of a run replaced at another version', async () => {
    const store = await open(newPrefix());
    const workflow = `wf-${randomUUID().slice(0, 6)}`;
    const runId = randomUUID();
    await store.createRun({ runId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
    await store.createRun({ runId, workflow, version: 3, input: '1', state: '{}' }, { onConflict: 'replace' });
    await store.listRuns({ limit: 1 });
    expect(await admin.zscore(store.keys.dueByVersion(workflow, 1), runId)).toBeNull();
    expect(await admin.zscore(store.keys.dueByVersion(workflow, 3), runId)).not.toBeNull();
    await store.createRun({ runId, workflow: `${workflow}-b`, version: 3, input: '1', state: '{}' }, { onConflict: 'replace' });
    await store.listRuns({ limit: 1 });
    expect(await admin.zscore(store.keys.dueByVersion(workflow, 3), runId)).toBeNull();
    expect(await admin.zscore(store.keys.dueByVersion(`${workflow}-b`, 3), runId)).not.toBeNull();
  });

  it('reindex() rebuilds the due indexes per version and drops stale ones and those of layout 1', async () => {
    const store = await open(newPrefix());
    const seeded = await seedVersions(store);
    await store.listRuns({ limit: 1 });
    const keys = store.keys;
    const expected = await dueIndexes(admin, keys);
    // a run indexed by an instance of an earlier release after the migration: in no version's due index
    await admin.zrem(keys.dueByVersion(seeded.workflow, 2), seeded.v2);
    await admin.zadd(keys.legacyDueByWorkflow(seeded.workflow), 0, seeded.v2);
    // stale entries: a run in another version's index, a run that is gone
    await admin.zadd(keys.dueByVersion(seeded.workflow, 9), 0, seeded.v1[1], 0, 'gone-run');
    await admin.del(keys.layout);
    expect(await store.claimRuns(OTHER, 3, [ref(seeded.workflow, 2)])).toEqual([]);
    expect(await store.reindex()).toBeGreaterThan(0);
    expect(await dueIndexes(admin, keys)).toEqual(expected);
    expect(await scanIndexKeys(admin, keys.legacyDuePattern)).toEqual([]);
    expect(await admin.get(keys.layout)).toBe(String(INDEX_LAYOUT));
    expect((await store.claimRuns(OTHER, 3, [ref(seeded.workflow, 2)])).map((r) => r.runId)).toEqual([seeded.v2]);
  });

  it('claims each version from its own index when many runs of other versions are due', async () => {
    const store = await open(newPrefix());
    const workflow = `wf-${randomUUID().slice(0, 6)}`;
    for (let i = 0; i < 300; i++) await store.createRun({ runId: `old-${i}`, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
    await sleep(2);
    const fresh = ['new-a', 'new-b'];
    for (const runId of fresh) await store.createRun({ runId, workflow, version: 2, input: '1', state: '{}' }, { onConflict: 'keep' });
    const got = await store.claimRuns(OTHER, 1, [ref(workflow, 2)]);
    expect(got.map((r) => r.runId)).toEqual(['new-a']);
    expect((await store.claimRuns(OTHER, 5, [ref(workflow, 2), ref(workflow, 2)])).map((r) => r.runId)).toEqual(['new-b']);
    expect((await store.claimRun('old-0', OTHER, [ref(workflow, 2)]))).toBeUndefined();
    expect((await store.claimRun('old-0', OTHER, [ref(workflow, 1)]))?.runId).toBe('old-0');
    expect(await store.claimRuns(OTHER, 5, [])).toEqual([]);
    // as in the memory store: an entry that is not a (workflow, version) pair matches no run
    expect(await store.claimRuns(OTHER, 5, [workflow as never])).toEqual([]);
    expect(await store.claimRun('old-1', OTHER, [workflow as never])).toBeUndefined();
  });
});
