import {
  ChildWorkflowFailedError,
  InvalidArgumentError,
  RecoveryLimitError,
  SignalTimeoutError,
  WorkflowCancelledError,
  WorkflowDefinitionError,
  type RunErrorInfo,
} from '../errors/errors.js';
import { retryDelay, type ResolvedRetry } from '../definition/retry-policy.js';
import type { StepDefinition, WorkflowDefinition } from '../definition/workflow-definition.interface.js';
import { isTerminal, LIVE_STATUSES, type ClaimedRun, type CommitResult, type NewChildRun, type RunOutcome, type RunPatch, type RunStatus, type StoredStep } from '../store/workflow-store.interface.js';
import { decodeState, encodeState, initialState, joinIds, type CompensationState, type EngineState, type JoinState } from './engine-state.js';
import type { ChildResult, WorkflowRefLike } from './flow.js';
import { compensationQueue, restoreError, runCompensations } from './compensation.js';
import { resolveStepReturn, type ChildrenRequest, type StepResolution } from './directive.resolver.js';
import { rebuildRun } from './run-rebuild.js';
import { corruptRunError, describeError, errorMessage, errorName, errorStack } from './error-text.js';
import { shouldRetry } from './retry.decision.js';
import type { Serializer } from './serializer.js';
import type { CompensationContext, StepContext, StepLogger } from './step-context.interface.js';
import { abortableSleep, invokeAttempt, type AttemptOutcome } from './step-invoker.js';
import { idempotencyKey, visitNumberAt } from './visit-keys.js';
import { encodeEvent, eventError, type NewRunEvent, type RunEventType } from './run-history.js';
import type { Instrumentation, TraceCarrier } from '../observability/instrumentation.interface.js';
import { errorFields, runLogFields } from '../observability/log-fields.js';
import type { EngineClock } from './clock.js';
import type { WorkflowStore } from '../store/workflow-store.interface.js';

/** What a driver needs from the engine that owns it. */
export interface DriverHost {
  readonly store: WorkflowStore;
  readonly serializer: Serializer;
  readonly logger: StepLogger;
  readonly leaseMs: number;
  readonly maxTransitions: number;
  readonly maxRecoveries: number;
  /** Retry delays up to this long are waited in-process, holding the lease; longer ones release the run. */
  readonly inProcessDelayMs: number;
  isDraining(): boolean;
  /** Wake this run locally after `delayMs` (the wake-up time is stored too). */
  scheduleWake(runId: string, delayMs: number): void;
  /** The run reached a terminal status. */
  onFinished(runId: string, snapshot: FinishedRun): void;
  /** Names this instance in history events. */
  readonly instanceId: string;
  /** History events of a run were written (for the local event stream). */
  onEvents(runId: string, workflow: string, events: readonly NewRunEvent[], lastSeq: number | undefined): void;
  /** At most one heartbeat write per run per this many ms (the latest details are written at the end of the window). */
  readonly heartbeatWriteMs: number;
  /** Traces and metrics (a no-op without OpenTelemetry). */
  readonly instrumentation: Instrumentation;
  /** False: no history is recorded (nor streamed). */
  readonly recordsHistory: boolean;
  /** Durable time: timeouts, in-process retry delays, wake-ups (a manual clock in tests). */
  readonly clock: EngineClock;
  /** A write of a run was committed (progress, for the testing module). */
  committed(): void;
  /**
   * A child run to create (`RunPatch.children.spawn`): resolves the workflow (UnknownWorkflowError) and serializes the
   * input (SerializationError, PayloadTooLargeError). `trace`: the parent's trace context, so the child's spans join
   * the parent's trace.
   */
  childRun(workflow: WorkflowRefLike, runId: string, input: unknown, trace?: TraceCarrier): NewChildRun;
  /** Requests the cancel (with compensation) of these runs; never throws (a failure is logged). */
  cancelRuns(runIds: readonly string[], why: string): Promise<void>;
}

/** Children that end this way fail a `Flow.child` / `Flow.all` step. */
function endedUnsuccessfully(status: RunStatus): status is 'failed' | 'compensated' | 'cancelled' {
  return isTerminal(status) && status !== 'completed';
}

/** The heartbeats of the attempt running now: which step entry they go to, and the throttle of their writes. */
interface HeartbeatSlot {
  index: number;
  step: string;
  lastWrite: number;
  /** Details recorded in memory and not written yet. */
  dirty: boolean;
  timer?: NodeJS.Timeout;
  /** The attempt ended: later calls change nothing. */
  closed: boolean;
}

/** A run's end, as seen by the instance that ended it. */
export interface FinishedRun {
  status: RunStatus;
  output?: string;
  error?: RunErrorInfo;
}

/** Why an attempt was cut short. */
class Interrupt extends Error {
  constructor(readonly kind: 'cancel' | 'lost' | 'shutdown') {
    super(kind);
  }
}


/** Stored data of the run could not be decoded: the run is failed with {@link CorruptRunError}. */
class UndecodableData extends Error {
  constructor(readonly detail: string) {
    super(detail);
  }
}


/**
 * Executes one claimed run on this instance, step after step, until it ends, sleeps, waits, is paused, or this
 * instance loses it. Every change goes through one fenced `commit`.
 */
export class RunDriver {
  readonly runId: string;
  private token: string;
  private state: EngineState;
  private steps: StoredStep[];
  /** Aborts whatever the run is doing (cancel, lease loss, shutdown). */
  private abort = new AbortController();
  /** The run left this instance (finished, slept, waits, paused, released). */
  private done = false;
  private interrupt?: Interrupt;
  private cancel?: { compensate: boolean };
  private lastWrite: number;
  /** Outputs of completed steps by name (latest visit). */
  private readonly results: Record<string, unknown> = {};
  private readonly visits = new Map<string, number>();
  private input: unknown;
  private runInput: unknown;
  /** The error being compensated, as thrown (when it happened on this instance). */
  private compensatedError?: unknown;
  /** Why the stored engine state could not be decoded (the run is then failed at once). */
  private stateError?: string;
  /** History events recorded since the last write; the next write carries them. */
  private pendingEvents: NewRunEvent[] = [];
  private heartbeat?: HeartbeatSlot;
  /** A heartbeat write in flight: every other write waits for it, so writes of one run never overtake each other. */
  private heartbeatWrite?: Promise<void>;
  /** Set when the run left this instance to be claimed again at once (`Flow.continueAsNew`). */
  requeue = false;
  /** The store's `children.ended` of this run, as last read (see `sawCounter`). */
  private childrenEnded: number;

  constructor(
    private readonly host: DriverHost,
    private readonly def: WorkflowDefinition,
    private readonly claimed: ClaimedRun,
    /** When the claim that leased the run here was sent (ms, this clock): the lease runs from then at the latest. */
    claimSentAt: number = Date.now(),
  ) {
    this.lastWrite = claimSentAt;
    this.runId = claimed.runId;
    this.token = claimed.leaseToken;
    try {
      this.state = decodeState(claimed.state);
    } catch (error) {
      // NOTE: never throw from here: the engine starts a whole claim batch in one loop.
      this.stateError = `the engine state (${errorMessage(error)})`;
      this.state = initialState(def.steps[0].name);
    }
    this.steps = claimed.steps;
    this.cancel = claimed.cancelRequested;
    this.childrenEnded = claimed.children?.ended ?? 0;
  }

