import type { RunErrorInfo } from '../errors/errors.js';

import type { RunStatus } from './run-state-machine.js';

export { isTerminal, LIVE_STATUSES, TERMINAL_STATUSES, type RunStatus } from './run-state-machine.js';

/** Status of one step visit. */
export type StepStatus = 'running' | 'completed' | 'failed' | 'compensated';

/** One step visit as stored. Values are serialized strings; the store never parses them. */
export interface StoredStep {
  name: string;
  status: StepStatus;
  /** Attempts whose outcome was recorded. */
  attempts: number;
  /** Serialized output (the engine's serializer). */
  output?: string;
  startedAt?: Date;
  finishedAt?: Date;
  error?: string;
  /** The latest `ctx.heartbeat()` of this visit: when, and its serialized details (absent when none were given). */
  heartbeat?: { at: Date; details?: string };
}

/**
 * Most events a run's history keeps. A write that takes a run past it deletes that run's oldest events in the same
 * atomic write; `seq` keeps counting, so a reader sees the gap.
 */
export const RUN_HISTORY_LIMIT = 1000;

/** One event of a run's history, as stored: `body` is the engine's JSON text, stored and returned verbatim. */
export interface StoredRunEvent {
  /** 1, 2, 3 … per run id, in write order; a replaced run (`createRun` with `replace`) starts again at 1. */
  seq: number;
  body: string;
}

/** A page of a run's history: events with `seq > afterSeq`, in `seq` order. */
export interface ListEventsQuery {
  afterSeq?: number;
  limit: number;
}

/**
 * A run as stored. Everything the engine needs to resume a run lives here.
 *
 * The store understands `status`, `dueAt`, the lease, `waitSignal`/`waitUntil`, `nextInput` and the
 * control flags; `state` is the engine's own JSON and is stored verbatim.
 */
export interface StoredRun {
  runId: string;
  workflow: string;
  version: number;
  status: RunStatus;
  /** Serialized input. */
  input: string;
  /** Serialized output, once completed. */
  output?: string;
  error?: RunErrorInfo;
  currentStep?: string;
  /** Step visits in execution order. */
  steps: StoredStep[];
  /** The engine's private state (JSON text), stored verbatim. */
  state: string;
  /** Input of the next step, set by the store when it hands a queued signal's payload to the run. */
  nextInput?: string;
  /**
   * The name of the signal whose payload `nextInput` is (set with it by rule 3 and `takeSignal`; cleared with it; a
   * `retry` with `nextInput` clears it). Lets the engine rebuild a `Flow.waitForAny` delivery after a crash.
   */
  nextInputSignal?: string;
  /**
   * Signal names the run waits for (status `waiting`, or `paused` from `waiting`): the first queued or arriving signal
   * of any of them is handed to it. One name for `Flow.waitForSignal`, several for `Flow.waitForAny`.
   */
  waitSignals?: string[];
  /** When the signal wait times out, if it has a timeout. */
  waitUntil?: Date;
  /** Status to go back to on `resume` (only while `paused`). */
  resumeStatus?: RunStatus;
  /** A cancel was requested and not handled yet. */
  cancelRequested?: { compensate: boolean };
  /** A pause was requested while the run was leased; applied at the next commit. */
  pauseRequested: boolean;
  /** From when the run may be claimed (null: not due). */
  dueAt?: Date;
  leaseOwner?: string;
  leaseToken?: string;
  leaseExpiresAt?: Date;
  createdAt: Date;
  updatedAt: Date;
  finishedAt?: Date;
  /**
   * Incarnation of this run id: 1 for a new id, the replaced run's generation + 1 after `createRun` with `replace`.
   * The engine appends it to idempotency keys from the 2nd generation on, so a replacement never reuses a key.
   */
  generation: number;
  /** The pipeline fingerprint given at `createRun` (absent for runs created without one). */
  pipeline?: string;
  /** The run whose commit spawned this one (`RunPatch.children.spawn`), or that adopted it. */
  parentRunId?: string;
  /** Bookkeeping of the run's child runs, present once it has spawned or adopted any (see {@link ChildrenState}). */
  children?: ChildrenState;
  /** Claim order among due runs: higher first (`NewRun.priority`; 0 when none was given). */
  priority: number;
  /** The run's concurrency limit (`NewRun.concurrency`), when it has one. */
  concurrency?: ConcurrencySpec;
  /** The run's rate limit (`NewRun.rateLimit`), when it has one. */
  rateLimit?: RateLimitSpec;
  /** The run holds one of its concurrency key's slots (see rule F2 of `claimRuns`). */
  slotHeld?: boolean;
  /**
   * Set by reads (`getRun`, `listRuns`) when the run is due but a claim would pass it over now: its concurrency key's
   * slots are all held (`concurrency`), or its rate key's window is full (`rate-limit`). Never stored.
   */
  blockedBy?: 'concurrency' | 'rate-limit';
  /**
   * Set when a field the store itself encodes (a step record, the error, an index field …) could not be decoded.
   * The store still returns the run, with safe placeholders for what it could not read, and never lets one such run
   * break a call that concerns other runs. Names the run and the field, e.g. `step 2 of run "x": Unexpected token`.
   */
  corrupt?: string;
}

