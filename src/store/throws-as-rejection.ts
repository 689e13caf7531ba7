/**
 * Calls `fn`, turning a synchronous throw into a rejected promise, as an `async` function would: for the stores' hot
 * methods written as plain functions (no implicit promise, no `await`: under an app's context manager every promise
 * costs hook calls), whose argument checks throw before any promise exists.
 */
export function throwsAsRejection<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (error) {
    return Promise.reject(error);
  }
}
