import { randomUUID } from 'node:crypto';
import type {
  ChildrenPatch,
  ChildrenState,
  ClaimedRun,
  CommitResult,
  ControlRequest,
  ControlResult,
  CountRunsQuery,
  CreateRunOptions,
  CreateRunResult,
  DueSpec,
  LeaseRequest,
  ListEventsQuery,
  ListRunsQuery,
  NewChildRun,
  NewRun,
  LiveRunGroup,
  QueuedSignal,
  RenewResult,
  RunOutcome,
  RunPatch,
  RunStatus,
  SendSignalOptions,
  StoreEvent,
  StoredRun,
  StoredRunEvent,
  StoredStep,
  TakeSignalResult,
  WorkflowRef,
  WorkflowStore,
} from '../workflow-store.interface.js';
import { LIVE_GROUP_SAMPLE, PUBLISH_MAX_BYTES, RUN_HISTORY_LIMIT } from '../workflow-store.interface.js';
import { isClaimableStatus, isDueOnRelease, isLive, isTerminal, statusAfterClaim } from '../run-state-machine.js';
import { InvalidArgumentError } from '../../errors/errors.js';
import { compareRunIds } from '../run-id-order.js';
import { MemoryScheduleStore } from './memory.schedules.js';

function copyStep(step: StoredStep): StoredStep {
  return step.heartbeat ? { ...step, heartbeat: { ...step.heartbeat } } : { ...step };
}

/** A run's history: the events kept (at most RUN_HISTORY_LIMIT) and the last seq given. */
interface History {
  events: StoredRunEvent[];
  seq: number;
}

/** A signal queued for a run; a run's queue is kept in the order the signals were sent (across names). */
interface Queued {
  name: string;
  payload: string;
}

function copyRun(run: StoredRun): StoredRun {
  return {
    ...run,
    steps: run.steps.map(copyStep),
    error: run.error ? { ...run.error } : undefined,
    cancelRequested: run.cancelRequested ? { ...run.cancelRequested } : undefined,
    waitSignals: run.waitSignals ? [...run.waitSignals] : undefined,
    children: run.children ? copyChildren(run.children) : undefined,
  };
}

function copyChildren(children: ChildrenState): ChildrenState {
  const copy: ChildrenState = { ended: children.ended, failed: children.failed };
  if (children.wait) copy.wait = { ...children.wait };
  return copy;
}

/**
 * The reference implementation of the store port's rules (see `WorkflowStore` and `run-state-machine.ts`), in plain
 * TypeScript: read it to learn what the SQL and Lua of the other stores do.
 *
 * In-process store for tests and development. Not durable: everything is lost when the process exits. `listRuns` and
 * `claimRuns` scan every run (no index): fine for tests and a development app, slow past ~100,000 runs.
 *
 * It follows the same rules as the durable stores and keeps values as the serialized strings the engine produces,
 * so a value that production would reject is rejected here too.
 */
export class MemoryStore implements WorkflowStore {
  readonly name = 'memory';
  private readonly runs = new Map<string, StoredRun>();
  /** Queued signals per run, in the order they were sent (all names in one queue: the earliest sent wins, rule 3). */
  private readonly signals = new Map<string, Queued[]>();
  /** `sendSignal` ids accepted per run: kept with the run (through its end and `restart`), deleted with it. */
  private readonly signalIds = new Map<string, Set<string>>();
  private readonly histories = new Map<string, History>();
  private readonly pipelines = new Map<string, string>();
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  /** Rule F2: the runs holding a slot, per concurrency key (the runs' `slotHeld`, indexed). */
  private readonly slots = new Map<string, Set<string>>();
  /** Rule F3: the begin times (ms) of the runs of each rate key, oldest first, at most the limit of them. */
  private readonly begins = new Map<string, number[]>();
  /** Rule D: the run each debounce key folds into, and when that run was first created. */
  private readonly debounces = new Map<string, { runId: string; first: number }>();

  async init(): Promise<void> {}

  /** The schedules kept with the runs (see `ScheduleStore`). */
  get schedules(): MemoryScheduleStore {
    return (this.scheduleStore ??= new MemoryScheduleStore(this.clock));
  }
  private scheduleStore?: MemoryScheduleStore;

  async close(): Promise<void> {
    this.listeners.clear();
  }

  /** @param clock the time of the store (a manual one in `DurableExecutionTestingModule`) */
  constructor(private readonly clock: { now(): number } = Date) {}

