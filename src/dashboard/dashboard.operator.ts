import { Inject, Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { WorkflowClient } from '../client/workflow-client.js';
import { WorkflowRegistry } from '../definition/workflow.registry.js';
import { errorMessage } from '../engine/error-text.js';
import type { WorkflowEngine } from '../engine/workflow-engine.js';
import { DurableExecutionError } from '../errors/durable-execution.error.js';
import { InvalidArgumentError, InvalidRunStateError, RunNotActiveError, RunNotFoundError, SignalQueueFullError } from '../errors/errors.js';
import { WORKFLOW_ENGINE } from '../nest/durable-execution.constants.js';
import { LIVE_STATUSES } from '../store/run-state-machine.js';
import type { ControlRequest, ControlResult, RunStatus } from '../store/workflow-store.interface.js';
import type { BulkPreview, BulkResult, RunsFilter } from './dashboard-api.interface.js';
import { BULK_CONCURRENCY, BULK_LIMIT } from './dashboard.constants.js';

/** What an action did: `ok`, or `noop` when the run was in that state already. */
export interface ActionOutcome {
  outcome: 'ok' | 'noop';
}

type BulkAction = 'cancel' | 'retry';

/** Statuses each bulk action applies to. */
const BULK_STATUSES: Record<BulkAction, readonly RunStatus[]> = {
  cancel: LIVE_STATUSES.filter((s) => s !== 'compensating'),
  retry: ['failed'],
};

/** Bulk matching reads runs this many at a time. */
const BULK_PAGE = 1_000;

/**
 * The operator actions. Each goes through the engine's variant that takes `by` (the operator), so the run's history
 * records who made it as an `operator.action` event — except `signal`, which the engine records as `signal.received`
 * without an operator.
 */
@Injectable()
export class DashboardOperator {
  private registry?: WorkflowRegistry;

  constructor(
    private readonly client: WorkflowClient,
    @Inject(WORKFLOW_ENGINE) private readonly engine: WorkflowEngine,
    private readonly moduleRef: ModuleRef,
  ) {}

  cancel(runId: string, compensate: boolean, by: string | undefined): Promise<ActionOutcome> {
    return this.control(runId, { action: 'cancel', compensate }, by);
  }

  pause(runId: string, by: string | undefined): Promise<ActionOutcome> {
    return this.control(runId, { action: 'pause' }, by);
  }

  resume(runId: string, by: string | undefined): Promise<ActionOutcome> {
    return this.control(runId, { action: 'resume' }, by);
  }

  retry(runId: string, by: string | undefined): Promise<ActionOutcome> {
    return this.control(runId, { action: 'retry' }, by);
  }

  /** Queues a signal; its `signal.received` event names the operator (`detail.by`). */
  async signal(runId: string, name: string, payload: unknown, by: string | undefined): Promise<ActionOutcome> {
    return outcomeOf(runId, await this.engine.sendSignal(runId, name, payload, by), 'signal', this.engine.maxQueuedSignals);
  }

  /** @throws InvalidRunStateError when the run is not failed at a step */
  async skip(runId: string, output: unknown, by: string | undefined): Promise<ActionOutcome> {
    const res = await this.engine.skipRun(runId, output, by);
    if (res.outcome === 'invalid-state') {
      throw new InvalidRunStateError(
        runId,
        res.status ?? 'unknown',
        `Cannot skip a step of run "${runId}": only a run that failed at a step can skip it (status "${res.status}"; a run that failed in a compensation can only be retried).`,
      );
    }
    return outcomeOf(runId, res, 'skip');
  }

  /** A new run from `fromStep` of the source's workflow; its `run.started` event names the source and the operator. */
  async fork(runId: string, options: { fromStep: string; id?: string; input?: { value: unknown } }, by: string | undefined): Promise<{ runId: string }> {
    const source = await this.engine.getRun(runId);
    if (!source) throw new RunNotFoundError(runId);
    this.registry ??= this.moduleRef.get(WorkflowRegistry, { strict: false });
    const def = this.registry.get(source.workflow, source.version);
    if (!def) {
      throw new InvalidArgumentError(`Cannot fork run "${runId}": workflow "${source.workflow}" version ${source.version} is not registered in this app.`);
    }
    return { runId: await this.engine.forkRun(def, source, options, by) };
  }

  /** How many runs a bulk action would touch now. */
  async preview(action: BulkAction, filter: RunsFilter): Promise<BulkPreview> {
    const ids = await this.matching(action, filter, BULK_LIMIT + 1);
    return { action, count: Math.min(ids.length, BULK_LIMIT), capped: ids.length > BULK_LIMIT };
  }

  /**
   * Cancels or retries the runs the filter matches now (at most {@link BULK_LIMIT}). Refuses when more match than the
   * operator confirmed (runs were added since the preview); fewer is fine (runs ended meanwhile).
   * @throws InvalidRunStateError (409) when more runs match than `confirmCount`
   */
  async bulk(action: BulkAction, filter: RunsFilter, confirmCount: number, compensate: boolean, by: string | undefined): Promise<BulkResult> {
    const ids = (await this.matching(action, filter, BULK_LIMIT + 1)).slice(0, BULK_LIMIT);
    if (ids.length > confirmCount) {
      throw new InvalidRunStateError(
        '(bulk)',
        action,
        `The filter now matches ${ids.length} runs to ${action}, more than the ${confirmCount} confirmed: preview and confirm again.`,
      );
    }
    const result: BulkResult = { action, matched: ids.length, done: 0, skipped: 0, failed: [] };
    let next = 0;
    const worker = async () => {
      while (next < ids.length) {
        const runId = ids[next++];
        try {
          const res = action === 'cancel' ? await this.cancel(runId, compensate, by) : await this.retry(runId, by);
          if (res.outcome === 'ok') result.done++;
          else result.skipped++;
        } catch (error) {
          if (error instanceof RunNotFoundError || error instanceof RunNotActiveError || error instanceof InvalidRunStateError) result.skipped++;
          else result.failed.push({ runId, message: error instanceof DurableExecutionError ? error.message : errorMessage(error).slice(0, 500) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(BULK_CONCURRENCY, ids.length) }, worker));
    return result;
  }

  /** Ids of the runs the filter matches among those the action applies to, newest first, at most `max`. */
  private async matching(action: BulkAction, filter: RunsFilter, max: number): Promise<string[]> {
    const statuses = BULK_STATUSES[action].filter((s) => !filter.statuses || filter.statuses.includes(s));
    if (statuses.length === 0) return [];
    if (filter.runId !== undefined) {
      const run = await this.client.describe(filter.runId);
      const ok =
        run &&
        statuses.includes(run.status) &&
        (filter.workflow === undefined || run.workflow === filter.workflow) &&
        (!filter.createdFrom || run.createdAt >= filter.createdFrom) &&
        (!filter.createdTo || run.createdAt < filter.createdTo) &&
        (filter.parentRunId === undefined || run.parentRunId === filter.parentRunId);
      return ok ? [run.runId] : [];
    }
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.client.list({
        workflow: filter.workflow,
        status: statuses,
        createdFrom: filter.createdFrom,
        createdTo: filter.createdTo,
        ...(filter.parentRunId !== undefined ? { parentRunId: filter.parentRunId } : {}),
        limit: Math.min(BULK_PAGE, max - ids.length),
        cursor,
      });
      for (const run of page.runs) ids.push(run.runId);
      cursor = page.cursor;
    } while (cursor !== undefined && ids.length < max);
    return ids;
  }

  private async control(runId: string, request: ControlRequest, by: string | undefined): Promise<ActionOutcome> {
    // NOTE: the `action` detail makes the engine record every dashboard action as `operator.action`, with or without `by`.
    const res = await this.engine.control(runId, request, by, { action: request.action });
    if (res.outcome === 'invalid-state') {
      throw new InvalidRunStateError(runId, res.status ?? 'unknown', `Cannot ${request.action} run "${runId}": only failed runs can be retried (status "${res.status}").`);
    }
    return outcomeOf(runId, res, request.action);
  }
}

/** The client's mapping of a control outcome: not found → 404, ended → 409. */
function outcomeOf(runId: string, res: ControlResult, action: string, maxQueued = 0): ActionOutcome {
  if (res.outcome === 'not-found') throw new RunNotFoundError(runId);
  if (res.outcome === 'not-active') throw new RunNotActiveError(runId, res.status ?? 'ended', action);
  if (res.outcome === 'full') throw new SignalQueueFullError(runId, maxQueued);
  return { outcome: res.outcome === 'noop' ? 'noop' : 'ok' };
}
