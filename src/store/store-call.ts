/**
 * The stores' hot methods are plain functions, not `async` ones: under an app's context manager (OpenTelemetry on
 * Node 20) every promise costs hook calls, and an `async` function costs its implicit promise plus one per `await`.
 * These keep an `async` function's error behaviour without its promises.
 */

/**
 * Calls `fn`, turning a synchronous throw into a rejected promise, as an `async` function would (argument checks throw
 * before any promise exists). No promise of its own.
 */
export function throwsAsRejection<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Runs one store operation: whatever `fn` throws or rejects with, and whatever `map` (applied to its result in the
 * same `then`) throws, rejects as `wrap(error)` (the store's `StoreError`, or the library's own error unchanged). A
 * promise `map` returns settles as it does (not wrapped). One promise of its own.
 */
export function storeCall<T>(fn: () => Promise<T>, wrap: (error: unknown) => unknown): Promise<T>;
export function storeCall<R, T>(fn: () => Promise<R>, wrap: (error: unknown) => unknown, map: (result: R) => T | Promise<T>): Promise<T>;
export function storeCall<R, T>(fn: () => Promise<R>, wrap: (error: unknown) => unknown, map?: (result: R) => T | Promise<T>): Promise<R | T> {
  let running: Promise<R>;
  try {
    running = fn();
  } catch (error) {
    return Promise.reject(wrap(error));
  }
  const rethrow = (error: unknown): never => {
    throw wrap(error);
  };
  if (!map) return running.catch(rethrow);
  return running.then((result) => {
    try {
      return map(result);
    } catch (error) {
      return rethrow(error);
    }
  }, rethrow);
}
