import { randomBytes, randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { DurableExecutionError } from '../../errors/durable-execution.error.js';
import { ConfigurationError, InvalidArgumentError, StoreError } from '../../errors/errors.js';
import type {
  ClaimedRun,
  CommitResult,
  ControlRequest,
  ControlResult,
  CreateRunOptions,
  CreateRunResult,
  LeaseRequest,
  ListRunsQuery,
  NewRun,
  RenewResult,
  RunPatch,
  RunStatus,
  StoreEvent,
  StoredRun,
  TakeSignalResult,
  WorkflowStore,
} from '../workflow-store.interface.js';
import { decodeClaimed, decodeRun, decodeSnapshot, encodeError, encodeStep, type IndexRecord, type Snapshot } from './redis.codec.js';
import { RedisKeys, STATUSES, TERMINAL, checkRunId } from './redis.keys.js';
import { compareRunIds } from '../run-id-order.js';
import {
  ALL_SCRIPTS,
  APPLY_INDEX,
  CLAIM_CANDIDATES,
  CLAIM_RUN,
  COMMIT,
  CONTROL,
  CREATE_RUN,
  PURGE_CANDIDATES,
  PURGE_RUN,
  READ_RUN,
  RELEASE_LEASE,
  RENEW_LEASE,
  SEND_SIGNAL,
  TAKE_SIGNAL,
  type LuaScript,
} from './redis.scripts.js';

/** Where the store writes what operators should know. */
export interface RedisStoreLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface RedisStoreOptions {
  /** Connection URL (`redis://`, `rediss://`), used when no `client` is given. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** An ioredis client (or Cluster) to borrow: the store never closes it. */
  client?: Redis | Cluster;
  /** Prefix of every key and of the event channel. Default `cairn:`. */
  keyPrefix?: string;
  logger?: RedisStoreLogger;
  /** How long `init()` keeps trying to reach the server at `url`. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * How long after it is first seen a write-ahead index mark (left by an instance that died mid-operation) is taken
   * as abandoned and repaired by claimers. Default 5000 ms; lower only in tests.
   */
  indexRepairGraceMs?: number;
}

type Client = Redis | Cluster;

interface ScriptCall {
  script: LuaScript;
  keys: string[];
  args: (string | number)[];
}

/** The outcome of one script call of a batch. */
type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

interface PendingRecord {
  record: IndexRecord;
  kick: string;
  extra: string;
  /** Applied even when as old as the last applied one: the index was seen to disagree with the run. */
  repair: boolean;
}

const DEFAULT_LOGGER: RedisStoreLogger = {
  log: () => {},
  warn: (message) => console.warn(`[cairn] ${message}`),
  error: (message) => console.error(`[cairn] ${message}`),
};

/** A kick (write-ahead mark of an index update) left this long after it was first seen is repaired by claimers. */
const KICK_GRACE_MS = 5_000;
const KICK_BATCH = 100;
const APPLY_BATCH = 200;
const PURGE_BATCH = 200;
const EVENT_TYPES = new Set(['ready', 'control', 'finished']);
const STATUS_SET: ReadonlySet<string> = new Set(STATUSES);

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.includes('NOSCRIPT');
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `host:port` of a Redis URL, without credentials. */
function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || '127.0.0.1'}:${parsed.port || '6379'}`;
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

function compareIds(a: string, b: string): number {
  return compareRunIds(a, b);
}

/** A duration or instant in ms as a script argument: an integer the scripts can read (see `num` in the scripts). */
function integerArg(what: string, value: number): string {
  const rounded = Math.round(value);
  if (!Number.isSafeInteger(rounded)) throw new InvalidArgumentError(`${what} must be a finite number of milliseconds, got ${value}.`);
  return String(rounded);
}

/**
 * WorkflowStore on Redis (standalone, Sentinel or Cluster) through ioredis.
 *
 * Every state change of a run is one Lua script on that run's keys, which share one hash tag. The script returns the
 * run's index record, which the store then applies to the global indexes (due, list, purge) with an idempotent,
 * versioned script; see `redis.keys.ts` and the notes in `redis.scripts.ts`.
 */
export class RedisStore implements WorkflowStore {
  readonly name = 'redis';
  readonly keys: RedisKeys;
  private readonly logger: RedisStoreLogger;
  private clientRef?: Client;
  private connecting = false;
  private subscriber?: Client;
  private subscribing?: Promise<void>;
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private pending: PendingRecord[] = [];
  private flushTimer?: NodeJS.Immediate;
  private readonly inflight = new Set<Promise<void>>();
  private lastClientError = 0;
  private closed = false;

  constructor(private readonly options: RedisStoreOptions = {}) {
    const prefix = options.keyPrefix ?? 'cairn:';
    if (typeof prefix !== 'string') throw new ConfigurationError('Redis store: keyPrefix must be a string.');
    this.keys = new RedisKeys(prefix);
    this.logger = options.logger ?? DEFAULT_LOGGER;
    if (options.client) this.clientRef = options.client;
  }

  /** The ioredis client in use (after `init()`). */
  get client(): Client {
    if (!this.clientRef) throw new StoreError('Redis store: init() has not been called.');
    return this.clientRef;
  }

  private get isCluster(): boolean {
    return (this.client as { isCluster?: boolean }).isCluster === true;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // lifecycle

  async init(): Promise<void> {
    this.closed = false;
    if (!this.clientRef) this.clientRef = await this.connectOwnClient();
    else if ((this.clientRef.status as string) === 'wait') {
      await this.guard('connect', () => this.clientRef!.connect());
    }
    await this.checkDurability();
    await this.loadScripts();
  }

  private async connectOwnClient(): Promise<Client> {
    let mod: { Redis?: typeof Redis; default?: unknown };
    try {
      mod = (await import('ioredis')) as unknown as { Redis?: typeof Redis; default?: unknown };
    } catch (error) {
      throw new ConfigurationError(
        `The Redis store needs the ioredis package, which could not be loaded (${message(error)}). Install it: npm install ioredis`,
      );
    }
    const RedisClass = (mod.Redis ?? mod.default) as typeof Redis;
    const url = this.options.url ?? 'redis://127.0.0.1:6379';
    const where = describeUrl(url);
    const client = new RedisClass(url, {
      lazyConnect: true,
      connectTimeout: 2_000,
      retryStrategy: (times: number) => (this.connecting ? null : Math.min(50 * 2 ** Math.min(times, 6), 2_000)),
    });
    client.on('error', (error: unknown) => {
      if (this.connecting || this.closed) return;
      const now = Date.now();
      if (now - this.lastClientError < 10_000) return;
      this.lastClientError = now;
      this.logger.warn(`Redis store: connection to ${where}: ${message(error)}`);
    });
    const deadline = Date.now() + (this.options.connectTimeoutMs ?? 5_000);
    this.connecting = true;
    try {
      for (;;) {
        try {
          await client.connect();
          return client;
        } catch (error) {
          if (Date.now() >= deadline) {
            client.disconnect();
            throw new StoreError(`Redis store: cannot connect to Redis at ${where}: ${message(error)}`, { cause: error });
          }
          await sleep(200);
          if (client.status !== 'end' && client.status !== 'wait' && client.status !== 'close') client.disconnect();
        }
      }
    } finally {
      this.connecting = false;
    }
  }

  /** Warns when the server is configured so that runs may be lost. Tolerates CONFIG being disabled. */
  private async checkDurability(): Promise<void> {
    let appendonly: string | undefined;
    let policy: string | undefined;
    try {
      const aof = (await this.client.call('CONFIG', 'GET', 'appendonly')) as string[];
      const mem = (await this.client.call('CONFIG', 'GET', 'maxmemory-policy')) as string[];
      appendonly = aof?.[1];
      policy = mem?.[1];
    } catch (error) {
      this.logger.log(
        `Redis store: could not read the server configuration (${message(error)}); skipping the durability check. ` +
          'Make sure appendonly is yes and maxmemory-policy is noeviction.',
      );
      return;
    }
    if (appendonly !== undefined && appendonly !== 'yes') {
      this.logger.warn(
        `Redis store: appendonly is "${appendonly}" on the Redis server. Without the append-only file, a Redis crash or ` +
          'restart loses every run, step checkpoint and signal written since the last RDB snapshot (all of them when ' +
          'snapshots are off). Set appendonly yes (appendfsync everysec loses at most about one second of writes on a ' +
          'machine crash; always loses none).',
      );
    }
    if (policy !== undefined && policy !== 'noeviction') {
      this.logger.warn(
        `Redis store: maxmemory-policy is "${policy}" on the Redis server. When Redis reaches maxmemory it may evict ` +
          'run, step, signal or index keys, silently losing runs and their checkpoints. Set maxmemory-policy noeviction ' +
          '(writes then fail loudly instead).',
      );
    }
  }

  private async loadScripts(): Promise<void> {
    if (this.isCluster) return; // loaded per node on first use (EVAL fallback on NOSCRIPT)
    try {
      for (const script of ALL_SCRIPTS) await this.client.call('SCRIPT', 'LOAD', script.lua);
    } catch (error) {
      throw new StoreError(`Redis store: cannot load the Lua scripts: ${message(error)}`, { cause: error });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.clientRef) {
      try {
        await this.flushIndex();
        await Promise.allSettled([...this.inflight]);
      } catch {
        // reported by flushIndex
      }
    }
    this.closed = true;
    this.listeners.clear();
    await this.closeSubscriber();
    if (this.ownsClientOrCreated() && this.clientRef) {
      const client = this.clientRef;
      this.clientRef = undefined;
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    }
  }

  private ownsClientOrCreated(): boolean {
    return !this.options.client;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // scripts

  private async run<T>(call: ScriptCall): Promise<T> {
    const { script, keys, args } = call;
    try {
      return (await this.client.evalsha(script.sha, keys.length, ...keys, ...args)) as T;
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return (await this.client.eval(script.lua, keys.length, ...keys, ...args)) as T;
    }
  }

  /** Runs scripts in one pipeline (one round trip) when the client is not a Cluster; throws the first failure. */
  private async runMany<T>(calls: ScriptCall[]): Promise<T[]> {
    const settled = await this.runSettled<T>(calls);
    const failed = settled.find((result) => !result.ok);
    if (failed && !failed.ok) throw failed.error;
    return settled.map((result) => (result as { value: T }).value);
  }

  /**
   * Runs scripts in one pipeline (one round trip) when the client is not a Cluster, and reports each call's outcome:
   * one failing call never hides what the others did (e.g. the runs a claim batch leased).
   */
  private async runSettled<T>(calls: ScriptCall[]): Promise<Settled<T>[]> {
    if (calls.length === 0) return [];
    const one = (call: ScriptCall): Promise<Settled<T>> =>
      this.run<T>(call).then(
        (value) => ({ ok: true, value }),
        (error: unknown) => ({ ok: false, error }),
      );
    if (calls.length === 1 || this.isCluster) return Promise.all(calls.map(one));
    const pipeline = this.client.pipeline();
    for (const { script, keys, args } of calls) pipeline.evalsha(script.sha, keys.length, ...keys, ...args);
    let results: [Error | null, unknown][];
    try {
      results = (await pipeline.exec()) ?? [];
    } catch (error) {
      return calls.map(() => ({ ok: false, error }));
    }
    const out: Settled<T>[] = calls.map((_, i) => {
      const [error, value] = results[i] ?? [new StoreError('Redis store: missing pipeline reply'), undefined];
      return error ? { ok: false, error } : { ok: true, value: value as T };
    });
    const retry = out.flatMap((result, i) => (!result.ok && isNoScript(result.error) ? [i] : []));
    if (retry.length > 0) {
      const again = await Promise.all(retry.map((i) => one(calls[i])));
      retry.forEach((i, j) => (out[i] = again[j]));
    }
    return out;
  }

  /**
   * Runs a per-run script preceded by a kick: a write-ahead mark in the global index slot saying that the run's
   * index entries may be about to change. The mark is removed when the resulting index record is applied; if this
   * process dies in between, claimers repair the run's index entries from the run itself.
   */
  private async runKicked<T>(runId: string, call: ScriptCall): Promise<{ result: T; kick: string }> {
    const kick = randomBytes(8).toString('hex') + runId;
    if (this.isCluster) {
      await this.client.zadd(this.keys.kicks, 0, kick);
      return { result: await this.run<T>(call), kick };
    }
    const { script, keys, args } = call;
    const pipeline = this.client.pipeline();
    pipeline.zadd(this.keys.kicks, 0, kick);
    pipeline.evalsha(script.sha, keys.length, ...keys, ...args);
    const results = (await pipeline.exec()) ?? [];
    if (results[0]?.[0]) throw results[0][0];
    const [error, value] = results[1] ?? [new StoreError('Redis store: empty pipeline reply'), undefined];
    if (error && isNoScript(error)) return { result: await this.run<T>(call), kick };
    if (error) throw error;
    return { result: value as T, kick };
  }

  private async guard<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof DurableExecutionError) throw error;
      throw new StoreError(`Redis store: ${operation} failed: ${message(error)}`, { cause: error });
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // global indexes

  /**
   * Queues an index record; records are applied in batches, right after the current I/O callbacks. `repair` is for a
   * record read because the index disagreed with the run: it is applied even when the run's index version did not
   * change (the run was edited behind the store's back).
   */
  private enqueue(record: IndexRecord, kick = '', extra = '', repair = false): void {
    this.pending.push({ record, kick, extra, repair });
    if (!this.flushTimer) {
      this.flushTimer = setImmediate(() => {
        this.flushTimer = undefined;
        void this.flushIndex();
      });
    }
  }

  /** Sends the queued index records now; resolves when they are applied (failures are logged, not thrown). */
  private flushIndex(): Promise<void> {
    if (this.flushTimer) {
      clearImmediate(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.pending.length === 0 || !this.clientRef) return Promise.resolve();
    const batch = this.pending.splice(0);
    const calls: ScriptCall[] = [];
    for (let i = 0; i < batch.length; i += APPLY_BATCH) calls.push(this.applyCall(batch.slice(i, i + APPLY_BATCH)));
    const promise: Promise<void> = this.runMany<[number, number, string]>(calls)
      .then((results) => {
        const skipped = results.reduce((sum, result) => sum + (Array.isArray(result) ? Number(result[1]) || 0 : 0), 0);
        if (skipped > 0) {
          const first = results.find((result) => Array.isArray(result) && result[2])?.[2];
          this.logger.warn(`Redis store: ${skipped} index record(s) could not be applied and were skipped (${first}); the other runs were indexed.`);
        }
      })
      .catch((error: unknown) => {
        this.logger.warn(
          `Redis store: updating the run indexes failed (${message(error)}); they are repaired when the runs are next seen.`,
        );
      })
      .finally(() => this.inflight.delete(promise));
    this.inflight.add(promise);
    return promise;
  }

  private applyCall(batch: PendingRecord[]): ScriptCall {
    const groups: string[] = [];
    const seen = new Set<string>();
    const addGroup = (workflow: string) => {
      if (!seen.has(workflow)) {
        seen.add(workflow);
        groups.push(workflow);
      }
    };
    for (const { record, extra } of batch) {
      if (record[1] === '1' || record[3] !== '') addGroup(record[3]);
      if (extra !== '') addGroup(extra);
    }
    const keys = [...this.keys.applyBase()];
    for (const workflow of groups) keys.push(...this.keys.workflowGroup(workflow));
    const args: string[] = [String(groups.length), ...groups];
    for (const { record, kick, extra, repair } of batch) args.push(...record, kick, extra, repair ? '1' : '0');
    return { script: APPLY_INDEX, keys, args };
  }

  // ---------------------------------------------------------------------------------------------------------------
  // runs

  async createRun(input: NewRun, options: CreateRunOptions): Promise<CreateRunResult> {
    if (options.transaction !== undefined) {
      throw new InvalidArgumentError('The Redis store cannot write through a caller\'s transaction (StartOptions.transaction is for the Postgres store).');
    }
    const keys = this.keys.run(input.runId);
    return this.guard('createRun', async () => {
      const lease = options.lease;
      const args: (string | number)[] = [
        input.runId,
        input.workflow,
        String(input.version),
        input.input,
        input.state,
        input.currentStep !== undefined ? '1' : '0',
        input.currentStep ?? '',
        options.onConflict,
        lease?.owner ?? '',
        lease ? '1' : '0',
        integerArg('The lease', lease?.leaseMs ?? 0),
        lease ? randomUUID() : '',
        this.keys.channel,
      ];
      (input.steps ?? []).forEach((step, index) => args.push(String(index), encodeStep(step)));
      const { result, kick } = await this.runKicked<[number, Snapshot, IndexRecord, string]>(input.runId, {
        script: CREATE_RUN,
        keys: [keys.run, keys.steps, keys.signals],
        args,
      });
      const [created, snapshot, record, previousWorkflow] = result;
      this.enqueue(record, kick, previousWorkflow ?? '');
      return { created: created === 1, run: decodeRun(snapshot, input.runId)! };
    });
  }

  async getRun(runId: string): Promise<StoredRun | undefined> {
    const keys = this.keys.run(runId);
    return this.guard('getRun', async () => {
      const [snapshot] = await this.run<[Snapshot, IndexRecord]>({ script: READ_RUN, keys: [keys.run, keys.steps], args: [runId] });
      return decodeRun(snapshot, runId);
    });
  }

  async listRuns(query: ListRunsQuery): Promise<StoredRun[]> {
    const limit = Math.floor(query.limit);
    if (!(limit > 0)) return [];
    const statuses = query.statuses ? [...new Set(query.statuses)].filter((s) => STATUS_SET.has(s)) : undefined;
    if (statuses && statuses.length === 0) return [];
    return this.guard('listRuns', async () => {
      await this.flushIndex();
      const workflow = query.workflow;
      const keys =
        workflow !== undefined && statuses
          ? statuses.map((s) => this.keys.byWorkflowStatus(workflow, s))
          : workflow !== undefined
            ? [this.keys.byWorkflow(workflow)]
            : statuses
              ? statuses.map((s) => this.keys.byStatus(s))
              : [this.keys.created];
      const wanted = statuses ? new Set<RunStatus>(statuses) : undefined;
      const out: StoredRun[] = [];
      let cursor = query.after ? { score: query.after.createdAt.getTime(), id: query.after.runId } : undefined;
      for (let round = 0; round < 100 && out.length < limit; round++) {
        const need = limit - out.length;
        const entries = await this.indexPage(keys, cursor, need);
        if (entries.length === 0) break;
        const reads = await this.runMany<[Snapshot, IndexRecord]>(
          entries.map((entry) => {
            const runKeys = this.keys.run(entry.id);
            return { script: READ_RUN, keys: [runKeys.run, runKeys.steps], args: [entry.id] };
          }),
        );
        entries.forEach((entry, i) => {
          const [snapshot, record] = reads[i];
          const decoded = decodeSnapshot(snapshot, entry.id);
          const run = decoded?.run;
          // NOTE: a run whose creation time cannot be read keeps its index score (see APPLY_INDEX), and is listed
          // with it, so that pages stay in order.
          const createdAtDamaged = decoded?.damaged.has('ca') === true;
          const matches =
            run !== undefined &&
            (createdAtDamaged || run.createdAt.getTime() === entry.score) &&
            (workflow === undefined || run.workflow === workflow) &&
            (!wanted || wanted.has(run.status));
          if (matches) {
            if (createdAtDamaged) run.createdAt = new Date(entry.score);
            out.push(run);
          } else {
            this.enqueue(record, '', workflow ?? '', true); // a stale index entry: repair it
          }
        });
        const last = entries[entries.length - 1];
        cursor = { score: last.score, id: last.id };
        if (entries.length < need) break;
      }
      return out;
    });
  }

  /**
   * The next `n` index entries after `cursor` in the order (createdAt desc, runId desc), over the union of `keys`.
   * Sorted sets order equal scores by member bytes (encoded ids); the store orders ties by the ids' code points, so tie groups at the
   * edges of a page are read whole and sorted here.
   */
  private async indexPage(keys: string[], cursor: { score: number; id: string } | undefined, n: number) {
    const pipeline = this.client.pipeline();
    for (const key of keys) {
      if (cursor) {
        pipeline.call('ZRANGE', key, String(cursor.score), String(cursor.score), 'BYSCORE');
        pipeline.call('ZRANGE', key, `(${cursor.score}`, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, n, 'WITHSCORES');
      } else {
        pipeline.call('ZRANGE', key, '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, n, 'WITHSCORES');
      }
    }
    const results = (await pipeline.exec()) ?? [];
    for (const [error] of results) if (error) throw error;
    const entries = new Map<string, number>();
    const complete: { key: string; score: string }[] = [];
    let r = 0;
    for (const key of keys) {
      if (cursor) {
        for (const id of results[r++][1] as string[]) entries.set(id, cursor.score);
      }
      const page = results[r++][1] as string[];
      for (let i = 0; i + 1 < page.length; i += 2) entries.set(page[i], Number(page[i + 1]));
      if (page.length / 2 >= n && page.length > 0) complete.push({ key, score: page[page.length - 1] });
    }
    if (complete.length > 0) {
      const more = this.client.pipeline();
      for (const { key, score } of complete) more.call('ZRANGE', key, score, score, 'BYSCORE');
      const groups = (await more.exec()) ?? [];
      groups.forEach(([error, ids], i) => {
        if (error) throw error;
        for (const id of ids as string[]) entries.set(id, Number(complete[i].score));
      });
    }
    return [...entries.entries()]
      .map(([id, score]) => ({ id, score }))
      .filter((e) => !cursor || e.score < cursor.score || (e.score === cursor.score && compareIds(e.id, cursor.id) < 0))
      .sort((a, b) => b.score - a.score || compareIds(b.id, a.id))
      .slice(0, n);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // claims and leases

  private claimCall(runId: string, lease: LeaseRequest, workflows: readonly string[] | undefined): ScriptCall {
    const keys = this.keys.run(runId);
    const filter = workflows ? [String(workflows.length), ...workflows] : ['-1'];
    return {
      script: CLAIM_RUN,
      keys: [keys.run, keys.steps],
      args: [runId, lease.owner, integerArg('The lease', lease.leaseMs), randomUUID(), ...filter],
    };
  }

  async claimRuns(lease: LeaseRequest, limit: number, workflows?: readonly string[]): Promise<ClaimedRun[]> {
    if (!(limit > 0)) return [];
    if (workflows && workflows.length === 0) return [];
    const names = workflows ? [...new Set(workflows)] : undefined;
    return this.guard('claimRuns', async () => {
      await this.flushIndex();
      const dueKeys = names ? names.map((w) => this.keys.dueByWorkflow(w)) : [this.keys.due];
      const claimed: ClaimedRun[] = [];
      const tried = new Set<string>();
      let failure: unknown;
      for (let round = 0; round < 8 && claimed.length < limit; round++) {
        const want = (limit - claimed.length) * 2 + 8;
        const [candidates, orphans] = await this.run<[string[], string[]]>({
          script: CLAIM_CANDIDATES,
          keys: [this.keys.kicks, ...dueKeys],
          args: [want, this.options.indexRepairGraceMs ?? KICK_GRACE_MS, KICK_BATCH],
        });
        if (round === 0 && orphans.length > 0) await this.repairKicks(orphans);
        const fresh = candidates.filter((id) => !tried.has(id));
        let next = 0;
        while (next < fresh.length && claimed.length < limit) {
          const batch = fresh.slice(next, next + (limit - claimed.length));
          next += batch.length;
          const results = await this.runSettled<[number, ...unknown[]]>(batch.map((id) => this.claimCall(id, lease, names)));
          results.forEach((settled, i) => {
            tried.add(batch[i]);
            if (!settled.ok) {
              failure ??= settled.error;
              return;
            }
            const result = settled.value;
            if (result[0] === 1) {
              const [, snapshot, record, recovered] = result as [number, Snapshot, IndexRecord, number];
              claimed.push(decodeClaimed(snapshot, recovered === 1, batch[i]));
              this.enqueue(record);
            } else {
              this.enqueue((result as [number, IndexRecord])[1], '', '', true); // not claimable: correct its due entry
            }
          });
        }
        await this.flushIndex();
        if (candidates.length < want || fresh.length === 0) break;
      }
      if (failure !== undefined) {
        // NOTE: the runs claimed are returned (they are leased to this caller); the failed claim is only reported.
        if (claimed.length === 0) throw failure;
        this.logger.warn(`Redis store: claiming a run failed (${message(failure)}); the ${claimed.length} other run(s) were claimed.`);
      }
      return claimed;
    });
  }

  /** Re-derives the index entries of runs whose kick was left behind (the writer died before applying them). */
  private async repairKicks(members: string[]): Promise<void> {
    const reads = await this.runMany<[Snapshot, IndexRecord]>(
      members.map((member) => {
        const runId = member.slice(16);
        const keys = this.keys.run(runId);
        return { script: READ_RUN, keys: [keys.run, keys.steps], args: [runId] };
      }),
    );
    reads.forEach(([, record], i) => this.enqueue(record, members[i], '', true));
    await this.flushIndex();
  }

  async claimRun(runId: string, lease: LeaseRequest, workflows?: readonly string[]): Promise<ClaimedRun | undefined> {
    this.keys.run(runId);
    if (workflows && workflows.length === 0) return undefined;
    return this.guard('claimRun', async () => {
      const result = await this.run<[number, ...unknown[]]>(this.claimCall(runId, lease, workflows));
      if (result[0] !== 1) {
        this.enqueue((result as [number, IndexRecord])[1]);
        return undefined;
      }
      const [, snapshot, record, recovered] = result as [number, Snapshot, IndexRecord, number];
      this.enqueue(record);
      return decodeClaimed(snapshot, recovered === 1, runId);
    });
  }

  async renewLease(runId: string, token: string, leaseMs: number): Promise<RenewResult> {
    const keys = this.keys.run(runId);
    return this.guard('renewLease', async () => {
      const result = await this.run<[number, string?, string?]>({
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
    await this.guard('releaseLease', async () => {
      const result = await this.run<[number, IndexRecord?]>({
        script: RELEASE_LEASE,
        keys: [keys.run],
        args: [runId, token, this.keys.channel],
      });
      if (result[0] === 1 && result[1]) this.enqueue(result[1]);
    });
  }

  async commit(runId: string, token: string, patch: RunPatch): Promise<CommitResult> {
    const keys = this.keys.run(runId);
    const ops: string[] = [];
    if (patch.status !== undefined) ops.push('st', patch.status);
    if (patch.state !== undefined) ops.push('state', patch.state);
    if (patch.currentStep !== undefined) {
      if (patch.currentStep === null) ops.push('cur-');
      else ops.push('cur', patch.currentStep);
    }
    if (patch.output !== undefined) {
      if (patch.output === null) ops.push('out-');
      else ops.push('out', patch.output);
    }
    if (patch.error !== undefined) {
      if (patch.error === null) ops.push('err-');
      else ops.push('err', encodeError(patch.error));
    }
    for (const { index, step } of patch.steps ?? []) {
      if (!Number.isInteger(index) || index < 0) throw new InvalidArgumentError(`Step index must be a non-negative integer, got ${index}.`);
      ops.push('step', String(index), encodeStep(step));
    }
    if (patch.due !== undefined) {
      if (patch.due === null) ops.push('due-');
      else if ('at' in patch.due) ops.push('dueat', integerArg('A wake-up time', new Date(patch.due.at).getTime()));
      else ops.push('due', integerArg('A delay', patch.due.delayMs));
    }
    if (patch.wait) {
      ops.push('wait', patch.wait.signal, patch.wait.timeoutMs === undefined ? '' : integerArg('A signal timeout', patch.wait.timeoutMs));
    }
    const leaseMs = integerArg('The lease', patch.leaseMs);
    if (patch.release) ops.push('rel');
    if (patch.clearCancel) ops.push('cc');
    return this.guard('commit', async () => {
      const result = await this.run<[number, ...unknown[]]>({
        script: COMMIT,
        keys: [keys.run, keys.steps, keys.signals],
        args: [runId, token, leaseMs, this.keys.channel, ...ops],
      });
      if (result[0] !== 1) return { ok: false };
      const [, paused, cancel, consumed, payload, record, dirty] = result as [number, number, string, number, string, IndexRecord, number];
      if (dirty === 1) this.enqueue(record);
      const out: CommitResult = { ok: true };
      if (paused === 1) out.paused = true;
      if (cancel) out.cancel = { compensate: cancel !== '0' };
      if (consumed === 1) out.consumedSignal = { payload };
      return out;
    });
  }

  async takeSignal(runId: string, token: string, name: string): Promise<TakeSignalResult> {
    const keys = this.keys.run(runId);
    return this.guard('takeSignal', async () => {
      const result = await this.run<[number, ...unknown[]]>({
        script: TAKE_SIGNAL,
        keys: [keys.run, keys.signals],
        args: [runId, token, name],
      });
      if (result[0] !== 1) return { ok: false };
      const [, got, payload, timedOut, record] = result as [number, number, string, number, IndexRecord];
      if (got === 1) {
        this.enqueue(record);
        return { ok: true, payload, timedOut: false };
      }
      return { ok: true, timedOut: timedOut === 1 };
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // client requests

  async sendSignal(runId: string, name: string, payload: string): Promise<ControlResult> {
    const keys = this.keys.run(runId);
    return this.guard('sendSignal', async () => {
      const { result, kick } = await this.runKicked<[string, string, IndexRecord]>(runId, {
        script: SEND_SIGNAL,
        keys: [keys.run, keys.signals],
        args: [runId, name, payload, this.keys.channel],
      });
      const [outcome, status, record] = result;
      this.enqueue(record, kick);
      return outcome === 'not-found' ? { outcome } : { outcome: outcome as ControlResult['outcome'], status: status as RunStatus };
    });
  }

  async control(runId: string, request: ControlRequest): Promise<ControlResult> {
    const keys = this.keys.run(runId);
    return this.guard('control', async () => {
      const compensate = request.action === 'cancel' ? (request.compensate ? '1' : '0') : '';
      const { result, kick } = await this.runKicked<[string, string, IndexRecord]>(runId, {
        script: CONTROL,
        keys: [keys.run],
        args: [runId, request.action, compensate, this.keys.channel],
      });
      const [outcome, status, record] = result;
      this.enqueue(record, kick);
      return outcome === 'not-found' ? { outcome } : { outcome: outcome as ControlResult['outcome'], status: status as RunStatus };
    });
  }

  async purge(statuses: readonly RunStatus[], olderThanMs: number): Promise<number> {
    const terminal = [...new Set(statuses)].filter((s) => TERMINAL.includes(s));
    if (terminal.length === 0) return 0;
    const older = String(Math.round(olderThanMs));
    return this.guard('purge', async () => {
      await this.flushIndex();
      const seen = new Set<string>();
      let count = 0;
      for (let round = 0; round < 10_000; round++) {
        const ids = await this.run<string[]>({
          script: PURGE_CANDIDATES,
          keys: terminal.map((s) => this.keys.finished(s)),
          args: [older, PURGE_BATCH],
        });
        const fresh = [...new Set(ids)].filter((id) => !seen.has(id));
        if (fresh.length === 0) break;
        const results = await this.runMany<[number, IndexRecord]>(
          fresh.map((id) => {
            const keys = this.keys.run(id);
            return { script: PURGE_RUN, keys: [keys.run, keys.steps, keys.signals], args: [id, older, ...terminal] };
          }),
        );
        results.forEach(([deleted, record], i) => {
          seen.add(fresh[i]);
          if (deleted === 1) count++;
          this.enqueue(record);
        });
        await this.flushIndex();
      }
      return count;
    });
  }

  /**
   * Rebuilds the global index entries (list, claims, purge) from the runs themselves: every run hash of this prefix
   * is read (SCAN, on every master of a Cluster) and its index record applied, and index entries of runs that no
   * longer exist are dropped. Not needed in normal operation (the indexes repair themselves as runs are seen); for
   * operators after an unclean restart of the Redis node that holds the indexes, or after editing keys by hand.
   * Returns the number of runs indexed.
   */
  async reindex(): Promise<number> {
    return this.guard('reindex', async () => {
      await this.flushIndex();
      const client = this.client;
      const masters: Redis[] = this.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
      const pattern = `${this.keys.prefix.replace(/[*?[\]\\]/g, '\\$&')}{*}:r`;
      let count = 0;
      const readAll = async (ids: string[]) => {
        const reads = await this.runMany<[Snapshot, IndexRecord]>(
          ids.map((id) => {
            const keys = this.keys.run(id);
            return { script: READ_RUN, keys: [keys.run, keys.steps], args: [id] };
          }),
        );
        reads.forEach(([, record]) => {
          if (record[1] === '1') count++;
          this.enqueue(record, '', '', true);
        });
        await this.flushIndex();
      };
      for (const node of masters) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
          cursor = next;
          const runKeys = keys.filter((key) => key.startsWith(this.keys.prefix) && !key.startsWith(this.keys.index));
          if (runKeys.length === 0) continue;
          const pipeline = node.pipeline();
          for (const key of runKeys) pipeline.hget(key, 'id');
          const ids = ((await pipeline.exec()) ?? []).map(([, id]) => id).filter((id): id is string => typeof id === 'string');
          await readAll(ids);
        } while (cursor !== '0');
      }
      // index entries whose run is gone
      let cursor = '0';
      const seen = new Set<string>();
      do {
        const [next, flat] = await client.zscan(this.keys.created, cursor, 'COUNT', 500);
        cursor = next;
        const ids = flat.filter((_, i) => i % 2 === 0).filter((id) => !seen.has(id));
        ids.forEach((id) => seen.add(id));
        if (ids.length === 0) continue;
        const reads = await this.runMany<[Snapshot, IndexRecord]>(
          ids.map((id) => {
            const keys = this.keys.run(id);
            return { script: READ_RUN, keys: [keys.run, keys.steps], args: [id] };
          }),
        );
        reads.forEach(([, record]) => {
          if (record[1] !== '1') this.enqueue(record, '', '', true);
        });
        await this.flushIndex();
      } while (cursor !== '0');
      return count;
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // events

  async subscribe(listener: (event: StoreEvent) => void): Promise<() => Promise<void>> {
    this.listeners.add(listener);
    try {
      await this.ensureSubscriber();
    } catch (error) {
      this.listeners.delete(listener);
      throw new StoreError(`Redis store: cannot subscribe to events: ${message(error)}`, { cause: error });
    }
    return async () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) await this.closeSubscriber();
    };
  }

  private ensureSubscriber(): Promise<void> {
    if (this.subscribing) return this.subscribing;
    const subscriber = this.client.duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', (error: unknown) => {
      if (!this.closed) this.logger.warn(`Redis store: event subscription: ${message(error)}`);
    });
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.keys.channel) return;
      let event: StoreEvent;
      try {
        const parsed = JSON.parse(text) as { type?: unknown; runId?: unknown };
        if (typeof parsed.runId !== 'string' || !EVENT_TYPES.has(parsed.type as string)) return;
        event = { type: parsed.type as StoreEvent['type'], runId: parsed.runId };
      } catch {
        return;
      }
      for (const l of [...this.listeners]) {
        try {
          l(event);
        } catch (error) {
          this.logger.error(`Redis store: an event listener threw: ${message(error)}`);
        }
      }
    });
    this.subscribing = (async () => {
      if ((subscriber.status as string) === 'wait') await subscriber.connect();
      await subscriber.subscribe(this.keys.channel);
    })().catch(async (error: unknown) => {
      await this.closeSubscriber();
      throw error;
    });
    return this.subscribing;
  }

  private async closeSubscriber(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.subscribing = undefined;
    if (!subscriber) return;
    try {
      await subscriber.quit();
    } catch {
      subscriber.disconnect();
    }
  }
}
