import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { InvalidArgumentError, ModuleNotReadyError, RunAlreadyExistsError, RunNotFoundError } from '../errors/errors.js';
import { assertRunId } from './argument-checks.js';
import { describeError, errorStack } from './error-text.js';
import type { WorkflowDefinition } from '../definition/workflow-definition.interface.js';
import type { WorkflowRegistry } from '../definition/workflow.registry.js';
import type {
  ClaimedRun,
  ControlRequest,
  ControlResult,
  LeaseRequest,
  ListEventsQuery,
  ListRunsQuery,
  QueuedSignal,
  NewChildRun,
  RunStatus,
  SendSignalOptions,
  StoredStep,
  NewRun,
  CreateRunOptions,
  StoreEvent,
  StoredRun,
  StoredRunEvent,
  WorkflowStore,
} from '../store/workflow-store.interface.js';
import { isTerminal } from '../store/workflow-store.interface.js';
import { EventPublisher, type WorkflowEventListener } from './event-publisher.js';
import { encodeEvent, numbered, type NewRunEvent, type RunEventType } from './run-history.js';
import type { EngineHealth, EngineHealthSource } from './engine-health.interface.js';
import { checkCompatibility, pipelineOf, type CompatibilityReport } from './compatibility.js';
import { NOOP_INSTRUMENTATION } from '../observability/instrumentation.js';
import type { Instrumentation, TraceCarrier } from '../observability/instrumentation.interface.js';
import { errorFields, interruptedStep, runLogFields } from '../observability/log-fields.js';
import { SYSTEM_CLOCK, type EngineClock, type TimerHandle } from './clock.js';
import { encodeState, initialState } from './engine-state.js';
import { RunDriver, type DriverHost, type FinishedRun } from './run-driver.js';
import { Serializer } from './serializer.js';
import { startFlowFields, type StartFlowOptions } from './flow-control.js';
import type { StepLogger } from './step-context.interface.js';
import type { WorkflowRefLike } from './flow.js';

/** Settings of the engine (resolved from the module options). */
export interface EngineOptions {
  workerEnabled: boolean;
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  shutdownGraceMs: number;
  maxPayloadBytes: number;
  /** Most queued (unconsumed) signals one run may hold (`SendSignalOptions.maxQueued`). */
  maxQueuedSignals: number;
  maxTransitions: number;
  maxRecoveries: number;
  /** Purge terminal runs older than these ages (ms). */
  retention?: { completedMs?: number; failedMs?: number };
  /**
   * A stable id of this instance (e.g. a pod name), unique among live instances. When set, the worker claims at start
   * the runs still leased to this id (its previous process is gone) without waiting for their leases to expire.
   * Default: a random id per process.
   */
  instanceId?: string;
  /**
   * Broadcast every history event through the store (`publish`), so `stream({ scope: 'cluster' })` on any instance
   * sees it. Costs one store call per batch of events (batched per event-loop turn). Default false.
   */
  publishEvents?: boolean;
  /** Traces and metrics. Default: none recorded. */
  instrumentation?: Instrumentation;
  /** Record each run's history (see `client.history`). Default true. */
  history?: boolean;
  /**
   * Durable time (timeouts, retry delays, wake-ups). Default: the system clock. With a manual clock (tests) every
   * retry delay is left to the store's wake-up time rather than waited in-process.
   */
  clock?: EngineClock;
}

export type ConflictPolicy = 'use-existing' | 'fail' | 'terminate-existing';

export interface StartRunOptions extends StartFlowOptions {
  id?: string;
  conflictPolicy?: ConflictPolicy;
  transaction?: unknown;
}

const MAX_TIMER_MS = 2_147_000_000;
/** At most one heartbeat write per run per this many ms (see StepContext.heartbeat). */
const HEARTBEAT_WRITE_MS = 1_000;
const RECENT_MS = 1_000;
const RECENT_MAX = 10_000;


type Waiter = (finished: FinishedRun | undefined) => void;

/**
 * The framework-free runtime: starts runs, claims work (its own at once, others' by polling and store events),
 * drives each claimed run with a {@link RunDriver}, renews leases, and drains on shutdown.
 */
export class WorkflowEngine implements DriverHost, EngineHealthSource {
  readonly serializer: Serializer;
  readonly leaseMs: number;
  readonly maxTransitions: number;
  readonly maxRecoveries: number;
  readonly inProcessDelayMs: number;
  readonly instanceId: string;
  readonly heartbeatWriteMs: number;
  readonly recordsHistory: boolean;
  readonly clock: EngineClock;
  /** The local and cluster event streams. */
  readonly events: EventPublisher;
  readonly instrumentation: Instrumentation;
  private lastPollAt?: Date;
  private endedDrivers = 0;
  private readonly fingerprints = new WeakMap<WorkflowDefinition, string>();
  private commits = 0;
  private lastClaim?: { lagMs: number; at: number };
  private readonly lease: LeaseRequest;
  private readonly active = new Map<string, RunDriver>();
  /** Runs kicked while their driver was still here (see `kick`). */
  private readonly kickAfterDriver = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private readonly wakeTimers = new Map<string, TimerHandle>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Runs that ended here moments ago, so `result()` right after needs no store read. */
  private readonly recentlyFinished = new Map<string, { finished: FinishedRun; at: number }>();
  private pollTimer?: NodeJS.Timeout;
  private renewTimer?: NodeJS.Timeout;
  private retentionTimer?: NodeJS.Timeout;
  private unsubscribe?: () => Promise<void>;
  private started = false;
  private draining = false;
  private polling = false;
  /** A poll was asked for while one was in flight: it runs once that one is done (see `pollSoon`). */
  private pollAgain = false;
  /** Of those requests, one was for a full poll (not only for slots given back: see `pollSoon`). */
  private pollAgainFull = false;
  /** The poll timer is armed to fire at once (see `pollSoon`). */
  private pollArmedNow = false;
  /** The armed poll claims only as many runs as `slotsGivenBack` (see `pollSoon`). */
  private pollForSlotsOnly = false;
  /** Ends of runs with a concurrency limit since the last poll began: each may have given one slot of its key back. */
  private slotsGivenBack = 0;
  private backlog = false;
  /** True while the worker reclaims its own leases at start: no other claim may run meanwhile (see `reclaimOwnRuns`). */
  private reclaiming = false;
  /** Slots promised to claims in flight (so concurrent starts and claims never exceed `concurrency`). */
  private reserved = 0;

