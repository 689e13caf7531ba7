import {
  InvalidArgumentError,
  MaxTransitionsExceededError,
  NonRetryableError,
  PayloadTooLargeError,
  RecoveryLimitError,
  SerializationError,
  WorkflowDefinitionError,
} from '../errors/errors.js';
import type { ResolvedRetry } from '../definition/retry-policy.js';

/** Errors that end a step at once, whatever its retry policy. */
export function isFinalError(error: unknown): boolean {
  try {
    return (
      error instanceof NonRetryableError ||
      error instanceof SerializationError ||
      error instanceof PayloadTooLargeError ||
      error instanceof WorkflowDefinitionError ||
      error instanceof MaxTransitionsExceededError ||
      error instanceof RecoveryLimitError ||
      error instanceof InvalidArgumentError
    );
  } catch {
    // NOTE: a Proxy whose getPrototypeOf trap throws; nothing sensible can be retried on it.
    return true;
  }
}

/**
 * Whether a failed attempt gets another one: not for final errors, not past `maxAttempts` of the current budget, and
 * only if `retryIf` (when given) does not return false or throw.
 * @param attemptInBudget attempts made in the current budget (a `retry` of the run starts a fresh one)
 */
export function shouldRetry(policy: ResolvedRetry, error: unknown, attemptInBudget: number): boolean {
  if (isFinalError(error)) return false;
  if (attemptInBudget >= policy.maxAttempts) return false;
  if (policy.retryIf) {
    try {
      return policy.retryIf(error) !== false;
    } catch {
      return false;
    }
  }
  return true;
}
