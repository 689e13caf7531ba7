/**
 * The engine's pure parts, without Nest or a store: directive resolution, visit keys, the retry decision, the step
 * invoker (on Jest's fake clock) and error text.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  Flow,
  InvalidArgumentError,
  MaxTransitionsExceededError,
  NonRetryableError,
  RetryPolicy,
  SerializationError,
  Step,
  StepTimeoutError,
  Workflow,
  WorkflowDefinitionError,
} from '../../src/index.js';
import { compileWorkflow } from '../../src/definition/workflow.compiler.js';
import { resolveStepReturn, type ResolveContext } from '../../src/engine/directive.resolver.js';
import { idempotencyKey, visitNumberAt } from '../../src/engine/visit-keys.js';
import { isFinalError, shouldRetry } from '../../src/engine/retry.decision.js';
import { abortableSleep, invokeAttempt } from '../../src/engine/step-invoker.js';
import { describeError, errorMessage, errorName, safeText } from '../../src/engine/error-text.js';
import { Serializer } from '../../src/engine/serializer.js';
import { compensationQueue, statusAfterCompensation } from '../../src/engine/compensation.js';
import { rebuildRun } from '../../src/engine/run-rebuild.js';
import { resolveRetry as resolveOrMessage, type ResolvedRetry, type RetryOptions } from '../../src/definition/retry-policy.js';

function resolveRetry(options: RetryOptions): ResolvedRetry {
  const resolved = resolveOrMessage(options);
  if (typeof resolved === 'string') throw new Error(resolved);
  return resolved;
}

@Workflow('parts')
class Parts {
  @Step() a(x: unknown) {
    return x;
  }
  @Step() b(x: unknown) {
    return x;
  }
}
const def = compileWorkflow(Parts, new Parts());
const [a, b] = def.steps;
const serializer = new Serializer(1024);
const ctx = (over: Partial<ResolveContext> = {}): ResolveContext => ({
  runId: 'r',
  transitions: 0,
  maxTransitions: 10,
  serialize: (v) => serializer.serialize(v, 'output'),
  now: () => 1_000,
  ...over,
});

describe('resolveStepReturn', () => {
  it('moves a plain value to the next step, and ends the run after the last', () => {
    expect(resolveStepReturn(def, a, { n: 1 }, ctx())).toEqual({ value: { n: 1 }, output: '{"n":1}', kind: 'next', next: b });
    expect(resolveStepReturn(def, b, 2, ctx())).toEqual({ value: 2, output: '2', kind: 'end' });
  });

  it('follows goto, complete, sleep and wait', () => {
    expect(resolveStepReturn(def, b, Flow.goto('a', 'v'), ctx())).toMatchObject({ kind: 'next', next: a, value: 'v' });
    expect(resolveStepReturn(def, a, Flow.complete('done'), ctx())).toMatchObject({ kind: 'end', output: '"done"' });
    expect(resolveStepReturn(def, a, Flow.sleep('2s', 'z'), ctx())).toMatchObject({ kind: 'sleep', next: b, sleep: { due: { delayMs: 2_000 }, wakeInMs: 2_000 } });
    expect(resolveStepReturn(def, a, Flow.waitForSignal('go', { timeout: '1m' }), ctx())).toMatchObject({ kind: 'wait', next: b, wait: { signals: ['go'], timeoutMs: 60_000, any: false } });
    expect(resolveStepReturn(def, a, Flow.waitForAny(['yes', 'no', 'yes'], { timeout: 5 }), ctx())).toMatchObject({
      kind: 'wait',
      next: b,
      wait: { signals: ['yes', 'no'], timeoutMs: 5, any: true },
    });
    expect(() => resolveStepReturn(def, a, Flow.waitForAny([]), ctx())).toThrow(/without signal names/);
    expect(() => resolveStepReturn(def, a, Flow.waitForAny(['ok', '']), ctx())).toThrow(/Flow.waitForAny: the signal name/);
    expect(resolveStepReturn(def, a, Flow.continueAsNew({ n: 2 }), ctx())).toMatchObject({ kind: 'restart', output: '{"n":2}' });
    expect(resolveStepReturn(def, a, Flow.child('w', 1), ctx())).toMatchObject({ kind: 'children', children: { mode: 'child', concurrency: 1 } });
    expect(resolveStepReturn(def, a, Flow.all([Flow.child('w', 1), Flow.child('w', 2)], { concurrency: 1 }), ctx())).toMatchObject({
      kind: 'children',
      children: { mode: 'all', concurrency: 1 },
    });
    expect(() => resolveStepReturn(def, a, Flow.all([Flow.child('w', 1)], { concurrency: 1.5 }), ctx())).toThrow(/concurrency 1.5/);
    expect(() => resolveStepReturn(def, a, Flow.allSettled([Flow.child('w', 1, { onParentEnd: 'never' as never })]), ctx())).toThrow(/onParentEnd/);
  });

  it('keeps a sleep until a Date as that instant (the local timer alone uses this clock)', () => {
    const at = new Date(5_000);
    expect(resolveStepReturn(def, a, Flow.sleep(at), ctx({ now: () => 1_000 })).sleep).toEqual({ due: { at }, wakeInMs: 4_000 });
    expect(resolveStepReturn(def, a, Flow.sleep(at), ctx({ now: () => 9_000 })).sleep).toEqual({ due: { at }, wakeInMs: 0 });
  });

  it('throws what fails the step', () => {
    expect(() => resolveStepReturn(def, a, Flow.goto('nope', 1), ctx())).toThrow(WorkflowDefinitionError);
    expect(() => resolveStepReturn(def, a, 1, ctx({ transitions: 10 }))).toThrow(MaxTransitionsExceededError);
    expect(() => resolveStepReturn(def, a, Flow.sleep('soon'), ctx())).toThrow(InvalidArgumentError);
    expect(() => resolveStepReturn(def, a, Flow.sleep(new Date(NaN)), ctx())).toThrow(/invalid Date/);
    expect(() => resolveStepReturn(def, a, Flow.waitForSignal('x', { timeout: 'never' }), ctx())).toThrow(InvalidArgumentError);
    expect(() => resolveStepReturn(def, a, Flow.waitForSignal('a\u0000b'), ctx())).toThrow(/signal name/);
    expect(() => resolveStepReturn(def, a, Flow.waitForSignal('x'.repeat(256)), ctx())).toThrow(InvalidArgumentError);
    expect(() => resolveStepReturn(def, a, () => 1, ctx())).toThrow(SerializationError);
  });
});

describe('visit keys', () => {
  it('appends the visit from the 2nd on and the generation from the 2nd on', () => {
    expect(idempotencyKey('r', 's', 1, 1)).toBe('r:s');
    expect(idempotencyKey('r', 's', 3, 1)).toBe('r:s#3');
    expect(idempotencyKey('r', 's', 1, 2)).toBe('r:s~2');
    expect(idempotencyKey('r', 's', 2, 5)).toBe('r:s#2~5');
  });

  it('numbers the visit of an entry by the entries before it', () => {
    const steps = ['a', 'b', 'a', 'a'].map((name) => ({ name, status: 'completed' as const, attempts: 1 }));
    expect([0, 1, 2, 3].map((i) => visitNumberAt(steps, i))).toEqual([1, 1, 2, 3]);
  });
});

describe('retry decision', () => {
  const three = resolveRetry(RetryPolicy.fixed(3, 10) as unknown as RetryOptions);
  it('retries within the budget, never for final errors, and as retryIf says', () => {
    expect(shouldRetry(three, new Error('x'), 1)).toBe(true);
    expect(shouldRetry(three, new Error('x'), 3)).toBe(false);
    expect(shouldRetry(three, new NonRetryableError('x'), 1)).toBe(false);
    const picky = resolveRetry({ maxAttempts: 3, retryIf: (e) => (e as Error).message === 'again' });
    expect(shouldRetry(picky, new Error('again'), 1)).toBe(true);
    expect(shouldRetry(picky, new Error('stop'), 1)).toBe(false);
    const throwing = resolveRetry({ maxAttempts: 3, retryIf: () => { throw new Error('bad predicate'); } });
    expect(shouldRetry(throwing, new Error('x'), 1)).toBe(false);
  });

  it('treats a value whose prototype cannot be read as final', () => {
    const hostile = new Proxy({}, { getPrototypeOf() { throw new Error('trap'); } });
    expect(isFinalError(hostile)).toBe(true);
  });
});

describe('invokeAttempt (fake clock)', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });
  const target = (method: string, timeoutMs?: number) => ({ instance: worker, method, step: method, timeoutMs });
  const worker = {
    sync: (x: number) => x + 1,
    throws: () => {
      throw new Error('boom');
    },
    slow: (_x: unknown, signal: AbortSignal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve('late'))),
  };

  it('settles with the value or the error of sync and async methods', async () => {
    const run = new AbortController();
    await expect(invokeAttempt(target('sync'), run.signal, () => [1])).resolves.toEqual({ ok: true, value: 2 });
    await expect(invokeAttempt(target('throws'), run.signal, () => [])).resolves.toMatchObject({ ok: false, error: { message: 'boom' } });
  });

  it('times an attempt out, aborting its own signal', async () => {
    const run = new AbortController();
    let seen: AbortSignal | undefined;
    const outcome = invokeAttempt(target('slow', 500), run.signal, (signal) => ((seen = signal), [0, signal]));
    await jest.advanceTimersByTimeAsync(500);
    const res = await outcome;
    expect(res.ok).toBe(false);
    expect((res as { error: unknown }).error).toBeInstanceOf(StepTimeoutError);
    expect(seen!.aborted).toBe(true);
    expect(run.signal.aborted).toBe(false);
  });

  it('settles at once with the reason when the run aborts', async () => {
    const run = new AbortController();
    const outcome = invokeAttempt(target('slow'), run.signal, (signal) => [0, signal]);
    run.abort('cancelled');
    await expect(outcome).resolves.toEqual({ ok: false, error: 'cancelled' });
  });

  it('calls onSettle once, with the outcome, before the attempt resolves; a throwing onSettle changes nothing', async () => {
    const seen: unknown[] = [];
    const onSettle = (outcome: unknown) => seen.push(outcome);
    const run = new AbortController();
    const sync = invokeAttempt({ ...target('sync'), onSettle }, run.signal, () => [1]);
    expect(seen).toEqual([{ ok: true, value: 2 }]); // synchronously, as the method returned
    await sync;
    const timedOut = invokeAttempt({ ...target('slow', 500), onSettle }, run.signal, (signal) => [0, signal]);
    let seenAtResolve = -1;
    void timedOut.then(() => (seenAtResolve = seen.length));
    await jest.advanceTimersByTimeAsync(500);
    await timedOut;
    expect(seen).toHaveLength(2); // the late resolve of the aborted method did not call it again
    expect((seen[1] as { error: unknown }).error).toBeInstanceOf(StepTimeoutError);
    expect(seenAtResolve).toBe(2); // onSettle ran before the promise resolved
    const thrower = invokeAttempt(
      {
        ...target('sync'),
        onSettle: () => {
          throw new Error('cleanup failed');
        },
      },
      run.signal,
      () => [41],
    );
    await expect(thrower).resolves.toEqual({ ok: true, value: 42 });
  });

  it('sleeps until the time passes or the signal aborts', async () => {
    const run = new AbortController();
    let done = false;
    void abortableSleep(10_000, run.signal).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(9_999);
    expect(done).toBe(false);
    run.abort();
    await Promise.resolve();
    await Promise.resolve();
    expect(done).toBe(true);
  });
});

describe('error text', () => {
  it('replaces NUL and lone surrogates, and caps with a marker', () => {
    expect(safeText('a\u0000b\ud800')).toBe('a\uFFFDb\uFFFD');
    const long = safeText('x'.repeat(10_000));
    expect(long.length).toBe(8_192);
    expect(long.endsWith('… [truncated]')).toBe(true);
    expect(safeText('ok 🚀')).toBe('ok 🚀');
  });

  it('never throws while describing hostile values', () => {
    const hostile = new Proxy(new Error('x'), { get() { throw new Error('trap'); } });
    expect(() => describeError(hostile)).not.toThrow();
    expect(errorName(hostile)).toBe('Error');
    expect(errorMessage(hostile)).toMatch(/could not be read/);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(errorMessage(circular)).toBe('[object Object]');
    expect(errorName('text')).toBe('string');
    expect(errorMessage('text')).toBe('text');
  });
});

describe('compensation and rebuild', () => {
  @Workflow('undoable')
  class Undoable {
    @Step({ compensate: 'undoA' }) a(x: unknown) {
      return x;
    }
    @Step() b(x: unknown) {
      return x;
    }
    undoA() {}
  }
  const undoable = compileWorkflow(Undoable, new Undoable());
  const entry = (name: string, status: 'completed' | 'failed' | 'running' | 'compensated', output?: string) => ({ name, status, attempts: 1, output });

  it('queues the completed visits of compensable steps, latest first', () => {
    const steps = [entry('a', 'completed', '1'), entry('b', 'completed', '2'), entry('a', 'completed', '3'), entry('b', 'failed')];
    expect(compensationQueue(steps, undoable)).toEqual([2, 0]);
    expect(compensationQueue([entry('a', 'compensated', '1'), entry('b', 'failed')], undoable)).toEqual([]);
    expect(statusAfterCompensation('cancel')).toBe('cancelled');
    expect(statusAfterCompensation('failure')).toBe('compensated');
  });

  it('rebuilds a run: input, latest results, visits, and the cursor step input', () => {
    const run = {
      input: '"in"',
      steps: [entry('a', 'completed', '1'), entry('b', 'completed', '2'), entry('a', 'completed', '3'), entry('b', 'running')],
    } as unknown as Parameters<typeof rebuildRun>[0];
    const state = { v: 1 as const, cursor: 'b', entry: 3, tr: 3, rec: 0, base: 0 };
    const decode = (text: string | undefined) => (text === undefined ? undefined : JSON.parse(text));
    const rebuilt = rebuildRun(run, state, decode);
    expect(rebuilt).toEqual({ runInput: 'in', results: { a: 3, b: 2 }, visits: new Map([['a', 2], ['b', 2]]), input: 3 });
    expect(rebuildRun({ ...run, nextInput: '"signal"' }, state, decode).input).toBe('signal');
    expect(rebuildRun({ ...run, steps: [] }, { ...state, entry: 0 }, decode).input).toBe('in');
    // Flow.waitForAny: before the engine's next write the store names the signal; after it, the engine state does
    const anyWait = { ...state, wait: { entry: 2, signal: 'yes', any: ['yes', 'no'] } };
    expect(rebuildRun({ ...run, nextInput: '"p"', nextInputSignal: 'no' }, anyWait, decode).input).toEqual({ signal: 'no', payload: 'p' });
    expect(rebuildRun({ ...run, nextInput: '"p"', nextInputSignal: 'no' }, { ...state, delivered: { signal: 'no' } }, decode).input).toEqual({ signal: 'no', payload: 'p' });
    expect(rebuildRun(run, { ...state, delivered: { signal: null } }, decode).input).toEqual({ signal: null, timedOut: true });
    expect(rebuildRun({ ...run, nextInput: '"p"', nextInputSignal: 'no' }, state, decode).input).toBe('p');
    expect(() => rebuildRun({ ...run, input: '{bad' }, state, (t, what) => {
      try {
        return decode(t);
      } catch {
        throw new Error(`damaged: ${what}`);
      }
    })).toThrow('damaged: the input');
  });
});