  /** True once the run should stop on this instance (lease lost, shutdown, replaced). */
  get stopped(): boolean {
    return this.interrupt !== undefined && this.interrupt.kind !== 'cancel';
  }

  /** Milliseconds since this driver last extended its lease. */
  sinceLastWrite(): number {
    return Date.now() - this.lastWrite;
  }

  /**
   * The lease was renewed by the engine, with a renewal sent at `sentAt` (ms): the lease runs from then at the latest,
   * whenever the answer came back.
   */
  touched(sentAt: number = Date.now()): void {
    this.lastWrite = Math.max(this.lastWrite, sentAt);
  }

  /** Cancel requested while running: abort the current attempt. */
  requestCancel(cancel: { compensate: boolean }): void {
    if (this.state.comp) return;
    this.cancel = cancel;
    this.stop(new Interrupt('cancel'));
  }

  /** Lease lost or run replaced: stop without writing anything. */
  lose(): void {
    this.stop(new Interrupt('lost'));
  }

  /** Shutdown grace has passed: stop now; the run is released and resumed elsewhere. */
  shutdown(): void {
    this.stop(new Interrupt('shutdown'));
  }

  get leaseToken(): string {
    return this.token;
  }

  /** Where the run is, for log lines: its workflow, and the step (and attempt) at the cursor. */
  position(): { workflow: string; step?: string; attempt?: number } {
    const step = this.state.comp ? this.steps[this.state.comp.queue[0]]?.name : (this.state.cursor ?? undefined);
    const entry = this.steps[this.state.entry];
    const attempt = !this.state.comp && entry && entry.name === step ? entry.attempts + 1 : undefined;
    return { workflow: this.def.name, ...(step !== undefined ? { step } : {}), ...(attempt !== undefined ? { attempt } : {}) };
  }

  /** Incarnation of the run id this driver executes (a replacement has a higher one). */
  get generation(): number {
    return this.claimed.generation ?? 1;
  }

  private stop(interrupt: Interrupt): void {
    if (this.interrupt && this.interrupt.kind !== 'cancel') return;
    this.interrupt = interrupt;
    this.abort.abort(interrupt);
  }

