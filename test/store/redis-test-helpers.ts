/**
 * Helpers of the Redis store specs (not a spec file): damage done to one run for the conformance suite's
 * `corruptions` hook, cleaning up a key prefix, writing the key layout of an earlier release, and a client that records
 * the commands it sends.
 */
import { Redis, type Command } from 'ioredis';
import { ALL_SCRIPTS } from '../../src/store/redis/redis.scripts.js';
import type { RedisKeys, RunKeys } from '../../src/store/redis/redis.keys.js';
import { scanIndexKeys } from '../../src/store/redis/redis.layout.js';
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

/** Every (workflow, version) due index of a store: key → `member score` entries, sorted. */
export async function dueIndexes(client: RedisStore['client'], keys: RedisKeys): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const key of (await scanIndexKeys(client, keys.dueByVersionPattern)).sort()) {
    const flat = (await client.zrange(key, 0, -1, 'WITHSCORES')) as string[];
    const entries: string[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) entries.push(`${flat[i]} ${flat[i + 1]}`);
    if (entries.length > 0) out[key] = entries.sort();
  }
  return out;
}

/**
 * Turns a store's keys into those an earlier release wrote (index layout 1, see `redis.layout.ts`): one due index per
 * workflow (`:dw:<wf>`) instead of one per (workflow, version), and no layout key. Everything else is the same in both.
 */
export async function toLayout1(client: RedisStore['client'], keys: RedisKeys): Promise<void> {
  for (const key of await scanIndexKeys(client, keys.dueByVersionPattern)) {
    const pair = keys.parseDueByVersion(key);
    if (!pair) continue;
    const flat = (await client.zrange(key, 0, -1, 'WITHSCORES')) as string[];
    const args: string[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) args.push(flat[i + 1], flat[i]);
    if (args.length > 0) await client.zadd(keys.legacyDueByWorkflow(pair.workflow), ...args);
    await client.del(key);
  }
  await client.del(keys.layout, keys.layoutLock);
}

/** Runs of two versions of a workflow (and one of another workflow) in every state the due indexes know. */
export interface SeededVersions {
  workflow: string;
  other: string;
  /** Due runs of version 1 (12, created first). */
  v1: string[];
  /** The due run of version 2 (created after them). */
  v2: string;
  /** A version 1 run sleeping for a minute. */
  sleeping: string;
  /** A version 2 run leased to `owner`. */
  leased: string;
  owner: { owner: string; leaseMs: number };
  /** A due run of version 3 of the other workflow. */
  otherRun: string;
}

/** Writes {@link SeededVersions} (plus an ended version 1 run) through the store. */
export async function seedVersions(store: Pick<WorkflowStore, 'createRun' | 'commit' | 'listRuns'>): Promise<SeededVersions> {
  const tag = Math.random().toString(36).slice(2, 8);
  const workflow = `wf-${tag}`;
  const other = `other-${tag}`;
  const owner = { owner: `seed-${tag}`, leaseMs: 30_000 };
  const create = (runId: string, wf: string, version: number, lease?: { owner: string; leaseMs: number }) =>
    store.createRun({ runId, workflow: wf, version, input: '1', state: '{}' }, { onConflict: 'keep', lease });
  const v1 = Array.from({ length: 12 }, (_, i) => `${workflow}-v1-${i}`);
  for (const runId of v1) await create(runId, workflow, 1);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const v2 = `${workflow}-v2`;
  await create(v2, workflow, 2);
  const sleeping = `${workflow}-sleeping`;
  const slept = (await create(sleeping, workflow, 1, owner)).run;
  await store.commit(sleeping, slept.leaseToken!, { leaseMs: 30_000, status: 'sleeping', due: { delayMs: 60_000 }, release: true });
  const leased = `${workflow}-leased`;
  await create(leased, workflow, 2, owner);
  const ended = (await create(`${workflow}-ended`, workflow, 1, owner)).run;
  await store.commit(ended.runId, ended.leaseToken!, { leaseMs: 30_000, status: 'completed', output: '1' });
  const otherRun = `${other}-v3`;
  await create(otherRun, other, 3);
  await store.listRuns({ limit: 1 }); // applies the queued index records
  return { workflow, other, v1, v2, sleeping, leased, owner, otherRun };
}

/**
 * A Redis client that records every command it sends, and `sent(action)`: the commands `action` sent, by name, with
 * scripts by their name (`script:<name>`). Waits 30 ms before and after, so index updates in flight are applied.
 */
export function recordingClient(url: string): { client: Redis; sent(action: () => Promise<unknown>): Promise<string[]> } {
  const scriptName = new Map(ALL_SCRIPTS.map((s) => [s.sha, s.name]));
  const commands: { name: string; args: string[] }[] = [];
  const client = new Redis(url);
  const original = client.sendCommand.bind(client) as (command: Command, stream?: unknown) => unknown;
  client.sendCommand = ((command: Command, stream?: unknown) => {
    commands.push({ name: command.name, args: command.args.map(String) });
    return original(command, stream);
  }) as typeof client.sendCommand;
  const pause = () => new Promise((resolve) => setTimeout(resolve, 30));
  return {
    client,
    async sent(action) {
      await pause();
      const from = commands.length;
      await action();
      await pause();
      return commands.slice(from).map((c) => (c.name === 'evalsha' ? `script:${scriptName.get(c.args[0])}` : c.name));
    },
  };
}
