import { InvalidArgumentError } from '../../errors/errors.js';

/**
 * PostgreSQL text cannot hold NUL, and an unpaired UTF-16 surrogate would be stored as U+FFFD (so the id read back
 * would differ). Ids and names with either are refused (on writes) or cannot exist (on reads).
 */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether PostgreSQL text can store `value` exactly (an id, a name). */
export function storable(value: string): boolean {
  return !UNSTORABLE.test(value);
}

const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'g');

/**
 * Free text the store writes in a step entry or the run's error (error messages, which may quote anything): NUL and
 * unpaired surrogates become U+FFFD, so that such a message never fails the commit that records it.
 */
export function storableText(value: string): string {
  return typeof value === 'string' ? value.replace(UNSTORABLE_ALL, '\uFFFD') : value;
}

/** Throws `InvalidArgumentError` naming `what` when PostgreSQL text cannot store `value` exactly. */
export function checkStorable(what: string, value: string | undefined): void {
  if (value !== undefined && !storable(value)) {
    throw new InvalidArgumentError(
      `${what} contains a NUL character or an unpaired UTF-16 surrogate, which PostgreSQL text cannot store.`,
    );
  }
}
