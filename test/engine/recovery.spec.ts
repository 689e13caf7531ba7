import { beforeEach, describe, expect, it } from '@jest/globals';
import { Inject, Optional } from '@nestjs/common';
import {
  Flow,
  RecoveryLimitError,
  Step,
  Workflow,
  WorkflowFailedError,
  type RenewResult,
  type StepContext,
  type WorkflowStore,
} from '../../src/index.js';
import { eventually, gate, killableStore, rejection, SharedMemoryStore, sleep, untilAborted, useApps, type Gate } from '../nest/helpers.js';

const APP = 'APP_NAME';

interface Exec {
  step: string;
  app: string;
  key: string;
  attempt: number;
  at: number;
}
let executions: Exec[] = [];
let hangIn = new Set<string>();
let hangGate: Gate = gate();
/** Steps whose first execution "crashes" (hangs until aborted). */
let crashOnce = new Set<string>();
let crashAlways = false;
let failuresLeft = 0;

function exec(step: string, app: string, ctx: StepContext) {
  executions.push({ step, app, key: ctx.idempotencyKey, attempt: ctx.attempt, at: Date.now() });
}

@Workflow()
class TwoSteps {
  constructor(@Optional() @Inject(APP) private readonly app: string = 'default') {}
  @Step() first(input: string, ctx: StepContext) {
    exec('first', this.app, ctx);
    return `${input}>first@${this.app}`;
  }
  @Step() async second(prev: string, ctx: StepContext) {
    exec('second', this.app, ctx);
    if (hangIn.has(this.app)) await hangGate.promise;
    return `${prev}>second@${this.app}`;
  }
}

@Workflow()
class Crashy {
  @Step() async a(input: string, ctx: StepContext) {
    return this.body('a', input, ctx);
  }
  @Step() async b(prev: string, ctx: StepContext) {
    return this.body('b', prev, ctx);
  }
  @Step() async c(prev: string, ctx: StepContext) {
    return this.body('c', prev, ctx);
  }
  private async body(step: string, prev: string, ctx: StepContext) {
    exec(step, 'app', ctx);
    if (crashAlways || crashOnce.has(step)) {
      crashOnce.delete(step);
      await untilAborted(ctx.signal, 10_000);
      return 'cut off';
    }
    return `${prev}>${step}`;
  }
}

@Workflow()
class LongStep {
  constructor(@Optional() @Inject(APP) private readonly app: string = 'default') {}
  @Step() async long(input: number, ctx: StepContext) {
    exec('long', this.app, ctx);
    await sleep(input);
    return this.app;
  }
}

@Workflow('evolving')
class EvolvingV1 {
  @Step() a() {
    return Flow.waitForSignal('go', { value: 'a' });
  }
  @Step() b(payload: unknown) {
    return payload;
  }
}

@Workflow('evolving')
class EvolvingV2 {
  @Step() a() {
    return Flow.waitForSignal('go', { value: 'a' });
  }
  @Step() c(payload: unknown) {
    return payload;
  }
}

@Workflow()
class DurableTime {
  constructor(@Optional() @Inject(APP) private readonly app: string = 'default') {}
  @Step() nap(input: string, ctx: StepContext) {
    exec('nap', this.app, ctx);
    return Flow.sleep('300ms', input);
  }
  @Step() wake(prev: string, ctx: StepContext) {
    exec('wake', this.app, ctx);
    return `${prev} woke@${this.app}`;
  }
}

@Workflow()
class DurableRetry {
  constructor(@Optional() @Inject(APP) private readonly app: string = 'default') {}
  @Step({ retry: { maxAttempts: 3, delay: 300, backoff: 'fixed', jitter: false } }) flaky(_: unknown, ctx: StepContext) {
    exec('flaky', this.app, ctx);
    if (failuresLeft-- > 0) throw new Error('not yet');
    return `ok@${this.app}`;
  }
}

@Workflow()
class DurableWait {
  constructor(@Optional() @Inject(APP) private readonly app: string = 'default') {}
  @Step() ask(_: unknown, ctx: StepContext) {
    exec('ask', this.app, ctx);
    return Flow.waitForSignal('go', { timeout: '300ms' });
  }
  @Step() after(payload: unknown) {
    return payload;
  }
}

/** A store whose lease renewals are refused while `refuse` is set: the worker believes it lost the run. */
class RefusingRenewals extends SharedMemoryStore {
  refuse = true;
  override async renewLease(runId: string, token: string, leaseMs: number): Promise<RenewResult> {
    if (this.refuse) return { ok: false };
    return super.renewLease(runId, token, leaseMs);
  }
}