  private now(): number {
    return this.clock.now();
  }

  private emit(event: StoreEvent): void {
    if (this.listeners.size === 0) return;
    queueMicrotask(() => {
      for (const listener of this.listeners) listener(event);
    });
  }

  async createRun(input: NewRun, options: CreateRunOptions): Promise<CreateRunResult> {
    if (options.transaction !== undefined) {
      throw new InvalidArgumentError('The memory store cannot join a caller\'s transaction: start({ transaction }) needs the postgres store.');
    }
    const existing = this.runs.get(input.runId);
    if (existing && options.onConflict === 'keep') return { created: false, run: this.view(existing) };
    const now = new Date(this.now());
    const debounce = options.debounce;
    if (debounce) {
      // Rule D: fold into the key's run while it is pending and has never been claimed.
      const entry = this.debounces.get(debounce.key);
      const target = entry ? this.runs.get(entry.runId) : undefined;
      if (entry && target && target.status === 'pending' && target.steps.length === 0 && target.leaseToken === undefined) {
        const due = now.getTime() + debounce.delayMs;
        const cap = debounce.maxDelayMs !== undefined ? entry.first + debounce.maxDelayMs : Infinity;
        target.input = input.input;
        target.state = input.state;
        target.dueAt = new Date(Math.min(due, cap));
        target.updatedAt = now;
        return { created: false, debounced: true, run: this.view(target) };
      }
      this.debounces.set(debounce.key, { runId: input.runId, first: now.getTime() });
    }
    if (existing) {
      this.freeSlot(existing);
      this.forget(input.runId);
    }
    const run: StoredRun = {
      runId: input.runId,
      workflow: input.workflow,
      version: input.version,
      status: options.lease ? 'running' : 'pending',
      input: input.input,
      state: input.state,
      currentStep: input.currentStep,
      steps: (input.steps ?? []).map(copyStep),
      pauseRequested: false,
      dueAt: debounce ? new Date(now.getTime() + debounce.delayMs) : input.due ? dueAt(input.due, now.getTime()) : now,
      createdAt: now,
      updatedAt: now,
      generation: existing ? existing.generation + 1 : 1,
      priority: input.priority ?? 0,
    };
    if (input.pipeline !== undefined) run.pipeline = input.pipeline;
    if (input.concurrency) run.concurrency = { ...input.concurrency };
    if (input.rateLimit) run.rateLimit = { ...input.rateLimit };
    // Rule F4: claimed at once only when due now and admitted by its limits (judged as the pending run it would be
    // without the claim); else pending, without the step entry the claim would have begun.
    let lease: LeaseRequest | undefined;
    if (options.lease) {
      run.status = 'pending';
      run.steps = (input.steps ?? []).filter((step) => step.status !== 'running').map(copyStep);
      if (run.dueAt!.getTime() <= now.getTime() && this.admit(run, now.getTime())) {
        lease = options.lease;
        run.status = 'running';
        run.steps = (input.steps ?? []).map(copyStep);
      }
    }
    if (lease) {
      run.leaseOwner = lease.owner;
      run.leaseToken = randomUUID();
      run.leaseExpiresAt = new Date(now.getTime() + lease.leaseMs);
    }
    this.runs.set(run.runId, run);
    const lastEventSeq = this.append(run.runId, input.events);
    if (existing) this.emit({ type: 'control', runId: run.runId });
    if (!lease && run.dueAt!.getTime() <= now.getTime()) this.emit({ type: 'ready', runId: run.runId });
    return { created: true, run: this.view(run), ...(lastEventSeq !== undefined ? { lastEventSeq } : {}) };
  }

  async getRun(runId: string): Promise<StoredRun | undefined> {
    const run = this.runs.get(runId);
    return run ? this.view(run) : undefined;
  }

  /** A copy of a run for a reader, with `blockedBy` when a claim would pass it over now (rules F2, F3). */
  private view(run: StoredRun): StoredRun {
    const copy = copyRun(run);
    const now = this.now();
    if (this.isClaimable(run, now) && !run.cancelRequested) {
      if (run.concurrency && !run.slotHeld && this.slotHolders(run.concurrency.key) >= run.concurrency.limit) copy.blockedBy = 'concurrency';
      else if (this.rateBlocked(run, now)) copy.blockedBy = 'rate-limit';
    }
    return copy;
  }

  /** Rule F2: how many live runs hold a slot of this concurrency key. */
  private slotHolders(key: string): number {
    return this.slots.get(key)?.size ?? 0;
  }

