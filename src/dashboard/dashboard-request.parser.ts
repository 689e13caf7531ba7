import { InvalidArgumentError } from '../errors/errors.js';
import { assertRunId, assertSignalName } from '../engine/argument-checks.js';
import { RUN_STATUS_SET } from '../store/run-state-machine.js';
import type { RunStatus } from '../store/workflow-store.interface.js';
import type { RunsFilter } from './dashboard-api.interface.js';
import { DEFAULT_PAGE_SIZE, MAX_ACTION_VALUE_CHARS, MAX_PAGE_SIZE, MAX_QUERY_CHARS } from './dashboard.constants.js';

/**
 * Pure checks of every parameter the dashboard's routes take. Each throws InvalidArgumentError (HTTP 400) naming the
 * parameter; nothing reaches the client or the engine unchecked.
 */

type Query = Record<string, unknown>;

const RUNS_QUERY_KEYS = ['workflow', 'status', 'from', 'to', 'tz', 'id', 'parent', 'limit', 'cursor'] as const;
const LOCAL_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?$/;
const ZONED_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** Refuses keys a route does not take (a typo would otherwise silently widen a filter or a bulk action). */
function onlyKeys(source: Query, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(source)) {
    if (!allowed.includes(key)) {
      throw new InvalidArgumentError(`Unknown ${what} ${JSON.stringify(key.slice(0, 50))}; allowed: ${allowed.join(', ')}.`);
    }
  }
}

/** A single text parameter; an empty one counts as absent. */
function text(source: Query, key: string, max = MAX_QUERY_CHARS): string | undefined {
  const value = source[key];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw new InvalidArgumentError(`Parameter "${key}" must be given once, as text.`);
  if (value.length > max) throw new InvalidArgumentError(`Parameter "${key}" is longer than ${max} characters.`);
  return value;
}

/** A run id from the path or a query; `name`: the query parameter it came in, for the message. */
export function parseRunId(value: unknown, name?: string): string {
  try {
    assertRunId(value);
  } catch (error) {
    if (name === undefined || !(error instanceof InvalidArgumentError)) throw error;
    throw new InvalidArgumentError(`Parameter "${name}": ${error.message}`);
  }
  return value;
}

function parseStatuses(value: unknown): RunStatus[] | undefined {
  if (value === undefined || value === '') return undefined;
  const parts = (Array.isArray(value) ? value : [value]).flatMap((v) => {
    if (typeof v !== 'string') throw new InvalidArgumentError('Parameter "status" must be text: a status, or several separated by commas.');
    return v.split(',').filter((s) => s.length > 0);
  });
  if (parts.length === 0) return undefined;
  for (const status of parts) {
    if (!RUN_STATUS_SET.has(status)) {
      throw new InvalidArgumentError(`Unknown status ${JSON.stringify(status.slice(0, 50))}; known: ${[...RUN_STATUS_SET].join(', ')}.`);
    }
  }
  return [...new Set(parts)] as RunStatus[];
}

/**
 * An instant: ISO 8601 with a zone (`2024-05-01T10:00:00Z`), epoch milliseconds, or a local date-time as a
 * `datetime-local` input gives it (`2024-05-01T10:00`), read in the zone `tzOffset` (minutes, as the browser's
 * `getTimezoneOffset()`; UTC when absent).
 */
export function parseInstant(value: string, name: string, tzOffset = 0): Date {
  let date: Date | undefined;
  if (/^\d{1,15}$/.test(value)) date = new Date(Number(value));
  else if (ZONED_TIME.test(value)) date = new Date(value);
  else {
    const m = LOCAL_TIME.exec(value);
    if (m) {
      const [y, mo, d, h = '0', mi = '0', s = '0', ms = '0'] = m.slice(1);
      const utc = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, +ms.padEnd(3, '0'));
      const check = new Date(utc);
      if (check.getUTCMonth() === +mo - 1 && check.getUTCDate() === +d) date = new Date(utc + tzOffset * 60_000);
    }
  }
  if (!date || !Number.isFinite(date.getTime())) {
    throw new InvalidArgumentError(`Parameter "${name}" must be a date-time such as 2024-05-01T10:00:00Z (got ${JSON.stringify(value.slice(0, 50))}).`);
  }
  return date;
}

