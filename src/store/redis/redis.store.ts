import { randomUUID } from 'node:crypto';
import { ConfigurationError, InvalidArgumentError, StoreError } from '../../errors/errors.js';
import { CLAIMABLE_STATUSES, TERMINAL_STATUSES } from '../run-state-machine.js';
import { throwsAsRejection } from '../store-call.js';
import type {
  ClaimedRun,
  CommitResult,
  ControlRequest,
  ControlResult,
  CountRunsQuery,
  CreateRunOptions,
  CreateRunResult,
  ChildrenPatch,
  LeaseRequest,
  ListEventsQuery,
  ListRunsQuery,
  LiveRunGroup,
  NewRun,
  QueuedSignal,
  RenewResult,
  RunOutcome,
  RunPatch,
  RunStatus,
  SendSignalOptions,
  StoreEvent,
  StoredRun,
  StoredRunEvent,
  TakeSignalResult,
  WorkflowRef,
  WorkflowStore,
} from '../workflow-store.interface.js';
import { PUBLISH_MAX_BYTES, RUN_HISTORY_LIMIT } from '../workflow-store.interface.js';
import { RedisClaims } from './redis.claims.js';
import { decodeOutcome, decodeRun, encodeConcurrency, encodeRateLimit, encodeStep, integerArg, type IndexRecord, type Snapshot } from './redis.codec.js';
import { encodeCommitOp, encodePatch } from './redis.commit-ops.js';
import { checkDurability, connectRedis, isCluster, type RedisClient } from './redis.connection.js';
import { errorMessage, guard } from './redis.errors.js';
import { RedisEvents } from './redis.events.js';
import { dropGoneRuns, parseTtl, sweepExpired } from './redis.expiry.js';
import { RedisIndexWriter } from './redis.index-writer.js';
import { checkKeyText, checkRunId, isRunId, keySlot, RedisKeys, type RunKeys } from './redis.keys.js';
import { RUN_FIELDS } from './redis.fields.js';
import { ensureIndexLayout } from './redis.layout.js';
import { RedisRunList } from './redis.list.js';
import { summarizeLiveRuns } from './redis.live.js';
import { reindexRuns } from './redis.reindex.js';
import { RedisScriptRunner } from './redis.script-runner.js';
import {
  CHILD_ENDED,
  COMMIT,
  CONTROL,
  CREATE_RUN,
  FLOW_INDEX,
  LIST_EVENTS,
  LIST_SIGNALS,
  PURGE_CANDIDATES,
  PURGE_RUN,
  READ_RUN,
  RELEASE_LEASE,
  RELEASE_CHILD,
  RENEW_LEASE,
  SEND_SIGNAL,
  SPAWN_CHILD,
  SPAWN_INTENT,
  TAKE_SIGNAL,
} from './redis.scripts.js';
import type { RedisStoreLogger, RedisStoreOptions } from './redis-store-options.interface.js';
import { RedisScheduleStore } from './redis.schedules.js';

export type { RedisStoreLogger, RedisStoreOptions } from './redis-store-options.interface.js';

const DEFAULT_LOGGER: RedisStoreLogger = {
  log: () => {},
  warn: (message) => console.warn(`[cairn] ${message}`),
  error: (message) => console.error(`[cairn] ${message}`),
};

/** Runs purged per round (one candidates script, then one script per run). */
const PURGE_BATCH = 200;

/**
 * The keys of a run that go with it (created, replaced, expired, purged, retried together), in the order the scripts
 * expect: run, steps, signals, events, signal ids. Not its children list (see `redis.keys.ts`).
 */
function ownKeys(keys: RunKeys): string[] {
  return [keys.run, keys.steps, keys.signals, keys.events, keys.signalIds];
}

/** The commit script's keys: {@link ownKeys}, then the children list. */
function commitKeys(keys: RunKeys): string[] {
  return [...ownKeys(keys), keys.children];
}

/** Default of `RedisStoreOptions.childRecheckMs`. */
const DEFAULT_CHILD_RECHECK_MS = 30_000;

/** A spawn entry's outcome from `SPAWN_CHILD` (see `redis.scripts.ts`). */
type SpawnOutcome = 'created' | 'linked' | 'linked-ended' | 'mine' | 'other';

/**
 * A spawn entry after step (1) of a `children` commit: its outcome, whether it is held, its createdAt (ms text), and
 * whether its run existed and had ended (rule 8c: counted by the parent's commit).
 */
interface SpawnedChild {
  runId: string;
  outcome: SpawnOutcome;
  held: boolean;
  createdAt: string;
  ended: boolean;
}

/** The outcome of a client request script: `{outcome, status, record, eventSeq (0: none appended)}`. */
type RequestReply = [string, string, IndexRecord, number];

function controlResult([outcome, status, , eventSeq]: RequestReply): ControlResult {
  if (outcome === 'not-found') return { outcome };
  const result: ControlResult = { outcome: outcome as ControlResult['outcome'], status: status as RunStatus };
  if (eventSeq > 0) result.eventSeq = eventSeq;
  return result;
}

/**
 * `SendSignalOptions.maxQueued` as the send script's argument: '' for no bound (absent, NaN or +Infinity: a count is
 * never at least those, as in the memory store), '-1' for -Infinity (always full), else the number.
 * @throws InvalidArgumentError for a bound that is not a number
 */
function queueBound(maxQueued: number | undefined): string {
  if (maxQueued === undefined) return '';
  if (typeof maxQueued !== 'number') throw new InvalidArgumentError(`maxQueued must be a number, got ${typeof maxQueued}.`);
  if (Number.isNaN(maxQueued) || maxQueued === Infinity) return '';
  if (maxQueued === -Infinity) return '-1';
  return String(maxQueued);
}

/**
 * A claim filter without duplicate pairs (undefined: no filter). As in the memory store, a version is compared as
 * its decimal text, and an entry without a workflow name matches no run (it is left out).
 */
function uniqueRefs(workflows: readonly WorkflowRef[] | undefined): WorkflowRef[] | undefined {
  if (workflows === undefined) return undefined;
  const seen = new Map<string, WorkflowRef>();
  for (const ref of workflows) {
    if (typeof ref?.workflow !== 'string') continue;
    seen.set(JSON.stringify([ref.workflow, String(ref.version)]), ref);
  }
  return [...seen.values()];
}

/** What `createRun` writes of a run's priority, due time and limits (the options section of `CREATE_RUN`). */
interface FlowOptions {
  cc: string;
  rl: string;
  /** priority, cc, rl, due kind, due value */
  args: string[];
  /** Whether the run has any of them (else the script gets no options section: the bytes of a plain run). */
  any: boolean;
}