  /** Drives the run until it leaves this instance. Never throws. */
  async drive(): Promise<void> {
    try {
      if (!(await this.prepare())) return;
      while (!this.stopped && !this.done) {
        if (this.cancel && !this.state.comp) {
          await this.handleCancel(this.cancel);
          return;
        }
        if (this.state.comp) {
          await this.compensate();
          return;
        }
        if (this.host.isDraining()) {
          await this.release();
          return;
        }
        const proceed = this.state.join ? await this.joinChildren(this.state.join) : await this.runCursorStep();
        if (!proceed) return;
      }
    } catch (error) {
      if (error instanceof Interrupt) return;
      if (error instanceof UndecodableData) {
        await this.failCorrupt(error.detail).catch((e: unknown) => {
          if (!(e instanceof Interrupt)) {
            this.host.logger.error(
              `Run "${this.runId}" (${this.def.name}): its stored data cannot be decoded (${error.detail}), and recording it as failed failed too: ${describeError(e)}. Its lease expires and the next claim tries again; if the store is reachable, repair or delete the run.`,
              runLogFields({ event: 'run.corrupt', runId: this.runId, workflow: this.def.name, step: this.claimed.currentStep, error: errorFields(e) }),
            );
          }
        });
        return;
      }
      this.host.logger.error(
        `Run "${this.runId}" (${this.def.name}) stopped on this instance: ${describeError(error)}. Its lease expires and another claim resumes it from its last checkpoint; if this repeats, report it with this stack.`,
        runLogFields({ event: 'run.stopped', runId: this.runId, workflow: this.def.name, step: this.state.cursor ?? undefined, error: errorFields(error) }),
        errorStack(error),
      );
    } finally {
      if (this.interrupt?.kind === 'shutdown') await this.release().catch(() => undefined);
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Setup

  /** Returns false when the run already left this instance. */
  private async prepare(): Promise<boolean> {
    if (this.claimed.corrupt !== undefined) throw new UndecodableData(this.claimed.corrupt);
    if (this.stateError !== undefined) throw new UndecodableData(this.stateError);
    const rebuilt = rebuildRun(this.claimed, this.state, (text, what) => this.decode(text, what));
    this.runInput = rebuilt.runInput;
    this.input = rebuilt.input;
    Object.assign(this.results, rebuilt.results);
    for (const [name, n] of rebuilt.visits) this.visits.set(name, n);

    if (this.claimed.recovered) {
      this.state.rec += 1;
      if (this.state.rec > this.host.maxRecoveries && !this.state.comp) {
        const step = this.state.cursor ?? this.def.steps[0].name;
        const error = new RecoveryLimitError(
          `Run "${this.runId}" was recovered ${this.state.rec - 1} times at step "${step}" without progress ` +
            `(the step may be crashing its process). Fix the cause, then call retry("${this.runId}").`,
        );
        this.state.rec = 0;
        const entry = this.entryFor(step);
        await this.failStep(step, entry.index, entry.attempts, error);
        return false;
      }
      if (this.state.rec > this.host.maxRecoveries && this.state.comp && !this.state.failed) {
        await this.failCompensationOnRecoveryLimit(this.state.comp);
        return false;
      }
      this.record('run.recovered', {
        step: this.state.comp ? undefined : (this.state.cursor ?? undefined),
        detail: { previousOwner: this.claimed.previousOwner, orphanedMs: this.claimed.orphanedMs },
      });
      await this.write({ state: encodeState(this.state), keepInput: true });
    }

    if (this.state.failed) {
      if (this.state.failed === 'step' && this.claimed.nextInput !== undefined) return this.skipFailedStep(this.claimed.nextInput);
      await this.resumeAfterRetry();
    }
    if (this.claimed.status === 'waiting' && !this.cancel) return this.wakeFromWait();
    return true;
  }

  /** A compensation kept crashing its process: the run ends failed at that compensation (a `retry` resumes it). */
  private async failCompensationOnRecoveryLimit(comp: CompensationState): Promise<void> {
    const index = comp.queue[0];
    const entry = this.steps[index];
    const name = entry?.name ?? 'unknown';
    const error = new RecoveryLimitError(
      `Run "${this.runId}" was recovered ${this.state.rec - 1} times while compensating step "${name}" without progress ` +
        `(the compensation may be crashing its process). Fix the cause, then call retry("${this.runId}").`,
    );
    this.state.rec = 0;
    this.state.failed = 'compensation';
    const patches = entry ? [{ index, step: { ...entry, error: `Compensation failed: ${describeError(error)}` } }] : [];
    await this.finish('failed', undefined, patches, { name: error.name, message: error.message, step: name, phase: 'compensation' });
  }

  /** A `retry` of a failed run: a fresh attempt budget at the failed step or compensation. */
  private async resumeAfterRetry(): Promise<void> {
    const failed = this.state.failed;
    this.state.failed = undefined;
    this.state.rec = 0;
    if (failed === 'compensation' && this.state.comp) {
      this.state.comp.base = this.state.comp.attempts;
      const idx = this.state.comp.queue[0];
      const entry = this.steps[idx];
      await this.write({
        status: 'compensating',
        state: encodeState(this.state),
        steps: entry ? [{ index: idx, step: { ...entry, error: undefined } }] : undefined,
        keepInput: true,
      });
      return;
    }
    const entry = this.steps[this.state.entry];
    this.state.base = entry?.attempts ?? 0;
    const patch: Partial<RunPatch> = { state: encodeState(this.state), currentStep: this.state.cursor, keepInput: true };
    if (entry) {
      const restarted: StoredStep = { ...entry, status: 'running', finishedAt: undefined };
      patch.steps = [{ index: this.state.entry, step: restarted }];
    }
    await this.write(patch);
  }

  /**
   * `client.skip()`: the failed step is recorded completed with the operator's output (already decoded as the input),
   * and the run goes on with the next step in the pipeline, or completes with that output after the last one.
   * @returns whether to keep driving
   */
  private async skipFailedStep(output: string): Promise<boolean> {
    const state = this.state;
    const index = state.entry;
    const entry = this.steps[index];
    const name = state.cursor ?? entry?.name;
    state.failed = undefined;
    state.rec = 0;
    state.base = 0;
    const done: StoredStep = {
      name: name ?? 'unknown',
      status: 'completed',
      attempts: entry?.attempts ?? 0,
      output,
      startedAt: entry?.startedAt,
      finishedAt: new Date(),
      ...heartbeatOf(entry),
    };
    this.steps[index] = done;
    if (name !== undefined) this.results[name] = this.input;
    this.record('step.completed', { step: done.name, attempt: done.attempts, detail: { skipped: true } });
    const position = name === undefined ? undefined : this.def.stepsByName.get(name)?.index;
    const next = position === undefined ? undefined : this.def.steps[position + 1];
    if (!next) {
      await this.finish('completed', output, [{ index, step: done }]);
      return false;
    }
    state.tr += 1;
    state.cursor = next.name;
    state.entry = index + 1;
    const running: StoredStep = { name: next.name, status: 'running', attempts: 0, startedAt: new Date() };
    this.steps[index + 1] = running;
    this.visits.set(next.name, (this.visits.get(next.name) ?? 0) + 1);
    const res = await this.write({
      status: 'running',
      steps: [
        { index, step: done },
        { index: index + 1, step: running },
      ],
      state: encodeState(state),
      currentStep: next.name,
    });
    return !res.paused;
  }

  /** Claimed while waiting: take a queued signal, fail on timeout, or wait again. */
  private async wakeFromWait(): Promise<boolean> {
    const wait = this.state.wait;
    if (!wait) return true;
    const names = wait.any ?? [wait.signal];
    const sentAt = Date.now();
    const taken = await this.host.store.takeSignal(this.runId, this.token, names);
    if (!taken.ok) throw this.lost();
    this.touched(sentAt);
    if (taken.payload !== undefined) return this.receiveSignal(taken.signal ?? wait.signal, taken.payload);
    const waitStep = this.steps[wait.entry]?.name ?? String(this.state.cursor);
    if (taken.timedOut && wait.any) return this.deliverTimeout();
    if (taken.timedOut) {
      // NOTE: a retry of the failed run re-runs the waiting step (its entry stays completed so it is compensated).
      this.state.cursor = waitStep;
      this.state.entry = wait.entry;
      this.state.wait = undefined;
      const error = new SignalTimeoutError(waitStep, wait.signal);
      await this.startCompensation('failure', { name: error.name, message: error.message, step: waitStep, phase: 'step' }, error, []);
      return false;
    }
    // Woken for another reason (e.g. resumed): wait again for the rest of the timeout.
    const remaining = this.claimed.waitUntil ? Math.max(0, this.claimed.waitUntil.getTime() - this.host.clock.now()) : undefined;
    const res = await this.write({ wait: { signals: names, timeoutMs: remaining }, state: encodeState(this.state), currentStep: waitStep });
    if (res.consumedSignal && !res.paused) return this.receiveSignal(res.consumedSignal.name, res.consumedSignal.payload);
    if (remaining !== undefined && !res.paused) this.host.scheduleWake(this.runId, remaining);
    return false;
  }

  /**
   * A signal the run waited for was handed to it (its payload is the run's `nextInput` now). After `Flow.waitForAny`
   * the next step receives `{ signal, payload }`.
   */
  private async receiveSignal(name: string, payload: string): Promise<boolean> {
    const decoded = this.decode(payload, `the payload of signal "${name}"`);
    if (!this.state.wait?.any) {
      this.input = decoded;
      return true;
    }
    // NOTE: no write: until the next one, the stored state still says waitForAny and the store names the signal
    // (`nextInputSignal`); from the next one on (kept with the payload by keepInput), `delivered` says it.
    this.state.wait = undefined;
    this.state.delivered = { signal: name };
    this.input = { signal: name, payload: decoded };
    return true;
  }

  /** `Flow.waitForAny` timed out: the next step receives `{ signal: null, timedOut: true }` (written, so a crash keeps it). */
  private async deliverTimeout(): Promise<boolean> {
    this.state.wait = undefined;
    this.state.delivered = { signal: null };
    const res = await this.write({ status: 'running', state: encodeState(this.state), currentStep: this.state.cursor, keepInput: true });
    this.input = { signal: null, timedOut: true };
    return !res.paused;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Child runs

  /** A step returned Flow.child / all / allSettled: create the children and wait for them (one write). */
  private async startChildren(step: StepDefinition, index: number, attempt: number, startedAt: Date, req: ChildrenRequest, durationMs: number): Promise<boolean> {
    const key = this.keyOf(step.name, this.visits.get(step.name) ?? 1);
    const n = req.children.length;
    if (n === 0) return this.completeStep(step, index, attempt, startedAt, [], durationMs);
    const explicit = req.children.some((child) => child.id !== undefined);
    const ids = req.children.map((child, i) => child.id ?? `${key}:${i}`);
    let spawn: NewChildRun[];
    try {
      spawn = req.children.map((child, i) => ({ ...this.host.childRun(child.workflow, ids[i], child.input, this.state.trace), held: i >= req.concurrency }));
      // NOTE: explicit ids may name existing runs: one read (with this run's counter) to refuse another parent's live run,
      // whose end would never be counted here.
      if (explicit) await this.checkAdoptable(req.children.flatMap((child) => (child.id !== undefined ? [child.id] : [])));
    } catch (error) {
      await this.failStep(step.name, index, attempt, error, startedAt, durationMs);
      return false;
    }
    const abandon = req.children.flatMap((child, i) => (child.onParentEnd === 'abandon' ? [i] : []));
    const join: JoinState = {
      entry: index,
      mode: req.mode,
      n,
      key,
      ...(explicit ? { ids } : {}),
      c: req.concurrency,
      ...(abandon.length > 0 ? { abandon } : {}),
      attempt,
      startedAt: startedAt.toISOString(),
    };
    const state = this.state;
    state.join = join;
    state.rec = 0;
    // NOTE: as completeStep does: a signal wait or waitForAny delivery before this step is over.
    state.wait = undefined;
    state.delivered = undefined;
    const entry: StoredStep = { name: step.name, status: 'running', attempts: attempt, startedAt, ...heartbeatOf(this.steps[index]) };
    this.steps[index] = entry;
    this.record('child.started', { step: step.name, attempt, durationMs, detail: { count: n, concurrency: req.concurrency, runIds: ids.slice(0, 10) } });
    const held = Math.max(0, n - req.concurrency);
    const res = await this.write({
      steps: [{ index, step: entry }],
      state: encodeState(state),
      currentStep: step.name,
      children: {
        spawn,
        endedAtLeast: this.childrenEnded + endsToWaitFor(n - held, held, req.concurrency),
        failFast: req.mode !== 'allSettled',
      },
    });
    if (res.paused) return false;
    return res.childrenReady === true;
  }

  /**
   * The step at `join.entry` waits for its children: read their outcomes (one store call), then fail the step (a child
   * failed), complete it (all ended), or release held children and wait again.
   */
  private async joinChildren(join: JoinState): Promise<boolean> {
    const ids = joinIds(join);
    // NOTE: this run first: its counter of child ends is read no later than the children (see getRunOutcomes), so every
    // end not seen in the outcomes is counted above it, and the wait below cannot miss one.
    const outcomes = new Map((await this.host.store.getRunOutcomes([this.runId, ...ids])).map((o) => [o.runId, o]));
    this.sawCounter(outcomes.get(this.runId));
    outcomes.delete(this.runId);
    const stepName = this.steps[join.entry]?.name ?? String(this.state.cursor);
    const startedAt = new Date(join.startedAt);
    if (join.mode !== 'allSettled') {
      const failedAt = ids.findIndex((id) => {
        const o = outcomes.get(id);
        return !o || endedUnsuccessfully(o.status);
      });
      if (failedAt >= 0) {
        const id = ids[failedAt];
        const o = outcomes.get(id);
        const error = new ChildWorkflowFailedError(
          id,
          o ? (o.error ? { name: o.error.name, message: o.error.message } : { name: 'Error', message: `the child run ended ${o.status}` }) : { name: 'RunNotFoundError', message: `no run has the id "${id}"` },
          o ? (o.status as 'failed' | 'compensated' | 'cancelled') : 'missing',
        );
        this.record('child.ended', { step: stepName, detail: { runId: id, status: o?.status ?? 'missing' } });
        await this.failStep(stepName, join.entry, join.attempt, error, startedAt);
        return false;
      }
    }
    const live = ids.filter((id) => {
      const o = outcomes.get(id);
      return o !== undefined && !isTerminal(o.status);
    });
    if (live.length === 0) {
      const value = join.mode === 'child' ? this.childOutput(outcomes.get(ids[0])!) : join.mode === 'all' ? ids.map((id) => this.childOutput(outcomes.get(id)!)) : ids.map((id) => this.childResult(id, outcomes.get(id)));
      this.state.join = undefined;
      this.record('child.ended', { step: stepName, detail: { count: ids.length } });
      const step = this.def.stepsByName.get(stepName);
      // NOTE: a step removed from the code meanwhile: the cursor check of runCursorStep fails it.
      if (!step) return true;
      return this.completeStep(step, join.entry, join.attempt, startedAt, value, Date.now() - startedAt.getTime());
    }
    const held = live.filter((id) => outcomes.get(id)!.held);
    const release = held.slice(0, Math.max(0, join.c - (live.length - held.length)));
    const running = live.length - held.length + release.length;
    const res = await this.write({
      state: encodeState(this.state),
      currentStep: stepName,
      keepInput: true,
      children: {
        release,
        endedAtLeast: this.childrenEnded + endsToWaitFor(running, held.length - release.length, join.c),
        failFast: join.mode !== 'allSettled',
      },
    });
    if (res.paused) return false;
    return res.childrenReady === true;
  }

  /** The store's count of this run's child ends, as last read (it only goes up: an older value only wakes it early). */
  private sawCounter(own: RunOutcome | undefined): void {
    if (own?.childrenEnded !== undefined) this.childrenEnded = Math.max(this.childrenEnded, own.childrenEnded);
  }

  /** Explicit child ids: an existing live run that is another run's child cannot be adopted (its end is counted there). */
  private async checkAdoptable(ids: string[]): Promise<void> {
    const outcomes = await this.host.store.getRunOutcomes([this.runId, ...ids]);
    this.sawCounter(outcomes.find((o) => o.runId === this.runId));
    const taken = outcomes.find((o) => o.runId !== this.runId && !isTerminal(o.status) && o.parentRunId !== undefined && o.parentRunId !== this.runId);
    if (taken) {
      throw new InvalidArgumentError(
        `Flow.child id "${taken.runId}" names a live run that is already a child of run "${taken.parentRunId}"; a run has one parent. Use another id, or wait for it to end.`,
      );
    }
  }

  private childOutput(outcome: RunOutcome): unknown {
    return this.decode(outcome.output, `the output of child run "${outcome.runId}"`);
  }

  private childResult(runId: string, outcome: RunOutcome | undefined): ChildResult {
    if (!outcome) return { runId, status: 'failed', error: { name: 'RunNotFoundError', message: `no run has the id "${runId}" (purged before its parent read it?)` } };
    if (outcome.status === 'completed') return { runId, status: 'completed', output: this.childOutput(outcome) };
    const error = outcome.error ? { name: outcome.error.name, message: outcome.error.message } : { name: 'Error', message: `the child run ended ${outcome.status}` };
    return { runId, status: outcome.status as 'failed' | 'compensated' | 'cancelled', error };
  }

  /**
   * The parent is cancelled or fails while its step waits for children: cancel (with compensation) the live ones
   * started with `onParentEnd: 'cancel'` (the default); `'abandon'` leaves them running. Before the parent's own write,
   * so a crash in between repeats it (a cancel is idempotent).
   */
  private async endChildren(join: JoinState): Promise<void> {
    this.state.join = undefined;
    const abandon = new Set(join.abandon ?? []);
    const ids = joinIds(join).filter((_, i) => !abandon.has(i));
    if (ids.length === 0) return;
    const outcomes = await this.host.store.getRunOutcomes(ids);
    const live = outcomes.filter((o) => !isTerminal(o.status)).map((o) => o.runId);
    if (live.length > 0) await this.host.cancelRuns(live, `its parent run "${this.runId}" ended`);
  }

  /**
   * A run cancelled after a crash in the middle of its step: that step may have created children whose parent never
   * recorded them (a store that creates them before the parent's commit, Redis). Cancel the live runs that name this
   * run as their parent, so none is left behind.
   */
  private async endUnjoinedChildren(): Promise<void> {
    const live: string[] = [];
    let after: { createdAt: Date; runId: string } | undefined;
    for (;;) {
      const page = await this.host.store.listRuns({ parentRunId: this.runId, statuses: [...LIVE_STATUSES], limit: 500, ...(after ? { after } : {}) });
      live.push(...page.map((run) => run.runId));
      if (page.length < 500) break;
      const last = page[page.length - 1];
      after = { createdAt: last.createdAt, runId: last.runId };
    }
    if (live.length > 0) await this.host.cancelRuns(live, `its parent run "${this.runId}" was cancelled`);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Forward path

  private entryFor(stepName: string): { index: number; attempts: number; startedAt?: Date } {
    const index = this.state.entry;
    const existing = this.steps[index];
    if (existing && existing.name === stepName) return { index, attempts: existing.attempts, startedAt: existing.startedAt };
    return { index, attempts: 0 };
  }

  /** The idempotency key of the n-th visit of a step (see {@link idempotencyKey}). */
  private keyOf(name: string, visit: number): string {
    return idempotencyKey(this.runId, name, visit, this.generation);
  }

  /** The idempotency key of the visit recorded at `index` (for compensations, which undo any earlier visit). */
  private visitKey(index: number): string {
    return this.keyOf(this.steps[index]?.name, visitNumberAt(this.steps, index));
  }

  /** Runs the step at the cursor (with in-process retries). Returns false when the run left this instance. */
  private async runCursorStep(): Promise<boolean> {
    const cursor = this.state.cursor;
    if (cursor === null) {
      // The last step slept or waited: the run's output is that value or the signal's payload.
      await this.finish('completed', this.host.serializer.serialize(this.input, 'run output'));
      return false;
    }
    const step = this.def.stepsByName.get(cursor);
    if (!step) {
      const error = new WorkflowDefinitionError(
        `Run "${this.runId}" of workflow "${this.def.name}" is at step "${cursor}", which the deployed ${this.def.className} no longer has ` +
          `(steps: ${this.def.steps.map((s) => s.name).join(', ')}). Restore the step or cancel the run.`,
      );
      const entry = this.entryFor(cursor);
      await this.failStep(cursor, entry.index, entry.attempts, error);
      return false;
    }
    const entry = this.entryFor(step.name);
    const existing = this.steps[entry.index];
    const isNewVisit = !existing || existing.name !== step.name;
    if (isNewVisit) {
      this.visits.set(step.name, (this.visits.get(step.name) ?? 0) + 1);
      this.steps[entry.index] = { name: step.name, status: 'running', attempts: 0, startedAt: new Date() };
    }
    // NOTE: the cursor's entry is always the step's latest visit, so the visit count is its number.
    const key = this.keyOf(step.name, this.visits.get(step.name) ?? 1);
    const startedAt = this.steps[entry.index].startedAt ?? new Date();
    let attempts = entry.attempts;

    for (;;) {
      const attempt = attempts + 1;
      const input = this.input;
      const lastHeartbeat = this.lastHeartbeat(entry.index);
      this.record('step.started', { step: step.name, attempt });
      const began = Date.now();
      const outcome = await this.invoke('step', step, attempt, this.def.instance, step.methodName, entry.index, (signal, heartbeat) => [
        input,
        this.contextOf(step, attempt, key, signal, heartbeat, lastHeartbeat),
      ]);
      const durationMs = Date.now() - began;
      if (!(outcome.ok === false && outcome.error instanceof Interrupt)) this.host.instrumentation.stepEnded(this.def.name, step.name, durationMs, outcome.ok);
      if (this.interrupt) {
        if (this.interrupt.kind === 'cancel') return true; // handled by the loop
        return false;
      }
      if (outcome.ok) return this.completeStep(step, entry.index, attempt, startedAt, outcome.value, durationMs);

      const error = outcome.error;
      attempts = attempt;
      if (this.isRetryable(step.retry, error, attempt - this.state.base)) {
        const delay = retryDelay(step.retry, attempt - this.state.base);
        const failedEntry: StoredStep = {
          name: step.name,
          status: 'running',
          attempts: attempt,
          startedAt,
          error: describeError(error),
          ...heartbeatOf(this.steps[entry.index]),
        };
        this.steps[entry.index] = failedEntry;
        this.record('step.failed', { step: step.name, attempt, durationMs, error: eventError(error) });
        this.record('step.retrying', { step: step.name, attempt: attempt + 1, detail: { delayMs: delay } });
        this.host.logger.warn(
          `Run "${this.runId}" (${this.def.name}): step "${step.name}" attempt ${attempt} failed (${describeError(error)}); retrying in ${delay} ms, per the step's retry policy`,
          runLogFields({ event: 'step.retrying', runId: this.runId, workflow: this.def.name, step: step.name, attempt, delayMs: delay, error: errorFields(error) }),
        );
        const next = await this.awaitRetry(delay, { steps: [{ index: entry.index, step: failedEntry }], currentStep: step.name, keepInput: true });
        if (next === 'cancel') return true;
        if (next === 'left') return false;
        const interrupt = this.interrupt as Interrupt | undefined;
        if (interrupt) return interrupt.kind === 'cancel';
        if (this.host.isDraining()) {
          await this.release();
          return false;
        }
        continue;
      }
      await this.failStep(step.name, entry.index, attempt, error, startedAt, durationMs);
      return false;
    }
  }

  /** What a step or compensation method receives as its context. */
  private contextOf(
    step: StepDefinition,
    attempt: number,
    idempotencyKey: string,
    signal: AbortSignal,
    heartbeat: (details?: unknown) => Promise<void>,
    lastHeartbeat: unknown,
  ): StepContext {
    return {
      runId: this.runId,
      workflow: this.def.name,
      step: step.name,
      attempt,
      input: this.runInput,
      results: this.results,
      signal,
      idempotencyKey,
      logger: this.host.logger,
      heartbeat,
      lastHeartbeat,
    };
  }

  /** The details of the latest heartbeat of the visit at `index` (from an earlier attempt), decoded. */
  private lastHeartbeat(index: number): unknown {
    const beat = this.steps[index]?.heartbeat;
    return beat?.details === undefined ? undefined : this.decode(beat.details, `the last heartbeat of step "${this.steps[index].name}"`);
  }

  private isRetryable(policy: ResolvedRetry, error: unknown, attemptInBudget: number): boolean {
    return !(error instanceof Interrupt) && shouldRetry(policy, error, attemptInBudget);
  }

  /**
   * Runs one attempt of a step or compensation with its timeouts, racing cancel/lease loss/shutdown. Its heartbeats go
   * to the step entry at `index`; when it ends, later heartbeats change nothing and a heartbeat write in flight is
   * waited for by the next write.
   */
  private invoke(
    kind: 'step' | 'compensation',
    step: StepDefinition,
    attempt: number,
    instance: object,
    method: string,
    index: number,
    makeArgs: (signal: AbortSignal, heartbeat: (details?: unknown) => Promise<void>) => unknown[],
    renewed = false,
  ): Promise<AttemptOutcome> {
    // NOTE: a plain function, no promise of its own (under a context manager each costs hook calls): only a lease older
    // than half its time is renewed first.
    if (!renewed && this.leaseNeedsRenewal()) {
      return this.renewBeforeAttempt().then(() => this.invoke(kind, step, attempt, instance, method, index, makeArgs, true));
    }
    const slot: HeartbeatSlot = { index, step: step.name, lastWrite: Date.now(), dirty: false, closed: false };
    this.heartbeat = slot;
    const scope = this.host.instrumentation.startAttempt({
      runId: this.runId,
      workflow: this.def.name,
      version: this.def.version,
      step: step.name,
      attempt,
      kind,
      instanceId: this.host.instanceId,
      trace: this.state.trace,
    });
    const close = (outcome: AttemptOutcome) => {
      slot.closed = true;
      clearTimeout(slot.timer);
      if (this.heartbeat === slot) this.heartbeat = undefined;
      scope?.end(outcome);
    };
    const target = { instance, method, step: step.name, timeoutMs: step.timeoutMs, heartbeatTimeoutMs: step.heartbeatTimeoutMs, clock: this.host.clock, onSettle: close };
    const run = () => invokeAttempt(target, this.abort.signal, (signal, beat) => makeArgs(signal, (details) => this.onHeartbeat(slot, beat, details)));
    if (!scope) return run();
    try {
      return scope.run(run);
    } catch (error) {
      // NOTE: the context manager failed before the attempt ran (invokeAttempt never throws).
      close({ ok: false, error });
      return Promise.reject(error);
    }
  }

  /** `ctx.heartbeat(details)`: restarts the heartbeat timeout, records the details, writes them (throttled). */
  private async onHeartbeat(slot: HeartbeatSlot, beat: () => void, details: unknown): Promise<void> {
    if (slot.closed) return;
    const text = details === undefined ? undefined : this.host.serializer.serialize(details, `heartbeat of step "${slot.step}"`, slot.step);
    beat();
    const entry = this.steps[slot.index];
    if (!entry) return;
    const at = new Date();
    this.steps[slot.index] = { ...entry, heartbeat: text === undefined ? { at } : { at, details: text } };
    slot.dirty = true;
    const wait = slot.lastWrite + this.host.heartbeatWriteMs - Date.now();
    if (wait <= 0 && !this.heartbeatWrite) return this.writeHeartbeat(slot);
    if (!slot.timer) {
      slot.timer = setTimeout(() => {
        slot.timer = undefined;
        void this.writeHeartbeat(slot);
      }, Math.max(wait, 10));
      slot.timer.unref();
    }
  }

  /** Writes the attempt's latest heartbeat (with the lease extended), unless the attempt ended or one is in flight. */
  private async writeHeartbeat(slot: HeartbeatSlot): Promise<void> {
    if (slot.closed || !slot.dirty || this.done) return;
    if (this.heartbeatWrite) {
      // NOTE: the write in flight carries older details: write these once it is done.
      if (!slot.timer) {
        slot.timer = setTimeout(() => {
          slot.timer = undefined;
          void this.writeHeartbeat(slot);
        }, this.host.heartbeatWriteMs);
        slot.timer.unref();
      }
      return;
    }
    slot.dirty = false;
    slot.lastWrite = Date.now();
    const step = this.steps[slot.index];
    const writing = this.commitNow({ steps: [{ index: slot.index, step }], keepInput: true, midStep: true }).then(
      (res) => {
        if (res.cancel && !this.state.comp) this.requestCancel(res.cancel);
      },
      (error: unknown) => {
        if (!(error instanceof Interrupt)) {
          this.host.logger.warn(
            `Run "${this.runId}" (${this.def.name}): a heartbeat of step "${slot.step}" was not written (${describeError(error)}); the step goes on, and its next heartbeat or checkpoint writes the latest details`,
            runLogFields({ event: 'heartbeat.not_written', runId: this.runId, workflow: this.def.name, step: slot.step, error: errorFields(error) }),
          );
        }
      },
    );
    this.heartbeatWrite = writing.finally(() => {
      if (this.heartbeatWrite === settled) this.heartbeatWrite = undefined;
    });
    const settled = this.heartbeatWrite;
    await settled;
  }

  /** A step attempt returned: checkpoint it and move on. Returns whether to keep driving. */
  private async completeStep(step: StepDefinition, index: number, attempt: number, startedAt: Date, returned: unknown, durationMs: number): Promise<boolean> {
    let resolution: StepResolution;
    try {
      resolution = resolveStepReturn(this.def, step, returned, {
        runId: this.runId,
        transitions: this.state.tr,
        maxTransitions: this.host.maxTransitions,
        serialize: (value) => this.host.serializer.serialize(value, `output of step "${step.name}"`, step.name),
        now: () => this.host.clock.now(),
      });
    } catch (error) {
      await this.failStep(step.name, index, attempt, error, startedAt, durationMs);
      return false;
    }
    if (resolution.kind === 'children') return this.startChildren(step, index, attempt, startedAt, resolution.children!, durationMs);
    const { value, output, next } = resolution;

    const now = new Date();
    const done: StoredStep = {
      name: step.name,
      status: 'completed',
      attempts: attempt,
      output,
      startedAt,
      finishedAt: now,
      ...heartbeatOf(this.steps[index]),
    };
    this.record('step.completed', { step: step.name, attempt, durationMs });
    this.steps[index] = done;
    this.results[step.name] = value;
    const state = this.state;
    state.rec = 0;
    state.base = 0;
    state.wait = undefined;
    state.delivered = undefined;
    const nextEntry = index + 1;

    if (resolution.kind === 'restart') return this.continueAsNew(output);
    if (resolution.kind === 'end') {
      await this.finish('completed', output, [{ index, step: done }]);
      return false;
    }
    if (next) state.tr += 1;
    state.cursor = next ? next.name : null;
    state.entry = nextEntry;

    if (resolution.kind === 'sleep') {
      const sleep = resolution.sleep!;
      this.record('run.sleeping', { step: step.name, detail: { until: new Date(this.host.clock.now() + sleep.wakeInMs).toISOString() } });
      const res = await this.write({
        status: 'sleeping',
        steps: [{ index, step: done }],
        state: encodeState(state),
        currentStep: step.name,
        due: sleep.due,
        release: true,
      });
      if (!res.paused && !res.cancel) this.host.scheduleWake(this.runId, sleep.wakeInMs);
      return false;
    }
    if (resolution.kind === 'wait') {
      const wait = resolution.wait!;
      state.wait = { entry: index, signal: wait.signals[0], ...(wait.any ? { any: wait.signals } : {}) };
      const named = wait.any ? { signals: wait.signals } : { signal: wait.signals[0] };
      this.record('run.waiting', { step: step.name, detail: { ...named, ...(wait.timeoutMs !== undefined ? { timeoutMs: wait.timeoutMs } : {}) } });
      const res = await this.write({
        steps: [{ index, step: done }],
        state: encodeState(state),
        currentStep: step.name,
        wait: { signals: wait.signals, timeoutMs: wait.timeoutMs },
      });
      if (res.consumedSignal && !res.paused) return this.receiveSignal(res.consumedSignal.name, res.consumedSignal.payload);
      if (!res.consumedSignal && wait.timeoutMs !== undefined && !res.paused) this.host.scheduleWake(this.runId, wait.timeoutMs);
      return false;
    }

    // Plain value or goto: complete this step and start the next in one write.
    const nextStep = next!;
    const running: StoredStep = { name: nextStep.name, status: 'running', attempts: 0, startedAt: now };
    this.steps[nextEntry] = running;
    this.visits.set(nextStep.name, (this.visits.get(nextStep.name) ?? 0) + 1);
    const res = await this.write({
      steps: [
        { index, step: done },
        { index: nextEntry, step: running },
      ],
      state: encodeState(state),
      currentStep: nextStep.name,
    });
    if (res.paused) return false;
    this.input = value;
    return true;
  }

  /**
   * `Flow.continueAsNew(input)`: one write restarts the run id at the first step with `input`, no step entries and the
   * next generation (new idempotency keys); the run is released due now and claimed again here at once.
   */
  private async continueAsNew(input: string): Promise<boolean> {
    const first = this.def.steps[0];
    const fresh = initialState(first.name, this.state.trace);
    this.record('run.started', { detail: { version: this.def.version, continuedAsNew: true, generation: this.generation + 1 } });
    await this.write({
      restart: { input },
      status: 'pending',
      state: encodeState(fresh),
      currentStep: first.name,
      output: null,
      error: null,
      due: { delayMs: 0 },
      release: true,
    });
    this.done = true;
    this.requeue = true;
    return false;
  }

  /** Decodes a stored value; a damaged one fails the run with CorruptRunError instead of throwing a SyntaxError. */
  private decode(text: string | undefined, what: string): unknown {
    try {
      return this.host.serializer.deserialize(text);
    } catch (error) {
      throw new UndecodableData(`${what} (${errorMessage(error)})`);
    }
  }

  /** Stored data of the run cannot be decoded: end it `failed` at once (no compensation, no retry), naming the field. */
  private async failCorrupt(detail: string): Promise<void> {
    const error = corruptRunError(this.runId, detail);
    this.host.logger.error(
      error.message,
      runLogFields({ event: 'run.corrupt', runId: this.runId, workflow: this.def.name, step: this.claimed.currentStep, error: errorFields(error) }),
    );
    const step = this.claimed.currentStep;
    const info: RunErrorInfo = { name: error.name, message: error.message, ...(step !== undefined ? { step, phase: 'step' as const } : {}) };
    // NOTE: the engine state is left as stored (it may be what is damaged); a retry after a repair continues from it.
    this.record('run.failed', { error: eventError(error), ...(step !== undefined ? { step } : {}) });
    // NOTE: keepInput: a signal payload handed to the run must survive for the retry after a repair.
    await this.write({ status: 'failed', error: info, output: null, currentStep: step ?? null, clearCancel: true, keepInput: true });
    this.done = true;
    this.host.instrumentation.runEnded(this.def.name, 'failed');
    this.host.onFinished(this.runId, { status: 'failed', error: info });
  }

  /** A step failed for good: record it, then compensate or fail the run. */
  private async failStep(stepName: string, index: number, attempts: number, error: unknown, startedAt?: Date, durationMs?: number): Promise<void> {
    if (this.state.join) await this.endChildren(this.state.join);
    const failed: StoredStep = {
      name: stepName,
      status: 'failed',
      attempts,
      startedAt: startedAt ?? this.steps[index]?.startedAt,
      finishedAt: new Date(),
      error: describeError(error),
      ...heartbeatOf(this.steps[index]),
    };
    this.steps[index] = failed;
    this.record('step.failed', { step: stepName, attempt: attempts, durationMs, error: eventError(error), detail: { final: true } });
    this.host.logger.warn(
      `Run "${this.runId}" (${this.def.name}): step "${stepName}" failed for good after ${attempts} attempt(s): ${describeError(error)}. ` +
        (compensationQueue(this.steps, this.def).length > 0
          ? 'Its completed steps are compensated now, latest first.'
          : `The run ends failed: fix the cause, then client.retry("${this.runId}") runs the step again with a fresh budget (or client.skip() records an output for it).`),
      runLogFields({ event: 'step.failed', runId: this.runId, workflow: this.def.name, step: stepName, attempt: attempts, error: errorFields(error) }),
    );
    await this.startCompensation('failure', { name: errorName(error), message: errorMessage(error), step: stepName, phase: 'step' }, error, [
      { index, step: failed },
    ]);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Cancel and compensation

  private async handleCancel(cancel: { compensate: boolean }): Promise<void> {
    const current = this.steps[this.state.entry];
    if (this.state.join) await this.endChildren(this.state.join);
    // NOTE: a recovered run's step may have created children before its process died (its entry may not even be written)
    else if (this.claimed.recovered && !this.state.comp) await this.endUnjoinedChildren();
    const cancelled = new WorkflowCancelledError(this.runId);
    const patches: { index: number; step: StoredStep }[] = [];
    if (current && current.status === 'running') {
      const failed: StoredStep = { ...current, status: 'failed', finishedAt: new Date(), error: describeError(cancelled) };
      this.steps[this.state.entry] = failed;
      patches.push({ index: this.state.entry, step: failed });
    }
    this.interrupt = undefined;
    this.abort = new AbortController();
    if (!cancel.compensate) {
      await this.finish('cancelled', undefined, patches, undefined, true);
      return;
    }
    await this.startCompensation('cancel', { name: cancelled.name, message: cancelled.message }, cancelled, patches);
  }

  private async startCompensation(
    reason: 'failure' | 'cancel',
    error: RunErrorInfo,
    thrown: unknown,
    patches: { index: number; step: StoredStep }[],
  ): Promise<void> {
    const queue = compensationQueue(this.steps, this.def);
    this.compensatedError = thrown;
    if (queue.length === 0) {
      if (reason === 'cancel') await this.finish('cancelled', undefined, patches, undefined, true);
      else {
        this.state.failed = 'step';
        await this.finish('failed', undefined, patches, error);
      }
      return;
    }
    this.state.comp = { queue, reason, error, attempts: 0, base: 0 };
    const res = await this.write({
      status: 'compensating',
      steps: patches,
      state: encodeState(this.state),
      // NOTE: a cancel requested while a failure is being compensated changes nothing (DESIGN: cancel of a compensating run).
      clearCancel: true,
    });
    this.cancel = undefined;
    if (res.paused) return;
    await this.compensate();
  }

  /** Runs the queued compensations (see {@link runCompensations}). */
  private async compensate(): Promise<void> {
    const comp = this.state.comp as CompensationState;
    if (this.cancel) {
      // NOTE: a cancel that arrived before compensation started is already being honoured by it.
      this.cancel = undefined;
      await this.write({ clearCancel: true });
    }
    const thrown = this.compensatedError ?? restoreError(comp.error);
    await runCompensations({
      runId: this.runId,
      def: this.def,
      steps: this.steps,
      state: this.state,
      logger: this.host.logger,
      stopped: () => this.stopped,
      draining: () => this.host.isDraining(),
      record: (type, fields) => this.record(type, fields),
      attempt: (step, method, index, attempt, output) =>
        this.invoke('compensation', step, attempt, this.def.instance, method, index, (signal, heartbeat) => {
          const ctx: CompensationContext = {
            ...this.contextOf(step, attempt, `${this.visitKey(index)}:compensate`, signal, heartbeat, this.lastHeartbeat(index)),
            error: thrown,
          };
          return [output, ctx];
        }),
      decode: (text, what) => this.decode(text, what),
      shouldRetry: (policy, error, n) => this.isRetryable(policy, error, n),
      awaitRetry: (delay, patch) => this.awaitRetry(delay, patch),
      write: (patch) => this.write(patch),
      finish: (status, output, steps, error) => this.finish(status, output, steps, error),
      release: () => this.release(),
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Writes

  /**
   * Records a failed attempt's retry delay (with `patch`), then either waits it out here holding the lease (short
   * delays) or releases the run with its stored wake-up time and a local wake-up timer (longer ones).
   * @returns `continue` to make the next attempt now, `left` when the run left this instance (released or paused),
   *   `cancel` when a cancel is pending
   */
  private async awaitRetry(delay: number, patch: Partial<RunPatch>): Promise<'continue' | 'left' | 'cancel'> {
    const keep = delay <= this.host.inProcessDelayMs;
    const res = await this.write({ ...patch, due: { delayMs: delay }, release: !keep, keepInput: true });
    if (res.paused) return 'left';
    if (res.cancel && !this.state.comp) return 'cancel';
    if (!keep) {
      this.host.scheduleWake(this.runId, delay);
      return 'left';
    }
    await abortableSleep(delay, this.abort.signal, this.host.clock);
    return 'continue';
  }

  /**
   * Before an attempt's side effects: a process that went more than half the lease without extending it (stopped by
   * SIGSTOP or a debugger, a long GC pause, a suspended VM, an in-process retry delay) may have lost its lease, and the
   * run may have gone on elsewhere, even have ended: renew it first, and drop the run here when the renewal is refused.
   * No store call otherwise. `lastWrite` is when the last lease-extending write was *sent* (see `touched`), so a stop
   * between a checkpoint's write and its answer counts too.
   */
  private leaseNeedsRenewal(): boolean {
    return Date.now() - this.lastWrite > this.host.leaseMs / 2;
  }

  /** See {@link leaseNeedsRenewal}: renews the lease, or drops the run (throws Interrupt) when it is gone. */
  private async renewBeforeAttempt(): Promise<void> {
    const sentAt = Date.now();
    const renewed = await this.host.store.renewLease(this.runId, this.token, this.host.leaseMs);
    if (!renewed.ok) throw this.lost();
    this.touched(sentAt);
  }

  private async finish(
    status: RunStatus,
    output: string | undefined,
    steps: { index: number; step: StoredStep }[] = [],
    error?: RunErrorInfo,
    clearCancel?: boolean,
  ): Promise<void> {
    if (status !== 'failed') this.state.failed = undefined;
    this.record(`run.${status}` as RunEventType, {
      ...(error ? { error: eventError(Object.assign(new Error(error.message), { name: error.name })), step: error.step } : {}),
    });
    await this.write({
      status,
      output: output ?? null,
      error: error ?? null,
      steps,
      state: encodeState(this.state),
      currentStep: status === 'failed' ? error?.step ?? null : null,
      clearCancel,
    });
    this.done = true;
    this.host.instrumentation.runEnded(this.def.name, status);
    this.host.onFinished(this.runId, { status, output, error });
  }

  private async release(): Promise<void> {
    await this.host.store.releaseLease(this.runId, this.token);
  }

  private lost(): Interrupt {
    const interrupt = new Interrupt('lost');
    this.stop(interrupt);
    return interrupt;
  }

  /** Adds a history event to the next write (no write of its own). */
  private record(type: RunEventType, fields: Omit<NewRunEvent, 'type' | 'at'> = {}): void {
    if (!this.host.recordsHistory) return;
    this.pendingEvents.push({ type, at: new Date(), instanceId: this.host.instanceId, ...fields });
  }

  /** One fenced commit, after any heartbeat write in flight. Throws Interrupt when the lease is gone. Records a pending cancel. */
  private write(patch: Partial<RunPatch>): Promise<Extract<CommitResult, { ok: true }>> {
    // NOTE: a plain function (no async frame of its own: fewer promises per checkpoint) unless a heartbeat write is
    // in flight.
    if (this.heartbeatWrite) return this.writeAfterHeartbeat(this.heartbeatWrite, patch);
    return this.commitNow(patch, true);
  }

  private async writeAfterHeartbeat(heartbeatWrite: Promise<unknown>, patch: Partial<RunPatch>): Promise<Extract<CommitResult, { ok: true }>> {
    await heartbeatWrite;
    return this.commitNow(patch, true);
  }

  /**
   * The commit itself, carrying the history events recorded since the last one; with `noteCancel`, a cancel request
   * the commit reports is recorded (outside compensation). A plain function: one promise per checkpoint (its `then`).
   */
  private commitNow(patch: Partial<RunPatch>, noteCancel = false): Promise<Extract<CommitResult, { ok: true }>> {
    const events = this.pendingEvents;
    if (events.length > 0) this.pendingEvents = [];
    const began = performance.now();
    const sentAt = Date.now();
    let sent: Promise<CommitResult>;
    try {
      sent = this.host.store.commit(this.runId, this.token, {
        ...patch,
        ...(events.length > 0 ? { events: events.map(encodeEvent) } : {}),
        leaseMs: this.host.leaseMs,
      });
    } catch (error) {
      this.host.instrumentation.checkpoint(performance.now() - began, false);
      return Promise.reject(error);
    }
    return sent.then(
      (res) => this.afterCommit(res, began, sentAt, events, noteCancel),
      (error: unknown) => {
        this.host.instrumentation.checkpoint(performance.now() - began, false);
        throw error;
      },
    );
  }

  /** What follows a commit's answer: its metric; a refused one drops the run here; the lease, events and cancel noted. */
  private afterCommit(res: CommitResult, began: number, sentAt: number, events: NewRunEvent[], noteCancel: boolean): Extract<CommitResult, { ok: true }> {
    this.host.instrumentation.checkpoint(performance.now() - began, res.ok);
    if (!res.ok) {
      this.host.logger.warn(
        `Run "${this.runId}" (${this.def.name}): lease lost to another instance; dropping the run here. Its write was refused because another instance took the run over (this one held it past worker.leaseMs without renewing) and continues it from the last checkpoint. If this recurs, raise worker.leaseMs or find what blocks this process's event loop.`,
        runLogFields({
          event: 'lease.lost',
          runId: this.runId,
          workflow: this.def.name,
          step: this.state.comp ? undefined : (this.state.cursor ?? undefined),
          attempt: this.state.comp ? undefined : this.steps[this.state.entry]?.attempts || undefined,
        }),
      );
      throw this.lost();
    }
    this.host.committed();
    this.touched(sentAt);
    if (events.length > 0) this.host.onEvents(this.runId, this.def.name, events, res.lastEventSeq);
    if (noteCancel && res.cancel && !this.state.comp) this.cancel = res.cancel;
    return res;
  }
}

/** The heartbeat of a step entry, to carry into the entry that replaces it. */
function heartbeatOf(entry: StoredStep | undefined): Pick<StoredStep, 'heartbeat'> {
  return entry?.heartbeat ? { heartbeat: entry.heartbeat } : {};
}

/**
 * How many more child ends a parent waits for, with `running` children released and `held` ones not yet: none held,
 * all of them; else until half of the `concurrency` slots are free, to release the next batch (a wake-up per half
 * batch, not per child).
 */
function endsToWaitFor(running: number, held: number, concurrency: number): number {
  return held > 0 ? Math.max(1, running - Math.floor(concurrency / 2)) : running;
}