/** The runs list's query (the page's and the API's). */
export function parseRunsQuery(query: Query = {}): RunsFilter {
  onlyKeys(query, RUNS_QUERY_KEYS, 'runs filter');
  const filter: RunsFilter = { limit: DEFAULT_PAGE_SIZE };
  const workflow = text(query, 'workflow', 255);
  if (workflow !== undefined) filter.workflow = workflow;
  const statuses = parseStatuses(query.status);
  if (statuses) filter.statuses = statuses;
  const tz = text(query, 'tz', 10);
  if (tz !== undefined) {
    const offset = Number(tz);
    if (!Number.isInteger(offset) || Math.abs(offset) > 16 * 60) {
      throw new InvalidArgumentError('Parameter "tz" must be a time zone offset in minutes (as getTimezoneOffset() gives it).');
    }
    filter.tzOffset = offset;
  }
  const from = text(query, 'from', 40);
  if (from !== undefined) filter.createdFrom = parseInstant(from, 'from', filter.tzOffset);
  const to = text(query, 'to', 40);
  if (to !== undefined) filter.createdTo = parseInstant(to, 'to', filter.tzOffset);
  if (filter.createdFrom && filter.createdTo && filter.createdFrom > filter.createdTo) {
    throw new InvalidArgumentError('Parameter "from" must not be after "to".');
  }
  const id = text(query, 'id', 1024);
  if (id !== undefined) filter.runId = parseRunId(id, 'id');
  const parent = text(query, 'parent', 1024);
  if (parent !== undefined) filter.parentRunId = parseRunId(parent, 'parent');
  const limit = text(query, 'limit', 10);
  if (limit !== undefined) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) throw new InvalidArgumentError(`Parameter "limit" must be an integer from 1 to ${MAX_PAGE_SIZE}.`);
    filter.limit = n;
  }
  const cursor = text(query, 'cursor');
  if (cursor !== undefined) {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new InvalidArgumentError('Invalid list cursor: pass the cursor of the previous page unchanged.');
    filter.cursor = cursor;
  }
  return filter;
}

/** Routes that take no query parameter refuse any. */
export function parseNoQuery(query: Query = {}): void {
  onlyKeys(query, [], 'parameter');
}

/** `?workflow=` of the counts route. */
export function parseCountsQuery(query: Query = {}): { workflow?: string } {
  onlyKeys(query, ['workflow'], 'parameter');
  const workflow = text(query, 'workflow', 255);
  return workflow === undefined ? {} : { workflow };
}

/** `?cursor=&limit=` of the history route. */
export function parseHistoryQuery(query: Query = {}): { cursor?: string; limit: number } {
  onlyKeys(query, ['cursor', 'limit'], 'parameter');
  const limit = text(query, 'limit', 10);
  const n = limit === undefined ? 100 : Number(limit);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('Parameter "limit" must be an integer from 1 to 1000.');
  const cursor = text(query, 'cursor', 40);
  if (cursor !== undefined && !/^h1\.\d{1,15}$/.test(cursor)) {
    throw new InvalidArgumentError('Invalid history cursor: pass the cursor of the previous page unchanged.');
  }
  return { limit: n, ...(cursor !== undefined ? { cursor } : {}) };
}

/** A value of a run that "show all" reads: `input`, `output`, `error`, `steps.<i>.output|error|heartbeat`, `signals.<i>`. */
export type ValueRef =
  | { kind: 'input' | 'output' | 'error' }
  | { kind: 'step'; index: number; part: 'output' | 'error' | 'heartbeat' }
  | { kind: 'signal'; index: number };

/** `?ref=` of the "show all" routes. */
export function parseValueRef(query: Query = {}): ValueRef {
  onlyKeys(query, ['ref'], 'parameter');
  const ref = text(query, 'ref', 40);
  const invalid = () =>
    new InvalidArgumentError('Parameter "ref" must be input, output, error, steps.<n>.output, steps.<n>.error, steps.<n>.heartbeat or signals.<n>.');
  if (ref === 'input' || ref === 'output' || ref === 'error') return { kind: ref };
  const step = ref && /^steps\.(\d{1,6})\.(output|error|heartbeat)$/.exec(ref);
  if (step) return { kind: 'step', index: Number(step[1]), part: step[2] as 'output' | 'error' | 'heartbeat' };
  const signal = ref && /^signals\.(\d{1,6})$/.exec(ref);
  if (signal) return { kind: 'signal', index: Number(signal[1]) };
  throw invalid();
}

/** `?runId=&workflow=` of the live stream. */
export function parseEventsQuery(query: Query = {}): { runId?: string; workflow?: string } {
  onlyKeys(query, ['runId', 'workflow'], 'parameter');
  const runId = text(query, 'runId', 1024);
  const workflow = text(query, 'workflow', 255);
  return { ...(runId !== undefined ? { runId: parseRunId(runId) } : {}), ...(workflow !== undefined ? { workflow } : {}) };
}

// -----------------------------------------------------------------------------------------------------------------
// Action bodies (JSON)

function bodyObject(body: unknown, keys: readonly string[], action: string): Query {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new InvalidArgumentError(`The body of ${action} must be a JSON object.`);
  onlyKeys(body as Query, keys, `field of ${action}`);
  return body as Query;
}

