import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  Flow,
  InvalidRunStateError,
  NonRetryableError,
  RunNotActiveError,
  RunNotFoundError,
  Step,
  Workflow,
  WorkflowCancelledError,
  WorkflowFailedError,
  type CompensationContext,
  type StepContext,
  type WorkflowClient,
} from '../../src/index.js';
import { eventually, gate, rejection, sleep, untilAborted, useApps, type Gate } from './helpers.js';

let calls: Record<string, number> = {};
let attempts: { step: string; attempt: number; key: string }[] = [];
let undos: { step: string; output: unknown; attempt: number; key: string; error: unknown }[] = [];
let failuresLeft: Record<string, number> = {};
let failingUndo: Record<string, number> = {};
let gates: Record<string, Gate> = {};
let aborted: { step: string; aborted: boolean; waitedMs: number }[] = [];

/** Fresh records and switches for every test. */
function resetFixtures(): void {
  calls = {};
  attempts = [];
  undos = [];
  failuresLeft = {};
  failingUndo = {};
  gates = {};
  aborted = [];
}

function g(name: string): Gate {
  return (gates[name] ??= gate());
}
function count(step: string) {
  calls[step] = (calls[step] ?? 0) + 1;
}

async function statusOf(client: WorkflowClient, runId: string, status: string) {
  return eventually(async () => {
    const info = await client.describe(runId);
    return info?.status === status ? info : undefined;
  });
}

@Workflow()
class Approval {
  @Step() ask(input: string) {
    count('ask');
    return Flow.waitForSignal('approve', { value: input });
  }
  @Step() decide(payload: unknown) {
    count('decide');
    return { approved: payload };
  }
}

@Workflow()
class Sleeper {
  @Step() nap(input: number) {
    count('nap');
    return Flow.sleep(input, 'rested');
  }
  @Step() after(prev: string) {
    count('after');
    return `${prev} and done`;
  }
}

@Workflow()
class Blocking {
  @Step() async first(input: string) {
    count('first');
    await g('first').promise;
    return `${input}-1`;
  }
  @Step() second(prev: string) {
    count('second');
    return `${prev}-2`;
  }
}

@Workflow()
class CancelSaga {
  @Step({ compensate: 'undoReserve' }) reserve() {
    count('reserve');
    return 'reservation';
  }
  @Step() async work(_: unknown, ctx: StepContext) {
    count('work');
    const started = Date.now();
    await untilAborted(ctx.signal, 3_000);
    aborted.push({ step: 'work', aborted: ctx.signal.aborted, waitedMs: Date.now() - started });
    return 'worked';
  }
  async undoReserve(output: unknown, ctx: CompensationContext) {
    undos.push({ step: 'reserve', output, attempt: ctx.attempt, key: ctx.idempotencyKey, error: ctx.error });
    await (gates.undo?.promise ?? Promise.resolve());
  }
}

@Workflow()
class WaitSaga {
  @Step({ compensate: 'undoA' }) a() {
    return 'A';
  }
  @Step() wait() {
    return Flow.waitForSignal('go');
  }
  @Step() b(payload: unknown) {
    count('b');
    return payload;
  }
  undoA(output: unknown, ctx: CompensationContext) {
    undos.push({ step: 'a', output, attempt: ctx.attempt, key: ctx.idempotencyKey, error: ctx.error });
  }
}

@Workflow()
class Fixable {
  @Step() a(input: string) {
    count('a');
    return input;
  }
  @Step({ retry: { maxAttempts: 2, delay: 5 } }) b(prev: string, ctx: StepContext) {
    attempts.push({ step: 'b', attempt: ctx.attempt, key: ctx.idempotencyKey });
    if ((failuresLeft.b ?? 0) > 0) {
      failuresLeft.b--;
      throw new Error('b is down');
    }
    return `${prev}+b`;
  }
  @Step() c(prev: string) {
    count('c');
    return `${prev}+c`;
  }
}

