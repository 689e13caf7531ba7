import type { StoredRun } from '../store/workflow-store.interface.js';
import type { EngineState } from './engine-state.js';

/** What a driver knows of a claimed run before its next step: rebuilt from the stored run alone. */
export interface RebuiltRun {
  /** The run's input. */
  runInput: unknown;
  /** Outputs of the completed (or compensated) steps by name, the latest visit winning. */
  results: Record<string, unknown>;
  /** Visits so far per step name (for idempotency keys). */
  visits: Map<string, number>;
  /** The input of the step at the cursor: a signal payload handed over by the store, else the previous step's output. */
  input: unknown;
}

/**
 * Rebuilds a claimed run's in-memory view from its stored form. Pure apart from `decode`, which throws on a damaged
 * value (naming it by `what`).
 */
export function rebuildRun(run: StoredRun, state: EngineState, decode: (text: string | undefined, what: string) => unknown): RebuiltRun {
  const runInput = decode(run.input, 'the input');
  const results: Record<string, unknown> = {};
  const visits = new Map<string, number>();
  let lastOutput: string | undefined;
  let hasLast = false;
  for (let i = 0; i < run.steps.length; i++) {
    const entry = run.steps[i];
    visits.set(entry.name, (visits.get(entry.name) ?? 0) + 1);
    if (entry.status === 'completed' || entry.status === 'compensated') {
      results[entry.name] = decode(entry.output, `the output of step "${entry.name}" (entry ${i})`);
      if (i < state.entry) {
        lastOutput = entry.output;
        hasLast = true;
      }
    }
  }
  let input: unknown;
  if (state.delivered) {
    const { signal } = state.delivered;
    input = signal === null ? { signal: null, timedOut: true } : { signal, payload: decode(run.nextInput, `the payload of signal "${signal}"`) };
  } else if (state.wait?.any && run.nextInput !== undefined && run.nextInputSignal !== undefined) {
    // A Flow.waitForAny was handed a signal and the run stopped before its next write: the store names the signal.
    input = { signal: run.nextInputSignal, payload: decode(run.nextInput, `the payload of signal "${run.nextInputSignal}"`) };
  } else if (run.nextInput !== undefined) input = decode(run.nextInput, 'the payload of the signal handed to it');
  else input = hasLast ? decode(lastOutput, 'the output of the previous step') : runInput;
  return { runInput, results, visits, input };
}
