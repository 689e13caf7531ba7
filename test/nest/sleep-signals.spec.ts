import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  Flow,
  InvalidArgumentError,
  PayloadTooLargeError,
  RunNotActiveError,
  RunNotFoundError,
  SignalTimeoutError,
  Step,
  Workflow,
  WorkflowFailedError,
  type CompensationContext,
  type StepContext,
} from '../../src/index.js';
import { eventually, gate, rejection, sleep, useApps, type Gate } from './helpers.js';

let received: { step: string; value: unknown; at: number }[] = [];
let calls: Record<string, number> = {};
let undos: { step: string; output: unknown; error: unknown }[] = [];
let hold: Gate = gate();

function got(step: string, value: unknown) {
  received.push({ step, value, at: Date.now() });
  calls[step] = (calls[step] ?? 0) + 1;
}

@Workflow()
class Sleeper {
  @Step() nap(input: { for: number | string }) {
    got('nap', input);
    return Flow.sleep(input.for, { slept: input.for });
  }
  @Step() wake(prev: unknown) {
    got('wake', prev);
    return { woke: prev };
  }
}

@Workflow()
class DateSleeper {
  @Step() nap(input: { ms: number }) {
    return Flow.sleep(new Date(Date.now() + input.ms), 'dated');
  }
  @Step() wake(prev: unknown) {
    got('wake', prev);
    return prev;
  }
}

@Workflow()
class SleepLast {
  @Step() first() {
    return 'first';
  }
  @Step() nap() {
    return Flow.sleep(20, 'final value');
  }
}

@Workflow()
class EarlyExit {
  @Step() check(input: { early: boolean }) {
    got('check', input);
    return input.early ? Flow.complete({ early: true }) : { early: false };
  }
  @Step() more(prev: unknown) {
    got('more', prev);
    return { more: prev };
  }
  @Step() evenMore(prev: unknown) {
    got('evenMore', prev);
    return prev;
  }
}

@Workflow()
class Approval {
  @Step() ask(input: { doc: string }) {
    got('ask', input);
    return Flow.waitForSignal('approve', { value: { asked: input.doc } });
  }
  @Step() decide(payload: unknown, ctx: StepContext) {
    got('decide', payload);
    return { decision: payload, asked: ctx.results.ask };
  }
}

@Workflow()
class GatedApproval {
  @Step() async prepare(input: string) {
    await hold.promise;
    return input;
  }
  @Step() ask() {
    return Flow.waitForSignal('approve');
  }
  @Step() decide(payload: unknown) {
    got('decide', payload);
    return payload;
  }
}

@Workflow()
class TwoWaits {
  @Step() first() {
    return Flow.waitForSignal('item');
  }
  @Step() second(p1: unknown) {
    got('second', p1);
    return Flow.waitForSignal('item', { value: p1 });
  }
  @Step() third(p2: unknown, ctx: StepContext) {
    got('third', p2);
    return [ctx.results.second, p2];
  }
}

@Workflow()
class TimedWait {
  @Step({ compensate: 'undoBook' }) book() {
    return 'booked';
  }
  @Step({ compensate: 'undoAsk' }) ask() {
    return Flow.waitForSignal('confirm', { timeout: '50ms', value: 'asked' });
  }
  @Step() finish(payload: unknown) {
    got('finish', payload);
    return payload;
  }
  undoBook(output: unknown, ctx: CompensationContext) {
    undos.push({ step: 'book', output, error: ctx.error });
  }
  undoAsk(output: unknown, ctx: CompensationContext) {
    undos.push({ step: 'ask', output, error: ctx.error });
  }
}

@Workflow()
class TimedWaitNoCompensation {
  @Step() ask() {
    return Flow.waitForSignal('confirm', { timeout: 40 });
  }
  @Step() finish(payload: unknown) {
    got('finish', payload);
    return payload;
  }
}

@Workflow()
class WaitLast {
  @Step() first(input: unknown) {
    return input;
  }
  @Step() ask() {
    return Flow.waitForSignal('answer', { value: 'question' });
  }
}

/** Fresh records and a closed gate for every test. */
function resetFixtures(): void {
  received = [];
  calls = {};
  undos = [];
  hold = gate();
}

