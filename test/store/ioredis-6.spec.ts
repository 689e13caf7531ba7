/**
 * The Redis store on an app's own ioredis 6 client (the store's own clients, from a URL, are ioredis 5 in this repo):
 * the conformance suite, events through the client's `duplicate()`, and `{ type: 'redis', client }` in the module.
 * ioredis 6 is installed as the `ioredis-6` alias.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis-6';
import { Redis as Redis5 } from 'ioredis';
import { checkDurability, type RedisClient } from '../../src/store/redis/redis.connection.js';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import { Step, Workflow, type StoreEvent, type WorkflowStore } from '../../src/index.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { startRedis, type RedisServer } from '../setup/redis-server.js';
import { testRedis } from '../setup/test-servers.js';
import { useApps } from '../nest/helpers.js';
import { deletePrefix, redisCorruptions } from './redis-test-helpers.js';

const { url, describe: describeRedis } = testRedis();
const quiet = { log() {}, warn() {}, error() {} };
const clients = new WeakMap<WorkflowStore, { client: Redis; prefix: string }>();

/** ioredis 6 speaks RESP3 by default; `replyMapping` decides how RESP3-only replies (maps, doubles) look. */
type Mapping = 'legacy' | 'resp3';

function client(replyMapping: Mapping = 'legacy'): Redis {
  return new Redis(url, { lazyConnect: true, replyMapping });
}

@Workflow('ioredis6-echo')
class Echo {
  @Step() echo(input: string) {
    return `${input}!`;
  }
}

describeRedis('redis store on an ioredis 6 client', () => {
  it('is ioredis 6', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../node_modules/ioredis-6/package.json', import.meta.url), 'utf8')) as { version: string };
    expect(pkg.version).toMatch(/^6\./);
  });

  describe.each<Mapping>(['legacy', 'resp3'])("RESP3, replyMapping '%s'", (mapping) => {
    describeStoreConformance(`redis (ioredis 6 client, RESP3 ${mapping})`, {
      create: async () => {
        const prefix = `cairn-io6-${randomUUID().slice(0, 8)}:`;
        const redis = client(mapping);
        // NOTE: RedisStoreOptions.client is typed with ioredis 5's classes; an ioredis 6 client has the same shape where
        // it matters (the module's `{ type: 'redis', client }` takes it without a cast, see below).
        const store = new RedisStore({ client: redis as never, keyPrefix: prefix, logger: quiet });
        clients.set(store, { client: redis, prefix });
        return store;
      },
      destroy: async (store) => {
        const entry = clients.get(store);
        if (!entry) return;
        await deletePrefix(url, entry.prefix);
        entry.client.disconnect();
      },
      corruptions: redisCorruptions(),
      wakesParentsInSecondWrite: true,
    });

    it('drops the index entries of expired runs (ttl: the sweep reads scores through the RESP3 reply)', async () => {
      const prefix = `cairn-io6-t-${randomUUID().slice(0, 8)}:`;
      const redis = client(mapping);
      const store = new RedisStore({ client: redis as never, keyPrefix: prefix, logger: quiet, ttl: 50 });
      try {
        await store.init();
        const workflow = `wf-${randomUUID()}`;
        const lease = { owner: 'io6', leaseMs: 30_000 };
        for (const runId of ['t1', 't2', 't3']) {
          const { run } = await store.createRun({ runId, workflow, version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease });
          expect((await store.commit(runId, run.leaseToken!, { leaseMs: 30_000, status: 'completed' })).ok).toBe(true);
        }
        await new Promise((r) => setTimeout(r, 150));
        expect(await store.sweepExpired()).toBe(3);
        expect(await store.listRuns({ workflow, limit: 10 })).toEqual([]);
      } finally {
        await store.close();
        await deletePrefix(url, prefix);
        redis.disconnect();
      }
    });

  });

  describe('the durability check', () => {
    let server: RedisServer;
    beforeAll(async () => {
      // a server the check must warn about (the shared test server is configured well)
      server = await startRedis({ extraArgs: ['--appendonly', 'no', '--maxmemory-policy', 'allkeys-lru'] });
    });
    afterAll(async () => {
      await server?.stop();
    });

    it.each<Mapping>(['legacy', 'resp3'])("reads the server configuration as from ioredis 5 (replyMapping '%s')", async (mapping) => {
      const logs = async (c: RedisClient) => {
        const lines: string[] = [];
        const logger = { log: (m: string) => lines.push(`log ${m}`), warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) };
        await checkDurability(c, logger);
        return lines;
      };
      const redis6 = new Redis(server.url, { replyMapping: mapping });
      const redis5 = new Redis5(server.url);
      try {
        const expected = await logs(redis5);
        expect(expected).toEqual([expect.stringMatching(/^warn .*appendonly is "no"/), expect.stringMatching(/^warn .*allkeys-lru/)]);
        expect(await logs(redis6 as unknown as RedisClient)).toEqual(expected);
      } finally {
        redis6.disconnect();
        redis5.disconnect();
      }
    });
  });

  describe('borrowed client', () => {
    let redis: Redis;
    const prefix = `cairn-io6-b-${randomUUID().slice(0, 8)}:`;
    beforeAll(() => {
      redis = client();
    });
    afterAll(async () => {
      await deletePrefix(url, prefix);
      redis.disconnect();
    });

    it('connects a lazy client, delivers events through its duplicate, and leaves it open on close', async () => {
      const store = new RedisStore({ client: redis as never, keyPrefix: prefix, logger: quiet });
      await store.init();
      expect(redis.status).toBe('ready');
      const events: StoreEvent[] = [];
      const unsubscribe = await store.subscribe!((e) => events.push(e));
      await store.createRun({ runId: 'r1', workflow: 'w', version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
      for (let i = 0; i < 100 && !events.some((e) => e.type === 'ready'); i++) await new Promise((r) => setTimeout(r, 20));
      expect(events).toContainEqual(expect.objectContaining({ type: 'ready', runId: 'r1' }));
      expect((await store.getRun('r1'))?.status).toBe('pending');
      await unsubscribe?.();
      await store.close();
      expect(redis.status).toBe('ready');
      expect(await redis.ping()).toBe('PONG');
    });
  });

  describe("{ type: 'redis', client } in the module", () => {
    const apps = useApps();
    let redis: Redis;
    const keyPrefix = `cairn-io6-m-${randomUUID().slice(0, 8)}:`;
    beforeAll(() => {
      redis = client();
    });
    afterAll(async () => {
      await deletePrefix(url, keyPrefix);
      redis.disconnect();
    });

    it('runs a workflow', async () => {
      const { client: workflows } = await apps.boot([Echo], { store: { type: 'redis', client: redis, keyPrefix } });
      expect(await workflows.execute(Echo, 'six', { timeout: '10s' })).toBe('six!');
    });
  });
});