/**
 * A parent run's view of its children, kept by the store on the parent (O(1) per child end: no scan of the siblings).
 */
export interface ChildrenState {
  /**
   * How many times a run linked to this one ended (each linked child's terminal commit adds one; never goes down, and
   * only `restart` clears it). Monotonic, so a parent that read its counter and its children's outcomes in one
   * `getRunOutcomes` can ask to be woken after k more ends without ever missing one (rule 8).
   */
  ended: number;
  /** A linked child ended with a status other than `completed` since the parent's last `children` commit. */
  failed: boolean;
  /** While the run waits for its children (status `waiting`, or `paused` from it): when it becomes due again. */
  wait?: { endedAtLeast: number; failFast: boolean };
}

/**
 * A run's concurrency limit: at most `limit` live runs with the same `key` hold a slot at once (rule F2). `key` is the
 * engine's full key (workflow name and the user's key), opaque to the store. `scope: 'run'`: a slot is held from the
 * first claim that takes it until the run ends. `'step'`: it is also given back whenever the lease is released
 * (a commit with `release`, a sleep or wait, `releaseLease`).
 */
export interface ConcurrencySpec {
  key: string;
  limit: number;
  scope: 'run' | 'step';
}

/** A run's rate limit: at most `limit` runs with the same `key` begin (their first claim) in any `perMs` window (sliding). */
export interface RateLimitSpec {
  key: string;
  limit: number;
  perMs: number;
}

/** A child run created by its parent's commit (`RunPatch.children.spawn`). */
export interface NewChildRun {
  runId: string;
  workflow: string;
  version: number;
  input: string;
  state: string;
  /** First history events of the child (`body` texts), written with it. */
  events?: string[];
  pipeline?: string;
  /** Created `pending` but not due (`dueAt` null) until the parent releases it (`RunPatch.children.release`). */
  held?: boolean;
}

/** What a parent needs to know about one of its children (`getRunOutcomes`). */
export interface RunOutcome {
  runId: string;
  status: RunStatus;
  /** Serialized output, once completed. */
  output?: string;
  error?: RunErrorInfo;
  parentRunId?: string;
  /** `pending` with no `dueAt`: a held child not released yet. */
  held: boolean;
  /** The run's own `children.ended` (when it has children state): a parent reads its counter with its children. */
  childrenEnded?: number;
}

/** A run handed to a worker by a claim. */
export interface ClaimedRun extends StoredRun {
  leaseToken: string;
  /**
   * True when the claim took over a lease another claim had given (an expired one, the previous owner died or
   * stalled; or, by `claimOwnedRuns`, one of this owner's own from before a restart).
   */
  recovered: boolean;
  /** When `recovered`: the owner of the lease taken over (undefined if the store had none recorded). */
  previousOwner?: string;
  /**
   * When `recovered`: how long the run was left without a live lease, in ms of the store's clock: now minus the old
   * lease's expiry, never below 0 (0 when `claimOwnedRuns` takes over a lease that had not expired yet).
   */
  orphanedMs?: number;
}