describe('Flow.sleep and Flow.complete', () => {
  const apps = useApps();
  beforeEach(resetFixtures);

  it("Flow.sleep('50ms'): sleeping with currentStep the sleeping step, then continues with the value", async () => {
    const { client } = await apps.boot([Sleeper]);
    const started = Date.now();
    const handle = await client.start(Sleeper, { for: '50ms' }, { id: 'sleep-1' });
    const during = await eventually(async () => {
      const info = await client.describe('sleep-1');
      return info?.status === 'sleeping' ? info : undefined;
    });
    expect(during.currentStep).toBe('nap');
    expect(during.steps.map((s) => [s.name, s.status])).toEqual([['nap', 'completed']]);
    expect(await handle.result()).toEqual({ woke: { slept: '50ms' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    const info = await client.describe('sleep-1');
    expect(info?.status).toBe('completed');
    expect(info?.steps.map((s) => [s.name, s.status, s.output])).toEqual([
      ['nap', 'completed', { slept: '50ms' }],
      ['wake', 'completed', { woke: { slept: '50ms' } }],
    ]);
  });

  it('Flow.sleep with a number of ms sleeps that long', async () => {
    const { client } = await apps.boot([Sleeper]);
    await client.execute(Sleeper, { for: 60 });
    const [nap, wake] = received;
    expect(wake.at - nap.at).toBeGreaterThanOrEqual(55);
  });

  it('Flow.sleep until a Date', async () => {
    const { client } = await apps.boot([DateSleeper]);
    const started = Date.now();
    const handle = await client.start(DateSleeper, { ms: 60 }, { id: 'date-1' });
    const during = await eventually(async () => {
      const info = await client.describe('date-1');
      return info?.status === 'sleeping' ? info : undefined;
    });
    expect(during.currentStep).toBe('nap');
    expect(await handle.result()).toBe('dated');
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    expect((await client.describe('date-1'))?.steps[0].output).toBe('dated');
  });

  it('a Date in the past wakes at once', async () => {
    const { client } = await apps.boot([DateSleeper]);
    expect(await client.execute(DateSleeper, { ms: -10_000 }, { timeout: '2s' })).toBe('dated');
  });

  it('when the last step sleeps, the run output is the sleep value', async () => {
    const { client } = await apps.boot([SleepLast]);
    expect(await client.execute(SleepLast, null, { id: 'sl-1' })).toBe('final value');
    const info = await client.describe('sl-1');
    expect(info?.output).toBe('final value');
    expect(info?.steps.map((s) => [s.name, s.output])).toEqual([
      ['first', 'first'],
      ['nap', 'final value'],
    ]);
  });

  it('Flow.complete ends the run early with its value; later steps do not run and are not listed', async () => {
    const { client } = await apps.boot([EarlyExit]);
    expect(await client.execute(EarlyExit, { early: true }, { id: 'early-1' })).toEqual({ early: true });
    expect(calls.more).toBeUndefined();
    const info = await client.describe('early-1');
    expect(info?.status).toBe('completed');
    expect(info?.steps.map((s) => [s.name, s.status, s.output])).toEqual([['check', 'completed', { early: true }]]);
    expect(await client.execute(EarlyExit, { early: false })).toEqual({ more: { early: false } });
  });
});

describe('signals', () => {
  const apps = useApps();
  beforeEach(resetFixtures);

  it('waitForSignal: status waiting with currentStep the waiting step; the signal payload goes to the next step', async () => {
    const { client } = await apps.boot([Approval]);
    const handle = await client.start(Approval, { doc: 'd1' }, { id: 'ap-1' });
    const waiting = await eventually(async () => {
      const info = await client.describe('ap-1');
      return info?.status === 'waiting' ? info : undefined;
    });
    expect(waiting.currentStep).toBe('ask');
    expect(waiting.steps.map((s) => [s.name, s.status, s.output])).toEqual([['ask', 'completed', { asked: 'd1' }]]);
    await sleep(30);
    expect(calls.decide).toBeUndefined();
    await client.signal('ap-1', 'approve', { by: 'alice' });
    expect(await handle.result()).toEqual({ decision: { by: 'alice' }, asked: { asked: 'd1' } });
    const info = await client.describe('ap-1');
    expect(info?.status).toBe('completed');
    expect(info?.steps.map((s) => s.name)).toEqual(['ask', 'decide']);
  });

  it('a signal with another name does not end the wait', async () => {
    const { client } = await apps.boot([Approval]);
    const handle = await client.start(Approval, { doc: 'd2' }, { id: 'ap-2' });
    await eventually(async () => (await client.describe('ap-2'))?.status === 'waiting');
    await client.signal('ap-2', 'reject', 'nope');
    await sleep(50);
    expect((await client.describe('ap-2'))?.status).toBe('waiting');
    expect(calls.decide).toBeUndefined();
    await client.signal('ap-2', 'approve', 'yes');
    expect(await handle.result()).toEqual({ decision: 'yes', asked: { asked: 'd2' } });
  });

  it('a signal without payload delivers undefined', async () => {
    const { client } = await apps.boot([Approval]);
    const handle = await client.start(Approval, { doc: 'd3' }, { id: 'ap-3' });
    await eventually(async () => (await client.describe('ap-3'))?.status === 'waiting');
    await client.signal('ap-3', 'approve');
    expect(await handle.result()).toEqual({ decision: undefined, asked: { asked: 'd3' } });
  });

  it('a signal sent before the run reaches its wait is kept and consumed by that wait', async () => {
    const { client } = await apps.boot([GatedApproval]);
    const handle = await client.start(GatedApproval, 'x', { id: 'early-sig' });
    await eventually(async () => (await client.describe('early-sig'))?.status === 'running');
    await client.signal('early-sig', 'approve', { early: true });
    hold.open();
    expect(await handle.result({ timeout: '2s' })).toEqual({ early: true });
    expect(received.map((r) => r.value)).toEqual([{ early: true }]);
  });

  it('two signals of one name are consumed first in first out by two waits', async () => {
    const { client } = await apps.boot([TwoWaits]);
    const handle = await client.start(TwoWaits, null, { id: 'fifo' });
    await eventually(async () => (await client.describe('fifo'))?.status === 'waiting');
    await client.signal('fifo', 'item', 'one');
    await client.signal('fifo', 'item', 'two');
    expect(await handle.result({ timeout: '2s' })).toEqual(['one', 'two']);
    expect(received.map((r) => [r.step, r.value])).toEqual([
      ['second', 'one'],
      ['third', 'two'],
    ]);
  });

  it('signals queued before the first wait are consumed in order too', async () => {
    const { client } = await apps.boot([TwoWaits], { worker: { enabled: true } });
    const handle = await client.start(TwoWaits, null, { id: 'fifo-2' });
    await client.signal('fifo-2', 'item', { n: 1 });
    await client.signal('fifo-2', 'item', { n: 2 });
    expect(await handle.result({ timeout: '2s' })).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('a wait that times out compensates with SignalTimeoutError on the waiting step, whose own compensation runs too', async () => {
    const { client } = await apps.boot([TimedWait]);
    const handle = await client.start(TimedWait, null, { id: 'tw-1' });
    const error = await rejection(handle.result({ timeout: '3s' }), WorkflowFailedError);
    expect(error.step).toBe('ask');
    expect(error.cause).toMatchObject({ name: SignalTimeoutError.name, step: 'ask', phase: 'step' });
    expect(undos.map((u) => [u.step, u.output])).toEqual([
      ['ask', 'asked'],
      ['book', 'booked'],
    ]);
    expect(undos[0].error).toBeInstanceOf(Error);
    expect((undos[0].error as Error).name).toBe('SignalTimeoutError');
    const info = await client.describe('tw-1');
    expect(info?.status).toBe('compensated');
    expect(info?.error).toMatchObject({ name: 'SignalTimeoutError', step: 'ask', phase: 'step' });
    expect(info?.steps.map((s) => [s.name, s.status])).toEqual([
      ['book', 'compensated'],
      ['ask', 'compensated'],
    ]);
    expect(calls.finish).toBeUndefined();
  });

  it('a wait that times out without compensations ends the run failed with SignalTimeoutError', async () => {
    const { client } = await apps.boot([TimedWaitNoCompensation]);
    const handle = await client.start(TimedWaitNoCompensation, null, { id: 'tw-2' });
    const error = await rejection(handle.result({ timeout: '3s' }), WorkflowFailedError);
    expect(error.cause).toMatchObject({ name: 'SignalTimeoutError', step: 'ask', phase: 'step' });
    const info = await client.describe('tw-2');
    expect(info?.status).toBe('failed');
    expect(info?.error?.name).toBe('SignalTimeoutError');
    expect(info?.error?.step).toBe('ask');
    await rejection(client.signal('tw-2', 'confirm', 'late'), RunNotActiveError, 'CAIRN_RUN_NOT_ACTIVE');
    expect(calls.finish).toBeUndefined();
  });

  it('a signal within the timeout wins over the timeout', async () => {
    const { client } = await apps.boot([TimedWaitNoCompensation]);
    const handle = await client.start(TimedWaitNoCompensation, null, { id: 'tw-3' });
    await eventually(async () => (await client.describe('tw-3'))?.status === 'waiting');
    await client.signal('tw-3', 'confirm', 'in time');
    expect(await handle.result()).toBe('in time');
    await sleep(60);
    expect((await client.describe('tw-3'))?.status).toBe('completed');
  });

  it('when the last step waits for a signal, the run output is the payload', async () => {
    const { client } = await apps.boot([WaitLast]);
    const handle = await client.start(WaitLast, 'in', { id: 'wl-1' });
    await eventually(async () => (await client.describe('wl-1'))?.status === 'waiting');
    await client.signal('wl-1', 'answer', { answer: 42 });
    expect(await handle.result()).toEqual({ answer: 42 });
    const info = await client.describe('wl-1');
    expect(info?.output).toEqual({ answer: 42 });
    expect(info?.steps.map((s) => [s.name, s.output])).toEqual([
      ['first', 'in'],
      ['ask', 'question'],
    ]);
  });

  it('signalling an unknown run throws RunNotFoundError', async () => {
    const { client } = await apps.boot([Approval]);
    const error = await rejection(client.signal('no-such-run', 'approve', 1), RunNotFoundError, 'CAIRN_RUN_NOT_FOUND');
    expect(error.runId).toBe('no-such-run');
    expect(await client.describe('no-such-run')).toBeUndefined();
  });

  it('signalling an ended run throws RunNotActiveError and changes nothing', async () => {
    const { client } = await apps.boot([WaitLast]);
    const handle = await client.start(WaitLast, 'in', { id: 'ended-sig' });
    await eventually(async () => (await client.describe('ended-sig'))?.status === 'waiting');
    await client.signal('ended-sig', 'answer', 'first');
    await handle.result();
    const before = await client.describe('ended-sig');
    await rejection(client.signal('ended-sig', 'answer', 'second'), RunNotActiveError, 'CAIRN_RUN_NOT_ACTIVE');
    expect(await client.describe('ended-sig')).toEqual(before);
  });

  it('an oversized signal payload throws PayloadTooLargeError and is not stored', async () => {
    const { client } = await apps.boot([Approval], { maxPayloadBytes: 200 });
    const handle = await client.start(Approval, { doc: 'big' }, { id: 'big-sig' });
    await eventually(async () => (await client.describe('big-sig'))?.status === 'waiting');
    const before = await client.describe('big-sig');
    await rejection(client.signal('big-sig', 'approve', 'x'.repeat(500)), PayloadTooLargeError, 'CAIRN_PAYLOAD_TOO_LARGE');
    await sleep(30);
    expect(await client.describe('big-sig')).toEqual(before);
    await client.signal('big-sig', 'approve', 'small');
    expect(await handle.result()).toEqual({ decision: 'small', asked: { asked: 'big' } });
  });

  it('an empty signal name throws InvalidArgumentError', async () => {
    const { client } = await apps.boot([Approval]);
    await client.start(Approval, { doc: 'n' }, { id: 'sig-name' });
    await rejection(client.signal('sig-name', '', 1), InvalidArgumentError, 'CAIRN_INVALID_ARGUMENT');
  });
});
