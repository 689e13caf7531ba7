import ms from 'ms';

/**
 * Parses a duration given as milliseconds or as an `ms` string ('500ms', '5s', '2m', '1h', '30d').
 * Returns undefined when the value is not a valid non-negative duration.
 */
export function parseDuration(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const parsed = ms(value.trim() as ms.StringValue) as number | undefined;
  return typeof parsed === 'number' && Number.isFinite(parsed) && parsed >= 0 ? parsed : undefined;
}

/** Like parseDuration, but throws `makeError(message)` for an invalid value. */
export function requireDuration(value: number | string, what: string, makeError: (message: string) => Error): number {
  const parsed = parseDuration(value);
  if (parsed === undefined) {
    throw makeError(
      `${what} must be a non-negative number of milliseconds or a duration string such as '500ms', '5s', '2m', '1h' (got ${JSON.stringify(value)})`,
    );
  }
  return parsed;
}
