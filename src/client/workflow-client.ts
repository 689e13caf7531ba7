import type { Type } from '@nestjs/common';
import {
  InvalidArgumentError,
  InvalidRunStateError,
  ResultTimeoutError,
  UnknownWorkflowError,
  RunNotActiveError,
  SignalQueueFullError,
  RunNotFoundError,
  WorkflowCancelledError,
  WorkflowFailedError,
} from '../errors/errors.js';
import { parseDuration } from '../definition/duration.js';
import { ScheduleClient } from './schedule-client.js';
import type { WorkflowRegistry } from '../definition/workflow.registry.js';
import type { WorkflowEngine } from '../engine/workflow-engine.js';
import { assertRunId, assertSignalId, assertSignalName } from '../engine/argument-checks.js';
import { corruptRunError, errorMessage } from '../engine/error-text.js';
import { decodeEvent, type RunEvent } from '../engine/run-history.js';
import type { CompatibilityReport } from '../engine/compatibility.js';
import type { ControlResult, RunStatus, StoredRun } from '../store/workflow-store.interface.js';
import { RUN_STATUS_SET, isTerminal } from '../store/run-state-machine.js';
import { userKeyOf } from '../engine/flow-control.js';
import type { ListRunsFilter, RunInfo, StartOptions, WorkflowHandle } from './run-info.interface.js';
import type { HandleOutput, Inferred, RunArgs, RunInput, RunOutput, WorkflowClass } from './workflow-types.js';

const CURSOR_VERSION = 'c1';

function timeoutMs(value: number | string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError(`${what} must be ms or a duration string such as '30s' (got ${JSON.stringify(value)}).`);
  return ms;
}

/**
 * Starts and controls workflow runs. Inject it anywhere (`constructor(private readonly workflows: WorkflowClient)`).
 */
export class WorkflowClient {
  constructor(
    private readonly engine: WorkflowEngine,
    private readonly registry: WorkflowRegistry,
  ) {}

  /** Durable schedules: `create`, `update`, `pause`, `resume`, `delete`, `trigger`, `describe`, `list` (see ScheduleClient). */
  get schedules(): ScheduleClient {
    return ScheduleClient.for(this.engine, this.registry, (runId) => this.getHandle(runId));
  }

  /**
   * Starts a run of a workflow (its class or name). With an `id` that exists, `conflictPolicy` decides:
   * `use-existing` (default) returns its handle, `fail` throws RunAlreadyExistsError, `terminate-existing` cancels it
   * (no compensation) and starts anew under that id.
   *
   * Types: with a class, `input` is checked against the workflow's input type and the handle's `result()` has its
   * output type (see `WorkflowTypes`); by name, both are `unknown`. `start<Input, Output>(…)` states them explicitly.
   */
  async start<Input = Inferred, Output = Inferred, W extends WorkflowClass | string = WorkflowClass | string>(
    workflow: W,
    ...args: RunArgs<RunInput<Input, W>, StartOptions>
  ): Promise<WorkflowHandle<RunOutput<Output, W>>> {
    const [input, options = {}] = args as [unknown, StartOptions?];
    if (options.version !== undefined && !(Number.isInteger(options.version) && options.version >= 1)) {
      throw new InvalidArgumentError(`start version must be an integer >= 1 (got ${JSON.stringify(options.version)}).`);
    }
    const def = this.registry.resolve(workflow as Type | string, options.version);
    // NOTE: the run stores the trace context of this span (captured inside startRun): its steps are its children.
    const { runId } = await this.engine.instrumentation.clientCall(
      `cairn.start ${def.name}`,
      { 'cairn.workflow': def.name, 'cairn.run_id': options.id },
      (span) =>
        this.engine.startRun(def, input, options).then((started) => {
          span.setAttribute('cairn.run_id', started.runId);
          span.setAttribute('cairn.created', started.created);
          return started;
        }),
    );
    return this.getHandle(runId) as WorkflowHandle<RunOutput<Output, W>>;
  }

