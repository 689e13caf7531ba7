/**
 * Which of the engine's own JSON texts (a run's `state`, a history event's `body`) may be stored without the codec.
 *
 * They are written at every checkpoint (the state once, two or three events), and most of them hold nothing but step
 * names, counters, times, signal names and instance ids, which the store keeps readable in the run's other fields
 * anyway. Encoding them was two thirds of the codec calls of a checkpoint. So a text is left readable only when it
 * matches an allowlist of those shapes exactly; anything else (an error message, a compensation in progress, trace
 * baggage, a field this list does not know yet) is encoded. An engine change that adds a field fails safe: encoded.
 *
 * Stored forms: the text as is (engine JSON always starts with `{`), or `~` followed by the codec's output.
 */

/** The mark of an engine text stored encoded. */
export const ENCODED_MARK = '~';

type Check = (value: unknown) => boolean;

const isString: Check = (v) => typeof v === 'string';
const isNumber: Check = (v) => typeof v === 'number';
const isBoolean: Check = (v) => typeof v === 'boolean';
const orNull = (check: Check): Check => (v) => v === null || check(v);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An object whose every key is in `shape`, each value passing that key's check. */
function matches(value: unknown, shape: Record<string, Check>): boolean {
  if (!isRecord(value)) return false;
  for (const key of Object.keys(value)) {
    const check = Object.prototype.hasOwnProperty.call(shape, key) ? shape[key] : undefined;
    if (!check || !check(value[key])) return false;
  }
  return true;
}

/**
 * `detail` of the events the engine writes (run-history.ts: "the engine's own values, never user data"): numbers,
 * flags, times, signal names, run and instance ids. `by` (an operator's name) is left out: such events are encoded.
 */
const EVENT_DETAIL: Record<string, Check> = {
  version: isNumber,
  forkedFrom: isString,
  fromStep: isString,
  delayMs: isNumber,
  retryInMs: isNumber,
  final: isBoolean,
  until: isString,
  signal: isString,
  timeoutMs: isNumber,
  previousOwner: isString,
  orphanedMs: isNumber,
  skipped: isBoolean,
  action: isString,
  compensate: isBoolean,
};

/** A history event without an error (`e`): type, time, step, attempt, duration, instance, detail. */
const EVENT: Record<string, Check> = {
  t: isString,
  at: isNumber,
  s: isString,
  a: isNumber,
  d: isNumber,
  i: isString,
  x: (v) => matches(v, EVENT_DETAIL),
};

/** The engine state without a compensation in progress (`comp` holds the error being undone). */
const STATE: Record<string, Check> = {
  v: isNumber,
  cursor: orNull(isString),
  entry: isNumber,
  tr: isNumber,
  rec: isNumber,
  base: isNumber,
  wait: (v) => matches(v, { entry: isNumber, signal: isString }),
  failed: isString,
  // NOTE: W3C trace context only; `baggage` and other propagators' headers may carry user data.
  trace: (v) => matches(v, { traceparent: isString, tracestate: isString }),
};

function readable(text: string, shape: Record<string, Check>): boolean {
  if (text.length === 0 || text.charCodeAt(0) !== 0x7b /* { */) return false;
  try {
    return matches(JSON.parse(text), shape);
  } catch {
    return false;
  }
}

/** Whether a history event body holds nothing but what the store keeps readable anyway. */
export const readableEvent = (body: string): boolean => readable(body, EVENT);

/** Whether an engine state holds nothing but what the store keeps readable anyway. */
export const readableState = (state: string): boolean => readable(state, STATE);
