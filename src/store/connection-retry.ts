/**
 * What the Postgres and Redis stores share about connecting at startup: which network errors are worth retrying, the
 * delays between attempts, the URL checks that do not depend on the scheme, and how a cause is printed.
 */

/** Network error codes that may go away by themselves (a server starting, a name not resolving yet). */
export const TRANSIENT_NETWORK_CODES: readonly string[] = [
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EPIPE',
];

/** Delays between connection attempts, in ms (the last one repeats). */
export const RETRY_DELAYS_MS: readonly number[] = [300, 600, 1_200, 2_400];

/** The delay before connection attempt `attempt + 1` (1-based `attempt`: the one that just failed). */
export function retryDelayAfter(attempt: number): number {
  return RETRY_DELAYS_MS[Math.min(attempt - 1, RETRY_DELAYS_MS.length - 1)]!;
}

/** What is wrong with a connection URL whatever its scheme (blank, padded, quoted), or undefined. */
export function commonUrlProblem(url: string): string | undefined {
  if (url.trim() === '') return 'it is blank';
  if (url !== url.trim()) return 'it starts or ends with whitespace';
  if (/^["'`]/.test(url) || /["'`]$/.test(url)) return 'it is wrapped in quotes (remove them from the value)';
  return undefined;
}

/** `CODE: message`, or the message alone. */
export function causeText(code: string | undefined, message: string): string {
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