/**
 * A workflow version an instance can execute. Claims take a list of them: an instance claims only the runs whose
 * (workflow, version) it registers, so old and new code drain side by side.
 */
export interface WorkflowRef {
  workflow: string;
  version: number;
}

/** Who claims, and for how long. */
export interface LeaseRequest {
  /** Identifies the claiming instance (for operators; fencing uses the token). */
  owner: string;
  leaseMs: number;
}

/** A new run. */
export interface NewRun {
  runId: string;
  workflow: string;
  version: number;
  input: string;
  state: string;
  /** Step entries to create with the run (e.g. the first step as `running` when claimed at once). */
  steps?: StoredStep[];
  currentStep?: string;
  /** First events of the run's history (`body` texts, in order), written with it. A replaced run's history is deleted. */
  events?: string[];
  /**
   * Fingerprint of the definition's pipeline the run starts on (see `savePipeline`), stored with the run and returned
   * as `StoredRun.pipeline`; for the compatibility check. Opaque text of at most 64 characters.
   */
  pipeline?: string;
  /** Claim order among due runs, higher first (default 0). Any safe integer. */
  priority?: number;
  /** When the run becomes due (default: now). A run created with a later due time is not claimed at once (no lease). */
  due?: { delayMs: number } | { at: Date };
  concurrency?: ConcurrencySpec;
  rateLimit?: RateLimitSpec;
}

/** How `createRun` treats an existing run with the same id. */
export type CreateConflict = 'keep' | 'replace';

export interface CreateRunOptions {
  /** `keep`: leave the existing run and return it. `replace`: delete it (steps, signals, lease) and create the new one. */
  onConflict: CreateConflict;
  /** Claim the new run at once for this instance: status `running`, leased. Otherwise status `pending`, due now. */
  lease?: LeaseRequest;
  /**
   * The caller's transaction (for the Postgres store, a TypeORM `EntityManager`): the run is written through it and
   * exists only if that transaction commits. Stores that cannot use it throw `InvalidArgumentError`.
   */
  transaction?: unknown;
  /**
   * Debounce (rule D): when a run created with the same `key` is still `pending` and has never been claimed, that run
   * takes this run's `input` and `state`, its `dueAt` becomes now + `delayMs` (never later than its first creation +
   * `maxDelayMs`), nothing is created (`created: false`, `debounced: true`) and that run is returned. Otherwise the run
   * is created with this key, due in `delayMs` (never claimed at once). Race-free: concurrent creates with one key give
   * one run. The engine gives such runs fresh ids (a start with `debounce` takes no `id`), so `onConflict` never applies.
   */
  debounce?: { key: string; delayMs: number; maxDelayMs?: number };
}

export interface CreateRunResult {
  created: boolean;
  /** The run given was folded into an existing pending run with the same debounce key (its id is `run.runId`). */
  debounced?: boolean;
  /** The created run (with its lease token when claimed), or the existing one when `created` is false. */
  run: StoredRun;
  /** When a run was created with `events`: the `seq` given to the last of them. */
  lastEventSeq?: number;
}

/**
 * When a run becomes due: in `delayMs` from the store's clock, at an absolute instant `at` (e.g. `Flow.sleep(date)`:
 * stored as is, never converted through the worker's clock), or never (`null`).
 */
export type DueSpec = { delayMs: number } | { at: Date } | null;

