import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderLuaScript } from './redis.lua-definitions.js';

/**
 * Lua scripts of the Redis store, one file each in `lua/` (shipped in `dist/store/redis/lua/` by `npm run build`).
 * Every state change of a run is one of the per-run scripts below: it touches only that run's keys (one hash tag, so
 * one Cluster slot), reads the clock with `TIME`, and returns the run's *index record* so the client can update the
 * global indexes (see `APPLY_INDEX`).
 *
 * Each script is sent as the shared helpers of `lua/prelude.lua` then its own file, with the definitions it uses
 * (statuses and their classes, commit ops, apply key positions) rendered from TypeScript by `redis.lua-definitions.ts`.
 * The run hash fields are listed in `redis.fields.ts`.
 *
 * An index record is `{runId, exists, iv, workflow, status, createdAt, claimAt, finishedAt, version, priority,
 * flow}`, all strings; `claimAt` is the earliest time the run may be claimed (max of `due` and the lease expiry) or -1
 * when it is not due; `version` is the run's `ver` field verbatim (its due index is per workflow and version);
 * `priority` the run's `pri` field ('' for 0); `flow` its flow entry (`<flags>|<slot epoch>|<cc>|<rl>`, '' for a run
 * without limits: see `redis.keys.ts`).
 *
 * Damaged fields (written by hand or by a bug) never make a script fail halfway: numbers are read with `num`, which
 * gives nil for anything but a plain integer, and every script checks its arguments before its first write. A run
 * whose `st` is not a status is never claimed (parked); a damaged `due` or lease expiry makes a claimable run due, so
 * that a worker claims it, sees the damage the decoder reports and fails the run.
 */
export interface LuaScript {
  /** The script's name: its file is `lua/<name in kebab case>.lua`, its first line `-- cairn:<name>`. */
  readonly name: string;
  /** The source sent to Redis: the shared `lua/prelude.lua` then the script's own file, rendered by `renderLuaScript`. */
  readonly lua: string;
  /** SHA1 of {@link LuaScript.lua}, for EVALSHA. */
  readonly sha: string;
}

/**
 * The folder of this module. NOTE: without `import.meta`, on purpose: Jest in a CommonJS app (ts-jest, the Nest CLI's
 * setup) compiles the package to CommonJS, where `import.meta` is a syntax error that would break importing the
 * package at all. There `__dirname` is defined; as an ES module, the module's own stack frame tells its file.
 */
function moduleDir(): string {
  if (typeof __dirname === 'string') return __dirname;
  const { prepareStackTrace, stackTraceLimit } = Error;
  try {
    Error.prepareStackTrace = (_error, frames) => frames;
    Error.stackTraceLimit = 1;
    const frames = new Error().stack as unknown as NodeJS.CallSite[];
    const file = frames[0]?.getFileName() ?? '';
    return dirname(file.startsWith('file:') ? fileURLToPath(file) : file);
  } finally {
    Error.prepareStackTrace = prepareStackTrace;
    Error.stackTraceLimit = stackTraceLimit;
  }
}

let luaDir: string | undefined;

/** Reads a file of `lua/` next to this module (in `src/` under Jest and the bench, in `dist/` once built). */
function readLua(file: string): string {
  luaDir ??= join(moduleDir(), 'lua');
  return readFileSync(join(luaDir, file), 'utf8');
}

let prelude: string | undefined;

/** A script read from its file on first use, so that importing the package reads no file. */
class FileScript implements LuaScript {
  private source?: string;
  private hash?: string;

  constructor(readonly name: string) {}

  get lua(): string {
    if (this.source === undefined) {
      prelude ??= readLua('prelude.lua');
      const file = this.name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      this.source = renderLuaScript(this.name, `${prelude}\n${readLua(`${file}.lua`)}`);
    }
    return this.source;
  }

  get sha(): string {
    this.hash ??= createHash('sha1').update(this.lua).digest('hex');
    return this.hash;
  }
}

