import { DurableExecutionError } from '../../errors/durable-execution.error.js';
import { StoreError } from '../../errors/errors.js';
import { storeCall } from '../store-call.js';

/** The message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs one store operation and reports what it throws as a `StoreError` naming the operation; the library's own errors
 * (invalid arguments, …) pass through unchanged.
 */
export function guard<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  // NOTE: one promise (see store-call.ts): every checkpoint passes here.
  return storeCall(fn, (error) => storeError(operation, error));
}

function storeError(operation: string, error: unknown): unknown {
  if (error instanceof DurableExecutionError) return error;
  return new StoreError(`Redis store: ${operation} failed: ${errorMessage(error)}`, { cause: error });
}
