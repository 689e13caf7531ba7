import { describe, expect, it } from '@jest/globals';
import { RetryPolicy } from '../../src/index.js';
import { resolveRetry, retryDelay, type ResolvedRetry } from '../../src/definition/retry-policy.js';

const resolved = (o: Parameters<typeof resolveRetry>[0]) => resolveRetry(o) as ResolvedRetry;

describe('retry policies', () => {
  it('defaults to one attempt', () => {
    expect(resolved(undefined).maxAttempts).toBe(1);
    expect(resolved(RetryPolicy.none()).maxAttempts).toBe(1);
  });

  it('computes fixed delays without jitter', () => {
    const p = resolved(RetryPolicy.fixed(4, '250ms'));
    expect(p).toMatchObject({ maxAttempts: 4, backoff: 'fixed', delayMs: 250, jitter: false });
    expect([1, 2, 3].map((n) => retryDelay(p, n))).toEqual([250, 250, 250]);
  });

  it('computes exponential delays capped at maxDelay', () => {
    const p = resolved(RetryPolicy.exponential(6, 100, 3, '1s'));
    expect([1, 2, 3, 4, 5].map((n) => retryDelay(p, n))).toEqual([100, 300, 900, 1000, 1000]);
  });

  it('applies jitter between half and all of the delay by default for options objects', () => {
    const p = resolved({ maxAttempts: 3, delay: 1000 });
    expect(p.jitter).toBe(true);
    expect(p.backoff).toBe('exponential');
    expect(retryDelay(p, 1, () => 0)).toBe(500);
    expect(retryDelay(p, 1, () => 1)).toBe(1000);
    expect(retryDelay(p, 2, () => 0)).toBe(1000);
  });

  it('defaults the cap to one minute', () => {
    const p = resolved({ maxAttempts: 30, jitter: false });
    expect(retryDelay(p, 25)).toBe(60_000);
  });

  it.each([
    [{ maxAttempts: 0 }, /maxAttempts must be an integer >= 1/],
    [{ maxAttempts: 1.5 }, /maxAttempts/],
    [{ maxAttempts: 3, delay: 'soon' }, /retry.delay/],
    [{ maxAttempts: 3, delay: '1s', maxDelay: '500ms' }, /maxDelay \(500 ms\) cannot be less than retry.delay \(1000 ms\)/],
    [{ maxAttempts: 3, multiplier: 0.5 }, /multiplier must be a number >= 1/],
    [{ maxAttempts: 3, backoff: 'linear' as never }, /backoff must be 'fixed' or 'exponential'/],
    [{ maxAttempts: 3, retryIf: 'yes' as never }, /retryIf must be a function/],
  ])('rejects %j with a precise message', (options, message) => {
    const result = resolveRetry(options);
    expect(typeof result).toBe('string');
    expect(result).toMatch(message);
  });
});