function script(name: string): LuaScript {
  return new FileScript(name);
}

/**
 * KEYS: run, steps, signals, events, signal ids, then (a Redis that is not a Cluster only, with admission `new`) the
 * index slot's flow entries and meta. ARGV: runId, workflow, version, input, state, hasCurrentStep, currentStep,
 * onConflict, leaseOwner, hasLease, leaseMs, leaseToken, channel, eventCount, then eventCount history bodies, then
 * (for a run with a priority, a due time, limits or a debounce key) the options section: `opt`, priority, cc, rl, due
 * kind (`in`/`at`/''), due value, admission (rule F4: leased at once only with one; `new`: the script takes it itself,
 * as {@link FLOW_INDEX} `new` would, from the index keys it is given), debounce (`own`/`fold`/''), the
 * debounce key's first time, delay, max delay (see the script), then (stepIndex, stepJson) pairs. With a lease asked for
 * and not given (due later, or not admitted), the run is created pending without the `running` step entries.
 * Debounce (rule D): `runId` and KEYS are the debounce key's run: this call folds into it, or creates it when missing.
 * Returns {created, snapshot, record, previousWorkflow, lastEventSeq (0: no event written), previousVersion (the
 * replaced run's `ver` field; nil when no run was replaced), debounce outcome ('' none; `created`: created as the key's
 * run, `folded`: folded into it (or created it for its owner), `own`: the key's run, this call's id, exists already,
 * `stale`: the key's run can take no fold any more: nothing written)}: the snapshot is the run as
 * this call left it (the created run with its lease, or the kept one). A replacement deletes the replaced run's
 * history; the new run's starts at seq 1. A replacement gets the replaced run's generation + 1 and an index version
 * above the replaced run's, so nothing written for the replaced run (index records, late commits) can override it.
 */
export const CREATE_RUN = script('createRun');

/** KEYS: run, steps. ARGV: runId. Returns {snapshot, record}. */
export const READ_RUN = script('readRun');

/**
 * Fenced claim of one run. KEYS: run, steps, then (a Redis that is not a Cluster only) the index slot's flow entries.
 * ARGV: runId, owner, leaseMs, token, pairCount, then pairCount (workflow, version) pairs (pairCount -1: no filter; a
 * version matches the run's `ver` field as a string), then the run's admission (optional: `<slot epoch>:<slot 1/0>:<begin
 * 1/0>` from the index slot, for a run with limits). Returns {1, snapshot, record, recovered, previousOwner (nil if
 * none), orphanedMs}, {0, record}, or {2, record, needs}: the run's limits need an admission it was not given (see
 * `flowClaim` in `lua/prelude.lua`; `needs` is what {@link FLOW_INDEX} `admit` takes for it); nothing written. Given the
 * flow entries, the script takes that admission itself (`admitRun`) and claims the run, or replies {0, record} when its
 * limits pass it over: never `2`.
 */
export const CLAIM_RUN = script('claimRun');

/**
 * `claimOwnedRuns` of one run: claims it when it is leased to `owner` (expired or not), its status is claimable and it
 * has a due time (passed or not). KEYS and ARGV as {@link CLAIM_RUN}. Returns
 * {1, snapshot, record, 1, previousOwner, orphanedMs}, {0, record} or, as {@link CLAIM_RUN}, {2, record, needs}.
 */
export const CLAIM_OWNED_RUN = script('claimOwnedRun');

/** KEYS: run. ARGV: token, leaseMs. Returns {0} or {1, cancelRequested ('' none), pauseRequested}. */
export const RENEW_LEASE = script('renewLease');

/**
 * KEYS: run. ARGV: runId, token, channel. Returns {0} or {1, record}. A run whose concurrency scope is `step` gives its
 * slot back (rule F2: `sh` deleted, a new slot epoch).
 */
