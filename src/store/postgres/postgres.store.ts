import { createHash, randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { DurableExecutionError } from '../../errors/durable-execution.error.js';
import { ConfigurationError, InvalidArgumentError, StoreError } from '../../errors/errors.js';
import { storeCall, throwsAsRejection } from '../store-call.js';
import type {
  ClaimedRun,
  CommitResult,
  ControlRequest,
  ControlResult,
  CountRunsQuery,
  CreateRunOptions,
  CreateRunResult,
  LeaseRequest,
  ListEventsQuery,
  ListRunsQuery,
  LiveRunGroup,
  NewRun,
  QueuedSignal,
  RenewResult,
  RunOutcome,
  RunPatch,
  SendSignalOptions,
  RunStatus,
  StoreEvent,
  StoredRun,
  StoredRunEvent,
  TakeSignalResult,
  WorkflowRef,
  WorkflowStore,
} from '../workflow-store.interface.js';
import { PUBLISH_MAX_BYTES, RUN_HISTORY_LIMIT } from '../workflow-store.interface.js';
import { isTerminal } from '../run-state-machine.js';
import { managerQuery, type Row, type SqlClient, type StoreLogger, TypeOrmSqlClient } from './postgres.client.js';
import {
  DEFAULT_SCHEMA,
  DEFAULT_TABLE_PREFIX,
  ensureSchemaInTransaction,
  isSchemaCurrent,
  type SchemaNames,
  schemaNames,
  type SqlQuery,
} from './postgres.schema.js';
import type { CommitValues, SpecialValues } from './postgres.commit.sql.js';
import { messagePayload, PostgresEventHub } from './postgres.event-hub.js';
import { GroupCommit } from './postgres.group-commit.js';
import { bool, date, errorAsStored, mapOutcome, mapRun, num, stepAsStored, stepRows } from './postgres.row-codec.js';
import { createBatchEntry, createFlowBatchEntry, fitsFlowBatch, NEW_RUN_ARGS, type NewRunParam } from './postgres.run.sql.js';
import { buildStatements, type Statements } from './postgres.sql.js';
import { checkStorable, storable } from './postgres.storable-text.js';
import { PostgresScheduleStore } from './postgres.schedules.js';

/** Options of {@link PostgresStore}. */
export interface PostgresStoreOptions {
  /** Connection URL. Defaults to `DATABASE_URL` when neither `url` nor `dataSource` is given. */
  url?: string;
  /** The app's own TypeORM DataSource (e.g. from `@nestjs/typeorm`); left open by `close()`. */
  dataSource?: DataSource;
  /** Schema of the tables, created when missing. Default `public`. */
  schema?: string;
  /** Prefix of table and index names. Default `cairn_`. */
  tablePrefix?: string;
  logger?: StoreLogger;
  /** Pool size of the DataSource the store creates from `url`. Default 10. */
  poolSize?: number;
  /**
   * Advanced: run the store's SQL on another connection (the PGlite store uses it). Called once by `init()`; the
   * client is closed by `close()`.
   */
  sqlClient?: () => Promise<SqlClient>;
  /**
   * Advanced: at `init()`, expire every lease (runs that were executing become due now), because no other process
   * can hold one. Only for a database this process alone can open (the PGlite store sets it: its folder lock proves
   * it); never for a shared PostgreSQL. Default false.
   */
  expireLeasesAtInit?: boolean;
  /** Name for logs; default `postgres`. */
  name?: string;
  /**
   * Send hot statements as named prepared statements (parsed and planned once per connection). Default true;
   * switched off automatically (with a warning) when the connection cannot keep them, e.g. PgBouncer < 1.21 in
   * transaction mode. Set false to never use them.
   */
  preparedStatements?: boolean;
  /**
   * Group commit (default true): step checkpoints of different runs that queue up while the store's write statements
   * are busy go to the database together, as one statement (one round trip, one transaction, one WAL flush), and so
   * do plain starts (without flow control, debounce, `replace` or a caller's transaction). A lone checkpoint or start
   * is never delayed. Set false to send every checkpoint and start as its own statement; pass an object to tune it.
   */
  groupCommit?: boolean | PostgresGroupCommitOptions;
}

/** Tuning of {@link PostgresStoreOptions.groupCommit}. */
export interface PostgresGroupCommitOptions {
  /**
   * Most write statements (checkpoints and plain starts) this store has in flight at once; writes made while that many
   * are out wait for the next free one and go together in it. Default 4 (never more than `poolSize`; 1 on PGlite).
   * Fewer, fuller statements cost the server less per run (a transaction, a WAL flush and a round trip each, shared by
   * every write in them), and a write never waits more than one statement's time. On the 2-core bench VM, `conc64`
   * ran 1.2–1.3× faster with 2–4 than with one per pooled connection (10). A database server with many cores serving
   * one busy app instance may gain from more; each instance counts its own.
   */
  maxStatements?: number;
}

/** Default of {@link PostgresGroupCommitOptions.maxStatements}. */
const DEFAULT_GROUP_COMMIT_STATEMENTS = 4;

/** How many write statements group commit keeps in flight (Infinity: group commit off, every write at once). */
function groupCommitStatements(option: PostgresStoreOptions['groupCommit']): number {
  if (option === false) return Number.POSITIVE_INFINITY;
  const max = option === undefined || option === true ? DEFAULT_GROUP_COMMIT_STATEMENTS : option.maxStatements ?? DEFAULT_GROUP_COMMIT_STATEMENTS;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new ConfigurationError(`Postgres store: groupCommit.maxStatements must be a positive integer (got ${String(max)}); e.g. { groupCommit: { maxStatements: 4 } }.`);
  }
  return max;
}

const defaultLogger: StoreLogger = {
  log: () => undefined,
  warn: (message) => console.warn(`[nestjs-cairn] ${message}`),
  error: (message) => console.error(`[nestjs-cairn] ${message}`),
};