  constructor(
    readonly store: WorkflowStore,
    private readonly registry: WorkflowRegistry,
    private readonly options: EngineOptions,
    readonly logger: StepLogger,
  ) {
    this.serializer = new Serializer(options.maxPayloadBytes);
    this.leaseMs = options.leaseMs;
    this.maxTransitions = options.maxTransitions;
    this.maxRecoveries = options.maxRecoveries;
    this.clock = options.clock ?? SYSTEM_CLOCK;
    this.inProcessDelayMs = this.clock.manual ? 0 : Math.min(5_000, Math.floor(options.leaseMs / 3));
    this.instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.lease = { owner: this.instanceId, leaseMs: options.leaseMs };
    this.heartbeatWriteMs = Math.min(HEARTBEAT_WRITE_MS, Math.floor(options.leaseMs / 3));
    this.events = new EventPublisher(store, logger, options.publishEvents === true);
    this.instrumentation = options.instrumentation ?? NOOP_INSTRUMENTATION;
    this.recordsHistory = options.history !== false;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Lifecycle

  /** Subscribes to store events and, when the worker is enabled, starts polling for work. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.savePipelines();
    if (this.store.subscribe) this.unsubscribe = await this.store.subscribe((event) => this.onEvent(event));
    else if (this.options.publishEvents) {
      this.logger.warn(`The ${this.store.name} store cannot broadcast events: stream({ scope: 'cluster' }) shows this instance's events only`);
    }
    if (this.options.workerEnabled) {
      if (this.options.instanceId !== undefined && this.store.claimOwnedRuns) await this.reclaimOwnRuns();
      this.schedulePoll(0);
      const every = Math.max(50, Math.floor(this.leaseMs / 3));
      this.renewTimer = setInterval(() => void this.renewLeases(), Math.min(every, 10_000));
      this.renewTimer.unref();
    }
    const retention = this.options.retention;
    if (retention && (retention.completedMs !== undefined || retention.failedMs !== undefined)) {
      const shortest = Math.min(retention.completedMs ?? Infinity, retention.failedMs ?? Infinity);
      const every = Math.max(1_000, Math.min(60 * 60_000, Math.floor(shortest / 10)));
      void this.purge();
      this.retentionTimer = setInterval(() => void this.purge(), every);
      this.retentionTimer.unref();
    }
  }

  /**
   * Stops taking work, lets in-flight runs reach their next step boundary for up to `shutdownGraceMs`, then interrupts
   * the rest; every lease held is released so other instances resume the runs at once.
   */
  async stop(): Promise<void> {
    if (!this.started || this.draining) return;
    this.draining = true;
    clearTimeout(this.pollTimer);
    clearInterval(this.retentionTimer);
    for (const timer of this.wakeTimers.values()) this.clock.clearTimer(timer);
    this.wakeTimers.clear();
    if (this.running.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.shutdownGraceMs)));
      await Promise.race([Promise.allSettled([...this.running]), grace]);
      clearTimeout(timer);
      if (this.running.size > 0) {
        this.logger.warn(`Shutdown grace of ${this.options.shutdownGraceMs} ms passed with ${this.running.size} run(s) in a step; releasing them`);
        for (const driver of this.active.values()) driver.shutdown();
        await Promise.allSettled([...this.running]);
      }
    }
    clearInterval(this.renewTimer);
    await this.events.flush();
    await this.unsubscribe?.().catch(() => undefined);
    for (const [runId, set] of this.waiters) {
      for (const waiter of set) waiter(undefined);
      this.waiters.delete(runId);
    }
  }

  /** Most queued signals one run may hold (the module's `maxQueuedSignals`). */
  get maxQueuedSignals(): number {
    return this.options.maxQueuedSignals;
  }

  get isWorker(): boolean {
    return this.options.workerEnabled;
  }

  isDraining(): boolean {
    return this.draining;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Starting runs

  /**
   * Creates a run; when this instance has capacity it claims it in the same store call and runs it at once.
   * @returns the run id and whether a new run was created
   */
  async startRun(def: WorkflowDefinition, input: unknown, options: StartRunOptions = {}): Promise<{ runId: string; created: boolean }> {
    if (options.id !== undefined) assertRunId(options.id);
    const policy = options.conflictPolicy ?? 'use-existing';
    if (policy !== 'use-existing' && policy !== 'fail' && policy !== 'terminate-existing') {
      throw new InvalidArgumentError(`conflictPolicy must be 'use-existing', 'fail' or 'terminate-existing' (got ${JSON.stringify(policy)}).`);
    }
    const flow = startFlowFields(def, input, options, Date.now());
    const serialized = this.serializer.serialize(input, `input of workflow "${def.name}"`);
    const runId = options.id ?? randomUUID();
    const result = await this.createAndLaunch(def, { runId, input: serialized, cursor: def.steps[0].name, steps: [], flow: flow.run }, {
      onConflict: policy === 'terminate-existing' ? 'replace' : 'keep',
      transaction: options.transaction,
      debounce: flow.debounce,
    });
    if (!result.created && !result.debounced && policy === 'fail') throw new RunAlreadyExistsError(runId);
    return { runId: result.runId, created: result.created };
  }

  /**
   * `client.fork()`: a new run of the same workflow that reuses the recorded outputs of the source run's steps before
   * the first visit of `fromStep`, and starts at `fromStep`.
   * @throws RunNotFoundError, InvalidArgumentError (unknown step, or one the source never reached), RunAlreadyExistsError
   */
  async forkRun(def: WorkflowDefinition, source: StoredRun, options: { fromStep: string; id?: string; input?: { value: unknown } }, by?: string): Promise<string> {
    if (options.id !== undefined) assertRunId(options.id);
    if (typeof options.fromStep !== 'string' || !def.stepsByName.has(options.fromStep)) {
      throw new InvalidArgumentError(
        `fork: fromStep must be a step of workflow "${def.name}" (${def.steps.map((s) => s.name).join(', ')}); got ${JSON.stringify(options.fromStep)}.`,
      );
    }
    const at = source.steps.findIndex((step) => step.name === options.fromStep);
    if (at < 0 && options.fromStep !== def.steps[0].name) {
      throw new InvalidArgumentError(`fork: run "${source.runId}" never reached step "${options.fromStep}"; fork from a step it reached.`);
    }
    const copied = source.steps.slice(0, Math.max(0, at)).map((step): StoredStep => ({ ...step, status: 'completed', heartbeat: undefined }));
    const input = options.input ? this.serializer.serialize(options.input.value, `input of workflow "${def.name}"`) : source.input;
    const runId = options.id ?? randomUUID();
    const created = await this.createAndLaunch(
      def,
      { runId, input, cursor: options.fromStep, steps: copied, detail: { forkedFrom: source.runId, fromStep: options.fromStep, ...(by !== undefined ? { by } : {}) } },
      { onConflict: 'keep' },
    );
    if (!created.created) throw new RunAlreadyExistsError(runId);
    return runId;
  }

  /** A child run for a parent's `children` commit (see DriverHost.childRun). */
  childRun(workflow: WorkflowRefLike, runId: string, input: unknown, trace?: TraceCarrier): NewChildRun {
    const def = this.registry.resolve(workflow);
    const serialized = this.serializer.serialize(input, `input of child workflow "${def.name}" (run "${runId}")`);
    const started: NewRunEvent = { type: 'run.started', at: new Date(), instanceId: this.instanceId, detail: { version: def.version } };
    return {
      runId,
      workflow: def.name,
      version: def.version,
      input: serialized,
      state: encodeState(initialState(def.steps[0].name, trace)),
      ...(this.recordsHistory ? { events: [encodeEvent(started)] } : {}),
      pipeline: this.fingerprint(def),
    };
  }

  /** Requests the cancel (with compensation) of these runs, a few at a time; failures are logged, never thrown. */
  async cancelRuns(runIds: readonly string[], why: string): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < runIds.length) {
        const runId = runIds[next++];
        try {
          await this.control(runId, { action: 'cancel', compensate: true }, undefined, { reason: why });
        } catch (error) {
          this.logger.error(
            `Could not cancel run "${runId}" (${why}): ${describeError(error)}. Cancel it with client.cancel("${runId}").`,
            runLogFields({ event: 'run.cancel_failed', runId, error: errorFields(error) }),
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, runIds.length) }, worker));
  }

  /**
   * Writes a new run whose next step is `cursor` (after the `steps` it starts with); when this instance has capacity
   * it claims it in the same store call and runs it at once.
   * @returns whether a run was created (false: the id exists and `onConflict` is keep)
   */
  private async createAndLaunch(
    def: WorkflowDefinition,
    run: { runId: string; input: string; cursor: string; steps: StoredStep[]; detail?: Record<string, unknown>; flow?: Pick<NewRun, 'priority' | 'due' | 'concurrency' | 'rateLimit'> },
    options: { onConflict: 'keep' | 'replace'; transaction?: unknown; debounce?: CreateRunOptions['debounce'] },
  ): Promise<{ created: boolean; debounced?: boolean; runId: string }> {
    const { runId } = run;
    const trace = this.instrumentation.captureTrace();
    // NOTE: a delayed or debounced run is not due now: no slot is reserved for it (the store would not lease it).
    const claimNow = options.transaction === undefined && !run.flow?.due && !options.debounce && this.hasCapacity();
    if (claimNow) this.reserved++;
    const state = initialState(run.cursor, trace);
    state.entry = run.steps.length;
    state.tr = run.steps.length;
    const started: NewRunEvent = { type: 'run.started', at: new Date(), instanceId: this.instanceId, detail: { version: def.version, ...run.detail } };
    let result;
    const sentAt = Date.now();
    try {
      result = await this.store.createRun(
        {
          runId,
          workflow: def.name,
          version: def.version,
          input: run.input,
          state: encodeState(state),
          steps: claimNow ? [...run.steps, { name: run.cursor, status: 'running', attempts: 0, startedAt: new Date() }] : run.steps.length > 0 ? run.steps : undefined,
          currentStep: run.cursor,
          events: this.recordsHistory ? [encodeEvent(started)] : undefined,
          pipeline: this.fingerprint(def),
          ...run.flow,
        },
        {
          onConflict: options.onConflict,
          lease: claimNow ? this.lease : undefined,
          transaction: options.transaction,
          ...(options.debounce ? { debounce: options.debounce } : {}),
        },
      );
    } finally {
      if (claimNow) this.reserved--;
    }
    if (!result.created) return { created: false, debounced: result.debounced, runId: result.run.runId };
    this.recentlyFinished.delete(runId);
    if (this.recordsHistory) this.onEvents(runId, def.name, [started], result.lastEventSeq);
    this.instrumentation.runStarted(def.name);
    const stored = result.run;
    // NOTE: a replaced run may be executing here; only an older generation gives way (concurrent replacements of one id
    // can return out of order, and the survivor must keep its executor).
    const current = this.active.get(runId);
    if (current && current.generation < stored.generation) current.lose();
    if (claimNow && stored.leaseToken) this.launch({ ...stored, leaseToken: stored.leaseToken, recovered: false }, sentAt);
    // NOTE: a store may create a run with limits without leasing it (rule F4: its limits passed it over, or the store
    // admits such runs only in a claim): one claim of it now, so a free slot is taken without waiting for a poll.
    else if (claimNow && (run.flow?.concurrency || run.flow?.rateLimit)) void this.kick(runId);
    // NOTE: a run the store did not lease (no capacity here) is claimed by a poll.
    else if (options.transaction === undefined && !run.flow?.due && !options.debounce) this.backlog = true;
    return { created: true, runId };
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Reading and controlling runs (the client's way to the store)

  /** A stored run, or undefined. */
  getRun(runId: string): Promise<StoredRun | undefined> {
    return this.store.getRun(runId);
  }

  /** A page of stored runs (see {@link WorkflowStore.listRuns}). */
  listRuns(query: ListRunsQuery): Promise<StoredRun[]> {
    return this.store.listRuns(query);
  }

  /** Decodes a stored input, output or payload (throws on damaged text). */
  decode<T = unknown>(text: string | undefined): T {
    return this.serializer.deserialize<T>(text);
  }

  /** The fingerprint of a definition's pipeline (computed once). */
  private fingerprint(def: WorkflowDefinition): string {
    let fp = this.fingerprints.get(def);
    if (fp === undefined) this.fingerprints.set(def, (fp = pipelineOf(def).fingerprint));
    return fp;
  }

  /** Saves the pipelines of the registered definitions (once per fingerprint, idempotent), for later checks. */
  private async savePipelines(): Promise<void> {
    try {
      await Promise.all(this.registry.all().map((def) => this.store.savePipeline(this.fingerprint(def), pipelineOf(def).body)));
    } catch (error) {
      this.logger.warn(`Could not save the workflow pipelines for compatibility checks: ${describeError(error)}`);
    }
  }

  /**
   * Compares the runs in flight with the registered definitions (see {@link CompatibilityReport}). Reads the store's
   * aggregate of live runs, never each run.
   */
  async checkCompatibility(): Promise<CompatibilityReport> {
    const groups = await this.store.summarizeLiveRuns();
    const fingerprints = [...new Set(groups.map((g) => g.pipeline).filter((p): p is string => p !== undefined))];
    const pipelines = fingerprints.length > 0 ? await this.store.getPipelines(fingerprints) : {};
    return checkCompatibility(groups, (workflow, version) => this.registry.get(workflow, version), pipelines);
  }

  /** Runs per status (see {@link WorkflowStore.countRuns}). */
  countRuns(workflow?: string): Promise<Partial<Record<RunStatus, number>>> {
    return this.store.countRuns(workflow === undefined ? {} : { workflow });
  }

  /** The signals queued for a run, not consumed yet (payloads decoded by the caller). */
  listSignals(runId: string): Promise<QueuedSignal[]> {
    return this.store.listSignals(runId);
  }

  /**
   * `client.skip()`: a failed run's failed step is to be recorded completed with `output`, and the run goes on.
   * @returns the store's outcome (`invalid-state` when the run is not failed at a step)
   */
  async skipRun(runId: string, output: unknown, by?: string): Promise<ControlResult> {
    const run = await this.store.getRun(runId);
    if (!run) return { outcome: 'not-found' };
    let failedAt: string | undefined;
    try {
      failedAt = run.status === 'failed' ? (JSON.parse(run.state) as { failed?: string }).failed : undefined;
    } catch {
      failedAt = undefined;
    }
    if (failedAt !== 'step') return { outcome: 'invalid-state', status: run.status };
    const step = run.error?.step ?? run.currentStep;
    const serialized = this.serializer.serialize(output, `skip output of step "${step}"`, step);
    return this.control(runId, { action: 'retry', nextInput: serialized }, by, { action: 'skip', ...(step !== undefined ? { step } : {}) });
  }

  /** A page of a run's history (stored form). */
  listEvents(runId: string, query: ListEventsQuery): Promise<StoredRunEvent[]> {
    return this.store.listEvents(runId, query);
  }

  /** Queues a signal; a run waiting for it is claimed here at once when this instance has room. */
  async sendSignal(runId: string, name: string, payload: unknown, by?: string, options: SendSignalOptions = {}): Promise<ControlResult> {
    const serialized = this.serializer.serialize(payload, `payload of signal "${name}"`);
    const event: NewRunEvent = {
      type: 'signal.received',
      at: new Date(),
      instanceId: this.instanceId,
      detail: by === undefined ? { signal: name } : { signal: name, by },
    };
    const encoded = this.recordsHistory ? encodeEvent(event) : undefined;
    const res = await this.store.sendSignal(runId, name, serialized, encoded, { ...(options.id !== undefined ? { id: options.id } : {}), maxQueued: this.options.maxQueuedSignals });
    if (res.outcome === 'ok' && this.recordsHistory) this.onEventsOf(runId, [event], res.eventSeq);
    if (res.outcome === 'ok' && res.status === 'waiting') void this.kick(runId);
    return res;
  }

  /**
   * Records a control request, then acts on it here at once where it can: a cancel aborts the run's step if it runs
   * here, a resumed or retried run is claimed here when this instance has room. `by` names who asked (an operator),
   * recorded in the history event.
   */
  async control(runId: string, request: ControlRequest, by?: string, detail?: Record<string, unknown>): Promise<ControlResult> {
    const event = controlEvent(request, this.instanceId, by, detail);
    const res = await this.store.control(runId, request, this.recordsHistory ? encodeEvent(event) : undefined);
    if (res.outcome !== 'ok') return res;
    if (this.recordsHistory) this.onEventsOf(runId, [event], res.eventSeq);
    if (request.action === 'cancel') void this.notifyControl(runId);
    else if (request.action === 'resume' || request.action === 'retry') void this.kick(runId);
    return res;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Results

  /** Whether this instance is executing the run now. */
  isLocal(runId: string): boolean {
    return this.active.has(runId);
  }

  /**
   * Waits for a run to end. Runs executing here resolve from memory; others on store events or a backed-off poll.
   * @returns the ended run
   */
  async waitForEnd(runId: string, timeoutMs?: number): Promise<{ run?: StoredRun; finished?: FinishedRun; timedOut: boolean }> {
    if (this.options.workerEnabled && !this.started) {
      // NOTE: awaited during onModuleInit, this would block bootstrap, and so the worker, forever.
      throw new ModuleNotReadyError(
        `The result of run "${runId}" was awaited before this instance's worker started (it starts in onApplicationBootstrap, ` +
          'after every onModuleInit): awaiting it during module initialisation would wait forever. Start the run there if you ' +
          'like, but await its result in onApplicationBootstrap or later.',
      );
    }
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    let backoff = 25;
    let first = true;
    const recent = this.recentlyFinished.get(runId);
    if (recent && Date.now() - recent.at < RECENT_MS) return { finished: recent.finished, timedOut: false };
    for (;;) {
      let resolveWaiter!: Waiter;
      const signal = new Promise<FinishedRun | undefined>((resolve) => (resolveWaiter = resolve));
      const set = this.waiters.get(runId) ?? new Set<Waiter>();
      set.add(resolveWaiter);
      this.waiters.set(runId, set);
      try {
        if (!this.active.has(runId) || !first) {
          const run = await this.store.getRun(runId);
          if (!run) throw new RunNotFoundError(runId);
          if (isTerminal(run.status)) return { run, timedOut: false };
        }
        first = false;
        const remaining = deadline - Date.now();
        if (remaining <= 0) return { timedOut: true };
        const local = this.active.has(runId);
        const wait = local ? remaining : Math.min(remaining, backoff);
        backoff = Math.min(backoff * 2, 1_000);
        let timer: NodeJS.Timeout | undefined;
        // NOTE: without a time limit (a local run, no timeout) only the end can come: no race, fewer promises.
        const finished =
          wait === Infinity
            ? await signal
            : await Promise.race([signal, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.min(wait, MAX_TIMER_MS))))]);
        clearTimeout(timer);
        if (finished) return { finished, timedOut: false };
      } finally {
        set.delete(resolveWaiter);
        if (set.size === 0 && this.waiters.get(runId) === set) this.waiters.delete(runId);
      }
    }
  }

  onEvents(runId: string, workflow: string, events: readonly NewRunEvent[], lastSeq: number | undefined): void {
    // NOTE: on every checkpoint: numbered copies are made only when someone listens.
    if (this.events.listening) this.events.emit(runId, workflow, numbered(events, lastSeq));
  }

  /** Events a client call wrote for a run (its workflow is looked up only when someone listens). */
  private onEventsOf(runId: string, events: NewRunEvent[], lastSeq: number | undefined): void {
    if (!this.events.listening) return;
    void this.store.getRun(runId).then(
      (run) => run && this.onEvents(runId, run.workflow, events, lastSeq),
      () => undefined,
    );
  }

  onFinished(runId: string, finished: FinishedRun): void {
    this.recentlyFinished.delete(runId);
    this.recentlyFinished.set(runId, { finished, at: Date.now() });
    if (this.recentlyFinished.size > RECENT_MAX) {
      for (const key of this.recentlyFinished.keys()) {
        this.recentlyFinished.delete(key);
        if (this.recentlyFinished.size <= RECENT_MAX / 2) break;
      }
    }
    const set = this.waiters.get(runId);
    if (!set) return;
    for (const waiter of [...set]) waiter(finished);
  }

  private wakeWaiters(runId: string): void {
    const set = this.waiters.get(runId);
    if (!set) return;
    for (const waiter of [...set]) waiter(undefined);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Claiming and driving

  private hasCapacity(): boolean {
    return (
      this.options.workerEnabled &&
      this.started &&
      !this.reclaiming &&
      !this.draining &&
      this.active.size + this.reserved < this.options.concurrency
    );
  }

  /**
   * With a stable `instanceId`: the runs leased to this id belong to this instance's previous process, which is gone
   * (ids are unique among live instances), so they are claimed now rather than when their leases expire. Once, before
   * any other claim of this instance: a later call would also take back the leases this process holds.
   */
  private async reclaimOwnRuns(): Promise<void> {
    const refs = this.registry.workflowRefs();
    if (refs.length === 0) return;
    this.reclaiming = true;
    try {
      const sentAt = Date.now();
      const claimed = await this.store.claimOwnedRuns!(this.lease, this.options.concurrency, refs);
      if (claimed.length > 0) {
        this.logger.log(`Instance "${this.instanceId}": reclaimed ${claimed.length} run(s) its previous process left in flight`);
      }
      for (const run of claimed) this.accept(run, sentAt);
    } catch (error) {
      this.logger.error(`Reclaiming the runs of instance "${this.instanceId}" failed (they resume when their leases expire): ${describeError(error)}`);
    } finally {
      this.reclaiming = false;
    }
  }

  /** Try to claim one run here now (after a control call, a store event or a local timer). */
  async kick(runId: string): Promise<void> {
    this.recentlyFinished.delete(runId);
    if (this.active.has(runId)) {
      // NOTE: the run may be on its way out (a parent whose children ended before its wait commit returned, a signal
      // sent during its wait commit): claim it again once its driver is gone, rather than at the next poll.
      this.kickAfterDriver.add(runId);
      return;
    }
    if (!this.hasCapacity()) {
      this.backlog = true;
      return;
    }
    this.reserved++;
    let claimed: ClaimedRun | undefined;
    const sentAt = Date.now();
    try {
      // NOTE: only workflows registered here: another deployment's runs are left to it.
      claimed = await this.store.claimRun(runId, this.lease, this.registry.workflowRefs());
    } catch (error) {
      this.logger.error(
        `Could not claim run "${runId}": ${describeError(error)}. It stays due: a later poll of this or another instance claims it.`,
        runLogFields({ event: 'claim.failed', runId, error: errorFields(error) }),
      );
    } finally {
      this.reserved--;
    }
    if (claimed) this.accept(claimed, sentAt);
  }

  /** A control request was recorded for a run: if it runs here, look at it now (cancel aborts the step). */
  async notifyControl(runId: string): Promise<void> {
    const driver = this.active.get(runId);
    if (!driver) return void this.kick(runId);
    await this.renewOne(driver);
  }

  scheduleWake(runId: string, delayMs: number): void {
    if (this.draining || !this.options.workerEnabled || delayMs > MAX_TIMER_MS) return;
    this.clock.clearTimer(this.wakeTimers.get(runId));
    const timer = this.clock.setTimer(() => {
      this.wakeTimers.delete(runId);
      void this.kick(runId);
    }, delayMs + 1);
    (timer as NodeJS.Timeout).unref?.();
    this.wakeTimers.set(runId, timer);
  }

  /**
   * For the testing module: claims every run due now (up to the free slots) and starts it here.
   * @returns how many runs were claimed
   */
  async claimDueNow(): Promise<number> {
    const free = this.options.concurrency - this.active.size - this.reserved;
    if (!this.started || this.draining || !this.options.workerEnabled || free <= 0) return 0;
    return this.claimBatch(free);
  }

  /** Claims up to `free` due runs (their slots reserved meanwhile) and starts them here. Returns how many. */
  private async claimBatch(free: number): Promise<number> {
    this.reserved += free;
    let claimed: ClaimedRun[];
    const sentAt = Date.now();
    try {
      claimed = await this.store.claimRuns(this.lease, free, this.registry.workflowRefs());
    } finally {
      this.reserved -= free;
    }
    for (const run of claimed) this.accept(run, sentAt);
    return claimed.length;
  }

  /**
   * For the testing module, before its clock jumps `ms` ahead: extends the leases of the runs executing here so the
   * jump does not expire them (a real instance renews them as time passes).
   */
  async extendLeases(ms: number): Promise<void> {
    await Promise.all(
      [...this.active.values()].map((driver) => this.store.renewLease(driver.runId, driver.leaseToken, this.leaseMs + ms).catch(() => undefined)),
    );
  }

  /** For the testing module: how many runs execute here now, and a count that grows with every driver that ends. */
  progress(): { active: number; ended: number; commits: number } {
    return { active: this.active.size, ended: this.endedDrivers, commits: this.commits };
  }

  committed(): void {
    this.commits++;
  }

  /** A run claimed by a call sent at `sentAt` (ms, this clock): its lease runs from then at the latest. */
  private accept(claimed: ClaimedRun, sentAt: number): void {
    const lagMs = claimed.recovered ? (claimed.orphanedMs ?? 0) : claimed.dueAt ? Math.max(0, Date.now() - claimed.dueAt.getTime()) : undefined;
    if (lagMs !== undefined) {
      this.instrumentation.claimLag(claimed.workflow, lagMs);
      this.lastClaim = { lagMs, at: Date.now() };
    }
    if (claimed.recovered) {
      this.instrumentation.leaseTakeover(claimed.workflow);
      const from = claimed.previousOwner === undefined ? 'an unknown instance' : `instance "${claimed.previousOwner}"`;
      const orphaned = claimed.orphanedMs === undefined ? 'an unknown time' : `${claimed.orphanedMs} ms`;
      const at = interruptedStep(claimed);
      this.logger.warn(
        `Run "${claimed.runId}" (${claimed.workflow}): taking over the lease of ${from}, orphaned for ${orphaned}; recovering it from its last checkpoint` +
          (at.attempt !== undefined
            ? `: step "${at.step}" attempt ${at.attempt} starts over (it may have run in part: keep its side effects idempotent with ctx.idempotencyKey).`
            : '.') +
          (claimed.previousOwner === this.instanceId ? '' : ' If that instance is still alive, it stalled past worker.leaseMs: its writes are refused from now on.'),
        runLogFields({
          event: 'lease.takeover',
          runId: claimed.runId,
          workflow: claimed.workflow,
          step: at.step,
          attempt: at.attempt,
          previousOwner: claimed.previousOwner,
          orphanedMs: claimed.orphanedMs,
        }),
      );
    }
    if (this.draining) {
      void this.store.releaseLease(claimed.runId, claimed.leaseToken).catch(() => undefined);
      return;
    }
    this.launch(claimed, sentAt);
  }

  /**
   * Starts a driver for a claimed run. Never throws: whatever one run holds (even data that cannot be decoded) must not
   * keep the other runs of a claim batch from starting, nor reach the process as an unhandled rejection.
   */
  private launch(claimed: ClaimedRun, sentAt: number): void {
    const release = () => void this.store.releaseLease(claimed.runId, claimed.leaseToken).catch(() => undefined);
    try {
      const current = this.active.get(claimed.runId);
      if (current) {
        // NOTE: a claim of an older generation is already fenced by the replacement: drop it without a write.
        if (current.generation > claimed.generation) return;
        if (current.generation === claimed.generation) return release();
        current.lose();
      }
      const def = this.registry.get(claimed.workflow, claimed.version);
      if (!def) return release();
      const driver = new RunDriver(this, def, claimed, sentAt);
      this.active.set(claimed.runId, driver);
      this.instrumentation.inFlight(1);
      const done = driver.drive().finally(() => {
        this.endedDrivers++;
        this.instrumentation.inFlight(-1);
        if (this.active.get(claimed.runId) === driver) this.active.delete(claimed.runId);
        this.running.delete(done);
        this.wakeWaiters(claimed.runId);
        const again = this.kickAfterDriver.delete(claimed.runId);
        if ((driver.requeue || again) && !this.draining && !this.active.has(claimed.runId)) void this.kick(claimed.runId);
        // NOTE: a slot just freed: when more work may be due (a full claim batch, starts that found no slot), claim now
        // rather than at the next poll, so a burst drains at full speed. A run with a concurrency limit may have given
        // its key's slot back (it ended, or released its lease with scope 'step'): the next run of the key goes at once.
        if ((this.backlog || claimed.concurrency) && !this.draining) this.pollSoon(!this.backlog);
      });
      this.running.add(done);
    } catch (error) {
      this.logger.error(
        `Could not start run "${claimed.runId}" (${claimed.workflow}) on this instance: ${describeError(error)}. Its lease is released for another claim; if this repeats, report it with this stack.`,
        runLogFields({ event: 'run.launch_failed', runId: claimed.runId, workflow: claimed.workflow, step: claimed.currentStep, error: errorFields(error) }),
        errorStack(error),
      );
      release();
    }
  }

  /**
   * Polls as soon as possible, coalesced: requests made before the armed poll fires share it, and requests made while
   * a poll is in flight get one more poll right after it (not one each, and none lost). The poll itself is never
   * delayed. `slotOnly`: the request is for one slot a run with a concurrency limit may have given back (it ended):
   * a poll asked for by such requests alone claims at most as many runs as there were (the runs those slots let in),
   * not one per free slot here, so that it does not hold every free slot of this instance (`reserved`) while it is in
   * flight, which would leave the starts made meanwhile unleased. It claims any due runs, in the usual order; a full
   * batch means more may be due (backlog: a poll for every free slot follows at once).
   */
  private pollSoon(slotOnly = false): void {
    if (this.draining || !this.options.workerEnabled) return;
    if (slotOnly) this.slotsGivenBack++;
    if (this.polling) {
      this.pollAgain = true;
      if (!slotOnly) this.pollAgainFull = true;
      return;
    }
    if (!this.pollArmedNow) this.schedulePoll(0, slotOnly);
    else if (!slotOnly) this.pollForSlotsOnly = false;
  }

  private schedulePoll(delayMs: number, slotsOnly = false): void {
    if (this.draining || !this.options.workerEnabled) return;
    clearTimeout(this.pollTimer);
    this.pollArmedNow = delayMs === 0;
    this.pollForSlotsOnly = slotsOnly;
    // NOTE: the poll timer stays referenced: a worker-only process (no HTTP server) must stay alive while its store
    // connections are down (e.g. a database restart) to resume the work afterwards. stop() clears it.
    this.pollTimer = setTimeout(() => {
      this.pollArmedNow = false;
      void this.poll();
    }, delayMs);
  }

  private async poll(): Promise<void> {
    if (this.draining) return;
    if (this.polling) {
      this.pollAgain = true;
      this.pollAgainFull = true;
      return;
    }
    this.polling = true;
    this.pollAgain = false;
    this.pollAgainFull = false;
    let again = false;
    try {
      const free = this.options.concurrency - this.active.size - this.reserved;
      const full = !this.pollForSlotsOnly || this.backlog;
      const wanted = full ? free : Math.min(free, Math.max(1, this.slotsGivenBack));
      this.slotsGivenBack = 0;
      this.pollForSlotsOnly = false;
      this.backlog = false;
      if (wanted > 0) {
        again = (await this.claimBatch(wanted)) === wanted;
        // NOTE: a full batch means more may be due: claim again as soon as a slot frees (see launch).
        if (again) this.backlog = true;
      } else this.backlog = true;
    } catch (error) {
      this.logger.error(`Polling the ${this.store.name} store failed: ${describeError(error)}`);
    } finally {
      this.polling = false;
      this.lastPollAt = new Date();
      // NOTE: starts that found every slot reserved by this poll left their runs pending, and slots freed meanwhile
      // asked for a poll (pollSoon): claim now. With no slot free here, the next driver that ends polls (backlog).
      const freeNow = this.options.concurrency - this.active.size - this.reserved;
      if (this.pollAgain && freeNow <= 0) this.backlog = true;
      const soon = (again || this.backlog || this.pollAgain) && freeNow > 0;
      // NOTE: a poll that follows only slots given back meanwhile claims only for those (see pollSoon)
      const slotsOnly = soon && this.pollAgain && !this.pollAgainFull && !this.backlog;
      this.pollAgain = false;
      this.pollAgainFull = false;
      this.schedulePoll(soon ? 0 : this.options.pollIntervalMs, slotsOnly);
    }
  }

  private onEvent(event: StoreEvent): void {
    switch (event.type) {
      case 'ready':
        if (this.registry.names().length > 0) void this.kick(event.runId);
        break;
      case 'control':
        if (this.active.has(event.runId)) void this.notifyControl(event.runId);
        break;
      case 'finished':
        // NOTE: a run ending here resolves its waiters itself, with the outcome, without a store read.
        if (!this.active.has(event.runId)) this.wakeWaiters(event.runId);
        break;
      case 'message':
        this.events.received(event.body);
        break;
    }
  }

  private async renewLeases(): Promise<void> {
    const threshold = this.leaseMs / 3;
    await Promise.all([...this.active.values()].filter((d) => d.sinceLastWrite() >= threshold).map((d) => this.renewOne(d)));
  }

  private async renewOne(driver: RunDriver): Promise<void> {
    const sentAt = Date.now();
    try {
      const res = await this.store.renewLease(driver.runId, driver.leaseToken, this.leaseMs);
      if (!res.ok) {
        this.logger.warn(
          `Run "${driver.runId}": lease lost to another instance; interrupting it here (its step is aborted through ctx.signal, and the instance that took it over continues the run). If this recurs, raise worker.leaseMs or find what blocks this process's event loop.`,
          runLogFields({ event: 'lease.lost', runId: driver.runId, ...driver.position() }),
        );
        driver.lose();
        return;
      }
      driver.touched(sentAt);
      if (res.cancel) driver.requestCancel(res.cancel);
    } catch (error) {
      this.logger.error(
        `Renewing the lease of run "${driver.runId}" failed: ${describeError(error)}. The next renewal tries again; if the store stays unreachable past worker.leaseMs, another instance takes the run over.`,
        runLogFields({ event: 'lease.renew_failed', runId: driver.runId, error: errorFields(error) }),
      );
    }
  }

  private async purge(): Promise<void> {
    const retention = this.options.retention;
    if (!retention) return;
    try {
      let purged = 0;
      if (retention.completedMs !== undefined) purged += await this.store.purge(['completed'], retention.completedMs);
      if (retention.failedMs !== undefined) purged += await this.store.purge(['failed', 'compensated', 'cancelled'], retention.failedMs);
      if (purged > 0) this.logger.log(`Retention: purged ${purged} ended run(s)`);
    } catch (error) {
      this.logger.error(`Retention purge failed: ${describeError(error)}`);
    }
  }

  /** The worker's state, for health checks (see `DurableExecutionHealthIndicator`). */
  health(): EngineHealth {
    const claim = this.lastClaim && Date.now() - this.lastClaim.at < 60_000 ? this.lastClaim : undefined;
    return {
      workerEnabled: this.options.workerEnabled,
      running: this.started && !this.draining,
      ...(this.lastPollAt ? { lastPollAt: this.lastPollAt } : {}),
      inFlight: this.active.size,
      concurrency: this.options.concurrency,
      ...(claim ? { claimLagMs: claim.lagMs } : {}),
    };
  }

  /** For tests and diagnostics: run ids executing on this instance. */
  activeRunIds(): string[] {
    return [...this.active.keys()];
  }
}

/**
 * The history event of a control request: `run.paused`, `run.resumed`, `run.retried` from the client, and
 * `operator.action` (with `detail.action`) for a cancel, a skip, or any request an operator (`by`) made.
 */
function controlEvent(request: ControlRequest, instanceId: string, by: string | undefined, extra?: Record<string, unknown>): NewRunEvent {
  const operator = by !== undefined || request.action === 'cancel' || extra?.action !== undefined;
  const type: RunEventType = operator
    ? 'operator.action'
    : request.action === 'pause'
      ? 'run.paused'
      : request.action === 'resume'
        ? 'run.resumed'
        : 'run.retried';
  const detail: Record<string, unknown> = operator ? { action: request.action } : {};
  if (request.action === 'cancel') detail.compensate = request.compensate;
  if (extra) Object.assign(detail, extra);
  if (by !== undefined) detail.by = by;
  return { type, at: new Date(), instanceId, ...(Object.keys(detail).length > 0 ? { detail } : {}) };
}

export type { WorkflowEventListener };