@Workflow()
class FixableSaga {
  @Step({ compensate: 'undoReserve' }) reserve() {
    return 'R';
  }
  @Step({ compensate: 'undoCharge', retry: { maxAttempts: 2, delay: 5 } }) charge() {
    return 'C';
  }
  @Step() ship() {
    throw new NonRetryableError('no courier');
  }
  undoReserve(output: unknown, ctx: CompensationContext) {
    undos.push({ step: 'reserve', output, attempt: ctx.attempt, key: ctx.idempotencyKey, error: ctx.error });
  }
  undoCharge(output: unknown, ctx: CompensationContext) {
    undos.push({ step: 'charge', output, attempt: ctx.attempt, key: ctx.idempotencyKey, error: ctx.error });
    if ((failingUndo.charge ?? 0) > 0) {
      failingUndo.charge--;
      throw new Error('refund service down');
    }
  }
}

@Workflow()
class TimedApproval {
  @Step() ask() {
    count('ask');
    return Flow.waitForSignal('approve', { timeout: 60 });
  }
  @Step() decide(payload: unknown) {
    count('decide');
    return payload;
  }
}

@Workflow()
class SlowRetry {
  @Step({ retry: { maxAttempts: 5, delay: 2_000, backoff: 'fixed' } }) step(_: unknown, ctx: StepContext) {
    attempts.push({ step: 'step', attempt: ctx.attempt, key: ctx.idempotencyKey });
    throw new Error('try later');
  }
}

@Workflow()
class Quick {
  @Step() only(input: unknown) {
    return input;
  }
}

@Workflow()
class Failing {
  @Step() only() {
    throw new NonRetryableError('always');
  }
}

