import { InvalidArgumentError } from '../errors/errors.js';

/** Longest run id and signal name, in characters. */
export const MAX_NAME_LENGTH = 255;

function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/** Checks a run id (DESIGN: a non-empty string of at most 255 characters that every store can keep verbatim). */
export function assertRunId(runId: unknown): asserts runId is string {
  if (typeof runId !== 'string' || runId.length === 0 || runId.length > MAX_NAME_LENGTH) {
    throw new InvalidArgumentError(
      `A run id must be a non-empty string of at most ${MAX_NAME_LENGTH} characters (got ${typeof runId === 'string' ? `a string of ${runId.length} characters` : typeof runId}).`,
    );
  }
  // NOTE: stores keep ids verbatim; NUL and lone UTF-16 surrogates cannot be stored as text by Postgres or Redis keys.
  if (!isStorableText(runId)) {
    throw new InvalidArgumentError('A run id must not contain NUL characters or unpaired UTF-16 surrogates.');
  }
}

/**
 * Checks a signal name, for `client.signal` and `Flow.waitForSignal` alike, so that a run never waits for a name that
 * could not be sent.
 * @param where who passed it, for the message (e.g. `Step "approve" returned Flow.waitForSignal with`)
 */
export function assertSignalName(name: unknown, where = 'A signal name'): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH || !isStorableText(name)) {
    const got = typeof name === 'string' ? (name.length === 0 ? 'an empty string' : `a string of ${name.length} characters`) : typeof name;
    throw new InvalidArgumentError(
      `${where} must be a non-empty string of at most ${MAX_NAME_LENGTH} characters without NUL or unpaired surrogates (got ${got}).`,
    );
  }
}

/** Checks a signal's deduplication id (`client.signal(…, { id })`): the same rules as a run id. */
export function assertSignalId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_NAME_LENGTH || !isStorableText(id)) {
    throw new InvalidArgumentError(
      `A signal id must be a non-empty string of at most ${MAX_NAME_LENGTH} characters without NUL or unpaired surrogates (got ${typeof id === 'string' ? `a string of ${id.length} characters` : typeof id}).`,
    );
  }
}