/**
 * One atomic, fenced change of a run by its lease holder: a step checkpoint, a status change, the end of a run.
 *
 * Rules the store applies, in this order:
 * 1. Fencing: rejected (`{ ok: false }`, nothing written) unless the run exists and its `leaseToken` equals the token.
 * 2. The fields given are written; `steps` entries are upserted by index (`index === steps.length` appends).
 *    `waitSignal` and `waitUntil` are cleared by every commit unless `wait` sets them; `nextInput` (and
 *    `nextInputSignal`) too, unless `keepInput` is set. `events` are appended to the run's history in order (see {@link RUN_HISTORY_LIMIT}).
 * 3. `wait`: if a signal named one of `wait.signals` is queued, the earliest sent of them (across those names) is
 *    removed, its payload becomes `nextInput` (its name `nextInputSignal`), status becomes `running` (the lease is kept) and `consumedSignal` is
 *    returned with its name. Otherwise status becomes `waiting`, `waitSignals` is set, `waitUntil`/`dueAt` are now +
 *    `timeoutMs` (or null) and the lease is released.
 * 4. A terminal status clears `dueAt`, the lease, `pauseRequested`, `cancelRequested`, `resumeStatus`, wait fields
 *    (`children.wait` too); `finishedAt` is set to now, and the run's queued signals (never to be delivered) are
 *    deleted. When the run has a `parentRunId`, was live before this commit and that parent exists, the parent's
 *    `children.ended` goes up by one, `children.failed` is set when the status is not `completed`,
 *    and, when the parent waits for its children (`children.wait`, status `waiting` or `paused` from `waiting`) and
 *    now `ended >= endedAtLeast` or (`failFast` and `failed`), the parent's `dueAt` becomes now (a `ready` event).
 *    Postgres and the memory store do this in the same atomic write; the Redis store in a second script on the
 *    parent's slot right after (see ARCHITECTURE.md: a crash between the two is repaired by the parent's recheck).
 * 5. If `pauseRequested` is set, no cancel is pending, the resulting status is live (not terminal, not paused) and the
 *    patch is not `midStep`:
 *    status becomes `paused`, `resumeStatus` the status it would have had, `pauseRequested` false, the lease released,
 *    and `dueAt` = now if it was null or the run was to keep running. `paused: true` is returned.
 * 6. `clearCancel` clears `cancelRequested`. If a cancel is (still) pending on a live run, `dueAt` becomes now and
 *    `cancel` is returned so the lease holder (or whoever claims it next) handles it.
 * 7. `release` (or rule 3/5/8) clears the lease owner, token and expiry. Otherwise the lease is extended to now + `leaseMs`.
 * 8. `children` (applied after 2, before 5):
 *    a. each `spawn` entry whose id does not exist is created `pending` with `parentRunId` = this run, due now (or not
 *       due when `held`), with generation 1 and its `events`. An existing id is never replaced: a live run without a
 *       parent is linked (its `parentRunId` set); a run already linked to this run, an ended run (it is linked for
 *       listing when it has no parent) or another parent's run is left as is. A new `ready` event per due child.
 *    b. each `release` id naming a held child of this run (`pending`, not due, `parentRunId` = this run) becomes due now.
 *    c. `children.ended` (0 when the run had no children state) goes up by one for each `spawn` entry whose run has
 *       ended (it existed ended: it will never end again, so it counts now); a live run of another parent never counts.
 *    d. if `ended >= endedAtLeast`, or `failFast` and `children.failed`: the status becomes `running`, the lease is kept
 *       and `childrenReady: true` is returned. Otherwise the status becomes `waiting`, `children.wait` is set and the
 *       lease is released; `dueAt` becomes null, except in a store that wakes parents in a second write (Redis): there
 *       it is now + its recheck interval, so a wake-up lost to a crash between the two writes is found.
 *    e. `children.failed` becomes false (the parent reads its children's outcomes after every wake-up).
 * `updatedAt` = now.
 */
export interface ChildrenPatch {
  spawn?: NewChildRun[];
  release?: string[];
  /** Wake the parent once `children.ended` reaches this (see {@link ChildrenState.ended}). */
  endedAtLeast: number;
  failFast: boolean;
}

export interface RunPatch {
  status?: RunStatus;
  state?: string;
  currentStep?: string | null;
  output?: string | null;
  error?: RunErrorInfo | null;
  steps?: { index: number; step: StoredStep }[];
  due?: DueSpec;
  wait?: { signals: readonly string[]; timeoutMs?: number };
  /** The run spawns or waits for child runs (see rule 8). */
  children?: ChildrenPatch;
  /**
   * `Flow.continueAsNew`: before the other fields apply, the run's step entries are deleted, `input` becomes this
   * text, `nextInput` and `children` are cleared and `generation` goes up by one. History, queued signals and
   * signal ids are kept.
   */
  restart?: { input: string };
  release?: boolean;
  clearCancel?: boolean;
  /**
   * Keep `nextInput` (a commit about the step that received it: a failed attempt, a heartbeat, a recovery), so that the
   * step still receives the signal's payload after a crash or a released retry.
   */
  keepInput?: boolean;
  /** History events (`body` texts) written in the same atomic write, in order. */
  events?: string[];
  /** A write while a step runs (a heartbeat): a pending pause is not applied (rule 5); it waits for the step's end. */
  midStep?: boolean;
  /** Lease extension when not releasing. */
  leaseMs: number;
}