  /**
   * Starts a run and waits for its output (`timeout`: ResultTimeoutError, the run goes on). Typed like `start`:
   * resolves the workflow's output type.
   */
  async execute<Input = Inferred, Output = Inferred, W extends WorkflowClass | string = WorkflowClass | string>(
    workflow: W,
    ...args: RunArgs<RunInput<Input, W>, StartOptions & { timeout?: number | string }>
  ): Promise<RunOutput<Output, W>> {
    const [input, options = {}] = args as [unknown, (StartOptions & { timeout?: number | string })?];
    const { timeout, ...startOptions } = options;
    const ms = timeoutMs(timeout, 'timeout');
    const handle = await this.start<unknown, unknown>(workflow as WorkflowClass | string, input, startOptions);
    return (await handle.result({ timeout: ms })) as RunOutput<Output, W>;
  }

  /**
   * A handle to a run (not checked until used). `getHandle<typeof OrderWorkflow>(id)` types `result()` with that
   * workflow's output type; `getHandle<Shipment>(id)` with `Shipment`.
   */
  getHandle<T = unknown>(runId: string): WorkflowHandle<HandleOutput<T>> {
    assertRunId(runId);
    return {
      runId,
      result: (options) => this.result<HandleOutput<T>>(runId, options?.timeout),
      describe: async () => {
        const info = await this.describe(runId);
        if (!info) throw new RunNotFoundError(runId);
        return info;
      },
    };
  }

  /** A run's state, or undefined when no run has this id. */
  async describe(runId: string): Promise<RunInfo | undefined> {
    assertRunId(runId);
    const run = await this.engine.getRun(runId);
    return run ? this.toRunInfo(run) : undefined;
  }

  /**
   * Sends a durable signal; queued per run and name, first in first out. With `id`, a repeat of that id for that run
   * is ignored (even after the first was consumed): retry a webhook's delivery with its event id safely.
   */
  async signal(runId: string, name: string, payload?: unknown, options: { id?: string } = {}): Promise<void> {
    assertRunId(runId);
    assertSignalName(name);
    if (options.id !== undefined) assertSignalId(options.id);
    await this.engine.instrumentation.clientCall(`cairn.signal ${name}`, { 'cairn.run_id': runId, 'cairn.signal': name }, async () =>
      this.check(runId, await this.engine.sendSignal(runId, name, payload, undefined, options.id === undefined ? {} : { id: options.id }), 'signal'),
    );
  }

  /** Cancels a run: aborts its running step, compensates completed steps (unless `compensate: false`), ends `cancelled`. */
  async cancel(runId: string, options: { compensate?: boolean } = {}): Promise<void> {
    assertRunId(runId);
    const compensate = options.compensate ?? true;
    await this.engine.instrumentation.clientCall('cairn.cancel', { 'cairn.run_id': runId, 'cairn.compensate': compensate }, async () =>
      this.check(runId, await this.engine.control(runId, { action: 'cancel', compensate }), 'cancel'),
    );
  }

  /** Pauses a run at its next step boundary (at once when it is not in a step). */
  async pause(runId: string): Promise<void> {
    assertRunId(runId);
    await this.engine.instrumentation.clientCall('cairn.pause', { 'cairn.run_id': runId }, async () =>
      this.check(runId, await this.engine.control(runId, { action: 'pause' }), 'pause'),
    );
  }

  /** Resumes a paused run where it was. */
  async resume(runId: string): Promise<void> {
    assertRunId(runId);
    await this.engine.instrumentation.clientCall('cairn.resume', { 'cairn.run_id': runId }, async () =>
      this.check(runId, await this.engine.control(runId, { action: 'resume' }), 'resume'),
    );
  }

  /** Re-runs a failed run's failed step (or failed compensation) with a fresh attempt budget, and goes on. */
  async retry(runId: string): Promise<void> {
    assertRunId(runId);
    await this.engine.instrumentation.clientCall('cairn.retry', { 'cairn.run_id': runId }, async () => {
      const res = await this.engine.control(runId, { action: 'retry' });
      if (res.outcome === 'invalid-state') {
        throw new InvalidRunStateError(runId, res.status!, `Cannot retry run "${runId}": only failed runs can be retried (status "${res.status}").`);
      }
      this.check(runId, res, 'retry');
    });
  }

