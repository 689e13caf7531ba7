import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  Flow,
  NonRetryableError,
  Step,
  Workflow,
  WorkflowFailedError,
  type CompensationContext,
  type StepContext,
} from '../../src/index.js';
import { rejection, useApps } from './helpers.js';

interface Undo {
  step: string;
  output: unknown;
  error: unknown;
  key: string;
  attempt: number;
  runId: string;
  ctxStep: string;
}
let undos: Undo[] = [];
let failingUndo: Record<string, number> = {};
let calls: Record<string, number> = {};

function undo(step: string, output: unknown, ctx: CompensationContext) {
  undos.push({ step, output, error: ctx.error, key: ctx.idempotencyKey, attempt: ctx.attempt, runId: ctx.runId, ctxStep: ctx.step });
  if ((failingUndo[step] ?? 0) > 0) {
    failingUndo[step]--;
    throw new Error(`cannot undo ${step}`);
  }
}

@Workflow('saga')
class Saga {
  @Step({ compensate: 'undoReserve' }) reserve(input: { order: string }) {
    return { reservation: `R-${input.order}` };
  }
  @Step({ compensate: 'undoCharge', retry: { maxAttempts: 3, delay: 5 } }) charge() {
    return { charge: 'C-1' };
  }
  @Step() ship(_: unknown, ctx: StepContext) {
    calls.ship = (calls.ship ?? 0) + 1;
    throw new NonRetryableError(`no courier for run ${ctx.runId}`);
  }
  undoReserve(output: unknown, ctx: CompensationContext) {
    undo('reserve', output, ctx);
  }
  undoCharge(output: unknown, ctx: CompensationContext) {
    undo('charge', output, ctx);
  }
}

@Workflow()
class PartlyCompensated {
  @Step({ compensate: 'undoA' }) a() {
    return 'a-out';
  }
  @Step() b() {
    return 'b-out';
  }
  @Step({ retry: { maxAttempts: 2, delay: 5 } }) c() {
    throw new Error('c broke');
  }
  undoA(output: unknown, ctx: CompensationContext) {
    undo('a', output, ctx);
  }
}

@Workflow()
class NothingToUndo {
  @Step() a() {
    return 1;
  }
  @Step() b() {
    throw new NonRetryableError('b broke');
  }
}

@Workflow()
class FirstStepFails {
  @Step({ compensate: 'undoA' }) a() {
    throw new NonRetryableError('a broke');
  }
  undoA(output: unknown, ctx: CompensationContext) {
    undo('a', output, ctx);
  }
}

@Workflow()
class LoopSaga {
  @Step({ compensate: 'undoLoop' }) loop(prev: number) {
    const n = (prev ?? 0) + 1;
    return n < 3 ? Flow.goto('loop', n) : n;
  }
  @Step() boom() {
    throw new NonRetryableError('boom');
  }
  undoLoop(output: unknown, ctx: CompensationContext) {
    undo('loop', output, ctx);
  }
}

@Workflow()
class AsyncCompensation {
  @Step({ compensate: 'undoA' }) a() {
    return 'a';
  }
  @Step() b() {
    throw new NonRetryableError('b');
  }
  async undoA(output: unknown, ctx: CompensationContext) {
    await new Promise((r) => setTimeout(r, 5));
    undo('a', output, ctx);
  }
}

