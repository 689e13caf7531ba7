import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  ChildWorkflowFailedError,
  Flow,
  InvalidArgumentError,
  NonRetryableError,
  Step,
  UnknownWorkflowError,
  Workflow,
  WorkflowFailedError,
  type ChildResult,
  type StepContext,
} from '../../src/index.js';
import { randomUUID } from 'node:crypto';
import type { DurableExecutionOptions } from '../../src/index.js';
import { randomSchemaName } from '../setup/postgres-server.js';
import { testPostgres, testRedis } from '../setup/test-servers.js';
import { eventually, gate, rejection, sleep, useApps, type Gate } from './helpers.js';

let log: string[] = [];
let live = 0;
let maxLive = 0;
let holds: Gate = gate();
let undone: string[] = [];

@Workflow({ name: 'square' })
class Square {
  @Step() async compute(input: { n: number; hold?: boolean; fail?: boolean; ms?: number }) {
    live++;
    maxLive = Math.max(maxLive, live);
    try {
      log.push(`square ${input.n}`);
      if (input.hold) await holds.promise;
      if (input.ms) await sleep(input.ms);
      if (input.fail) throw new NonRetryableError(`no square for ${input.n}`);
      return input.n * input.n;
    } finally {
      live--;
    }
  }
}

@Workflow({ name: 'slow-child' })
class SlowChild {
  @Step({ compensate: 'undo' }) async prepare(input: { n: number }) {
    return input.n;
  }
  @Step() async hold(n: number, ctx: StepContext) {
    log.push(`slow ${n} waiting`);
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) return resolve();
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
      holds.promise.then(resolve, resolve);
    });
    return n;
  }
  async undo(n: number) {
    undone.push(`slow ${n}`);
  }
}

@Workflow({ name: 'one-child' })
class OneChild {
  @Step() spawn(input: { n: number; id?: string }) {
    return Flow.child(Square, { n: input.n }, input.id ? { id: input.id } : {});
  }
  @Step() after(squared: number) {
    return { squared };
  }
}

@Workflow({ name: 'fan-out' })
class FanOut {
  @Step({ compensate: 'undo' }) begin(input: { ns: number[]; fail?: number; concurrency?: number; hold?: boolean; ms?: number }) {
    return input;
  }
  @Step() spread(input: { ns: number[]; fail?: number; concurrency?: number; hold?: boolean; ms?: number }) {
    return Flow.all(
      input.ns.map((n) => Flow.child('square', { n, fail: n === input.fail, hold: input.hold, ms: input.ms })),
      input.concurrency ? { concurrency: input.concurrency } : {},
    );
  }
  @Step() sum(squares: number[]) {
    return { squares, total: squares.reduce((a, b) => a + b, 0) };
  }
  undo() {
    undone.push('fan-out begin');
  }
}

@Workflow({ name: 'settle' })
class Settle {
  @Step() spread(input: { ns: number[]; fail: number[] }) {
    return Flow.allSettled(input.ns.map((n) => Flow.child(Square, { n, fail: input.fail.includes(n) })));
  }
  @Step() report(results: ChildResult<number>[]) {
    return results;
  }
}

@Workflow({ name: 'sibling-cancel' })
class SiblingCancel {
  @Step() spread() {
    return Flow.all([Flow.child(SlowChild, { n: 1 }), Flow.child(Square, { n: 2, fail: true, ms: 50 })]);
  }
}

@Workflow({ name: 'parent-of-slow' })
class ParentOfSlow {
  @Step() spread() {
    return Flow.all([Flow.child(SlowChild, { n: 1 }), Flow.child(SlowChild, { n: 2 }, { onParentEnd: 'abandon' })]);
  }
}

@Workflow({ name: 'bad-children' })
class BadChildren {
  @Step() spread(input: { kind: string }) {
    if (input.kind === 'unknown') return Flow.child('no-such-workflow', {});
    if (input.kind === 'concurrency') return Flow.all([Flow.child(Square, { n: 1 })], { concurrency: 0 });
    if (input.kind === 'duplicate') return Flow.all([Flow.child(Square, { n: 1 }, { id: 'x' }), Flow.child(Square, { n: 2 }, { id: 'x' })]);
    if (input.kind === 'too-many') return Flow.all(Array.from({ length: 10_001 }, (_, n) => Flow.child(Square, { n })));
    return Flow.all([{ kind: 'child' } as never]);
  }
}

@Workflow({ name: 'empty-all' })
class EmptyAll {
  @Step() spread() {
    return Flow.all([]);
  }
  @Step() after(values: unknown[]) {
    return { values };
  }
}

