import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { Step, Workflow, type WorkflowClient } from '../../src/index.js';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import type { WorkflowStore } from '../../src/store/workflow-store.interface.js';
import { testRedis } from '../setup/test-servers.js';
import { gate, sleep, useApps, type Gate } from '../nest/helpers.js';

/**
 * The engine's claims after runs with a concurrency limit end, on the Redis store: each end asks for a poll (the run
 * may have given its key's slot back), and those requests are coalesced without being lost: ends while a poll is in
 * flight get one more poll right after it, however many they are.
 */
const redis = testRedis();
const quiet = { log() {}, warn() {}, error() {} };

let hold: Gate = gate();

@Workflow({ name: 'RedisFlowKeyed', concurrency: { limit: 1, key: (input: { key: string }) => input.key } })
class Keyed {
  @Step() async work(input: { key: string; wait?: boolean }) {
    if (input.wait) await hold.promise;
    return input.key;
  }
}

/** The store with `claimRuns` counted and, while `slow` is set, answering 300 ms late (the claim itself is done first). */
function slowPolls(store: RedisStore) {
  const state = { slow: false, claimRuns: 0, limits: [] as number[], leased: new Map<string, boolean>(), started: () => {} };
  const proxy = new Proxy(store, {
    get(target, prop) {
      if (prop === 'createRun') {
        return (input: Parameters<RedisStore['createRun']>[0], options: Parameters<RedisStore['createRun']>[1]) => {
          state.leased.set(input.runId, options.lease !== undefined);
          return target.createRun(input, options);
        };
      }
      if (prop === 'claimRuns') {
        return async (...args: Parameters<RedisStore['claimRuns']>) => {
          state.claimRuns++;
          state.limits.push(args[1]);
          const out = await target.claimRuns(...args);
          if (state.slow) {
            state.started();
            await sleep(300);
          }
          return out;
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    store: proxy as WorkflowStore,
    state,
    /** Makes the next polls slow; resolves once one of them has claimed and is still in flight. */
    slowNextPoll(): Promise<void> {
      state.slow = true;
      return new Promise<void>((resolve) => (state.started = resolve));
    },
  };
}

redis.describe('Redis store: the engine claims again when runs with a concurrency limit end', () => {
  const apps = useApps();
  let client: Redis;
  let prefix: string;

  beforeAll(() => {
    client = new Redis(redis.url);
    prefix = `cairn-flow-engine-${randomUUID().slice(0, 8)}:`;
  });

  afterAll(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length) await client.del(...keys);
    await client.quit();
  });

  async function boot(concurrency?: number) {
    const redisStore = new RedisStore({ url: redis.url, keyPrefix: `${prefix}${randomUUID().slice(0, 6)}:`, logger: quiet });
    const slow = slowPolls(redisStore);
    // NOTE: polls at an interval far longer than the test: only the claims after ends can start the waiting run
    const { client: workflows } = await apps.boot([Keyed], { store: slow.store, worker: { pollIntervalMs: 60_000, ...(concurrency ? { concurrency } : {}) } });
    await sleep(100); // the first poll, at start
    return { slow, workflows };
  }

  const start = (workflows: WorkflowClient, input: { key: string; wait?: boolean }) => workflows.start(Keyed, input);

  it('claims the next run of a key whose slot was freed while a poll was in flight, right after that poll', async () => {
    hold = gate();
    const { slow, workflows } = await boot();
    const first = await start(workflows, { key: 'a', wait: true });
    const next = await start(workflows, { key: 'a' });
    await sleep(50);
    expect((await next.describe())!).toMatchObject({ status: 'pending', blockedBy: 'concurrency' });
    // a run of another key ends: a poll (slow); the first run of key a ends while it is in flight
    const polling = slow.slowNextPoll();
    await start(workflows, { key: 'c' });
    await polling;
    hold.open();
    expect(await first.result({ timeout: 2_000 })).toBe('a');
    expect(await next.result({ timeout: 3_000 })).toBe('a');
  });

  it('answers a burst of ends during a poll with one more poll, not one each', async () => {
    hold = gate();
    const { slow, workflows } = await boot();
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => start(workflows, { key: `k${i}`, wait: true })));
    await sleep(50);
    const polling = slow.slowNextPoll();
    const before = slow.state.claimRuns;
    await start(workflows, { key: 'c' });
    await polling;
    hold.open();
    for (const handle of burst) await handle.result({ timeout: 2_000 });
    await sleep(1_000); // the poll in flight, then the one that follows it (each answering 300 ms late)
    expect(slow.state.claimRuns - before).toBe(2);
  });

  it('holds only the slots it claims for while a poll after an end is in flight: a start meanwhile is leased at once', async () => {
    hold = gate();
    const { slow, workflows } = await boot(4);
    const waiting = await start(workflows, { key: 'w', wait: true });
    const polling = slow.slowNextPoll();
    await start(workflows, { key: 'c' });
    await polling;
    // the poll asked for by c's end claims for the one slot c gave back (not for the 3 free here)
    expect(slow.state.limits.at(-1)).toBe(1);
    const meanwhile = await start(workflows, { key: 'd' });
    expect(slow.state.leased.get(meanwhile.runId)).toBe(true);
    expect(await meanwhile.result({ timeout: 2_000 })).toBe('d');
    hold.open();
    expect(await waiting.result({ timeout: 2_000 })).toBe('w');
  });
});