/** How many times an operation racing with concurrent creates/deletes of the same id is retried. */
const CONFLICT_RETRIES = 5;
const PURGE_BATCH = 1_000;
/** Most runs handed out by one claim (a bound for `limit`, e.g. when a caller passes Infinity). */
const MAX_CLAIM = 10_000;
/** Most events of one `listEvents` page (a bound for `limit`; a history holds at most RUN_HISTORY_LIMIT anyway). */
const MAX_EVENTS_PAGE = 100_000;
/** The largest `seq` (an integer column). */
const MAX_SEQ = 2 ** 31 - 1;

/**
 * History event bodies as the statements take them: null when there are none (the statements without events are
 * used then). Each must be text PostgreSQL can store.
 */
function eventBodies(events: readonly string[] | undefined): string[] | null {
  if (!events || events.length === 0) return null;
  for (const body of events) checkEventBody(body);
  return [...events];
}

function checkEventBody(body: string): void {
  if (typeof body !== 'string') throw new InvalidArgumentError(`A history event must be a string (got ${typeof body}).`);
  checkStorable('A history event', body);
}

/** A `seq` from a statement's row, or undefined. */
function seqOf(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : num(value);
}

/** A `listRuns` creation-time bound as epoch ms (undefined: none); an invalid Date is refused. */
function creationBound(what: string, value: Date | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const time = value instanceof Date ? value.getTime() : NaN;
  if (!Number.isFinite(time)) throw new InvalidArgumentError(`listRuns ${what} must be a valid Date (got ${String(value)}).`);
  return time;
}

/** The `version` column is an `integer`: a pair with another version matches no run. */
const MIN_INT4 = -(2 ** 31);
const MAX_INT4 = 2 ** 31 - 1;

/**
 * A claim's `workflows` filter as the statements take it (`$4` names, `$5` versions, `$6` `<version>:<workflow>` keys;
 * see `forWorkflows` in postgres.claim.sql.ts): undefined without a filter, null when no run can match (then nothing
 * is sent). Pairs no run can have (a name PostgreSQL text cannot hold, a version that is not an `integer`) are left out.
 */
function claimFilter(workflows: readonly WorkflowRef[] | undefined): [string[], number[], string[]] | null | undefined {
  if (!workflows) return undefined;
  const names = new Set<string>();
  const versions = new Set<number>();
  const keys = new Set<string>();
  for (const ref of workflows) {
    const { workflow, version } = ref ?? {};
    if (typeof workflow !== 'string' || !storable(workflow)) continue;
    if (!Number.isInteger(version) || version < MIN_INT4 || version > MAX_INT4) continue;
    names.add(workflow);
    versions.add(version);
    keys.add(`${version}:${workflow}`);
  }
  return keys.size === 0 ? null : [[...names], [...versions], [...keys]];
}

/**
 * The parameters of `commitSpecial` of a patch with `children` and/or `restart`: the children to spawn as parallel
 * arrays (the first of each id only: a later one would find it existing; `sp_n` says how many entries name it, for
 * rule 8c), their first events flattened (the newest RUN_HISTORY_LIMIT of each, numbered as an append would number
 * them).
 */
function specialValues(patch: RunPatch): SpecialValues {
  const children = patch.children;
  const seen = new Map<string, number>();
  const spawn = (children?.spawn ?? []).filter((child) => {
    checkStorable('The child run id', child.runId);
    checkStorable('The workflow name', child.workflow);
    checkStorable('The pipeline fingerprint', child.pipeline);
    const entries = seen.get(child.runId);
    seen.set(child.runId, (entries ?? 0) + 1);
    return entries === undefined;
  });
  const evIds: string[] = [];
  const evSeqs: number[] = [];
  const evBodies: string[] = [];
  const nev: number[] = [];
  for (const child of spawn) {
    const events = child.events ?? [];
    for (const body of events) checkEventBody(body);
    nev.push(events.length);
    for (let i = Math.max(0, events.length - RUN_HISTORY_LIMIT); i < events.length; i++) {
      evIds.push(child.runId);
      evSeqs.push(i + 1);
      evBodies.push(events[i]);
    }
  }
  for (const id of children?.release ?? []) checkStorable('The child run id', id);
  if (children) {
    const value = children.endedAtLeast;
    if (!Number.isInteger(value) || value < MIN_INT4 || value > MAX_INT4) {
      throw new InvalidArgumentError(`children.endedAtLeast must be an integer (got ${value}).`);
    }
  }
  return {
    restart: patch.restart !== undefined,
    restart_input: patch.restart?.input ?? null,
    ch: children !== undefined,
    ch_at_least: children?.endedAtLeast ?? null,
    ch_fail_fast: children?.failFast === true,
    sp_ids: spawn.map((c) => c.runId),
    sp_workflows: spawn.map((c) => c.workflow),
    sp_versions: spawn.map((c) => c.version),
    sp_inputs: spawn.map((c) => c.input),
    sp_states: spawn.map((c) => c.state),
    sp_pipelines: spawn.map((c) => c.pipeline ?? null),
    sp_held: spawn.map((c) => c.held === true),
    sp_nev: nev,
    sp_n: spawn.map((c) => seen.get(c.runId) ?? 1),
    ev_ids: evIds,
    ev_seqs: evSeqs,
    ev_bodies: evBodies,
    rel_ids: [...(children?.release ?? [])],
  };
}

/** The flow control parameters of a new run (see `FLOW_PARAMS` in postgres.run.sql.ts), and whether it has any. */
interface FlowValues {
  flow: boolean;
  priority: number | null;
  due_ms: number | null;
  due_at: number | null;
  conc_key: string | null;
  conc_limit: number | null;
  conc_scope: string | null;
  rate_key: string | null;
  rate_limit: number | null;
  rate_per_ms: number | null;
}

function int4(what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_INT4 || value > MAX_INT4) {
    throw new InvalidArgumentError(`${what} must be an integer (got ${String(value)}).`);
  }
  return value;
}

function finiteMs(what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidArgumentError(`${what} must be a finite number of ms (got ${String(value)}).`);
  return value;
}

/**
 * A new run's flow control fields, checked, as the statements take them. `flow` is false for a run without any (no
 * priority but 0, no delay, no limits): the plain statements, which cost what they did before flow control, write it.
 */