@Workflow({ name: 'any-signal' })
class AnySignal {
  @Step() wait(input: { timeout?: number }) {
    return Flow.waitForAny(['approved', 'rejected'], input.timeout ? { timeout: input.timeout, value: 'asked' } : { value: 'asked' });
  }
  @Step() decide(got: unknown) {
    return got;
  }
}

@Workflow({ name: 'counter' })
class Counter {
  @Step() tick(input: { n: number; until: number }, ctx: StepContext) {
    log.push(`tick ${input.n} ${ctx.idempotencyKey}`);
    if (input.n < input.until) return Flow.continueAsNew({ n: input.n + 1, until: input.until });
    return Flow.complete({ done: input.n });
  }
}

@Workflow({ name: 'signal-collector' })
class SignalCollector {
  @Step() first() {
    return Flow.waitForSignal('item');
  }
  @Step() second(a: unknown) {
    log.push(`got ${JSON.stringify(a)}`);
    return Flow.waitForSignal('item', { timeout: 300 });
  }
  @Step() third(b: unknown) {
    log.push(`got ${JSON.stringify(b)}`);
    return b;
  }
}

let broken = new Set<number>();

@Workflow({ name: 'flaky-square' })
class FlakySquare {
  @Step() compute(input: { n: number }) {
    if (broken.has(input.n)) throw new NonRetryableError(`square ${input.n} is broken`);
    return input.n * input.n;
  }
}

@Workflow({ name: 'flaky-fan' })
class FlakyFan {
  @Step() spread(input: { ns: number[] }) {
    return Flow.all(input.ns.map((n) => Flow.child(FlakySquare, { n })));
  }
  @Step() sum(squares: number[]) {
    return squares;
  }
}

const ALL = [FlakySquare, FlakyFan, Square, SlowChild, OneChild, FanOut, Settle, SiblingCancel, ParentOfSlow, BadChildren, EmptyAll, AnySignal, Counter, SignalCollector];

/** Waits until `check` stops throwing. */
function until(check: () => unknown): Promise<unknown> {
  return eventually(async () => {
    await check();
    return true;
  });
}

beforeEach(() => {
  log = [];
  live = 0;
  maxLive = 0;
  holds = gate();
  undone = [];
  broken = new Set();
});


/**
 * The same behaviour on every store: the engine's composition code is one, but each store keeps the children's
 * bookkeeping its own way (one transaction on Postgres, two slots and a recheck on Redis).
 */
