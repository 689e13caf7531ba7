import { beforeEach, describe, expect, it } from '@jest/globals';
import { Inject, Optional } from '@nestjs/common';
import { Flow, NonRetryableError, ResultTimeoutError, Step, Workflow, WorkflowCancelledError, type StepContext } from '../../src/index.js';
import { eventually, gate, rejection, sleep, SharedMemoryStore, untilAborted, useApps, type Gate } from './helpers.js';

const APP = 'APP_NAME';

let executions: { step: string; app: string; key: string; attempt: number; aborted?: boolean }[] = [];
let active = 0;
let maxActive = 0;

@Workflow()
class Tagged {
  constructor(@Optional() @Inject(APP) private readonly app: string = 'default') {}
  @Step() first(input: string, ctx: StepContext) {
    executions.push({ step: 'first', app: this.app, key: ctx.idempotencyKey, attempt: ctx.attempt });
    return `${input}@${this.app}`;
  }
  @Step() second(prev: string, ctx: StepContext) {
    executions.push({ step: 'second', app: this.app, key: ctx.idempotencyKey, attempt: ctx.attempt });
    return `${prev}+${this.app}`;
  }
}

@Workflow()
class Waits {
  constructor(@Optional() @Inject(APP) private readonly app: string = 'default') {}
  @Step() ask() {
    return Flow.waitForSignal('go');
  }
  @Step() done(payload: unknown) {
    executions.push({ step: 'done', app: this.app, key: '', attempt: 0 });
    return payload;
  }
}

@Workflow()
class Interruptible {
  @Step() async work(_: unknown, ctx: StepContext) {
    const started = Date.now();
    executions.push({ step: 'work', app: 'worker', key: ctx.idempotencyKey, attempt: ctx.attempt });
    await untilAborted(ctx.signal, 3_000);
    executions.push({ step: 'work-end', app: 'worker', key: String(Date.now() - started), attempt: 0, aborted: ctx.signal.aborted });
    return 'not cancelled';
  }
}

let hold: Gate = gate();

@Workflow()
class Gated {
  @Step() async first(input: string) {
    executions.push({ step: 'first', app: 'worker', key: '', attempt: 0 });
    await hold.promise;
    return input;
  }
  @Step() second(prev: string) {
    executions.push({ step: 'second', app: 'worker', key: '', attempt: 0 });
    return `${prev}!`;
  }
}

@Workflow()
class Busy {
  @Step() async work(input: number) {
    active++;
    maxActive = Math.max(maxActive, active);
    await sleep(15);
    active--;
    return input;
  }
}

@Workflow()
class WaitThenBusy {
  @Step() ask() {
    return Flow.waitForSignal('go');
  }
  @Step() async work(input: number) {
    active++;
    maxActive = Math.max(maxActive, active);
    await sleep(20);
    active--;
    return input;
  }
}

@Workflow()
class SlowStep {
  constructor(@Optional() @Inject(APP) private readonly app: string = 'default') {}
  @Step() async slow(input: { ms: number }, ctx: StepContext) {
    const entry: (typeof executions)[number] = { step: 'slow', app: this.app, key: ctx.idempotencyKey, attempt: ctx.attempt };
    executions.push(entry);
    if (this.app === 'A') {
      await untilAborted(ctx.signal, input.ms);
      entry.aborted = ctx.signal.aborted;
    }
    return `slow@${this.app}`;
  }
  @Step() after(prev: string, ctx: StepContext) {
    executions.push({ step: 'after', app: this.app, key: ctx.idempotencyKey, attempt: ctx.attempt });
    return `${prev}+after@${this.app}`;
  }
}

@Workflow()
class EndsEither {
  @Step() only(input: 'ok' | 'fail') {
    if (input === 'fail') throw new NonRetryableError('no');
    return input;
  }
}

function appProvider(name: string) {
  return { providers: [{ provide: APP, useValue: name }] };
}