export type CommitResult =
  | { ok: false }
  | {
      ok: true;
      /** The run was paused by a pending pause request; the lease is released. */
      paused?: boolean;
      /** A cancel is pending. */
      cancel?: { compensate: boolean };
      /** The signal consumed by `wait`: its name and payload. */
      consumedSignal?: { name: string; payload: string };
      /** `children`: the parent need not wait (rule 8d); it keeps its lease and reads its children's outcomes. */
      childrenReady?: boolean;
      /** When the patch had `events`: the `seq` given to the last of them. */
      lastEventSeq?: number;
    };

export type RenewResult = { ok: false } | { ok: true; cancel?: { compensate: boolean }; pauseRequested: boolean };

/** Result of `takeSignal` by the lease holder of a waiting run. */
export type TakeSignalResult =
  | { ok: false }
  | {
      ok: true;
      /**
       * The earliest sent queued signal of those names; it is removed, becomes `nextInput` and the status becomes
       * `running`.
       */
      payload?: string;
      /** The name of the signal taken (with `payload`). */
      signal?: string;
      /** No signal and `waitUntil` has passed. */
      timedOut: boolean;
    };

/** Outcome of a client's control request. */
export type ControlOutcome =
  | 'ok' // recorded
  | 'full' // sendSignal: the run already holds `maxQueued` queued signals; nothing stored
  | 'noop' // already in the requested state
  | 'not-found'
  | 'not-active' // the run has ended
  | 'invalid-state'; // e.g. retry of a run that is not failed

export interface ControlResult {
  outcome: ControlOutcome;
  /** Status of the run before the request (absent when not found). */
  status?: RunStatus;
  /** When an `event` was appended (outcome `ok`): its `seq`. */
  eventSeq?: number;
}

export type ControlRequest =
  | { action: 'pause' }
  | { action: 'resume' }
  | { action: 'cancel'; compensate: boolean }
  /** `nextInput`: also set the run's `nextInput` (the engine reads it as "skip the failed step with this output"). */
  | { action: 'retry'; nextInput?: string };

/** Filter and page of `listRuns`. */
export interface ListRunsQuery {
  workflow?: string;
  statuses?: RunStatus[];
  /** Only runs with `createdAt >= createdFrom`. */
  createdFrom?: Date;
  /** Only runs with `createdAt < createdTo`. */
  createdTo?: Date;
  limit: number;
  /** Return runs strictly after this one in the order (createdAt desc, runId desc). */
  after?: { createdAt: Date; runId: string };
  /** Only the children of this run (`parentRunId`). */
  parentRunId?: string;
}

/** Options of `sendSignal`. */
export interface SendSignalOptions {
  /**
   * Deduplication id: when a signal with this id was already accepted for this run (consumed or not), nothing is
   * stored and the outcome is `noop`. Ids are kept with the run (deleted with it) and survive `restart`.
   */
  id?: string;
  /**
   * Bound on what one run may hold: when the run already has this many queued (unconsumed) signals, of any names,
   * nothing is stored and the outcome is `full` (checked after `not-found`, a repeated `id` and `not-active`).
   */
  maxQueued?: number;
}

/** Filter of `countRuns`. */
export interface CountRunsQuery {
  workflow?: string;
}

/** Live runs (see `LIVE_STATUSES`) that share a workflow, version, pipeline fingerprint and current step. */
export interface LiveRunGroup {
  workflow: string;
  version: number;
  pipeline?: string;
  currentStep?: string;
  count: number;
  /** Ids of some of these runs (at most {@link LIVE_GROUP_SAMPLE}, any of them), to name them in a report. */
  runIds: string[];
}