describe('compensation', () => {
  const apps = useApps();
  beforeEach(() => {
    undos = [];
    failingUndo = {};
    calls = {};
  });

  it('compensates the completed steps in reverse order when a step fails for good', async () => {
    const { client } = await apps.boot([Saga]);
    const handle = await client.start(Saga, { order: 'o1' }, { id: 'saga-1' });
    await rejection(handle.result(), WorkflowFailedError);
    expect(undos.map((u) => u.step)).toEqual(['charge', 'reserve']);
    expect(calls.ship).toBe(1);
  });

  it('each compensation receives its step output and the failure in ctx.error', async () => {
    const { client } = await apps.boot([Saga]);
    const handle = await client.start(Saga, { order: 'o2' }, { id: 'saga-2' });
    await rejection(handle.result(), WorkflowFailedError);
    expect(undos.map((u) => u.output)).toEqual([{ charge: 'C-1' }, { reservation: 'R-o2' }]);
    for (const u of undos) {
      expect(u.error).toBeInstanceOf(NonRetryableError);
      expect((u.error as Error).message).toBe('no courier for run saga-2');
      expect(u.runId).toBe('saga-2');
      expect(u.attempt).toBe(1);
    }
    expect(undos.map((u) => u.ctxStep)).toEqual(['charge', 'reserve']);
  });

  it('a compensation idempotency key is the visit key followed by :compensate', async () => {
    const { client } = await apps.boot([Saga]);
    const handle = await client.start(Saga, { order: 'o3' }, { id: 'saga-3' });
    await rejection(handle.result(), WorkflowFailedError);
    expect(undos.map((u) => u.key)).toEqual(['saga-3:charge:compensate', 'saga-3:reserve:compensate']);
  });

  it('ends the run compensated with steps compensated/compensated/failed and the failure as its error', async () => {
    const { client } = await apps.boot([Saga]);
    const handle = await client.start(Saga, { order: 'o4' }, { id: 'saga-4' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.step).toBe('ship');
    expect(error.cause).toEqual({ name: 'NonRetryableError', message: 'no courier for run saga-4', step: 'ship', phase: 'step' });
    const info = await client.describe('saga-4');
    expect(info?.status).toBe('compensated');
    expect(info?.steps.map((s) => [s.name, s.status])).toEqual([
      ['reserve', 'compensated'],
      ['charge', 'compensated'],
      ['ship', 'failed'],
    ]);
    expect(info?.steps[0].output).toEqual({ reservation: 'R-o4' });
    expect(info?.error).toEqual({ name: 'NonRetryableError', message: 'no courier for run saga-4', step: 'ship', phase: 'step' });
    expect(info?.output).toBeUndefined();
    expect(info?.finishedAt).toBeInstanceOf(Date);
  });

  it('a compensation that fails for good ends the run failed with phase compensation and the undone step', async () => {
    const { client } = await apps.boot([Saga]);
    failingUndo.charge = 99;
    const handle = await client.start(Saga, { order: 'o5' }, { id: 'saga-5' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.step).toBe('charge');
    expect(error.cause).toEqual({ name: 'Error', message: 'cannot undo charge', step: 'charge', phase: 'compensation' });
    const info = await client.describe('saga-5');
    expect(info?.status).toBe('failed');
    expect(info?.error).toEqual({ name: 'Error', message: 'cannot undo charge', step: 'charge', phase: 'compensation' });
    expect(info?.steps[1].name).toBe('charge');
    expect(info?.steps[1].error).toContain('cannot undo charge');
    expect(info?.steps[1].status).not.toBe('compensated');
    expect(info?.steps[2].status).toBe('failed');
  });

  it('a compensation is retried with its step retry policy', async () => {
    const { client } = await apps.boot([Saga]);
    failingUndo.charge = 2;
    const handle = await client.start(Saga, { order: 'o6' }, { id: 'saga-6' });
    await rejection(handle.result(), WorkflowFailedError);
    expect(undos.map((u) => [u.step, u.attempt])).toEqual([
      ['charge', 1],
      ['charge', 2],
      ['charge', 3],
      ['reserve', 1],
    ]);
    expect(new Set(undos.filter((u) => u.step === 'charge').map((u) => u.key))).toEqual(new Set(['saga-6:charge:compensate']));
    expect((await client.describe('saga-6'))?.status).toBe('compensated');
  });

  it('a compensation without a retry policy gets one attempt', async () => {
    const { client } = await apps.boot([Saga]);
    failingUndo.reserve = 1;
    const handle = await client.start(Saga, { order: 'o7' }, { id: 'saga-7' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.cause.phase).toBe('compensation');
    expect(error.step).toBe('reserve');
    expect(undos.map((u) => u.step)).toEqual(['charge', 'reserve']);
    const info = await client.describe('saga-7');
    expect(info?.steps.map((s) => s.status)).toEqual(['completed', 'compensated', 'failed']);
  });

  it('only steps that declare a compensation are compensated', async () => {
    const { client } = await apps.boot([PartlyCompensated]);
    const handle = await client.start(PartlyCompensated, null, { id: 'part-1' });
    await rejection(handle.result(), WorkflowFailedError);
    expect(undos.map((u) => [u.step, u.output])).toEqual([['a', 'a-out']]);
    expect((undos[0].error as Error).message).toBe('c broke');
    const info = await client.describe('part-1');
    expect(info?.status).toBe('compensated');
    expect(info?.steps.map((s) => [s.name, s.status])).toEqual([
      ['a', 'compensated'],
      ['b', 'completed'],
      ['c', 'failed'],
    ]);
    expect(info?.steps[2].attempts).toBe(2);
  });

  it('with no compensation declared the run ends failed', async () => {
    const { client } = await apps.boot([NothingToUndo]);
    const handle = await client.start(NothingToUndo, null, { id: 'none-1' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.step).toBe('b');
    const info = await client.describe('none-1');
    expect(info?.status).toBe('failed');
    expect(info?.error).toEqual({ name: 'NonRetryableError', message: 'b broke', step: 'b', phase: 'step' });
    expect(info?.steps.map((s) => s.status)).toEqual(['completed', 'failed']);
  });

  it('a failed step is not compensated itself (first step fails: nothing to undo, run failed)', async () => {
    const { client } = await apps.boot([FirstStepFails]);
    const handle = await client.start(FirstStepFails, null, { id: 'first-1' });
    await rejection(handle.result(), WorkflowFailedError);
    expect(undos).toEqual([]);
    expect((await client.describe('first-1'))?.status).toBe('failed');
  });

  it('a step completed on several goto visits is compensated once per visit, latest first, with `#n:compensate` keys', async () => {
    const { client } = await apps.boot([LoopSaga]);
    const handle = await client.start(LoopSaga, 0, { id: 'lsaga' });
    await rejection(handle.result(), WorkflowFailedError);
    expect(undos.map((u) => [u.output, u.key])).toEqual([
      [3, 'lsaga:loop#3:compensate'],
      [2, 'lsaga:loop#2:compensate'],
      [1, 'lsaga:loop:compensate'],
    ]);
    const info = await client.describe('lsaga');
    expect(info?.status).toBe('compensated');
    expect(info?.steps.map((s) => [s.name, s.status])).toEqual([
      ['loop', 'compensated'],
      ['loop', 'compensated'],
      ['loop', 'compensated'],
      ['boom', 'failed'],
    ]);
  });

  it('async compensations are awaited', async () => {
    const { client } = await apps.boot([AsyncCompensation]);
    const handle = await client.start(AsyncCompensation, null, { id: 'async-comp' });
    await rejection(handle.result(), WorkflowFailedError);
    expect(undos.map((u) => u.step)).toEqual(['a']);
    expect((await client.describe('async-comp'))?.status).toBe('compensated');
  });
});