  /**
   * A failed run (failed at a step, not at a compensation): its failed step is recorded completed with `output` (the
   * history says so), and the run goes on with the next step, or completes with `output` after the last one.
   * @throws RunNotFoundError; InvalidRunStateError when the run is not failed at a step; PayloadTooLargeError /
   *   SerializationError for an output that cannot be stored
   */
  async skip(runId: string, options: { output: unknown }): Promise<void> {
    assertRunId(runId);
    if (!options || typeof options !== 'object' || !('output' in options)) {
      throw new InvalidArgumentError('skip(runId, { output }) needs the output to record for the failed step.');
    }
    await this.engine.instrumentation.clientCall('cairn.skip', { 'cairn.run_id': runId }, async () => {
      const res = await this.engine.skipRun(runId, options.output);
      if (res.outcome === 'invalid-state') {
        throw new InvalidRunStateError(
          runId,
          res.status!,
          `Cannot skip a step of run "${runId}": only a run that failed at a step can skip it (status "${res.status}"; a run that failed in a compensation can only be retried).`,
        );
      }
      this.check(runId, res, 'skip');
    });
  }

  /**
   * A new run of the same workflow that reuses the recorded outputs of the steps of `runId` before `fromStep`, and
   * starts at `fromStep` (with `input` as the run's input when given, else the source's). Any run can be forked.
   * @throws RunNotFoundError; InvalidArgumentError for a step the workflow lacks or the run never reached;
   *   RunAlreadyExistsError when `id` exists
   */
  async fork<Output = unknown>(runId: string, options: { fromStep: string; id?: string; input?: unknown }): Promise<WorkflowHandle<Output>> {
    assertRunId(runId);
    // NOTE: like start(), the new run stores the trace context of this span.
    const forked = await this.engine.instrumentation.clientCall('cairn.fork', { 'cairn.run_id': runId, 'cairn.from_step': options?.fromStep }, async (span) => {
      const source = await this.engine.getRun(runId);
      if (!source) throw new RunNotFoundError(runId);
      const def = this.registry.get(source.workflow, source.version);
    if (!def) throw new UnknownWorkflowError(`${source.workflow}" version "${source.version}`, this.registry.names());
      span.setAttribute('cairn.workflow', def.name);
      const id = await this.engine.forkRun(def, source, {
        fromStep: options?.fromStep,
        id: options?.id,
        input: options && 'input' in options ? { value: options.input } : undefined,
      });
      span.setAttribute('cairn.forked_run_id', id);
      return id;
    });
    return this.getHandle(forked) as WorkflowHandle<Output>;
  }

  /**
   * Compares the runs in flight with this app's workflow definitions: the runs that could not continue (their next
   * step is gone, or steps they completed no longer exist) and the live runs of versions this app does not register.
   * Works from the store's aggregate of live runs (no read per run). The module runs it at bootstrap too
   * (`versioning.onIncompatible`).
   */
  checkCompatibility(): Promise<CompatibilityReport> {
    return this.engine.checkCompatibility();
  }

