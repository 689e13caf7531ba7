import { Inject, Injectable, NotFoundException } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { WorkflowClient } from '../client/workflow-client.js';
import type { RunInfo } from '../client/run-info.interface.js';
import type { WorkflowDefinition } from '../definition/workflow-definition.interface.js';
import { WorkflowRegistry } from '../definition/workflow.registry.js';
import { errorMessage } from '../engine/error-text.js';
import type { RunEvent } from '../engine/run-history.js';
import type { WorkflowEngine } from '../engine/workflow-engine.js';
import { RunNotFoundError } from '../errors/errors.js';
import { WORKFLOW_ENGINE } from '../nest/durable-execution.constants.js';
import { LIVE_STATUSES, RUN_STATUSES } from '../store/run-state-machine.js';
import type { RunStatus } from '../store/workflow-store.interface.js';
import type {
  AttemptView,
  ChildrenView,
  HistoryEventView,
  OperatorAction,
  RunDetail,
  RunSummary,
  RunsFilter,
  RunsPage,
  ShownValue,
  StepView,
  WorkflowView,
} from './dashboard-api.interface.js';
import type { ValueRef } from './dashboard-request.parser.js';
import { CHILDREN_SHOWN, DASHBOARD_OPTIONS, HISTORY_PAGE_SIZE, LIST_ERROR_CHARS, VALUE_FULL_CHARS, VALUE_PREVIEW_CHARS } from './dashboard.constants.js';
import type { ResolvedDashboardOptions } from './dashboard.options.js';
import { ValuePresenter } from './dashboard-values.js';

/** Error messages of history events are at most 2,000 characters: shown whole. */
const EVENT_MESSAGE_CHARS = 4_000;

/**
 * Everything the pages and the JSON API read: runs, counts, a run's detail, whole values, workflows. Values leave it
 * redacted and cut (see {@link ValuePresenter}).
 */
@Injectable()
export class DashboardReader {
  private readonly values: ValuePresenter;
  private registry?: WorkflowRegistry;

  constructor(
    private readonly client: WorkflowClient,
    @Inject(WORKFLOW_ENGINE) private readonly engine: WorkflowEngine,
    private readonly moduleRef: ModuleRef,
    @Inject(DASHBOARD_OPTIONS) private readonly options: ResolvedDashboardOptions,
  ) {
    this.values = new ValuePresenter(options.redact);
  }

  /** The workflows registered in this app. */
  definitions(): WorkflowDefinition[] {
    return this.workflowRegistry().all();
  }

  /** A page of runs and the counts per status of the filter's workflow. */
  async runs(filter: RunsFilter): Promise<RunsPage> {
    const counts = this.counts(filter.workflow);
    let runs: RunInfo[];
    let cursor: string | undefined;
    if (filter.runId !== undefined) {
      const info = await this.client.describe(filter.runId);
      runs = info && matches(info, filter) ? [info] : [];
    } else {
      ({ runs, cursor } = await this.client.list({
        workflow: filter.workflow,
        status: filter.statuses,
        limit: filter.limit,
        cursor: filter.cursor,
        createdFrom: filter.createdFrom,
        createdTo: filter.createdTo,
        ...(filter.parentRunId !== undefined ? { parentRunId: filter.parentRunId } : {}),
      }));
    }
    return { runs: runs.map((run) => this.summary(run)), ...(cursor !== undefined ? { cursor } : {}), counts: await counts };
  }

  /** Runs per status (every status, 0 included), of one workflow or all. */
  async counts(workflow?: string): Promise<Record<RunStatus, number>> {
    const counts = await this.engine.countRuns(workflow);
    return Object.fromEntries(RUN_STATUSES.map((s) => [s, counts[s] ?? 0])) as Record<RunStatus, number>;
  }

