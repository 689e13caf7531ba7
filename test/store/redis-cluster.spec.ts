import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { RedisKeys, keySlot } from '../../src/store/redis/redis.keys.js';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import { FLOW_INDEX } from '../../src/store/redis/redis.scripts.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { startRedis, type RedisServer } from '../setup/redis-server.js';
import { testRedis } from '../setup/test-servers.js';
import { scanIndexKeys } from '../../src/store/redis/redis.layout.js';
import { dueIndexes, redisCorruptions, seedVersions, toLayout1 } from './redis-test-helpers.js';

/**
 * The store on a real three-master Redis Cluster: every script must keep to one slot (the cluster refuses
 * cross-slot scripts), runs spread over the masters, and the conformance suite must pass unchanged.
 */
// NOTE: redis-cli ships with redis-server (which .ci/run installs); a missing one fails the suite, it is not skipped.
const { describe: describeRedis } = testRedis();
if (process.env.CAIRN_SKIP_REDIS !== '1' && spawnSync('sh', ['-c', 'command -v redis-cli']).status !== 0) {
  throw new Error('redis-cli is not installed: apt-get install -y redis-server (it ships redis-cli), or set CAIRN_SKIP_REDIS=1.');
}
const run = promisify(execFile);
const quiet = { log() {}, warn() {}, error() {} };
const nodes: RedisServer[] = [];
let ready: Promise<void> | undefined;

