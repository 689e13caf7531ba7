import { StepTimeoutError } from '../errors/errors.js';
import { SYSTEM_CLOCK, type EngineClock, type TimerHandle } from './clock.js';

/** How one attempt of a step or compensation ended. */
export type AttemptOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** What an attempt runs. */
export interface AttemptTarget {
  /** The workflow instance (`this` of the method). */
  instance: object;
  method: string;
  /** Step name, for the timeout error. */
  step: string;
  /** Per-attempt timeout; none when undefined. */
  timeoutMs?: number;
  /** Longest silence between heartbeats (`beat()` calls); none when undefined. */
  heartbeatTimeoutMs?: number;
  /** Timers of the timeouts. @default the system clock */
  clock?: EngineClock;
  /**
   * Called once, synchronously, with the outcome as the attempt settles (before the returned promise resolves): the
   * caller's cleanup and span end without one more promise per attempt (each costs a hook call under a context manager).
   */
  onSettle?: (outcome: AttemptOutcome) => void;
}

/**
 * Runs one attempt of a step or compensation method: calls it with the arguments `makeArgs` builds from the attempt's
 * abort signal and a `beat` function (a heartbeat: restarts the heartbeat timeout), and settles on the first of its
 * result, its timeout or heartbeat timeout (`StepTimeoutError`) or the run's abort (cancel, lease loss, shutdown: the
 * abort reason). Never rejects.
 */
export function invokeAttempt(
  target: AttemptTarget,
  runSignal: AbortSignal,
  makeArgs: (signal: AbortSignal, beat: () => void) => unknown[],
): Promise<AttemptOutcome> {
  const fn = (target.instance as Record<string, (...a: unknown[]) => unknown>)[target.method];
  return new Promise<AttemptOutcome>((resolve) => {
    let settled = false;
    const clock = target.clock ?? SYSTEM_CLOCK;
    let timer: TimerHandle | undefined;
    let silence: TimerHandle | undefined;
    // NOTE: an attempt with a timeout has its own signal, aborted on the timeout and whenever the run's signal aborts;
    // without one the run's signal (cancel, lease loss, shutdown) is the attempt's.
    const own = target.timeoutMs !== undefined || target.heartbeatTimeoutMs !== undefined;
    const attempt = own ? new AbortController() : undefined;
    const settle = (outcome: AttemptOutcome) => {
      if (settled) return;
      settled = true;
      clock.clearTimer(timer);
      clock.clearTimer(silence);
      runSignal.removeEventListener('abort', onAbort);
      try {
        target.onSettle?.(outcome);
      } catch {
        // NOTE: the caller's cleanup never changes the attempt's outcome.
      }
      resolve(outcome);
    };
    const onAbort = () => {
      attempt?.abort(runSignal.reason);
      settle({ ok: false, error: runSignal.reason });
    };
    const timeOut = (error: StepTimeoutError) => {
      attempt!.abort(error);
      settle({ ok: false, error });
    };
    if (runSignal.aborted) return onAbort();
    runSignal.addEventListener('abort', onAbort, { once: true });
    if (target.timeoutMs !== undefined) {
      const timeoutMs = target.timeoutMs;
      timer = clock.setTimer(() => timeOut(new StepTimeoutError(target.step, timeoutMs)), timeoutMs);
    }
    const heartbeatMs = target.heartbeatTimeoutMs;
    const beat =
      heartbeatMs === undefined
        ? () => undefined
        : () => {
            if (settled) return;
            clock.clearTimer(silence);
            silence = clock.setTimer(() => timeOut(new StepTimeoutError(target.step, heartbeatMs, 'heartbeat')), heartbeatMs);
          };
    beat();
    try {
      const result = fn.apply(target.instance, makeArgs(attempt ? attempt.signal : runSignal, beat));
      if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
        (result as Promise<unknown>).then(
          (value) => settle({ ok: true, value }),
          (error: unknown) => settle({ ok: false, error }),
        );
      } else settle({ ok: true, value: result });
    } catch (error) {
      settle({ ok: false, error });
    }
  });
}

/** Waits `ms`, or less when the signal aborts first. Never rejects. */
export function abortableSleep(ms: number, signal: AbortSignal, clock: EngineClock = SYSTEM_CLOCK): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = clock.setTimer(done, ms);
    function done() {
      clock.clearTimer(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