/**
 * A store whose process "freezes" (SIGSTOP) right after the write that checkpoints `afterStep` of `runId` reached the
 * store, before its answer: calls made while frozen go out at the thaw, and that answer is delivered then.
 */
function freezingStore(shared: WorkflowStore, runId: string, afterStep: string) {
  const frozen = gate();
  let froze = false;
  let triggered = false;
  const proxy = new Proxy(shared, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      if (prop === 'close' || prop === 'subscribe' || prop === 'init') return (value as (...a: unknown[]) => unknown).bind(target);
      return async (...args: unknown[]) => {
        if (froze && !frozen.opened) {
          await frozen.promise;
          // NOTE: a renewal due while frozen goes out with the timers after the thaw, behind what was already running.
          if (prop === 'renewLease') await sleep(150);
        }
        const res = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        const checkpoint = prop === 'commit' && args[0] === runId && executions.some((e) => e.step === afterStep);
        if (checkpoint && !triggered) {
          triggered = true;
          froze = true;
          await frozen.promise;
        }
        return res;
      };
    },
  });
  return { store: proxy, frozen: () => froze && !frozen.opened, thaw: () => frozen.open() };
}

function appProvider(name: string) {
  return { providers: [{ provide: APP, useValue: name }] };
}

describe('recovery of runs whose owner went away', () => {
  const apps = useApps();
  beforeEach(() => {
    executions = [];
    hangIn = new Set();
    hangGate = gate();
    crashOnce = new Set();
    crashAlways = false;
    failuresLeft = 0;
  });

  it('a run claimed by an owner that never comes back is resumed by a worker once the lease expires', async () => {
    const store = new SharedMemoryStore();
    const starter = await apps.boot([TwoSteps], { store, worker: { enabled: false } }, appProvider('starter'));
    await starter.client.start(TwoSteps, 'in', { id: 'orphan' });
    const claimed = await store.claimRun('orphan', { owner: 'ghost', leaseMs: 600 });
    expect(claimed?.leaseToken).toBeDefined();
    const claimedAt = Date.now();
    const worker = await apps.boot([TwoSteps], { store, worker: { leaseMs: 300 } }, appProvider('B'));
    expect(await worker.client.getHandle('orphan').result({ timeout: '3s' })).toBe('in>first@B>second@B');
    // Not before the ghost's lease expired.
    expect(executions[0].at - claimedAt).toBeGreaterThanOrEqual(580);
    expect(executions.map((e) => [e.step, e.key, e.attempt])).toEqual([
      ['first', 'orphan:first', 1],
      ['second', 'orphan:second', 1],
    ]);
  });

  it('a step cut off by its process dying is re-executed elsewhere with the same key and attempt, from the last checkpoint', async () => {
    const shared = new SharedMemoryStore();
    const a = killableStore(shared);
    hangIn.add('A');
    const appA = await apps.boot([TwoSteps], { store: a.store, worker: { leaseMs: 300 } }, appProvider('A'));
    await appA.client.start(TwoSteps, 'in', { id: 'crash-1' });
    await eventually(() => executions.some((e) => e.step === 'second'));
    a.kill();
    const b = await apps.boot([TwoSteps], { store: shared, worker: { leaseMs: 300 } }, appProvider('B'));
    expect(await b.client.getHandle('crash-1').result({ timeout: '3s' })).toBe('in>first@A>second@B');
    expect(executions.map((e) => [e.step, e.app, e.key, e.attempt])).toEqual([
      ['first', 'A', 'crash-1:first', 1],
      ['second', 'A', 'crash-1:second', 1],
      ['second', 'B', 'crash-1:second', 1],
    ]);
    const info = await b.client.describe('crash-1');
    expect(info?.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['first', 'completed', 1],
      ['second', 'completed', 1],
    ]);
    hangGate.open();
  });

  it('the old owner coming back after the takeover gets its writes rejected (fencing)', async () => {
    const shared = new SharedMemoryStore();
    const a = killableStore(shared);
    hangIn.add('A');
    const appA = await apps.boot([TwoSteps], { store: a.store, worker: { leaseMs: 300 } }, appProvider('A'));
    await appA.client.start(TwoSteps, 'in', { id: 'fence-1' });
    await eventually(() => executions.some((e) => e.step === 'second'));
    a.kill();
    const b = await apps.boot([TwoSteps], { store: shared, worker: { leaseMs: 300 } }, appProvider('B'));
    await b.client.getHandle('fence-1').result({ timeout: '3s' });
    const before = await b.client.describe('fence-1');
    a.revive();
    hangGate.open();
    await sleep(200);
    const after = await b.client.describe('fence-1');
    expect(after).toEqual(before);
    expect(after?.output).toBe('in>first@A>second@B');
  });

  it('an instance frozen between a checkpoint and its answer, past its lease, starts no later step once it thaws', async () => {
    const shared = new SharedMemoryStore();
    const a = freezingStore(shared, 'thaw-1', 'first');
    const appA = await apps.boot([TwoSteps], { store: a.store, worker: { leaseMs: 300 } }, appProvider('A'));
    await appA.client.start(TwoSteps, 'in', { id: 'thaw-1' });
    await eventually(() => a.frozen());
    const b = await apps.boot([TwoSteps], { store: shared, worker: { leaseMs: 300 } }, appProvider('B'));
    expect(await b.client.getHandle('thaw-1').result({ timeout: '3s' })).toBe('in>first@A>second@B');
    a.thaw();
    await sleep(300);
    // A's checkpoint of `first` did commit; after the thaw its lease (sent before the freeze) is too old to trust:
    // it asks the store, learns that B took the run over, and drops it before `second`.
    expect(executions.map((e) => `${e.step}@${e.app}`)).toEqual(['first@A', 'second@B']);
  });

  it('a run recovered more than maxRecoveries times without progress ends failed with RecoveryLimitError', async () => {
    const store = new RefusingRenewals();
    crashAlways = true;
    const { client } = await apps.boot([Crashy], { store, maxRecoveries: 2, worker: { leaseMs: 150 } });
    const handle = await client.start(Crashy, 'in', { id: 'loop-crash' });
    const error = await rejection(handle.result({ timeout: '5s' }), WorkflowFailedError);
    expect(error.cause.name).toBe(RecoveryLimitError.name);
    expect(error.step).toBe('a');
    expect(executions.map((e) => [e.step, e.key, e.attempt])).toEqual([
      ['a', 'loop-crash:a', 1],
      ['a', 'loop-crash:a', 1],
      ['a', 'loop-crash:a', 1],
    ]);
    const info = await client.describe('loop-crash');
    expect(info?.status).toBe('failed');
    expect(info?.error).toMatchObject({ name: 'RecoveryLimitError', step: 'a', phase: 'step' });
    expect(info?.error?.message).toContain('loop-crash');
  });

  it('a run failed by the recovery limit can be retried once the cause is fixed', async () => {
    const store = new RefusingRenewals();
    crashAlways = true;
    const { client } = await apps.boot([Crashy], { store, maxRecoveries: 1, worker: { leaseMs: 150 } });
    const handle = await client.start(Crashy, 'in', { id: 'fixed-crash' });
    await rejection(handle.result({ timeout: '5s' }), WorkflowFailedError);
    crashAlways = false;
    store.refuse = false;
    await client.retry('fixed-crash');
    expect(await client.getHandle('fixed-crash').result({ timeout: '3s' })).toBe('in>a>b>c');
    expect(new Set(executions.filter((e) => e.step === 'a').map((e) => e.key))).toEqual(new Set(['fixed-crash:a']));
  });

  it('recoveries that make progress do not count towards the limit', async () => {
    const store = new RefusingRenewals();
    crashOnce = new Set(['a', 'b', 'c']);
    const { client } = await apps.boot([Crashy], { store, maxRecoveries: 1, worker: { leaseMs: 150 } });
    const handle = await client.start(Crashy, 'in', { id: 'progress' });
    expect(await handle.result({ timeout: '5s' })).toBe('in>a>b>c');
    expect(executions.map((e) => [e.step, e.attempt])).toEqual([
      ['a', 1],
      ['a', 1],
      ['b', 1],
      ['b', 1],
      ['c', 1],
      ['c', 1],
    ]);
    const info = await client.describe('progress');
    expect(info?.steps.map((s) => [s.name, s.attempts])).toEqual([
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ]);
  });
});