async function startCluster(): Promise<void> {
  for (let i = 0; i < 3; i++) nodes.push(await startRedis({ extraArgs: ['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000'] }));
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
    timeout: 20_000,
  });
  for (let i = 0; i < 200; i++) {
    const states = await Promise.all(
      nodes.map(async (n) => (await run('redis-cli', ['-p', String(n.port), 'cluster', 'info'])).stdout.includes('cluster_state:ok')),
    );
    if (states.every(Boolean)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the test cluster did not reach cluster_state:ok');
}

function cluster(): Cluster {
  return new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
}


const describeCluster = describeRedis;

describeCluster('RedisStore on Redis Cluster', () => {
  beforeAll(async () => {
    ready ??= startCluster();
    await ready;
  }, 30_000);
  afterAll(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
  });

  const clients = new WeakMap<object, Cluster>();
  describeStoreConformance('redis cluster', {
    create: async () => {
      ready ??= startCluster();
      await ready;
      const client = cluster();
      const store = new RedisStore({ client, keyPrefix: `cairn-cluster-${randomUUID().slice(0, 8)}:`, logger: quiet });
      clients.set(store, client);
      return store;
    },
    destroy: async (store) => {
      await clients.get(store)?.quit();
    },
    corruptions: redisCorruptions(),
    wakesParentsInSecondWrite: true,
  });

  it('spreads runs over the masters and keeps each run\'s keys on one of them', async () => {
    const client = cluster();
    const store = new RedisStore({ client, keyPrefix: `cairn-spread-${randomUUID().slice(0, 8)}:`, logger: quiet });
    try {
      await store.init();
      const keys = new RedisKeys(store.keys.prefix);
      const ids = Array.from({ length: 30 }, (_, i) => `spread-{${i}}-${randomUUID()}`);
      for (const runId of ids) await store.createRun({ runId, workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
      const perNode = await Promise.all(
        nodes.map(async (n) => {
          const direct = new Redis({ port: n.port, host: '127.0.0.1' });
          try {
            const found = await direct.keys(`${store.keys.prefix}{*}:r`);
            return found.filter((key) => !key.includes('{~'));
          } finally {
            direct.disconnect();
          }
        }),
      );
      expect(perNode.filter((found) => found.length > 0).length).toBeGreaterThan(1);
      expect(perNode.flat()).toHaveLength(ids.length);
      expect(new Set(ids.map((id) => keySlot(keys.run(id).run))).size).toBeGreaterThan(1);
      const claimed = await store.claimRuns({ owner: 'c', leaseMs: 30_000 }, 100, [{ workflow: 'wf', version: 1 }]);
      expect(claimed.map((r) => r.runId).sort()).toEqual([...ids].sort());
      expect((await store.listRuns({ workflow: 'wf', statuses: ['running'], limit: 100 })).length).toBe(ids.length);
    } finally {
      await store.close();
      await client.quit();
    }
  });

  it('admits a run with limits in the index slot, a write of its own, and a claim cut in two neither doubles nor leaks a slot', async () => {
    const client = cluster();
    const store = new RedisStore({ client, keyPrefix: `cairn-flow-${randomUUID().slice(0, 8)}:`, logger: quiet });
    try {
      await store.init();
      const key = 'k';
      const lease = { owner: 'c', leaseMs: 30_000 };
      const newRun = (runId: string) => ({ runId, workflow: 'wf', version: 1, input: '1', state: '{}', concurrency: { key, limit: 1, scope: 'run' as const } });
      const holders = async () => (await client.smembers(store.keys.holders(key))).sort();
      const ids = ['x-{1}', 'y-{2}', 'z-{3}', 'w-{4}'];
      // the runs' keys are in other slots than the index's: a script may not take both (the cluster refuses it)
      for (const id of ids) expect(keySlot(store.keys.run(id).run)).not.toBe(keySlot(store.keys.flow));
      const x = (await store.createRun(newRun(ids[0]), { onConflict: 'keep', lease })).run;
      expect([x.status, x.slotHeld]).toEqual(['running', true]);
      // x ends; the next start of the key, at once, finds its slot given back
      expect((await store.commit(x.runId, x.leaseToken!, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
      const y = (await store.createRun(newRun(ids[1]), { onConflict: 'keep', lease })).run;
      expect([y.status, y.slotHeld]).toEqual(['running', true]);
      const z = (await store.createRun(newRun(ids[2]), { onConflict: 'keep', lease })).run;
      expect([z.status, z.slotHeld, z.leaseToken]).toEqual(['pending', undefined, undefined]);
      expect(await store.claimRun(z.runId, lease)).toBeUndefined();
      expect(await holders()).toEqual([y.runId]);
      expect((await store.commit(y.runId, y.leaseToken!, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
      await store.listRuns({ limit: 1 });
      // a claimer admits z in the index slot (FLOW_INDEX admit) and dies before its claim script: z holds the slot
      const [se, cc] = await client.hmget(store.keys.run(z.runId).run, 'se', 'cc');
      const flowKeys = [store.keys.flow, store.keys.meta, store.keys.debounces];
      const [admission] = (await client.eval(FLOW_INDEX.lua, 3, ...flowKeys, 'admit', z.runId, se!, cc!, '', '1', '0')) as string[];
      expect(admission).toMatch(/^\d+:1:0$/);
      expect(await holders()).toEqual([z.runId]);
      const w = (await store.createRun(newRun(ids[3]), { onConflict: 'keep', lease })).run;
      expect(w.status).toBe('pending');
      // the next claim takes z with the slot it was admitted to (not a second one), and z's end gives it back
      const claimed = await store.claimRuns(lease, 10, [{ workflow: 'wf', version: 1 }]);
      expect(claimed.map((r) => [r.runId, r.slotHeld])).toEqual([[z.runId, true]]);
      expect(await holders()).toEqual([z.runId]);
      expect((await store.commit(z.runId, claimed[0].leaseToken, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
      expect((await store.claimRun(w.runId, lease))?.slotHeld).toBe(true);
      expect(await holders()).toEqual([w.runId]);
    } finally {
      await store.close();
      await client.quit();
    }
  });

  it('expires an ended run with a ttl, and purge drops its index entries', async () => {
    const client = cluster();
    const store = new RedisStore({ client, keyPrefix: `cairn-ttl-${randomUUID().slice(0, 8)}:`, logger: quiet, ttl: 200 });
    try {
      await store.init();
      const runId = `ttl-{x}-${randomUUID()}`;
      const { run } = await store.createRun({ runId, workflow: 'wf', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: { owner: 'c', leaseMs: 30_000 } });
      const steps = [{ index: 0, step: { name: 'a', status: 'completed' as const, attempts: 1 } }];
      expect((await store.commit(runId, run.leaseToken!, { leaseMs: 30_000, steps, status: 'completed' })).ok).toBe(true);
      expect(await client.pttl(store.keys.run(runId).steps)).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(await store.getRun(runId)).toBeUndefined();
      expect(await store.purge(['completed'], 0)).toBe(0);
      expect(await client.hexists(store.keys.meta, runId)).toBe(0);
      expect(await client.zscore(store.keys.byWorkflow('wf'), runId)).toBeNull();
      expect(await store.listRuns({ limit: 10 })).toEqual([]);
    } finally {
      await store.close();
      await client.quit();
    }
  });

  it('migrates keys of an earlier release (index layout 1) once, with instances starting at once, and reindexes', async () => {
    const prefix = `cairn-layout-${randomUUID().slice(0, 8)}:`;
    const clients = [cluster(), cluster(), cluster()];
    const writer = new RedisStore({ client: clients[0], keyPrefix: prefix, logger: quiet });
    const logs: string[] = [];
    const logger = { ...quiet, log: (m: string) => logs.push(m) };
    const stores = clients.map((client) => new RedisStore({ client, keyPrefix: prefix, logger }));
    try {
      await writer.init();
      const seeded = await seedVersions(writer);
      await writer.close();
      const expected = await dueIndexes(clients[0], writer.keys);
      expect(Object.keys(expected)).toHaveLength(3);
      await toLayout1(clients[0], writer.keys);
      await Promise.all(stores.map((store) => store.init()));
      expect(logs.filter((line) => line.startsWith('Redis store: migrating'))).toHaveLength(1);
      expect(await dueIndexes(clients[0], writer.keys)).toEqual(expected);
      expect(await scanIndexKeys(clients[0], writer.keys.legacyDuePattern)).toEqual([]);
      const got = await stores[1].claimRuns({ owner: 'c', leaseMs: 30_000 }, 3, [{ workflow: seeded.workflow, version: 2 }]);
      expect(got.map((r) => r.runId)).toEqual([seeded.v2]);
      // reindex rebuilds the same indexes on a Cluster (the claimed run is now due at its lease expiry)
      await clients[0].zadd(writer.keys.dueByVersion(seeded.workflow, 7), 0, seeded.v1[0]);
      const before = await dueIndexes(clients[0], writer.keys);
      delete before[writer.keys.dueByVersion(seeded.workflow, 7)];
      expect(await stores[2].reindex()).toBeGreaterThan(0);
      expect(await dueIndexes(clients[0], writer.keys)).toEqual(before);
    } finally {
      await Promise.allSettled(stores.map((store) => store.close()));
      await Promise.allSettled(clients.map((client) => client.quit()));
    }
  });
});