  /** @throws RunNotFoundError */
  async run(runId: string): Promise<RunDetail> {
    const info = await this.client.describe(runId);
    if (!info) throw new RunNotFoundError(runId);
    const [page, queued, children] = await Promise.all([
      this.client.history(runId, { limit: HISTORY_PAGE_SIZE }),
      this.engine.listSignals(runId),
      this.client.list({ parentRunId: runId, limit: CHILDREN_SHOWN + 1 }),
    ]);
    const where = { runId, workflow: info.workflow };
    const budget = VALUE_PREVIEW_CHARS;
    const history = page.events.map((event) => this.historyEvent(event, where));
    const forkSteps = this.forkSteps(info);
    const detail: RunDetail = {
      runId,
      workflow: info.workflow,
      version: info.version,
      status: info.status,
      ...(info.currentStep !== undefined ? { currentStep: info.currentStep } : {}),
      createdAt: info.createdAt,
      updatedAt: info.updatedAt,
      ...(info.finishedAt ? { finishedAt: info.finishedAt } : {}),
      input: this.values.show(info.input, { ...where, field: 'input' }, 'input', budget),
      steps: [],
      history,
      historyTrimmed: (page.events[0]?.seq ?? 1) > 1,
      signals: queued.map((signal, i) => ({ name: signal.name, payload: this.signalPayload(signal.payload, where, i, budget) })),
      actions: this.options.readOnly ? [] : actionsFor(info).filter((a) => a !== 'fork' || forkSteps.length > 0),
      forkSteps,
      ...(info.parentRunId !== undefined ? { parentRunId: info.parentRunId } : {}),
      generation: info.generation,
      priority: info.priority,
      ...(info.concurrencyKey !== undefined ? { concurrencyKey: info.concurrencyKey } : {}),
      ...(info.dueAt ? { dueAt: info.dueAt } : {}),
      ...(info.blockedBy ? { blockedBy: info.blockedBy } : {}),
      children: this.children(children.runs, page.events, (page.events[0]?.seq ?? 1) > 1),
    };
    if ('output' in info) detail.output = this.values.show(info.output, { ...where, field: 'output' }, 'output', budget);
    if (info.error) {
      const { message, ...rest } = info.error;
      detail.error = { ...rest, message: this.values.showMessage(message, where, 'error', budget) };
    }
    if (info.status === 'waiting') Object.assign(detail, waitOf(page.events, info.currentStep));
    detail.steps = this.steps(info, history, where, budget);
    return detail;
  }

  /** A page of a run's history, error messages redacted. @throws RunNotFoundError */
  async history(runId: string, options: { limit: number; cursor?: string }): Promise<{ events: HistoryEventView[]; cursor?: string }> {
    const page = await this.client.history(runId, options);
    const run = await this.engine.getRun(runId);
    const where = { runId, workflow: run?.workflow ?? '' };
    return { events: page.events.map((e) => this.historyEvent(e, where)), ...(page.cursor !== undefined ? { cursor: page.cursor } : {}) };
  }

  /** The signals queued for a run, payloads redacted and cut. @throws RunNotFoundError */
  async signals(runId: string): Promise<{ name: string; payload: ShownValue }[]> {
    const run = await this.engine.getRun(runId);
    if (!run) throw new RunNotFoundError(runId);
    const where = { runId, workflow: run.workflow };
    return (await this.engine.listSignals(runId)).map((s, i) => ({ name: s.name, payload: this.signalPayload(s.payload, where, i, VALUE_PREVIEW_CHARS) }));
  }

  /**
   * A whole value of a run ("show all"), still redacted.
   * @throws RunNotFoundError, NotFoundException when the run has no such value
   */
  async value(runId: string, ref: ValueRef): Promise<{ run: { runId: string; workflow: string; status: RunStatus }; ref: string; value: ShownValue }> {
    const info = await this.client.describe(runId);
    if (!info) throw new RunNotFoundError(runId);
    const where = { runId, workflow: info.workflow };
    const full = VALUE_FULL_CHARS;
    const missing = () => new NotFoundException(`Run "${runId}" has no such value.`);
    let value: ShownValue;
    let name: string;
    switch (ref.kind) {
      case 'input':
        name = 'input';
        value = this.values.show(info.input, { ...where, field: 'input' }, undefined, full);
        break;
      case 'output':
        if (!('output' in info)) throw missing();
        name = 'output';
        value = this.values.show(info.output, { ...where, field: 'output' }, undefined, full);
        break;
      case 'error':
        if (!info.error) throw missing();
        name = 'error';
        value = this.values.showMessage(info.error.message, where, undefined, full);
        break;
      case 'step': {
        const step = info.steps[ref.index];
        name = `steps.${ref.index}.${ref.part}`;
        if (ref.part === 'output' && step && 'output' in step) value = this.values.show(step.output, { ...where, field: 'output' }, undefined, full);
        else if (ref.part === 'error' && step?.error !== undefined) value = this.values.showMessage(step.error, where, undefined, full);
        else if (ref.part === 'heartbeat' && step?.heartbeat && 'details' in step.heartbeat) {
          value = this.values.show(step.heartbeat.details, { ...where, field: 'heartbeat' }, undefined, full);
        } else throw missing();
        break;
      }
      case 'signal': {
        const signal = (await this.engine.listSignals(runId))[ref.index];
        if (!signal) throw missing();
        name = `signals.${ref.index}`;
        value = this.signalPayload(signal.payload, where, ref.index, full);
        break;
      }
    }
    return { run: { runId, workflow: info.workflow, status: info.status }, ref: name, value };
  }

