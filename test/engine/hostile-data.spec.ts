/**
 * Regression tests of the adversarial trial (bugs issue): damaged stored data, bursts, replaced run ids, hostile errors
 * and directive arguments. Each runs on every store the behaviour concerns: memory, PostgreSQL and Redis.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import {
  CorruptRunError,
  Flow,
  InvalidArgumentError,
  RetryPolicy,
  Step,
  Workflow,
  WorkflowFailedError,
  type RunPatch,
  type StepContext,
  type WorkflowStore,
} from '../../src/index.js';
import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import { dropSchema, randomSchemaName } from '../setup/postgres-server.js';
import { testPostgres, testRedis } from '../setup/test-servers.js';
import { eventually, rejection, SharedMemoryStore, sleep, useApps } from '../nest/helpers.js';
import { deletePrefix } from '../store/redis-test-helpers.js';

const pg = testPostgres();
const redis = testRedis();
const quiet = { log() {}, warn() {}, error() {} };

/** A store under test, shared by the apps of a test (closing an app leaves it open). */
interface Target {
  name: string;
  describe: typeof describe | typeof describe.skip;
  create(): Promise<WorkflowStore>;
  destroy(store: WorkflowStore): Promise<void>;
}

function unclosable(store: WorkflowStore): WorkflowStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'close') return async () => undefined;
      if (prop === 'init') return async () => undefined;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const targets: Target[] = [
  {
    name: 'memory',
    describe,
    create: async () => new SharedMemoryStore(),
    destroy: async () => undefined,
  },
  {
    name: 'postgres',
    describe: pg.describe,
    create: async () => new PostgresStore({ url: pg.url, schema: randomSchemaName(), logger: quiet }),
    destroy: async (store) => {
      await store.close();
      await dropSchema(pg.url, (store as PostgresStore).names.schema);
    },
  },
  {
    name: 'redis',
    describe: redis.describe,
    create: async () => new RedisStore({ url: redis.url, keyPrefix: `cairn-hostile-${randomUUID().slice(0, 8)}:`, logger: quiet }),
    destroy: async (store) => {
      const prefix = (store as unknown as { options: { keyPrefix: string } }).options?.keyPrefix;
      await store.close();
      if (prefix) await deletePrefix(redis.url, prefix);
    },
  },
];

let calls: { step: string; key: string; input: unknown }[] = [];
let released = false;

@Workflow('hostile-simple')
class Simple {
  @Step() first(input: unknown, ctx: StepContext) {
    calls.push({ step: 'first', key: ctx.idempotencyKey, input });
    return { seen: input };
  }
  @Step() second(prev: unknown, ctx: StepContext) {
    calls.push({ step: 'second', key: ctx.idempotencyKey, input: prev });
    return prev;
  }
}

@Workflow('hostile-gated')
class Gated {
  @Step() async charge(input: unknown, ctx: StepContext) {
    calls.push({ step: 'charge', key: ctx.idempotencyKey, input });
    while (!released && !ctx.signal.aborted) await sleep(5);
    return input;
  }
  @Step() ship(prev: unknown, ctx: StepContext) {
    calls.push({ step: 'ship', key: ctx.idempotencyKey, input: prev });
    return prev;
  }
}

@Workflow('hostile-errors')
class Errors {
  @Step({ retry: RetryPolicy.fixed(2, 1) }) fail(kind: string, ctx: StepContext) {
    calls.push({ step: 'fail', key: ctx.idempotencyKey, input: kind });
    if (kind === 'nul') throw new Error('bad\u0000byte \ud800 lone');
    if (kind === 'huge') throw new Error('x'.repeat(10 * 1024 * 1024));
    if (kind === 'getter') {
      const error = new Error('hidden');
      Object.defineProperty(error, 'message', {
        get() {
          throw new Error('the getter throws');
        },
      });
      Object.defineProperty(error, 'name', {
        get() {
          throw new Error('the getter throws');
        },
      });
      throw error;
    }
    if (kind === 'wait-nul') return Flow.waitForSignal('a\u0000b');
    if (kind === 'wait-long') return Flow.waitForSignal('s'.repeat(256));
    if (kind === 'wait-empty') return Flow.waitForSignal('');
    return kind;
  }
}

