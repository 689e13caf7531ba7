import { InvalidArgumentError } from '../errors/errors.js';
import { parseDuration } from '../definition/duration.js';
import type { WorkflowDefinition } from '../definition/workflow-definition.interface.js';
import type { CreateRunOptions, NewRun } from '../store/workflow-store.interface.js';
import { describeError } from './error-text.js';

/** The flow-control options of a start (DESIGN §3.2). */
export interface StartFlowOptions {
  priority?: number;
  delay?: number | string | Date;
  concurrencyKey?: string;
  debounce?: { key: string; delay: number | string; maxDelay?: number | string };
}

/** Longest user key (concurrency, rate limit, debounce), in characters. */
export const MAX_FLOW_KEY_LENGTH = 512;

/**
 * The store's full key of a workflow's concurrency, rate or debounce key: the workflow name and the user's key, as
 * JSON (unambiguous whatever either contains). The workflow's global key is its name alone.
 */
export function flowKey(workflow: string, key: string | undefined): string {
  return key === undefined ? JSON.stringify([workflow]) : JSON.stringify([workflow, key]);
}

/** The user's key back from a full key (undefined for a workflow's global key, or a key this release did not write). */
export function userKeyOf(fullKey: string | undefined): string | undefined {
  if (fullKey === undefined) return undefined;
  try {
    const parsed = JSON.parse(fullKey) as unknown;
    return Array.isArray(parsed) && typeof parsed[1] === 'string' ? parsed[1] : undefined;
  } catch {
    return undefined;
  }
}

function checkKey(key: unknown, what: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_FLOW_KEY_LENGTH) {
    throw new InvalidArgumentError(`${what} must be a non-empty string of at most ${MAX_FLOW_KEY_LENGTH} characters (got ${describeValue(key)}).`);
  }
  if (key.includes('\0')) throw new InvalidArgumentError(`${what} must not contain NUL characters.`);
  return key;
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return typeof value;
  }
}

/** Calls a workflow's key function on the run's input; what it throws or a non-string result is the start's error. */
function keyFromInput(fn: (input: unknown) => string, input: unknown, what: string): string {
  let key: unknown;
  try {
    key = fn(input);
  } catch (error) {
    throw new InvalidArgumentError(`${what} threw for this input: ${describeError(error)}. Make it return a string for every input it can receive.`);
  }
  return checkKey(key, `The value returned by ${what}`);
}

function durationOf(value: unknown, what: string): number {
  const ms = parseDuration(value as number | string);
  if (ms === undefined) {
    throw new InvalidArgumentError(`${what} must be a non-negative number of ms or a duration string such as '10s' or '5m' (got ${describeValue(value)}).`);
  }
  return ms;
}

/**
 * What a start adds to the new run and to `createRun` for flow control: the priority, a delay, the concurrency and
 * rate limit with their keys, debounce. Validates everything before anything is stored.
 * @throws InvalidArgumentError naming the option and the fix
 */
export function startFlowFields(
  def: WorkflowDefinition,
  input: unknown,
  options: StartFlowOptions & { id?: string },
  now: number,
): { run: Pick<NewRun, 'priority' | 'due' | 'concurrency' | 'rateLimit'>; debounce?: CreateRunOptions['debounce'] } {
  const run: Pick<NewRun, 'priority' | 'due' | 'concurrency' | 'rateLimit'> = {};
  const priority = options.priority ?? def.priority;
  if (!Number.isSafeInteger(priority)) throw new InvalidArgumentError(`start priority must be an integer (got ${describeValue(priority)}).`);
  if (priority !== 0) run.priority = priority;

  if (options.delay !== undefined) {
    const delay = options.delay;
    if (delay instanceof Date) {
      const at = delay.getTime();
      if (Number.isNaN(at)) throw new InvalidArgumentError('start delay is an invalid Date.');
      if (at < now) throw new InvalidArgumentError(`start delay is a Date in the past (${delay.toISOString()}); give a future instant, or no delay to start now.`);
      run.due = { at: new Date(at) };
    } else {
      const ms = durationOf(delay, 'start delay');
      if (ms > 0) run.due = { delayMs: ms };
    }
  }

  const concurrency = def.concurrency;
  if (options.concurrencyKey !== undefined && !concurrency) {
    throw new InvalidArgumentError(`start concurrencyKey was given, but workflow "${def.name}" has no concurrency limit: set @Workflow({ concurrency: { limit, key } }).`);
  }
  if (concurrency) {
    const key =
      options.concurrencyKey !== undefined
        ? checkKey(options.concurrencyKey, 'start concurrencyKey')
        : concurrency.key
          ? keyFromInput(concurrency.key, input, `the concurrency key function of workflow "${def.name}"`)
          : undefined;
    run.concurrency = { key: flowKey(def.name, key), limit: concurrency.limit, scope: concurrency.scope };
  }
  const rate = def.rateLimit;
  if (rate) {
    const key = rate.key ? keyFromInput(rate.key, input, `the rateLimit key function of workflow "${def.name}"`) : undefined;
    run.rateLimit = { key: flowKey(def.name, key), limit: rate.limit, perMs: rate.perMs };
  }

  const debounce = options.debounce;
  if (debounce === undefined) return { run };
  if (debounce === null || typeof debounce !== 'object') throw new InvalidArgumentError(`start debounce must be { key, delay, maxDelay? } (got ${describeValue(debounce)}).`);
  if (options.id !== undefined) {
    throw new InvalidArgumentError('start debounce and id cannot be combined: a debounced start returns the pending run of its key, whatever id it has. Leave id out.');
  }
  if (run.due) throw new InvalidArgumentError('start debounce and delay cannot be combined: debounce.delay is the delay.');
  const key = checkKey(debounce.key, 'start debounce.key');
  const delayMs = durationOf(debounce.delay, 'start debounce.delay');
  const maxDelayMs = debounce.maxDelay !== undefined ? durationOf(debounce.maxDelay, 'start debounce.maxDelay') : undefined;
  if (maxDelayMs !== undefined && maxDelayMs < delayMs) {
    throw new InvalidArgumentError(`start debounce.maxDelay (${maxDelayMs} ms) must not be shorter than debounce.delay (${delayMs} ms).`);
  }
  return { run, debounce: { key: flowKey(def.name, key), delayMs, ...(maxDelayMs !== undefined ? { maxDelayMs } : {}) } };
}