  /** The registered workflows, with their run counts. */
  async workflows(): Promise<WorkflowView[]> {
    const defs = this.definitions();
    const counts = await Promise.all(defs.map((def) => this.counts(def.name)));
    return defs.map((def, i) => ({
      name: def.name,
      version: def.version,
      className: def.className,
      steps: def.steps.map((step) => ({
        name: step.name,
        method: step.methodName,
        retry: {
          maxAttempts: step.retry.maxAttempts,
          backoff: step.retry.backoff,
          delayMs: step.retry.delayMs,
          multiplier: step.retry.multiplier,
          maxDelayMs: step.retry.maxDelayMs,
          jitter: step.retry.jitter,
          retryIf: step.retry.retryIf !== undefined,
        },
        ...(step.timeoutMs !== undefined ? { timeoutMs: step.timeoutMs } : {}),
        ...(step.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: step.heartbeatTimeoutMs } : {}),
        ...(step.compensate !== undefined ? { compensate: step.compensate } : {}),
      })),
      counts: counts[i],
    }));
  }

  private summary(run: RunInfo): RunSummary {
    const where = { runId: run.runId, workflow: run.workflow };
    return {
      runId: run.runId,
      workflow: run.workflow,
      version: run.version,
      status: run.status,
      ...(run.currentStep !== undefined ? { currentStep: run.currentStep } : {}),
      createdAt: run.createdAt,
      updatedAt: run.updatedAt,
      ...(run.finishedAt ? { finishedAt: run.finishedAt } : {}),
      ...(run.parentRunId !== undefined ? { parentRunId: run.parentRunId } : {}),
      ...(run.error
        ? {
            error: {
              name: run.error.name,
              message: this.values.messageText(run.error.message, where, LIST_ERROR_CHARS),
              ...(run.error.step !== undefined ? { step: run.error.step } : {}),
            },
          }
        : {}),
    };
  }

  /** The first children listed (one more than shown tells whether there are more), and their total from the history. */
  private children(listed: RunInfo[], events: RunEvent[], trimmed: boolean): ChildrenView {
    const view: ChildrenView = { runs: listed.slice(0, CHILDREN_SHOWN).map((run) => this.summary(run)), more: listed.length > CHILDREN_SHOWN };
    if (!trimmed) {
      // NOTE: a step that runs again after a crash records the same children again (same ids): counted once.
      const seen = new Set<string>();
      let total = 0;
      for (const event of events) {
        if (event.type !== 'child.started') continue;
        const detail = event.detail as { count?: unknown; runIds?: unknown } | undefined;
        if (typeof detail?.count !== 'number') continue;
        const key = JSON.stringify([event.step, detail.count, detail.runIds]);
        if (seen.has(key)) continue;
        seen.add(key);
        total += detail.count;
      }
      if (total >= listed.length) view.total = total;
    }
    return view;
  }

  private historyEvent(event: RunEvent, where: { runId: string; workflow: string }): HistoryEventView {
    const { error, ...rest } = event;
    return error ? { ...rest, error: { name: error.name, message: this.values.showMessage(error.message, where, undefined, EVENT_MESSAGE_CHARS) } } : rest;
  }

  private signalPayload(payload: string, where: { runId: string; workflow: string }, index: number, budget: number): ShownValue {
    let value: unknown;
    try {
      value = this.engine.decode(payload);
    } catch (error) {
      return { tree: { type: 'other', value: `(cannot be decoded: ${errorMessage(error).slice(0, 300)})` }, truncated: false };
    }
    return this.values.show(value, { ...where, field: 'signal' }, `signals.${index}`, budget);
  }

  /** The step visits, each with the attempts the history records for it, placed on the run's time axis. */
  private steps(info: RunInfo, history: HistoryEventView[], where: { runId: string; workflow: string }, budget: number): StepView[] {
    const steps: StepView[] = info.steps.map((step, index) => {
      const view: StepView = { index, name: step.name, status: step.status, attempts: step.attempts, tries: [] };
      if (step.startedAt) view.startedAt = step.startedAt;
      if (step.finishedAt) view.finishedAt = step.finishedAt;
      if (step.startedAt && step.finishedAt) view.durationMs = step.finishedAt.getTime() - step.startedAt.getTime();
      if ('output' in step) view.output = this.values.show(step.output, { ...where, field: 'output' }, `steps.${index}.output`, budget);
      if (step.error !== undefined) view.error = this.values.showMessage(step.error, where, `steps.${index}.error`, budget);
      if (step.heartbeat) {
        view.heartbeat = { at: step.heartbeat.at };
        if ('details' in step.heartbeat) {
          view.heartbeat.details = this.values.show(step.heartbeat.details, { ...where, field: 'heartbeat' }, `steps.${index}.heartbeat`, budget);
        }
      }
      return view;
    });
    const attempts = attemptsOf(history);
    const start = info.createdAt.getTime();
    const end = Math.max(info.finishedAt?.getTime() ?? Date.now(), ...attempts.map((a) => a.endedAt.getTime()));
    const span = Math.max(1, end - start);
    for (const attempt of attempts) {
      const from = attempt.startedAt?.getTime() ?? attempt.endedAt.getTime();
      attempt.left = round(((from - start) / span) * 100);
      attempt.width = Math.max(0.5, round(((attempt.endedAt.getTime() - from) / span) * 100));
      const visits = steps.filter((s) => s.name === attempt.step);
      const visit = [...visits].reverse().find((s) => !s.startedAt || s.startedAt.getTime() <= from + 1) ?? visits[visits.length - 1];
      visit?.tries.push(attempt);
    }
    return steps;
  }

  private forkSteps(info: RunInfo): string[] {
    const def = this.workflowRegistry().get(info.workflow, info.version);
    if (!def || this.options.readOnly) return [];
    const reached = new Set(info.steps.map((s) => s.name));
    return def.steps.filter((step, i) => i === 0 || reached.has(step.name)).map((step) => step.name);
  }

  private workflowRegistry(): WorkflowRegistry {
    // NOTE: the durable module keeps its registry to itself (it exports the client, the events and the engine).
    this.registry ??= this.moduleRef.get(WorkflowRegistry, { strict: false });
    return this.registry;
  }
}

