import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  Flow,
  InvalidArgumentError,
  InvalidRunStateError,
  RetryPolicy,
  RunAlreadyExistsError,
  RunNotFoundError,
  Step,
  Workflow,
  WORKFLOW_ENGINE,
  type StepContext,
} from '../../src/index.js';
import type { WorkflowEngine } from '../../src/engine/workflow-engine.js';
import { eventually, rejection, sleep, useApps } from './helpers.js';

let calls: { step: string; input: unknown; key: string }[] = [];
let failCharge = true;

@Workflow()
class Checkout {
  @Step() reserve(order: { id: string; total: number }, ctx: StepContext) {
    calls.push({ step: 'reserve', input: order, key: ctx.idempotencyKey });
    return { reserved: order.id };
  }
  @Step({ retry: RetryPolicy.none() }) charge(prev: { reserved: string }, ctx: StepContext) {
    calls.push({ step: 'charge', input: prev, key: ctx.idempotencyKey });
    if (failCharge) throw new Error('card declined');
    return { charged: prev.reserved };
  }
  @Step() ship(prev: unknown, ctx: StepContext) {
    calls.push({ step: 'ship', input: prev, key: ctx.idempotencyKey });
    return { shipped: prev };
  }
}

@Workflow()
class Compensated {
  @Step({ compensate: 'undo' }) book() {
    return 'booked';
  }
  @Step() fail(): string {
    throw new Error('nope');
  }
  undo() {
    return undefined;
  }
}

@Workflow()
class LastFails {
  @Step() first(input: number) {
    return input;
  }
  @Step() last(): number {
    throw new Error('last step fails');
  }
}

describe('skip', () => {
  const apps = useApps();
  beforeEach(() => {
    calls = [];
    failCharge = true;
  });

  it('records the failed step completed with the given output and goes on from the next step', async () => {
    const { client } = await apps.boot([Checkout]);
    const handle = await client.start(Checkout, { id: 'o-1', total: 5 }, { id: 'skip-1' });
    await expect(handle.result()).rejects.toMatchObject({ name: 'WorkflowFailedError' });
    await client.skip('skip-1', { output: { charged: 'manually', at: new Date(0) } });
    expect(await handle.result()).toEqual({ shipped: { charged: 'manually', at: new Date(0) } });
    expect(calls.map((c) => c.step)).toEqual(['reserve', 'charge', 'ship']);
    const info = (await client.describe('skip-1'))!;
    expect(info.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['reserve', 'completed', 1],
      ['charge', 'completed', 1],
      ['ship', 'completed', 1],
    ]);
    expect(info.steps[1].output).toEqual({ charged: 'manually', at: new Date(0) });
    const types = (await client.history('skip-1')).events.map((e) => e.type);
    expect(types.slice(types.indexOf('operator.action'))).toEqual(['operator.action', 'step.completed', 'step.started', 'step.completed', 'run.completed']);
    const events = (await client.history('skip-1')).events;
    const action = events.find((e) => e.type === 'operator.action')!;
    expect(action.detail).toEqual({ action: 'skip', step: 'charge' });
    expect(events.find((e) => e.type === 'step.completed' && e.step === 'charge')!.detail).toEqual({ skipped: true });
  });

  it('completes the run with the output when the last step is skipped', async () => {
    const { client } = await apps.boot([LastFails]);
    const handle = await client.start(LastFails, 1, { id: 'skip-last' });
    await handle.result().catch(() => undefined);
    await client.skip('skip-last', { output: 'fine' });
    expect(await handle.result()).toBe('fine');
  });

  it('refuses runs that are not failed at a step, unknown runs, and missing outputs', async () => {
    const { client } = await apps.boot([Checkout, Compensated]);
    failCharge = false;
    await client.execute(Checkout, { id: 'o', total: 1 }, { id: 'done' });
    await rejection(client.skip('done', { output: 1 }), InvalidRunStateError);
    await client.start(Compensated, null, { id: 'compensated' }).then((h) => h.result()).catch(() => undefined);
    await rejection(client.skip('compensated', { output: 1 }), InvalidRunStateError);
    await rejection(client.skip('missing', { output: 1 }), RunNotFoundError);
    await rejection(client.skip('done', {} as never), InvalidArgumentError);
  });

  it('records who did it when an operator skips through the engine', async () => {
    const { client, app } = await apps.boot([Checkout]);
    const handle = await client.start(Checkout, { id: 'o', total: 1 }, { id: 'skip-by' });
    await handle.result().catch(() => undefined);
    await app.get<WorkflowEngine>(WORKFLOW_ENGINE).skipRun('skip-by', { charged: 'x' }, 'ann@example.com');
    await handle.result();
    const action = (await client.history('skip-by')).events.find((e) => e.type === 'operator.action')!;
    expect(action.detail).toEqual({ action: 'skip', step: 'charge', by: 'ann@example.com' });
  });
});

