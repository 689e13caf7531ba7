import { createHash } from 'node:crypto';
import { ConfigurationError, StoreError } from '../../errors/errors.js';
import { CLAIMABLE_STATUSES, RUN_STATUSES } from '../run-state-machine.js';

/**
 * Version of the tables this release reads and writes. Bump it with every change of the DDL below and add the step
 * from the previous version to {@link MIGRATIONS}. A database whose version row is newer is refused: an older
 * release must not write into tables it does not understand.
 */
export const SCHEMA_VERSION = 8;

export const DEFAULT_SCHEMA = 'public';
export const DEFAULT_TABLE_PREFIX = 'cairn_';

const MAX_IDENTIFIER_BYTES = 63;

/** Quotes an SQL identifier (`"` doubled), so any schema or prefix is data, never SQL. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quotes an SQL string literal (for constants derived from configuration, never for user values). */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * A list of string literals for `IN` / `NOT IN`, e.g. `sqlList(TERMINAL_STATUSES)` → `('completed','compensated',…)`:
 * how the SQL takes the status classes of `run-state-machine.ts` (never hand-written lists).
 */
export function sqlList(values: readonly string[]): string {
  return `(${values.map(quoteLiteral).join(',')})`;
}

/** Fully qualified, quoted names of everything the store creates. */
export interface SchemaNames {
  schema: string;
  prefix: string;
  /** Quoted schema name. */
  qSchema: string;
  runs: string;
  steps: string;
  signals: string;
  /** The runs' histories (since version 5). */
  events: string;
  /** The pipeline descriptions by fingerprint (since version 6). */
  pipelines: string;
  /** The `sendSignal` deduplication ids accepted per run (since version 7). */
  signalIds: string;
  /** The flow control counters: concurrency slots held and rate-limit begins per key (since version 8). */
  flowKeys: string;
  meta: string;
  /** Unqualified table names (for catalog lookups). */
  tables: {
    runs: string;
    steps: string;
    signals: string;
    events: string;
    pipelines: string;
    signalIds: string;
    flowKeys: string;
    meta: string;
  };
  /** Quoted index names (unqualified: an index lives in its table's schema). */
  indexes: {
    claim: string;
    list: string;
    workflowList: string;
    statusList: string;
    purge: string;
    signalsQueue: string;
    /** The children of a run, in the list order (since version 7). */
    parentList: string;
    /** One run per debounce key (partial, unique; since version 8). */
    debounce: string;
  };
  /** NOTIFY channel (a plain lower-case identifier, at most 63 bytes). */
  channel: string;
  /** Key of the advisory lock that serializes schema creation. */
  lockKey: string;
}

