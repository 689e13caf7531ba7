import { beforeEach, describe, expect, it } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { firstValueFrom, take, toArray } from 'rxjs';
import {
  Flow,
  InvalidArgumentError,
  OnWorkflowEvent,
  RetryPolicy,
  RunNotFoundError,
  Step,
  StepTimeoutError,
  Workflow,
  WorkflowEvents,
  type RunEvent,
  type StepContext,
  type WorkflowRunEvent,
  type WorkflowStore,
} from '../../src/index.js';
import { eventually, gate, killableStore, rejection, SharedMemoryStore, sleep, useApps, type Gate } from './helpers.js';

let hold: Gate = gate();
let seen: { step: string; attempt: number; input: unknown; lastHeartbeat: unknown }[] = [];
let failFirst = true;
let beats = 0;

function resetFixtures() {
  hold = gate();
  seen = [];
  failFirst = true;
  beats = 0;
}

@Workflow()
class Pipeline {
  @Step() first(input: number) {
    return input + 1;
  }
  @Step({ retry: RetryPolicy.fixed(2, 10) }) flaky(prev: number, ctx: StepContext) {
    if (ctx.attempt === 1) throw new Error('first attempt fails');
    return prev * 2;
  }
  @Step() last(prev: number) {
    return { result: prev };
  }
}

@Workflow()
class Undo {
  @Step({ compensate: 'undoBook' }) book() {
    return 'booked';
  }
  @Step() charge(): string {
    throw new Error('card declined');
  }
  undoBook() {
    return undefined;
  }
}

@Workflow()
class Approval {
  @Step() ask() {
    return Flow.waitForSignal('approved', { timeout: '1h', value: 'asked' });
  }
  @Step({ retry: RetryPolicy.fixed(2, 200) }) act(payload: unknown, ctx: StepContext) {
    seen.push({ step: 'act', attempt: ctx.attempt, input: payload, lastHeartbeat: ctx.lastHeartbeat });
    if (ctx.attempt === 1) throw new Error('not yet');
    return payload;
  }
}

@Workflow()
class Batch {
  @Step({ retry: RetryPolicy.fixed(2, 10) }) async process(total: number, ctx: StepContext) {
    const from = (ctx.lastHeartbeat as { done: number } | undefined)?.done ?? 0;
    seen.push({ step: 'process', attempt: ctx.attempt, input: total, lastHeartbeat: ctx.lastHeartbeat });
    for (let done = from; done < total; done++) {
      beats++;
      await ctx.heartbeat({ done });
      if (done === 5 && failFirst) {
        failFirst = false;
        throw new Error('crashed at 5');
      }
    }
    await hold.promise;
    return { processed: total - from };
  }
}

@Workflow()
class Silent {
  @Step({ heartbeatTimeout: '150ms', retry: RetryPolicy.fixed(2, 10) }) async work(_: unknown, ctx: StepContext) {
    seen.push({ step: 'work', attempt: ctx.attempt, input: undefined, lastHeartbeat: ctx.lastHeartbeat });
    for (let i = 0; i < 5; i++) {
      await ctx.heartbeat({ i });
      await sleep(50);
    }
    if (ctx.attempt === 1) await sleep(1_000); // silent past the heartbeat timeout
    return 'done';
  }
}

@Workflow()
class LongStep {
  @Step() async work(_: unknown, ctx: StepContext) {
    seen.push({ step: 'work', attempt: ctx.attempt, input: undefined, lastHeartbeat: undefined });
    while (!hold.opened) {
      await ctx.heartbeat({ at: Date.now() });
      await sleep(20);
    }
    return 'worked';
  }
  @Step() after(prev: string) {
    return prev;
  }
}

const types = (events: RunEvent[]) => events.map((e) => (e.step ? `${e.type}:${e.step}` : e.type));

/** A store that counts the commits carrying a heartbeat while a step runs. */
function countingHeartbeats(store: WorkflowStore): { store: WorkflowStore; count: () => number } {
  let n = 0;
  const proxy = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (prop !== 'commit' || typeof value !== 'function') return typeof value === 'function' ? (value as Function).bind(target) : value;
      return (runId: string, token: string, patch: { midStep?: boolean }) => {
        if (patch.midStep) n++;
        return (value as Function).call(target, runId, token, patch);
      };
    },
  });
  return { store: proxy, count: () => n };
}