/**
 * Checks and encodes a new run's priority, due time and limits.
 * @throws InvalidArgumentError for a priority that is not a safe integer, a limit that is not a positive safe integer,
 * a scope that is not `run` or `step`, a key that is not a well-formed string, or a due time that is not finite
 */
function flowOptions(input: NewRun): FlowOptions {
  const priority = input.priority ?? 0;
  if (typeof priority !== 'number' || !Number.isSafeInteger(priority)) {
    throw new InvalidArgumentError(`A priority must be a safe integer, got ${String(priority)}.`);
  }
  const positive = (what: string, value: unknown): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new InvalidArgumentError(`${what} must be a positive integer, got ${String(value)}.`);
    }
    return value;
  };
  let cc = '';
  if (input.concurrency !== undefined) {
    const { key, limit, scope } = input.concurrency;
    checkKeyText('A concurrency key', key);
    if (scope !== 'run' && scope !== 'step') throw new InvalidArgumentError(`A concurrency scope must be 'run' or 'step', got ${String(scope)}.`);
    cc = encodeConcurrency({ key, limit: positive('A concurrency limit', limit), scope });
  }
  let rl = '';
  if (input.rateLimit !== undefined) {
    const { key, limit, perMs } = input.rateLimit;
    checkKeyText('A rate limit key', key);
    rl = encodeRateLimit({ key, limit: positive('A rate limit', limit), perMs: positive('A rate limit window (perMs)', perMs) });
  }
  let dueKind = '';
  let dueValue = '';
  const due = input.due;
  if (due !== undefined) {
    if (due !== null && typeof due === 'object' && 'at' in due) {
      dueKind = 'at';
      dueValue = integerArg('A due time', new Date(due.at).getTime());
    } else if (due !== null && typeof due === 'object' && 'delayMs' in due) {
      dueKind = 'in';
      dueValue = integerArg('A delay', due.delayMs);
    } else {
      throw new InvalidArgumentError('due must be { delayMs } or { at }.');
    }
  }
  const pri = priority === 0 ? '' : String(priority);
  return { cc, rl, args: [pri, cc, rl, dueKind, dueValue], any: pri !== '' || cc !== '' || rl !== '' || dueKind !== '' };
}

/** Whether a new run with this due time is due at once (by this process's clock: the script decides). */
function isDueNow(due: NewRun['due']): boolean {
  if (due === undefined) return true;
  return 'at' in due ? new Date(due.at).getTime() <= Date.now() : due.delayMs <= 0;
}

/** `CreateRunOptions.debounce`, checked, as `CREATE_RUN` takes it. */
interface DebounceOptions {
  key: string;
  delayMs: string;
  maxDelayMs: string;
}

/** @throws InvalidArgumentError for a key that is not a well-formed string or a delay that is not finite */
function debounceOptions(debounce: NonNullable<CreateRunOptions['debounce']>): DebounceOptions {
  checkKeyText('A debounce key', debounce?.key);
  return {
    key: debounce.key,
    delayMs: integerArg('A debounce delay', debounce.delayMs),
    maxDelayMs: debounce.maxDelayMs !== undefined ? integerArg('A debounce max delay', debounce.maxDelayMs) : '',
  };
}

/**
 * When a run may be claimed, as the scripts compute it (`claimAt` in `lua/prelude.lua`): the later of its due time and
 * its lease expiry, or -1 when its status is not claimable or it is not due.
 */
function claimTime(run: StoredRun): number {
  if (!CLAIMABLE_STATUSES.includes(run.status) || run.dueAt === undefined) return -1;
  const due = run.dueAt.getTime();
  const lease = run.leaseExpiresAt?.getTime();
  return lease !== undefined && lease > due ? lease : due;
}

/** A field of a snapshot's run hash, as stored. */
function snapshotField(snapshot: Snapshot, field: string): string | undefined {
  const flat = snapshot?.[0] ?? [];
  for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i] === field) return flat[i + 1];
  return undefined;
}

/** The fields `getRunOutcomes` reads of each run (see `decodeOutcome`). */
const OUTCOME_FIELDS = ['st', 'out', 'err', 'par', 'due', 'ce'] as const;

/**
 * Checks a `children` patch before anything is written: counts are integers, spawn entries are well-formed.
 * @throws InvalidArgumentError
 */
function checkChildren(children: ChildrenPatch): ChildrenPatch {
  integerArg('children.endedAtLeast', children.endedAtLeast);
  for (const child of children.spawn ?? []) {
    checkRunId(child?.runId);
    for (const [field, value] of [['workflow', child.workflow], ['input', child.input], ['state', child.state]] as const) {
      if (typeof value !== 'string') throw new InvalidArgumentError(`A child run's ${field} must be a string, got ${typeof value}.`);
    }
    (child.events ?? []).forEach(checkEventBody);
    if (child.pipeline !== undefined) checkPipelineText('A pipeline fingerprint', child.pipeline);
  }
  for (const id of children.release ?? []) checkRunId(id);
  return children;
}

/** Checks a history body: a string (stored verbatim). */
function checkEventBody(body: unknown): asserts body is string {
  if (typeof body !== 'string') throw new InvalidArgumentError(`A history event must be a string, got ${typeof body}.`);
}