describe('pause and resume', () => {
  const apps = useApps();
  beforeEach(resetFixtures);

  it('pausing a waiting run shows paused at once; resume puts it back to waiting', async () => {
    const { client } = await apps.boot([Approval]);
    await client.start(Approval, 'doc', { id: 'pw-1' });
    await statusOf(client, 'pw-1', 'waiting');
    await client.pause('pw-1');
    const paused = await client.describe('pw-1');
    expect(paused?.status).toBe('paused');
    expect(paused?.steps.map((s) => [s.name, s.status])).toEqual([['ask', 'completed']]);
    await client.resume('pw-1');
    expect((await client.describe('pw-1'))?.status).toBe('waiting');
    await sleep(30);
    expect((await client.describe('pw-1'))?.status).toBe('waiting');
    await client.signal('pw-1', 'approve', 'ok');
    expect(await client.getHandle('pw-1').result()).toEqual({ approved: 'ok' });
  });

  it('a signal sent while paused is kept and consumed after resume', async () => {
    const { client } = await apps.boot([Approval]);
    const handle = await client.start(Approval, 'doc', { id: 'pw-2' });
    await statusOf(client, 'pw-2', 'waiting');
    await client.pause('pw-2');
    await client.signal('pw-2', 'approve', 'while paused');
    await sleep(60);
    expect((await client.describe('pw-2'))?.status).toBe('paused');
    expect(calls.decide).toBeUndefined();
    await client.resume('pw-2');
    expect(await handle.result({ timeout: '2s' })).toEqual({ approved: 'while paused' });
  });

  it('pausing a sleeping run shows paused at once; an elapsed sleep completes at once after resume', async () => {
    const { client } = await apps.boot([Sleeper]);
    const handle = await client.start(Sleeper, 40, { id: 'ps-1' });
    await statusOf(client, 'ps-1', 'sleeping');
    await client.pause('ps-1');
    expect((await client.describe('ps-1'))?.status).toBe('paused');
    await sleep(120);
    expect((await client.describe('ps-1'))?.status).toBe('paused');
    expect(calls.after).toBeUndefined();
    const resumedAt = Date.now();
    await client.resume('ps-1');
    expect(await handle.result({ timeout: '2s' })).toBe('rested and done');
    expect(Date.now() - resumedAt).toBeLessThan(500);
  });

  it('a sleep that has not elapsed at resume goes on sleeping until its wake-up time', async () => {
    const { client } = await apps.boot([Sleeper]);
    const handle = await client.start(Sleeper, 300, { id: 'ps-2' });
    await statusOf(client, 'ps-2', 'sleeping');
    await client.pause('ps-2');
    await client.resume('ps-2');
    expect(['sleeping', 'running']).toContain((await client.describe('ps-2'))?.status);
    await sleep(80);
    expect((await client.describe('ps-2'))?.status).toBe('sleeping');
    expect(await handle.result({ timeout: '3s' })).toBe('rested and done');
  });

  it('an elapsed signal timeout takes effect at once after resume', async () => {
    const { client } = await apps.boot([TimedApproval]);
    const handle = await client.start(TimedApproval, null, { id: 'pt-1' });
    await statusOf(client, 'pt-1', 'waiting');
    await client.pause('pt-1');
    await sleep(120);
    expect((await client.describe('pt-1'))?.status).toBe('paused');
    await client.resume('pt-1');
    const error = await rejection(handle.result({ timeout: '1s' }), WorkflowFailedError);
    expect(error.cause).toMatchObject({ name: 'SignalTimeoutError', step: 'ask' });
    expect(calls.decide).toBeUndefined();
  });

  it('a signal kept while paused wins over a signal timeout that elapsed meanwhile', async () => {
    const { client } = await apps.boot([TimedApproval]);
    const handle = await client.start(TimedApproval, null, { id: 'pt-2' });
    await statusOf(client, 'pt-2', 'waiting');
    await client.pause('pt-2');
    await client.signal('pt-2', 'approve', 'kept');
    await sleep(120);
    await client.resume('pt-2');
    expect(await handle.result({ timeout: '1s' })).toBe('kept');
  });

  it('pausing a pending run shows paused at once; resume makes it pending again', async () => {
    const { client } = await apps.boot([Quick], { worker: { enabled: false } });
    await client.start(Quick, 1, { id: 'pp-1' });
    expect((await client.describe('pp-1'))?.status).toBe('pending');
    await client.pause('pp-1');
    expect((await client.describe('pp-1'))?.status).toBe('paused');
    await client.resume('pp-1');
    expect((await client.describe('pp-1'))?.status).toBe('pending');
  });

  it('pausing a running run takes effect at the step boundary; resume continues from there', async () => {
    const { client } = await apps.boot([Blocking]);
    const handle = await client.start(Blocking, 'x', { id: 'pr-1' });
    await eventually(() => calls.first === 1);
    await client.pause('pr-1');
    expect((await client.describe('pr-1'))?.status).toBe('running');
    g('first').open();
    const paused = await statusOf(client, 'pr-1', 'paused');
    expect(paused.steps[0]).toMatchObject({ name: 'first', status: 'completed', output: 'x-1' });
    await sleep(60);
    expect(calls.second).toBeUndefined();
    expect((await client.describe('pr-1'))?.status).toBe('paused');
    await client.resume('pr-1');
    expect(await handle.result({ timeout: '2s' })).toBe('x-1-2');
    expect(calls.first).toBe(1);
    expect(calls.second).toBe(1);
  });

  it('resume before the step boundary withdraws the pause', async () => {
    const { client } = await apps.boot([Blocking]);
    const handle = await client.start(Blocking, 'y', { id: 'pr-2' });
    await eventually(() => calls.first === 1);
    await client.pause('pr-2');
    await client.resume('pr-2');
    g('first').open();
    expect(await handle.result({ timeout: '2s' })).toBe('y-1-2');
  });

  it('pausing a paused run is a no-op', async () => {
    const { client } = await apps.boot([Approval]);
    await client.start(Approval, 'doc', { id: 'pp-noop' });
    await statusOf(client, 'pp-noop', 'waiting');
    await client.pause('pp-noop');
    const before = await client.describe('pp-noop');
    await client.pause('pp-noop');
    const after = await client.describe('pp-noop');
    expect(after?.status).toBe('paused');
    expect({ ...after, updatedAt: undefined }).toEqual({ ...before, updatedAt: undefined });
  });

  it('resuming a run that is not paused is a no-op', async () => {
    const { client } = await apps.boot([Blocking, Approval]);
    const handle = await client.start(Blocking, 'z', { id: 'rs-noop' });
    await eventually(() => calls.first === 1);
    await client.resume('rs-noop');
    expect((await client.describe('rs-noop'))?.status).toBe('running');
    g('first').open();
    expect(await handle.result()).toBe('z-1-2');
    await client.start(Approval, 'doc', { id: 'rs-noop-2' });
    await statusOf(client, 'rs-noop-2', 'waiting');
    await client.resume('rs-noop-2');
    expect((await client.describe('rs-noop-2'))?.status).toBe('waiting');
  });
});

