import { parseDuration } from './duration.js';

/** Retry options of a step (`@Step({ retry })`). */
export interface RetryOptions {
  /** Total attempts, including the first. */
  maxAttempts: number;
  /** @default 'exponential' */
  backoff?: 'fixed' | 'exponential';
  /** First delay, ms or a duration string. @default 100 */
  delay?: number | string;
  /** @default 2 */
  multiplier?: number;
  /** Cap of the delay. @default '1m' */
  maxDelay?: number | string;
  /** Randomize each delay between half and all of it. @default true */
  jitter?: boolean;
  /** Return false to fail the step at once for this error. */
  retryIf?: (error: unknown) => boolean;
}

/** Ready-made retry policies. `maxAttempts` always counts every attempt, the first included. */
export class RetryPolicy implements RetryOptions {
  private constructor(
    readonly maxAttempts: number,
    readonly backoff: 'fixed' | 'exponential',
    readonly delay: number | string,
    readonly multiplier: number,
    readonly maxDelay: number | string | undefined,
    readonly jitter: boolean,
  ) {}

  /** Up to `maxAttempts` attempts, `delay` apart. */
  static fixed(maxAttempts: number, delay: number | string): RetryPolicy {
    return new RetryPolicy(maxAttempts, 'fixed', delay, 1, undefined, false);
  }

  /** Up to `maxAttempts` attempts; delays `initialDelay`, × `multiplier` each time, capped at `maxDelay`. */
  static exponential(maxAttempts: number, initialDelay: number | string, multiplier = 2, maxDelay?: number | string): RetryPolicy {
    return new RetryPolicy(maxAttempts, 'exponential', initialDelay, multiplier, maxDelay, false);
  }

  /** One attempt, no retry. */
  static none(): RetryPolicy {
    return new RetryPolicy(1, 'fixed', 0, 1, undefined, false);
  }
}

/** A validated retry policy with durations in ms. */
export interface ResolvedRetry {
  maxAttempts: number;
  backoff: 'fixed' | 'exponential';
  delayMs: number;
  multiplier: number;
  maxDelayMs: number;
  jitter: boolean;
  retryIf?: (error: unknown) => boolean;
}

export const NO_RETRY: ResolvedRetry = { maxAttempts: 1, backoff: 'fixed', delayMs: 0, multiplier: 1, maxDelayMs: 0, jitter: false };

const DEFAULT_MAX_DELAY_MS = 60_000;

/**
 * Validates retry options. Returns the resolved policy, or a message saying what is wrong.
 */
export function resolveRetry(options: RetryOptions | undefined): ResolvedRetry | string {
  if (options === undefined) return NO_RETRY;
  if (options === null || typeof options !== 'object') return 'retry must be an object such as { maxAttempts: 3 } or RetryPolicy.exponential(…)';
  const { maxAttempts } = options;
  if (typeof maxAttempts !== 'number' || !Number.isInteger(maxAttempts) || maxAttempts < 1) {
    return `retry.maxAttempts must be an integer >= 1 (it counts every attempt, the first included); got ${String(maxAttempts)}`;
  }
  const backoff = options.backoff ?? 'exponential';
  if (backoff !== 'fixed' && backoff !== 'exponential') return `retry.backoff must be 'fixed' or 'exponential'; got ${JSON.stringify(backoff)}`;
  const delayMs = parseDuration(options.delay ?? 100);
  if (delayMs === undefined) return `retry.delay must be ms or a duration string such as '500ms'; got ${JSON.stringify(options.delay)}`;
  const multiplier = options.multiplier ?? 2;
  if (typeof multiplier !== 'number' || !Number.isFinite(multiplier) || multiplier < 1) {
    return `retry.multiplier must be a number >= 1; got ${String(multiplier)}`;
  }
  let maxDelayMs: number;
  if (options.maxDelay === undefined) maxDelayMs = Math.max(DEFAULT_MAX_DELAY_MS, delayMs);
  else {
    const parsed = parseDuration(options.maxDelay);
    if (parsed === undefined) return `retry.maxDelay must be ms or a duration string such as '1m'; got ${JSON.stringify(options.maxDelay)}`;
    if (parsed < delayMs) return `retry.maxDelay (${parsed} ms) cannot be less than retry.delay (${delayMs} ms)`;
    maxDelayMs = parsed;
  }
  if (options.retryIf !== undefined && typeof options.retryIf !== 'function') return 'retry.retryIf must be a function (error) => boolean';
  const jitter = options.jitter ?? !(options instanceof RetryPolicy);
  return { maxAttempts, backoff, delayMs, multiplier, maxDelayMs, jitter, retryIf: options.retryIf };
}

/** Delay before the attempt after `failedAttempt` (1-based, counted within the current budget). */
export function retryDelay(policy: ResolvedRetry, failedAttempt: number, random: () => number = Math.random): number {
  let delay = policy.backoff === 'fixed' ? policy.delayMs : policy.delayMs * Math.pow(policy.multiplier, failedAttempt - 1);
  delay = Math.min(delay, policy.maxDelayMs);
  if (policy.jitter) delay = delay / 2 + random() * (delay / 2);
  return Math.round(delay);
}
