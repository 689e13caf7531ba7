import type { StoredRunEvent } from '../store/workflow-store.interface.js';
import { errorMessage, errorName } from './error-text.js';

/** Every kind of event a run's history records (DESIGN §3.4). */
export const RUN_EVENT_TYPES = [
  'run.started',
  'step.started',
  'step.completed',
  'step.failed',
  'step.retrying',
  'run.sleeping',
  'run.waiting',
  'signal.received',
  'run.paused',
  'run.resumed',
  'run.recovered',
  'compensation.started',
  'compensation.completed',
  'compensation.failed',
  'run.completed',
  'run.compensated',
  'run.failed',
  'run.cancelled',
  'run.retried',
  'child.started',
  'child.ended',
  'operator.action',
] as const;

export type RunEventType = (typeof RUN_EVENT_TYPES)[number];

const EVENT_TYPE_SET: ReadonlySet<string> = new Set(RUN_EVENT_TYPES);

/** One event of a run's history. */
export interface RunEvent {
  /** 1, 2, 3 … per run, in the order written (a gap means older events were dropped: see the history bound). */
  seq: number;
  at: Date;
  type: RunEventType;
  step?: string;
  attempt?: number;
  durationMs?: number;
  error?: { name: string; message: string };
  /** The instance that recorded it (the run's executor, or the one that received the client call). */
  instanceId?: string;
  /** Per type: e.g. `{ delayMs }` of a retry, `{ signal }` of a wait, `{ previousOwner, orphanedMs }` of a recovery. */
  detail?: unknown;
}

/** An event as an instance publishes it: with its run. */
export type WorkflowRunEvent = RunEvent & { runId: string; workflow: string };

/** An event before the store numbers it. */
export type NewRunEvent = Omit<RunEvent, 'seq'>;

/** Longest error message kept in an event; the run's `error` and step entries keep the full text. */
const EVENT_ERROR_CHARS = 2_000;

/** The stored form: short keys, since a run may keep many events. */
interface EventBody {
  t: RunEventType;
  at: number;
  s?: string;
  a?: number;
  d?: number;
  e?: { n: string; m: string };
  i?: string;
  x?: unknown;
}

/** The error of an event from a thrown value (never throws; long messages are cut). */
export function eventError(error: unknown): { name: string; message: string } {
  const message = errorMessage(error);
  return { name: errorName(error), message: message.length > EVENT_ERROR_CHARS ? `${message.slice(0, EVENT_ERROR_CHARS)}…` : message };
}

/** The stored text of an event. `detail` must be plain JSON (the engine's own values, never user data). */
export function encodeEvent(event: NewRunEvent): string {
  const body: EventBody = { t: event.type, at: event.at.getTime() };
  if (event.step !== undefined) body.s = event.step;
  if (event.attempt !== undefined) body.a = event.attempt;
  if (event.durationMs !== undefined) body.d = event.durationMs;
  if (event.error !== undefined) body.e = { n: event.error.name, m: event.error.message };
  if (event.instanceId !== undefined) body.i = event.instanceId;
  if (event.detail !== undefined) body.x = event.detail;
  return JSON.stringify(body);
}

/** Reads a stored event. A damaged one is returned as an `operator.action`-free placeholder naming the problem. */
export function decodeEvent(stored: StoredRunEvent): RunEvent {
  let body: EventBody;
  try {
    body = JSON.parse(stored.body) as EventBody;
    if (!body || typeof body !== 'object' || !EVENT_TYPE_SET.has(body.t) || typeof body.at !== 'number') throw new Error('not an event');
  } catch (error) {
    return {
      seq: stored.seq,
      at: new Date(0),
      type: 'operator.action',
      error: { name: 'CorruptRunError', message: `History event ${stored.seq} cannot be read (${errorMessage(error)})` },
    };
  }
  return fromBody(stored.seq, body);
}

function fromBody(seq: number, body: EventBody): RunEvent {
  const event: RunEvent = { seq, at: new Date(body.at), type: body.t };
  if (body.s !== undefined) event.step = body.s;
  if (body.a !== undefined) event.attempt = body.a;
  if (body.d !== undefined) event.durationMs = body.d;
  if (body.e !== undefined) event.error = { name: body.e.n, message: body.e.m };
  if (body.i !== undefined) event.instanceId = body.i;
  if (body.x !== undefined) event.detail = body.x;
  return event;
}

/** Numbers events written together, given the seq the store gave the last one. */
export function numbered(events: readonly NewRunEvent[], lastSeq: number | undefined): RunEvent[] {
  const first = (lastSeq ?? 0) - events.length + 1;
  return events.map((event, i) => ({ ...event, seq: lastSeq === undefined ? 0 : first + i }));
}