export const RELEASE_LEASE = script('releaseLease');

/**
 * The fenced commit of RunPatch, in one script: rules 1-8 of the interface, except the parent's side of rule 4 (the
 * script returns the parent; see {@link CHILD_ENDED}) and the children's side of rule 8 ({@link SPAWN_CHILD} before,
 * {@link RELEASE_CHILD} after). KEYS: run, steps, signals, events, signal ids, children.
 * ARGV: runId, token, leaseMs, channel, then ops, each its code and arguments as `COMMIT_OPS` defines them (built by
 * `encodePatch` in `redis.commit-ops.ts`). The ops are checked before the first write (an invalid one writes nothing).
 * Returns {0} or {1, paused, cancel ('' none, '0' no compensation, else compensate), consumed, payload, record,
 * indexDirty, lastEventSeq (0: the patch had no events), consumed signal's name ('' none), childrenReady (1/0),
 * parent ('' unless the commit ended a live run that has a parent), status}. Rule F2: a run with limits that ends, or
 * whose concurrency scope is `step` and whose lease is released, gives its slot back (`sh` deleted, a new slot epoch);
 * `indexDirty` is set whenever the run's flow entry changed, so the index update that frees the slot is sent.
 */
export const COMMIT = script('commit');

/**
 * KEYS: run, signals. ARGV: runId, token, then the names waited for (the earliest sent queued signal of them is taken).
 * Returns {0} or {1, got, payload, timedOut, record, name ('' none)}.
 */
export const TAKE_SIGNAL = script('takeSignal');

/**
 * KEYS: run, signals, events, signal ids. ARGV: runId, name, payload, channel, hasId ('1'/'0'), id, maxQueued ('': no
 * bound), then the history event (optional), appended when the outcome is `ok`. A repeated id is `noop`; a run that
 * already holds `maxQueued` queued signals (the queue's count `c`, see `redis.keys.ts`) is `full`, nothing written.
 * Returns {outcome, status, record, eventSeq (0: none appended)}.
 */
export const SEND_SIGNAL = script('sendSignal');

/**
 * KEYS: run, steps, signals, events, signal ids (`retry` removes the expiry of them all). ARGV: runId, action, compensate
 * ('1'/'0'), channel, hasNextInput ('1'/'0'), nextInput (set by a `retry` that has it, '' otherwise), then the history
 * event (optional), appended when the outcome is `ok`.
 * Returns {outcome, status, record, eventSeq (0: none appended)}. A pause of an unleased run whose concurrency scope
 * is `step` gives its slot back (rule F2).
 */
export const CONTROL = script('control');

/**
 * The signals queued for a run. KEYS: run, signals. ARGV: runId. Returns the signal hash's fields and values
 * (`HGETALL`, see `redis.keys.ts`: heads, tails and payloads), or none for an unknown or ended run.
 */
export const LIST_SIGNALS = script('listSignals');

/**
 * Deletes one run (its history too) if it is terminal, of one of the statuses and finished before now - olderThanMs.
 * KEYS: run, steps, signals, events, signal ids (not the children list: see `redis.keys.ts`). ARGV: runId,
 * olderThanMs, statuses... Returns {deleted, record, parent ('' none: the store removes a purged child from its
 * parent's children list)}.
 */
export const PURGE_RUN = script('purgeRun');

/**
 * A page of a run's history. KEYS: run, events. ARGV: runId, afterSeq, limit (integers). Returns up to `limit` entries
 * `<seq>:<body>` in seq order, from the first with a seq above afterSeq (found from the oldest entry's seq: seqs are
 * contiguous); none when the run does not exist.
 */
export const LIST_EVENTS = script('listEvents');

