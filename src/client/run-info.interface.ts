import type { RunErrorInfo } from '../errors/errors.js';
import type { RunStatus, StepStatus } from '../store/workflow-store.interface.js';
import type { EntityManagerLike } from './workflow-types.js';

/** One step visit of a run, as `describe()` shows it. */
export interface StepInfo {
  name: string;
  status: StepStatus;
  /** Attempts whose outcome was recorded. */
  attempts: number;
  output?: unknown;
  startedAt?: Date;
  finishedAt?: Date;
  error?: string;
  /** The latest `ctx.heartbeat()` of this visit. */
  heartbeat?: { at: Date; details?: unknown };
}

/** A run, as `describe()` and `list()` show it. */
export interface RunInfo {
  runId: string;
  workflow: string;
  version: number;
  status: RunStatus;
  input: unknown;
  output?: unknown;
  /** What ended the run. */
  error?: RunErrorInfo;
  currentStep?: string;
  /** One entry per step visit, in execution order; steps not reached yet are not listed. */
  steps: StepInfo[];
  createdAt: Date;
  updatedAt: Date;
  finishedAt?: Date;
  /** The run whose step started this one (`Flow.child`, `Flow.all`, `Flow.allSettled`). */
  parentRunId?: string;
  /**
   * How many runs have held this run id, from 1: `Flow.continueAsNew` and `start()` with `terminate-existing` each add
   * one.
   */
  generation: number;
  /** Claim order among due runs: higher first (the start's `priority`, else the workflow's, else 0). */
  priority: number;
  /** The run's concurrency key (`@Workflow({ concurrency: { key } })` or the start's `concurrencyKey`). */
  concurrencyKey?: string;
  /** When the live run becomes claimable: after a `delay`, a sleep, a retry delay or a signal wait's timeout. */
  dueAt?: Date;
  /**
   * Why a due run is not running yet: every slot of its concurrency key is held (`concurrency`), or its rate limit's
   * window is full (`rate-limit`).
   */
  blockedBy?: 'concurrency' | 'rate-limit';
}

/** Options of `start()`. */
export interface StartOptions {
  /** Run id (idempotency key of the start). @default a new UUID */
  id?: string;
  /** What to do when a run with `id` exists. @default 'use-existing' */
  conflictPolicy?: 'use-existing' | 'fail' | 'terminate-existing';
  /**
   * The version of the workflow to start (several classes may share a name with different versions).
   * @default the class's own version; by name, the highest registered
   */
  version?: number;
  /**
   * Postgres store: a TypeORM `EntityManager` (0.3.20+ or 1.x, e.g. the one `dataSource.transaction()` gives); the run
   * is created inside the caller's transaction.
   */
  transaction?: EntityManagerLike;
  /** Claim order among due runs: higher first. @default the workflow's `priority`, else 0 */
  priority?: number;
  /** The run stays `pending` until then: ms, a duration string such as '10m', or a future `Date`. */
  delay?: number | string | Date;
  /** Overrides the workflow's `concurrency.key(input)` for this run (the workflow must have a concurrency limit). */
  concurrencyKey?: string;
  /**
   * While a run started with the same `key` is still `pending`, this start replaces its input with this one and pushes
   * its start to now + `delay` (never past `maxDelay` after the first start), and returns that run's handle. Cannot be
   * combined with `id` or `delay`.
   */
  debounce?: { key: string; delay: number | string; maxDelay?: number | string };
}

/** Filter and page of `list()`. */
export interface ListRunsFilter {
  workflow?: string;
  status?: RunStatus | RunStatus[];
  /** @default 50 (1–1000) */
  limit?: number;
  /** The `cursor` of the previous page. */
  cursor?: string;
  /** Only runs created at or after this instant. */
  createdFrom?: Date;
  /** Only runs created before this instant. */
  createdTo?: Date;
  /** Only the child runs of this run. */
  parentRunId?: string;
}

/** A reference to a run. */
export interface WorkflowHandle<Output = unknown> {
  runId: string;
  /**
   * The run's output once it ends. Rejects `WorkflowFailedError` (failed or compensated), `WorkflowCancelledError`, or
   * `ResultTimeoutError` when `timeout` passes (the run goes on).
   */
  result(options?: { timeout?: number | string }): Promise<Output>;
  /** @throws RunNotFoundError */
  describe(): Promise<RunInfo>;
}