function compositionSuite(on: () => DurableExecutionOptions) {
  describe('child runs', () => {
    const apps = useApps();

    it('Flow.child: the step output is the child output, the child is listed under its parent with a deterministic id', async () => {
      const { client } = await apps.boot(ALL, on());
      const handle = await client.start('one-child', { n: 7 }, { id: 'p1' });
      expect(await handle.result({ timeout: 5_000 })).toEqual({ squared: 49 });
      const parent = (await client.describe('p1'))!;
      expect(parent.steps.map((s) => [s.name, s.status, s.output])).toEqual([
        ['spawn', 'completed', 49],
        ['after', 'completed', { squared: 49 }],
      ]);
      const children = await client.list({ parentRunId: 'p1' });
      expect(children.runs.map((r) => [r.runId, r.workflow, r.status, r.output, r.parentRunId])).toEqual([['p1:spawn:0', 'square', 'completed', 49, 'p1']]);
      expect(parent.parentRunId).toBeUndefined();
      expect(parent.generation).toBe(1);
    });

    it('an explicit id adopts an existing run instead of starting another', async () => {
      const { client } = await apps.boot(ALL, on());
      await (await client.start(Square, { n: 3 }, { id: 'existing' })).result({ timeout: 5_000 });
      log = [];
      const handle = await client.start(OneChild, { n: 5, id: 'existing' });
      expect(await handle.result({ timeout: 5_000 })).toEqual({ squared: 9 });
      expect(log).toEqual([]);
    });

    it('Flow.all: outputs in order; concurrency bounds the live children', async () => {
      const { client } = await apps.boot(ALL, { ...on(), worker: { concurrency: 20 } });
      const ns = Array.from({ length: 12 }, (_, i) => i + 1);
      const handle = await client.start(FanOut, { ns, concurrency: 3, ms: 20 }, { id: 'fan' });
      const result = (await handle.result({ timeout: 10_000 })) as { squares: number[]; total: number };
      expect(result.squares).toEqual(ns.map((n) => n * n));
      expect(maxLive).toBeLessThanOrEqual(3);
      expect(maxLive).toBeGreaterThan(1);
      const page = await client.list({ parentRunId: 'fan', limit: 5 });
      expect(page.runs).toHaveLength(5);
      const rest = await client.list({ parentRunId: 'fan', limit: 50, cursor: page.cursor });
      expect(page.runs.length + rest.runs.length).toBe(12);
      expect(log.filter((l) => l.startsWith('square')).sort()).toEqual(ns.map((n) => `square ${n}`).sort());
    });

    it('Flow.all([]) completes the step with an empty array', async () => {
      const { client } = await apps.boot(ALL, on());
      expect(await (await client.start(EmptyAll, {})).result({ timeout: 5_000 })).toEqual({ values: [] });
    });

    it('Flow.allSettled: ChildResult per child, never failing the step', async () => {
      const { client } = await apps.boot(ALL, on());
      const handle = await client.start(Settle, { ns: [1, 2, 3], fail: [2] }, { id: 'settle' });
      const results = (await handle.result({ timeout: 5_000 })) as ChildResult<number>[];
      expect(results).toEqual([
        { runId: 'settle:spread:0', status: 'completed', output: 1 },
        { runId: 'settle:spread:1', status: 'failed', error: { name: 'NonRetryableError', message: 'no square for 2' } },
        { runId: 'settle:spread:2', status: 'completed', output: 9 },
      ]);
    });

    it('a failed child fails the parent step with ChildWorkflowFailedError (not retried) and the parent compensates', async () => {
      const { client } = await apps.boot(ALL, on());
      const handle = await client.start(FanOut, { ns: [1, 2, 3], fail: 2 }, { id: 'fails' });
      const error = await rejection(handle.result({ timeout: 5_000 }), WorkflowFailedError);
      expect(error.status).toBe('compensated');
      expect(error.cause).toMatchObject({ name: 'ChildWorkflowFailedError', step: 'spread' });
      expect(error.cause.message).toContain('Child run "fails:spread:1" ended failed: NonRetryableError: no square for 2');
      const parent = (await client.describe('fails'))!;
      expect(parent.steps.find((s) => s.name === 'spread')).toMatchObject({ status: 'failed', attempts: 1 });
      expect(undone).toEqual(['fan-out begin']);
    });

    it('a parent paused while its children run joins them once resumed', async () => {
      const { client } = await apps.boot(ALL, on());
      const handle = await client.start(FanOut, { ns: [1, 2, 3], hold: true }, { id: 'paused-parent' });
      await until(async () => expect((await client.describe('paused-parent'))!.status).toBe('waiting'));
      await client.pause('paused-parent');
      holds.open();
      await until(async () => {
        const { runs } = await client.list({ parentRunId: 'paused-parent' });
        expect(runs.map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
      });
      await sleep(100);
      expect((await client.describe('paused-parent'))!.status).toBe('paused');
      await client.resume('paused-parent');
      expect(await handle.result({ timeout: 5_000 })).toEqual({ squares: [1, 4, 9], total: 14 });
    });

    it('a parent failed on a child is recovered by retrying the child, then the parent', async () => {
      const { client } = await apps.boot(ALL, on());
      broken.add(2);
      const handle = await client.start(FlakyFan, { ns: [1, 2, 3] }, { id: 'flaky' });
      const error = await rejection(handle.result({ timeout: 5_000 }), WorkflowFailedError);
      expect(error.status).toBe('failed');
      broken.delete(2);
      await client.retry('flaky:spread:1');
      await until(async () => expect((await client.describe('flaky:spread:1'))!.status).toBe('completed'));
      await client.retry('flaky');
      expect(await client.getHandle('flaky').result({ timeout: 5_000 })).toEqual([1, 4, 9]);
      expect((await client.list({ parentRunId: 'flaky' })).runs).toHaveLength(3);
    });

    it('under Flow.all a failed child cancels its live siblings, with compensation', async () => {
      const { client } = await apps.boot(ALL, on());
      const handle = await client.start(SiblingCancel, {}, { id: 'sib' });
      await rejection(handle.result({ timeout: 5_000 }), WorkflowFailedError);
      await until(async () => expect((await client.describe('sib:spread:0'))!.status).toBe('cancelled'));
      expect(undone).toEqual(['slow 1']);
    });

    it('cancelling the parent cancels its live children, except those started with onParentEnd: abandon', async () => {
      const { client } = await apps.boot(ALL, on());
      await client.start(ParentOfSlow, {}, { id: 'ps' });
      await until(() => expect(log.filter((l) => l.endsWith('waiting')).sort()).toEqual(['slow 1 waiting', 'slow 2 waiting']));
      expect((await client.describe('ps'))!.status).toBe('waiting');
      await client.cancel('ps');
      await until(async () => expect((await client.describe('ps'))!.status).toBe('cancelled'));
      await until(async () => expect((await client.describe('ps:spread:0'))!.status).toBe('cancelled'));
      expect(undone).toEqual(['slow 1']);
      expect((await client.describe('ps:spread:1'))!.status).toBe('running');
      holds.open();
      await until(async () => expect((await client.describe('ps:spread:1'))!.status).toBe('completed'));
    });

    it.each([
      ['unknown', UnknownWorkflowError.name],
      ['concurrency', InvalidArgumentError.name],
      ['duplicate', InvalidArgumentError.name],
      ['too-many', InvalidArgumentError.name],
      ['not-a-directive', InvalidArgumentError.name],
    ])('bad children (%s) fail the step with a clear error and start nothing', async (kind, name) => {
      const { client } = await apps.boot(ALL, on());
      const error = await rejection((await client.start(BadChildren, { kind }, { id: `bad-${kind}` })).result({ timeout: 5_000 }), WorkflowFailedError);
      expect(error.cause.name).toBe(name);
      expect((await client.list({ parentRunId: `bad-${kind}` })).runs).toEqual([]);
    });

    it('ChildWorkflowFailedError is exported with its code', () => {
      const error = new ChildWorkflowFailedError('c1', { name: 'Error', message: 'boom' });
      expect(error.code).toBe('CAIRN_CHILD_WORKFLOW_FAILED');
      expect(error.childRunId).toBe('c1');
    });
  });

  describe('Flow.waitForAny', () => {
    const apps = useApps();

    it('a queued signal counts, the earliest sent among the names wins', async () => {
      const { client } = await apps.boot(ALL, on());
      // NOTE: the run waits first on a signal it never gets, so both are queued before it reaches waitForAny.
      const handle = await client.start(AnySignal, {}, { id: 'any1' });
      await client.signal('any1', 'rejected', { why: 'late' });
      await client.signal('any1', 'approved', { by: 'ann' });
      expect(await handle.result({ timeout: 5_000 })).toEqual({ signal: 'rejected', payload: { why: 'late' } });
      const info = (await client.describe('any1'))!;
      expect(info.steps[0]).toMatchObject({ name: 'wait', output: 'asked' });
    });

    it('an arriving signal wakes the run', async () => {
      const { client } = await apps.boot(ALL, on());
      const handle = await client.start(AnySignal, {}, { id: 'any2' });
      await until(async () => expect((await client.describe('any2'))!.status).toBe('waiting'));
      await client.signal('any2', 'approved', 'yes');
      expect(await handle.result({ timeout: 5_000 })).toEqual({ signal: 'approved', payload: 'yes' });
    });

    it('the timeout passes first: the next step receives { signal: null, timedOut: true }', async () => {
      const { client } = await apps.boot(ALL, on());
      const handle = await client.start(AnySignal, { timeout: 100 });
      expect(await handle.result({ timeout: 5_000 })).toEqual({ signal: null, timedOut: true });
    });
  });

  describe('signal ids', () => {
    const apps = useApps();

    it('a repeat of an id for a run is ignored, even after the first was consumed', async () => {
      const { client } = await apps.boot(ALL, on());
      const handle = await client.start(SignalCollector, {}, { id: 'sc' });
      await client.signal('sc', 'item', 'a', { id: 'evt-1' });
      await until(() => expect(log).toEqual(['got "a"']));
      await client.signal('sc', 'item', 'a again', { id: 'evt-1' });
      await sleep(100);
      await client.signal('sc', 'item', 'b', { id: 'evt-2' });
      expect(await handle.result({ timeout: 5_000 })).toBe('b');
      expect(log).toEqual(['got "a"', 'got "b"']);
    });

    it('an invalid id is refused', async () => {
      const { client } = await apps.boot(ALL, on());
      await client.start(SignalCollector, {}, { id: 'sc2' });
      await rejection(client.signal('sc2', 'item', 1, { id: '' }), InvalidArgumentError);
    });
  });

  describe('Flow.continueAsNew', () => {
    const apps = useApps();

    it('restarts the same run id at the first step with an empty step history and generation + 1', async () => {
      const { client } = await apps.boot(ALL, on());
      const handle = await client.start(Counter, { n: 1, until: 4 }, { id: 'loop' });
      expect(await handle.result({ timeout: 5_000 })).toEqual({ done: 4 });
      const info = (await client.describe('loop'))!;
      expect(info.generation).toBe(4);
      expect(info.steps).toHaveLength(1);
      expect(info.input).toEqual({ n: 4, until: 4 });
      // each generation has its own idempotency keys
      const keys = log.map((l) => l.split(' ')[2]);
      expect(new Set(keys).size).toBe(4);
    });
  });
}

describe('memory', () => compositionSuite(() => ({})));
const pg = testPostgres();
pg.describe('postgres', () => compositionSuite(() => ({ store: { type: 'postgres', url: pg.url, schema: randomSchemaName() } })));
const redis = testRedis();
redis.describe('redis', () => compositionSuite(() => ({ store: { type: 'redis', url: redis.url, keyPrefix: `cairn-comp-${randomUUID().slice(0, 8)}:` } })));