describe('fork', () => {
  const apps = useApps();
  beforeEach(() => {
    calls = [];
    failCharge = true;
  });

  it('starts a new run at a step, reusing the outputs of the steps before it', async () => {
    const { client } = await apps.boot([Checkout]);
    await client.start(Checkout, { id: 'o-2', total: 9 }, { id: 'source' }).then((h) => h.result()).catch(() => undefined);
    failCharge = false;
    calls = [];
    const forked = await client.fork('source', { fromStep: 'charge', id: 'forked' });
    expect(forked.runId).toBe('forked');
    expect(await forked.result()).toEqual({ shipped: { charged: 'o-2' } });
    expect(calls.map((c) => [c.step, c.key])).toEqual([
      ['charge', 'forked:charge'],
      ['ship', 'forked:ship'],
    ]);
    expect(calls[0].input).toEqual({ reserved: 'o-2' });
    const info = (await client.describe('forked'))!;
    expect(info.input).toEqual({ id: 'o-2', total: 9 });
    expect(info.steps.map((s) => [s.name, s.status])).toEqual([
      ['reserve', 'completed'],
      ['charge', 'completed'],
      ['ship', 'completed'],
    ]);
    const started = (await client.history('forked')).events[0];
    expect(started).toMatchObject({ type: 'run.started', detail: { forkedFrom: 'source', fromStep: 'charge' } });
    // the source is untouched
    expect((await client.describe('source'))!.status).toBe('failed');
  });

  it('forks from the first step with a new input, with a generated id', async () => {
    const { client } = await apps.boot([Checkout]);
    failCharge = false;
    await client.execute(Checkout, { id: 'a', total: 1 }, { id: 'src' });
    const forked = await client.fork('src', { fromStep: 'reserve', input: { id: 'b', total: 2 } });
    expect(forked.runId).not.toBe('src');
    expect(await forked.result()).toEqual({ shipped: { charged: 'b' } });
  });

  it('refuses unknown runs, unknown or unreached steps and taken ids', async () => {
    const { client } = await apps.boot([Checkout]);
    await client.start(Checkout, { id: 'o', total: 1 }, { id: 'stopped' }).then((h) => h.result()).catch(() => undefined);
    await rejection(client.fork('missing', { fromStep: 'charge' }), RunNotFoundError);
    await rejection(client.fork('stopped', { fromStep: 'nope' }), InvalidArgumentError);
    await rejection(client.fork('stopped', { fromStep: 'ship' }), InvalidArgumentError);
    await rejection(client.fork('stopped', { fromStep: 'charge', id: 'stopped' }), RunAlreadyExistsError);
  });
});

describe('list by creation time', () => {
  const apps = useApps();

  it('filters with createdFrom and createdTo', async () => {
    @Workflow()
    class Waits {
      @Step() wait() {
        return Flow.waitForSignal('never');
      }
    }
    const { client } = await apps.boot([Waits]);
    await client.start(Waits, null, { id: 't1' });
    await sleep(20);
    const middle = new Date();
    await sleep(20);
    await client.start(Waits, null, { id: 't2' });
    await eventually(async () => (await client.list({ workflow: 'Waits' })).runs.length === 2);
    expect((await client.list({ workflow: 'Waits', createdFrom: middle })).runs.map((r) => r.runId)).toEqual(['t2']);
    expect((await client.list({ workflow: 'Waits', createdTo: middle })).runs.map((r) => r.runId)).toEqual(['t1']);
    await rejection(client.list({ createdFrom: new Date('nope') }), InvalidArgumentError);
    await rejection(client.list({ createdTo: 'yesterday' as never }), InvalidArgumentError);
  });
});