describe('cancel', () => {
  const apps = useApps();
  beforeEach(resetFixtures);

  it('cancel aborts the running step ctx.signal', async () => {
    const { client } = await apps.boot([CancelSaga]);
    const handle = await client.start(CancelSaga, null, { id: 'c-abort' });
    await eventually(() => calls.work === 1);
    await client.cancel('c-abort');
    await eventually(() => aborted.length === 1, 2_000);
    expect(aborted[0].aborted).toBe(true);
    expect(aborted[0].waitedMs).toBeLessThan(1_000);
    await rejection(handle.result(), WorkflowCancelledError);
  });

  it('cancel runs the compensations (status compensating), then ends cancelled', async () => {
    const { client } = await apps.boot([CancelSaga]);
    gates.undo = gate();
    const handle = await client.start(CancelSaga, null, { id: 'c-comp' });
    await eventually(() => calls.work === 1);
    await client.cancel('c-comp');
    const compensating = await statusOf(client, 'c-comp', 'compensating');
    expect(compensating.steps[0].name).toBe('reserve');
    expect(undos.map((u) => [u.step, u.output, u.key])).toEqual([['reserve', 'reservation', 'c-comp:reserve:compensate']]);
    gates.undo.open();
    const info = await statusOf(client, 'c-comp', 'cancelled');
    expect(info.steps[0]).toMatchObject({ name: 'reserve', status: 'compensated' });
    expect(info.steps[1].name).toBe('work');
    expect(info.steps[1].status).not.toBe('completed');
    expect(info.finishedAt).toBeInstanceOf(Date);
    const error = await rejection(handle.result(), WorkflowCancelledError, 'CAIRN_WORKFLOW_CANCELLED');
    expect(error.runId).toBe('c-comp');
    expect(undos).toHaveLength(1);
  });

  it('the compensation of a cancel gets a WorkflowCancelledError as ctx.error', async () => {
    const { client } = await apps.boot([CancelSaga]);
    await client.start(CancelSaga, null, { id: 'c-err' });
    await eventually(() => calls.work === 1);
    await client.cancel('c-err');
    await statusOf(client, 'c-err', 'cancelled');
    expect(undos[0].error).toBeInstanceOf(WorkflowCancelledError);
  });

  it('cancel { compensate: false } ends the run cancelled without compensating', async () => {
    const { client } = await apps.boot([CancelSaga]);
    const handle = await client.start(CancelSaga, null, { id: 'c-nocomp' });
    await eventually(() => calls.work === 1);
    await client.cancel('c-nocomp', { compensate: false });
    await rejection(handle.result(), WorkflowCancelledError);
    const info = await client.describe('c-nocomp');
    expect(info?.status).toBe('cancelled');
    expect(info?.steps[0]).toMatchObject({ name: 'reserve', status: 'completed' });
    expect(undos).toEqual([]);
  });

  it('cancelling a cancelled run is a no-op', async () => {
    const { client } = await apps.boot([CancelSaga]);
    await client.start(CancelSaga, null, { id: 'c-twice' });
    await eventually(() => calls.work === 1);
    await client.cancel('c-twice');
    const before = await statusOf(client, 'c-twice', 'cancelled');
    await client.cancel('c-twice');
    await client.cancel('c-twice', { compensate: false });
    expect(await client.describe('c-twice')).toEqual(before);
    expect(undos).toHaveLength(1);
  });

  it('cancelling a compensating run changes nothing', async () => {
    const { client } = await apps.boot([CancelSaga]);
    gates.undo = gate();
    await client.start(CancelSaga, null, { id: 'c-during' });
    await eventually(() => calls.work === 1);
    await client.cancel('c-during');
    await statusOf(client, 'c-during', 'compensating');
    await client.cancel('c-during', { compensate: false });
    expect((await client.describe('c-during'))?.status).toBe('compensating');
    gates.undo.open();
    const info = await statusOf(client, 'c-during', 'cancelled');
    expect(info.steps[0].status).toBe('compensated');
    expect(undos).toHaveLength(1);
  });

  it('cancelling a waiting run compensates and ends cancelled', async () => {
    const { client } = await apps.boot([WaitSaga]);
    const handle = await client.start(WaitSaga, null, { id: 'c-wait' });
    await statusOf(client, 'c-wait', 'waiting');
    await client.cancel('c-wait');
    await rejection(handle.result({ timeout: '2s' }), WorkflowCancelledError);
    expect(undos.map((u) => [u.step, u.output])).toEqual([['a', 'A']]);
    expect((await client.describe('c-wait'))?.status).toBe('cancelled');
    expect(calls.b).toBeUndefined();
    await rejection(client.signal('c-wait', 'go', 1), RunNotActiveError);
  });

  it('cancelling a paused run ends it cancelled', async () => {
    const { client } = await apps.boot([WaitSaga]);
    const handle = await client.start(WaitSaga, null, { id: 'c-paused' });
    await statusOf(client, 'c-paused', 'waiting');
    await client.pause('c-paused');
    await client.cancel('c-paused');
    await rejection(handle.result({ timeout: '2s' }), WorkflowCancelledError);
    expect((await client.describe('c-paused'))?.status).toBe('cancelled');
    expect(undos).toHaveLength(1);
  });

  it('cancelling a run in a retry delay ends it without waiting for the delay', async () => {
    const { client } = await apps.boot([SlowRetry]);
    const handle = await client.start(SlowRetry, null, { id: 'c-retry' });
    await eventually(() => attempts.length === 1);
    await client.cancel('c-retry');
    await rejection(handle.result({ timeout: '1s' }), WorkflowCancelledError);
    expect(attempts).toHaveLength(1);
  });

  it('cancelling a run with nothing to compensate ends it cancelled', async () => {
    const { client } = await apps.boot([Blocking]);
    const handle = await client.start(Blocking, 'q', { id: 'c-plain' });
    await eventually(() => calls.first === 1);
    await client.cancel('c-plain');
    await rejection(handle.result({ timeout: '1s' }), WorkflowCancelledError);
    expect((await client.describe('c-plain'))?.status).toBe('cancelled');
    g('first').open();
    await sleep(30);
    expect(calls.second).toBeUndefined();
    expect((await client.describe('c-plain'))?.status).toBe('cancelled');
  });

  it('cancelling a sleeping run ends it cancelled without waiting for the wake-up', async () => {
    const { client } = await apps.boot([Sleeper]);
    const handle = await client.start(Sleeper, 5_000, { id: 'c-sleep' });
    await statusOf(client, 'c-sleep', 'sleeping');
    await client.cancel('c-sleep', { compensate: false });
    await rejection(handle.result({ timeout: '2s' }), WorkflowCancelledError);
    expect(calls.after).toBeUndefined();
  });
});

