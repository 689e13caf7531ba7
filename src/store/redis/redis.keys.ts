import { InvalidArgumentError } from '../../errors/errors.js';
import { RUN_STATUSES, TERMINAL_STATUSES, type RunStatus } from '../run-state-machine.js';

/**
 * Key layout of the Redis store.
 *
 * Per run (all in the slot of the run's hash tag, `{<base64url of the UTF-8 run id>}`):
 * - `<prefix>{<tag>}:r` hash: the run's fields (see `redis.fields.ts` for the field names)
 * - `<prefix>{<tag>}:s` hash: step visits, field = index (decimal), value = JSON of the step
 * - `<prefix>{<tag>}:q` hash: signal queues, FIFO per name (`h:<name>` head, `t:<name>` tail, `v:<pos>:<name>` payload,
 *   `o:<pos>:<name>` the order it was sent in: the value of the run's send counter `n` then; a wait for several names
 *   takes the queued signal of the lowest order), `n` that send counter, `c` the number of queued signals of all names
 *   (kept by every push and take, so that `SendSignalOptions.maxQueued` is checked in O(1); a queue written before it
 *   existed is counted once from its heads and tails, `queuedCount` in `lua/prelude.lua`); deleted when the run ends,
 *   is replaced or purged, kept through continue-as-new
 * - `<prefix>{<tag>}:i` set: the ids of the signals accepted for the run (`sendSignal` with an id: a repeated one
 *   stores nothing). Kept when the run ends or restarts (continue-as-new); deleted with the run (replace, purge, ttl)
 * - `<prefix>{<tag>}:c` zset childRunId → the child's createdAt: the children a parent spawned or linked
 *   (`ListRunsQuery.parentRunId`). Written by the parent's `children` commit. It belongs to the run id, not to one
 *   run: a child stays linked to its parent's id (its `par`) when the parent is replaced, purged or expires, so the list
 *   is kept then (never expired, never deleted with the run). A purged child leaves it (`purge`); an entry whose run
 *   is gone or names another parent is dropped when `listRuns` meets it; an empty list is no key
 * - `<prefix>{<tag>}:e` list: the run's history, oldest first, each entry `<seq>:<body>` (decimal seq, then the body
 *   verbatim); seqs are contiguous (appends only, trimmed from the head to `RUN_HISTORY_LIMIT`), and the last seq given
 *   is the run hash's `hs` field. Deleted with the run (replace, purge)
 * With the store's `ttl`, the commit that ends a run sets its keys to expire `ttl` later; `retry` removes the expiry.
 * The global index entries of an expired run stay until it is seen gone (list, claims, purge, reindex: `redis.expiry.ts`).
 *
 * Parent and child runs are in different slots: a parent's `children` commit creates its children held (not due) in
 * their slots first, then commits the parent (it waits until its count of ended children, `ce`, reaches a number),
 * then releases them; a child's terminal commit returns its parent, whose count the store then increments with a
 * second script in the parent's slot (the count only ever goes up, so no write overwrites another's). A waiting
 * parent is due again after `childRecheckMs`, so that a step lost to a crash between two of these writes is made up
 * for by the parent's engine (see `RedisStore.commit`).
 *
 * Global indexes (all in the slot of the index hash tag, `{~<base64url of the prefix>}`):
 * - `...:c` zset runId → createdAt (list, no filter)
 * - `...:w:<wf>` zset runId → createdAt (list by workflow)
 * - `...:s:<status>` zset runId → createdAt (list by status; its ZCARD: `countRuns`)
 * - `...:ws:<wf>:<status>` zset runId → createdAt (list by workflow and status; its ZCARD: `countRuns` of a workflow)
 * - `...:due` zset runId → earliest time the run may be claimable (claims)
 * - `...:dv:<wf>:<ver>` zset runId → same, per (workflow, version) (claims restricted to workflow versions: a key
 *   holds only runs of its pair, so due runs of other versions never hold back a claimer's own: no head-of-line
 *   blocking). `<ver>` is the run's `ver` field as stored: verbatim when it is a plain decimal integer, else `~` and
 *   its base64url (a damaged field).
 * - `...:f:<status>` zset runId → finishedAt, per terminal status (purge)
 * - `...:due:p:<n>`, `...:dv:<wf>:<ver>:p:<n>` zsets: the same as `...:due` / `...:dv:<wf>:<ver>`, for the due runs of
 *   priority `<n>` (a non-zero `NewRun.priority`, decimal): the keys above hold the runs of priority 0 only, so claims
 *   of runs without priorities read exactly what they read before priorities existed. `<due key>:pl` zset priority →
 *   priority: the non-zero levels that key has runs in (a level leaves it with its last run). Claims visit the levels
 *   from the highest to the lowest, level 0 being the key itself (`claim-candidates.lua`)
 * - `...:m` hash runId → `<index version>|<status>|<workflow>` of the index entries (makes index updates idempotent);
 *   `<index version>:<priority>|<status>|<workflow>` for a run of non-zero priority (its due entries' level)
 * - `...:k` zset `<op id><runId>` → 0 / first time seen: write-ahead marks of index updates in flight
 * - `...:pipelines` hash fingerprint → pipeline description (`savePipeline`: written once, `HSETNX`; `getPipelines`)
 * - `...:layout` string: the version of this key layout ({@link INDEX_LAYOUT}); absent in a store written before it
 *   existed (layout 1). `...:layout-lock` string: held by the instance that migrates the indexes (`redis.layout.ts`).
 * - `...:fc` hash runId → `<flags>|<slot epoch>|<cc>|<rl>`: the flow entry of a run with a concurrency or rate limit,
 *   copied from its run hash by the index update (`cc`, `rl`, `se` fields, see `redis.fields.ts`); flags: `h` holds a
 *   slot (`sh`), `c` a cancel is pending, `f` first claim ahead (pending, no step entry: rule F3 applies)
 * - `...:ch:<base64url of the concurrency key>` set: the ids of the runs that hold (or are admitted to) one of the key's
 *   slots (rule F2); its SCARD is the number of slots held
 * - `...:cw:<base64url of the concurrency key>` zset `<order>|<runId>` → 0: the key's waiters, runs a claim passed over
 *   because the key's slots were all held (parked, see below); all scores are 0, and `<order>` (`a` + 16 digits for a
 *   priority above 0, `b` for 0, `c` + 16 digits below 0, then the original due score in 16 digits) makes the
 *   lexically first member the first in claim order: highest priority, then earliest due
 * - `...:cp` hash runId → `<pushes>|<pushed score>|<original score>|<key>|<order>|<due keys>`: a parked run's entry
 *   (`<key>` base64url, `<due keys>` the due entries it pushed, as suffixes of the index prefix, `|`-separated)
 * - `...:rb:<base64url of the rate key>` zset `<slot epoch>:<runId>` → when that run began (its first claim, rule F3):
 *   the sliding window, trimmed to the last `perMs` and at most `limit` entries; expires `perMs` after its last write
 * - `...:db` hash debounce key → `<runId>|<time ms>`: the run a debounce key folds into, and when the key started it
 *   (rule D). A key's entry is replaced (compare-and-set) when its run can no longer take a fold; it is not deleted
 *   when its run ends (one entry per key ever used, as the memory store keeps them)
 *
 * Flow control (rules F1–F4 of `claimRuns`). Slots and begins are counted in the index slot, away from the runs; a claim
 * of a run with limits is two writes: the admission in the index slot (`claim-candidates.lua` for `claimRuns`, the
 * `admit` op of `flow-index.lua` otherwise), which checks the limits and adds the run id to its key's holder set (and
 * its begin to the rate window), then the fenced claim in the run's slot, which takes the admission: it sets `sh` and
 * leases the run. A run that needs no admission (no limits, a pending cancel, a slot already held, not a first claim)
 * is claimed in one write as before. Why a crash between the two writes can neither double a slot nor leak one for good:
 * - an admission adds the run id itself to the holder set (SADD): admitting a run twice, by two claimers or by a retry
 *   after a crash, holds one slot, and a run already in the set is admitted without taking another;
 * - an admission is made for the run's slot epoch (`se`, as the index has it) and the claim checks it: the run slot
 *   refuses a claim whose admission is of another epoch (the run ended, was replaced, or gave its slot back since),
 *   and the claimer asks for a new admission. So the holder set never loses a member whose run holds a slot;
 * - a member is removed only when the index update of a new epoch of the run is applied (the commit that ends it, a
 *   replace, a release with scope `step`, `releaseLease`, a pause of an unleased run with scope `step`: each bumps `se`
 *   and is followed by the index update that every such change already has) or when the run is gone (purge, expiry).
 *   An admission whose claim never happened (the claimer crashed, or took fewer runs than it admitted) leaves the run
 *   in the set: the run is due, and is admitted first by the next claim (it is a member); the slot goes back when the
 *   run ends (or releases it, scope `step`), like any other. An index update lost to a crash is repaired from its kick.
 * On a Redis that is not a Cluster (one node holds every key), the two writes are one where they can be: `createRun`
 * with a lease and the claim scripts (`claim-run.lua`, `claim-owned-run.lua`) are also given the index slot's flow
 * entries (and meta) as KEYS and take the run's admission themselves (`admitRun` of `prelude.lua`, what `FLOW_INDEX`
 * `new` and `admit` do), atomically with the claim. `claimRuns` still admits its first candidates in the candidates
 * script, ahead of their claims, so the reasoning above still applies there. On a Cluster the index slot is another
 * slot (most often on another node) and no script may take keys of two slots: the admission stays a write of its own.
 * Parked runs (rule F4 with many runs of one key blocked): a claim that passes a run over because its key's slots are
 * all held, or the index update of a run that is due while they are, pushes the run's due entries (its version's and
 * the global one) to now + a park interval (see `parkRun` in `lua/prelude.lua`: 1 s to 30 s) and adds it to the key's
 * waiters, so that claims read past it instead of meeting it again (a claim reads a bounded number of due entries).
 * Whatever gives a slot of the key back (the index update that removes a member from the holder set, or an admission of
 * a new slot epoch that does not take it again) wakes the key's first waiter per slot in the same script: its due
 * entries go back to their original score, only where they still have the pushed one. A run whose own index entry is
 * applied (claimed, cancelled, paused, replaced, gone, repaired) leaves the waiters, and its index update writes its
 * due entries anew (and parks it again if it is still blocked). A wake-up that is lost (a woken run that was cancelled
 * or paused before a claim took the slot) delays a parked run by its park interval at most: its pushed score comes due
 * and the next claim checks it again, so nothing waits for a wake-up for good.
 * Scripts of the index slot name the holder sets, rate windows, waiters and priority levels from the keys they are
 * given (a run's flow entry names its keys): they are all in the index slot, never another.
 *
 * Layout 1 (before workflow versions were claimed side by side) had `...:dw:<wf>` due zsets per workflow instead of
 * `...:dv:<wf>:<ver>`; `init()` migrates a store of layout 1 once (`redis.layout.ts`).
 *
 * Run ids and workflow names are encoded with base64url, so no byte of user data can change a key's slot, form
 * another run's key or collide with another name (base64url never contains `{`, `}` or `:`).
 */

