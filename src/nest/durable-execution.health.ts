import { Inject, Injectable } from '@nestjs/common';
import type { EngineHealth, EngineHealthSource } from '../engine/engine-health.interface.js';
import { describeError } from '../engine/error-text.js';
import type { WorkflowStore } from '../store/workflow-store.interface.js';
import { WORKFLOW_ENGINE, WORKFLOW_STORE } from './durable-execution.constants.js';

/** The run id read to check that the store answers (no run has it). */
export const HEALTH_PROBE_RUN_ID = '__cairn_health__';

/** Thresholds of {@link DurableExecutionHealthIndicator.isHealthy}. */
export interface DurableExecutionHealthOptions {
  /** How long the store may take to answer one read. @default 1_000 */
  timeoutMs?: number;
  /** How long ago the worker's last poll may have ended; keep it well above `worker.pollIntervalMs`. @default 30_000 */
  maxPollAgeMs?: number;
  /**
   * Down when the latest claim came this many ms after its run was due. Off by default: a backlog is a reason to add
   * workers, and failing a readiness or liveness probe on it would only take more capacity away.
   * @default undefined (the lag is reported, never judged)
   */
  maxClaimLagMs?: number;
}

/** What {@link DurableExecutionHealthIndicator.isHealthy} reports under its key; a Terminus `HealthIndicatorResult`. */
export interface DurableExecutionHealthDetails {
  status: 'up' | 'down';
  /** The store answered a read in time. */
  store: 'up' | 'down';
  /** The worker polls for due runs; `disabled` when `worker.enabled` is false. */
  worker: 'up' | 'down' | 'disabled';
  inFlight: number;
  concurrency: number;
  /** Since the worker's last poll ended. */
  lastPollAgeMs?: number;
  /** Due → claimed of the latest claim. */
  claimLagMs?: number;
  /** Why it is down. */
  message?: string;
}

/** A result keyed like Terminus's `HealthIndicatorResult`. */
export type DurableExecutionHealthResult<Key extends string = string> = Record<Key, DurableExecutionHealthDetails>;

/**
 * Health of durable execution on this instance, for `@nestjs/terminus` 11+ (no dependency on it): the store answers a
 * read, the worker polls, and (when `maxClaimLagMs` is set) runs are claimed soon after they are due.
 *
 * ```ts
 * @Get('health')
 * @HealthCheck()
 * check() {
 *   return this.health.check([() => this.workflows.isHealthy('workflows')]);
 * }
 * ```
 * `isHealthy` never throws: like a result of Terminus's `HealthIndicatorService.check(key).down()`, a result whose
 * status is `down` makes `HealthCheckService.check` fail (HTTP 503) with it under `error` and `details`.
 */
@Injectable()
export class DurableExecutionHealthIndicator {
  constructor(
    @Inject(WORKFLOW_STORE) private readonly store: WorkflowStore,
    @Inject(WORKFLOW_ENGINE) private readonly engine: EngineHealthSource,
  ) {}

  /** Checks the store, the worker and the claim lag; `down` with a `message` naming each failed check. */
  async isHealthy<const Key extends string = 'workflows'>(
    key: Key = 'workflows' as Key,
    options: DurableExecutionHealthOptions = {},
  ): Promise<DurableExecutionHealthResult<Key>> {
    const problems: string[] = [];
    const storeProblem = await this.checkStore(options.timeoutMs ?? 1_000);
    if (storeProblem) problems.push(`store: ${storeProblem}`);
    const health = this.engine.health();
    const lastPollAgeMs = health.lastPollAt === undefined ? undefined : Math.max(0, Date.now() - health.lastPollAt.getTime());
    const workerProblem = this.checkWorker(health, lastPollAgeMs, options.maxPollAgeMs ?? 30_000);
    if (workerProblem) problems.push(`worker: ${workerProblem}`);
    const maxLag = options.maxClaimLagMs;
    if (maxLag !== undefined && health.claimLagMs !== undefined && health.claimLagMs > maxLag) {
      problems.push(`claim lag: ${health.claimLagMs} ms (max ${maxLag} ms)`);
    }
    const details: DurableExecutionHealthDetails = {
      status: problems.length === 0 ? 'up' : 'down',
      store: storeProblem ? 'down' : 'up',
      worker: !health.workerEnabled ? 'disabled' : workerProblem ? 'down' : 'up',
      inFlight: health.inFlight,
      concurrency: health.concurrency,
    };
    if (lastPollAgeMs !== undefined) details.lastPollAgeMs = lastPollAgeMs;
    if (health.claimLagMs !== undefined) details.claimLagMs = health.claimLagMs;
    if (problems.length > 0) details.message = problems.join('; ');
    return { [key]: details } as DurableExecutionHealthResult<Key>;
  }

  /** Undefined when a cheap read answers in time; else why not. */
  private async checkStore(timeoutMs: number): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer from the ${this.store.name} store in ${timeoutMs} ms`), timeoutMs);
      timer.unref();
    });
    // NOTE: through then(), so that a store throwing synchronously is reported like one rejecting.
    const read = Promise.resolve()
      .then(() => this.store.getRun(HEALTH_PROBE_RUN_ID))
      .then(
        () => undefined,
        (error: unknown) => describeError(error),
      );
    try {
      return await Promise.race([read, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private checkWorker(health: EngineHealth, lastPollAgeMs: number | undefined, maxPollAgeMs: number): string | undefined {
    if (!health.workerEnabled) return undefined;
    if (!health.running) return 'not running (not started yet, or shutting down)';
    if (lastPollAgeMs !== undefined && lastPollAgeMs > maxPollAgeMs) return `last poll ended ${lastPollAgeMs} ms ago (max ${maxPollAgeMs} ms)`;
    return undefined;
  }
}
