/**
 * Helpers of the Redis store specs (not a spec file): damage done to one run for the conformance suite's
 * `corruptions` hook, and cleaning up a key prefix.
 */
import { Redis } from 'ioredis';
import type { RunKeys } from '../../src/store/redis/redis.keys.js';
import type { RedisStore } from '../../src/store/redis/redis.store.js';
import type { WorkflowStore } from '../../src/store/workflow-store.interface.js';

/**
 * Damage done to one run by writing its keys directly, as a bug or a hand edit would (the conformance suite checks the
 * run is still read, listed, claimed or parked, and can be failed). Fields the claim script rewrites (`ua`, `le`) and
 * fields that do not make a run unreadable (`iv`) are covered by redis-behaviour.spec.ts.
 */
export function redisCorruptions(): Record<string, (store: WorkflowStore, runId: string) => Promise<void>> {
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
    "a step's heartbeat of the wrong shape": damage((c, k) =>
      c.hset(k.steps, '0', '{"name":"a","status":"running","attempts":0,"heartbeat":{"at":"soon","details":7}}'),
    ),
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

/** Deletes every key of a prefix. */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
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