  /** Runs newest first (createdAt desc, then runId desc), a page at a time. */
  async list(filter: ListRunsFilter = {}): Promise<{ runs: RunInfo[]; cursor?: string }> {
    const limit = filter.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new InvalidArgumentError(`list limit must be an integer from 1 to 1000 (got ${String(filter.limit)}).`);
    }
    let statuses: RunStatus[] | undefined;
    if (filter.status !== undefined) {
      statuses = Array.isArray(filter.status) ? filter.status : [filter.status];
      for (const s of statuses) {
        if (!RUN_STATUS_SET.has(s)) throw new InvalidArgumentError(`Unknown run status ${JSON.stringify(s)} in list filter.`);
      }
    }
    if (filter.workflow !== undefined && typeof filter.workflow !== 'string') {
      throw new InvalidArgumentError('list filter workflow must be a workflow name (string).');
    }
    const after = filter.cursor !== undefined ? decodeCursor(filter.cursor) : undefined;
    const instant = (value: Date | undefined, name: string) => {
      if (value !== undefined && !(value instanceof Date && Number.isFinite(value.getTime()))) {
        throw new InvalidArgumentError(`list filter ${name} must be a valid Date.`);
      }
      return value;
    };
    const createdFrom = instant(filter.createdFrom, 'createdFrom');
    const createdTo = instant(filter.createdTo, 'createdTo');
    if (filter.parentRunId !== undefined) assertRunId(filter.parentRunId);
    const runs = await this.engine.listRuns({
      workflow: filter.workflow,
      statuses,
      limit: limit + 1,
      after,
      createdFrom,
      createdTo,
      ...(filter.parentRunId !== undefined ? { parentRunId: filter.parentRunId } : {}),
    });
    const page = runs.slice(0, limit);
    const last = page[page.length - 1];
    return {
      runs: page.map((r) => this.toRunInfo(r)),
      cursor: runs.length > limit && last ? encodeCursor(last) : undefined,
    };
  }

  /**
   * A page of a run's history, oldest first: every attempt, failure, retry, wait, recovery and control request (see
   * `RunEvent`). `limit` 1–1000, default 100; pass the returned `cursor` to get the next page (the last page has none).
   * A run keeps its newest 1,000 events (a gap in `seq` shows where older ones were dropped).
   * @throws RunNotFoundError when no run has this id
   */
  async history(runId: string, options: { limit?: number; cursor?: string } = {}): Promise<{ events: RunEvent[]; cursor?: string }> {
    assertRunId(runId);
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new InvalidArgumentError(`history limit must be an integer from 1 to 1000 (got ${String(options.limit)}).`);
    }
    const afterSeq = options.cursor !== undefined ? decodeHistoryCursor(options.cursor) : undefined;
    const stored = await this.engine.listEvents(runId, { afterSeq, limit: limit + 1 });
    if (stored.length === 0 && afterSeq === undefined && !(await this.engine.getRun(runId))) throw new RunNotFoundError(runId);
    const page = stored.slice(0, limit);
    return {
      events: page.map(decodeEvent),
      cursor: stored.length > limit ? encodeHistoryCursor(page[page.length - 1].seq) : undefined,
    };
  }

  private async result<Output>(runId: string, timeout?: number | string): Promise<Output> {
    const ms = timeoutMs(timeout, 'result timeout');
    const res = await this.engine.waitForEnd(runId, ms);
    if (res.timedOut) throw new ResultTimeoutError(runId, ms ?? 0);
    const status = res.run?.status ?? res.finished!.status;
    const error = res.run?.error ?? res.finished?.error;
    const output = res.run ? res.run.output : res.finished?.output;
    switch (status) {
      case 'completed':
        try {
          return this.engine.decode<Output>(output);
        } catch (cause) {
          throw corruptRunError(runId, `the output cannot be decoded (${errorMessage(cause)})`);
        }
      case 'cancelled':
        throw new WorkflowCancelledError(runId);
      default:
        throw new WorkflowFailedError(runId, error ?? { name: 'Error', message: 'unknown error' }, status === 'compensated' ? 'compensated' : 'failed');
    }
  }

  private check(runId: string, res: ControlResult, action: string): void {
    if (res.outcome === 'not-found') throw new RunNotFoundError(runId);
    if (res.outcome === 'not-active') throw new RunNotActiveError(runId, res.status ?? 'ended', action);
    if (res.outcome === 'full') throw new SignalQueueFullError(runId, this.engine.maxQueuedSignals);
  }

  /**
   * The public view of a stored run. Never throws: a value that cannot be decoded is left out and the run's `error`
   * (when it has none yet) says which one, as `CorruptRunError`.
   */
  private toRunInfo(run: StoredRun): RunInfo {
    const damaged: string[] = run.corrupt ? [run.corrupt] : [];
    const decode = (text: string | undefined, what: string): { ok: boolean; value?: unknown } => {
      try {
        return { ok: true, value: this.engine.decode(text) };
      } catch (error) {
        // NOTE: a store that reported the damage (run.corrupt) left placeholders: their parse errors would only add noise.
        if (!run.corrupt) damaged.push(`${what} (${errorMessage(error)})`);
        return { ok: false };
      }
    };
    let steps = run.steps;
    const last = steps[steps.length - 1];
    // NOTE: a run paused at a step boundary has its next step written as running, but not started: not reached yet.
    if (run.status === 'paused' && last && last.status === 'running' && last.attempts === 0 && last.error === undefined) {
      steps = steps.slice(0, -1);
    }
    const input = decode(run.input, 'the input');
    const info: RunInfo = {
      runId: run.runId,
      workflow: run.workflow,
      version: run.version,
      status: run.status,
      input: input.value,
      steps: steps.map((step, i) => {
        const out: RunInfo['steps'][number] = { name: step.name, status: step.status, attempts: step.attempts };
        if (step.output !== undefined) {
          const decoded = decode(step.output, `the output of step "${step.name}" (entry ${i})`);
          if (decoded.ok) out.output = decoded.value;
        }
        if (step.startedAt) out.startedAt = step.startedAt;
        if (step.finishedAt) out.finishedAt = step.finishedAt;
        if (step.error !== undefined) out.error = step.error;
        if (step.heartbeat) {
          out.heartbeat = { at: step.heartbeat.at };
          if (step.heartbeat.details !== undefined) {
            const details = decode(step.heartbeat.details, `the heartbeat of step "${step.name}" (entry ${i})`);
            if (details.ok) out.heartbeat.details = details.value;
          }
        }
        return out;
      }),
      createdAt: run.createdAt,
      updatedAt: run.updatedAt,
      generation: run.generation ?? 1,
      priority: run.priority ?? 0,
    };
    if (run.parentRunId !== undefined) info.parentRunId = run.parentRunId;
    const concurrencyKey = userKeyOf(run.concurrency?.key);
    if (concurrencyKey !== undefined) info.concurrencyKey = concurrencyKey;
    // NOTE: when a live run becomes claimable (a delay, a sleep, a retry's wait-out, a rate limit's window).
    if (run.dueAt && !isTerminal(run.status) && run.status !== 'paused') info.dueAt = run.dueAt;
    if (run.blockedBy) info.blockedBy = run.blockedBy;
    if (run.output !== undefined) {
      const output = decode(run.output, 'the output');
      if (output.ok) info.output = output.value;
    }
    if (run.error) info.error = run.error;
    else if (damaged.length > 0) {
      const error = corruptRunError(run.runId, damaged.join('; '));
      info.error = { name: error.name, message: error.message, ...(run.currentStep !== undefined ? { step: run.currentStep } : {}) };
    }
    if (run.currentStep !== undefined) info.currentStep = run.currentStep;
    if (run.finishedAt) info.finishedAt = run.finishedAt;
    return info;
  }
}

