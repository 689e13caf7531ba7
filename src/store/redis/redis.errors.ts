import { DurableExecutionError } from '../../errors/durable-execution.error.js';
import { StoreError } from '../../errors/errors.js';

/** The message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs one store operation and reports what it throws as a `StoreError` naming the operation; the library's own errors
 * (invalid arguments, …) pass through unchanged.
 */
export function guard<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  // NOTE: a plain function, one promise (its `catch`): under an app's context manager (OpenTelemetry) every promise
  // costs hook calls, and every checkpoint passes here.
  let running: Promise<T>;
  try {
    running = fn();
  } catch (error) {
    return Promise.reject(storeError(operation, error));
  }
  return running.catch((error: unknown) => {
    throw storeError(operation, error);
  });
}

function storeError(operation: string, error: unknown): unknown {
  if (error instanceof DurableExecutionError) return error;
  return new StoreError(`Redis store: ${operation} failed: ${errorMessage(error)}`, { cause: error });
}