describe('control calls on unknown and ended runs', () => {
  const apps = useApps();
  beforeEach(resetFixtures);

  it('signal, cancel, pause, resume and retry of an unknown run throw RunNotFoundError and create nothing', async () => {
    const { client } = await apps.boot([Quick]);
    await rejection(client.signal('ghost', 's', 1), RunNotFoundError, 'CAIRN_RUN_NOT_FOUND');
    await rejection(client.cancel('ghost'), RunNotFoundError, 'CAIRN_RUN_NOT_FOUND');
    await rejection(client.pause('ghost'), RunNotFoundError, 'CAIRN_RUN_NOT_FOUND');
    await rejection(client.resume('ghost'), RunNotFoundError, 'CAIRN_RUN_NOT_FOUND');
    await rejection(client.retry('ghost'), RunNotFoundError, 'CAIRN_RUN_NOT_FOUND');
    expect(await client.describe('ghost')).toBeUndefined();
    expect((await client.list()).runs).toEqual([]);
  });

  it('signal, pause, resume and cancel of a completed run throw RunNotActiveError and change nothing', async () => {
    const { client } = await apps.boot([Quick]);
    await client.execute(Quick, 'v', { id: 'done-1' });
    const before = await client.describe('done-1');
    for (const call of [
      () => client.signal('done-1', 's', 1),
      () => client.pause('done-1'),
      () => client.resume('done-1'),
      () => client.cancel('done-1'),
      () => client.cancel('done-1', { compensate: false }),
    ]) {
      const error = await rejection(call, RunNotActiveError, 'CAIRN_RUN_NOT_ACTIVE');
      expect(error.runId).toBe('done-1');
    }
    expect(await client.describe('done-1')).toEqual(before);
  });

  it('signal, pause, resume and cancel of a failed run throw RunNotActiveError and change nothing', async () => {
    const { client } = await apps.boot([Failing]);
    await client.execute(Failing, null, { id: 'failed-1' }).catch(() => undefined);
    const before = await client.describe('failed-1');
    expect(before?.status).toBe('failed');
    await rejection(client.signal('failed-1', 's', 1), RunNotActiveError);
    await rejection(client.pause('failed-1'), RunNotActiveError);
    await rejection(client.resume('failed-1'), RunNotActiveError);
    await rejection(client.cancel('failed-1'), RunNotActiveError);
    expect(await client.describe('failed-1')).toEqual(before);
  });

  it('retry of a run that is not failed throws InvalidRunStateError and changes nothing', async () => {
    const { client } = await apps.boot([Quick, Approval, CancelSaga]);
    await client.execute(Quick, 'v', { id: 'ok-1' });
    await client.start(Approval, 'doc', { id: 'wait-1' });
    await statusOf(client, 'wait-1', 'waiting');
    await client.start(CancelSaga, null, { id: 'cancelled-1' });
    await eventually(() => calls.work === 1);
    await client.cancel('cancelled-1', { compensate: false });
    await statusOf(client, 'cancelled-1', 'cancelled');
    for (const runId of ['ok-1', 'wait-1', 'cancelled-1']) {
      const before = await client.describe(runId);
      const error = await rejection(client.retry(runId), InvalidRunStateError, 'CAIRN_INVALID_RUN_STATE');
      expect(error.runId).toBe(runId);
      expect(await client.describe(runId)).toEqual(before);
    }
  });

  it('retry of a compensated run throws InvalidRunStateError', async () => {
    const { client } = await apps.boot([FixableSaga]);
    await client.execute(FixableSaga, null, { id: 'comp-1' }).catch(() => undefined);
    expect((await client.describe('comp-1'))?.status).toBe('compensated');
    await rejection(client.retry('comp-1'), InvalidRunStateError);
    expect((await client.describe('comp-1'))?.status).toBe('compensated');
  });
});