  /** Rule F3: whether the run would begin now (first claim) and its rate key's window is full. */
  private rateBlocked(run: StoredRun, now: number): boolean {
    const rate = run.rateLimit;
    if (!rate || run.status !== 'pending' || run.steps.length > 0) return false;
    const begun = this.begins.get(rate.key) ?? [];
    const recent = begun.filter((at) => at > now - rate.perMs);
    return recent.length >= rate.limit;
  }

  /**
   * Rules F1–F3 for a run about to be claimed: whether its limits let it in now; if so, takes its slot and records its
   * begin. A run with a pending cancel always gets in, without a slot.
   */
  private admit(run: StoredRun, now: number): boolean {
    if (run.cancelRequested) return true;
    const concurrency = run.concurrency;
    const needsSlot = concurrency !== undefined && !run.slotHeld;
    if (needsSlot && this.slotHolders(concurrency.key) >= concurrency.limit) return false;
    if (this.rateBlocked(run, now)) return false;
    const rate = run.rateLimit;
    if (rate && run.status === 'pending' && run.steps.length === 0) {
      const begun = (this.begins.get(rate.key) ?? []).filter((at) => at > now - rate.perMs);
      begun.push(now);
      this.begins.set(rate.key, begun.slice(-rate.limit));
    }
    if (needsSlot) {
      run.slotHeld = true;
      let holders = this.slots.get(concurrency.key);
      if (!holders) this.slots.set(concurrency.key, (holders = new Set()));
      holders.add(run.runId);
    }
    return true;
  }

  /** Rule F2: the run gives its slot back (it ended, was replaced, or released its lease with `scope: 'step'`). */
  private freeSlot(run: StoredRun): void {
    if (!run.slotHeld || !run.concurrency) return;
    run.slotHeld = undefined;
    const holders = this.slots.get(run.concurrency.key);
    holders?.delete(run.runId);
    if (holders?.size === 0) this.slots.delete(run.concurrency.key);
  }

  async listRuns(query: ListRunsQuery): Promise<StoredRun[]> {
    const statuses = query.statuses ? new Set(query.statuses) : undefined;
    const after = query.after;
    const matches = [...this.runs.values()].filter((run) => {
      if (query.workflow !== undefined && run.workflow !== query.workflow) return false;
      if (query.parentRunId !== undefined && run.parentRunId !== query.parentRunId) return false;
      if (statuses && !statuses.has(run.status)) return false;
      if (query.createdFrom && run.createdAt.getTime() < query.createdFrom.getTime()) return false;
      if (query.createdTo && run.createdAt.getTime() >= query.createdTo.getTime()) return false;
      if (after) {
        const t = run.createdAt.getTime();
        const at = after.createdAt.getTime();
        if (t > at) return false;
        if (t === at && !(compareRunIds(run.runId, after.runId) < 0)) return false;
      }
      return true;
    });
    matches.sort((a, b) => {
      const d = b.createdAt.getTime() - a.createdAt.getTime();
      if (d !== 0) return d;
      return compareRunIds(b.runId, a.runId);
    });
    return matches.slice(0, query.limit).map((run) => this.view(run));
  }

  /** Appends history events (rule: the oldest beyond RUN_HISTORY_LIMIT go). Returns the last seq given. */
  private append(runId: string, bodies: readonly string[] | undefined): number | undefined {
    if (!bodies || bodies.length === 0) return undefined;
    let history = this.histories.get(runId);
    if (!history) this.histories.set(runId, (history = { events: [], seq: 0 }));
    for (const body of bodies) history.events.push({ seq: ++history.seq, body });
    if (history.events.length > RUN_HISTORY_LIMIT) history.events.splice(0, history.events.length - RUN_HISTORY_LIMIT);
    return history.seq;
  }

  async listEvents(runId: string, query: ListEventsQuery): Promise<StoredRunEvent[]> {
    const events = this.histories.get(runId)?.events ?? [];
    const after = query.afterSeq ?? 0;
    const start = events.findIndex((event) => event.seq > after);
    if (start < 0) return [];
    return events.slice(start, start + query.limit).map((event) => ({ ...event }));
  }

  private isClaimable(run: StoredRun, now: number): boolean {
    return (
      isClaimableStatus(run.status) &&
      run.dueAt !== undefined &&
      run.dueAt.getTime() <= now &&
      (run.leaseExpiresAt === undefined || run.leaseExpiresAt.getTime() <= now)
    );
  }