/** The version of the key layout this release writes (see above). */
export const INDEX_LAYOUT = 2;

/**
 * The apply script's leading keys (`applyBase()`), section by section, in order: the script finds each key at the
 * position {@link APPLY_KEYS} computes from this list.
 */
const APPLY_BASE_SECTIONS = [
  ['created', 1],
  ['meta', 1],
  ['kicks', 1],
  ['due', 1],
  ['byStatus', RUN_STATUSES.length],
  ['finished', TERMINAL_STATUSES.length],
] as const;

/** The keys of one workflow's index group (`workflowGroup()`), section by section, in order. */
const WORKFLOW_GROUP_SECTIONS = [
  ['byWorkflow', 1],
  ['byWorkflowStatus', RUN_STATUSES.length],
] as const;

type Offsets<S extends readonly (readonly [string, number])[]> = { readonly [K in S[number][0]]: number };

/** Position of each section's first key, counted from `start`, and the total size. */
function offsets<S extends readonly (readonly [string, number])[]>(sections: S, start: number): Offsets<S> & { readonly size: number } {
  const out: Record<string, number> = {};
  let at = start;
  for (const [name, size] of sections) {
    out[name] = at;
    at += size;
  }
  out.size = at - start;
  return out as Offsets<S> & { size: number };
}