describe('retry of a failed run', () => {
  const apps = useApps();
  beforeEach(resetFixtures);

  it('re-runs the failed step with the same key, counting attempts on, in the same steps entry, and completes', async () => {
    const { client } = await apps.boot([Fixable]);
    failuresLeft.b = 2;
    const handle = await client.start(Fixable, 'in', { id: 'fix-1' });
    await rejection(handle.result(), WorkflowFailedError);
    const failed = await client.describe('fix-1');
    expect(failed?.status).toBe('failed');
    expect(failed?.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['a', 'completed', 1],
      ['b', 'failed', 2],
    ]);
    await client.retry('fix-1');
    expect(await client.getHandle('fix-1').result({ timeout: '2s' })).toBe('in+b+c');
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    expect(new Set(attempts.map((a) => a.key))).toEqual(new Set(['fix-1:b']));
    expect(calls.a).toBe(1);
    const info = await client.describe('fix-1');
    expect(info?.status).toBe('completed');
    expect(info?.error).toBeUndefined();
    expect(info?.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['a', 'completed', 1],
      ['b', 'completed', 3],
      ['c', 'completed', 1],
    ]);
  });

  it('gives the retried step a fresh budget of maxAttempts attempts', async () => {
    const { client } = await apps.boot([Fixable]);
    failuresLeft.b = 3;
    const handle = await client.start(Fixable, 'in', { id: 'fix-2' });
    await rejection(handle.result(), WorkflowFailedError);
    await client.retry('fix-2');
    expect(await client.getHandle('fix-2').result({ timeout: '2s' })).toBe('in+b+c');
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4]);
    expect((await client.describe('fix-2'))?.steps[1].attempts).toBe(4);
  });

  it('a retried run that fails again is failed again, and can be retried again', async () => {
    const { client } = await apps.boot([Fixable]);
    failuresLeft.b = 4;
    const handle = await client.start(Fixable, 'in', { id: 'fix-3' });
    await rejection(handle.result(), WorkflowFailedError);
    await client.retry('fix-3');
    const error = await rejection(client.getHandle('fix-3').result({ timeout: '2s' }), WorkflowFailedError);
    expect(error.step).toBe('b');
    const info = await client.describe('fix-3');
    expect(info?.status).toBe('failed');
    expect(info?.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['a', 'completed', 1],
      ['b', 'failed', 4],
    ]);
    await client.retry('fix-3');
    expect(await client.getHandle('fix-3').result({ timeout: '2s' })).toBe('in+b+c');
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4, 5]);
  });

  it('retry after a failed compensation re-runs that compensation and goes on compensating', async () => {
    const { client } = await apps.boot([FixableSaga]);
    failingUndo.charge = 2;
    const handle = await client.start(FixableSaga, null, { id: 'fixc-1' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.cause).toMatchObject({ phase: 'compensation', step: 'charge', message: 'refund service down' });
    expect(undos.map((u) => [u.step, u.attempt])).toEqual([
      ['charge', 1],
      ['charge', 2],
    ]);
    await client.retry('fixc-1');
    const final = await rejection(client.getHandle('fixc-1').result({ timeout: '2s' }), WorkflowFailedError);
    expect(final.cause).toMatchObject({ name: 'NonRetryableError', message: 'no courier', step: 'ship', phase: 'step' });
    expect(undos.map((u) => [u.step, u.attempt, u.key])).toEqual([
      ['charge', 1, 'fixc-1:charge:compensate'],
      ['charge', 2, 'fixc-1:charge:compensate'],
      ['charge', 3, 'fixc-1:charge:compensate'],
      ['reserve', 1, 'fixc-1:reserve:compensate'],
    ]);
    const info = await client.describe('fixc-1');
    expect(info?.status).toBe('compensated');
    expect(info?.error).toEqual({ name: 'NonRetryableError', message: 'no courier', step: 'ship', phase: 'step' });
    expect(info?.steps.map((s) => [s.name, s.status])).toEqual([
      ['reserve', 'compensated'],
      ['charge', 'compensated'],
      ['ship', 'failed'],
    ]);
  });

  it('retry of a run failed by a signal timeout waits for the signal again', async () => {
    const { client } = await apps.boot([TimedApproval]);
    const handle = await client.start(TimedApproval, null, { id: 'fix-wait' });
    await rejection(handle.result({ timeout: '1s' }), WorkflowFailedError);
    await client.retry('fix-wait');
    await statusOf(client, 'fix-wait', 'waiting');
    await client.signal('fix-wait', 'approve', 'second chance');
    expect(await client.getHandle('fix-wait').result({ timeout: '1s' })).toBe('second chance');
  });

  it('retry makes a failed run live again (pending or running) at once', async () => {
    const { client } = await apps.boot([Fixable]);
    failuresLeft.b = 2;
    await client.execute(Fixable, 'in', { id: 'fix-4' }).catch(() => undefined);
    await client.retry('fix-4');
    const info = await client.describe('fix-4');
    expect(['pending', 'running', 'completed']).toContain(info?.status);
    expect(await client.getHandle('fix-4').result({ timeout: '2s' })).toBe('in+b+c');
  });
});
