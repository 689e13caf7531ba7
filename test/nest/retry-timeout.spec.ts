import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  NonRetryableError,
  RetryPolicy,
  Step,
  StepTimeoutError,
  Workflow,
  WorkflowFailedError,
  type StepContext,
} from '../../src/index.js';
import { eventually, rejection, untilAborted, useApps } from './helpers.js';

interface Attempt {
  step: string;
  attempt: number;
  key: string;
  at: number;
}
let attempts: Attempt[] = [];
/** Failures still to throw, per step. */
let failuresLeft: Record<string, number> = {};

function attempt(step: string, ctx: StepContext) {
  attempts.push({ step, attempt: ctx.attempt, key: ctx.idempotencyKey, at: Date.now() });
}
function maybeFail(step: string, make: () => Error = () => new Error(`${step} is flaky`)) {
  if ((failuresLeft[step] ?? 0) > 0) {
    failuresLeft[step]--;
    throw make();
  }
}

@Workflow()
class Flaky {
  @Step() before(input: string) {
    return input;
  }
  @Step({ retry: { maxAttempts: 3, delay: 10 } }) flaky(prev: string, ctx: StepContext) {
    attempt('flaky', ctx);
    maybeFail('flaky');
    return `${prev} ok`;
  }
}

@Workflow()
class AsyncFlaky {
  @Step({ retry: { maxAttempts: 4, delay: 5, backoff: 'fixed' } }) async flaky(input: number, ctx: StepContext) {
    attempt('flaky', ctx);
    await new Promise((r) => setTimeout(r, 1));
    maybeFail('flaky');
    return input * 2;
  }
}

@Workflow()
class NonRetryable {
  @Step({ retry: { maxAttempts: 5, delay: 5 } }) step(_: unknown, ctx: StepContext) {
    attempt('step', ctx);
    throw new NonRetryableError('card declined');
  }
}

@Workflow()
class RetryIfFalse {
  @Step({ retry: { maxAttempts: 5, delay: 5, retryIf: (error) => !(error instanceof TypeError) } }) step(_: unknown, ctx: StepContext) {
    attempt('step', ctx);
    throw new TypeError('bad shape');
  }
}

@Workflow()
class RetryIfTrue {
  @Step({ retry: { maxAttempts: 5, delay: 5, retryIf: (error) => (error as Error).message === 'transient' } }) step(
    _: unknown,
    ctx: StepContext,
  ) {
    attempt('step', ctx);
    maybeFail('step', () => new Error('transient'));
    return 'done';
  }
}

@Workflow()
class Exhausted {
  @Step() first() {
    return 1;
  }
  @Step({ retry: { maxAttempts: 2, delay: 5 } }) second(_: unknown, ctx: StepContext) {
    attempt('second', ctx);
    throw new RangeError('always broken');
  }
  @Step() third() {
    attempts.push({ step: 'third', attempt: 0, key: '', at: Date.now() });
    return 3;
  }
}

@Workflow()
class NoRetryDefault {
  @Step() once(_: unknown, ctx: StepContext) {
    attempt('once', ctx);
    throw new Error('no second chance');
  }
}

@Workflow()
class Policies {
  @Step({ retry: RetryPolicy.fixed(3, 30) }) fixed(input: unknown, ctx: StepContext) {
    attempt('fixed', ctx);
    maybeFail('fixed');
    return input;
  }
  @Step({ retry: RetryPolicy.exponential(3, 20, 3) }) exponential(input: unknown, ctx: StepContext) {
    attempt('exponential', ctx);
    maybeFail('exponential');
    return input;
  }
  @Step({ retry: RetryPolicy.exponential(3, 20, 10, 40) }) capped(input: unknown, ctx: StepContext) {
    attempt('capped', ctx);
    maybeFail('capped');
    return input;
  }
  @Step({ retry: RetryPolicy.none() }) none(input: unknown, ctx: StepContext) {
    attempt('none', ctx);
    maybeFail('none');
    return input;
  }
}

@Workflow()
class Slow {
  @Step({ timeout: 30 }) slow(_: unknown, ctx: StepContext) {
    attempt('slow', ctx);
    return new Promise((resolve) => setTimeout(() => resolve('late'), 2_000).unref());
  }
}

@Workflow()
class SlowThenFast {
  @Step({ timeout: '40ms', retry: { maxAttempts: 2, delay: 5 } }) maybeSlow(_: unknown, ctx: StepContext) {
    attempt('maybeSlow', ctx);
    if (ctx.attempt === 1) return new Promise((resolve) => setTimeout(() => resolve('late'), 2_000).unref());
    return 'fast';
  }
}

let signalProbe: { attempt: number; abortedAfterWait: boolean; waitedMs: number; reason?: unknown }[] = [];