@Workflow('hostile-sleeper')
class Sleeper {
  @Step() nap(at: string) {
    return Flow.sleep(new Date(at), 'slept');
  }
  @Step() after(prev: string) {
    return `${prev}!`;
  }
}

const WORKFLOWS = [Simple, Gated, Errors, Sleeper];

for (const target of targets) {
  target.describe(`hostile data and load: ${target.name}`, () => {
    let shared: WorkflowStore;
    const apps = useApps();

    beforeAll(async () => {
      shared = await target.create();
      await shared.init();
    });
    afterAll(async () => {
      await target.destroy(shared);
    });
    beforeEach(() => {
      calls = [];
      released = false;
    });
    afterEach(() => {
      released = true;
    });

    const boot = (worker: { enabled?: boolean; concurrency?: number; pollIntervalMs?: number; leaseMs?: number } = {}, store: WorkflowStore = shared) =>
      apps.boot(WORKFLOWS, { store: unclosable(store), worker });

    /** Creates a pending run directly in the store, with whatever (damaged) values the test wants. */
    async function plant(runId: string, over: { input?: string; state?: string; workflow?: string } = {}) {
      await shared.createRun(
        {
          runId,
          workflow: over.workflow ?? 'hostile-simple',
          version: 1,
          input: over.input ?? '"fine"',
          state: over.state ?? JSON.stringify({ v: 1, cursor: 'first', entry: 0, tr: 0, rec: 0, base: 0 }),
          currentStep: 'first',
        },
        { onConflict: 'keep' },
      );
    }

    describe('a run whose stored data cannot be decoded', () => {
      it.each([
        ['state that is not JSON', { state: '{not json' }, /engine state/],
        ['state of an unknown version', { state: '{"v":2}' }, /engine state/],
        ['input that is not JSON', { input: '{bad' }, /the input/],
      ])('fails alone with CorruptRunError (%s); the rest of its claim batch completes', async (_what, over, detail) => {
        const poison = `POISON-${randomUUID()}`;
        await plant(poison, over);
        const healthy: string[] = [];
        for (let i = 0; i < 40; i++) {
          const id = `ok-${randomUUID()}`;
          await plant(id);
          healthy.push(id);
        }
        const unhandled: unknown[] = [];
        const onUnhandled = (reason: unknown) => unhandled.push(reason);
        process.on('unhandledRejection', onUnhandled);
        try {
          const { client } = await boot({ concurrency: 100, leaseMs: 5_000 });
          await eventually(async () => (await client.describe(poison))?.status === 'failed', 10_000);
          for (const id of healthy) expect(await client.getHandle(id).result({ timeout: 10_000 })).toEqual({ seen: 'fine' });
          const info = (await client.describe(poison))!;
          expect(info.error).toMatchObject({ name: 'CorruptRunError' });
          expect(info.error!.message).toContain(poison);
          expect(info.error!.message).toMatch(detail);
          expect(calls.filter((c) => c.input === undefined)).toEqual([]);
          const failedPage = await client.list({ workflow: 'hostile-simple', status: 'failed', limit: 1000 });
          expect(failedPage.runs.map((r) => r.runId)).toContain(poison);
          await rejection(client.getHandle(poison).result(), WorkflowFailedError);
          expect(unhandled).toEqual([]);
        } finally {
          process.off('unhandledRejection', onUnhandled);
        }
      });

      it('is shown by describe() and list() instead of throwing, with its error saying which value is damaged', async () => {
        const { client } = await boot({ enabled: false });
        const id = `bad-input-${randomUUID()}`;
        await plant(id, { input: '{bad' });
        const info = (await client.describe(id))!;
        expect(info.status).toBe('pending');
        expect(info.input).toBeUndefined();
        expect(info.error).toMatchObject({ name: 'CorruptRunError' });
        expect(info.error!.message).toMatch(/the input/);
        const page = await client.list({ workflow: 'hostile-simple', limit: 1000 });
        expect(page.runs.find((r) => r.runId === id)?.error?.name).toBe('CorruptRunError');
      });

      it('does not take the process down when a control call makes this instance claim it', async () => {
        const { client: control } = await boot({ enabled: false });
        const id = `paused-${randomUUID()}`;
        await plant(id, { state: '{not json' });
        await control.pause(id);
        expect((await control.describe(id))!.status).toBe('paused');
        const unhandled: unknown[] = [];
        const onUnhandled = (reason: unknown) => unhandled.push(reason);
        process.on('unhandledRejection', onUnhandled);
        try {
          const { client } = await boot({ pollIntervalMs: 60_000 });
          await client.resume(id);
          await eventually(async () => (await client.describe(id))?.status === 'failed', 10_000);
          expect((await client.describe(id))!.error?.name).toBe('CorruptRunError');
          expect(unhandled).toEqual([]);
        } finally {
          process.off('unhandledRejection', onUnhandled);
        }
      });

      it('fails at once when a completed step output is damaged, without running a body or looping', async () => {
        const { client } = await boot({ leaseMs: 5_000 });
        const id = `bad-output-${randomUUID()}`;
        await shared.createRun(
          {
            runId: id,
            workflow: 'hostile-simple',
            version: 1,
            input: '"fine"',
            state: JSON.stringify({ v: 1, cursor: 'second', entry: 1, tr: 1, rec: 0, base: 0 }),
            currentStep: 'second',
            steps: [{ name: 'first', status: 'completed', attempts: 1, output: '{"broken' }],
          },
          { onConflict: 'keep' },
        );
        await eventually(async () => (await client.describe(id))?.status === 'failed', 10_000);
        const info = (await client.describe(id))!;
        expect(info.error!.message).toMatch(/output of step "first"/);
        expect(calls).toEqual([]);
      });

      it('is failed by the engine when the store reports a damaged field', async () => {
        const id = `store-damaged-${randomUUID()}`;
        await plant(id);
        const marking = new Proxy(shared, {
          get(t, prop) {
            const value = Reflect.get(t, prop, t) as unknown;
            if (prop === 'claimRuns' || prop === 'claimRun') {
              return async (...args: unknown[]) => {
                const res = await (value as (...a: unknown[]) => Promise<unknown>).apply(t, args);
                const mark = (r: { runId: string; corrupt?: string } | undefined) =>
                  r && r.runId === id ? { ...r, corrupt: `field x of run "${id}": damaged` } : r;
                return Array.isArray(res) ? res.map(mark) : mark(res as { runId: string });
              };
            }
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
          },
        });
        const { client } = await boot({}, marking);
        await eventually(async () => (await client.describe(id))?.status === 'failed', 10_000);
        expect((await client.describe(id))!.error!.message).toMatch(/field x/);
        expect(calls.filter((c) => c.key.startsWith(id))).toEqual([]);
      });
    });

    it('drains a burst of pending runs at once, not one batch per poll interval', async () => {
      const { client: starter } = await boot({ enabled: false });
      const ids: string[] = [];
      for (let i = 0; i < 120; i++) ids.push((await starter.start(Simple, i)).runId);
      // NOTE: the poll interval is far beyond the test's time: only claiming again as slots free can drain the burst.
      const { client } = await boot({ concurrency: 10, pollIntervalMs: 600_000 });
      for (const id of ids) await client.getHandle(id).result({ timeout: 20_000 });
    }, 30_000);

    describe('terminate-existing', () => {
      it('gives the replacement its own idempotency keys', async () => {
        const { client } = await boot();
        const id = `replaced-${randomUUID()}`;
        await client.start(Gated, 'old', { id });
        await eventually(() => calls.some((c) => c.step === 'charge'));
        await client.start(Gated, 'new', { id, conflictPolicy: 'terminate-existing' });
        released = true;
        expect(await client.getHandle(id).result({ timeout: 10_000 })).toBe('new');
        const keys = calls.map((c) => c.key);
        expect(keys[0]).toBe(`${id}:charge`);
        expect(keys).toContain(`${id}:charge~2`);
        expect(keys).toContain(`${id}:ship~2`);
        expect(keys).not.toContain(`${id}:ship`);
      });

      it('serialises a flood of concurrent replacements: none errors, and the survivor runs at once', async () => {
        const { client } = await boot({ leaseMs: 60_000 });
        released = true;
        const id = `flood-${randomUUID()}`;
        const results = await Promise.allSettled(
          Array.from({ length: 150 }, (_, i) => client.start(Gated, i, { id, conflictPolicy: 'terminate-existing' })),
        );
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
        // NOTE: the lease is 60 s: finishing well before it means the survivor was never left without an executor.
        const output = await client.getHandle(id).result({ timeout: 15_000 });
        const info = (await client.describe(id))!;
        expect(info.status).toBe('completed');
        expect(info.input).toBe(output);
        const keys = new Set(calls.filter((c) => c.step === 'ship').map((c) => c.key));
        expect(keys.size).toBe(calls.filter((c) => c.step === 'ship').length);
      }, 30_000);
    });

    it('stores Flow.sleep(date) as that instant, not converted through the worker clock', async () => {
      const dues: unknown[] = [];
      const recording = new Proxy(shared, {
        get(t, prop) {
          const value = Reflect.get(t, prop, t) as unknown;
          if (prop === 'commit') {
            return (runId: string, token: string, patch: RunPatch) => {
              if (patch.due) dues.push(patch.due);
              return (value as WorkflowStore['commit']).call(t, runId, token, patch);
            };
          }
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
        },
      });
      const { client } = await boot({}, recording);
      const at = new Date(Date.now() + 300);
      const handle = await client.start(Sleeper, at.toISOString());
      expect(await handle.result({ timeout: 10_000 })).toBe('slept!');
      expect(dues).toEqual([{ at }]);
    });

    describe('hostile errors and directive arguments', () => {
      it('stores an error message with NUL and lone surrogates, failing after the step\'s own attempts', async () => {
        const { client } = await boot();
        const handle = await client.start(Errors, 'nul');
        const error = await rejection(handle.result({ timeout: 10_000 }), WorkflowFailedError);
        expect(error.cause.message).toBe('bad\uFFFDbyte \uFFFD lone');
        expect(calls).toHaveLength(2);
        const info = await handle.describe();
        expect(info.steps[0]).toMatchObject({ status: 'failed', attempts: 2, error: 'Error: bad\uFFFDbyte \uFFFD lone' });
      });

      it('caps stored error text at 8 KB with a marker', async () => {
        const { client } = await boot();
        const handle = await client.start(Errors, 'huge');
        const error = await rejection(handle.result({ timeout: 20_000 }), WorkflowFailedError);
        expect(error.cause.message.length).toBeLessThanOrEqual(8_192);
        expect(error.cause.message.endsWith('… [truncated]')).toBe(true);
        const info = await handle.describe();
        expect(info.steps[0].error!.length).toBeLessThanOrEqual(8_192);
        expect(calls).toHaveLength(2);
      }, 30_000);

      it('describes an error whose getters throw, failing after the step\'s own attempts', async () => {
        const { client } = await boot();
        const handle = await client.start(Errors, 'getter');
        const error = await rejection(handle.result({ timeout: 10_000 }), WorkflowFailedError);
        expect(error.cause).toMatchObject({ name: 'Error', message: '(the message could not be read: its getter threw)' });
        expect(calls).toHaveLength(2);
      });

      it.each(['wait-nul', 'wait-long', 'wait-empty'])('fails a step that returns Flow.waitForSignal with a bad name (%s)', async (kind) => {
        const { client } = await boot();
        const handle = await client.start(Errors, kind);
        const error = await rejection(handle.result({ timeout: 10_000 }), WorkflowFailedError);
        expect(error.cause.name).toBe(InvalidArgumentError.name);
        expect(error.cause.message).toMatch(/signal name/);
        expect(calls).toHaveLength(1);
      });
    });
  });
}

describe('CorruptRunError', () => {
  it('carries a stable code and names the run', () => {
    const error = new CorruptRunError('r1', 'the input (Unexpected token)');
    expect(error.code).toBe('CAIRN_CORRUPT_RUN');
    expect(error.message).toContain('"r1"');
    expect(error.message).toContain('retry("r1")');
  });
});