/**
 * Claim candidates from the global due indexes (one slot). KEYS: kicks, flow entries, due zsets... ARGV: count, graceMs,
 * kickLimit, reserve. Returns {runIds in priority then due order, orphaned kick members, for each run id the position
 * (1-based, among the due zsets) of the zset it was read from, for each run id its admission ('' for a run without
 * limits)}. Runs with limits are admitted (rules F2, F3; the first `reserve` candidates take their slot and begin, the
 * others are only checked) or passed over without taking a place. Marks kicks seen for the first time with the time.
 */
export const CLAIM_CANDIDATES = script('claimCandidates');

/**
 * Candidates of `claimOwnedRuns` (one slot): a page of the due indexes by rank, every score. KEYS: due zsets...
 * ARGV: start rank, count. Returns {runIds, more (1 when a key may hold more)}.
 */
export const OWNED_CANDIDATES = script('ownedCandidates');

/** Purge candidates (one slot). KEYS: finished zsets. ARGV: olderThanMs, limit. Returns run ids. */
export const PURGE_CANDIDATES = script('purgeCandidates');

/**
 * Applies index records to the global indexes (one slot), idempotently: a record older than (or as old as) the one
 * last applied for that run is ignored, so records may arrive late, twice or out of order. A repair record (read
 * because the index disagreed with the run) is applied when as old as the last one: same version, different data
 * means the run was edited behind the store's back.
 * KEYS: `RedisKeys.applyBase()` (created, meta, kicks, due, one by-status per status, one finished per terminal
 * status), then one `RedisKeys.workflowGroup()` per workflow (by-workflow, one by-workflow-status per status), then one
 * `RedisKeys.dueByVersion()` per (workflow, version) pair; the script finds them at the positions `APPLY_KEYS` and
 * `WORKFLOW_GROUP_KEYS` compute. ARGV: groupCount, group workflows..., pairCount, then the pairs (workflow, version)
 * in the order of their keys, then records of 13 fields: runId, exists, iv, workflow, status, createdAt, claimAt,
 * finishedAt, version, kick member ('' none), extra workflow ('' none), extra due pair (its 1-based position among the
 * pairs, 0 none: a due index that may hold the run although the run is of another pair), repair ('1'/'0'; `1+`/`0+`
 * when two more fields follow: the run's priority and flow entry, sent only for a run that has either, so records of
 * other runs are as before). Every record of an existing run has its workflow's group and its pair's key. A run of
 * non-zero priority is due in its pair's (and the global) key of that level; a run's flow entry is kept in `...:fc`
 * and its holder set membership follows it (see `redis.keys.ts`).
 * Each record is applied on its own: one of a damaged run is repaired (a status that is not one is indexed as parked,
 * a creation time that is not a number keeps the run's current score) and one that still fails is skipped, so it
 * never holds back the others. Returns {applied, skipped, first skip error ('' none)}.
 */
export const APPLY_INDEX = script('applyIndex');

/**
 * The key layout's version and the lock of its migration (one slot: the index's). KEYS: layout, layout lock, created,
 * meta, due. ARGV: op, token, lockMs, current layout. Ops:
 * - `begin`: returns {layout, 1 when this caller took the lock}. A layout at least `current` is returned as it is (no
 *   lock); a store without a layout key and without index keys is new: its layout is set to `current`; otherwise
 *   (layout 1, or a lower one) the lock is taken when free (`SET NX PX lockMs`).
 * - `renew`: extends the lock held with `token` to lockMs. Returns {'', 1} or {'', 0} when it is not held.
 * - `done`: sets the layout to `current` (never lowers it) and releases the lock held with `token`.
 * - `release`: releases the lock held with `token`.
 */
export const INDEX_LAYOUT_SCRIPT = script('indexLayout');

/**
 * Step 0 of a parent's `children` commit (the parent's slot): fenced by the lease token, reads the clock once and lists
 * the ids about to be spawned under the parent (write-ahead, so held children left by a crash before the parent's
 * commit are found by `listRuns({ parentRunId })`), and starts the parent's children state (`ce` 0 when absent), so that a
 * child that ends before the parent's commit is counted. KEYS: the parent's run, its children list. ARGV: the parent's
 * id, token, then the child ids. Returns false (not the lease holder: nothing written) or the time in ms.
 */