@Workflow()
class SignalWatcher {
  @Step({ timeout: 30, retry: { maxAttempts: 2, delay: 5 } }) async watch(_: unknown, ctx: StepContext) {
    const started = Date.now();
    const abortedAtStart = ctx.signal.aborted;
    if (ctx.attempt === 2) {
      signalProbe.push({ attempt: 2, abortedAfterWait: abortedAtStart, waitedMs: 0 });
      return 'second attempt';
    }
    await untilAborted(ctx.signal, 1_000);
    signalProbe.push({ attempt: ctx.attempt, abortedAfterWait: ctx.signal.aborted, waitedMs: Date.now() - started, reason: ctx.signal.reason });
    return 'watched';
  }
}

describe('retries', () => {
  const apps = useApps();
  beforeEach(() => {
    attempts = [];
    failuresLeft = {};
  });

  it('retries a step that fails twice and completes, counting 3 attempts', async () => {
    const { client } = await apps.boot([Flaky]);
    failuresLeft.flaky = 2;
    expect(await client.execute(Flaky, 'x', { id: 'flaky-1' })).toBe('x ok');
    const info = await client.describe('flaky-1');
    expect(info?.status).toBe('completed');
    expect(info?.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['before', 'completed', 1],
      ['flaky', 'completed', 3],
    ]);
  });

  it('ctx.attempt counts 1, 2, 3 and the idempotency key is the same on every attempt', async () => {
    const { client } = await apps.boot([Flaky]);
    failuresLeft.flaky = 2;
    await client.execute(Flaky, 'x', { id: 'flaky-2' });
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    expect(new Set(attempts.map((a) => a.key))).toEqual(new Set(['flaky-2:flaky']));
  });

  it('retries async steps that reject', async () => {
    const { client } = await apps.boot([AsyncFlaky]);
    failuresLeft.flaky = 3;
    expect(await client.execute(AsyncFlaky, 21, { id: 'async-1' })).toBe(42);
    expect((await client.describe('async-1'))?.steps[0].attempts).toBe(4);
  });

  it('NonRetryableError fails the step at once, without the remaining attempts', async () => {
    const { client } = await apps.boot([NonRetryable]);
    const handle = await client.start(NonRetryable, null, { id: 'nr-1' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.cause).toMatchObject({ name: 'NonRetryableError', message: 'card declined', step: 'step', phase: 'step' });
    expect(attempts).toHaveLength(1);
    const info = await client.describe('nr-1');
    expect(info?.status).toBe('failed');
    expect(info?.steps[0]).toMatchObject({ name: 'step', status: 'failed', attempts: 1 });
    expect(info?.steps[0].error).toContain('card declined');
  });

  it('retryIf returning false fails the step at once', async () => {
    const { client } = await apps.boot([RetryIfFalse]);
    const handle = await client.start(RetryIfFalse, null, { id: 'rif-1' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.cause).toMatchObject({ name: 'TypeError', message: 'bad shape' });
    expect(attempts).toHaveLength(1);
    expect((await client.describe('rif-1'))?.steps[0].attempts).toBe(1);
  });

  it('retryIf returning true keeps retrying', async () => {
    const { client } = await apps.boot([RetryIfTrue]);
    failuresLeft.step = 2;
    expect(await client.execute(RetryIfTrue, null)).toBe('done');
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
  });

  it('exhausted attempts fail the run with {name, message, step, phase: step}; later steps never run', async () => {
    const { client } = await apps.boot([Exhausted]);
    const handle = await client.start(Exhausted, null, { id: 'ex-1' });
    await rejection(handle.result(), WorkflowFailedError);
    const info = await client.describe('ex-1');
    expect(info?.status).toBe('failed');
    expect(info?.error).toEqual({ name: 'RangeError', message: 'always broken', step: 'second', phase: 'step' });
    expect(info?.currentStep === undefined || info?.currentStep === 'second').toBe(true);
    expect(info?.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['first', 'completed', 1],
      ['second', 'failed', 2],
    ]);
    expect(info?.steps[1].error).toContain('always broken');
    expect(attempts.map((a) => a.step)).toEqual(['second', 'second']);
    expect(info?.finishedAt).toBeInstanceOf(Date);
  });

  it('result() rejects WorkflowFailedError with runId, step and cause', async () => {
    const { client } = await apps.boot([Exhausted]);
    const handle = await client.start(Exhausted, null, { id: 'ex-2' });
    const error = await rejection(handle.result(), WorkflowFailedError, 'CAIRN_WORKFLOW_FAILED');
    expect(error.runId).toBe('ex-2');
    expect(error.step).toBe('second');
    expect(error.cause).toEqual({ name: 'RangeError', message: 'always broken', step: 'second', phase: 'step' });
    expect(error.message).toContain('always broken');
    await rejection(client.execute(Exhausted, null), WorkflowFailedError);
  });

  it('without a retry option a step has one attempt', async () => {
    const { client } = await apps.boot([NoRetryDefault]);
    const handle = await client.start(NoRetryDefault, null, { id: 'once-1' });
    await rejection(handle.result(), WorkflowFailedError);
    expect(attempts).toHaveLength(1);
    expect((await client.describe('once-1'))?.steps[0].attempts).toBe(1);
  });

  it('RetryPolicy.fixed(3, 30) makes 3 attempts about 30 ms apart', async () => {
    const { client } = await apps.boot([Policies]);
    failuresLeft.fixed = 2;
    await client.execute(Policies, 1, { id: 'pol-fixed' });
    const at = attempts.filter((a) => a.step === 'fixed').map((a) => a.at);
    expect(at).toHaveLength(3);
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(28);
    expect(at[2] - at[1]).toBeGreaterThanOrEqual(28);
  });

  it('RetryPolicy.fixed(3, …) gives up after 3 attempts in all', async () => {
    const { client } = await apps.boot([Policies]);
    failuresLeft.fixed = 3;
    const handle = await client.start(Policies, 1, { id: 'pol-fixed-x' });
    await rejection(handle.result(), WorkflowFailedError);
    expect(attempts.filter((a) => a.step === 'fixed')).toHaveLength(3);
    expect((await client.describe('pol-fixed-x'))?.steps[0].attempts).toBe(3);
  });

  it('RetryPolicy.exponential(3, 20, 3) waits 20 ms then 60 ms', async () => {
    const { client } = await apps.boot([Policies]);
    failuresLeft.exponential = 2;
    await client.execute(Policies, 1, { id: 'pol-exp' });
    const at = attempts.filter((a) => a.step === 'exponential').map((a) => a.at);
    expect(at).toHaveLength(3);
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(18);
    expect(at[2] - at[1]).toBeGreaterThanOrEqual(58);
  });

  it('RetryPolicy.exponential caps each delay at maxDelay', async () => {
    const { client } = await apps.boot([Policies]);
    failuresLeft.capped = 2;
    await client.execute(Policies, 1, { id: 'pol-cap' });
    const at = attempts.filter((a) => a.step === 'capped').map((a) => a.at);
    expect(at).toHaveLength(3);
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(18);
    expect(at[2] - at[1]).toBeGreaterThanOrEqual(38);
    expect(at[2] - at[1]).toBeLessThan(180);
  });

  it('RetryPolicy.exponential(3, …) gives up after 3 attempts in all', async () => {
    const { client } = await apps.boot([Policies]);
    failuresLeft.exponential = 3;
    const handle = await client.start(Policies, 1, { id: 'pol-exp-x' });
    await rejection(handle.result(), WorkflowFailedError);
    expect(attempts.filter((a) => a.step === 'exponential')).toHaveLength(3);
  });

  it('RetryPolicy.none() makes one attempt', async () => {
    const { client } = await apps.boot([Policies]);
    failuresLeft.none = 1;
    const handle = await client.start(Policies, 1, { id: 'pol-none' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(error.step).toBe('none');
    expect(attempts.filter((a) => a.step === 'none')).toHaveLength(1);
  });
});

describe('step timeouts', () => {
  const apps = useApps();
  beforeEach(() => {
    attempts = [];
    failuresLeft = {};
    signalProbe = [];
  });

  it('ctx.signal is aborted when the attempt times out; the next attempt gets a signal that is not aborted', async () => {
    const { client } = await apps.boot([SignalWatcher]);
    expect(await client.execute(SignalWatcher, null, { id: 'watch-1', timeout: '3s' })).toBe('second attempt');
    await eventually(() => signalProbe.length === 2, 2_000);
    const first = signalProbe.find((p) => p.attempt === 1)!;
    expect(first.abortedAfterWait).toBe(true);
    expect(first.waitedMs).toBeLessThan(500);
    expect(first.reason).toBeInstanceOf(StepTimeoutError);
    expect(signalProbe.find((p) => p.attempt === 2)?.abortedAfterWait).toBe(false);
  });

  it('an attempt running past its timeout fails with StepTimeoutError', async () => {
    const { client } = await apps.boot([Slow]);
    const started = Date.now();
    const handle = await client.start(Slow, null, { id: 'slow-1' });
    const error = await rejection(handle.result(), WorkflowFailedError);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(error.cause.name).toBe(StepTimeoutError.name);
    expect(error.step).toBe('slow');
    const info = await client.describe('slow-1');
    expect(info?.status).toBe('failed');
    expect(info?.error).toMatchObject({ name: 'StepTimeoutError', step: 'slow', phase: 'step' });
    expect(info?.steps[0]).toMatchObject({ status: 'failed', attempts: 1 });
  });

  it('a timed-out attempt is retried per the step policy', async () => {
    const { client } = await apps.boot([SlowThenFast]);
    expect(await client.execute(SlowThenFast, null, { id: 'stf-1' })).toBe('fast');
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2]);
    expect((await client.describe('stf-1'))?.steps[0].attempts).toBe(2);
  });
});