/** Checks a pipeline fingerprint or description: a string (stored verbatim). */
function checkPipelineText(what: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${what} must be a string, got ${typeof value}.`);
}

/** A history entry `<seq>:<body>` (see `redis.keys.ts`), or undefined when it cannot be read. */
function decodeEvent(entry: string): StoredRunEvent | undefined {
  const colon = entry.indexOf(':');
  const seq = colon > 0 ? entry.slice(0, colon) : '';
  if (!/^\d{1,15}$/.test(seq)) return undefined;
  return { seq: Number(seq), body: entry.slice(colon + 1) };
}

/** A queue position (`h:`/`t:` value, `v:` seq) as the scripts read it (`num`), or undefined. */
function queueSeq(text: string | undefined): number | undefined {
  return text !== undefined && /^-?\d{1,16}$/.test(text) ? Number(text) : undefined;
}

/**
 * The queued signals of a signal hash (`HGETALL`, flat: field, value, …; see `redis.keys.ts`), as the scripts would
 * hand them out: per name, the payloads `v:<seq>:<name>` with head < seq <= tail, in seq order. Names are in code point
 * order.
 */
function decodeSignals(flat: readonly string[]): QueuedSignal[] {
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), String(flat[i + 1]));
  const byName = new Map<string, { seq: number; payload: string }[]>();
  for (const [field, payload] of fields) {
    const match = /^v:(\d{1,16}):/.exec(field);
    if (!match) continue;
    const name = field.slice(match[0].length);
    const seq = Number(match[1]);
    const head = queueSeq(fields.get(`h:${name}`)) ?? 0;
    const tail = queueSeq(fields.get(`t:${name}`)) ?? 0;
    if (seq <= head || seq > tail) continue; // never handed out (a damaged head or tail)
    let queue = byName.get(name);
    if (!queue) byName.set(name, (queue = []));
    queue.push({ seq, payload });
  }
  return [...byName.keys()]
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .flatMap((name) => byName.get(name)!.sort((a, b) => a.seq - b.seq).map(({ payload }) => ({ name, payload })));
}

/** The script of {@link holdsEveryKey}: writes ARGV[1] to KEYS[2] (a key of another slot than KEYS[1]'s), for a minute. */
export const ONE_NODE_PROBE = "redis.call('SET', KEYS[2], ARGV[1], 'PX', 60000) return 1";

/**
 * Whether a script given keys of two slots (a run's and the index's) reads and writes the keys single-key commands
 * read: true on a standalone or Sentinel server, where one node holds every key; false behind a proxy that spreads keys
 * over nodes (it refuses such a script, or runs it where only one of its keys lives). One script and two commands.
 */
async function holdsEveryKey(client: RedisClient, keys: RedisKeys): Promise<boolean> {
  const probe = `${keys.index}:probe`;
  let id = 0;
  while (keySlot(keys.run(`~probe-${id}`).run) === keySlot(probe)) id++;
  const token = randomUUID();
  try {
    await client.eval(ONE_NODE_PROBE, 2, keys.run(`~probe-${id}`).run, probe, token);
    return (await client.get(probe)) === token;
  } catch {
    return false;
  } finally {
    await client.del(probe).catch(() => undefined);
  }
}

/** The result of an accepted commit's script answer; queues the run's index record when the script says it changed. */
function commitOutcome(result: [number, ...unknown[]], index: { enqueue(record: IndexRecord): void }): CommitResult {
  const [, paused, cancel, consumed, payload, record, dirty, lastEventSeq, consumedName, childrenReady] = result as [
    number,
    number,
    string,
    number,
    string,
    IndexRecord,
    number,
    number,
    string,
    number,
  ];
  if (dirty === 1) index.enqueue(record);
  const out: CommitResult = { ok: true };
  if (paused === 1) out.paused = true;
  if (cancel) out.cancel = { compensate: cancel !== '0' };
  if (consumed === 1) out.consumedSignal = { name: consumedName, payload };
  if (childrenReady === 1) out.childrenReady = true;
  if (lastEventSeq > 0) out.lastEventSeq = lastEventSeq;
  return out;
}

/**
 * WorkflowStore on Redis (standalone, Sentinel or Cluster) through ioredis.
 *
 * Every state change of a run is one Lua script on that run's keys, which share one hash tag (`redis.scripts.ts`,
 * `lua/`). The script returns the run's index record, which the index writer then applies to the global indexes (due,
 * list, purge) with an idempotent, versioned script; see `redis.keys.ts` and `redis.index-writer.ts`. This class is the
 * port: the connection, the script runner, listing, claims, reindexing and events each live in their own file. Flow
 * control (priorities, concurrency and rate limits, debounce keys) keeps its counters in the index slot: see the
 * comment of `redis.keys.ts` and `redis.claims.ts`.
 */
export class RedisStore implements WorkflowStore {
  readonly name = 'redis';
  readonly keys: RedisKeys;
  private readonly logger: RedisStoreLogger;
  private clientRef?: RedisClient;
  private closed = false;
  private readonly scripts: RedisScriptRunner;
  private readonly index: RedisIndexWriter;
  private readonly lister: RedisRunList;
  private readonly claims: RedisClaims;
  private readonly events: RedisEvents;
  /** Expiry of an ended run's keys in ms (`RedisStoreOptions.ttl`), if any. */
  readonly ttlMs?: number;
  /** When a parent waiting for its children is due again at the latest (`RedisStoreOptions.childRecheckMs`). */
  readonly childRecheckMs: number;
  /**
   * Whether one node holds every key (checked by `init()`, see `holdsEveryKey`): then the scripts that create or claim
   * a run with limits take its admission themselves, with the index slot's keys (see `redis.keys.ts`).
   */
  private oneNode = false;

  constructor(private readonly options: RedisStoreOptions = {}) {
    const prefix = options.keyPrefix ?? 'cairn:';
    if (typeof prefix !== 'string') throw new ConfigurationError('Redis store: keyPrefix must be a string.');
    this.ttlMs = parseTtl(options.ttl);
    const recheck = options.childRecheckMs ?? DEFAULT_CHILD_RECHECK_MS;
    if (typeof recheck !== 'number' || !Number.isSafeInteger(recheck) || recheck < 1) {
      throw new ConfigurationError(`Redis store: childRecheckMs must be a positive integer number of milliseconds (got ${String(recheck)}).`);
    }
    this.childRecheckMs = recheck;
    this.keys = new RedisKeys(prefix);
    this.logger = options.logger ?? DEFAULT_LOGGER;
    if (options.client) this.clientRef = options.client;
    const client = () => this.client;
    this.scripts = new RedisScriptRunner(client, this.keys.kicks);
    this.index = new RedisIndexWriter(this.scripts, this.keys, this.logger, () => this.clientRef !== undefined);
    this.lister = new RedisRunList(client, this.scripts, this.keys, this.index);
    this.claims = new RedisClaims(this.scripts, this.keys, this.index, this.logger, options.indexRepairGraceMs, client, () => this.oneNode);
    this.events = new RedisEvents(client, this.keys.channel, this.logger, () => this.closed);
  }

  /** The ioredis client in use (after `init()`). */
  /** The schedules, under this store's key prefix (see `ScheduleStore`). */
  get schedules(): RedisScheduleStore {
    // NOTE: through the instance itself, never a wrapper it is reached through (a Proxy may be the getter's `this`)
    const self = this.self;
    return (self.scheduleStore ??= new RedisScheduleStore(() => self.client, self.keys.prefix));
  }
  private scheduleStore?: RedisScheduleStore;
  private readonly self = this;

  get client(): RedisClient {
    if (!this.clientRef) throw new StoreError('Redis store: init() has not been called.');
    return this.clientRef;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // lifecycle

  async init(): Promise<void> {
    this.closed = false;
    if (!this.clientRef) {
      this.clientRef = await connectRedis({
        url: this.options.url ?? 'redis://127.0.0.1:6379',
        connectTimeoutMs: this.options.connectTimeoutMs ?? 5_000,
        logger: this.logger,
        isClosed: () => this.closed,
      });
    } else if ((this.clientRef.status as string) === 'wait') {
      await guard('connect', () => this.clientRef!.connect());
    }
    await checkDurability(this.client, this.logger);
    await this.scripts.loadAll();
    // NOTE: a store of an earlier key layout is migrated once (see redis.layout.ts)
    await guard('init', () =>
      ensureIndexLayout({ client: this.client, runner: this.scripts, keys: this.keys, index: this.index, logger: this.logger }),
    );
    // NOTE: after the layout check, which tells a new store by its having no index keys. A client that is not a
    // Cluster's may still reach keys on several nodes (a proxy): checked, not assumed.
    this.oneNode = !isCluster(this.client) && (await holdsEveryKey(this.client, this.keys));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.clientRef) {
      try {
        await this.index.drain();
      } catch {
        // reported by the index writer
      }
    }
    this.closed = true;
    await this.events.close();
    // NOTE: a client passed in options is borrowed: its owner closes it.
    if (!this.options.client && this.clientRef) {
      const client = this.clientRef;
      this.clientRef = undefined;
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // runs

  /**
   * One `CREATE_RUN` script, preceded by its kick (one round trip), as always for a run without limits. A run with
   * limits and a lease is admitted in the index slot (rule F4): it is leased at once only when admitted, and only when
   * new (`keep` and an id the index does not know; a replace is created pending and claimed like any other run). When
   * one node holds every key (standalone, Sentinel: `oneNode`) the create script admits it itself (still one script);
   * on a Cluster, where the index slot is another slot, `FLOW_INDEX` `new` admits it first (two round trips). A
   * debounced start is `createDebounced`.
   */
  async createRun(input: NewRun, options: CreateRunOptions): Promise<CreateRunResult> {
    if (options.transaction !== undefined) {
      throw new InvalidArgumentError('The Redis store cannot write through a caller\'s transaction (StartOptions.transaction is for the Postgres store).');
    }
    this.keys.run(input.runId);
    const events = input.events ?? [];
    events.forEach(checkEventBody);
    if (input.pipeline !== undefined) checkPipelineText('A pipeline fingerprint', input.pipeline);
    const flow = flowOptions(input);
    const debounce = options.debounce !== undefined ? debounceOptions(options.debounce) : undefined;
    if (options.lease) integerArg('The lease', options.lease.leaseMs);
    return guard('createRun', async () => {
      if (debounce) return this.createDebounced(input, flow, debounce);
      const lease = options.lease;
      let admission = '';
      let indexKeys: string[] = [];
      if (lease && (flow.cc !== '' || flow.rl !== '') && options.onConflict === 'keep' && isDueNow(input.due)) {
        // NOTE: this instance's queued index records go first, so that a slot a run that ended here gave back a moment
        // ago is free for this admission: on one node, sent now on the connection the create script follows on; on a
        // Cluster, applied before the admission is sent (the index node may not have the apply script yet: its EVAL
        // fallback would come after), as the claims' admissions do.
        if (this.oneNode) {
          void this.index.flush();
          // every key on one node: the create script admits the run itself (one script instead of two)
          admission = 'new';
          indexKeys = [this.keys.flow, this.keys.meta];
        } else {
          await this.index.flush();
          admission = await this.scripts.run<string>({
            script: FLOW_INDEX,
            keys: this.flowIndexKeys(),
            args: ['new', input.runId, flow.cc, flow.rl],
          });
        }
      }
      const opt = flow.any || admission !== '' ? [...flow.args, admission, '', '', '', ''] : [];
      const [out] = await this.createCall(input.runId, input, options.onConflict, lease, opt, indexKeys);
      return out;
    });
  }

  /** The keys of `FLOW_INDEX`. */
  private flowIndexKeys(): string[] {
    return [this.keys.flow, this.keys.meta, this.keys.debounces];
  }

  /**
   * One `CREATE_RUN` call for run `runId` (the input's id, or a debounce key's run) with the input's values, and its
   * index update. Returns the result and the script's debounce outcome.
   */
  private async createCall(
    runId: string,
    input: NewRun,
    onConflict: CreateRunOptions['onConflict'],
    lease: LeaseRequest | undefined,
    opt: string[],
    indexKeys: string[] = [],
  ): Promise<[CreateRunResult, string]> {
    const events = input.events ?? [];
    const args: (string | number)[] = [
      runId,
      input.workflow,
      String(input.version),
      input.input,
      input.state,
      input.currentStep !== undefined ? '1' : '0',
      input.currentStep ?? '',
      onConflict,
      lease?.owner ?? '',
      lease ? '1' : '0',
      integerArg('The lease', lease?.leaseMs ?? 0),
      lease ? randomUUID() : '',
      this.keys.channel,
      String(events.length),
      input.pipeline !== undefined ? '1' : '0',
      input.pipeline ?? '',
      ...events,
    ];
    if (opt.length > 0) args.push('opt', ...opt);
    (input.steps ?? []).forEach((step, index) => args.push(String(index), encodeStep(step)));
    const { result, kick } = await this.scripts.runKicked<[number, Snapshot, IndexRecord, string, number, string | null, string]>(runId, {
      script: CREATE_RUN,
      keys: [...ownKeys(this.keys.run(runId)), ...indexKeys],
      args,
    });
    const [created, snapshot, record, previousWorkflow, lastEventSeq, previousVersion, debounced] = result;
    // a replaced run's due entry is in the due index of its (workflow, version): dropped when the pair changes
    const extraDue = typeof previousVersion === 'string' ? { workflow: previousWorkflow ?? '', version: previousVersion } : undefined;
    this.index.enqueue(record, { kick, extra: previousWorkflow ?? '', extraDue });
    const out: CreateRunResult = { created: created === 1, run: decodeRun(snapshot, runId)! };
    if (created === 1 && lastEventSeq > 0) out.lastEventSeq = lastEventSeq;
    return [out, debounced ?? ''];
  }

  /**
   * Rule D. The debounce key's run is kept in the index slot (`FLOW_INDEX` `debounce`: the first start with the key
   * names its own run there, with the time). Each start then writes in that run's slot (`CREATE_RUN` with `own` or
   * `fold`): its own run is created there due in the delay; another start's input and state are folded into it while it
   * is pending and was never claimed; a start that finds it missing (its creator has not written it yet, or died) creates
   * it with its own values, as a fold, so concurrent starts with one key make one run. A key's run that can take no fold
   * any more is replaced in the index by the start's own run (compare-and-set: of concurrent starts, one wins and the
   * others fold into its run).
   */
  private async createDebounced(input: NewRun, flow: FlowOptions, debounce: DebounceOptions): Promise<CreateRunResult> {
    const call = (expected: string) =>
      this.scripts.run<[string, string]>({
        script: FLOW_INDEX,
        keys: this.flowIndexKeys(),
        args: ['debounce', debounce.key, input.runId, expected],
      });
    let [target, first] = await call('');
    for (let attempt = 0; attempt < 20; attempt++) {
      this.keys.run(target);
      const mode = target === input.runId ? 'own' : 'fold';
      const [out, outcome] = await this.createCall(target, input, 'keep', undefined, [...flow.args, '', mode, first, debounce.delayMs, debounce.maxDelayMs]);
      if (outcome === 'created' || outcome === 'own') return { ...out, created: true };
      if (outcome === 'folded') return { created: false, debounced: true, run: out.run };
      if (outcome !== 'stale') throw new StoreError(`Redis store: unexpected debounce outcome ${JSON.stringify(outcome)}.`);
      // the key's run can take no fold any more: the key starts this call's run (unless another start got there first)
      [target, first] = await call(`${target}|${first}`);
    }
    throw new StoreError(`Redis store: the run of debounce key ${JSON.stringify(debounce.key)} kept changing; the start was not written.`);
  }

  async getRun(runId: string): Promise<StoredRun | undefined> {
    const keys = this.keys.run(runId);
    return guard('getRun', async () => {
      const [snapshot] = await this.scripts.run<[Snapshot, IndexRecord]>({ script: READ_RUN, keys: [keys.run, keys.steps], args: [runId] });
      const run = decodeRun(snapshot, runId);
      if (run) await this.markBlocked([{ run, snapshot }]);
      return run;
    });
  }

  async listRuns(query: ListRunsQuery): Promise<StoredRun[]> {
    return guard('listRuns', async () => {
      const read: { run: StoredRun; snapshot: Snapshot }[] = [];
      const runs = await this.lister.list(query, (run, snapshot) => read.push({ run, snapshot }));
      await this.markBlocked(read);
      return runs;
    });
  }

  /**
   * Sets `blockedBy` on the runs with limits a claim would pass over now (rules F2, F3): one `FLOW_INDEX` read of the
   * index slot for all of them, and none when no run read has limits (or none of them is claimable).
   */
  private async markBlocked(read: readonly { run: StoredRun; snapshot: Snapshot }[]): Promise<void> {
    const asked = read.filter(({ run }) => (run.concurrency || run.rateLimit) && !run.cancelRequested && claimTime(run) !== -1);
    if (asked.length === 0) return;
    await this.index.flush();
    const args = ['blocked'];
    for (const { run, snapshot } of asked) {
      args.push(
        run.runId,
        String(claimTime(run)),
        snapshotField(snapshot, RUN_FIELDS.slotEpoch) ?? '0',
        snapshotField(snapshot, RUN_FIELDS.concurrency) ?? '',
        snapshotField(snapshot, RUN_FIELDS.rateLimit) ?? '',
        run.slotHeld ? '1' : '0',
        run.status === 'pending' && run.steps.length === 0 ? '1' : '0',
      );
    }
    const reasons = await this.scripts.run<string[]>({ script: FLOW_INDEX, keys: this.flowIndexKeys(), args });
    asked.forEach(({ run }, i) => {
      const reason = reasons[i];
      if (reason === 'concurrency' || reason === 'rate-limit') run.blockedBy = reason;
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // claims and leases

  async claimRuns(lease: LeaseRequest, limit: number, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun[]> {
    if (!(limit > 0)) return [];
    const refs = uniqueRefs(workflows);
    if (refs && refs.length === 0) return [];
    return guard('claimRuns', () => this.claims.claimRuns(lease, limit, refs));
  }

  async claimOwnedRuns(lease: LeaseRequest, limit: number, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun[]> {
    if (!(limit > 0)) return [];
    const refs = uniqueRefs(workflows);
    if (refs && refs.length === 0) return [];
    return guard('claimOwnedRuns', () => this.claims.claimOwnedRuns(lease, limit, refs));
  }

  async claimRun(runId: string, lease: LeaseRequest, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun | undefined> {
    this.keys.run(runId);
    const refs = uniqueRefs(workflows);
    if (refs && refs.length === 0) return undefined;
    return guard('claimRun', () => this.claims.claimRun(runId, lease, refs));
  }

  async renewLease(runId: string, token: string, leaseMs: number): Promise<RenewResult> {
    const keys = this.keys.run(runId);
    return guard('renewLease', async () => {
      const result = await this.scripts.run<[number, string?, string?]>({
        script: RENEW_LEASE,
        keys: [keys.run],
        args: [token, integerArg('The lease', leaseMs)],
      });
      if (result[0] !== 1) return { ok: false };
      const renewed: RenewResult = { ok: true, pauseRequested: result[2] === '1' };
      if (result[1]) renewed.cancel = { compensate: result[1] !== '0' };
      return renewed;
    });
  }

  async releaseLease(runId: string, token: string): Promise<void> {
    const keys = this.keys.run(runId);
    await guard('releaseLease', async () => {
      const result = await this.scripts.run<[number, IndexRecord?]>({
        script: RELEASE_LEASE,
        keys: [keys.run],
        args: [runId, token, this.keys.channel],
      });
      if (result[0] === 1 && result[1]) this.index.enqueue(result[1]);
    });
  }

  /**
   * One commit script (`COMMIT`), the hot path: a commit without `children` by a run without a parent is that script
   * alone. Two cases take more writes, because a parent and its children are in different slots:
   * - `children` (rule 8): (0) with spawn entries, a fenced script on the parent's slot lists their ids under it and
   *   starts its children state (`ce`); (1) the spawned children are created held (not due) with their parent, one
   *   script each in their own slots (pipelined); (2) the parent's commit adds the spawn entries found ended to its
   *   count of ended children (`ce`, monotonic: only ever incremented, here and by each child's end, so an end counted
   *   between the engine's read of the count and this commit is kept) and, when it waits, is due again after
   *   `childRecheckMs`; (3) the spawned children that are not `held` and the `release` ids become due. A crash between
   *   the steps leaves children held or a parent that is not woken: its recheck makes it due, and its engine reads its
   *   children's outcomes, releases the held ones and spawns the missing ones again (same ids: kept, not created twice).
   * - a commit that ends a linked child (rule 4): the script returns the parent, and `CHILD_ENDED` then adds one to the
   *   parent's count and wakes it when its condition holds. A crash between the two is repaired by the recheck.
   * Steps after the run's own commit are not undone when they fail: they are logged, and the recheck repairs them.
   */
  commit(runId: string, token: string, patch: RunPatch): Promise<CommitResult> {
    // NOTE: a plain function (see guard): a bad value rejects, as from an async function; a commit without children
    // (the checkpoint of every step) takes no async frame.
    return throwsAsRejection(() => this.commitNow(runId, token, patch));
  }

  private commitNow(runId: string, token: string, patch: RunPatch): Promise<CommitResult> {
    const keys = this.keys.run(runId);
    const ops = encodePatch(patch);
    if (this.ttlMs !== undefined && patch.status !== undefined && TERMINAL_STATUSES.includes(patch.status)) {
      ops.push(...encodeCommitOp.expireOnEnd(this.ttlMs));
    }
    const leaseMs = integerArg('The lease', patch.leaseMs);
    const children = patch.children !== undefined ? checkChildren(patch.children) : undefined;
    // NOTE: reads `ops` when called (a children commit adds its own first).
    const commitScript = () =>
      this.scripts.run<[number, ...unknown[]]>({ script: COMMIT, keys: commitKeys(keys), args: [runId, token, leaseMs, this.keys.channel, ...ops] });
    if (!children) return guard('commit', () => commitScript().then((result) => this.afterCommit(runId, result, undefined, [])));
    return guard('commit', async () => {
      let spawned: SpawnedChild[] = [];
      if ((children.spawn ?? []).length > 0) {
        // NOTE: a commit that cannot pass the fence creates no child (the race with a lease lost between this step
        // and the commit leaves held children, which the next lease holder's commit of the step finds: same ids).
        // The same script reads the clock (the children of one commit are created at one time, as in one write) and
        // lists the ids under the parent first, so children left held by a crash are still listed (and cancelled).
        const time = await this.scripts.run<number | null | false>({
          script: SPAWN_INTENT,
          keys: [keys.run, keys.children],
          args: [runId, token, ...(children.spawn ?? []).map((child) => child.runId)],
        });
        if (typeof time !== 'number') return { ok: false };
        spawned = await this.spawnChildren(runId, children, String(time));
      }
      // rule 8c: a spawn entry whose run had ended counts now (it never ends again); a live one when it ends
      const endedNow = spawned.filter((child) => child.ended).length;
      ops.push(...encodeCommitOp.children(endedNow, children.endedAtLeast, children.failFast, this.childRecheckMs));
      for (const child of spawned) {
        // NOTE: a damaged creation time is listed with score 0 (the list takes the score for a time it cannot read)
        const score = /^-?\d{1,16}$/.test(child.createdAt) ? child.createdAt : '0';
        if (child.outcome !== 'other') ops.push(...encodeCommitOp.childLink(child.runId, score));
      }
      return this.afterCommit(runId, await commitScript(), children, spawned);
    });
  }

  /** A commit's result from its script's answer, after the writes that follow it (children released, parent told). */
  private afterCommit(runId: string, result: [number, ...unknown[]], children: ChildrenPatch | undefined, spawned: SpawnedChild[]): CommitResult | Promise<CommitResult> {
    if (result[0] !== 1) return { ok: false };
    const parent = result[10] as string;
    // NOTE: a plain checkpoint (no children, no parent to tell) takes no async frame.
    if (children || parent) return this.afterCommitWrites(runId, result, children, spawned, parent);
    return commitOutcome(result, this.index);
  }

  private async afterCommitWrites(
    runId: string,
    result: [number, ...unknown[]],
    children: ChildrenPatch | undefined,
    spawned: SpawnedChild[],
    parent: string,
  ): Promise<CommitResult> {
    if (children) {
      const release = new Set(spawned.filter((child) => child.outcome === 'created' && !child.held).map((child) => child.runId));
      for (const id of children.release ?? []) release.add(id);
      await this.releaseChildren(runId, [...release]);
    }
    if (parent) await this.notifyParent(parent, runId, result[11] !== 'completed');
    // NOTE: after the other writes, so that their index records go in the same batch
    return commitOutcome(result, this.index);
  }

  /** Step (1) of a `children` commit: creates (held) or links each spawned child in its own slot. */
  private async spawnChildren(parentRunId: string, children: ChildrenPatch, createdAt: string): Promise<SpawnedChild[]> {
    const spawn = children.spawn ?? [];
    if (spawn.length === 0) return [];
    const { results, kicks } = await this.scripts.runManyKicked<[SpawnOutcome, IndexRecord, string, number]>(
      spawn.map((child) => {
        const keys = this.keys.run(child.runId);
        const events = child.events ?? [];
        return {
          runId: child.runId,
          call: {
            script: SPAWN_CHILD,
            keys: ownKeys(keys),
            args: [
              child.runId,
              parentRunId,
              child.workflow,
              String(child.version),
              child.input,
              child.state,
              child.pipeline !== undefined ? '1' : '0',
              child.pipeline ?? '',
              createdAt,
              String(events.length),
              ...events,
            ],
          },
        };
      }),
    );
    const out: SpawnedChild[] = [];
    let failure: unknown;
    results.forEach((result, i) => {
      if (!result.ok) {
        failure ??= result.error;
        return;
      }
      const [outcome, record, createdAt, ended] = result.value;
      this.index.enqueue(record, { kick: kicks[i] });
      out.push({
        runId: spawn[i].runId,
        outcome,
        held: spawn[i].held === true,
        createdAt: typeof createdAt === 'string' ? createdAt : '',
        ended: ended === 1,
      });
    });
    // NOTE: the parent's commit is not written: the children created are held, and found again (same ids) by a retry
    if (failure !== undefined) throw failure;
    return out;
  }

  /** Step (3) of a `children` commit: the held children of this parent among `ids` become due now. */
  private async releaseChildren(parentRunId: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    try {
      const { results, kicks } = await this.scripts.runManyKicked<[number, IndexRecord]>(
        ids.map((id) => ({
          runId: id,
          call: { script: RELEASE_CHILD, keys: [this.keys.run(id).run], args: [id, parentRunId, this.keys.channel] },
        })),
      );
      const failed = results.find((result) => !result.ok);
      results.forEach((result, i) => {
        if (result.ok) this.index.enqueue(result.value[1], { kick: kicks[i] });
      });
      if (failed && !failed.ok) throw failed.error;
    } catch (error) {
      this.logger.warn(
        `Redis store: releasing the children of run ${JSON.stringify(parentRunId)} failed (${errorMessage(error)}); ` +
          `they stay held until the parent's recheck (childRecheckMs) releases them.`,
      );
    }
  }

  /** Rule 4's second write: the parent of a linked child that just ended counts it and may wake (`CHILD_ENDED`). */
  private async notifyParent(parentRunId: string, childRunId: string, failed: boolean): Promise<void> {
    try {
      const result = await this.scripts.run<[number, IndexRecord?, number?]>({
        script: CHILD_ENDED,
        keys: [this.keys.run(parentRunId).run],
        args: [parentRunId, failed ? '1' : '0', this.keys.channel],
      });
      if (result[0] === 1 && result[2] === 1 && result[1]) this.index.enqueue(result[1]);
    } catch (error) {
      this.logger.warn(
        `Redis store: telling run ${JSON.stringify(parentRunId)} that its child ${JSON.stringify(childRunId)} ended failed ` +
          `(${errorMessage(error)}); the parent finds out at its recheck (childRecheckMs).`,
      );
    }
  }

  async takeSignal(runId: string, token: string, names: readonly string[]): Promise<TakeSignalResult> {
    const keys = this.keys.run(runId);
    if (!Array.isArray(names) || !names.every((name) => typeof name === 'string')) {
      throw new InvalidArgumentError('takeSignal: names must be an array of signal names.');
    }
    return guard('takeSignal', async () => {
      const result = await this.scripts.run<[number, ...unknown[]]>({
        script: TAKE_SIGNAL,
        keys: [keys.run, keys.signals],
        args: [runId, token, ...names],
      });
      if (result[0] !== 1) return { ok: false };
      const [, got, payload, timedOut, record, name] = result as [number, number, string, number, IndexRecord, string];
      if (got === 1) {
        this.index.enqueue(record);
        return { ok: true, payload, signal: name, timedOut: false };
      }
      return { ok: true, timedOut: timedOut === 1 };
    });
  }

  /**
   * The outcomes of these runs: one `HMGET` per run. The first id (a parent reading its own `childrenEnded`) is read
   * alone, and its reply received before the others are sent: a child then read as live ends after the parent's
   * count was read, so its end is in a later value of the count, never in the one read (the parent waits for it).
   * The others go in one pipeline (on a Cluster, one pipeline per slot, side by side): two round trips for more than
   * one id, one for a single id. Unknown ids are left out.
   */
  async getRunOutcomes(runIds: readonly string[]): Promise<RunOutcome[]> {
    // NOTE: an id that cannot name a run (not a string, empty) is unknown: left out
    const ids = [...new Set(runIds)].filter(isRunId);
    if (ids.length === 0) return [];
    return guard('getRunOutcomes', async () => {
      const client = this.client;
      const [first, ...rest] = ids;
      const firstFields = (await client.hmget(this.keys.run(first).run, ...OUTCOME_FIELDS)) as (string | null)[];
      const firstOutcome = decodeOutcome(first, firstFields);
      const groups = new Map<number, string[]>();
      if (isCluster(client)) {
        for (const id of rest) {
          const slot = keySlot(this.keys.run(id).run);
          let group = groups.get(slot);
          if (!group) groups.set(slot, (group = []));
          group.push(id);
        }
      } else if (rest.length > 0) {
        groups.set(0, rest);
      }
      const replies = await Promise.all(
        [...groups.values()].map(async (group) => {
          const pipeline = client.pipeline();
          for (const id of group) pipeline.hmget(this.keys.run(id).run, ...OUTCOME_FIELDS);
          const results = (await pipeline.exec()) ?? [];
          return group.map((id, i) => {
            const [error, fields] = results[i] ?? [new StoreError('Redis store: missing pipeline reply'), undefined];
            if (error) throw error;
            return decodeOutcome(id, fields as (string | null)[]);
          });
        }),
      );
      return [firstOutcome, ...replies.flat()].filter((outcome): outcome is RunOutcome => outcome !== undefined);
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // client requests

  async sendSignal(runId: string, name: string, payload: string, event?: string, options?: SendSignalOptions): Promise<ControlResult> {
    const keys = this.keys.run(runId);
    if (event !== undefined) checkEventBody(event);
    const id = options?.id;
    if (id !== undefined && typeof id !== 'string') throw new InvalidArgumentError(`A signal id must be a string, got ${typeof id}.`);
    const maxQueued = queueBound(options?.maxQueued);
    return guard('sendSignal', async () => {
      const args = [runId, name, payload, this.keys.channel, id !== undefined ? '1' : '0', id ?? '', maxQueued];
      if (event !== undefined) args.push(event);
      const { result, kick } = await this.scripts.runKicked<RequestReply>(runId, {
        script: SEND_SIGNAL,
        keys: [keys.run, keys.signals, keys.events, keys.signalIds],
        args,
      });
      this.index.enqueue(result[2], { kick });
      return controlResult(result);
    });
  }

  async control(runId: string, request: ControlRequest, event?: string): Promise<ControlResult> {
    const keys = this.keys.run(runId);
    if (event !== undefined) checkEventBody(event);
    return guard('control', async () => {
      const compensate = request.action === 'cancel' ? (request.compensate ? '1' : '0') : '';
      const nextInput = request.action === 'retry' ? request.nextInput : undefined;
      const args = [runId, request.action, compensate, this.keys.channel, nextInput !== undefined ? '1' : '0', nextInput ?? ''];
      if (event !== undefined) args.push(event);
      const { result, kick } = await this.scripts.runKicked<RequestReply>(runId, {
        script: CONTROL,
        keys: ownKeys(keys),
        args,
      });
      this.index.enqueue(result[2], { kick });
      return controlResult(result);
    });
  }

  /**
   * A page of a run's history: one script (`LIST_EVENTS`), which finds the first wanted entry from the oldest one's
   * seq. `limit` is capped at `RUN_HISTORY_LIMIT` (a run never keeps more); an entry that cannot be read is left out.
   * @throws InvalidArgumentError for an `afterSeq` or `limit` that is not a number
   */
  async listEvents(runId: string, query: ListEventsQuery): Promise<StoredRunEvent[]> {
    const keys = this.keys.run(runId);
    const after = query.afterSeq ?? 0;
    if (typeof after !== 'number' || Number.isNaN(after)) throw new InvalidArgumentError(`afterSeq must be a number, got ${String(after)}.`);
    if (typeof query.limit !== 'number' || Number.isNaN(query.limit)) throw new InvalidArgumentError(`limit must be a number, got ${String(query.limit)}.`);
    const limit = Math.min(Math.floor(query.limit), RUN_HISTORY_LIMIT);
    if (!(limit > 0) || after === Infinity) return [];
    // NOTE: seqs are integers: `seq > 2.5` is `seq > 2`; every seq is above a negative afterSeq.
    const afterSeq = after < 0 ? 0 : Math.min(Math.floor(after), Number.MAX_SAFE_INTEGER);
    return guard('listEvents', async () => {
      const entries = await this.scripts.run<string[]>({
        script: LIST_EVENTS,
        keys: [keys.run, keys.events],
        args: [runId, String(afterSeq), String(limit)],
      });
      const out: StoredRunEvent[] = [];
      for (const entry of entries ?? []) {
        const event = decodeEvent(String(entry));
        if (event && event.seq > afterSeq && out.length < limit) out.push(event);
      }
      return out;
    });
  }

  /**
   * Counts per status from the cardinalities of the status indexes: one pipelined round trip of `ZCARD`s, whatever the
   * number of runs. An ended run whose keys expired (`ttl`) is still counted until its index entries are dropped: see
   * `RedisRunList.count`.
   */
  async countRuns(query: CountRunsQuery): Promise<Partial<Record<RunStatus, number>>> {
    return guard('countRuns', () => this.lister.count(query));
  }

  /** The queued signals of a live run: one script (`LIST_SIGNALS`), which reads the run's signal hash. */
  async listSignals(runId: string): Promise<QueuedSignal[]> {
    const keys = this.keys.run(runId);
    return guard('listSignals', async () => {
      const flat = await this.scripts.run<string[]>({ script: LIST_SIGNALS, keys: [keys.run, keys.signals], args: [runId] });
      return decodeSignals(flat ?? []);
    });
  }

  /**
   * The live runs grouped by (workflow, version, pipeline, currentStep): the ids come from the status indexes of the
   * live statuses only, and each run is read with one `HMGET` of a few fields, pipelined by batches (per node on a
   * Cluster); an ended run is never read. See `redis.live.ts`. This instance's queued index records are applied first.
   */
  async summarizeLiveRuns(): Promise<LiveRunGroup[]> {
    return guard('summarizeLiveRuns', async () => {
      await this.index.flush();
      return summarizeLiveRuns(this.client, this.keys);
    });
  }

  /** Stores a pipeline description once under its fingerprint: one `HSETNX` on the `pipelines` hash (index slot). */
  async savePipeline(fingerprint: string, body: string): Promise<void> {
    checkPipelineText('A pipeline fingerprint', fingerprint);
    checkPipelineText('A pipeline description', body);
    await guard('savePipeline', () => this.client.hsetnx(this.keys.pipelines, fingerprint, body));
  }

  /** The pipeline descriptions of these fingerprints: one `HMGET` on the `pipelines` hash (unknown ones left out). */
  async getPipelines(fingerprints: readonly string[]): Promise<Record<string, string>> {
    fingerprints.forEach((fp) => checkPipelineText('A pipeline fingerprint', fp));
    const wanted = [...new Set(fingerprints)];
    if (wanted.length === 0) return {};
    return guard('getPipelines', async () => {
      const bodies = (await this.client.hmget(this.keys.pipelines, ...wanted)) as (string | null)[];
      const out: Record<string, string> = {};
      wanted.forEach((fp, i) => {
        const body = bodies[i];
        if (typeof body === 'string') out[fp] = body;
      });
      return out;
    });
  }

  /**
   * Deletes ended runs of `statuses` that ended more than `olderThanMs` ago. With a `ttl`, it first drops the index
   * entries of runs whose keys expired (see `redis.expiry.ts`), whatever it is asked to purge; those are not counted.
   */
  async purge(statuses: readonly RunStatus[], olderThanMs: number): Promise<number> {
    const terminal = [...new Set(statuses)].filter((s) => TERMINAL_STATUSES.includes(s));
    if (terminal.length === 0 && this.ttlMs === undefined) return 0;
    const older = String(Math.round(olderThanMs));
    return guard('purge', async () => {
      if (this.ttlMs !== undefined) await this.sweepExpired();
      if (terminal.length === 0) return 0;
      await this.index.flush();
      const seen = new Set<string>();
      let count = 0;
      for (let round = 0; round < 10_000; round++) {
        const ids = await this.scripts.run<string[]>({
          script: PURGE_CANDIDATES,
          keys: terminal.map((s) => this.keys.finished(s)),
          args: [older, PURGE_BATCH],
        });
        const fresh = [...new Set(ids)].filter((id) => !seen.has(id));
        if (fresh.length === 0) break;
        const results = await this.scripts.runMany<[number, IndexRecord, string?]>(
          fresh.map((id) => {
            const keys = this.keys.run(id);
            return { script: PURGE_RUN, keys: ownKeys(keys), args: [id, older, ...terminal] };
          }),
        );
        const gone: IndexRecord[] = [];
        const unlisted: Promise<unknown>[] = [];
        results.forEach(([deleted, record, parent], i) => {
          seen.add(fresh[i]);
          if (deleted === 1) count++;
          // a purged child leaves its parent's children list (the parent's slot)
          if (deleted === 1 && parent) unlisted.push(this.client.zrem(this.keys.run(parent).children, fresh[i]));
          if (deleted !== 1 && record[1] !== '1') gone.push(record); // already gone (expired): drop its entries
          else this.index.enqueue(record);
        });
        await Promise.all(unlisted);
        await dropGoneRuns(this.client, this.keys, this.index, gone);
        await this.index.flush();
      }
      return count;
    });
  }

  /**
   * Drops the index entries of runs that ended more than `ttl` ago and whose keys expired (`purge` does it first; for
   * apps with a `ttl` and no `retention`, call it now and then). Returns how many runs' entries were dropped; 0 without
   * a `ttl`.
   */
  async sweepExpired(): Promise<number> {
    const ttl = this.ttlMs;
    if (ttl === undefined) return 0;
    return guard('sweepExpired', () => sweepExpired({ client: this.client, runner: this.scripts, keys: this.keys, index: this.index }, ttl));
  }

  /**
   * Rebuilds the global index entries (list, claims, purge) from the runs themselves (see `redis.reindex.ts`), and
   * marks the key layout current. Not needed in normal operation (the indexes repair themselves as runs are seen; a
   * store of an earlier layout is migrated by `init()`); for operators after an unclean restart of the Redis node that
   * holds the indexes, after editing keys by hand, or once instances of an earlier release that kept running through
   * an upgrade are gone (see `redis.layout.ts`). Returns the number of runs indexed.
   */
  async reindex(): Promise<number> {
    return guard('reindex', () => reindexRuns({ client: this.client, runner: this.scripts, keys: this.keys, index: this.index }));
  }

  // ---------------------------------------------------------------------------------------------------------------
  // events

  async subscribe(listener: (event: StoreEvent) => void): Promise<() => Promise<void>> {
    return this.events.subscribe(listener);
  }

  /**
   * Broadcasts `body` as a `message` event on the store's channel (one PUBLISH; a Cluster relays it to every node).
   * @throws InvalidArgumentError for a body that is not a string or is over `PUBLISH_MAX_BYTES` UTF-8 bytes
   */
  async publish(body: string): Promise<void> {
    if (typeof body !== 'string') throw new InvalidArgumentError(`A published message must be a string, got ${typeof body}.`);
    const bytes = Buffer.byteLength(body, 'utf8');
    if (bytes > PUBLISH_MAX_BYTES) {
      throw new InvalidArgumentError(`A published message is at most ${PUBLISH_MAX_BYTES} bytes (got ${bytes}).`);
    }
    await guard('publish', () => this.events.publish(body));
  }
}