function flowValues(input: NewRun): FlowValues {
  const priority = input.priority ?? 0;
  if (typeof priority !== 'number' || !Number.isSafeInteger(priority)) {
    throw new InvalidArgumentError(`The run priority must be a safe integer (got ${String(priority)}).`);
  }
  const due = input.due;
  let dueMs: number | null = null;
  let dueAt: number | null = null;
  if (due) {
    if ('at' in due) {
      dueAt = due.at instanceof Date ? due.at.getTime() : NaN;
      if (!Number.isFinite(dueAt)) throw new InvalidArgumentError('The run\'s `due.at` is an invalid Date.');
    } else dueMs = finiteMs('The run\'s `due.delayMs`', due.delayMs);
  }
  const conc = input.concurrency;
  if (conc) {
    if (typeof conc.key !== 'string') throw new InvalidArgumentError('The concurrency key must be a string.');
    checkStorable('The concurrency key', conc.key);
    int4('The concurrency limit', conc.limit);
    if (conc.scope !== 'run' && conc.scope !== 'step') throw new InvalidArgumentError(`The concurrency scope must be 'run' or 'step' (got ${String(conc.scope)}).`);
  }
  const rate = input.rateLimit;
  if (rate) {
    if (typeof rate.key !== 'string') throw new InvalidArgumentError('The rate limit key must be a string.');
    checkStorable('The rate limit key', rate.key);
    int4('The rate limit', rate.limit);
    finiteMs('The rate limit window `perMs`', rate.perMs);
  }
  return {
    flow: priority !== 0 || due !== undefined || conc !== undefined || rate !== undefined,
    priority,
    due_ms: dueMs,
    due_at: dueAt,
    conc_key: conc?.key ?? null,
    conc_limit: conc?.limit ?? null,
    conc_scope: conc?.scope ?? null,
    rate_key: rate?.key ?? null,
    rate_limit: rate?.limit ?? null,
    rate_per_ms: rate?.perMs ?? null,
  };
}

/** `CreateRunOptions.debounce`, checked. */
function debounceValues(debounce: NonNullable<CreateRunOptions['debounce']>): { key: string; delayMs: number; maxDelayMs: number | null } {
  if (typeof debounce.key !== 'string') throw new InvalidArgumentError('The debounce key must be a string.');
  checkStorable('The debounce key', debounce.key);
  return {
    key: debounce.key,
    delayMs: finiteMs('The debounce `delayMs`', debounce.delayMs),
    maxDelayMs: debounce.maxDelayMs === undefined ? null : finiteMs('The debounce `maxDelayMs`', debounce.maxDelayMs),
  };
}

/** Run ids sent as a JSON array text (so no driver's or app's array parser is involved). */
function textArray(value: unknown): string[] {
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  return Array.isArray(parsed) ? parsed.map(String) : [];
}

