import { createHash, randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { DurableExecutionError } from '../../errors/durable-execution.error.js';
import { InvalidArgumentError, StoreError, type RunErrorInfo } from '../../errors/errors.js';
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
  StoredStep,
  TakeSignalResult,
  WorkflowStore,
} from '../workflow-store.interface.js';
import { isTerminal } from '../workflow-store.interface.js';
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
import { buildStatements, COMMIT_PARAM_INDEX, COMMIT_PARAMS, commitArgs, fastCommitArgs, type Statements, type StepRow } from './postgres.sql.js';

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
  /** Name for logs; default `postgres`. */
  name?: string;
  /**
   * Send hot statements as named prepared statements (parsed and planned once per connection). Default true;
   * switched off automatically (with a warning) when the connection cannot keep them, e.g. PgBouncer < 1.21 in
   * transaction mode. Set false to never use them.
   */
  preparedStatements?: boolean;
  /**
   * Group commit (default true): step checkpoints of different runs that queue up while the pool's connections are
   * busy go to the database together, as one statement (one round trip, one transaction, one WAL flush). A lone
   * checkpoint is never delayed. Set false to send every checkpoint as its own statement.
   */
  groupCommit?: boolean;
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

// ---------------------------------------------------------------------------------------------------------------
// Row mapping: the only place that knows how drivers hand values back (pg: strings for int8, PGlite: numbers or
// BigInt; booleans as booleans, or 't'/'f' from some drivers). Timestamps are read as epoch milliseconds.
// ---------------------------------------------------------------------------------------------------------------

function num(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Date) return value.getTime();
  const n = Number(value);
  return Number.isNaN(n) ? undefined : n;
}

function date(value: unknown): Date | undefined {
  const ms = num(value);
  return ms === undefined ? undefined : new Date(Math.floor(ms));
}

function str(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'string' ? value : String(value);
}

