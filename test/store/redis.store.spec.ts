import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RunKeys } from '../../src/store/redis/redis.keys.js';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import type { WorkflowStore } from '../../src/store/workflow-store.interface.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { testRedis } from '../setup/test-servers.js';

const redis = testRedis();
const url = () => redis.url;

/** Deletes every key of a prefix. */
async function deletePrefix(prefix: string): Promise<void> {
  const client = new Redis(url(), { lazyConnect: true, maxRetriesPerRequest: 2 });
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

/**
 * Damage done to one run by writing its keys directly, as a bug or a hand edit would (the conformance suite checks the
 * run is still read, listed, claimed or parked, and can be failed). Fields the claim script rewrites (`ua`, `le`) and
 * fields that do not make a run unreadable (`iv`) are covered by redis-behaviour.spec.ts.
 */
function redisCorruptions(): Record<string, (store: WorkflowStore, runId: string) => Promise<void>> {
  const damage = (apply: (client: RedisStore['client'], keys: RunKeys) => Promise<unknown>) => async (store: WorkflowStore, runId: string) => {
    const redisStore = store as RedisStore;
    await apply(redisStore.client, redisStore.keys.run(runId));
  };
  return {
    'err garbage': damage((c, k) => c.hset(k.run, 'err', '{"name":"E","message":')),
    'err not an error record': damage((c, k) => c.hset(k.run, 'err', '[1,2]')),
    "a step's JSON garbage": damage((c, k) => c.hset(k.steps, '0', 'not json {')),
    'a step of the wrong shape': damage((c, k) => c.hset(k.steps, '0', '{"name":7,"status":"weird","attempts":-1}')),
    'a step index garbage': damage((c, k) => c.hset(k.steps, 'x', '{}')),
    'ca abc': damage((c, k) => c.hset(k.run, 'ca', 'abc')),
    'st bogus': damage((c, k) => c.hset(k.run, 'st', 'bogus')),
    'st missing': damage((c, k) => c.hdel(k.run, 'st')),
    'due abc': damage((c, k) => c.hset(k.run, 'due', 'abc')),
    'due nan': damage((c, k) => c.hset(k.run, 'due', 'nan')),
    'gen abc': damage((c, k) => c.hset(k.run, 'gen', 'abc')),
    'ver abc': damage((c, k) => c.hset(k.run, 'ver', 'abc')),
    'pr 7': damage((c, k) => c.hset(k.run, 'pr', '7')),
    'cr x': damage((c, k) => c.hset(k.run, 'cr', 'x')),
    'rs bogus': damage((c, k) => c.hset(k.run, 'rs', 'bogus')),
    'wu abc': damage((c, k) => c.hset(k.run, 'wu', 'abc')),
    'fa abc': damage((c, k) => c.hset(k.run, 'fa', 'abc')),
    'id of another run': damage((c, k) => c.hset(k.run, 'id', 'someone-else')),
    'input missing': damage((c, k) => c.hdel(k.run, 'in')),
  };
}

const prefixes = new WeakMap<object, string>();

redis.describe('redis', () => {
  describeStoreConformance('redis', {
    create: async () => {
      const keyPrefix = `cairn-test-${randomUUID().slice(0, 8)}:`;
      const store = new RedisStore({ url: url(), keyPrefix, logger: { log() {}, warn() {}, error() {} } });
      prefixes.set(store, keyPrefix);
      return store;
    },
    destroy: async (store) => {
      const prefix = prefixes.get(store);
      if (prefix) await deletePrefix(prefix);
    },
    corruptions: redisCorruptions(),
  });
});