export const SPAWN_INTENT = script('spawnIntent');

/**
 * Step 1 of a parent's `children` commit, per child (its slot): creates the child `pending`, held (not due), with its
 * parent and generation 1, or applies rule 8a to an existing id (never replaced; a parentless one is linked). KEYS: the
 * child's run, steps, signals, events, signal ids. ARGV: childId, parentId, workflow, version, input, state,
 * hasPipeline, pipeline, createdAt (ms: one clock reading for every child of the commit), eventCount, then the history
 * bodies. Returns {outcome, record, createdAt, ended} with outcome `created`, `linked` (a live run without a parent),
 * `linked-ended` (an ended one: linked for listing), `mine` (already this parent's) or `other` (another parent's, or
 * the parent itself), and `ended` 1 when the id's run existed ended (rule 8c: the parent's commit counts it), else 0.
 */
export const SPAWN_CHILD = script('spawnChild');

/**
 * Step 3 of a parent's `children` commit: a held child of that parent (`pending`, not due) becomes due now. KEYS: the
 * child's run. ARGV: childId, parentId, channel. Returns {released, record}.
 */
export const RELEASE_CHILD = script('releaseChild');

/**
 * The parent's side of rule 4, after a linked child's terminal commit (the parent's slot): its count of ended children
 * (`ce`, monotonic) goes up by one, `cf` is set for a child that did not complete, and a parent waiting for its
 * children whose condition holds (`ce >= cwe`, or failFast and `cf`) becomes due now (a parent without children state
 * is left alone). KEYS: the parent's run. ARGV: parentId, failed ('1'/'0'), channel. Returns
 * {0} (no such run) or {1, record, indexDirty}.
 */
export const CHILD_ENDED = script('childEnded');

/**
 * Flow control in the index slot (see `redis.keys.ts`). KEYS: flow entries, meta, debounces. ARGV: op, then:
 * - `admit`, then per run (runId, slot epoch, cc, rl, needsSlot, needsBegin) as a claim script's `2` reply gives them:
 *   returns each run's admission ('' passed over) (on a Cluster only: elsewhere the claim scripts take it themselves);
 * - `new`, runId, cc, rl: the admission of a run `createRun` is about to create with a lease ('' when the index knows
 *   the id, or its limits pass it over) (on a Cluster only: elsewhere {@link CREATE_RUN} takes it itself);
 * - `blocked`, then per run (runId, claimAt, slot epoch, cc, rl, holdsSlot, firstClaimAhead): each run's `blockedBy`
 *   ('' none, `concurrency`, `rate-limit`) for reads;
 * - `debounce`, key, runId, expected ('' none): the key's run and first time {runId, first}; the key is pointed at
 *   runId when it has none or, with `expected`, when it still names that `<runId>|<first>`.
 */
export const FLOW_INDEX = script('flowIndex');

/** Every script of the store, loaded by `init()`. */
export const ALL_SCRIPTS: readonly LuaScript[] = [
  CREATE_RUN,
  READ_RUN,
  CLAIM_RUN,
  CLAIM_OWNED_RUN,
  RENEW_LEASE,
  RELEASE_LEASE,
  COMMIT,
  TAKE_SIGNAL,
  SEND_SIGNAL,
  CONTROL,
  LIST_SIGNALS,
  PURGE_RUN,
  LIST_EVENTS,
  CLAIM_CANDIDATES,
  OWNED_CANDIDATES,
  PURGE_CANDIDATES,
  APPLY_INDEX,
  INDEX_LAYOUT_SCRIPT,
  SPAWN_INTENT,
  SPAWN_CHILD,
  RELEASE_CHILD,
  CHILD_ENDED,
  FLOW_INDEX,
];
