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
  /** While waiting: the entry of the step that returned waitForSignal. */
  wait?: { entry: number; signal: string };
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