describe('leases and deployments', () => {
  const apps = useApps();
  beforeEach(() => {
    executions = [];
  });

  it('a step longer than the lease keeps its lease renewed: no other worker runs it again', async () => {
    const store = new SharedMemoryStore();
    const a = await apps.boot([LongStep], { store, worker: { leaseMs: 400 } }, appProvider('A'));
    await apps.boot([LongStep], { store, worker: { leaseMs: 400 } }, appProvider('B'));
    expect(await a.client.execute(LongStep, 1_300, { id: 'long-1', timeout: '5s' })).toBe('A');
    expect(executions.map((e) => e.app)).toEqual(['A']);
    expect((await a.client.describe('long-1'))?.steps[0].attempts).toBe(1);
  });

  it('a run whose next step no longer exists in the deployed definition fails with WorkflowDefinitionError naming it', async () => {
    const store = new SharedMemoryStore();
    const v1 = await apps.boot([EvolvingV1], { store });
    await v1.client.start('evolving', null, { id: 'evolve-1' });
    await eventually(async () => (await v1.client.describe('evolve-1'))?.status === 'waiting');
    apps.forget(v1.app);
    await v1.app.close();
    const v2 = await apps.boot([EvolvingV2], { store });
    await v2.client.signal('evolve-1', 'go', 'payload');
    const error = await rejection(v2.client.getHandle('evolve-1').result({ timeout: '3s' }), WorkflowFailedError);
    expect(error.cause.name).toBe('WorkflowDefinitionError');
    expect(error.cause.message).toContain('"b"');
    expect((await v2.client.describe('evolve-1'))?.status).toBe('failed');
  });
});