/** Most run ids a {@link LiveRunGroup} carries. */
export const LIVE_GROUP_SAMPLE = 20;

/** A signal queued for a run and not consumed yet. */
export interface QueuedSignal {
  name: string;
  /** Serialized payload, verbatim. */
  payload: string;
}

/** Something other instances may want to react to at once. */
export type StoreEvent =
  | { type: 'ready'; runId: string } // a run became claimable (created, signalled, resumed, cancelled, retried)
  | { type: 'control'; runId: string } // a control request for a run that may be leased (cancel, pause)
  | { type: 'finished'; runId: string } // a run reached a terminal status
  | { type: 'message'; body: string }; // a text some instance broadcast with `publish` (not stored)

/** Largest `publish` message in UTF-8 bytes (PostgreSQL's NOTIFY payload limit, with room for the envelope). */
export const PUBLISH_MAX_BYTES = 7000;

/**
 * The persistence port of nestjs-cairn. The engine talks to storage only through this interface, and every store
 * (memory, PostgreSQL, PGlite, Redis, custom) must pass the shared conformance suite (`test/conformance`).
 *
 * Rules for every store:
 * - Every method is atomic: concurrent calls from any number of processes never lose or duplicate a write.
 * - Time (`now`) is the store's clock; durations are relative to it.
 * - A run is *claimable* when its status is `pending`, `running`, `sleeping`, `waiting` or `compensating`,
 *   `dueAt <= now`, and it has no lease or its lease expired.
 * - Serialized values (`input`, `output`, `state`, payloads) are opaque strings, stored and returned verbatim.
 * - Run ids and every other value are data: never spliced into SQL, key names or scripts unescaped.
 *
 * @remarks Exported for custom stores; may still change between minor versions.
 */
export interface WorkflowStore {
  /** Short name for logs, e.g. `postgres`. */
  readonly name: string;
  /** Connect and create the schema (idempotent). */
  init(): Promise<void>;
  /** Disconnect (only what the store opened itself). */
  close(): Promise<void>;

  /**
   * Create a run, or apply the conflict rule when the id exists. A new run is due now. Concurrent `replace` calls on
   * one id serialise: each succeeds (none errors), the last one to commit wins, and each returns its own run with
   * `generation` one above the run it replaced.
   */
  createRun(run: NewRun, options: CreateRunOptions): Promise<CreateRunResult>;
  /** A run with its steps, or undefined. Never throws for a run whose stored fields are damaged: see `corrupt`. */
  getRun(runId: string): Promise<StoredRun | undefined>;
  /**
   * Runs newest first (createdAt desc, then runId desc), with their steps, filtered by workflow, statuses and creation
   * time (`createdFrom` inclusive, `createdTo` exclusive). A damaged run is listed with `corrupt`.
   */
  listRuns(query: ListRunsQuery): Promise<StoredRun[]>;