/** Whether a run found by id also passes the rest of the filter. */
function matches(run: RunInfo, filter: RunsFilter): boolean {
  if (filter.workflow !== undefined && run.workflow !== filter.workflow) return false;
  if (filter.statuses && !filter.statuses.includes(run.status)) return false;
  if (filter.createdFrom && run.createdAt < filter.createdFrom) return false;
  if (filter.createdTo && run.createdAt >= filter.createdTo) return false;
  if (filter.parentRunId !== undefined && run.parentRunId !== filter.parentRunId) return false;
  return filter.cursor === undefined;
}

/**
 * What a `waiting` run waits for, from its latest wait in the history: the signal names of a `run.waiting`
 * (`detail.signal`, or `detail.signals` of `Flow.waitForAny`), or the children of the current step's `child.started`.
 */
function waitOf(events: RunEvent[], currentStep: string | undefined): Pick<RunDetail, 'waitingFor' | 'waitingForSignals' | 'waitingForChildren'> {
  const wait = [...events].reverse().find((e) => e.type === 'run.waiting' || e.type === 'child.started' || e.type === 'child.ended');
  if (!wait || (currentStep !== undefined && wait.step !== undefined && wait.step !== currentStep)) return {};
  const detail = (wait.detail ?? {}) as { signal?: unknown; signals?: unknown; count?: unknown };
  if (wait.type === 'child.started') return typeof detail.count === 'number' ? { waitingForChildren: detail.count } : {};
  if (wait.type !== 'run.waiting') return {};
  const names = Array.isArray(detail.signals) ? detail.signals.filter((s): s is string => typeof s === 'string') : typeof detail.signal === 'string' ? [detail.signal] : [];
  return names.length > 0 ? { waitingFor: names[0], waitingForSignals: names } : {};
}

/** What an operator may do to a run in its status (the store decides for good; this only hides pointless buttons). */
export function actionsFor(run: Pick<RunInfo, 'status' | 'error'>): OperatorAction[] {
  const actions: OperatorAction[] = [];
  const live = LIVE_STATUSES.includes(run.status);
  if (live && run.status !== 'compensating') actions.push('cancel', 'signal');
  if (live && run.status !== 'paused' && run.status !== 'compensating') actions.push('pause');
  if (run.status === 'paused') actions.push('resume');
  if (run.status === 'failed') actions.push('retry');
  if (run.status === 'failed' && run.error?.phase !== 'compensation') actions.push('skip');
  actions.push('fork');
  return actions;
}

/** The finished attempts of steps and compensations, from the history. */
function attemptsOf(history: HistoryEventView[]): AttemptView[] {
  const out: AttemptView[] = [];
  for (const event of history) {
    const kind = event.type.startsWith('step.') ? 'step' : event.type.startsWith('compensation.') ? 'compensation' : undefined;
    const outcome = event.type.endsWith('.completed') ? 'completed' : event.type.endsWith('.failed') ? 'failed' : undefined;
    if (!kind || !outcome || event.step === undefined) continue;
    const attempt: AttemptView = { kind, step: event.step, outcome, endedAt: event.at };
    if (event.attempt !== undefined) attempt.attempt = event.attempt;
    if (event.durationMs !== undefined) {
      attempt.durationMs = event.durationMs;
      attempt.startedAt = new Date(event.at.getTime() - event.durationMs);
    }
    if (event.error) attempt.error = event.error;
    out.push(attempt);
  }
  return out;
}

function round(n: number): number {
  return Math.round(Math.min(100, Math.max(0, n)) * 100) / 100;
}
