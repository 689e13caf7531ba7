import { CorruptRunError, DEFAULT_ERROR_TEXT_LIMIT } from '../errors/errors.js';

/** Placed where stored or logged error text was cut at the cap. */
export const TRUNCATION_MARKER = '… [truncated]';

/**
 * Makes arbitrary text safe to store and log: NUL becomes U+FFFD (PostgreSQL text and jsonb cannot hold it), unpaired
 * UTF-16 surrogates become U+FFFD, and text longer than `limit` characters is cut, ending with {@link TRUNCATION_MARKER}.
 */
export function safeText(text: string, limit = DEFAULT_ERROR_TEXT_LIMIT): string {
  let out = text.length > limit ? text.slice(0, Math.max(0, limit - TRUNCATION_MARKER.length)) + TRUNCATION_MARKER : text;
  if (out.includes('\u0000')) out = out.replace(/\u0000/g, '\uFFFD');
  const wellFormed = out as string & { isWellFormed(): boolean; toWellFormed(): string };
  return wellFormed.isWellFormed() ? out : wellFormed.toWellFormed();
}

const UNREADABLE = Symbol('unreadable');

/** Reads a property without ever throwing (a getter or a Proxy trap may throw). */
function read(target: unknown, key: 'name' | 'message' | 'stack'): unknown {
  try {
    return (target as Record<string, unknown>)[key];
  } catch {
    return UNREADABLE;
  }
}

/** Whether a thrown value is an Error, without ever throwing (a Proxy's getPrototypeOf trap may throw). */
export function isErrorLike(error: unknown): error is Error {
  try {
    return error instanceof Error;
  } catch {
    return false;
  }
}

/** The name of a thrown value (`Error` subclasses' `name`, else its type). Never throws; capped and sanitised. */
export function errorName(error: unknown): string {
  if (isErrorLike(error)) {
    const name = read(error, 'name');
    return safeText(typeof name === 'string' && name !== '' ? name : 'Error', 200);
  }
  return error === null ? 'null' : typeof error;
}

/** The message of a thrown value. Never throws, whatever the value's getters do; capped and sanitised. */
export function errorMessage(error: unknown): string {
  let text: string;
  try {
    if (isErrorLike(error)) {
      const message = read(error, 'message');
      if (message === UNREADABLE) text = '(the message could not be read: its getter threw)';
      else text = typeof message === 'string' ? message : message === undefined ? '' : String(message);
    } else if (typeof error === 'string') text = error;
    else text = JSON.stringify(error) ?? String(error);
  } catch {
    try {
      text = String(error);
    } catch {
      text = '(the error could not be described: reading it threw)';
    }
  }
  return safeText(text);
}

/** `Name: message`, never throwing; capped and sanitised. */
export function describeError(error: unknown): string {
  return safeText(`${errorName(error)}: ${errorMessage(error)}`);
}

/** The stack of a thrown value for logs, if it has one; never throws; capped. */
export function errorStack(error: unknown): string | undefined {
  const stack = isErrorLike(error) ? read(error, 'stack') : undefined;
  return typeof stack === 'string' ? safeText(stack) : undefined;
}

/** The error a run ends with when stored data of it cannot be decoded. */
export function corruptRunError(runId: string, detail: string): CorruptRunError {
  return new CorruptRunError(runId, safeText(detail, 1_000));
}