describe('durable time across restarts', () => {
  const apps = useApps();
  beforeEach(() => {
    executions = [];
    failuresLeft = 0;
  });

  it('a sleep survives the app that started it: another app wakes the run at its wake-up time', async () => {
    const store = new SharedMemoryStore();
    const a = await apps.boot([DurableTime], { store }, appProvider('A'));
    await a.client.start(DurableTime, 'nap', { id: 'dsleep' });
    await eventually(async () => (await a.client.describe('dsleep'))?.status === 'sleeping');
    apps.forget(a.app);
    await a.app.close();
    const b = await apps.boot([DurableTime], { store }, appProvider('B'));
    expect(await b.client.getHandle('dsleep').result({ timeout: '3s' })).toBe('nap woke@B');
    const [nap, wake] = executions;
    expect(wake.at - nap.at).toBeGreaterThanOrEqual(280);
  });

  it('a retry delay survives the app: another app makes the next attempt with the same key, counting on', async () => {
    const store = new SharedMemoryStore();
    failuresLeft = 1;
    const a = await apps.boot([DurableRetry], { store, worker: { leaseMs: 300 } }, appProvider('A'));
    await a.client.start(DurableRetry, null, { id: 'dretry' });
    await eventually(() => executions.length === 1);
    await sleep(20);
    apps.forget(a.app);
    await a.app.close();
    const b = await apps.boot([DurableRetry], { store }, appProvider('B'));
    expect(await b.client.getHandle('dretry').result({ timeout: '3s' })).toBe('ok@B');
    expect(executions.map((e) => [e.app, e.key, e.attempt])).toEqual([
      ['A', 'dretry:flaky', 1],
      ['B', 'dretry:flaky', 2],
    ]);
    expect(executions[1].at - executions[0].at).toBeGreaterThanOrEqual(280);
    expect((await b.client.describe('dretry'))?.steps[0].attempts).toBe(2);
  });

  it('a signal timeout survives the app: another app fails the wait when it times out', async () => {
    const store = new SharedMemoryStore();
    const a = await apps.boot([DurableWait], { store }, appProvider('A'));
    await a.client.start(DurableWait, null, { id: 'dwait' });
    await eventually(async () => (await a.client.describe('dwait'))?.status === 'waiting');
    apps.forget(a.app);
    await a.app.close();
    const b = await apps.boot([DurableWait], { store }, appProvider('B'));
    const error = await rejection(b.client.getHandle('dwait').result({ timeout: '3s' }), WorkflowFailedError);
    expect(error.cause.name).toBe('SignalTimeoutError');
  });

  it('a signal sent while no worker runs is consumed by the next one', async () => {
    const store = new SharedMemoryStore();
    const a = await apps.boot([DurableWait], { store }, appProvider('A'));
    await a.client.start(DurableWait, null, { id: 'dsig' });
    await eventually(async () => (await a.client.describe('dsig'))?.status === 'waiting');
    apps.forget(a.app);
    await a.app.close();
    const starter = await apps.boot([DurableWait], { store, worker: { enabled: false } }, appProvider('S'));
    await starter.client.signal('dsig', 'go', 'queued');
    const b = await apps.boot([DurableWait], { store }, appProvider('B'));
    expect(await b.client.getHandle('dsig').result({ timeout: '3s' })).toBe('queued');
  });
});