  /**
   * Claim up to `limit` claimable runs, highest `priority` first, then earliest first by when each became claimable, each with a fresh lease token:
   * by `dueAt`, or (a store may choose, as Redis does with one index score) by the later of `dueAt` and an expired
   * lease's expiry; ties in any order. No run is handed to two claimers. `pending` and `sleeping` runs become `running`. `workflows`
   * restricts the claim to runs whose (workflow, version) is one of those pairs. A due run outside the filter never
   * keeps runs inside it from being claimed (no head-of-line blocking: another instance's versions may pile up).
   * A damaged run is claimed and returned like any other, with `corrupt` set (the engine fails it); it never keeps the
   * other runs of the batch from being returned.
   *
   * Flow control (rules F, for every claim: `claimRuns`, `claimRun`, `claimOwnedRuns`, and `createRun` with `lease`):
   * - F1. A run with a pending cancel is claimed without regard to its limits (it only ends; it takes no slot).
   * - F2. A run with `concurrency` that does not hold a slot takes one if fewer than `limit` live runs with its key
   *   hold one (`slotHeld`), else it is passed over (it stays due; reads show `blockedBy: 'concurrency'`). A run that
   *   holds a slot keeps it through claims (a recovery after a crash takes over the slot with the lease). A slot is
   *   given back when the run ends (any terminal commit or `control`), is replaced, and, with `scope: 'step'`, when
   *   its lease is released (a commit that releases it, a sleep or a wait, `releaseLease`; a pause applied by a commit).
   * - F3. A run with `rateLimit` claimed for the first time (status `pending`, no step entry) begins only if fewer
   *   than `limit` runs with its key began in the last `perMs` (a sliding window of the begin times), else it is
   *   passed over (`blockedBy: 'rate-limit'`). A store may push such a run's `dueAt` to when the window frees.
   * - F4. A passed-over run never keeps other runs from being claimed (no head-of-line blocking), and `createRun` with
   *   `lease` creates a run that F2/F3 pass over as `pending`, due now, without a lease token.
   * Runs without `concurrency` or `rateLimit` cost a claim nothing more.
   */
  claimRuns(lease: LeaseRequest, limit: number, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun[]>;
  /**
   * Claim the runs still leased to `lease.owner`, for an instance that restarts under the same stable id (the process
   * that held those leases is gone, so they need not expire first). Called once when a worker starts, never on a hot
   * path. Rules:
   * 1. A run qualifies when its `leaseOwner` equals `lease.owner` and it holds a lease token, its status is claimable
   *    (see `run-state-machine.ts`; `paused` and terminal runs never are), and it has a `dueAt`; whether the lease
   *    has expired and whether `dueAt` has passed do not matter. `workflows` restricts it to those (workflow, version) pairs.
   * 2. Up to `limit` such runs are claimed, as `claimRuns` claims them: a fresh lease token and expiry (now +
   *    `leaseMs`), `pending` and `sleeping` become `running`; `recovered` is true, with `previousOwner` and
   *    `orphanedMs`. The order among them is unspecified.
   * 3. No run is handed to two claimers: a run claimed concurrently by anyone (a fresh token) no longer qualifies
   *    unless it is leased to `lease.owner` again.
   * 4. Runs leased to other owners, unleased runs and released runs are never touched. A damaged run is claimed like
   *    any other, with `corrupt` set.
   * A store may take several round trips (the Redis store reads the due index); it is not a hot-path call. Optional:
   * without it, a restarted instance waits for its old leases to expire like any other instance.
   */
  claimOwnedRuns?(lease: LeaseRequest, limit: number, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun[]>;
  /** Claim one run if it is claimable now (same rules as `claimRuns`, including the `workflows` filter). */
  claimRun(runId: string, lease: LeaseRequest, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun | undefined>;
  /**
   * Extend a lease to now + `leaseMs`, never shortening it (the expiry becomes the later of the two); reports pending
   * control requests. Rejected when the token is not the run's.
   */
  renewLease(runId: string, token: string, leaseMs: number): Promise<RenewResult>;
  /** Give a lease up (e.g. on shutdown). A live run becomes due now. No-op when the token is not the run's. */
  releaseLease(runId: string, token: string): Promise<void>;
  /** Fenced atomic change of a run: see {@link RunPatch}. */
  commit(runId: string, token: string, patch: RunPatch): Promise<CommitResult>;
  /**
   * Fenced: hand the earliest sent queued signal named one of `names` to a waiting run (see {@link TakeSignalResult}).
   */
  takeSignal(runId: string, token: string, names: readonly string[]): Promise<TakeSignalResult>;

  /**
   * Queue a signal (FIFO per run; `consumedSignal`/`takeSignal` pick the earliest sent among the names waited for).
   * On a run that waits for that name (status `waiting`, or `paused` with `waitSignals` set) `dueAt` becomes now.
   * `not-found` / `not-active` (terminal) store nothing; neither does a repeated `options.id` (`noop`). With outcome
   * `ok`, `event` (a history `body`) is appended to the run's history in the same write.
   */
  sendSignal(runId: string, name: string, payload: string, event?: string, options?: SendSignalOptions): Promise<ControlResult>;

  /**
   * The outcome of each of these runs that exists (unknown ids are left out; order unspecified): for a parent reading
   * itself (the first id: its `childrenEnded`) and its children after a wake-up. The first id is read no later than the
   * others (one snapshot in SQL; in Redis its read completes before the others are sent), so a child read as live ends
   * after that counter was read: its end is counted in a later value of the counter, never in the one read. One round
   * trip (two in Redis) for any number of ids.
   */
  getRunOutcomes(runIds: readonly string[]): Promise<RunOutcome[]>;
  /**
   * Record a control request:
   * - `pause`: terminal → not-active; paused → noop; leased (live lease) → `pauseRequested` (ok); otherwise status
   *   `paused`, `resumeStatus` = the status, the (expired) lease cleared (ok). `dueAt` is kept (a start `delay`, a
   *   debounce, a sleep or wait's wake-up time, a released retry's backoff, a blocked run's place), except in a
   *   status `releaseLease` makes due (`DUE_ON_RELEASE`): a run whose expired lease this clears (it was executing) or
   *   that has no `dueAt` (a held child) becomes due now.
   * - `resume`: terminal → not-active; paused → status `resumeStatus` (ok); `pauseRequested` → cleared (ok); else noop.
   *   `dueAt` is left as it is: a resumed run is claimed no earlier than it (at once when it has passed).
   * - `cancel`: cancelled or compensating, or already requested → noop; other terminal → not-active; otherwise
   *   `cancelRequested` set, a paused run goes back to its `resumeStatus`, `dueAt` = now (ok).
   * - `retry`: only `failed` → status `pending`, `error`/`finishedAt` cleared, due now, and `nextInput` set to the
   *   request's `nextInput` when given (ok); else invalid-state.
   * With outcome `ok` (only then), `event` (a history `body`) is appended to the run's history in the same write.
   */
  control(runId: string, request: ControlRequest, event?: string): Promise<ControlResult>;

  /**
   * A page of a run's history (see {@link ListEventsQuery}); empty for an unknown run. Events are written only by
   * `createRun`, `commit`, `sendSignal` and `control` (never on their own), deleted with the run (`purge`, a replace,
   * an expiry) and bounded by {@link RUN_HISTORY_LIMIT}.
   */
  listEvents(runId: string, query: ListEventsQuery): Promise<StoredRunEvent[]>;

  /**
   * How many runs there are per status (statuses with none may be left out), of one workflow when `workflow` is given.
   * For dashboards: it may read every run of the filter (a store should keep it fast for ~100,000 runs).
   */
  countRuns(query: CountRunsQuery): Promise<Partial<Record<RunStatus, number>>>;

  /**
   * The signals queued for a run and not consumed yet: grouped by name (names in any order), each name's in the order
   * they were sent. Empty for an unknown or ended run (an ended run's signals are deleted).
   */
  listSignals(runId: string): Promise<QueuedSignal[]>;

  /**
   * The live runs (statuses in `LIVE_STATUSES`), grouped by (workflow, version, pipeline, currentStep), with counts
   * and a few run ids each. For the compatibility check at deploy time: it may read every live run, but never an
   * ended one (a store keeps it fast with many ended runs).
   */
  summarizeLiveRuns(): Promise<LiveRunGroup[]>;

  /** Stores a pipeline description under its fingerprint (idempotent: the same fingerprint always has the same body). */
  savePipeline(fingerprint: string, body: string): Promise<void>;

  /** The bodies of the pipelines saved under these fingerprints (unknown ones are left out). */
  getPipelines(fingerprints: readonly string[]): Promise<Record<string, string>>;

  /** Delete terminal runs with one of `statuses` finished more than `olderThanMs` ago (steps, signals, history too). */
  purge(statuses: readonly RunStatus[], olderThanMs: number): Promise<number>;

  /**
   * Receive events published by any instance sharing the store (optional: without it, other instances find work by
   * polling). Resolves to an unsubscribe function.
   */
  subscribe?(listener: (event: StoreEvent) => void): Promise<() => Promise<void>>;
  /**
   * Broadcast `body` (at most {@link PUBLISH_MAX_BYTES} bytes, else `InvalidArgumentError`) to every subscriber of
   * every instance sharing the store, this one included, as a `message` event. Not stored: an instance that is not
   * subscribed at that moment never sees it. Optional, with `subscribe`.
   */
  publish?(body: string): Promise<void>;
}
