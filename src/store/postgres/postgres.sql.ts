import { claimStatements } from './postgres.claim.sql.js';
import { commitStatements } from './postgres.commit.sql.js';
import { controlStatements } from './postgres.control.sql.js';
import { type ListFilter, runStatements } from './postgres.run.sql.js';
import type { SchemaNames } from './postgres.schema.js';

/**
 * Every statement of the store, built once per store from its (quoted) table names. User values are always `$n`
 * parameters with explicit casts; only configuration-derived names and constants are part of the text.
 *
 * Conventions:
 * - Each statement is a single SQL statement (usually a CTE ending in SELECT): one round trip.
 * - Timestamps are read as epoch milliseconds (float8), so neither `pg` nor PGlite type parsing (nor an app's custom
 *   type parsers on a shared DataSource) matters; durations come in as milliseconds and are added to the DB clock.
 * - Events are sent with `pg_notify` in the same statement as the change, so they are delivered only if it commits.
 *   Each statement also returns the event it sent (`evt`), for stores that publish in-process.
 * - Status lists and classes are rendered from `run-state-machine.ts` with `sqlList` (test/store/postgres-state-machine
 *   .spec.ts fails on any other list); a single status literal is written as is.
 * - Parameters with many slots are built by name (`ParamTable`, postgres.params.ts): one table gives the `$n` of the
 *   text and the order of the values.
 *
 * The statements are grouped by concern: runs (postgres.run.sql.ts), claims and leases (postgres.claim.sql.ts),
 * checkpoints (postgres.commit.sql.ts), signals and control requests (postgres.control.sql.ts); shared pieces of
 * text are in postgres.sql-fragments.ts.
 */
export interface Statements {
  /**
   * A new run, with its rows for the steps table; `WithoutSteps`: none to write; `WithEvents`: with the first events
   * of its history (postgres.run.sql.ts).
   */
  createRun: string;
  createRunWithoutSteps: string;
  createRunWithEvents: string;
  createRunWithoutStepsWithEvents: string;
  /** Group commit of starts: the plain new runs of several starts in one statement (postgres.run.sql.ts). */
  createRunBatch: string;
  /** Group commit of keyed starts: those of several starts rule F2 admits at once, in one statement (postgres.run.sql.ts). */
  createRunFlowBatch: string;
  /**
   * A new run with flow control (a priority, a delay, a concurrency or rate limit): rules F2–F4 decide whether it is
   * claimed at once (postgres.run.sql.ts).
   */
  createRunFlow: string;
  /** `createRun` with `debounce` (rule D): folds into the key's pending run, or creates it. */
  createRunDebounce: string;
  /**
   * `createRun` with `replace`: one statement (`replaceRun`) unless a writer of the old run races with it; then the
   * upsert (`replaceRunLocked`) and the steps and signals (`replaceChildren`) in one transaction.
   */
  replaceRun: string;
  replaceRunLocked: string;
  replaceChildren: string;
  getRun: string;
  /**
   * What a parent reads of itself and its children in one snapshot: status, output, error, parent, held and the run's
   * own `children_ended` (`getRunOutcomes`).
   */
  getRunOutcomes: string;
  /** A page of a run's history. */
  listEvents: string;
  claimRuns: string;
  claimRunsForWorkflows: string;
  claimRun: string;
  claimRunForWorkflows: string;
  /** `claimOwnedRuns`: the runs leased to an owner, whether or not their leases expired (once at worker start). */
  claimOwnedRuns: string;
  claimOwnedRunsForWorkflows: string;
  renewLease: string;
  /** Every lease expired at once (`expireLeasesAtInit`, the PGlite store). */
  expireAllLeases: string;
  releaseLease: string;
  /** The checkpoint of one run (`commitStatement`, postgres.commit.sql.ts); `NoWait`: for a patch without `wait`. */
  commit: string;
  /** The common checkpoint's fast path (`fastCommitStatement`, postgres.commit.sql.ts). */
  commitFast: string;
  commitNoWait: string;
  /** Group commit: the checkpoints of several runs in one statement. */
  commitBatch: string;
  commitBatchNoWait: string;
  /** The same statements for patches with history events (they append them and trim the history). */
  commitEvents: string;
  commitNoWaitEvents: string;
  commitFastEvents: string;
  commitBatchEvents: string;
  commitBatchNoWaitEvents: string;
  /**
   * Group commit's fast path (`fastBatchCommitStatement`, postgres.commit.sql.ts): the common checkpoints of several
   * runs as one UPDATE; what it leaves goes by `commitBatch…`.
   */
  commitFastBatch: string;
  commitFastBatchEvents: string;
  /** A patch with `children` (rule 8: spawn, link, release, wait) or `restart`: always alone (`commitStatement`). */
  commitSpecial: string;
  /** After a terminal commit that raced with a signal (see `stale_signals` of the commit statements). */
  dropStaleSignals: string;
  takeSignal: string;
  /** `sendSignal` and the control requests take a history event (null: none), appended when they apply. */
  sendSignal: string;
  pause: string;
  resume: string;
  cancel: string;
  retry: string;
  purge: string;
  /** A message for every subscriber (`publish`): NOTIFY on the store's channel. */
  publish: string;
  /** Runs per status: of every workflow, or of one. */
  countRuns: string;
  countRunsForWorkflow: string;
  /** The live runs grouped by workflow, version, pipeline and current step (the compatibility check). */
  summarizeLiveRuns: string;
  /** A pipeline description under its fingerprint, once; the descriptions of some fingerprints. */
  savePipeline: string;
  getPipelines: string;
  /** The signals queued for a live run, per name in send order. */
  listSignals: string;
  /** A page of `listRuns` with the filters it has. */
  list(filter: ListFilter): string;
}

/** Every statement of the store for its schema and prefix, from the files of each concern. */
export function buildStatements(n: SchemaNames): Statements {
  return { ...runStatements(n), ...claimStatements(n), ...commitStatements(n), ...controlStatements(n) };
}