describe('history', () => {
  const apps = useApps();
  beforeEach(resetFixtures);

  it('records every attempt, failure and retry of a run, in order, with the instance that ran it', async () => {
    const { client, app } = await apps.boot([Pipeline]);
    const output = await client.execute(Pipeline, 1);
    expect(output).toEqual({ result: 4 });
    const { runId } = (await client.list({ workflow: 'Pipeline' })).runs[0];
    const { events, cursor } = await client.history(runId);
    expect(cursor).toBeUndefined();
    expect(types(events)).toEqual([
      'run.started',
      'step.started:first',
      'step.completed:first',
      'step.started:flaky',
      'step.failed:flaky',
      'step.retrying:flaky',
      'step.started:flaky',
      'step.completed:flaky',
      'step.started:last',
      'step.completed:last',
      'run.completed',
    ]);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    const instance = app.get(WorkflowEvents) && events[0].instanceId;
    expect(instance).toEqual(expect.any(String));
    expect(events.every((e) => e.instanceId === instance && e.at instanceof Date)).toBe(true);
    const failed = events[4];
    expect(failed).toMatchObject({ attempt: 1, error: { name: 'Error', message: 'first attempt fails' } });
    expect(failed.durationMs).toEqual(expect.any(Number));
    expect(events[5]).toMatchObject({ attempt: 2, detail: { delayMs: expect.any(Number) } });
    expect(events[7]).toMatchObject({ attempt: 2, durationMs: expect.any(Number) });
    for (let i = 1; i < events.length; i++) expect(events[i].at.getTime()).toBeGreaterThanOrEqual(events[i - 1].at.getTime());
  });

  it('pages with a cursor and checks its arguments', async () => {
    const { client } = await apps.boot([Pipeline]);
    const handle = await client.start(Pipeline, 1, { id: 'paged' });
    await handle.result();
    const first = await client.history('paged', { limit: 4 });
    expect(first.events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    const second = await client.history('paged', { limit: 4, cursor: first.cursor });
    expect(second.events.map((e) => e.seq)).toEqual([5, 6, 7, 8]);
    const third = await client.history('paged', { limit: 4, cursor: second.cursor });
    expect(third.events.map((e) => e.seq)).toEqual([9, 10, 11]);
    expect(third.cursor).toBeUndefined();
    await rejection(client.history('paged', { limit: 0 }), InvalidArgumentError);
    await rejection(client.history('paged', { limit: 1001 }), InvalidArgumentError);
    await rejection(client.history('paged', { cursor: 'nope' }), InvalidArgumentError);
    await rejection(client.history('missing-run'), RunNotFoundError);
    await rejection(client.history(''), InvalidArgumentError);
  });

  it('records compensations and how the run ended', async () => {
    const { client } = await apps.boot([Undo]);
    const handle = await client.start(Undo, null, { id: 'undo' });
    await handle.result().catch(() => undefined);
    const { events } = await client.history('undo');
    expect(types(events)).toEqual([
      'run.started',
      'step.started:book',
      'step.completed:book',
      'step.started:charge',
      'step.failed:charge',
      'compensation.started:book',
      'compensation.completed:book',
      'run.compensated:charge',
    ]);
    expect(events[4]).toMatchObject({ error: { message: 'card declined' }, detail: { final: true } });
    expect(events.at(-1)).toMatchObject({ error: { message: 'card declined' } });
  });

  it('records waits, signals and control requests, and keeps a signal payload through a released retry', async () => {
    const { client } = await apps.boot([Approval], { worker: { leaseMs: 300 } });
    const handle = await client.start(Approval, null, { id: 'approval' });
    await eventually(async () => (await client.describe('approval'))?.status === 'waiting');
    await client.pause('approval');
    await client.resume('approval');
    await client.signal('approval', 'approved', { by: 'ann' });
    // the retry delay (200 ms) is longer than what is waited holding the lease (100 ms): the run is released and
    // claimed again, and its second attempt still receives the signal's payload
    expect(await handle.result({ timeout: '5s' })).toEqual({ by: 'ann' });
    expect(seen.map((s) => s.input)).toEqual([{ by: 'ann' }, { by: 'ann' }]);
    const { events } = await client.history('approval');
    expect(types(events)).toEqual([
      'run.started',
      'step.started:ask',
      'step.completed:ask',
      'run.waiting:ask',
      'run.paused',
      'run.resumed',
      'signal.received',
      'step.started:act',
      'step.failed:act',
      'step.retrying:act',
      'step.started:act',
      'step.completed:act',
      'run.completed',
    ]);
    expect(events[3].detail).toEqual({ signal: 'approved', timeoutMs: 3_600_000 });
    expect(events[6].detail).toEqual({ signal: 'approved' });
  });

  it('records nothing with history: false', async () => {
    const { client } = await apps.boot([Pipeline], { history: false });
    await client.execute(Pipeline, 1, { id: 'unrecorded' });
    expect((await client.history('unrecorded')).events).toEqual([]);
    await rejection(client.history('missing'), RunNotFoundError);
  });

  it('records a cancel as an operator action', async () => {
    const { client } = await apps.boot([Approval]);
    await client.start(Approval, null, { id: 'cancelled' });
    await eventually(async () => (await client.describe('cancelled'))?.status === 'waiting');
    await client.cancel('cancelled', { compensate: false });
    await eventually(async () => (await client.describe('cancelled'))?.status === 'cancelled');
    const { events } = await client.history('cancelled');
    expect(types(events).slice(-2)).toEqual(['operator.action', 'run.cancelled']);
    expect(events.at(-2)!.detail).toEqual({ action: 'cancel', compensate: false });
  });

  it('records a recovery: which instance the run was taken from and for how long it was orphaned', async () => {
    const shared = new SharedMemoryStore();
    const dying = killableStore(shared);
    const a = await apps.boot([LongStep], { store: dying.store, worker: { leaseMs: 200, instanceId: 'pod-a' } });
    await a.client.start(LongStep, null, { id: 'recovered' });
    await eventually(() => seen.length === 1);
    dying.kill();
    const b = await apps.boot([LongStep], { store: shared, worker: { leaseMs: 200, instanceId: 'pod-b' } });
    await eventually(() => seen.length === 2, 5_000);
    hold.open();
    await eventually(async () => (await b.client.describe('recovered'))?.status === 'completed');
    const { events } = await b.client.history('recovered');
    const recovered = events.find((e) => e.type === 'run.recovered')!;
    expect(recovered).toMatchObject({ instanceId: 'pod-b', step: 'work', detail: { previousOwner: 'pod-a', orphanedMs: expect.any(Number) } });
    expect(types(events).slice(-4)).toEqual(['step.completed:work', 'step.started:after', 'step.completed:after', 'run.completed']);
  });
});

describe('heartbeats', () => {
  const apps = useApps();
  beforeEach(resetFixtures);

  it('are shown by describe, throttled to one write a second, and handed to the next attempt', async () => {
    const counting = countingHeartbeats(new SharedMemoryStore());
    const { client } = await apps.boot([Batch], { store: counting.store });
    const handle = await client.start(Batch, 20_000, { id: 'batch' });
    const running = await eventually(async () => {
      const info = await client.describe('batch');
      return info?.steps[0]?.heartbeat?.details ? info : undefined;
    });
    expect(running.steps[0].heartbeat).toEqual({ at: expect.any(Date), details: { done: expect.any(Number) } });
    // the first attempt failed at 5; the second resumed from its last heartbeat
    await eventually(() => seen.length === 2);
    expect(seen[1]).toMatchObject({ attempt: 2, lastHeartbeat: { done: 5 } });
    await eventually(() => beats >= 20_000 - 5 + 6);
    hold.open();
    expect(await handle.result()).toEqual({ processed: 20_000 - 5 });
    // 20,000 heartbeats in well under a few seconds: a handful of writes
    expect(counting.count()).toBeLessThanOrEqual(5);
    const done = (await client.describe('batch'))!;
    expect(done.steps[0]).toMatchObject({ status: 'completed', attempts: 2, heartbeat: { details: { done: 19_999 } } });
  });

  it('abort an attempt that stops sending them, with a retryable StepTimeoutError', async () => {
    const { client } = await apps.boot([Silent]);
    expect(await client.execute(Silent, null, { id: 'silent' })).toBe('done');
    const { events } = await client.history('silent');
    const failed = events.find((e) => e.type === 'step.failed')!;
    expect(failed.error).toMatchObject({ name: 'StepTimeoutError', message: expect.stringContaining('no heartbeat for 150 ms') });
    expect(seen.map((s) => s.attempt)).toEqual([1, 2]);
    expect(seen[1].lastHeartbeat).toEqual({ i: 4 });
    expect(new StepTimeoutError('s', 1, 'heartbeat').kind).toBe('heartbeat');
  });

  it('never pause a run in the middle of a step: the pause waits for the step boundary', async () => {
    const { client } = await apps.boot([LongStep]);
    await client.start(LongStep, null, { id: 'paused-mid-step' });
    await eventually(() => seen.length === 1);
    await client.pause('paused-mid-step');
    await sleep(1_300); // heartbeats are written meanwhile
    expect((await client.describe('paused-mid-step'))!.status).toBe('running');
    hold.open();
    await eventually(async () => (await client.describe('paused-mid-step'))?.status === 'paused');
    expect(seen).toHaveLength(1);
    await client.resume('paused-mid-step');
    await eventually(async () => (await client.describe('paused-mid-step'))?.status === 'completed');
    expect(seen).toHaveLength(1);
  });

  it('reject details that cannot be stored', async () => {
    @Workflow()
    class BadBeat {
      @Step() async work(_: unknown, ctx: StepContext) {
        await ctx.heartbeat({ f: () => 1 });
        return 'unreachable';
      }
    }
    const { client } = await apps.boot([BadBeat]);
    const handle = await client.start(BadBeat, null);
    await expect(handle.result()).rejects.toMatchObject({ cause: { name: 'SerializationError' } });
  });
});

@Injectable()
class Listener {
  static received: WorkflowRunEvent[] = [];
  @OnWorkflowEvent(['run.completed', 'run.failed'])
  onEnd(event: WorkflowRunEvent) {
    Listener.received.push(event);
  }
  @OnWorkflowEvent('run.started', { workflow: 'Pipeline' })
  async broken() {
    throw new Error('a broken handler changes nothing');
  }
}

describe('live events', () => {
  const apps = useApps();
  beforeEach(() => {
    resetFixtures();
    Listener.received = [];
  });

  it('streams this instance’s events as they are written, filtered', async () => {
    const { client, app } = await apps.boot([Pipeline]);
    const events = app.get(WorkflowEvents);
    const ends = firstValueFrom(events.stream({ workflow: 'Pipeline', types: ['run.completed'] }));
    const all = firstValueFrom(events.stream({ runId: 'streamed' }).pipe(take(11), toArray()));
    await client.execute(Pipeline, 1, { id: 'streamed' });
    expect(await ends).toMatchObject({ runId: 'streamed', workflow: 'Pipeline', type: 'run.completed', seq: 11 });
    const list = await all;
    expect(list.map((e) => e.seq)).toEqual(list.map((_, i) => i + 1));
    expect(list.map((e) => e.type)).toEqual((await client.history('streamed')).events.map((e) => e.type));
    expect(() => events.stream({ types: ['nope' as never] })).toThrow(InvalidArgumentError);
    expect(() => events.stream({ scope: 'cluster' })).toThrow(/events: \{ cluster: true \}/);
  });

  it('streams every instance’s events with scope cluster', async () => {
    const shared = new SharedMemoryStore();
    const a = await apps.boot([Pipeline], { store: shared, events: { cluster: true } });
    const b = await apps.boot([], { store: shared, events: { cluster: true }, worker: { enabled: false } });
    const onB = firstValueFrom(b.app.get(WorkflowEvents).stream({ scope: 'cluster', types: ['run.completed'] }));
    await a.client.execute(Pipeline, 1, { id: 'clustered' });
    expect(await onB).toMatchObject({ runId: 'clustered', workflow: 'Pipeline', type: 'run.completed', seq: 11, instanceId: expect.any(String) });
  });

  it('calls @OnWorkflowEvent methods, and a failing one changes nothing', async () => {
    const { client } = await apps.boot([Pipeline, Undo], {}, { providers: [Listener] });
    await client.execute(Pipeline, 1, { id: 'listened' });
    await client.execute(Undo, null, { id: 'listened-2' }).catch(() => undefined);
    await eventually(() => Listener.received.length === 1);
    expect(Listener.received.map((e) => [e.runId, e.type])).toEqual([['listened', 'run.completed']]);
  });
});