describe('workers', () => {
  const apps = useApps();
  beforeEach(() => {
    executions = [];
    active = 0;
    maxActive = 0;
    hold = gate();
  });

  it('worker.enabled false: the instance starts and controls runs but does not execute them', async () => {
    const { client } = await apps.boot([Tagged], { worker: { enabled: false } });
    const handle = await client.start(Tagged, 'x', { id: 'nw-1' });
    await sleep(150);
    const info = await client.describe('nw-1');
    expect(info?.status).toBe('pending');
    expect(info?.steps).toEqual([]);
    expect(executions).toEqual([]);
    await rejection(handle.result({ timeout: 50 }), ResultTimeoutError);
    await client.pause('nw-1');
    expect((await client.describe('nw-1'))?.status).toBe('paused');
    await client.resume('nw-1');
    expect((await client.describe('nw-1'))?.status).toBe('pending');
    await client.cancel('nw-1');
    expect(executions).toEqual([]);
  });

  it('two apps on one store: the worker-less app starts, the other executes, and result() resolves in the first', async () => {
    const store = new SharedMemoryStore();
    const starter = await apps.boot([Tagged], { store, worker: { enabled: false } }, appProvider('starter'));
    await apps.boot([Tagged], { store }, appProvider('worker'));
    const handle = await starter.client.start(Tagged, 'in', { id: 'shared-1' });
    expect(await handle.result({ timeout: '3s' })).toBe('in@worker+worker');
    expect(executions.map((e) => [e.step, e.app])).toEqual([
      ['first', 'worker'],
      ['second', 'worker'],
    ]);
    expect((await starter.client.describe('shared-1'))?.status).toBe('completed');
  });

  it('a worker-less app controls runs executed by another app (signal, cancel)', async () => {
    const store = new SharedMemoryStore();
    const starter = await apps.boot([Waits], { store, worker: { enabled: false } }, appProvider('starter'));
    const worker = await apps.boot([Waits], { store }, appProvider('worker'));
    const h1 = await starter.client.start(Waits, null, { id: 'ctl-1' });
    await eventually(async () => (await starter.client.describe('ctl-1'))?.status === 'waiting');
    await starter.client.signal('ctl-1', 'go', 'from starter');
    expect(await h1.result({ timeout: '3s' })).toBe('from starter');
    expect(executions.map((e) => e.app)).toEqual(['worker']);
    const h2 = await starter.client.start(Waits, null, { id: 'ctl-2' });
    await eventually(async () => (await worker.client.describe('ctl-2'))?.status === 'waiting');
    await starter.client.cancel('ctl-2');
    await rejection(h2.result({ timeout: '3s' }), WorkflowCancelledError);
  });

  it('cancel from another app aborts the step running in the worker app', async () => {
    const store = new SharedMemoryStore();
    const starter = await apps.boot([Interruptible], { store, worker: { enabled: false } });
    await apps.boot([Interruptible], { store });
    const handle = await starter.client.start(Interruptible, null, { id: 'remote-cancel' });
    await eventually(() => executions.length === 1);
    await starter.client.cancel('remote-cancel');
    await rejection(handle.result({ timeout: '2s' }), WorkflowCancelledError);
    await eventually(() => executions.length === 2);
    expect(executions[1].aborted).toBe(true);
    expect(Number(executions[1].key)).toBeLessThan(1_000);
  });

  it('pause from another app takes effect at the step boundary in the worker app', async () => {
    const store = new SharedMemoryStore();
    const starter = await apps.boot([Gated], { store, worker: { enabled: false } });
    await apps.boot([Gated], { store });
    await starter.client.start(Gated, 'p', { id: 'remote-pause' });
    await eventually(() => executions.length === 1);
    await starter.client.pause('remote-pause');
    hold.open();
    const paused = await eventually(async () => {
      const info = await starter.client.describe('remote-pause');
      return info?.status === 'paused' ? info : undefined;
    });
    expect(paused.steps[0]).toMatchObject({ name: 'first', status: 'completed' });
    await sleep(50);
    expect(executions.map((e) => e.step)).toEqual(['first']);
    await starter.client.resume('remote-pause');
    expect(await starter.client.getHandle('remote-pause').result({ timeout: '2s' })).toBe('p!');
  });

  it('a worker picks up runs that were pending before it started', async () => {
    const store = new SharedMemoryStore();
    const starter = await apps.boot([Tagged], { store, worker: { enabled: false } }, appProvider('starter'));
    for (let i = 0; i < 3; i++) await starter.client.start(Tagged, `r${i}`, { id: `early-${i}` });
    await apps.boot([Tagged], { store }, appProvider('late'));
    for (let i = 0; i < 3; i++) expect(await starter.client.getHandle(`early-${i}`).result({ timeout: '3s' })).toBe(`r${i}@late+late`);
  });

  it('concurrency 1 runs one run at a time and still completes them all (runs started one after another)', async () => {
    const { client } = await apps.boot([Busy], { worker: { concurrency: 1 } });
    const handles = [];
    for (let i = 0; i < 6; i++) handles.push(await client.start(Busy, i));
    const outputs = await Promise.all(handles.map((h) => h.result({ timeout: '5s' })));
    expect(outputs).toEqual([0, 1, 2, 3, 4, 5]);
    expect(maxActive).toBe(1);
  });

  it('concurrency 1 holds when runs are started at the same time', async () => {
    const { client } = await apps.boot([Busy], { worker: { concurrency: 1 } });
    const handles = await Promise.all(Array.from({ length: 6 }, (_, i) => client.start(Busy, i)));
    expect(await Promise.all(handles.map((h) => h.result({ timeout: '5s' })))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(maxActive).toBe(1);
  });

  it('concurrency 1 holds when several waiting runs are signalled at the same time', async () => {
    const { client } = await apps.boot([WaitThenBusy], { worker: { concurrency: 1 } });
    const ids = ['w0', 'w1', 'w2', 'w3'];
    for (const id of ids) {
      await client.start(WaitThenBusy, null, { id });
      await eventually(async () => (await client.describe(id))?.status === 'waiting');
    }
    await Promise.all(ids.map((id, i) => client.signal(id, 'go', i)));
    expect(await Promise.all(ids.map((id) => client.getHandle(id).result({ timeout: '5s' })))).toEqual([0, 1, 2, 3]);
    expect(maxActive).toBe(1);
  });

  it('concurrency 2 runs at most two at a time', async () => {
    const { client } = await apps.boot([Busy], { worker: { concurrency: 2 } });
    const handles = await Promise.all(Array.from({ length: 8 }, (_, i) => client.start(Busy, i)));
    await Promise.all(handles.map((h) => h.result({ timeout: '5s' })));
    expect(maxActive).toBeLessThanOrEqual(2);
    expect(maxActive).toBe(2);
  });

  it('graceful shutdown waits for the running step, and another app on the store finishes the run', async () => {
    const store = new SharedMemoryStore();
    const a = await apps.boot([SlowStep], { store, worker: { shutdownGraceMs: 2_000 } }, appProvider('A'));
    await a.client.start(SlowStep, { ms: 150 }, { id: 'drain-1' });
    await eventually(() => executions.length === 1);
    const closing = Date.now();
    apps.forget(a.app);
    await a.app.close();
    expect(Date.now() - closing).toBeGreaterThanOrEqual(100);
    expect(executions[0].aborted).toBe(false);
    const b = await apps.boot([SlowStep], { store }, appProvider('B'));
    expect(await b.client.getHandle('drain-1').result({ timeout: '3s' })).toBe('slow@A+after@B');
    expect(executions.map((e) => [e.step, e.app])).toEqual([
      ['slow', 'A'],
      ['after', 'B'],
    ]);
    const info = await b.client.describe('drain-1');
    expect(info?.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['slow', 'completed', 1],
      ['after', 'completed', 1],
    ]);
  });

  it('past shutdownGraceMs the step is aborted (ctx.signal) and released; another app re-runs it with the same key and attempt', async () => {
    const store = new SharedMemoryStore();
    const a = await apps.boot([SlowStep], { store, worker: { shutdownGraceMs: 50 } }, appProvider('A'));
    await a.client.start(SlowStep, { ms: 5_000 }, { id: 'drain-2' });
    await eventually(() => executions.length === 1);
    const closing = Date.now();
    apps.forget(a.app);
    await a.app.close();
    expect(Date.now() - closing).toBeLessThan(1_500);
    await eventually(() => executions[0].aborted !== undefined, 2_000);
    expect(executions[0].aborted).toBe(true);
    const b = await apps.boot([SlowStep], { store }, appProvider('B'));
    expect(await b.client.getHandle('drain-2').result({ timeout: '3s' })).toBe('slow@B+after@B');
    expect(executions.map((e) => [e.step, e.app, e.key, e.attempt])).toEqual([
      ['slow', 'A', 'drain-2:slow', 1],
      ['slow', 'B', 'drain-2:slow', 1],
      ['after', 'B', 'drain-2:after', 1],
    ]);
    const info = await b.client.describe('drain-2');
    expect(info?.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['slow', 'completed', 1],
      ['after', 'completed', 1],
    ]);
  });

  it('retention purges completed runs older than its age and keeps failed ones', async () => {
    const { client } = await apps.boot([EndsEither], { retention: { completed: 50 } });
    await client.execute(EndsEither, 'ok', { id: 'keep-not' });
    await client.execute(EndsEither, 'fail', { id: 'keep-failed' }).catch(() => undefined);
    await eventually(async () => (await client.describe('keep-not')) === undefined, 4_000);
    expect((await client.describe('keep-failed'))?.status).toBe('failed');
  });

  it('retention.failed purges failed runs and keeps completed ones', async () => {
    const { client } = await apps.boot([EndsEither], { retention: { failed: '50ms' } });
    await client.execute(EndsEither, 'ok', { id: 'kept-ok' });
    await client.execute(EndsEither, 'fail', { id: 'gone-failed' }).catch(() => undefined);
    await eventually(async () => (await client.describe('gone-failed')) === undefined, 4_000);
    expect((await client.describe('kept-ok'))?.status).toBe('completed');
  });

  it('retention leaves live runs alone', async () => {
    const { client } = await apps.boot([Waits], { retention: { completed: 1, failed: 1 } });
    await client.start(Waits, null, { id: 'live' });
    await sleep(1_200);
    expect((await client.describe('live'))?.status).toBe('waiting');
  });
});
