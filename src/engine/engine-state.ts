import type { RunErrorInfo } from '../errors/errors.js';
import type { TraceCarrier } from '../observability/instrumentation.interface.js';

/** Progress of the compensations of a run (stored in the engine state). */
export interface CompensationState {
  /** Step entry indexes still to compensate, next first. */
  queue: number[];
  reason: 'failure' | 'cancel';
  /** The failure being undone. */
  error: RunErrorInfo;
  /** Recorded attempts of the compensation at the head of the queue. */
  attempts: number;
  /** Attempts recorded before the current retry budget (a `retry` starts a fresh one). */
  base: number;
}

/** A step's child runs, in the parent's state: enough to name every child and decide when the step is done. */
export interface JoinState {
  entry: number;
  mode: 'child' | 'all' | 'allSettled';
  /** Number of children. */
  n: number;
  /** Ids are `${key}:${i}` unless `ids` lists them (some were given explicitly). */
  key: string;
  ids?: string[];
  /** Most children live at once. */
  c: number;
  /** Indexes of the children started with `onParentEnd: 'abandon'`. */
  abandon?: number[];
  /** Attempt of the step that returned the directive, and when it started. */
  attempt: number;
  startedAt: string;
}

/** The run ids of a join's children, in order. */
export function joinIds(join: JoinState): string[] {
  if (join.ids) return join.ids;
  return Array.from({ length: join.n }, (_, i) => `${join.key}:${i}`);
}

/**
 * The engine's private part of a stored run (`StoredRun.state`), kept small: everything else is in first-class fields.
 */
export interface EngineState {
  v: 1;
  /** Next forward step to run; null: the run ends with the current input as its output. */
  cursor: string | null;
  /** Index of the step entry of the cursor's visit (it may not be written yet). */
  entry: number;
  /** Step transitions so far (bounded by maxTransitions). */
  tr: number;
  /** Recoveries after crashes without progress. */
  rec: number;
  /** Attempts recorded before the current retry budget of the cursor visit. */
  base: number;
  /**
   * While waiting: the entry of the step that returned waitForSignal (`signal`) or waitForAny (`any`: every name; the
   * next step then receives `{ signal, payload }`).
   */
  wait?: { entry: number; signal: string; any?: string[] };
  /**
   * A `Flow.waitForAny` ended (by `signal`, whose payload is the run's `nextInput`, or by its timeout: `null`): the
   * cursor step receives `{ signal, payload }` / `{ signal: null, timedOut: true }`. Cleared by the next checkpoint.
   */
  delivered?: { signal: string | null };
  /** While the step at `entry` waits for its child runs (Flow.child / all / allSettled). */
  join?: JoinState;
  comp?: CompensationState;
  /** The run ended failed here; a `retry` continues from it. */
  failed?: 'step' | 'compensation';
  /** The trace context active at `start()` (OpenTelemetry), parent of every attempt's span. */
  trace?: TraceCarrier;
}

export function initialState(firstStep: string, trace?: TraceCarrier): EngineState {
  const state: EngineState = { v: 1, cursor: firstStep, entry: 0, tr: 0, rec: 0, base: 0 };
  if (trace) state.trace = trace;
  return state;
}

export function encodeState(state: EngineState): string {
  return JSON.stringify(state);
}

export function decodeState(text: string): EngineState {
  const state = JSON.parse(text) as EngineState;
  if (!state || state.v !== 1) throw new Error(`Unsupported run state: ${text.slice(0, 100)}`);
  return state;
}