function bool(value: unknown): boolean {
  return value === true || value === 't' || value === 'true' || value === 1 || value === '1';
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding what the store itself encodes (a run's step entries, `live_step`, `error`, `resume_status`). A damaged
// field never makes a read throw: the run is returned with a placeholder (or without the field) and `corrupt` says
// what was damaged, so one bad row never breaks a call about other runs (nor a claim that already leased them).
// ---------------------------------------------------------------------------------------------------------------

const STEP_STATUSES: ReadonlySet<string> = new Set<StoredStep['status']>(['running', 'completed', 'failed', 'compensated']);
const RUN_STATUSES: ReadonlySet<string> = new Set<RunStatus>([
  'pending', 'running', 'sleeping', 'waiting', 'paused', 'compensating', 'completed', 'compensated', 'failed', 'cancelled',
]);

/** Stands for a step entry that could not be decoded (keeps the later entries at their indexes). */
function undecodableStep(): StoredStep {
  return { name: '?', status: 'failed', attempts: 0, error: '<undecodable>' };
}

/** What could not be decoded in one run row, for `StoredRun.corrupt`. */
class Damage {
  private readonly found: string[] = [];
  constructor(private readonly runId: string) {}

  add(field: string, reason: string): void {
    this.found.push(`${field} of run ${JSON.stringify(this.runId)}: ${reason}`);
  }

  get text(): string | undefined {
    return this.found.length > 0 ? this.found.join('; ') : undefined;
  }
}

/** JSON text (or a value a driver already parsed): `{ value }`, or `{ error }` with why it cannot be parsed. */
function parseJson(value: unknown): { value?: unknown; error?: string } {
  if (typeof value !== 'string') return { value };
  try {
    return { value: JSON.parse(value) as unknown };
  } catch (error) {
    return { error: message(error) };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const optionalString = (value: unknown) => value === null || value === undefined || typeof value === 'string';
const optionalTime = (value: unknown) =>
  value === null || value === undefined || (num(value) !== undefined && Number.isFinite(num(value)));

/** A step entry from its stored form (`startedAt`/`finishedAt` in epoch ms), or why it is not one. */
function decodeStep(s: unknown, times: { startedAt: unknown; finishedAt: unknown }): StoredStep | string {
  if (!isRecord(s)) return `not a step record (${JSON.stringify(s) ?? String(s)})`;
  if (typeof s.name !== 'string') return 'the step has no name';
  if (typeof s.status !== 'string' || !STEP_STATUSES.has(s.status)) return `unknown step status ${JSON.stringify(s.status)}`;
  const attempts = num(s.attempts);
  if (attempts === undefined || !Number.isInteger(attempts) || attempts < 0) return `bad attempts ${JSON.stringify(s.attempts)}`;
  if (!optionalString(s.output) || !optionalString(s.error)) return 'output or error is not a string';
  if (!optionalTime(times.startedAt) || !optionalTime(times.finishedAt)) return 'a time is not a number';
  const step: StoredStep = { name: s.name, status: s.status as StoredStep['status'], attempts };
  if (typeof s.output === 'string') step.output = s.output;
  const startedAt = date(times.startedAt);
  if (startedAt) step.startedAt = startedAt;
  const finishedAt = date(times.finishedAt);
  if (finishedAt) step.finishedAt = finishedAt;
  if (typeof s.error === 'string') step.error = s.error;
  return step;
}

/** The run's error (`error` column, jsonb), or why it is not one. */
function decodeError(value: unknown): RunErrorInfo | string {
  if (!isRecord(value)) return `not an error record (${JSON.stringify(value) ?? String(value)})`;
  if (typeof value.name !== 'string' || typeof value.message !== 'string') return 'the error has no name or message';
  if (!optionalString(value.step)) return 'the error\'s step is not a string';
  if (value.phase !== undefined && value.phase !== null && value.phase !== 'step' && value.phase !== 'compensation') {
    return `unknown error phase ${JSON.stringify(value.phase)}`;
  }
  const error: RunErrorInfo = { name: value.name, message: value.message };
  if (typeof value.step === 'string') error.step = value.step;
  if (value.phase === 'step' || value.phase === 'compensation') error.phase = value.phase;
  return error;
}

/** The steps of a run row: the rows of `steps` (by index), with the live step (`live_step`) over its index. */
function readSteps(row: Row, damage: Damage): StoredStep[] {
  const steps: StoredStep[] = [];
  /** Why the entry at an index could not be decoded (reported unless the live step covers it). */
  const damaged = new Map<number, string>();
  if (row.steps !== null && row.steps !== undefined) {
    const parsed = parseJson(row.steps);
    if (parsed.error !== undefined || !Array.isArray(parsed.value)) {
      damage.add('the steps', parsed.error ?? 'not an array');
    } else {
      parsed.value.forEach((s: unknown, i) => {
        const step = decodeStep(s, isRecord(s) ? { startedAt: s.startedAt, finishedAt: s.finishedAt } : { startedAt: null, finishedAt: null });
        if (typeof step === 'string') {
          damaged.set(i, step);
          steps.push(undecodableStep());
        } else steps.push(step);
      });
    }
  }
  if (row.live_step !== null && row.live_step !== undefined) {
    const parsed = parseJson(row.live_step);
    const live = parsed.value;
    let step: StoredStep | string = parsed.error ?? 'not a step record';
    let index = num(row.live_index);
    if (parsed.error === undefined && isRecord(live)) {
      if (typeof live.i === 'number' && Number.isInteger(live.i) && live.i >= 0) {
        index = live.i;
        step = decodeStep(live, { startedAt: live.st, finishedAt: live.ft });
      } else step = `the live step has no valid index (${JSON.stringify(live.i) ?? 'none'})`;
    } else if (parsed.error === undefined) step = `not a step record (${JSON.stringify(live) ?? String(live)})`;
    if (typeof step === 'string') damage.add('column live_step', step);
    const entry = typeof step === 'string' ? undecodableStep() : step;
    // NOTE: the rows of `steps` are contiguous from 0 (entries are appended at steps.length).
    if (index !== undefined && Number.isInteger(index) && index >= 0 && index < steps.length) {
      steps[index] = entry;
      damaged.delete(index);
    } else steps.push(entry);
  }
  for (const [i, reason] of damaged) damage.add(`step ${i}`, reason);
  return steps;
}

/**
 * A stored run from a row of `runColumns` (+ `steps`). Optional fields are left out when null. Never throws: what
 * cannot be decoded is replaced by a placeholder (a step) or left out (the error), and named in `corrupt`.
 */
export function mapRun(row: Row): StoredRun {
  const runId = String(row.run_id);
  const damage = new Damage(runId);
  const run: StoredRun = {
    runId,
    workflow: String(row.workflow),
    version: num(row.version) ?? 1,
    status: row.status as RunStatus,
    input: String(row.input),
    steps: [],
    state: String(row.state),
    pauseRequested: bool(row.pause_requested),
    createdAt: date(row.created_at) ?? new Date(0),
    updatedAt: date(row.updated_at) ?? new Date(0),
    generation: num(row.generation) ?? 1,
  };
  try {
    run.steps = readSteps(row, damage);
  } catch (error) {
    damage.add('the steps', message(error));
  }
  let error: RunErrorInfo | undefined;
  if (row.error !== null && row.error !== undefined) {
    const parsed = parseJson(row.error);
    const decoded = parsed.error ?? decodeError(parsed.value);
    if (typeof decoded === 'string') damage.add('column error', decoded);
    else error = decoded;
  }
  let resumeStatus = str(row.resume_status) as RunStatus | undefined;
  if (resumeStatus !== undefined && !RUN_STATUSES.has(resumeStatus)) {
    damage.add('column resume_status', `unknown status ${JSON.stringify(resumeStatus)}`);
    resumeStatus = undefined;
  }
  const optional: Partial<StoredRun> = {
    output: str(row.output),
    error,
    currentStep: str(row.current_step),
    nextInput: str(row.next_input),
    waitSignal: str(row.wait_signal),
    waitUntil: date(row.wait_until),
    resumeStatus,
    cancelRequested:
      row.cancel_compensate === null || row.cancel_compensate === undefined
        ? undefined
        : { compensate: bool(row.cancel_compensate) },
    dueAt: date(row.due_at),
    leaseOwner: str(row.lease_owner),
    leaseToken: str(row.lease_token),
    leaseExpiresAt: date(row.lease_expires_at),
    finishedAt: date(row.finished_at),
    corrupt: damage.text,
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (run as unknown as Record<string, unknown>)[key] = value;
  }
  return run;
}

/**
 * The step rows of a patch's entries, split into the rows for the steps table and the live step: the entry with
 * the highest index when it is `running` goes to `runs.live_step` instead (see the schema). `live` is its JSON,
 * `table` the other rows (null when none).
 */
function stepRows(entries: { index: number; step: StoredStep }[] | undefined): {
  table: StepRow[] | null;
  live: string | null;
  liveIndex: number | null;
} {
  if (!entries || entries.length === 0) return { table: null, live: null, liveIndex: null };
  // Last write wins per index (one row may be upserted only once per statement).
  const byIndex = new Map<number, StoredStep>();
  let last = -1;
  for (const { index, step } of entries) {
    if (!Number.isInteger(index) || index < 0) throw new InvalidArgumentError(`Step index must be a non-negative integer (got ${index}).`);
    byIndex.set(index, step);
    if (index > last) last = index;
  }
  const table: StepRow[] = [];
  let live: string | null = null;
  let liveIndex: number | null = null;
  for (const [i, s] of byIndex) {
    const row: StepRow = {
      i,
      name: s.name,
      status: s.status,
      attempts: s.attempts,
      output: s.output ?? null,
      st: s.startedAt ? s.startedAt.getTime() : null,
      ft: s.finishedAt ? s.finishedAt.getTime() : null,
      error: s.error === undefined ? null : storableText(s.error),
    };
    if (i === last && s.status === 'running') {
      live = JSON.stringify(row);
      liveIndex = i;
    } else table.push(row);
  }
  return { table: table.length > 0 ? table : null, live, liveIndex };
}

/** A copy of a step entry as the store keeps it (see {@link storableText}). */
function stepAsStored(step: StoredStep): StoredStep {
  const copy = { ...step };
  if (copy.error !== undefined) copy.error = storableText(copy.error);
  return copy;
}

/** A run's error as the store keeps it: its texts made storable (see {@link storableText}). */
function errorAsStored(error: RunErrorInfo): RunErrorInfo {
  const copy: Record<string, unknown> = { ...error };
  for (const [key, value] of Object.entries(copy)) if (typeof value === 'string') copy[key] = storableText(value);
  return copy as unknown as RunErrorInfo;
}

function isEntityManager(value: unknown): value is EntityManager {
  return typeof value === 'object' && value !== null && typeof (value as { query?: unknown }).query === 'function';
}

/**
 * PostgreSQL text cannot hold NUL, and an unpaired UTF-16 surrogate would be stored as U+FFFD (so the id read back
 * would differ). Ids and names with either are refused (on writes) or cannot exist (on reads).
 */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function storable(value: string): boolean {
  return !UNSTORABLE.test(value);
}

const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'g');

/**
 * Free text the store writes in a step entry or the run's error (error messages, which may quote anything): NUL and
 * unpaired surrogates become U+FFFD, so that such a message never fails the commit that records it.
 */
function storableText(value: string): string {
  return typeof value === 'string' ? value.replace(UNSTORABLE_ALL, '\uFFFD') : value;
}

function checkStorable(what: string, value: string | undefined): void {
  if (value !== undefined && !storable(value)) {
    throw new InvalidArgumentError(
      `${what} contains a NUL character or an unpaired UTF-16 surrogate, which PostgreSQL text cannot store.`,
    );
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Most commits sent together in one group-commit statement. */
const MAX_COMMIT_BATCH = 64;

/** A `commit()` waiting for its turn in the group-commit queue. */
interface PendingCommit {
  runId: string;
  /** Parameters $1..$23 of the single-run `commit` statement ($11, the steps, is filled in when sent alone). */
  params: unknown[];
  /** Step rows for the steps table ($11 before JSON encoding). */
  steps: StepRow[] | null;
  /** Whether it may go in a batch statement (the JSON form keeps every value as is). */
  batchable: boolean;
  resolve(row: Row | undefined): void;
  reject(error: unknown): void;
}

/** JSON object of one commit in the `commitBatch` statement (keys: its column definition list). */
function batchEntry(k: number, p: unknown[], steps: StepRow[] | null): Record<string, unknown> {
  const entry: Record<string, unknown> = { k };
  COMMIT_PARAMS.forEach(([name], i) => (entry[`p_${name}`] = i === STEPS_PARAM ? steps : p[i]));
  return entry;
}

const STEPS_PARAM = COMMIT_PARAM_INDEX.steps;
const WAIT_PARAM = COMMIT_PARAM_INDEX.wait;

/**
 * An error the server answered with (an SQLSTATE outside connection/operator-intervention classes): the statement
 * was rolled back and nothing of it was written, so its commits may be sent again one by one.
 */
function isStatementError(error: unknown): boolean {
  const e = error as { code?: unknown; driverError?: { code?: unknown } } | undefined;
  const code = e?.code ?? e?.driverError?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^(08|57|53|58|XX)/.test(code);
}

/**
 * The PostgreSQL store: runs, steps and signals in three tables, every operation one parameterized SQL statement
 * (a step checkpoint is one round trip), claims with `FOR NO KEY UPDATE SKIP LOCKED`, events by LISTEN/NOTIFY sent
 * in the same statement as the change. Hot statements go out as named prepared statements (planned once per
 * connection). The same SQL runs on PGlite (see `createPgliteStore`).
 */
export class PostgresStore implements WorkflowStore {
  readonly name: string;
  readonly names: SchemaNames;
  private readonly sql: Statements;
  private readonly logger: StoreLogger;
  private client?: SqlClient;
  private initPromise?: Promise<void>;
  private closed = false;

  private readonly listeners = new Set<(event: StoreEvent) => void>();
  /** Serializes starting/stopping the LISTEN connection. */
  private listenChain: Promise<void> = Promise.resolve();
  private unlisten?: () => Promise<void>;
  /** True when events are published in-process only (no LISTEN available). */
  private localEvents = false;
  private readonly statementNames = new Map<string, string>();
  /** Group commit: commits waiting for a statement slot, and statements of commits in flight. */
  private readonly commitQueue: PendingCommit[] = [];
  private commitsInFlight = 0;
  /** The last replacement of each run id under way on this instance (see `createRun`). */
  private readonly replacing = new Map<string, Promise<unknown>>();

  constructor(private readonly options: PostgresStoreOptions = {}) {
    this.name = options.name ?? 'postgres';
    this.logger = options.logger ?? defaultLogger;
    this.names = schemaNames(options.schema ?? DEFAULT_SCHEMA, options.tablePrefix ?? DEFAULT_TABLE_PREFIX);
    this.sql = buildStatements(this.names);
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
    this.listeners.clear();
    await this.stopListening();
    const client = this.client;
    this.client = undefined;
    await client?.close();
  }

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

  /** Runs an operation, turning driver errors into `StoreError`. */
  private async op<T>(what: string, fn: (db: SqlClient) => Promise<T>): Promise<T> {
    const db = this.db();
    try {
      return await fn(db);
    } catch (error) {
      if (error instanceof DurableExecutionError) throw error;
      throw new StoreError(`${this.name} store: ${what} failed: ${message(error)}`, { cause: error });
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Runs
  // -------------------------------------------------------------------------------------------------------------

  async createRun(input: NewRun, options: CreateRunOptions): Promise<CreateRunResult> {
    checkStorable('The run id', input.runId);
    checkStorable('The workflow name', input.workflow);
    checkStorable('The current step name', input.currentStep);
    for (const step of input.steps ?? []) checkStorable('A step name', step.name);
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
      for (let attempt = 1; attempt <= CONFLICT_RETRIES; attempt++) {
        const token = lease ? randomUUID() : null;
        const params = [
          input.runId,
          input.workflow,
          input.version,
          lease ? 'running' : 'pending',
          input.input,
          input.state,
          input.currentStep ?? null,
          lease ? lease.owner : null,
          token,
          lease ? lease.leaseMs : null,
          !lease,
          steps.live,
          steps.liveIndex,
        ];
        let row: Row | undefined;
        let replaced = false;
        if (options.onConflict === 'replace') {
          const rows = steps.table ?? [];
          const children = [input.runId, JSON.stringify(rows), rows.map((r) => r.i)];
          /** The upsert of the run row, then its children, in the transaction of `q`. */
          const inTwo = async (q: SqlQuery): Promise<Row | undefined> => {
            const [upserted] = await q(this.sql.replaceRunLocked, params);
            await q(this.sql.replaceChildren, children);
            return upserted;
          };
          const replace = async (): Promise<Row | undefined> => {
            const [done] = await query(this.sql.replaceRun, [...params, children[1], children[2]]);
            if (done) return done;
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
          replaced = row !== undefined && Number(row.generation) > 1;
        } else {
          const insert = steps.table ? this.sql.createRun : this.sql.createRunWithoutSteps;
          [row] = await query(insert, steps.table ? [...params, JSON.stringify(steps.table)] : params);
        }
        if (row) {
          if (replaced) this.emitLocal('control', input.runId);
          if (!lease) this.emitLocal('ready', input.runId);
          const createdAt = new Date(Math.floor(Number(row.created_at)));
          const run: StoredRun = {
            runId: input.runId,
            workflow: input.workflow,
            version: input.version,
            status: lease ? 'running' : 'pending',
            input: input.input,
            state: input.state,
            steps: (input.steps ?? []).map((step) => stepAsStored(step)),
            pauseRequested: false,
            dueAt: createdAt,
            createdAt,
            updatedAt: createdAt,
            generation: num(row.generation) ?? 1,
          };
          if (input.currentStep !== undefined) run.currentStep = input.currentStep;
          if (lease && token) {
            run.leaseOwner = lease.owner;
            run.leaseToken = token;
            run.leaseExpiresAt = new Date(Math.floor(Number(row.lease_expires_at)));
          }
          return { created: true, run };
        }
        if (options.onConflict === 'keep') {
          const existing = await this.readRun(query, input.runId);
          if (existing) return { created: false, run: existing };
        }
        // keep: the id was deleted (purged) concurrently: try again with a fresh snapshot.
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
    return this.op('listRuns', async (db) => {
      const params: unknown[] = [];
      if (query.workflow !== undefined) params.push(query.workflow);
      if (query.statuses) params.push([...query.statuses]);
      if (query.after) params.push(query.after.createdAt.getTime(), query.after.runId);
      params.push(query.limit);
      const sql = this.sql.list({
        workflow: query.workflow !== undefined,
        statuses: query.statuses !== undefined,
        after: query.after !== undefined,
      });
      return (await db.query(sql, params)).map(mapRun);
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Claims and leases
  // -------------------------------------------------------------------------------------------------------------

  private mapClaimed(rows: Row[]): ClaimedRun[] {
    return rows.map((row) => ({ ...mapRun(row), leaseToken: String(row.lease_token), recovered: row.prev_token != null }));
  }

  async claimRuns(lease: LeaseRequest, limit: number, workflows?: readonly string[]): Promise<ClaimedRun[]> {
    if (!(limit > 0)) return [];
    if (workflows) {
      workflows = workflows.filter(storable);
      if (workflows.length === 0) return [];
    }
    const n = Math.max(1, Math.min(Math.floor(limit), MAX_CLAIM));
    return this.op('claimRuns', async (db) => {
      const rows = workflows
        ? await this.hot(db, this.sql.claimRunsForWorkflows, [lease.owner, lease.leaseMs, n, [...workflows]])
        : await this.hot(db, this.sql.claimRuns, [lease.owner, lease.leaseMs, n]);
      return this.mapClaimed(rows);
    });
  }

  async claimRun(runId: string, lease: LeaseRequest, workflows?: readonly string[]): Promise<ClaimedRun | undefined> {
    if (!storable(runId)) return undefined;
    if (workflows) {
      workflows = workflows.filter(storable);
      if (workflows.length === 0) return undefined;
    }
    return this.op('claimRun', async (db) => {
      const rows = workflows
        ? await this.hot(db, this.sql.claimRunForWorkflows, [lease.owner, lease.leaseMs, runId, [...workflows]])
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
      if (row) this.emitLocal(row.evt, runId);
    });
  }

  async commit(runId: string, token: string, patch: RunPatch): Promise<CommitResult> {
    if (!storable(runId) || !storable(token)) return { ok: false };
    checkStorable('The signal name', patch.wait?.signal);
    checkStorable('The current step name', patch.currentStep ?? undefined);
    for (const entry of patch.steps ?? []) checkStorable('A step name', entry.step.name);
    const dueAt = patch.due && 'at' in patch.due ? patch.due.at.getTime() : null;
    if (dueAt !== null && !Number.isFinite(dueAt)) throw new InvalidArgumentError('The wake-up time `due.at` is an invalid Date.');
    const { table, live, liveIndex } = stepRows(patch.steps);
    const params = [
      runId,
      token,
      patch.status ?? null,
      patch.state ?? null,
      patch.currentStep !== undefined,
      patch.currentStep ?? null,
      patch.output !== undefined,
      patch.output ?? null,
      patch.error !== undefined,
      patch.error ? JSON.stringify(errorAsStored(patch.error)) : null,
      null, // steps: see PendingCommit
      patch.due !== undefined,
      patch.due && 'delayMs' in patch.due ? patch.due.delayMs : null,
      dueAt,
      patch.wait ? patch.wait.signal : null,
      patch.wait?.timeoutMs ?? null,
      patch.release === true,
      patch.clearCancel === true,
      patch.leaseMs,
      patch.steps !== undefined && patch.steps.length > 0,
      live,
      liveIndex,
      table ? table.map((row) => row.i) : [],
    ];
    return this.op('commit', async (db) => {
      const row = await this.groupCommit(db, runId, params, table);
      if (!row) return { ok: false };
      this.emitLocal(row.evt, runId);
      const result: CommitResult & { ok: true } = { ok: true };
      if (bool(row.paused)) result.paused = true;
      if (row.cancel !== null && row.cancel !== undefined) result.cancel = { compensate: bool(row.cancel) };
      if (row.consumed !== null && row.consumed !== undefined) result.consumedSignal = { payload: String(row.consumed) };
      // NOTE: rare (a signal raced with the run's end): the statement could not see it to delete it. The commit
      // itself has succeeded, so a failure here is only logged.
      if (bool(row.stale_signals)) {
        await db.query(this.sql.dropStaleSignals, [runId]).catch((error: unknown) => {
          this.logger.warn(`${this.name} store: cannot delete the signals left queued for ended run "${runId}": ${message(error)}`);
        });
      }
      return result;
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Group commit
  // -------------------------------------------------------------------------------------------------------------

  /**
   * How many commit statements may be in flight at once: the pool size (one for PGlite's single session). A commit
   * finding a free slot goes out at once, alone; commits arriving while all slots are busy queue up and go together
   * in the next statement (up to MAX_COMMIT_BATCH, one per run): one round trip, one transaction, one WAL flush.
   */
  private commitSlots(db: SqlClient): number {
    if (this.options.groupCommit === false) return Number.POSITIVE_INFINITY;
    if (db.kind === 'pglite') return 1;
    if (db instanceof TypeOrmSqlClient) {
      const size = Number((db.dataSource.options as { poolSize?: unknown }).poolSize ?? 10);
      return Number.isFinite(size) && size >= 1 ? Math.floor(size) : 10;
    }
    return 10;
  }

  private groupCommit(db: SqlClient, runId: string, params: unknown[], steps: StepRow[] | null): Promise<Row | undefined> {
    return new Promise<Row | undefined>((resolve, reject) => {
      // Non-finite numbers have no JSON form: such a commit always goes alone (its error, if any, is its own).
      const batchable = (['due', 'due_at', 'wait_ms', 'lease_ms'] as const)
        .map((name) => params[COMMIT_PARAM_INDEX[name]])
        .every((v) => v === null || (typeof v === 'number' && Number.isFinite(v)));
      const item: PendingCommit = { runId, params, steps, batchable, resolve, reject };
      this.commitQueue.push(item);
      this.pumpCommits(db);
    });
  }

  /** Sends queued commits while statement slots are free. */
  private pumpCommits(db: SqlClient): void {
    const slots = this.commitSlots(db);
    while (this.commitsInFlight < slots && this.commitQueue.length > 0) {
      const batch = this.takeBatch();
      this.commitsInFlight++;
      void this.sendCommits(db, batch).finally(() => {
        this.commitsInFlight--;
        this.pumpCommits(db);
      });
    }
  }

  /**
   * The next batch: queued commits in order, at most one per run. A commit left in the queue (a second one of a run
   * in the batch, or one that must go alone) holds back the later commits of its run, so each run's commits keep
   * their order.
   */
  private takeBatch(): PendingCommit[] {
    const first = this.commitQueue.shift()!;
    if (!first.batchable) return [first];
    const batch = [first];
    const seen = new Set([first.runId]);
    const rest: PendingCommit[] = [];
    for (const item of this.commitQueue) {
      if (batch.length < MAX_COMMIT_BATCH && item.batchable && !seen.has(item.runId)) batch.push(item);
      else rest.push(item);
      seen.add(item.runId);
    }
    this.commitQueue.length = 0;
    this.commitQueue.push(...rest);
    return batch;
  }

  private async sendCommits(db: SqlClient, batch: PendingCommit[]): Promise<void> {
    if (batch.length === 1) return this.sendOne(db, batch[0]);
    let rows: Row[];
    try {
      const json = JSON.stringify(batch.map((item, k) => batchEntry(k, item.params, item.steps)));
      const wait = batch.some((item) => item.params[WAIT_PARAM] !== null);
      rows = await this.hot(db, wait ? this.sql.commitBatch : this.sql.commitBatchNoWait, [json]);
    } catch (error) {
      if (!isStatementError(error)) {
        for (const item of batch) item.reject(error);
        return;
      }
      // Nothing of the batch was written: each commit alone, so that one bad commit fails only itself.
      await Promise.all(batch.map((item) => this.sendOne(db, item)));
      return;
    }
    const byK = new Map<number, Row>();
    for (const row of rows) byK.set(Number(row.k), row);
    batch.forEach((item, k) => item.resolve(byK.get(k)));
  }

  private async sendOne(db: SqlClient, item: PendingCommit): Promise<void> {
    try {
      const wait = item.params[WAIT_PARAM] !== null;
      if (!wait && (item.steps?.length ?? 0) <= 1) {
        // NOTE: no row: fenced, a pause/cancel request to apply, or another live step; the full statement decides
        // (see commitFast).
        const [fast] = await this.hot(db, this.sql.commitFast, fastCommitArgs(item.params, item.steps?.[0]));
        if (fast) return item.resolve(fast);
      }
      const params = [...item.params];
      params[STEPS_PARAM] = item.steps ? JSON.stringify(item.steps) : null;
      const [row] = await this.hot(db, wait ? this.sql.commit : this.sql.commitNoWait, commitArgs(params, wait));
      item.resolve(row);
    } catch (error) {
      item.reject(error);
    }
  }

  async takeSignal(runId: string, token: string, name: string): Promise<TakeSignalResult> {
    if (!storable(runId) || !storable(token)) return { ok: false };
    checkStorable('The signal name', name);
    return this.op('takeSignal', async (db) => {
      const [row] = await this.hot(db, this.sql.takeSignal, [runId, token, name]);
      if (!row) return { ok: false };
      if (row.payload !== null && row.payload !== undefined) return { ok: true, payload: String(row.payload), timedOut: false };
      return { ok: true, timedOut: bool(row.timed_out) };
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Signals and control requests
  // -------------------------------------------------------------------------------------------------------------

  async sendSignal(runId: string, name: string, payload: string): Promise<ControlResult> {
    if (!storable(runId)) return { outcome: 'not-found' };
    checkStorable('The signal name', name);
    return this.op('sendSignal', async (db) => {
      const [row] = await this.hot(db, this.sql.sendSignal, [runId, name, payload]);
      if (!row) return { outcome: 'not-found' };
      const status = row.status as RunStatus;
      if (isTerminal(status)) return { outcome: 'not-active', status };
      this.emitLocal(row.evt, runId);
      return { outcome: 'ok', status };
    });
  }

  async control(runId: string, request: ControlRequest): Promise<ControlResult> {
    if (!storable(runId)) return { outcome: 'not-found' };
    return this.op(`control(${request.action})`, async (db) => {
      let rows: Row[];
      switch (request.action) {
        case 'pause':
          rows = await this.hot(db, this.sql.pause, [runId]);
          break;
        case 'resume':
          rows = await this.hot(db, this.sql.resume, [runId]);
          break;
        case 'cancel':
          rows = await this.hot(db, this.sql.cancel, [runId, request.compensate !== false]);
          break;
        case 'retry':
          rows = await this.hot(db, this.sql.retry, [runId]);
          break;
        default:
          throw new InvalidArgumentError(`Unknown control action "${(request as { action: unknown }).action}".`);
      }
      const [row] = rows;
      if (!row) return { outcome: 'not-found' };
      this.emitLocal(row.evt, runId);
      return { outcome: row.outcome as ControlResult['outcome'], status: row.status as RunStatus };
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
    this.db();
    this.listeners.add(listener);
    await this.serialize(() => this.startListening());
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      this.listeners.delete(listener);
      if (this.listeners.size === 0) await this.stopListening();
    };
  }

  private serialize(fn: () => Promise<void>): Promise<void> {
    const next = this.listenChain.then(fn);
    this.listenChain = next.catch(() => undefined);
    return next;
  }

  private async startListening(): Promise<void> {
    if (this.unlisten || this.localEvents || this.listeners.size === 0) return;
    const db = this.client;
    if (!db) return;
    const canListen = db.listen !== undefined && (!(db instanceof TypeOrmSqlClient) || db.canListen);
    if (!canListen) {
      this.localEvents = true;
      this.logger.warn(`${this.name} store: this connection cannot LISTEN; events are published to this instance only.`);
      return;
    }
    try {
      this.unlisten = await db.listen!(this.names.channel, (payload) => this.onNotification(payload));
    } catch (error) {
      this.localEvents = true;
      this.logger.warn(
        `${this.name} store: cannot LISTEN (${message(error)}); events are published to this instance only, other instances' work is found by polling.`,
      );
    }
  }

  private stopListening(): Promise<void> {
    return this.serialize(async () => {
      if (this.listeners.size > 0) return;
      this.localEvents = false;
      const unlisten = this.unlisten;
      this.unlisten = undefined;
      await unlisten?.().catch(() => undefined);
    });
  }

  private onNotification(payload: string): void {
    let event: StoreEvent;
    try {
      const parsed = JSON.parse(payload) as { type?: unknown; runId?: unknown };
      if ((parsed.type !== 'ready' && parsed.type !== 'control' && parsed.type !== 'finished') || typeof parsed.runId !== 'string') return;
      event = { type: parsed.type, runId: parsed.runId };
    } catch {
      return;
    }
    this.dispatch(event);
  }

  private emitLocal(type: unknown, runId: string): void {
    if (!this.localEvents || (type !== 'ready' && type !== 'control' && type !== 'finished')) return;
    const event: StoreEvent = { type, runId };
    queueMicrotask(() => this.dispatch(event));
  }

  private dispatch(event: StoreEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error(`${this.name} store: an event listener threw: ${message(error)}`);
      }
    }
  }
}