function checkIdentifier(kind: string, name: string): void {
  if (name.includes('\0')) throw new ConfigurationError(`The Postgres ${kind} must not contain NUL characters.`);
  if (Buffer.byteLength(name, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw new ConfigurationError(
      `The Postgres ${kind} "${name}" is longer than ${MAX_IDENTIFIER_BYTES} bytes; PostgreSQL would truncate it. Use a shorter schema or tablePrefix.`,
    );
  }
}

/** Channel name for LISTEN/NOTIFY: readable when schema and prefix are plain, a hash otherwise. */
function channelName(schema: string, prefix: string): string {
  const plain = `${schema}_${prefix}events`;
  if (/^[a-z_][a-z0-9_]*$/.test(plain) && plain.length <= MAX_IDENTIFIER_BYTES) return plain;
  const hash = createHash('sha256').update(`${schema}\0${prefix}`).digest('hex').slice(0, 24);
  return `cairn_events_${hash}`;
}

export function schemaNames(schema = DEFAULT_SCHEMA, prefix = DEFAULT_TABLE_PREFIX): SchemaNames {
  if (schema.length === 0) throw new ConfigurationError('The Postgres schema must not be empty.');
  checkIdentifier('schema', schema);
  const tables = {
    runs: `${prefix}runs`,
    steps: `${prefix}steps`,
    signals: `${prefix}signals`,
    events: `${prefix}run_events`,
    pipelines: `${prefix}pipelines`,
    signalIds: `${prefix}signal_ids`,
    flowKeys: `${prefix}flow_keys`,
    meta: `${prefix}schema_version`,
  };
  const indexNames = {
    claim: `${prefix}runs_claim_idx`,
    list: `${prefix}runs_list_idx`,
    workflowList: `${prefix}runs_workflow_list_idx`,
    statusList: `${prefix}runs_status_list_idx`,
    purge: `${prefix}runs_purge_idx`,
    signalsQueue: `${prefix}signals_queue_idx`,
    parentList: `${prefix}runs_parent_list_idx`,
    debounce: `${prefix}runs_debounce_idx`,
  };
  for (const name of [
    ...Object.values(tables),
    ...Object.values(indexNames),
    `${prefix}steps_pkey`,
    `${prefix}run_events_pkey`,
    `${prefix}pipelines_pkey`,
    `${prefix}signal_ids_pkey`,
    `${prefix}flow_keys_pkey`,
  ]) {
    checkIdentifier('table/index name (from tablePrefix)', name);
  }
  const qSchema = quoteIdent(schema);
  const q = (table: string) => `${qSchema}.${quoteIdent(table)}`;
  return {
    schema,
    prefix,
    qSchema,
    runs: q(tables.runs),
    steps: q(tables.steps),
    signals: q(tables.signals),
    events: q(tables.events),
    pipelines: q(tables.pipelines),
    signalIds: q(tables.signalIds),
    flowKeys: q(tables.flowKeys),
    meta: q(tables.meta),
    tables,
    indexes: {
      claim: quoteIdent(indexNames.claim),
      list: quoteIdent(indexNames.list),
      workflowList: quoteIdent(indexNames.workflowList),
      statusList: quoteIdent(indexNames.statusList),
      purge: quoteIdent(indexNames.purge),
      signalsQueue: quoteIdent(indexNames.signalsQueue),
      parentList: quoteIdent(indexNames.parentList),
      debounce: quoteIdent(indexNames.debounce),
    },
    channel: channelName(schema, prefix),
    lockKey: `nestjs-cairn:schema:${schema}`,
  };
}

/** The history table (version 5), in the DDL and in the migration from version 4. */
function eventsTable(n: SchemaNames): string {
  return `CREATE TABLE IF NOT EXISTS ${n.events} (
      run_id text COLLATE "C" NOT NULL,
      seq integer NOT NULL,
      body text NOT NULL,
      PRIMARY KEY (run_id, seq)
    )`;
}

/** The pipeline descriptions (version 6), in the DDL and in the migration from version 5. */
function pipelinesTable(n: SchemaNames): string {
  return `CREATE TABLE IF NOT EXISTS ${n.pipelines} (
      fingerprint text COLLATE "C" PRIMARY KEY,
      body text NOT NULL
    )`;
}

/** The `sendSignal` deduplication ids (version 7), in the DDL and in the migration from version 6. */
function signalIdsTable(n: SchemaNames): string {
  return `CREATE TABLE IF NOT EXISTS ${n.signalIds} (
      run_id text COLLATE "C" NOT NULL,
      id text NOT NULL,
      PRIMARY KEY (run_id, id)
    )`;
}

/**
 * `listRuns({ parentRunId })` (version 7): a run's children in the list order. Partial: the runs without a parent (most
 * of them) have no entry, so it costs their writes nothing.
 */
function parentListIndex(n: SchemaNames): string {
  return `CREATE INDEX IF NOT EXISTS ${n.indexes.parentList} ON ${n.runs} (parent_run_id, created_at DESC, run_id DESC)
      WHERE parent_run_id IS NOT NULL`;
}

/**
 * The flow control counters (version 8), in the DDL and in the migration from version 7: one row per key, inserted by
 * `createRun` (ON CONFLICT DO NOTHING) for the runs that have one, never deleted. `'c:' || conc_key`: `held`, how many
 * live runs of that concurrency key hold a slot (rule F2). `'r:' || rate_key`: `begins`, the begin times of the key's
 * last runs (at most its limit of them), oldest first (rule F3). Claims lock the rows of their candidates' keys
 * (`FOR NO KEY UPDATE`, in key order) and change them in the statement that changes the runs.
 */
function flowKeysTable(n: SchemaNames): string {
  return `CREATE TABLE IF NOT EXISTS ${n.flowKeys} (
      key text COLLATE "C" PRIMARY KEY,
      held integer NOT NULL DEFAULT 0,
      begins timestamptz[] NOT NULL DEFAULT ARRAY[]::timestamptz[]
    )`;
}

/**
 * The claim (version 8: by priority, then due time). A claim reads it one priority at a time (`claimDueSelect` in
 * postgres.claim.sql.ts): the priorities by a loose index scan, then per priority the range `due_at <= now()` in
 * `due_at` order, so the runs not due yet are never read. NOTE: the predicate must stay the claim statements'
 * (`inClaimIndex` in postgres.sql-fragments.ts), or the planner cannot use the index; its text is part of the schema.
 */
function claimIndex(n: SchemaNames): string {
  return `CREATE INDEX IF NOT EXISTS ${n.indexes.claim} ON ${n.runs} (priority DESC, due_at)
      WHERE status IN ${sqlList(CLAIMABLE_STATUSES)} AND due_at IS NOT NULL`;
}

/** Rule D (version 8): at most one run per debounce key; a claim clears the key of the run it claims. */
function debounceIndex(n: SchemaNames): string {
  return `CREATE UNIQUE INDEX IF NOT EXISTS ${n.indexes.debounce} ON ${n.runs} (debounce_key) WHERE debounce_key IS NOT NULL`;
}

/**
 * DDL of the current schema version, every statement idempotent (`IF NOT EXISTS`).
 *
 * - `runs`: one row per run. `run_id` uses the "C" collation so ordering (list pages, cursors) is by code point,
 *   as in the other stores, whatever the database's default collation. `signal_seq` counts queued signals; a commit
 *   compares it with its snapshot to notice a signal that raced with it (see the commit statement).
 * - `steps`: one row per step visit, so a checkpoint writes only the step rows it changes (not every previous output).
 * - `runs.live_step` (since version 3): the run's trailing step entry while it is `running`, as JSON (the step row
 *   format of the statements). It is written with the run row instead of as a row of `steps`: the start then writes
 *   no step row, and a checkpoint inserts one row (the step it completes) instead of updating one and inserting
 *   another (~0.03 ms per checkpoint). Reads put it over the `steps` row of the same index, if any. `live_index` is
 *   its index (lets the checkpoint's fast path check it without parsing the JSON).
 * - `runs.generation` (since version 4): the incarnation of the run id, 1 for a new id; a `replace` (an upsert of
 *   the run row) sets it to the replaced run's + 1.
 * - `signals`: FIFO per run and name by `id`. A run's queued signals are deleted when it ends (the terminal commit),
 *   is replaced or purged.
 * - `run_events` (since version 5): the runs' histories, `seq` 1, 2, 3 … per run. `runs.event_seq` is the last `seq`
 *   given (0: none), so an append needs no scan: the statement that appends updates the run row (under its lock) and
 *   inserts `event_seq + 1 …`. Contiguous, so keeping the newest `RUN_HISTORY_LIMIT` is deleting
 *   `seq <= event_seq - RUN_HISTORY_LIMIT`, in the same statement. A replaced run starts again at 1.
 * - `steps.heartbeat_at`, `steps.heartbeat` (since version 5): a step visit's latest heartbeat and its details (in
 *   `live_step` as `hb`, `hd`).
 * - `runs.pipeline` (since version 6): the fingerprint of the pipeline the run started on (null: none given), for
 *   the deploy-time compatibility check; `pipelines` (since version 6) holds the descriptions by fingerprint, written
 *   once each. `summarizeLiveRuns` reads the live runs through the status list index (the `status IN` of the live
 *   class is its leading column), so it reads no ended run. No index of its own: one on `current_step`, which most
 *   checkpoints change, would cost them their HOT updates.
 * - Version 7 (child runs, waits for any of several signals, signal ids, continue-as-new):
 *   `runs.wait_signals` (text[]) replaces `wait_signal`: the names a waiting run waits for. `runs.parent_run_id`: the
 *   run that spawned or adopted it (the partial `parent_list` index serves `listRuns({ parentRunId })`).
 *   `runs.children_ended` / `children_failed` (null: the run has no children state) and
 *   `children_wait_ended_at_least` / `children_fail_fast` (null: not waiting for its children) are
 *   `StoredRun.children`: a child's terminal commit adds one to `children_ended` on its parent's row in the same
 *   statement (O(1): no scan of the siblings). Monotonic: no commit ever sets it to an absolute value (a parent's
 *   commit adds to it), so an end that commits between a parent's read and its next commit is never overwritten. `signal_ids`: the
 *   `sendSignal` deduplication ids per run, deleted with the run (purge, replace), kept through its end and `restart`.
 *   `runs.next_input_signal`: the name of the signal whose payload `next_input` is (`StoredRun.nextInputSignal`),
 *   written and cleared with it.
 * - Version 8 (flow control: priorities, delays, concurrency and rate limits, debounce): `runs.priority` (claim order,
 *   higher first; the claim index is on `(priority DESC, due_at)`), `conc_key` / `conc_limit` / `conc_scope`
 *   (`StoredRun.concurrency`), `slot_held` (the run holds one of its key's slots), `rate_key` / `rate_limit` /
 *   `rate_per_ms` (`StoredRun.rateLimit`), `debounce_key` (rule D; unique while set: the run that later starts with
 *   that key fold into; a claim clears it) and `debounce_first` (its first creation, for `maxDelayMs`). `flow_keys`:
 *   the counters of the keys (see {@link flowKeysTable}); a run's `slot_held` and its key's `held` change in the same
 *   statement, always.
 *
 * `steps`, `signals` and `run_events` have no foreign key to `runs` (since version 2): the check cost every checkpoint
 * ~0.015 ms. Rows are only ever written by statements that hold the run's row (they join the locked or updated run),
 * and the statements that delete or replace runs (`purge`, `replaceRun` + `replaceChildren`) delete their steps,
 * signals and events too.
 */
export function schemaStatements(n: SchemaNames): string[] {
  const i = n.indexes;
  return [
    `CREATE SCHEMA IF NOT EXISTS ${n.qSchema}`,
    `CREATE TABLE IF NOT EXISTS ${n.meta} (
      id integer PRIMARY KEY CHECK (id = 1),
      version integer NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    // NOTE: the status CHECK and the claim index predicate are rendered from run-state-machine.ts; an existing
    // database keeps the ones it was created with, so a new status or class needs a schema version and a migration.
    `CREATE TABLE IF NOT EXISTS ${n.runs} (
      run_id text COLLATE "C" PRIMARY KEY,
      workflow text COLLATE "C" NOT NULL,
      version integer NOT NULL,
      status text COLLATE "C" NOT NULL CHECK (status IN ${sqlList(RUN_STATUSES)}),
      input text NOT NULL,
      output text,
      error jsonb,
      current_step text,
      state text NOT NULL,
      next_input text,
      next_input_signal text,
      wait_signals text[],
      wait_until timestamptz,
      resume_status text,
      cancel_compensate boolean,
      pause_requested boolean NOT NULL DEFAULT false,
      due_at timestamptz,
      lease_owner text,
      lease_token text,
      lease_expires_at timestamptz,
      signal_seq bigint NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      finished_at timestamptz,
      live_step text,
      live_index integer,
      generation integer NOT NULL DEFAULT 1,
      event_seq integer NOT NULL DEFAULT 0,
      pipeline text,
      parent_run_id text COLLATE "C",
      children_ended integer,
      children_failed boolean,
      children_wait_ended_at_least integer,
      children_fail_fast boolean,
      priority bigint NOT NULL DEFAULT 0,
      conc_key text,
      conc_limit integer,
      conc_scope text,
      slot_held boolean NOT NULL DEFAULT false,
      rate_key text,
      rate_limit integer,
      rate_per_ms bigint,
      debounce_key text,
      debounce_first timestamptz
    ) WITH (fillfactor = 85)`,
    `CREATE TABLE IF NOT EXISTS ${n.steps} (
      run_id text COLLATE "C" NOT NULL,
      idx integer NOT NULL,
      name text NOT NULL,
      status text NOT NULL,
      attempts integer NOT NULL,
      output text,
      started_at timestamptz,
      finished_at timestamptz,
      error text,
      heartbeat_at timestamptz,
      heartbeat text,
      PRIMARY KEY (run_id, idx)
    )`,
    `CREATE TABLE IF NOT EXISTS ${n.signals} (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      run_id text COLLATE "C" NOT NULL,
      name text NOT NULL,
      payload text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`,
    eventsTable(n),
    pipelinesTable(n),
    signalIdsTable(n),
    flowKeysTable(n),
    // The claim: highest priority, then earliest due first among claimable statuses.
    claimIndex(n),
    // list(): newest first, optionally by workflow or status.
    `CREATE INDEX IF NOT EXISTS ${i.list} ON ${n.runs} (created_at DESC, run_id DESC)`,
    `CREATE INDEX IF NOT EXISTS ${i.workflowList} ON ${n.runs} (workflow, created_at DESC, run_id DESC)`,
    `CREATE INDEX IF NOT EXISTS ${i.statusList} ON ${n.runs} (status, created_at DESC, run_id DESC)`,
    // purge(): terminal runs by status and age.
    `CREATE INDEX IF NOT EXISTS ${i.purge} ON ${n.runs} (status, finished_at) WHERE finished_at IS NOT NULL`,
    // Signal queues: FIFO per run and name.
    `CREATE INDEX IF NOT EXISTS ${i.signalsQueue} ON ${n.signals} (run_id, name, id)`,
    parentListIndex(n),
    debounceIndex(n),
  ];
}

/** Steps from version `from` to `from + 1`. */
export const MIGRATIONS: Record<number, (n: SchemaNames) => string[]> = {
  // 1 → 2: drop the foreign keys of steps and signals (whatever PostgreSQL named them).
  1: (n) =>
    [n.steps, n.signals].map(
      (table) => `DO $cairn$ DECLARE c record; BEGIN
        FOR c IN SELECT conname FROM pg_constraint WHERE conrelid = ${quoteLiteral(table)}::regclass AND contype = 'f' LOOP
          EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', ${quoteLiteral(table)}, c.conname);
        END LOOP;
      END $cairn$`,
    ),
  // 2 → 3: the live step column (NULL for every existing run: their running step stays a row of steps).
  2: (n) => [`ALTER TABLE ${n.runs} ADD COLUMN IF NOT EXISTS live_step text, ADD COLUMN IF NOT EXISTS live_index integer`],
  // 3 → 4: the generation of a run id (every existing run is its id's first; a constant default rewrites nothing).
  3: (n) => [`ALTER TABLE ${n.runs} ADD COLUMN IF NOT EXISTS generation integer NOT NULL DEFAULT 1`],
  // 4 → 5: histories (every existing run has none: event_seq 0) and step heartbeats (none yet). Constant defaults and
  // nullable columns rewrite nothing.
  4: (n) => [
    `ALTER TABLE ${n.runs} ADD COLUMN IF NOT EXISTS event_seq integer NOT NULL DEFAULT 0`,
    `ALTER TABLE ${n.steps} ADD COLUMN IF NOT EXISTS heartbeat_at timestamptz, ADD COLUMN IF NOT EXISTS heartbeat text`,
    eventsTable(n),
  ],
  // 5 → 6: the runs' pipeline fingerprints (null for every existing run: started without one; a nullable column
  // rewrites nothing) and the pipeline descriptions.
  5: (n) => [`ALTER TABLE ${n.runs} ADD COLUMN IF NOT EXISTS pipeline text`, pipelinesTable(n)],
  // 6 → 7: child runs, waits for several signals, signal ids. Nullable columns rewrite nothing; the single wait signal
  // of the runs waiting for one (a few rows) becomes a one-name array, then the old column goes (a catalog change).
  6: (n) => [
    `ALTER TABLE ${n.runs} ADD COLUMN IF NOT EXISTS wait_signals text[], ADD COLUMN IF NOT EXISTS parent_run_id text COLLATE "C",
      ADD COLUMN IF NOT EXISTS children_ended integer, ADD COLUMN IF NOT EXISTS children_failed boolean,
      ADD COLUMN IF NOT EXISTS children_wait_ended_at_least integer, ADD COLUMN IF NOT EXISTS children_fail_fast boolean,
      ADD COLUMN IF NOT EXISTS next_input_signal text`,
    `UPDATE ${n.runs} SET wait_signals = ARRAY[wait_signal] WHERE wait_signal IS NOT NULL`,
    `ALTER TABLE ${n.runs} DROP COLUMN IF EXISTS wait_signal`,
    signalIdsTable(n),
    parentListIndex(n),
  ],
  // 7 → 8: flow control. Constant defaults and nullable columns rewrite nothing (every existing run: priority 0, no
  // limits, no slot, no debounce key); the claim index is rebuilt on (priority DESC, due_at) (a build of the
  // claimable runs only: its predicate).
  7: (n) => [
    `ALTER TABLE ${n.runs} ADD COLUMN IF NOT EXISTS priority bigint NOT NULL DEFAULT 0,
      ADD COLUMN IF NOT EXISTS conc_key text, ADD COLUMN IF NOT EXISTS conc_limit integer, ADD COLUMN IF NOT EXISTS conc_scope text,
      ADD COLUMN IF NOT EXISTS slot_held boolean NOT NULL DEFAULT false,
      ADD COLUMN IF NOT EXISTS rate_key text, ADD COLUMN IF NOT EXISTS rate_limit integer, ADD COLUMN IF NOT EXISTS rate_per_ms bigint,
      ADD COLUMN IF NOT EXISTS debounce_key text, ADD COLUMN IF NOT EXISTS debounce_first timestamptz`,
    flowKeysTable(n),
    `DROP INDEX IF EXISTS ${n.qSchema}.${n.indexes.claim}`,
    claimIndex(n),
    debounceIndex(n),
  ],
};

/** DDL that removes everything the store created (tables and indexes, not the schema). */
export function dropStatements(n: SchemaNames): string[] {
  return [
    `DROP TABLE IF EXISTS ${n.flowKeys}`,
    `DROP TABLE IF EXISTS ${n.signalIds}`,
    `DROP TABLE IF EXISTS ${n.pipelines}`,
    `DROP TABLE IF EXISTS ${n.events}`,
    `DROP TABLE IF EXISTS ${n.signals}`,
    `DROP TABLE IF EXISTS ${n.steps}`,
    `DROP TABLE IF EXISTS ${n.runs}`,
    `DROP TABLE IF EXISTS ${n.meta}`,
  ];
}

/** Runs one SQL statement with parameters and returns its rows. */
export type SqlQuery = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

function newerSchemaError(n: SchemaNames, found: number): StoreError {
  return new StoreError(
    `The nestjs-cairn tables in schema "${n.schema}" (prefix "${n.prefix}") have schema version ${found}, newer than ` +
      `version ${SCHEMA_VERSION} that this release of nestjs-cairn supports. Upgrade nestjs-cairn on this instance, ` +
      'or point it at another schema or tablePrefix.',
  );
}

/**
 * Reads the schema version without taking locks or creating anything: `undefined` when the tables do not exist.
 * Lets an instance whose database role may not create tables start when the schema is already there.
 */
export async function readSchemaVersion(query: SqlQuery, n: SchemaNames): Promise<number | undefined> {
  const [row] = await query(`SELECT to_regclass($1) IS NOT NULL AS present`, [`${n.qSchema}.${quoteIdent(n.tables.meta)}`]);
  if (!row || !(row.present === true || row.present === 't')) return undefined;
  const [version] = await query(`SELECT version FROM ${n.meta} WHERE id = 1`);
  return version ? Number(version.version) : undefined;
}

/**
 * Creates or upgrades the schema inside the caller's transaction (`query` runs in it). Takes a transaction-level
 * advisory lock first, so instances starting at once do not race. Throws `StoreError` on a newer schema.
 */
export async function ensureSchemaInTransaction(query: SqlQuery, n: SchemaNames): Promise<void> {
  await query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [n.lockKey]);
  const current = await readSchemaVersion(query, n);
  if (current !== undefined && current > SCHEMA_VERSION) throw newerSchemaError(n, current);
  if (current === SCHEMA_VERSION) return;
  if (current === undefined) {
    for (const statement of schemaStatements(n)) await query(statement);
  } else {
    for (let v = current; v < SCHEMA_VERSION; v++) {
      for (const statement of MIGRATIONS[v]?.(n) ?? []) await query(statement);
    }
  }
  await query(
    `INSERT INTO ${n.meta} (id, version, updated_at) VALUES (1, $1, now())
     ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, updated_at = now()`,
    [SCHEMA_VERSION],
  );
}

/** Fast path of `init()`: true when the schema is current, throws on a newer one, false when work is needed. */
export async function isSchemaCurrent(query: SqlQuery, n: SchemaNames): Promise<boolean> {
  const current = await readSchemaVersion(query, n);
  if (current !== undefined && current > SCHEMA_VERSION) throw newerSchemaError(n, current);
  return current === SCHEMA_VERSION;
}
