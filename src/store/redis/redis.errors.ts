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
export async function guard<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof DurableExecutionError) throw error;
    throw new StoreError(`Redis store: ${operation} failed: ${errorMessage(error)}`, { cause: error });
  }
}
