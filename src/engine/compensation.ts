import type { RunErrorInfo } from '../errors/errors.js';
import { retryDelay, type ResolvedRetry } from '../definition/retry-policy.js';
import type { StepDefinition, WorkflowDefinition } from '../definition/workflow-definition.interface.js';
import type { RunPatch, RunStatus, StoredStep } from '../store/workflow-store.interface.js';
import { encodeState, type CompensationState, type EngineState } from './engine-state.js';
import { describeError, errorMessage, errorName } from './error-text.js';
import type { StepLogger } from './step-context.interface.js';
import type { AttemptOutcome } from './step-invoker.js';
import { eventError, type NewRunEvent, type RunEventType } from './run-history.js';
import { errorFields, runLogFields } from '../observability/log-fields.js';

/** The step entries to compensate, latest first: completed visits of steps that declare a compensation. */
export function compensationQueue(steps: readonly StoredStep[], def: WorkflowDefinition): number[] {
  const queue: number[] = [];
  for (let i = steps.length - 1; i >= 0; i--) {
    const entry = steps[i];
    if (entry.status === 'completed' && def.stepsByName.get(entry.name)?.compensate) queue.push(i);
  }
  return queue;
}

/** The status a run ends with once its compensations are done. */
export function statusAfterCompensation(reason: CompensationState['reason']): RunStatus {
  return reason === 'cancel' ? 'cancelled' : 'compensated';
}

/** The failure being compensated, rebuilt from its stored form (when it did not happen on this instance). */
export function restoreError(info: RunErrorInfo): Error {
  const error = new Error(info.message);
  error.name = info.name;
  return error;
}

/** What running the compensations needs from the run's driver. */
export interface CompensationRun {
  readonly runId: string;
  readonly def: WorkflowDefinition;
  /** The run's step entries (updated in place). */
  readonly steps: StoredStep[];
  /** The run's engine state (updated in place; `comp` is the queue being worked). */
  readonly state: EngineState;
  readonly logger: StepLogger;
  /** The run left this instance (lease lost, shutdown). */
  stopped(): boolean;
  draining(): boolean;
  /** Adds a history event to the next write. */
  record(type: RunEventType, fields: Omit<NewRunEvent, 'type' | 'at'>): void;
  /** One attempt of the compensation method of the entry at `index`, given its step's output. */
  attempt(step: StepDefinition, method: string, index: number, attempt: number, output: unknown): Promise<AttemptOutcome>;
  /** Decodes a stored value (a damaged one fails the run). */
  decode(text: string | undefined, what: string): unknown;
  shouldRetry(policy: ResolvedRetry, error: unknown, attemptInBudget: number): boolean;
  /** Records a retry delay and waits it out here, or leaves the run to its stored wake-up time. */
  awaitRetry(delay: number, patch: Partial<RunPatch>): Promise<'continue' | 'left' | 'cancel'>;
  write(patch: Partial<RunPatch>): Promise<{ paused?: boolean }>;
  finish(status: RunStatus, output: string | undefined, steps: { index: number; step: StoredStep }[], error?: RunErrorInfo): Promise<void>;
  release(): Promise<void>;
}

/**
 * Runs the queued compensations of a run (`state.comp`), latest step first, each checkpointed, with its step's retry
 * policy. Ends the run `compensated` (or `cancelled` for a cancel) when all succeed, `failed` at a compensation that
 * failed for good (a `retry` resumes it), or returns when the run leaves this instance.
 */
export async function runCompensations(run: CompensationRun): Promise<void> {
  const { state, steps, def } = run;
  const comp = state.comp as CompensationState;
  while (comp.queue.length > 0) {
    if (run.stopped()) return;
    if (run.draining()) {
      await run.release();
      return;
    }
    const index = comp.queue[0];
    const entry = steps[index];
    const stepDef = def.stepsByName.get(entry.name);
    const method = stepDef?.compensate;
    if (!stepDef || !method) {
      comp.queue.shift();
      continue;
    }
    const attempt = comp.attempts + 1;
    const output = run.decode(entry.output, `the output of step "${entry.name}" (entry ${index})`);
    run.record('compensation.started', { step: entry.name, attempt });
    const began = Date.now();
    const outcome = await run.attempt(stepDef, method, index, attempt, output);
    const durationMs = Date.now() - began;
    if (run.stopped()) return;
    if (outcome.ok) {
      run.record('compensation.completed', { step: entry.name, attempt, durationMs });
      comp.queue.shift();
      comp.attempts = 0;
      comp.base = 0;
      state.rec = 0;
      const undone: StoredStep = { ...entry, status: 'compensated' };
      steps[index] = undone;
      if (comp.queue.length === 0) {
        state.comp = undefined;
        await run.finish(statusAfterCompensation(comp.reason), undefined, [{ index, step: undone }], comp.reason === 'cancel' ? undefined : comp.error);
        return;
      }
      const res = await run.write({ steps: [{ index, step: undone }], state: encodeState(state) });
      if (res.paused) return;
      continue;
    }
    comp.attempts = attempt;
    const error = outcome.error;
    const retrying = run.shouldRetry(stepDef.retry, error, attempt - comp.base);
    const delay = retrying ? retryDelay(stepDef.retry, attempt - comp.base) : undefined;
    run.record('compensation.failed', { step: entry.name, attempt, durationMs, error: eventError(error), detail: retrying ? { retryInMs: delay } : { final: true } });
    if (delay !== undefined) {
      run.logger.warn(
        `Run "${run.runId}" (${def.name}): compensation of step "${entry.name}" attempt ${attempt} failed (${describeError(error)}); retrying in ${delay} ms, per the step's retry policy`,
        runLogFields({ event: 'compensation.retrying', runId: run.runId, workflow: def.name, step: entry.name, attempt, delayMs: delay, error: errorFields(error) }),
      );
      if ((await run.awaitRetry(delay, { state: encodeState(state) })) === 'left') return;
      continue;
    }
    const withError: StoredStep = { ...entry, error: `Compensation failed: ${describeError(error)}` };
    steps[index] = withError;
    state.failed = 'compensation';
    run.logger.error(
      `Run "${run.runId}" (${def.name}): compensation of step "${entry.name}" failed for good after ${attempt} attempt(s): ${describeError(error)}. ` +
        `The run ends failed, its remaining compensations not run: fix the cause, then client.retry("${run.runId}") resumes them, starting with this one.`,
      runLogFields({ event: 'compensation.failed', runId: run.runId, workflow: def.name, step: entry.name, attempt, error: errorFields(error) }),
    );
    await run.finish('failed', undefined, [{ index, step: withError }], {
      name: errorName(error),
      message: errorMessage(error),
      step: entry.name,
      phase: 'compensation',
    });
    return;
  }
  // Nothing left to compensate (e.g. the definition lost its compensation methods).
  state.comp = undefined;
  await run.finish(statusAfterCompensation(comp.reason), undefined, [], comp.reason === 'cancel' ? undefined : comp.error);
}