/** A JSON value an operator entered: bounded in size (the engine then applies `maxPayloadBytes`). */
function jsonValue(value: unknown, what: string): unknown {
  let size: number;
  try {
    size = JSON.stringify(value ?? null).length;
  } catch {
    throw new InvalidArgumentError(`${what} must be a JSON value.`);
  }
  if (size > MAX_ACTION_VALUE_CHARS) throw new InvalidArgumentError(`${what} is larger than ${MAX_ACTION_VALUE_CHARS} characters of JSON.`);
  return value;
}

/** `cancel`: `{ compensate?: boolean }` (default true). */
export function parseCancelBody(body: unknown): { compensate: boolean } {
  const b = bodyObject(body, ['compensate'], 'cancel');
  if (b.compensate !== undefined && typeof b.compensate !== 'boolean') throw new InvalidArgumentError('Field "compensate" must be true or false.');
  return { compensate: b.compensate !== false };
}

/** pause, resume and retry take no fields. */
export function parseEmptyBody(body: unknown, action: string): void {
  bodyObject(body, [], action);
}

/** `signal`: `{ name, payload? }`, the name checked as `client.signal` does. */
export function parseSignalBody(body: unknown): { name: string; payload: unknown } {
  const b = bodyObject(body, ['name', 'payload'], 'signal');
  assertSignalName(b.name, 'Field "name" (the signal name)');
  return { name: b.name, payload: jsonValue(b.payload, 'Field "payload"') };
}

/** `skip`: `{ output }` (required; `null` is an output). */
export function parseSkipBody(body: unknown): { output: unknown } {
  const b = bodyObject(body, ['output'], 'skip');
  if (!('output' in b)) throw new InvalidArgumentError('Field "output" is required: the output to record for the failed step (null is fine).');
  return { output: jsonValue(b.output, 'Field "output"') };
}

/** `fork`: `{ fromStep, id?, input? }` (`input` absent: the source's input). */
export function parseForkBody(body: unknown): { fromStep: string; id?: string; input?: { value: unknown } } {
  const b = bodyObject(body, ['fromStep', 'id', 'input'], 'fork');
  if (typeof b.fromStep !== 'string' || b.fromStep.length === 0 || b.fromStep.length > 255) {
    throw new InvalidArgumentError('Field "fromStep" must be the name of a step of the workflow.');
  }
  const out: { fromStep: string; id?: string; input?: { value: unknown } } = { fromStep: b.fromStep };
  if (b.id !== undefined && b.id !== '') out.id = parseRunId(b.id);
  if ('input' in b) out.input = { value: jsonValue(b.input, 'Field "input"') };
  return out;
}

/** A bulk action's body: the list's filter (as its query), the count the operator confirmed, and for cancel `compensate`. */
export function parseBulkBody(body: unknown, action: 'cancel' | 'retry'): { filter: RunsFilter; confirmCount: number; compensate: boolean } {
  const b = bodyObject(body, action === 'cancel' ? ['filter', 'confirmCount', 'compensate'] : ['filter', 'confirmCount'], `bulk ${action}`);
  const filterQuery = b.filter ?? {};
  if (typeof filterQuery !== 'object' || filterQuery === null || Array.isArray(filterQuery)) {
    throw new InvalidArgumentError('Field "filter" must be an object of the runs filter (workflow, status, from, to, tz, id, parent).');
  }
  const filter = parseRunsQuery(filterQuery as Query);
  if (filter.cursor !== undefined || (filterQuery as Query).limit !== undefined) {
    throw new InvalidArgumentError('A bulk action takes a filter without "cursor" or "limit": it acts on every matching run.');
  }
  const n = b.confirmCount;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw new InvalidArgumentError('Field "confirmCount" must be the number of runs the operator confirmed (from the preview).');
  }
  if (b.compensate !== undefined && typeof b.compensate !== 'boolean') throw new InvalidArgumentError('Field "compensate" must be true or false.');
  return { filter, confirmCount: n, compensate: b.compensate !== false };
}

/** `?<runs filter>` of a bulk preview (the list's query, without paging). */
export function parseBulkPreviewQuery(query: Query = {}): RunsFilter {
  const filter = parseRunsQuery(query);
  if (filter.cursor !== undefined || query.limit !== undefined) {
    throw new InvalidArgumentError('A bulk preview takes a filter without "cursor" or "limit".');
  }
  return filter;
}

/** The `:action` of the bulk routes. */
export function parseBulkAction(value: unknown): 'cancel' | 'retry' {
  if (value !== 'cancel' && value !== 'retry') throw new InvalidArgumentError('A bulk action is "cancel" or "retry".');
  return value;
}
