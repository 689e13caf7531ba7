import { randomUUID } from 'node:crypto';
import type {
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
  NewRun,
  LiveRunGroup,
  QueuedSignal,
  RenewResult,
  RunPatch,
  RunStatus,
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

function copyStep(step: StoredStep): StoredStep {
  return step.heartbeat ? { ...step, heartbeat: { ...step.heartbeat } } : { ...step };
}

/** A run's history: the events kept (at most RUN_HISTORY_LIMIT) and the last seq given. */
interface History {
  events: StoredRunEvent[];
  seq: number;
}

function copyRun(run: StoredRun): StoredRun {
  return {
    ...run,
    steps: run.steps.map(copyStep),
    error: run.error ? { ...run.error } : undefined,
    cancelRequested: run.cancelRequested ? { ...run.cancelRequested } : undefined,
  };
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
  private readonly signals = new Map<string, Map<string, string[]>>();
  private readonly histories = new Map<string, History>();
  private readonly pipelines = new Map<string, string>();
  private readonly listeners = new Set<(event: StoreEvent) => void>();

  async init(): Promise<void> {}

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
    if (existing && options.onConflict === 'keep') return { created: false, run: copyRun(existing) };
    if (existing) {
      this.signals.delete(input.runId);
      this.histories.delete(input.runId);
    }
    const now = new Date(this.now());
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
      dueAt: now,
      createdAt: now,
      updatedAt: now,
      generation: existing ? existing.generation + 1 : 1,
    };
    if (input.pipeline !== undefined) run.pipeline = input.pipeline;
    if (options.lease) {
      run.leaseOwner = options.lease.owner;
      run.leaseToken = randomUUID();
      run.leaseExpiresAt = new Date(now.getTime() + options.lease.leaseMs);
    }
    this.runs.set(run.runId, run);
    const lastEventSeq = this.append(run.runId, input.events);
    if (existing) this.emit({ type: 'control', runId: run.runId });
    if (!options.lease) this.emit({ type: 'ready', runId: run.runId });
    return { created: true, run: copyRun(run), ...(lastEventSeq !== undefined ? { lastEventSeq } : {}) };
  }

  async getRun(runId: string): Promise<StoredRun | undefined> {
    const run = this.runs.get(runId);
    return run ? copyRun(run) : undefined;
  }

  async listRuns(query: ListRunsQuery): Promise<StoredRun[]> {
    const statuses = query.statuses ? new Set(query.statuses) : undefined;
    const after = query.after;
    const matches = [...this.runs.values()].filter((run) => {
      if (query.workflow !== undefined && run.workflow !== query.workflow) return false;
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
    return matches.slice(0, query.limit).map(copyRun);
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
      .sort((a, b) => a.dueAt!.getTime() - b.dueAt!.getTime())
      .slice(0, limit);
    return due.map((run) => this.claim(run, lease, now));
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
      .slice(0, limit);
    return owned.map((run) => this.claim(run, lease, now));
  }

  async claimRun(runId: string, lease: LeaseRequest, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun | undefined> {
    const run = this.runs.get(runId);
    const now = this.now();
    if (!run || !this.isClaimable(run, now) || !acceptsRun(workflows)(run)) return undefined;
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
    if (isDueOnRelease(run.status)) run.dueAt = new Date(now);
    run.updatedAt = new Date(now);
    this.emit({ type: 'ready', runId });
  }

  async commit(runId: string, token: string, patch: RunPatch): Promise<CommitResult> {
    const run = this.leased(runId, token);
    if (!run) return { ok: false };
    const now = this.now();
    let release = patch.release === true;
    let consumedSignal: { payload: string } | undefined;

    if (patch.status !== undefined) run.status = patch.status;
    if (patch.state !== undefined) run.state = patch.state;
    if (patch.currentStep !== undefined) run.currentStep = patch.currentStep ?? undefined;
    if (patch.output !== undefined) run.output = patch.output ?? undefined;
    if (patch.error !== undefined) run.error = patch.error ? { ...patch.error } : undefined;
    for (const { index, step } of patch.steps ?? []) run.steps[index] = copyStep(step);
    if (patch.due !== undefined) run.dueAt = dueAt(patch.due, now);
    const lastEventSeq = this.append(runId, patch.events);
    if (!patch.keepInput) run.nextInput = undefined;
    run.waitSignal = undefined;
    run.waitUntil = undefined;

    if (patch.wait) {
      const payload = this.popSignal(runId, patch.wait.signal);
      if (payload !== undefined) {
        run.status = 'running';
        run.nextInput = payload;
        consumedSignal = { payload };
      } else {
        run.status = 'waiting';
        run.waitSignal = patch.wait.signal;
        run.waitUntil = patch.wait.timeoutMs !== undefined ? new Date(now + patch.wait.timeoutMs) : undefined;
        run.dueAt = run.waitUntil;
        release = true;
      }
    }

    let paused = false;
    if (isTerminal(run.status)) {
      run.dueAt = undefined;
      run.pauseRequested = false;
      run.cancelRequested = undefined;
      run.resumeStatus = undefined;
      run.finishedAt = new Date(now);
      this.signals.delete(runId);
      release = true;
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

    if (patch.clearCancel) run.cancelRequested = undefined;
    const cancel = run.cancelRequested && !isTerminal(run.status) ? { ...run.cancelRequested } : undefined;
    if (cancel) run.dueAt = new Date(now);

    if (release) clearLease(run);
    else run.leaseExpiresAt = new Date(now + patch.leaseMs);
    run.updatedAt = new Date(now);

    if (isTerminal(run.status)) this.emit({ type: 'finished', runId });
    else if (release && run.dueAt && run.dueAt.getTime() <= now && run.status !== 'paused') {
      this.emit({ type: 'ready', runId });
    }
    return { ok: true, paused: paused || undefined, cancel, consumedSignal, ...(lastEventSeq !== undefined ? { lastEventSeq } : {}) };
  }

  async takeSignal(runId: string, token: string, name: string): Promise<TakeSignalResult> {
    const run = this.leased(runId, token);
    if (!run) return { ok: false };
    const now = this.now();
    const payload = this.popSignal(runId, name);
    if (payload !== undefined) {
      run.status = 'running';
      run.nextInput = payload;
      run.waitSignal = undefined;
      run.waitUntil = undefined;
      run.updatedAt = new Date(now);
      return { ok: true, payload, timedOut: false };
    }
    return { ok: true, timedOut: run.waitUntil !== undefined && run.waitUntil.getTime() <= now };
  }

  private popSignal(runId: string, name: string): string | undefined {
    const queue = this.signals.get(runId)?.get(name);
    if (!queue || queue.length === 0) return undefined;
    return queue.shift();
  }

  async sendSignal(runId: string, name: string, payload: string, event?: string): Promise<ControlResult> {
    const run = this.runs.get(runId);
    if (!run) return { outcome: 'not-found' };
    if (isTerminal(run.status)) return { outcome: 'not-active', status: run.status };
    let byName = this.signals.get(runId);
    if (!byName) this.signals.set(runId, (byName = new Map()));
    let queue = byName.get(name);
    if (!queue) byName.set(name, (queue = []));
    queue.push(payload);
    const eventSeq = event !== undefined ? this.append(runId, [event]) : undefined;
    if (run.waitSignal === name) {
      run.dueAt = new Date(this.now());
      if (run.status === 'waiting') this.emit({ type: 'ready', runId });
    }
    return { outcome: 'ok', status: run.status, ...(eventSeq !== undefined ? { eventSeq } : {}) };
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
          run.resumeStatus = status;
          run.status = 'paused';
          clearLease(run);
          // NOTE: a waiting or sleeping run keeps its wake-up time; a run that was executing is due at once.
          if (isDueOnRelease(status)) run.dueAt = new Date(now);
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
        if (request.nextInput !== undefined) run.nextInput = request.nextInput;
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
    const byName = this.signals.get(runId);
    if (!byName) return [];
    return [...byName].flatMap(([name, queue]) => queue.map((payload) => ({ name, payload })));
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
        this.signals.delete(runId);
        this.histories.delete(runId);
        count++;
      }
    }
    return count;
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