  private claim(run: StoredRun, lease: LeaseRequest, now: number): ClaimedRun {
    const recovered = run.leaseToken !== undefined;
    const previous = recovered
      ? {
          previousOwner: run.leaseOwner,
          orphanedMs: Math.max(0, now - (run.leaseExpiresAt?.getTime() ?? now)),
        }
      : {};
    run.leaseOwner = lease.owner;
    run.leaseToken = randomUUID();
    run.leaseExpiresAt = new Date(now + lease.leaseMs);
    run.status = statusAfterClaim(run.status);
    run.updatedAt = new Date(now);
    return { ...copyRun(run), leaseToken: run.leaseToken, recovered, ...previous };
  }

  async claimRuns(lease: LeaseRequest, limit: number, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun[]> {
    if (limit <= 0) return [];
    const now = this.now();
    const accepts = acceptsRun(workflows);
    const due = [...this.runs.values()]
      .filter((run) => this.isClaimable(run, now) && accepts(run))
      .sort((a, b) => b.priority - a.priority || a.dueAt!.getTime() - b.dueAt!.getTime());
    const claimed: ClaimedRun[] = [];
    for (const run of due) {
      if (claimed.length >= limit) break;
      if (this.admit(run, now)) claimed.push(this.claim(run, lease, now));
    }
    return claimed;
  }

  async claimOwnedRuns(lease: LeaseRequest, limit: number, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun[]> {
    if (!(limit > 0)) return [];
    const now = this.now();
    const accepts = acceptsRun(workflows);
    const owned = [...this.runs.values()]
      .filter(
        (run) =>
          run.leaseToken !== undefined &&
          run.leaseOwner === lease.owner &&
          isClaimableStatus(run.status) &&
          run.dueAt !== undefined &&
          accepts(run),
      )
      .filter((run) => this.admit(run, now))
      .slice(0, limit);
    return owned.map((run) => this.claim(run, lease, now));
  }

  async claimRun(runId: string, lease: LeaseRequest, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun | undefined> {
    const run = this.runs.get(runId);
    const now = this.now();
    if (!run || !this.isClaimable(run, now) || !acceptsRun(workflows)(run) || !this.admit(run, now)) return undefined;
    return this.claim(run, lease, now);
  }

  private leased(runId: string, token: string): StoredRun | undefined {
    const run = this.runs.get(runId);
    return run && run.leaseToken === token ? run : undefined;
  }

  async renewLease(runId: string, token: string, leaseMs: number): Promise<RenewResult> {
    const run = this.leased(runId, token);
    if (!run) return { ok: false };
    // NOTE: a renewal never shortens a lease (see the port).
    run.leaseExpiresAt = new Date(Math.max(run.leaseExpiresAt?.getTime() ?? 0, this.now() + leaseMs));
    return {
      ok: true,
      cancel: run.cancelRequested ? { ...run.cancelRequested } : undefined,
      pauseRequested: run.pauseRequested,
    };
  }

  async releaseLease(runId: string, token: string): Promise<void> {
    const run = this.leased(runId, token);
    if (!run) return;
    const now = this.now();
    clearLease(run);
    if (run.concurrency?.scope === 'step') this.freeSlot(run);
    if (isDueOnRelease(run.status)) run.dueAt = new Date(now);
    run.updatedAt = new Date(now);
    this.emit({ type: 'ready', runId });
  }

  async commit(runId: string, token: string, patch: RunPatch): Promise<CommitResult> {
    // Rule 1: fencing.
    const run = this.leased(runId, token);
    if (!run) return { ok: false };
    const now = this.now();
    const wasLive = isLive(run.status);
    /** Other runs this commit makes claimable (spawned or released children, a woken parent): `ready` events. */
    const readyRuns: string[] = [];
    let release = patch.release === true;
    let consumedSignal: { name: string; payload: string } | undefined;
    let childrenReady: boolean | undefined;

    // `restart` (continue-as-new), before the other fields: history, queued signals and signal ids are kept.
    if (patch.restart) {
      run.steps = [];
      run.input = patch.restart.input;
      run.nextInput = undefined;
      run.nextInputSignal = undefined;
      run.children = undefined;
      run.generation += 1;
    }

    // Rule 2: the fields given; the wait fields are cleared unless rule 3 or 8 sets them again.
    if (patch.status !== undefined) run.status = patch.status;
    if (patch.state !== undefined) run.state = patch.state;
    if (patch.currentStep !== undefined) run.currentStep = patch.currentStep ?? undefined;
    if (patch.output !== undefined) run.output = patch.output ?? undefined;
    if (patch.error !== undefined) run.error = patch.error ? { ...patch.error } : undefined;
    for (const { index, step } of patch.steps ?? []) run.steps[index] = copyStep(step);
    if (patch.due !== undefined) run.dueAt = dueAt(patch.due, now);
    const lastEventSeq = this.append(runId, patch.events);
    if (!patch.keepInput) {
      run.nextInput = undefined;
      run.nextInputSignal = undefined;
    }
    run.waitSignals = undefined;
    run.waitUntil = undefined;
    // NOTE: like `waitSignals`, a children wait lasts until the run's next commit (a woken parent re-commits it).
    if (run.children) run.children.wait = undefined;

    // Rule 3: a signal wait, on any of several names.
    if (patch.wait) {
      const signal = this.takeQueued(runId, patch.wait.signals);
      if (signal) {
        run.status = 'running';
        run.nextInput = signal.payload;
        run.nextInputSignal = signal.name;
        consumedSignal = signal;
      } else {
        run.status = 'waiting';
        run.waitSignals = [...patch.wait.signals];
        run.waitUntil = patch.wait.timeoutMs !== undefined ? new Date(now + patch.wait.timeoutMs) : undefined;
        run.dueAt = run.waitUntil;
        release = true;
      }
    }

    // Rule 8: spawn, link and release children; wait for them or go on.
    if (patch.children) {
      childrenReady = this.applyChildren(run, patch.children, now, readyRuns);
      if (!childrenReady) release = true;
    }

    // Rule 4 (terminal) or rule 5 (a pending pause).
    let paused = false;
    if (isTerminal(run.status)) {
      run.dueAt = undefined;
      run.pauseRequested = false;
      run.cancelRequested = undefined;
      run.resumeStatus = undefined;
      run.finishedAt = new Date(now);
      this.signals.delete(runId);
      release = true;
      if (wasLive) this.childEnded(run, now, readyRuns);
    } else if (run.pauseRequested && !run.cancelRequested && run.status !== 'paused' && !patch.midStep) {
      if (!release || run.dueAt === undefined) {
        if (run.status !== 'waiting') run.dueAt = new Date(now);
      }
      run.resumeStatus = run.status;
      run.status = 'paused';
      run.pauseRequested = false;
      paused = true;
      release = true;
    }

    // Rule 6: a pending cancel.
    if (patch.clearCancel) run.cancelRequested = undefined;
    const cancel = run.cancelRequested && !isTerminal(run.status) ? { ...run.cancelRequested } : undefined;
    if (cancel) run.dueAt = new Date(now);

    // Rule F2: an ended run gives its slot back; with `scope: 'step'`, so does a released one.
    if (isTerminal(run.status) || (release && run.concurrency?.scope === 'step')) this.freeSlot(run);

    // Rule 7: the lease.
    if (release) clearLease(run);
    else run.leaseExpiresAt = new Date(now + patch.leaseMs);
    run.updatedAt = new Date(now);

    if (isTerminal(run.status)) this.emit({ type: 'finished', runId });
    else if (release && run.dueAt && run.dueAt.getTime() <= now && run.status !== 'paused') {
      this.emit({ type: 'ready', runId });
    }
    for (const other of readyRuns) this.emit({ type: 'ready', runId: other });
    return {
      ok: true,
      paused: paused || undefined,
      cancel,
      consumedSignal,
      ...(childrenReady ? { childrenReady } : {}),
      ...(lastEventSeq !== undefined ? { lastEventSeq } : {}),
    };
  }

  /**
   * Rule 8 of a commit by `parent`: (a) spawn new children and link parentless live ones, (b) release held children,
   * (c) count them, (d) decide whether the parent waits, (e) reset `failed`. Returns whether the parent need not wait
   * (`childrenReady`); pushes the children that became due to `readyRuns`.
   */
  private applyChildren(parent: StoredRun, patch: ChildrenPatch, now: number, readyRuns: string[]): boolean {
    // a. Spawn. An existing id is never replaced; only a parentless run is linked. c. An ended one counts as ended now
    // (it never ends again); a live one counts when it ends (rule 4), unless it is another parent's.
    let endedNow = 0;
    for (const spec of patch.spawn ?? []) {
      const existing = this.runs.get(spec.runId);
      if (!existing) {
        this.runs.set(spec.runId, newChildRun(spec, parent.runId, now));
        this.append(spec.runId, spec.events);
        if (!spec.held) readyRuns.push(spec.runId);
        continue;
      }
      // NOTE: an ended run is linked for listing (listRuns by parentRunId) too.
      if (existing.parentRunId === undefined && existing.runId !== parent.runId) existing.parentRunId = parent.runId;
      // Otherwise (already this run's child, another parent's child, or the parent itself): left as is.
      if (isTerminal(existing.status)) endedNow++;
    }

    // b. Release held children of this parent: pending and not due.
    for (const childId of patch.release ?? []) {
      const child = this.runs.get(childId);
      if (child && child.parentRunId === parent.runId && child.status === 'pending' && child.dueAt === undefined) {
        child.dueAt = new Date(now);
        readyRuns.push(childId);
      }
    }

    // c. Count, d. wait or go on, e. reset the failed flag.
    const children = (parent.children ??= { ended: 0, failed: false });
    children.ended += endedNow;
    const ready = children.ended >= patch.endedAtLeast || (patch.failFast && children.failed);
    children.failed = false;
    if (ready) {
      parent.status = 'running';
    } else {
      parent.status = 'waiting';
      children.wait = { endedAtLeast: patch.endedAtLeast, failFast: patch.failFast };
      // NOTE: a store that wakes parents in a second write (Redis) sets now + its recheck interval instead.
      parent.dueAt = undefined;
    }
    return ready;
  }

  /**
   * Rule 4, for a run that just ended: its parent's bookkeeping, in the same write. One more ended child, `failed` when
   * it did not complete, and the parent due now when it waits for its children and its condition now holds. A parent
   * that is gone, or keeps no children state (replaced, or restarted since), is left alone.
   */
  private childEnded(child: StoredRun, now: number, readyRuns: string[]): void {
    const parent = child.parentRunId !== undefined ? this.runs.get(child.parentRunId) : undefined;
    const children = parent?.children;
    if (!parent || !children) return;
    children.ended += 1;
    if (child.status !== 'completed') children.failed = true;
    const wait = children.wait;
    const waiting = parent.status === 'waiting' || (parent.status === 'paused' && parent.resumeStatus === 'waiting');
    if (wait && waiting && (children.ended >= wait.endedAtLeast || (wait.failFast && children.failed))) {
      parent.dueAt = new Date(now);
      // A paused parent is not claimable: `resume` sends its ready event.
      if (parent.status === 'waiting') readyRuns.push(parent.runId);
    }
  }

  async takeSignal(runId: string, token: string, names: readonly string[]): Promise<TakeSignalResult> {
    const run = this.leased(runId, token);
    if (!run) return { ok: false };
    const now = this.now();
    const signal = this.takeQueued(runId, names);
    if (signal) {
      run.status = 'running';
      run.nextInput = signal.payload;
      run.nextInputSignal = signal.name;
      run.waitSignals = undefined;
      run.waitUntil = undefined;
      run.updatedAt = new Date(now);
      return { ok: true, payload: signal.payload, signal: signal.name, timedOut: false };
    }
    return { ok: true, timedOut: run.waitUntil !== undefined && run.waitUntil.getTime() <= now };
  }

  /** Removes and returns the earliest sent queued signal named one of `names` (rule 3, `takeSignal`). */
  private takeQueued(runId: string, names: readonly string[]): Queued | undefined {
    const queue = this.signals.get(runId);
    const index = queue ? queue.findIndex((signal) => names.includes(signal.name)) : -1;
    if (index < 0) return undefined;
    const [signal] = queue!.splice(index, 1);
    return { name: signal.name, payload: signal.payload };
  }

  async sendSignal(runId: string, name: string, payload: string, event?: string, options?: SendSignalOptions): Promise<ControlResult> {
    const run = this.runs.get(runId);
    if (!run) return { outcome: 'not-found' };
    const id = options?.id;
    // NOTE: a repeated id is a noop even once the run has ended: the signal was accepted the first time.
    if (id !== undefined && this.signalIds.get(runId)?.has(id)) return { outcome: 'noop', status: run.status };
    if (isTerminal(run.status)) return { outcome: 'not-active', status: run.status };
    if (options?.maxQueued !== undefined && (this.signals.get(runId)?.length ?? 0) >= options.maxQueued) return { outcome: 'full', status: run.status };
    if (id !== undefined) {
      let ids = this.signalIds.get(runId);
      if (!ids) this.signalIds.set(runId, (ids = new Set()));
      ids.add(id);
    }
    let queue = this.signals.get(runId);
    if (!queue) this.signals.set(runId, (queue = []));
    queue.push({ name, payload });
    const eventSeq = event !== undefined ? this.append(runId, [event]) : undefined;
    if (run.waitSignals?.includes(name)) {
      run.dueAt = new Date(this.now());
      if (run.status === 'waiting') this.emit({ type: 'ready', runId });
    }
    return { outcome: 'ok', status: run.status, ...(eventSeq !== undefined ? { eventSeq } : {}) };
  }

  async getRunOutcomes(runIds: readonly string[]): Promise<RunOutcome[]> {
    const outcomes: RunOutcome[] = [];
    for (const runId of new Set(runIds)) {
      const run = this.runs.get(runId);
      if (!run) continue;
      const outcome: RunOutcome = { runId, status: run.status, held: run.status === 'pending' && run.dueAt === undefined };
      if (run.output !== undefined) outcome.output = run.output;
      if (run.error) outcome.error = { ...run.error };
      if (run.parentRunId !== undefined) outcome.parentRunId = run.parentRunId;
      if (run.children) outcome.childrenEnded = run.children.ended;
      outcomes.push(outcome);
    }
    return outcomes;
  }

  async control(runId: string, request: ControlRequest, event?: string): Promise<ControlResult> {
    const run = this.runs.get(runId);
    if (!run) return { outcome: 'not-found' };
    const status = run.status;
    const now = this.now();
    const liveLease = run.leaseExpiresAt !== undefined && run.leaseExpiresAt.getTime() > now;
    switch (request.action) {
      case 'pause': {
        if (isTerminal(status)) return { outcome: 'not-active', status };
        if (status === 'paused' || run.pauseRequested) return { outcome: 'noop', status };
        if (liveLease) {
          run.pauseRequested = true;
          this.emit({ type: 'control', runId });
        } else {
          // NOTE: the run keeps its due time (a start delay, a debounce, a sleep, a backoff, a blocked run's place),
          // except a run that was executing (its lease expired) is due at once, as a release makes it, and so is a run
          // of those statuses with none (a held child: as before, resuming it starts it).
          const dueNow = isDueOnRelease(status) && (run.leaseToken !== undefined || run.dueAt === undefined);
          run.resumeStatus = status;
          run.status = 'paused';
          clearLease(run);
          if (run.concurrency?.scope === 'step') this.freeSlot(run);
          if (dueNow) run.dueAt = new Date(now);
        }
        break;
      }
      case 'resume': {
        if (isTerminal(status)) return { outcome: 'not-active', status };
        if (status === 'paused') {
          run.status = run.resumeStatus ?? 'pending';
          run.resumeStatus = undefined;
          this.emit({ type: 'ready', runId });
        } else if (run.pauseRequested) {
          run.pauseRequested = false;
        } else return { outcome: 'noop', status };
        break;
      }
      case 'cancel': {
        if (status === 'cancelled' || status === 'compensating' || run.cancelRequested) return { outcome: 'noop', status };
        if (isTerminal(status)) return { outcome: 'not-active', status };
        run.cancelRequested = { compensate: request.compensate };
        run.pauseRequested = false;
        if (status === 'paused') {
          run.status = run.resumeStatus ?? 'pending';
          run.resumeStatus = undefined;
        }
        run.dueAt = new Date(now);
        this.emit({ type: liveLease ? 'control' : 'ready', runId });
        break;
      }
      case 'retry': {
        if (status !== 'failed') return { outcome: 'invalid-state', status };
        run.status = 'pending';
        run.error = undefined;
        run.finishedAt = undefined;
        if (request.nextInput !== undefined) {
          run.nextInput = request.nextInput;
          run.nextInputSignal = undefined;
        }
        run.dueAt = new Date(now);
        this.emit({ type: 'ready', runId });
        break;
      }
    }
    run.updatedAt = new Date(now);
    const eventSeq = event !== undefined ? this.append(runId, [event]) : undefined;
    return { outcome: 'ok', status, ...(eventSeq !== undefined ? { eventSeq } : {}) };
  }

  async countRuns(query: CountRunsQuery): Promise<Partial<Record<RunStatus, number>>> {
    const counts: Partial<Record<RunStatus, number>> = {};
    for (const run of this.runs.values()) {
      if (query.workflow !== undefined && run.workflow !== query.workflow) continue;
      counts[run.status] = (counts[run.status] ?? 0) + 1;
    }
    return counts;
  }

  async listSignals(runId: string): Promise<QueuedSignal[]> {
    const queue = this.signals.get(runId) ?? [];
    // Grouped by name, each name's signals in the order they were sent.
    const names = [...new Set(queue.map((signal) => signal.name))];
    return names.flatMap((name) => queue.filter((signal) => signal.name === name).map((signal) => ({ name, payload: signal.payload })));
  }

  async summarizeLiveRuns(): Promise<LiveRunGroup[]> {
    const groups = new Map<string, LiveRunGroup>();
    for (const run of this.runs.values()) {
      if (!isLive(run.status)) continue;
      const key = JSON.stringify([run.workflow, run.version, run.pipeline ?? null, run.currentStep ?? null]);
      let group = groups.get(key);
      if (!group) {
        group = { workflow: run.workflow, version: run.version, count: 0, runIds: [] };
        if (run.pipeline !== undefined) group.pipeline = run.pipeline;
        if (run.currentStep !== undefined) group.currentStep = run.currentStep;
        groups.set(key, group);
      }
      group.count++;
      if (group.runIds.length < LIVE_GROUP_SAMPLE) group.runIds.push(run.runId);
    }
    return [...groups.values()];
  }

  async savePipeline(fingerprint: string, body: string): Promise<void> {
    if (!this.pipelines.has(fingerprint)) this.pipelines.set(fingerprint, body);
  }

  async getPipelines(fingerprints: readonly string[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const fp of fingerprints) {
      const body = this.pipelines.get(fp);
      if (body !== undefined) out[fp] = body;
    }
    return out;
  }

  async purge(statuses: readonly RunStatus[], olderThanMs: number): Promise<number> {
    const cutoff = this.now() - olderThanMs;
    const wanted = new Set(statuses);
    let count = 0;
    for (const [runId, run] of this.runs) {
      if (isTerminal(run.status) && wanted.has(run.status) && run.finishedAt && run.finishedAt.getTime() < cutoff) {
        this.runs.delete(runId);
        this.forget(runId);
        count++;
      }
    }
    return count;
  }

  /** Deletes what is kept with a run besides the run itself: queued signals, signal ids, history (purge, replace). */
  private forget(runId: string): void {
    this.signals.delete(runId);
    this.signalIds.delete(runId);
    this.histories.delete(runId);
  }

  async publish(body: string): Promise<void> {
    if (Buffer.byteLength(body, 'utf8') > PUBLISH_MAX_BYTES) {
      throw new InvalidArgumentError(`A published message is at most ${PUBLISH_MAX_BYTES} bytes (got ${Buffer.byteLength(body, 'utf8')}).`);
    }
    this.emit({ type: 'message', body });
  }

  async subscribe(listener: (event: StoreEvent) => void): Promise<() => Promise<void>> {
    this.listeners.add(listener);
    return async () => {
      this.listeners.delete(listener);
    };
  }
}

/** A child run created by its parent's commit (rule 8a): pending, due now unless held, generation 1. */
function newChildRun(spec: NewChildRun, parentRunId: string, now: number): StoredRun {
  const child: StoredRun = {
    runId: spec.runId,
    workflow: spec.workflow,
    version: spec.version,
    status: 'pending',
    input: spec.input,
    state: spec.state,
    steps: [],
    pauseRequested: false,
    dueAt: spec.held ? undefined : new Date(now),
    createdAt: new Date(now),
    updatedAt: new Date(now),
    generation: 1,
    parentRunId,
    priority: 0,
  };
  if (spec.pipeline !== undefined) child.pipeline = spec.pipeline;
  return child;
}

function dueAt(due: DueSpec, now: number): Date | undefined {
  if (!due) return undefined;
  return 'at' in due ? new Date(due.at.getTime()) : new Date(now + due.delayMs);
}

function clearLease(run: StoredRun): void {
  run.leaseOwner = undefined;
  run.leaseToken = undefined;
  run.leaseExpiresAt = undefined;
}

/** The claim filter: runs whose (workflow, version) is one of the pairs (everything without a filter). */
function acceptsRun(workflows: readonly WorkflowRef[] | undefined): (run: StoredRun) => boolean {
  if (!workflows) return () => true;
  const keys = new Set(workflows.map((ref) => `${ref.version}:${ref.workflow}`));
  return (run) => keys.has(`${run.version}:${run.workflow}`);
}