function isEntityManager(value: unknown): value is EntityManager {
  return typeof value === 'object' && value !== null && typeof (value as { query?: unknown }).query === 'function';
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The PostgreSQL store: runs, steps, signals and the runs' histories in four tables, every operation one parameterized
 * SQL statement (a step checkpoint is one round trip, its history events included), claims with
 * `FOR NO KEY UPDATE SKIP LOCKED`, events by LISTEN/NOTIFY sent in the same statement as the change (and `publish`
 * messages on the same channel). Hot statements go out as named prepared statements (planned once per
 * connection). The same SQL runs on PGlite (see `createPgliteStore`).
 *
 * Flow control (rules F1–F4, D of the port): priorities order the claim index; concurrency slots and rate-limit begins
 * are counters per key (`flow_keys`), locked and changed by the statement that claims, creates, ends or releases a run
 * with a key (see postgres.claim.sql.ts, postgres.run.sql.ts, postgres.commit.sql.ts). A run without priority, delay
 * or limits is written by the statements it always was, and costs a claim or a checkpoint a few null tests.
 */
export class PostgresStore implements WorkflowStore {
  readonly name: string;
  readonly names: SchemaNames;
  private readonly sql: Statements;
  private readonly logger: StoreLogger;
  private client?: SqlClient;
  private initPromise?: Promise<void>;
  private closed = false;

  private readonly events: PostgresEventHub;
  private readonly statementNames = new Map<string, string>();
  private readonly groupCommit: GroupCommit;
  /** The last replacement of each run id under way on this instance (see `createRun`). */
  private readonly replacing = new Map<string, Promise<unknown>>();

  constructor(private readonly options: PostgresStoreOptions = {}) {
    this.name = options.name ?? 'postgres';
    this.logger = options.logger ?? defaultLogger;
    this.names = schemaNames(options.schema ?? DEFAULT_SCHEMA, options.tablePrefix ?? DEFAULT_TABLE_PREFIX);
    this.sql = buildStatements(this.names);
    this.groupCommit = new GroupCommit(this.sql, (db, sql, params) => this.hot(db, sql, params), groupCommitStatements(options.groupCommit));
    this.events = new PostgresEventHub(this.names.channel, this.name, this.logger);
  }

  /** The DataSource the store runs on (undefined on PGlite or before `init()`). */
  get dataSource(): DataSource | undefined {
    return this.client instanceof TypeOrmSqlClient ? this.client.dataSource : undefined;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Lifecycle
  // -------------------------------------------------------------------------------------------------------------

  init(): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError(`The ${this.name} store is closed.`));
    this.initPromise ??= this.doInit().catch((error) => {
      this.initPromise = undefined;
      throw error;
    });
    return this.initPromise;
  }

  private async doInit(): Promise<void> {
    const client = this.options.sqlClient
      ? await this.options.sqlClient()
      : await TypeOrmSqlClient.connect({
          url: this.options.url ?? (this.options.dataSource ? undefined : process.env.DATABASE_URL),
          dataSource: this.options.dataSource,
          poolSize: this.options.poolSize,
          logger: this.logger,
          preparedStatements: this.options.preparedStatements,
        });
    try {
      if (!(await isSchemaCurrent(client.query, this.names))) {
        await client.transaction((query) => ensureSchemaInTransaction(query, this.names));
      }
      // NOTE: the runs a previous app left leased (killed, or closed without releasing) are claimable at once rather
      // than after their leases expire.
      if (this.options.expireLeasesAtInit) await client.query(this.sql.expireAllLeases, []);
    } catch (error) {
      await client.close().catch(() => undefined);
      if (error instanceof DurableExecutionError) throw error;
      throw new StoreError(
        `Cannot create the nestjs-cairn tables in schema "${this.names.schema}": ${message(error)}`,
        { cause: error },
      );
    }
    if (this.closed) {
      await client.close().catch(() => undefined);
      throw new StoreError(`The ${this.name} store was closed during init().`);
    }
    this.client = client;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.initPromise?.catch(() => undefined);
    await this.events.close();
    const client = this.client;
    this.client = undefined;
    await client?.close();
  }

  /** The schedules, in a table of this store's schema (see `ScheduleStore`). */
  get schedules(): PostgresScheduleStore {
    // NOTE: through the instance itself, never a wrapper it is reached through (a Proxy may be the getter's `this`)
    const self = this.self;
    return (self.scheduleStore ??= new PostgresScheduleStore(() => self.db(), self.names));
  }
  private scheduleStore?: PostgresScheduleStore;
  private readonly self = this;

  private db(): SqlClient {
    if (this.client) return this.client;
    throw new StoreError(
      this.closed ? `The ${this.name} store is closed.` : `The ${this.name} store is not initialized: call init() first.`,
    );
  }

  /** Runs a hot statement: as a named prepared statement where the client supports it. */
  private hot(db: SqlClient, sql: string, params: unknown[]): Promise<Row[]> {
    if (!db.prepared) return db.query(sql, params);
    let name = this.statementNames.get(sql);
    if (!name) {
      name = `cairn_${createHash('sha1').update(sql).digest('hex').slice(0, 24)}`;
      this.statementNames.set(sql, name);
    }
    return db.prepared(name, sql, params);
  }

  /** Runs an operation, turning driver errors into `StoreError` (one promise: see store-call.ts). */
  private op<T>(what: string, fn: (db: SqlClient) => Promise<T>): Promise<T> {
    return storeCall(() => fn(this.db()), (error) => this.storeError(what, error));
  }

  private storeError(what: string, error: unknown): unknown {
    if (error instanceof DurableExecutionError) return error;
    return new StoreError(`${this.name} store: ${what} failed: ${message(error)}`, { cause: error });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Runs
  // -------------------------------------------------------------------------------------------------------------

  /**
   * One statement, by the run's kind: a plain run (no priority, delay or limits: the common start) by `createRun` & co.;
   * a run with flow control by `createRunFlow` (rules F2–F4 decide whether it is claimed at once); `replace` by the
   * replacement statements (which give a replaced run's slot back); `debounce` by `createRunDebounce` (rule D). The
   * flow statements ask for one more try when a counter the run needs did not exist yet (the first run of a key with
   * a lease), or the debounce key's run takes no starts any more: a second statement, once per new key.
   */
  async createRun(input: NewRun, options: CreateRunOptions): Promise<CreateRunResult> {
    checkStorable('The run id', input.runId);
    checkStorable('The workflow name', input.workflow);
    checkStorable('The current step name', input.currentStep);
    checkStorable('The pipeline fingerprint', input.pipeline);
    for (const step of input.steps ?? []) checkStorable('A step name', step.name);
    const events = eventBodies(input.events);
    const flow = flowValues(input);
    const debounce = options.debounce ? debounceValues(options.debounce) : undefined;
    return this.op('createRun', async (db) => {
      let query: SqlQuery = (sql, params) => this.hot(db, sql, params ?? []);
      let manager: EntityManager | undefined;
      if (options.transaction !== undefined && options.transaction !== null) {
        if (db.kind !== 'postgres') {
          throw new InvalidArgumentError(`The ${this.name} store cannot write a run through a caller's transaction.`);
        }
        if (!isEntityManager(options.transaction)) {
          throw new InvalidArgumentError('`transaction` must be a TypeORM EntityManager (e.g. the one given to dataSource.transaction()).');
        }
        manager = options.transaction;
        query = managerQuery(manager);
      }
      const lease = options.lease;
      const steps = stepRows(input.steps?.map((step, index) => ({ index, step })));
      const rows = steps.table ?? [];
      const stepsJson = JSON.stringify(rows);
      const written = rows.map((r) => r.i);
      // Rule F4: the step entries of a run that is not claimed at once (no `running` one).
      const idleSteps = (input.steps ?? []).filter((step) => step.status !== 'running');
      const idle = stepRows(idleSteps.map((step, index) => ({ index, step }))).table ?? [];
      const idleJson = JSON.stringify(idle);
      for (let attempt = 1; attempt <= CONFLICT_RETRIES; attempt++) {
        const token = lease ? randomUUID() : null;
        const values: Record<NewRunParam, unknown> = {
          run_id: input.runId,
          workflow: input.workflow,
          version: input.version,
          status: lease ? 'running' : 'pending',
          input: input.input,
          state: input.state,
          current_step: input.currentStep ?? null,
          lease_owner: lease ? lease.owner : null,
          lease_token: token,
          lease_ms: lease ? lease.leaseMs : null,
          ready: !lease,
          live: steps.live,
          live_index: steps.liveIndex,
          steps: stepsJson,
          written,
          events,
          pipeline: input.pipeline ?? null,
          ...flow,
          fresh: idleSteps.length === 0,
          steps_idle: idleJson,
          written_idle: idle.map((r) => r.i),
          db_key: debounce?.key ?? null,
          db_delay: debounce?.delayMs ?? null,
          db_max: debounce?.maxDelayMs ?? null,
        };
        const args = (statement: keyof typeof NEW_RUN_ARGS) => NEW_RUN_ARGS[statement].values(values);

        if (debounce) {
          // Rule D: fold into the key's pending run, or create it (never claimed at once).
          const [row] = await query(this.sql.createRunDebounce, args('createRunDebounce'));
          if (row) {
            const run = mapRun(row);
            if (!bool(row.created)) return { created: false, debounced: true, run };
            run.steps = idleSteps.map((step) => stepAsStored(step));
            if (row.evt) this.events.emitLocal('ready', input.runId);
            const lastEventSeq = seqOf(row.last_event_seq);
            return lastEventSeq === undefined ? { created: true, run } : { created: true, run, lastEventSeq };
          }
          // The id exists (keep it), or the key's run takes no starts any more (the statement took the key from it).
          const existing = await this.readRun(query, input.runId);
          if (existing) return { created: false, run: existing };
          continue;
        }

        let row: Row | undefined;
        let replaced = false;
        if (options.onConflict === 'replace') {
          /** The upsert of the run row, then its children, in the transaction of `q`. */
          const inTwo = async (q: SqlQuery): Promise<Row | undefined> => {
            const [upserted] = await q(this.sql.replaceRunLocked, args('replaceRunLocked'));
            if (upserted && !bool(upserted.retry) && upserted.run_id != null) {
              const idled = bool(upserted.idle);
              const children = { ...values, steps: idled ? idleJson : stepsJson, written: idled ? values.written_idle : written };
              await q(this.sql.replaceChildren, NEW_RUN_ARGS.replaceChildren.values(children));
            }
            return upserted;
          };
          const replace = async (): Promise<Row | undefined> => {
            const [done] = await query(this.sql.replaceRun, args('replaceRun'));
            if (done && (bool(done.retry) || done.run_id != null)) return done;
            // NOTE: a writer of the old run (a checkpoint, a signal) committed between the statement's snapshot and
            // its lock of the row, so rows of the old run could be invisible to it: it did nothing. Again in two
            // statements of one transaction (the second one's snapshot sees them).
            if (!manager) return db.transaction(inTwo);
            return manager.queryRunner?.isTransactionActive ? inTwo(query) : manager.transaction((m) => inTwo(managerQuery(m)));
          };
          // NOTE: replacements of one id wait for each other on its row lock, each holding a connection meanwhile
          // (and racing, each would have to take the two-statement way); queued here instead, a burst of them on this
          // instance takes one connection, not the whole pool. A caller's transaction keeps the row locked after the
          // call, so those are left to the row lock.
          row = manager ? await replace() : await this.afterReplacements(input.runId, replace);
          replaced = row !== undefined && row.run_id != null && Number(row.generation) > 1;
        } else {
          const keyed = flow.flow;
          const insert = keyed
            ? 'createRunFlow'
            : steps.table
              ? events
                ? 'createRunWithEvents'
                : 'createRun'
              : events
                ? 'createRunWithoutStepsWithEvents'
                : 'createRunWithoutSteps';
          const alone = async () => (await query(this.sql[insert], args(insert)))[0];
          // NOTE: starts made while every statement slot is busy go together (group commit): plain ones in one
          // `createRunBatch`, keyed ones that want their lease now in one `createRunFlowBatch` (it writes those rule F2
          // admits at once, the others go alone); never through a caller's transaction, which is its own.
          const entry = () => (keyed ? createFlowBatchEntry : createBatchEntry)(values, steps.table ?? null);
          row = manager || (keyed && !fitsFlowBatch(values)) ? await alone() : await this.groupCommit.create(db, input.runId, entry, alone, keyed);
        }
        // Rules F2/F3: a counter the run needs was created after the statement's snapshot (or by it): again.
        if (row && bool(row.retry)) continue;
        // NOTE: the flow statements return a row whether or not they wrote the run (`run_id` null: not written); the
        // plain ones, only when they did.
        const plain = row !== undefined && row.leased === undefined;
        if (row && (plain || row.run_id != null)) {
          if (replaced) this.events.emitLocal('control', input.runId);
          const leased = plain ? lease !== undefined : bool(row.leased);
          if (plain ? !lease : row.evt != null) this.events.emitLocal('ready', input.runId);
          const createdAt = new Date(Math.floor(Number(row.created_at)));
          const run: StoredRun = {
            runId: input.runId,
            workflow: input.workflow,
            version: input.version,
            status: leased ? 'running' : 'pending',
            priority: input.priority ?? 0,
            input: input.input,
            state: input.state,
            steps: (lease && !leased ? idleSteps : (input.steps ?? [])).map((step) => stepAsStored(step)),
            pauseRequested: false,
            dueAt: plain ? createdAt : (date(row.due_at) ?? createdAt),
            createdAt,
            updatedAt: createdAt,
            generation: num(row.generation) ?? 1,
          };
          if (input.currentStep !== undefined) run.currentStep = input.currentStep;
          if (input.pipeline !== undefined) run.pipeline = input.pipeline;
          if (input.concurrency) run.concurrency = { ...input.concurrency };
          if (input.rateLimit) run.rateLimit = { ...input.rateLimit };
          if (leased && input.concurrency) run.slotHeld = true;
          if (row.blocked_by != null) run.blockedBy = row.blocked_by as StoredRun['blockedBy'];
          if (leased && lease && token) {
            run.leaseOwner = lease.owner;
            run.leaseToken = token;
            run.leaseExpiresAt = new Date(Math.floor(Number(row.lease_expires_at)));
          }
          const lastEventSeq = seqOf(row.last_event_seq);
          return lastEventSeq === undefined ? { created: true, run } : { created: true, run, lastEventSeq };
        }
        if (options.onConflict === 'keep') {
          const existing = await this.readRun(query, input.runId);
          if (existing) return { created: false, run: existing };
        }
        // keep: the id was deleted (purged) concurrently; replace: created concurrently: try again with a fresh snapshot.
      }
      throw new StoreError(`createRun("${input.runId}") kept racing with concurrent changes of the same id; try again.`);
    });
  }

  /** Runs `fn` once the replacements of `runId` called before on this instance have settled. */
  private afterReplacements<T>(runId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.replacing.get(runId) ?? Promise.resolve();
    const result = previous.then(fn);
    const settled = result.catch(() => undefined);
    this.replacing.set(runId, settled);
    void settled.then(() => {
      if (this.replacing.get(runId) === settled) this.replacing.delete(runId);
    });
    return result;
  }

  private async readRun(query: SqlQuery, runId: string): Promise<StoredRun | undefined> {
    const [row] = await query(this.sql.getRun, [runId]);
    return row ? mapRun(row) : undefined;
  }

  async getRun(runId: string): Promise<StoredRun | undefined> {
    if (!storable(runId)) return undefined;
    return this.op('getRun', (db) => this.readRun((sql, params) => this.hot(db, sql, params ?? []), runId));
  }

  async listRuns(query: ListRunsQuery): Promise<StoredRun[]> {
    if (!Number.isInteger(query.limit) || query.limit < 0) {
      throw new InvalidArgumentError(`listRuns limit must be a non-negative integer (got ${query.limit}).`);
    }
    if (query.limit === 0) return [];
    if (query.statuses && query.statuses.length === 0) return [];
    if (query.workflow !== undefined && !storable(query.workflow)) return [];
    if (query.parentRunId !== undefined && !storable(query.parentRunId)) return [];
    const createdFrom = creationBound('createdFrom', query.createdFrom);
    const createdTo = creationBound('createdTo', query.createdTo);
    return this.op('listRuns', async (db) => {
      const params: unknown[] = [];
      if (query.parentRunId !== undefined) params.push(query.parentRunId);
      if (query.workflow !== undefined) params.push(query.workflow);
      if (query.statuses) params.push([...query.statuses]);
      if (createdFrom !== undefined) params.push(createdFrom);
      if (createdTo !== undefined) params.push(createdTo);
      if (query.after) params.push(query.after.createdAt.getTime(), query.after.runId);
      params.push(query.limit);
      const sql = this.sql.list({
        workflow: query.workflow !== undefined,
        statuses: query.statuses !== undefined,
        createdFrom: createdFrom !== undefined,
        createdTo: createdTo !== undefined,
        after: query.after !== undefined,
        parentRunId: query.parentRunId !== undefined,
      });
      return (await db.query(sql, params)).map(mapRun);
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Claims and leases
  // -------------------------------------------------------------------------------------------------------------

  private mapClaimed(rows: Row[]): ClaimedRun[] {
    return rows.map((row) => {
      const claimed: ClaimedRun = { ...mapRun(row), leaseToken: String(row.lease_token), recovered: row.prev_token != null };
      if (claimed.recovered) {
        claimed.previousOwner = row.prev_owner == null ? undefined : String(row.prev_owner);
        claimed.orphanedMs = Math.max(0, Math.round(num(row.orphaned_ms) ?? 0));
      }
      return claimed;
    });
  }

  async claimOwnedRuns(lease: LeaseRequest, limit: number, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun[]> {
    if (!(limit > 0) || !storable(lease.owner)) return [];
    const filter = claimFilter(workflows);
    if (filter === null) return [];
    const n = Math.max(1, Math.min(Math.floor(limit), MAX_CLAIM));
    return this.op('claimOwnedRuns', async (db) => {
      const rows = filter
        ? await db.query(this.sql.claimOwnedRunsForWorkflows, [lease.owner, lease.leaseMs, n, ...filter])
        : await db.query(this.sql.claimOwnedRuns, [lease.owner, lease.leaseMs, n]);
      return this.mapClaimed(rows);
    });
  }

  async claimRuns(lease: LeaseRequest, limit: number, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun[]> {
    if (!(limit > 0)) return [];
    const filter = claimFilter(workflows);
    if (filter === null) return [];
    const n = Math.max(1, Math.min(Math.floor(limit), MAX_CLAIM));
    return this.op('claimRuns', async (db) => {
      const rows = filter
        ? await this.hot(db, this.sql.claimRunsForWorkflows, [lease.owner, lease.leaseMs, n, ...filter])
        : await this.hot(db, this.sql.claimRuns, [lease.owner, lease.leaseMs, n]);
      return this.mapClaimed(rows);
    });
  }

  async claimRun(runId: string, lease: LeaseRequest, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun | undefined> {
    if (!storable(runId)) return undefined;
    const filter = claimFilter(workflows);
    if (filter === null) return undefined;
    return this.op('claimRun', async (db) => {
      const rows = filter
        ? await this.hot(db, this.sql.claimRunForWorkflows, [lease.owner, lease.leaseMs, runId, ...filter])
        : await this.hot(db, this.sql.claimRun, [lease.owner, lease.leaseMs, runId]);
      const [claimed] = this.mapClaimed(rows);
      return claimed;
    });
  }

  async renewLease(runId: string, token: string, leaseMs: number): Promise<RenewResult> {
    if (!storable(runId) || !storable(token)) return { ok: false };
    return this.op('renewLease', async (db) => {
      const [row] = await this.hot(db, this.sql.renewLease, [runId, token, leaseMs]);
      if (!row) return { ok: false };
      const result: RenewResult = { ok: true, pauseRequested: bool(row.pause_requested) };
      if (row.cancel_compensate !== null && row.cancel_compensate !== undefined) {
        result.cancel = { compensate: bool(row.cancel_compensate) };
      }
      return result;
    });
  }

  async releaseLease(runId: string, token: string): Promise<void> {
    if (!storable(runId) || !storable(token)) return;
    await this.op('releaseLease', async (db) => {
      const [row] = await this.hot(db, this.sql.releaseLease, [runId, token]);
      if (row) this.events.emitLocal(row.evt, runId);
    });
  }

  commit(runId: string, token: string, patch: RunPatch): Promise<CommitResult> {
    // NOTE: a plain function (see op): a bad value rejects, as from an async function.
    return throwsAsRejection(() => this.commitNow(runId, token, patch));
  }

  private commitNow(runId: string, token: string, patch: RunPatch): Promise<CommitResult> {
    if (!storable(runId) || !storable(token)) return Promise.resolve({ ok: false });
    const waitSignals = patch.wait ? [...patch.wait.signals] : null;
    for (const name of waitSignals ?? []) checkStorable('The signal name', name);
    checkStorable('The current step name', patch.currentStep ?? undefined);
    for (const entry of patch.steps ?? []) checkStorable('A step name', entry.step.name);
    const dueAt = patch.due && 'at' in patch.due ? patch.due.at.getTime() : null;
    if (dueAt !== null && !Number.isFinite(dueAt)) throw new InvalidArgumentError('The wake-up time `due.at` is an invalid Date.');
    const { table, live, liveIndex } = stepRows(patch.steps);
    const events = eventBodies(patch.events);
    const values: CommitValues = {
      run_id: runId,
      token,
      status: patch.status ?? null,
      state: patch.state ?? null,
      set_step: patch.currentStep !== undefined,
      step: patch.currentStep ?? null,
      set_output: patch.output !== undefined,
      output: patch.output ?? null,
      set_error: patch.error !== undefined,
      error: patch.error ? JSON.stringify(errorAsStored(patch.error)) : null,
      steps: null, // filled in when sent (see GroupCommit)
      set_due: patch.due !== undefined,
      due: patch.due && 'delayMs' in patch.due ? patch.due.delayMs : null,
      due_at: dueAt,
      wait: waitSignals,
      wait_ms: patch.wait?.timeoutMs ?? null,
      release: patch.release === true,
      clear_cancel: patch.clearCancel === true,
      lease_ms: patch.leaseMs,
      set_live: patch.steps !== undefined && patch.steps.length > 0,
      live,
      live_index: liveIndex,
      written: table ? table.map((row) => row.i) : [],
      keep_input: patch.keepInput === true,
      mid_step: patch.midStep === true,
      events,
    };
    const special = patch.children !== undefined || patch.restart !== undefined ? specialValues(patch) : undefined;
    // NOTE: as op() does, with the result read in the same then (a promise less per checkpoint).
    let db!: SqlClient;
    return storeCall(
      () => this.groupCommit.commit((db = this.db()), runId, values, table, special),
      (error) => this.storeError('commit', error),
      (row) => this.commitResult(db, runId, row),
    );
  }

  /** A commit's result from its row (none: refused), with the events it sent to this instance's listeners. */
  private commitResult(db: SqlClient, runId: string, row: Row | undefined): CommitResult | Promise<CommitResult> {
    if (!row) return { ok: false };
    this.events.emitLocal(row.evt, runId);
    // Other runs the commit made claimable: spawned or released children, a woken parent.
    if (row.woke != null) for (const other of textArray(row.woke)) this.events.emitLocal('ready', other);
    if (row.ready_runs != null) for (const other of textArray(row.ready_runs)) this.events.emitLocal('ready', other);
    const result: CommitResult & { ok: true } = { ok: true };
    if (bool(row.paused)) result.paused = true;
    if (row.cancel !== null && row.cancel !== undefined) result.cancel = { compensate: bool(row.cancel) };
    if (row.consumed !== null && row.consumed !== undefined) {
      result.consumedSignal = { name: String(row.consumed_name), payload: String(row.consumed) };
    }
    if (bool(row.children_ready)) result.childrenReady = true;
    const lastEventSeq = seqOf(row.last_event_seq);
    if (lastEventSeq !== undefined) result.lastEventSeq = lastEventSeq;
    // NOTE: rare (a signal raced with the run's end): the statement could not see it to delete it. The commit
    // itself has succeeded, so a failure here is only logged.
    if (bool(row.stale_signals)) {
      return db.query(this.sql.dropStaleSignals, [runId]).then(
        () => result,
        (error: unknown) => {
          this.logger.warn(`${this.name} store: cannot delete the signals left queued for ended run "${runId}": ${message(error)}`);
          return result;
        },
      );
    }
    return result;
  }

  async takeSignal(runId: string, token: string, names: readonly string[]): Promise<TakeSignalResult> {
    if (!storable(runId) || !storable(token)) return { ok: false };
    for (const name of names) checkStorable('The signal name', name);
    return this.op('takeSignal', async (db) => {
      const [row] = await this.hot(db, this.sql.takeSignal, [runId, token, [...names]]);
      if (!row) return { ok: false };
      if (row.payload !== null && row.payload !== undefined) {
        return { ok: true, payload: String(row.payload), signal: String(row.signal), timedOut: false };
      }
      return { ok: true, timedOut: bool(row.timed_out) };
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Signals and control requests
  // -------------------------------------------------------------------------------------------------------------

  async sendSignal(runId: string, name: string, payload: string, event?: string, options?: SendSignalOptions): Promise<ControlResult> {
    if (!storable(runId)) return { outcome: 'not-found' };
    checkStorable('The signal name', name);
    if (event !== undefined) checkEventBody(event);
    const id = options?.id;
    if (id !== undefined) {
      if (typeof id !== 'string') throw new InvalidArgumentError(`A signal id must be a string (got ${typeof id}).`);
      checkStorable('The signal id', id);
    }
    const bound = options?.maxQueued;
    if (bound !== undefined && typeof bound !== 'number') throw new InvalidArgumentError(`maxQueued must be a number (got ${typeof bound}).`);
    // NOTE: no bound, or one past what an integer column can count, is null; a bound below 1 is always full.
    const maxQueued = bound === undefined || !(bound < 2 ** 31) ? null : Math.max(0, Math.ceil(bound));
    return this.op('sendSignal', async (db) => {
      const [row] = await this.hot(db, this.sql.sendSignal, [runId, name, payload, event ?? null, id ?? null, maxQueued]);
      if (!row) return { outcome: 'not-found' };
      const status = row.status as RunStatus;
      if (bool(row.dup)) return { outcome: 'noop', status };
      if (isTerminal(status)) return { outcome: 'not-active', status };
      if (!bool(row.room)) return { outcome: 'full', status };
      this.events.emitLocal(row.evt, runId);
      const eventSeq = seqOf(row.event_seq);
      return eventSeq === undefined ? { outcome: 'ok', status } : { outcome: 'ok', status, eventSeq };
    });
  }

  async getRunOutcomes(runIds: readonly string[]): Promise<RunOutcome[]> {
    const wanted = [...new Set(runIds)].filter((id) => typeof id === 'string' && storable(id));
    if (wanted.length === 0) return [];
    return this.op('getRunOutcomes', async (db) => (await this.hot(db, this.sql.getRunOutcomes, [wanted])).map(mapOutcome));
  }

  async control(runId: string, request: ControlRequest, event?: string): Promise<ControlResult> {
    if (!storable(runId)) return { outcome: 'not-found' };
    if (event !== undefined) checkEventBody(event);
    const ev = event ?? null;
    return this.op(`control(${request.action})`, async (db) => {
      let rows: Row[];
      switch (request.action) {
        case 'pause':
          rows = await this.hot(db, this.sql.pause, [runId, ev]);
          break;
        case 'resume':
          rows = await this.hot(db, this.sql.resume, [runId, ev]);
          break;
        case 'cancel':
          rows = await this.hot(db, this.sql.cancel, [runId, request.compensate !== false, ev]);
          break;
        case 'retry':
          rows = await this.hot(db, this.sql.retry, [runId, ev, request.nextInput ?? null]);
          break;
        default:
          throw new InvalidArgumentError(`Unknown control action "${(request as { action: unknown }).action}".`);
      }
      const [row] = rows;
      if (!row) return { outcome: 'not-found' };
      this.events.emitLocal(row.evt, runId);
      const result: ControlResult = { outcome: row.outcome as ControlResult['outcome'], status: row.status as RunStatus };
      const eventSeq = seqOf(row.event_seq);
      if (eventSeq !== undefined && result.outcome === 'ok') result.eventSeq = eventSeq;
      return result;
    });
  }

  async listEvents(runId: string, query: ListEventsQuery): Promise<StoredRunEvent[]> {
    const limit = query.limit;
    if (typeof limit !== 'number' || Number.isNaN(limit) || limit < 0) {
      throw new InvalidArgumentError(`listEvents limit must be a non-negative number (got ${limit}).`);
    }
    const after = query.afterSeq ?? 0;
    if (typeof after !== 'number' || Number.isNaN(after)) {
      throw new InvalidArgumentError(`listEvents afterSeq must be a number (got ${after}).`);
    }
    // NOTE: seq is an integer: `seq > 2.5` is `seq > 2`; below 0 or past the largest seq, the bounds say as much.
    const afterSeq = Math.max(-1, Math.min(Math.floor(after), MAX_SEQ));
    const n = Math.min(Math.floor(limit), MAX_EVENTS_PAGE);
    if (n === 0 || afterSeq >= MAX_SEQ || !storable(runId)) return [];
    return this.op('listEvents', async (db) => {
      const rows = await this.hot(db, this.sql.listEvents, [runId, afterSeq, n]);
      return rows.map((row) => ({ seq: num(row.seq) ?? 0, body: String(row.body) }));
    });
  }

  async countRuns(query: CountRunsQuery): Promise<Partial<Record<RunStatus, number>>> {
    if (query.workflow !== undefined && !storable(query.workflow)) return {};
    return this.op('countRuns', async (db) => {
      const rows =
        query.workflow !== undefined
          ? await db.query(this.sql.countRunsForWorkflow, [query.workflow])
          : await db.query(this.sql.countRuns, []);
      const counts: Partial<Record<RunStatus, number>> = {};
      for (const row of rows) counts[row.status as RunStatus] = num(row.n) ?? 0;
      return counts;
    });
  }

  async listSignals(runId: string): Promise<QueuedSignal[]> {
    if (!storable(runId)) return [];
    return this.op('listSignals', async (db) => {
      const rows = await db.query(this.sql.listSignals, [runId]);
      return rows.map((row) => ({ name: String(row.name), payload: String(row.payload) }));
    });
  }

  async summarizeLiveRuns(): Promise<LiveRunGroup[]> {
    return this.op('summarizeLiveRuns', async (db) => {
      const rows = await db.query(this.sql.summarizeLiveRuns, []);
      return rows.map((row) => {
        const group: LiveRunGroup = {
          workflow: String(row.workflow),
          version: num(row.version) ?? 1,
          count: num(row.n) ?? 0,
          runIds: textArray(row.run_ids),
        };
        if (row.pipeline !== null && row.pipeline !== undefined) group.pipeline = String(row.pipeline);
        if (row.current_step !== null && row.current_step !== undefined) group.currentStep = String(row.current_step);
        return group;
      });
    });
  }

  async savePipeline(fingerprint: string, body: string): Promise<void> {
    checkStorable('The pipeline fingerprint', fingerprint);
    checkStorable('The pipeline description', body);
    await this.op('savePipeline', (db) => db.query(this.sql.savePipeline, [fingerprint, body]));
  }

  async getPipelines(fingerprints: readonly string[]): Promise<Record<string, string>> {
    const wanted = [...new Set(fingerprints)].filter((fp) => typeof fp === 'string' && storable(fp));
    if (wanted.length === 0) return {};
    return this.op('getPipelines', async (db) => {
      const out: Record<string, string> = {};
      for (const row of await db.query(this.sql.getPipelines, [wanted])) out[String(row.fingerprint)] = String(row.body);
      return out;
    });
  }

  async purge(statuses: readonly RunStatus[], olderThanMs: number): Promise<number> {
    const wanted = statuses.filter(isTerminal);
    if (wanted.length === 0) return 0;
    return this.op('purge', async (db) => {
      let total = 0;
      for (;;) {
        const [row] = await db.query(this.sql.purge, [wanted, Math.max(0, olderThanMs), PURGE_BATCH]);
        const deleted = num(row?.deleted) ?? 0;
        total += deleted;
        if (deleted < PURGE_BATCH) return total;
      }
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Events
  // -------------------------------------------------------------------------------------------------------------

  async subscribe(listener: (event: StoreEvent) => void): Promise<() => Promise<void>> {
    return this.events.subscribe(this.db(), listener);
  }

  /**
   * NOTIFY on the store's channel: every instance listening (this one included) delivers it to its subscribers. When
   * this instance cannot LISTEN, its own subscribers get it in-process.
   */
  async publish(body: string): Promise<void> {
    if (typeof body !== 'string') throw new InvalidArgumentError(`A published message must be a string (got ${typeof body}).`);
    const bytes = Buffer.byteLength(body, 'utf8');
    if (bytes > PUBLISH_MAX_BYTES) {
      throw new InvalidArgumentError(`A published message is at most ${PUBLISH_MAX_BYTES} bytes (got ${bytes}).`);
    }
    checkStorable('A published message', body);
    await this.op('publish', (db) => this.hot(db, this.sql.publish, [messagePayload(body)]));
    this.events.emitLocalMessage(body);
  }
}