/**
 * Lua (1-based) `KEYS` positions of the apply script's leading keys: `byStatus` is the key of `RUN_STATUSES[0]`, the
 * key of the i-th status (1-based) is at `byStatus + i - 1`; likewise `finished` for `TERMINAL_STATUSES`. The
 * workflow groups start at `groups`; the due keys of (workflow, version) pairs follow the last group, one key each.
 */
export const APPLY_KEYS = (() => {
  const base = offsets(APPLY_BASE_SECTIONS, 1);
  return { ...base, groups: 1 + base.size };
})();

/**
 * Offsets of a workflow group's keys from the group's first key (0-based), and the size of a group: the g-th group
 * (1-based) starts at `APPLY_KEYS.groups + (g - 1) * WORKFLOW_GROUP_KEYS.size`.
 */
export const WORKFLOW_GROUP_KEYS = offsets(WORKFLOW_GROUP_SECTIONS, 0);

/** Whether a JS string can be stored and read back byte for byte (no lone UTF-16 surrogates). */
function isWellFormed(value: string): boolean {
  const fn = (String.prototype as { isWellFormed?: () => boolean }).isWellFormed;
  if (fn) return fn.call(value);
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(value);
}

/** base64url of the UTF-8 bytes: injective on well-formed strings, and free of `{`, `}`, `:`. */
export function encodeName(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64url');
}