function encodeCursor(run: StoredRun): string {
  return Buffer.from(JSON.stringify([CURSOR_VERSION, run.createdAt.getTime(), run.runId])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; runId: string } {
  const invalid = () => new InvalidArgumentError('Invalid list cursor: pass the cursor returned by the previous list() call unchanged.');
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > 2048) throw invalid();
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (!Array.isArray(parsed) || parsed.length !== 3 || parsed[0] !== CURSOR_VERSION) throw invalid();
    const [, t, runId] = parsed as [string, unknown, unknown];
    if (typeof t !== 'number' || !Number.isFinite(t) || typeof runId !== 'string' || runId.length === 0 || runId.length > 255) throw invalid();
    return { createdAt: new Date(t), runId };
  } catch {
    throw invalid();
  }
}

const HISTORY_CURSOR = 'h1.';

function encodeHistoryCursor(seq: number): string {
  return `${HISTORY_CURSOR}${seq}`;
}

function decodeHistoryCursor(cursor: string): number {
  const seq = typeof cursor === 'string' && cursor.startsWith(HISTORY_CURSOR) ? Number(cursor.slice(HISTORY_CURSOR.length)) : NaN;
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new InvalidArgumentError('Invalid history cursor: pass the cursor returned by the previous history() call unchanged.');
  }
  return seq;
}