/** A version in a key name: a plain decimal integer verbatim, anything else (a damaged field) `~` + base64url. */
function versionPart(version: string): string {
  return /^-?\d{1,16}$/.test(version) ? version : `~${encodeName(version)}`;
}

/** Escapes the glob characters of a SCAN MATCH pattern. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** Checks a text a key name is made of (a concurrency, rate or debounce key): a well-formed string. */
export function checkKeyText(what: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${what} must be a string, got ${typeof value}.`);
  if (!isWellFormed(value)) throw new InvalidArgumentError(`${what} must be well-formed Unicode (it contains a lone UTF-16 surrogate).`);
}

/** Checks a run id can be used as data in keys: a non-empty, well-formed string. */
export function checkRunId(runId: unknown): asserts runId is string {
  if (typeof runId !== 'string' || runId.length === 0) {
    throw new InvalidArgumentError('A run id must be a non-empty string.');
  }
  if (!isWellFormed(runId)) {
    throw new InvalidArgumentError('A run id must be well-formed Unicode (it contains a lone UTF-16 surrogate).');
  }
}

/** Whether a value can name a run's keys (see `checkRunId`). */
export function isRunId(value: unknown): value is string {
  try {
    checkRunId(value);
    return true;
  } catch {
    return false;
  }
}

export interface RunKeys {
  run: string;
  steps: string;
  signals: string;
  /** The run's history (list). */
  events: string;
  /** The ids of the signals accepted for the run (set). */
  signalIds: string;
  /** The run's children (zset: child id → createdAt). */
  children: string;
}

/** Key names of one prefix. */
export class RedisKeys {
  /** Prefix of every global index key, including its hash tag. */
  readonly index: string;
  readonly created: string;
  readonly due: string;
  readonly meta: string;
  readonly kicks: string;
  /** Pipeline descriptions by fingerprint (`savePipeline` / `getPipelines`). */
  readonly pipelines: string;
  /** The key layout's version (see {@link INDEX_LAYOUT}). */
  readonly layout: string;
  /** Held by the instance migrating the key layout. */
  readonly layoutLock: string;
  /** Pub/sub channel of store events. */
  readonly channel: string;
  /** Flow entries of the runs with concurrency or rate limits (hash runId → entry; see above). */
  readonly flow: string;
  /** Debounce keys → the run each folds into (rule D). */
  readonly debounces: string;

  constructor(readonly prefix: string) {
    this.index = `${prefix}{~${encodeName(prefix)}}`;
    this.created = `${this.index}:c`;
    this.due = `${this.index}:due`;
    this.meta = `${this.index}:m`;
    this.kicks = `${this.index}:k`;
    this.pipelines = `${this.index}:pipelines`;
    this.layout = `${this.index}:layout`;
    this.layoutLock = `${this.index}:layout-lock`;
    this.channel = `${prefix}events`;
    this.flow = `${this.index}:fc`;
    this.debounces = `${this.index}:db`;
  }

  /** The holder set of a concurrency key (rule F2). */
  holders(concurrencyKey: string): string {
    return `${this.index}:ch:${encodeName(concurrencyKey)}`;
  }

  /** The waiters zset of a concurrency key: its parked runs, first in claim order first (rule F2; see above). */
  waiters(concurrencyKey: string): string {
    return `${this.index}:cw:${encodeName(concurrencyKey)}`;
  }

  /** The parked runs' entries (hash runId → park entry; see above). */
  get parked(): string {
    return `${this.index}:cp`;
  }

  /** The begin window of a rate key (rule F3). */
  begins(rateKey: string): string {
    return `${this.index}:rb:${encodeName(rateKey)}`;
  }

  /** The due index of one priority level of a due key (`due` or a `dueByVersion` key): level 0 is the key itself. */
  dueLevel(dueKey: string, priority: number): string {
    return priority === 0 ? dueKey : `${dueKey}:p:${priority}`;
  }

  /** The zset of the non-zero priority levels a due key has runs in. */
  dueLevels(dueKey: string): string {
    return `${dueKey}:pl`;
  }

  run(runId: string): RunKeys {
    checkRunId(runId);
    const base = `${this.prefix}{${encodeName(runId)}}`;
    return { run: `${base}:r`, steps: `${base}:s`, signals: `${base}:q`, events: `${base}:e`, signalIds: `${base}:i`, children: `${base}:c` };
  }

  byStatus(status: RunStatus): string {
    return `${this.index}:s:${status}`;
  }

  finished(status: RunStatus): string {
    return `${this.index}:f:${status}`;
  }

  byWorkflow(workflow: string): string {
    return `${this.index}:w:${encodeName(workflow)}`;
  }

  byWorkflowStatus(workflow: string, status: RunStatus): string {
    return `${this.index}:ws:${encodeName(workflow)}:${status}`;
  }

  /**
   * The due index of one (workflow, version) pair. `version` is the run's `ver` field as the scripts return it (a
   * string), or the number of a claim filter (the store writes `String(version)`).
   */
  dueByVersion(workflow: string, version: string | number): string {
    return `${this.index}:dv:${encodeName(workflow)}:${versionPart(String(version))}`;
  }

  /** The (workflow, version) pair of a {@link RedisKeys.dueByVersion} key name, or undefined for another key. */
  parseDueByVersion(key: string): { workflow: string; version: string } | undefined {
    const head = `${this.index}:dv:`;
    if (!key.startsWith(head)) return undefined;
    const match = /^([A-Za-z0-9_-]*):(-?\d+|~[A-Za-z0-9_-]*)$/.exec(key.slice(head.length));
    if (!match) return undefined;
    const workflow = Buffer.from(match[1], 'base64url').toString('utf8');
    const version = match[2].startsWith('~') ? Buffer.from(match[2].slice(1), 'base64url').toString('utf8') : match[2];
    return this.dueByVersion(workflow, version) === key ? { workflow, version } : undefined;
  }

  /**
   * The due key and priority of a priority level key ({@link RedisKeys.dueLevel} of `due` or of a `dueByVersion` key,
   * priority not 0), or undefined for another key.
   */
  parseDueLevel(key: string): { dueKey: string; priority: number } | undefined {
    const match = /^(.*):p:(-?\d{1,16})$/.exec(key);
    if (!match) return undefined;
    const priority = Number(match[2]);
    const dueKey = match[1];
    if (priority === 0 || !Number.isSafeInteger(priority) || this.dueLevel(dueKey, priority) !== key) return undefined;
    return dueKey === this.due || this.parseDueByVersion(dueKey) ? { dueKey, priority } : undefined;
  }

  /** Glob (SCAN MATCH) of every priority level key of the global due index. */
  get dueLevelPattern(): string {
    return `${globEscape(this.due)}:p:*`;
  }

  /** Glob (SCAN MATCH) of every {@link RedisKeys.dueByVersion} key. */
  get dueByVersionPattern(): string {
    return `${globEscape(this.index)}:dv:*`;
  }

  /** Layout 1's due index of a workflow (see above): only the migration and its tests name it. */
  legacyDueByWorkflow(workflow: string): string {
    return `${this.index}:dw:${encodeName(workflow)}`;
  }

  /** Glob (SCAN MATCH) of every layout 1 per-workflow due key. */
  get legacyDuePattern(): string {
    return `${globEscape(this.index)}:dw:*`;
  }

  /** The keys of one workflow's index group, in the order of {@link WORKFLOW_GROUP_KEYS}. */
  workflowGroup(workflow: string): string[] {
    const sections: Record<(typeof WORKFLOW_GROUP_SECTIONS)[number][0], string[]> = {
      byWorkflow: [this.byWorkflow(workflow)],
      byWorkflowStatus: RUN_STATUSES.map((s) => this.byWorkflowStatus(workflow, s)),
    };
    return WORKFLOW_GROUP_SECTIONS.flatMap(([name]) => sections[name]);
  }

  /** The fixed leading keys of the apply script, in the order of {@link APPLY_KEYS}. */
  applyBase(): string[] {
    const sections: Record<(typeof APPLY_BASE_SECTIONS)[number][0], string[]> = {
      created: [this.created],
      meta: [this.meta],
      kicks: [this.kicks],
      due: [this.due],
      byStatus: RUN_STATUSES.map((s) => this.byStatus(s)),
      finished: TERMINAL_STATUSES.map((s) => this.finished(s)),
    };
    return APPLY_BASE_SECTIONS.flatMap(([name]) => sections[name]);
  }
}

/** CRC16/XMODEM, as Redis Cluster uses for key slots. */
function crc16(bytes: Buffer): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Redis Cluster slot of a key (hash tags honoured). */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % 16384;
  }
  return crc16(bytes) % 16384;
}
