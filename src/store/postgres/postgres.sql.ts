import { type RunStatus, type StoredStep, TERMINAL_STATUSES } from '../workflow-store.interface.js';
import { CLAIMABLE_STATUSES_SQL, quoteLiteral, type SchemaNames, TERMINAL_STATUSES_SQL } from './postgres.schema.js';

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
 */
export interface Statements {
  /** A new run, with its rows for the steps table; `WithoutSteps`: none to write (see createRunStatement). */
  createRun: string;
  createRunWithoutSteps: string;
  /**
   * `createRun` with `replace`: one statement (`replaceRun`) unless a writer of the old run races with it; then the
   * upsert (`replaceRunLocked`) and the steps and signals (`replaceChildren`) in one transaction.
   */
  replaceRun: string;
  replaceRunLocked: string;
  replaceChildren: string;
  getRun: string;
  claimRuns: string;
  claimRunsForWorkflows: string;
  claimRun: string;
  claimRunForWorkflows: string;
  renewLease: string;
  releaseLease: string;
  /** The checkpoint of one run (see {@link commitStatement}); `NoWait`: for a patch without `wait`. */
  commit: string;
  /** The common checkpoint's fast path (see {@link fastCommitStatement}). */
  commitFast: string;
  commitNoWait: string;
  /** Group commit: the checkpoints of several runs in one statement. */
  commitBatch: string;
  commitBatchNoWait: string;
  /** After a terminal commit that raced with a signal (see `stale_signals` of the commit statements). */
  dropStaleSignals: string;
  takeSignal: string;
  sendSignal: string;
  pause: string;
  resume: string;
  cancel: string;
  retry: string;
  purge: string;
  list(filter: { workflow: boolean; statuses: boolean; after: boolean }): string;
}

const ms = (expr: string) => `(extract(epoch FROM ${expr}) * 1000)::float8`;
const addMs = (base: string, param: string) => `(${base} + ${param}::float8 * interval '1 millisecond')`;
const fromMs = (expr: string) => `(timestamptz 'epoch' + ${expr} * interval '1 millisecond')`;
/** A wake-up time: the absolute `at` (epoch ms) as is when given, else `base` + `delay` ms (null when both are null). */
const dueExpr = (base: string, delay: string, at: string) => `COALESCE(${fromMs(at)}, ${addMs(base, delay)})`;

/**
 * Whether a signal committed between the statement's snapshot and its lock of the run (the sender bumps
 * `signal_seq` under the row lock): the row's `signal_seq` (`seq`, read under the lock) differs from the one the
 * snapshot sees. Such a signal is invisible to the statement, so its DELETE could not remove it.
 */
function staleSignals(n: SchemaNames, seq: string, runId: string): string {
  return `${seq} IS DISTINCT FROM (SELECT s0.signal_seq FROM ${n.runs} s0 WHERE s0.run_id = ${runId})`;
}

/** `pg_notify` of a store event on the store's channel. */
function notifyExpr(n: SchemaNames, type: string, runId: string): string {
  return `pg_notify(${quoteLiteral(n.channel)}, json_build_object('type', ${type}, 'runId', ${runId})::text)`;
}

/** The columns of a step row in the `steps` JSON parameter and in `runs.live_step` (see {@link stepRowsFrom}). */
const STEP_ROW_COLUMNS = 'i integer, name text, status text, attempts integer, output text, st float8, ft float8, error text';

/**
 * The step rows a statement writes to the steps table, as a record set `x` (for a LATERAL join): the rows of the
 * `steps` JSON array, plus the run's previous live step (`runs.live_step` of its locked row, `old`) when the patch
 * replaces the live step without writing that index itself, so that no entry is lost. `written`: the indexes of the
 * `steps` rows (the old live step's JSON is only parsed when it has to move).
 */
function stepRowsFrom(p: { steps: string; setLive: string; liveIndex: string; written: string }, old: { live: string; index: string }): string {
  // NOTE: the CASE, not only the WHERE, keeps the old live step's JSON from being parsed unless it moves: a damaged
  // one (see StoredRun.corrupt) must not fail a commit that does not touch it (e.g. the one failing the run).
  const moves = `(${p.setLive} AND ${old.index} IS NOT NULL AND ${old.index} IS DISTINCT FROM ${p.liveIndex}
        AND NOT (${old.index} = ANY (${p.written})))`;
  return `(
      SELECT * FROM json_to_recordset(${p.steps}) AS j(${STEP_ROW_COLUMNS})
      UNION ALL
      SELECT * FROM json_to_record(CASE WHEN ${moves} THEN ${old.live}::json END) AS o(${STEP_ROW_COLUMNS})
      WHERE ${moves}
    ) x`;
}

/** Upsert of step rows: `from` yields the step rows as `x` (see {@link STEP_ROW_COLUMNS}) and the run id `runIdExpr`. */
function upsertStepsSql(n: SchemaNames, from: string, runIdExpr: string): string {
  return `
    INSERT INTO ${n.steps} AS s (run_id, idx, name, status, attempts, output, started_at, finished_at, error)
    SELECT ${runIdExpr}, x.i, x.name, x.status, x.attempts, x.output, ${fromMs('x.st')}, ${fromMs('x.ft')}, x.error
    FROM ${from}
    ON CONFLICT (run_id, idx) DO UPDATE SET
      name = EXCLUDED.name, status = EXCLUDED.status, attempts = EXCLUDED.attempts, output = EXCLUDED.output,
      started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, error = EXCLUDED.error`;
}

/**
 * Parameters of a checkpoint, in `$n` order for `commit` (`commitNoWait` leaves out `wait` and `wait_ms`) and as
 * `p_<name>` keys of each object of `commitBatch`'s JSON array (plus `k`, the object's position).
 */
export const COMMIT_PARAMS = [
  ['run_id', 'text'],
  ['token', 'text'],
  ['status', 'text'], // null: unchanged
  ['state', 'text'], // null: unchanged
  ['set_step', 'boolean'],
  ['step', 'text'],
  ['set_output', 'boolean'],
  ['output', 'text'],
  ['set_error', 'boolean'],
  ['error', 'text'], // JSON text
  ['steps', 'json'], // array of step rows, or null
  ['set_due', 'boolean'],
  ['due', 'float8'], // ms from now; null: never (unless `due_at`)
  ['due_at', 'float8'], // absolute wake-up time (epoch ms), or null
  ['wait', 'text'], // signal name, or null
  ['wait_ms', 'float8'], // signal timeout ms, or null
  ['release', 'boolean'],
  ['clear_cancel', 'boolean'],
  ['lease_ms', 'float8'],
  ['set_live', 'boolean'], // the patch has steps: `live` replaces runs.live_step
  ['live', 'text'], // the trailing running step row (JSON), or null
  ['live_index', 'integer'], // its index, or null
  ['written', 'integer[]'], // the indexes of the rows in `steps`
] as const;

export type CommitParam = (typeof COMMIT_PARAMS)[number][0];
const WAIT_PARAMS: readonly CommitParam[] = ['wait', 'wait_ms'];

/** Position of each parameter in {@link COMMIT_PARAMS} (and in the values array the store builds). */
export const COMMIT_PARAM_INDEX = Object.fromEntries(COMMIT_PARAMS.map(([name], i) => [name, i])) as Record<CommitParam, number>;

/** The parameters for `commit` / `commitNoWait`, from the values of all {@link COMMIT_PARAMS} in order. */
export function commitArgs(values: readonly unknown[], wait: boolean): unknown[] {
  return wait ? [...values] : values.filter((_, i) => !WAIT_PARAMS.includes(COMMIT_PARAMS[i][0]));
}

/**
 * The fast path of the common checkpoint (no `wait`, at most one row for the steps table): a single UPDATE that
 * applies only when the run has no pending pause or cancel request and is not terminal (nor asked to become
 * `paused`), so that none of the pause/cancel rules can apply, and `term` / `rel` follow from the patch alone
 * (computed by {@link fastCommitArgs}). A lone UPDATE locks and fences on the token by itself (re-checked on the
 * newest row version if a control request commits first). It also applies only when the run's live step, if the
 * patch replaces it, is an index the patch writes (always so for the engine's checkpoints), so it never has to move
 * the old live step into the steps table. It returns no row when it did nothing (fenced, a pause/cancel pending,
 * terminal, another live step): the caller then sends `commitNoWait`, which decides.
 * Cheaper per checkpoint than `commitNoWait` (~0.05 ms): no row lock of its own, no CTE chain, and the step row
 * as plain parameters (no JSON record set). A terminal commit also deletes the run's queued signals (`dg`, skipped
 * by its one-time filter otherwise) and reports `stale_signals` (see {@link commitStatement}).
 *   $1 run_id, $2 token, $3 status|null, $4 state|null, $5 set step, $6 step, $7 set output, $8 output, $9 set error,
 *   $10 error, $11 set due, $12 due ms|null, $13 due at (epoch ms)|null, $14 term, $15 release, $16 lease ms,
 *   $17 set live, $18 live step (json|null), $19 its index, then the step row (all null: none): $20 index, $21 name,
 *   $22 status, $23 attempts, $24 output, $25 started ms, $26 finished ms, $27 error
 */
function fastCommitStatement(n: SchemaNames): string {
  return `
      WITH upd AS (
        UPDATE ${n.runs} r SET
          status = COALESCE($3::text, r.status),
          state = COALESCE($4::text, r.state),
          current_step = CASE WHEN $5::boolean THEN $6::text ELSE r.current_step END,
          output = CASE WHEN $7::boolean THEN $8::text ELSE r.output END,
          error = CASE WHEN $9::boolean THEN $10::jsonb ELSE r.error END,
          next_input = NULL,
          wait_signal = NULL,
          wait_until = NULL,
          resume_status = CASE WHEN $14::boolean THEN NULL ELSE r.resume_status END,
          due_at = CASE WHEN $14::boolean THEN NULL WHEN $11::boolean THEN ${dueExpr('now()', '$12', '$13::float8')} ELSE r.due_at END,
          lease_owner = CASE WHEN $15::boolean THEN NULL ELSE r.lease_owner END,
          lease_token = CASE WHEN $15::boolean THEN NULL ELSE r.lease_token END,
          lease_expires_at = CASE WHEN $15::boolean THEN NULL ELSE ${addMs('now()', '$16')} END,
          updated_at = now(),
          finished_at = CASE WHEN $14::boolean THEN now() ELSE r.finished_at END,
          live_step = CASE WHEN $17::boolean THEN $18::text ELSE r.live_step END,
          live_index = CASE WHEN $17::boolean THEN $19::integer ELSE r.live_index END
        WHERE r.run_id = $1::text AND r.lease_token = $2::text
          AND NOT r.pause_requested AND r.cancel_compensate IS NULL AND r.status NOT IN ${TERMINAL_STATUSES_SQL}
          AND $3::text IS DISTINCT FROM 'paused'
          AND (NOT $17::boolean OR r.live_index IS NULL OR r.live_index = $19::integer OR r.live_index = $20::integer)
        RETURNING r.run_id, r.signal_seq,
          CASE WHEN $14::boolean THEN 'finished'
               WHEN $15::boolean AND r.due_at IS NOT NULL AND r.due_at <= now() THEN 'ready' END AS evt
      ),
      st AS (${upsertStepsSql(
        n,
        `upd CROSS JOIN (SELECT $20::integer, $21::text, $22::text, $23::integer, $24::text, $25::float8, $26::float8, $27::text)
          AS x(i, name, status, attempts, output, st, ft, error)
        WHERE x.i IS NOT NULL`,
        'upd.run_id',
      )}),
      dg AS (DELETE FROM ${n.signals} g WHERE $14::boolean AND g.run_id = $1::text AND EXISTS (SELECT 1 FROM upd))
      SELECT upd.evt, CASE WHEN upd.evt IS NOT NULL THEN ${notifyExpr(n, 'upd.evt', 'upd.run_id')} END AS notified,
        CASE WHEN $14::boolean THEN ${staleSignals(n, 'upd.signal_seq', 'upd.run_id')} END AS stale_signals
      FROM upd`;
}

/** A step row as the statements write it: the `steps` JSON parameter's objects, `runs.live_step`. */
export interface StepRow {
  i: number;
  name: string;
  status: StoredStep['status'];
  attempts: number;
  output: string | null;
  st: number | null;
  ft: number | null;
  error: string | null;
}

/**
 * The parameters of `commitFast`, from the values of all {@link COMMIT_PARAMS} in order (without a wait) and the
 * patch's row for the steps table, if any.
 */
export function fastCommitArgs(values: readonly unknown[], row: StepRow | undefined): unknown[] {
  const at = (name: CommitParam) => values[COMMIT_PARAM_INDEX[name]];
  const status = at('status');
  const term = typeof status === 'string' && TERMINAL_STATUSES.includes(status as RunStatus);
  const release = at('release') === true || term;
  return [
    ...(['run_id', 'token', 'status', 'state', 'set_step', 'step', 'set_output', 'output', 'set_error', 'error', 'set_due', 'due', 'due_at'] as const).map(at),
    term,
    release,
    at('lease_ms'),
    at('set_live'),
    at('live'),
    at('live_index'),
    row?.i ?? null,
    row?.name ?? null,
    row?.status ?? null,
    row?.attempts ?? null,
    row?.output ?? null,
    row?.st ?? null,
    row?.ft ?? null,
    row?.error ?? null,
  ];
}

/**
 * The checkpoint: ONE statement applying rules 1–7 of RunPatch, for one run or (`batch`) for several runs at once.
 *
 * `cur` fences (token) and locks the run; `sig` pops the first queued signal for `wait`; c1..f compute the new row;
 * `upd` writes it, `st` upserts the step rows (only when `upd` did); the SELECT returns the flags and notifies.
 * `raced`: a signal committed after this statement's snapshot but before it locked the run (the sender bumps
 * `signal_seq` under the row lock) is invisible to `sig`; going to `waiting` then makes the run due now, so whoever
 * claims it takes the signal.
 *
 * Without `wait` the signal table is only touched by a terminal commit (no `snap`, no `sig`): the statement for the
 * common step checkpoint plans and runs about 0.1 ms faster.
 *
 * Rule 4: a terminal commit deletes the run's queued signals (`dg`). A signal that committed between the snapshot and
 * the lock is invisible to that DELETE: `stale_signals` is then true and the caller sends `dropStaleSignals`.
 *
 * Batch: `$1` is a JSON array of objects, one per commit, carrying the parameters as `p_<name>` keys and `k`, its
 * position. Every CTE is keyed by run_id: a fenced-out run simply has no `cur` row, so it returns no row and changes
 * nothing, as alone. Rows are locked in run_id order (no deadlock between batches). Returns one row per committed
 * run, with `k`. Rows are found by `= ANY (ARRAY(...))` and LATERAL ... LIMIT 1 so that the (generic) plan probes the
 * indexes whatever the table sizes (a join on json_to_recordset, estimated at 100 rows, would seq-scan tables of a
 * few thousand rows).
 */
export function commitStatement(n: SchemaNames, { batch, wait }: { batch: boolean; wait: boolean }): string {
  const used = COMMIT_PARAMS.filter(([name]) => wait || !WAIT_PARAMS.includes(name));
  /** A parameter as seen from CTE `at` (batch: a column carried along; single: `$n` with its type). */
  const P = (name: CommitParam, at: string): string => {
    if (batch) return `${at}.p_${name}`;
    const index = used.findIndex(([x]) => x === name);
    return `$${index + 1}::${used[index][1]}`;
  };
  const pColumns = used
    .map(([name, type]) => `p_${name} ${type}`)
    .join(', ');
  /** Parameters the UPDATE reads, carried through `f` in batch mode. */
  const carried = (['state', 'set_step', 'step', 'set_output', 'output', 'set_error', 'error', 'lease_ms', 'set_live', 'live', 'live_index'] as const)
    .map((name) => `c4.p_${name}`)
    .join(', ');

  const p = batch
    ? `p AS MATERIALIZED (SELECT * FROM json_to_recordset($1::json) AS x(k integer, ${pColumns})),`
    : '';
  const curFrom = batch
    ? `FROM p JOIN ${n.runs} r ON r.run_id = p.p_run_id AND r.lease_token = p.p_token
        WHERE r.run_id = ANY (ARRAY(SELECT p.p_run_id FROM p))
        ORDER BY r.run_id
        FOR NO KEY UPDATE OF r`
    : `FROM ${n.runs} r WHERE r.run_id = ${P('run_id', '')} AND r.lease_token = ${P('token', '')}
        FOR NO KEY UPDATE`;
  const signalCtes = !wait
    ? ''
    : batch
      ? `
      snap AS MATERIALIZED (
        SELECT r.run_id, r.signal_seq AS seq0 FROM ${n.runs} r WHERE r.run_id = ANY (ARRAY(SELECT p.p_run_id FROM p))
      ),
      sig AS (
        DELETE FROM ${n.signals} g WHERE g.id = ANY (ARRAY(
          SELECT x.id FROM p CROSS JOIN LATERAL (
            SELECT q.id FROM ${n.signals} q WHERE q.run_id = p.p_run_id AND q.name = p.p_wait ORDER BY q.id LIMIT 1
          ) x
          WHERE p.p_wait IS NOT NULL AND EXISTS (SELECT 1 FROM cur WHERE cur.run_id = p.p_run_id)
        )) RETURNING g.run_id, g.payload
      ),`
      : `
      snap AS MATERIALIZED (SELECT r.signal_seq AS seq0 FROM ${n.runs} r WHERE r.run_id = ${P('run_id', '')}),
      sig AS (
        DELETE FROM ${n.signals} g WHERE g.id = (
          SELECT q.id FROM ${n.signals} q
          WHERE q.run_id = ${P('run_id', '')} AND q.name = ${P('wait', '')} AND EXISTS (SELECT 1 FROM cur)
          ORDER BY q.id LIMIT 1
        ) RETURNING g.payload
      ),`;
  const consumed = !wait ? 'NULL::text' : batch ? 'sig.payload' : '(SELECT payload FROM sig)';
  const raced = !wait ? 'false' : batch ? 'cur.signal_seq IS DISTINCT FROM snap.seq0' : 'cur.signal_seq IS DISTINCT FROM (SELECT seq0 FROM snap)';
  const c1From = !batch
    ? 'FROM cur'
    : `FROM cur JOIN p ON p.p_run_id = cur.run_id${wait ? `
          LEFT JOIN snap ON snap.run_id = cur.run_id
          LEFT JOIN sig ON sig.run_id = cur.run_id` : ''}`;
  const waitParam = (at: string) => (wait ? P('wait', at) : 'NULL::text');
  const waitUntil = wait ? addMs('c2.ts', P('wait_ms', 'c2')) : 'NULL::timestamptz';

  return `
      WITH ${p}
      cur AS MATERIALIZED (
        SELECT r.run_id, r.status, r.due_at, r.pause_requested, r.cancel_compensate, r.resume_status, r.finished_at,
               r.signal_seq, r.live_step AS old_live, r.live_index AS old_live_index, now() AS ts
        ${curFrom}
      ),${signalCtes}
      c1 AS (
        SELECT cur.*${batch ? ', p.*' : ''}, ${consumed} AS consumed, ${raced} AS raced,
          COALESCE(${P('status', 'p')}, cur.status) AS status0,
          CASE WHEN ${P('set_due', 'p')} THEN ${dueExpr('cur.ts', P('due', 'p'), P('due_at', 'p'))} ELSE cur.due_at END AS due0
        ${c1From}
      ),
      c2 AS (
        SELECT c1.*,
          (${waitParam('c1')} IS NOT NULL AND c1.consumed IS NULL) AS waits,
          CASE WHEN ${waitParam('c1')} IS NULL THEN c1.status0 WHEN c1.consumed IS NOT NULL THEN 'running' ELSE 'waiting' END AS status1
        FROM c1
      ),
      c3 AS (
        SELECT c2.*,
          CASE WHEN c2.waits THEN ${waitParam('c2')} END AS new_wait_signal,
          CASE WHEN c2.waits THEN ${waitUntil} END AS new_wait_until,
          CASE WHEN c2.waits THEN (CASE WHEN c2.raced THEN c2.ts ELSE ${waitUntil} END) ELSE c2.due0 END AS due1,
          (${P('release', 'c2')} OR c2.waits) AS rel1,
          c2.status1 IN ${TERMINAL_STATUSES_SQL} AS term
        FROM c2
      ),
      c4 AS (
        SELECT c3.*,
          (NOT c3.term AND c3.pause_requested AND c3.cancel_compensate IS NULL AND c3.status1 <> 'paused') AS do_pause,
          CASE WHEN c3.term OR ${P('clear_cancel', 'c3')} THEN NULL ELSE c3.cancel_compensate END AS cancel_after
        FROM c3
      ),
      f AS (
        SELECT ${batch ? 'c4.k, ' : ''}c4.run_id, c4.ts, c4.consumed, c4.term, c4.do_pause, c4.new_wait_signal, c4.new_wait_until,
          c4.cancel_after, c4.signal_seq,${batch ? ` ${carried},` : ''}
          CASE WHEN c4.do_pause THEN 'paused' ELSE c4.status1 END AS status,
          CASE WHEN c4.term THEN NULL WHEN c4.do_pause THEN c4.status1 ELSE c4.resume_status END AS resume_status,
          CASE WHEN c4.term OR c4.do_pause THEN false ELSE c4.pause_requested END AS pause_requested,
          CASE WHEN c4.term THEN c4.ts ELSE c4.finished_at END AS finished_at,
          (c4.rel1 OR c4.term OR c4.do_pause) AS rel,
          CASE WHEN c4.term THEN NULL
               WHEN c4.cancel_after IS NOT NULL THEN c4.ts
               WHEN c4.do_pause AND (NOT c4.rel1 OR c4.due1 IS NULL) AND c4.status1 <> 'waiting' THEN c4.ts
               ELSE c4.due1 END AS due_at
        FROM c4
      ),
      upd AS (
        UPDATE ${n.runs} r SET
          status = f.status,
          state = COALESCE(${P('state', 'f')}, r.state),
          current_step = CASE WHEN ${P('set_step', 'f')} THEN ${P('step', 'f')} ELSE r.current_step END,
          output = CASE WHEN ${P('set_output', 'f')} THEN ${P('output', 'f')} ELSE r.output END,
          error = CASE WHEN ${P('set_error', 'f')} THEN ${P('error', 'f')}::jsonb ELSE r.error END,
          next_input = f.consumed,
          wait_signal = f.new_wait_signal,
          wait_until = f.new_wait_until,
          resume_status = f.resume_status,
          pause_requested = f.pause_requested,
          cancel_compensate = f.cancel_after,
          due_at = f.due_at,
          lease_owner = CASE WHEN f.rel THEN NULL ELSE r.lease_owner END,
          lease_token = CASE WHEN f.rel THEN NULL ELSE r.lease_token END,
          lease_expires_at = CASE WHEN f.rel THEN NULL ELSE ${addMs('f.ts', P('lease_ms', 'f'))} END,
          updated_at = f.ts,
          finished_at = f.finished_at,
          live_step = CASE WHEN ${P('set_live', 'f')} THEN ${P('live', 'f')} ELSE r.live_step END,
          live_index = CASE WHEN ${P('set_live', 'f')} THEN ${P('live_index', 'f')} ELSE r.live_index END
        FROM f WHERE r.run_id = f.run_id${batch ? ' AND r.run_id = ANY (ARRAY(SELECT f.run_id FROM f))' : ''}
        RETURNING r.run_id
      ),
      st AS (${
        batch
          ? upsertStepsSql(
              n,
              `upd JOIN p ON p.p_run_id = upd.run_id JOIN cur ON cur.run_id = upd.run_id
                CROSS JOIN LATERAL ${stepRowsFrom(
                  { steps: 'p.p_steps', setLive: 'p.p_set_live', liveIndex: 'p.p_live_index', written: 'p.p_written' },
                  { live: 'cur.old_live', index: 'cur.old_live_index' },
                )}`,
              'upd.run_id',
            )
          : upsertStepsSql(
              n,
              `upd CROSS JOIN cur CROSS JOIN LATERAL ${stepRowsFrom(
                { steps: P('steps', ''), setLive: P('set_live', ''), liveIndex: P('live_index', ''), written: P('written', '') },
                { live: 'cur.old_live', index: 'cur.old_live_index' },
              )}`,
              'upd.run_id',
            )
      }),
      dg AS (${
        batch
          ? `DELETE FROM ${n.signals} g WHERE g.run_id = ANY (ARRAY(SELECT f.run_id FROM f WHERE f.term))`
          : `DELETE FROM ${n.signals} g WHERE g.run_id = ${P('run_id', '')} AND EXISTS (SELECT 1 FROM f WHERE f.term)`
      }),
      e AS (
        SELECT f.*, CASE WHEN f.term THEN 'finished'
                         WHEN f.rel AND f.due_at IS NOT NULL AND f.due_at <= f.ts AND f.status <> 'paused' THEN 'ready'
                    END AS evt
        FROM f
      )
      SELECT ${batch ? 'e.k, ' : ''}e.do_pause AS paused, CASE WHEN NOT e.term THEN e.cancel_after END AS cancel, e.consumed, e.evt,
        CASE WHEN e.evt IS NOT NULL THEN ${notifyExpr(n, 'e.evt', 'e.run_id')} END AS notified,
        CASE WHEN e.term THEN ${staleSignals(n, 'e.signal_seq', 'e.run_id')} END AS stale_signals
      FROM e`;
}

export function buildStatements(n: SchemaNames): Statements {
  const notify = (type: string, runId: string) => notifyExpr(n, type, runId);

  const stepsOf = (runIdExpr: string) => `(
    SELECT json_agg(json_build_object(
      'name', s.name, 'status', s.status, 'attempts', s.attempts, 'output', s.output,
      'startedAt', ${ms('s.started_at')}, 'finishedAt', ${ms('s.finished_at')}, 'error', s.error
    ) ORDER BY s.idx)::text
    FROM ${n.steps} s WHERE s.run_id = ${runIdExpr})`;

  /** Columns of a run as `mapRun` reads them (without steps). */
  const runColumns = (r: string) => `
    ${r}.run_id, ${r}.workflow, ${r}.version, ${r}.status, ${r}.input, ${r}.output, ${r}.error::text AS error,
    ${r}.current_step, ${r}.state, ${r}.next_input, ${r}.wait_signal, ${ms(`${r}.wait_until`)} AS wait_until,
    ${r}.resume_status, ${r}.cancel_compensate, ${r}.pause_requested, ${ms(`${r}.due_at`)} AS due_at,
    ${r}.lease_owner, ${r}.lease_token, ${ms(`${r}.lease_expires_at`)} AS lease_expires_at,
    ${ms(`${r}.created_at`)} AS created_at, ${ms(`${r}.updated_at`)} AS updated_at, ${ms(`${r}.finished_at`)} AS finished_at,
    ${r}.live_step, ${r}.live_index, ${r}.generation`;

  /** Columns and values of a new run's row: $1 .. $13 of createRunStatement, `t.ts` its creation time. */
  const newRunInsert = `
        INSERT INTO ${n.runs} AS r (run_id, workflow, version, status, input, state, current_step, pause_requested, due_at,
                               lease_owner, lease_token, lease_expires_at, created_at, updated_at, live_step, live_index)
        SELECT $1::text, $2::text, $3::integer, $4::text, $5::text, $6::text, $7::text, false, t.ts,
               $8::text, $9::text, CASE WHEN $9::text IS NULL THEN NULL ELSE ${addMs('t.ts', '$10')} END, t.ts, t.ts, $12::text, $13::integer
        FROM t`;
  const newRunTime = `t AS (SELECT date_trunc('milliseconds', clock_timestamp()) AS ts)`;

  /**
   * $1 run_id, $2 workflow, $3 version, $4 status, $5 input, $6 state, $7 current_step, $8 lease owner,
   * $9 lease token, $10 lease ms, $11 notify 'ready' (bool), $12 live step (json), $13 its index, and `withSteps`:
   * $14 the rows for the steps table (json). Without: no step rows to write (the common start: only a live step).
   */
  const createRunStatement = (withSteps: boolean) => `
      WITH ${newRunTime},
      ins AS (${newRunInsert}
        ON CONFLICT (run_id) DO NOTHING
        RETURNING r.run_id, r.created_at, r.lease_expires_at, r.generation
      ),${
        withSteps
          ? `
      st AS (${upsertStepsSql(n, `ins CROSS JOIN json_to_recordset($14::json) AS x(${STEP_ROW_COLUMNS})`, 'ins.run_id')}),`
          : ''
      }
      e AS (SELECT ins.*, CASE WHEN $11::boolean THEN 'ready' END AS evt FROM ins)
      SELECT ${ms('e.created_at')} AS created_at, ${ms('e.lease_expires_at')} AS lease_expires_at, e.generation, e.evt,
        CASE WHEN e.evt IS NOT NULL THEN ${notify('e.evt', 'e.run_id')} END AS notified
      FROM e`;

  /** CTEs deleting the old run's steps (but those at `indexes`) and signals, and writing the new step rows. */
  const replaceChildrenCtes = (runId: string, rows: string, indexes: string, when: string) => `
      ds AS (DELETE FROM ${n.steps} s WHERE s.run_id = ${runId} AND NOT (s.idx = ANY (${indexes})) AND ${when}),
      dg AS (DELETE FROM ${n.signals} g WHERE g.run_id = ${runId} AND ${when}),
      st AS (${upsertStepsSql(n, `json_to_recordset(${rows}) AS x(${STEP_ROW_COLUMNS}) WHERE ${when}`, runId)})`;

  /**
   * `createRun` with `replace`: the run row takes the new run's values in place, an upsert, so that concurrent
   * replacements of one id queue on its row lock and each one finds the row its predecessor committed (`generation`
   * counts them). The old run's lease holder (a row was there: generation > 1) is told. $1 .. $13 as createRun.
   *
   * `single`: the whole replacement in one statement, the old run's steps and signals deleted and the new step rows
   * written too ($14 step rows (json), $15 their indexes). It applies only when the row it locks is the version its
   * snapshot saw (same `xmin`): otherwise a writer of the old run committed in between, whose rows the statement
   * cannot see, and it returns no row (changing nothing); the caller then sends `replaceRunLocked` (the upsert alone)
   * and `replaceChildren` in one transaction.
   */
  const replaceStatement = (single: boolean) => `
      WITH ${newRunTime},
      up AS (${newRunInsert}
        ON CONFLICT (run_id) DO UPDATE SET
          workflow = EXCLUDED.workflow, version = EXCLUDED.version, status = EXCLUDED.status, input = EXCLUDED.input,
          output = NULL, error = NULL, current_step = EXCLUDED.current_step, state = EXCLUDED.state, next_input = NULL,
          wait_signal = NULL, wait_until = NULL, resume_status = NULL, cancel_compensate = NULL, pause_requested = false,
          due_at = EXCLUDED.due_at, lease_owner = EXCLUDED.lease_owner, lease_token = EXCLUDED.lease_token,
          lease_expires_at = EXCLUDED.lease_expires_at, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
          finished_at = NULL, live_step = EXCLUDED.live_step, live_index = EXCLUDED.live_index,
          generation = r.generation + 1${
            single ? `
        WHERE r.xmin = (SELECT s0.xmin FROM ${n.runs} s0 WHERE s0.run_id = $1::text)` : ''
          }
        RETURNING r.run_id, r.created_at, r.lease_expires_at, r.generation
      ),${single ? `${replaceChildrenCtes('$1::text', '$14::json', '$15::integer[]', 'EXISTS (SELECT 1 FROM up)')},` : ''}
      e AS (SELECT up.*, CASE WHEN $11::boolean THEN 'ready' END AS evt FROM up)
      SELECT ${ms('e.created_at')} AS created_at, ${ms('e.lease_expires_at')} AS lease_expires_at, e.generation, e.evt,
        CASE WHEN e.generation > 1 THEN ${notify(`'control'`, 'e.run_id')} END AS notified_control,
        CASE WHEN e.evt IS NOT NULL THEN ${notify('e.evt', 'e.run_id')} END AS notified
      FROM e`;

  const claimable = (r: string) => `${r}.status IN ${CLAIMABLE_STATUSES_SQL} AND ${r}.due_at IS NOT NULL AND ${r}.due_at <= now()
      AND (${r}.lease_expires_at IS NULL OR ${r}.lease_expires_at <= now())`;

  /** Claim of the rows selected (and locked) by CTE `c`; `$1` owner, `$2` lease ms. */
  const claimTail = `,
    u AS (
      UPDATE ${n.runs} r SET
        lease_owner = $1::text,
        lease_token = gen_random_uuid()::text,
        lease_expires_at = ${addMs('now()', '$2')},
        status = CASE WHEN r.status IN ('pending', 'sleeping') THEN 'running' ELSE r.status END,
        updated_at = now()
      FROM c WHERE r.run_id = c.run_id
      RETURNING ${runColumns('r')}, c.prev_token
    )
    SELECT u.*, ${stepsOf('u.run_id')} AS steps FROM u ORDER BY u.due_at`;

  const claimSelect = (where: string, limit: string) => `
    WITH c AS (
      SELECT r.run_id, r.lease_token AS prev_token FROM ${n.runs} r
      WHERE ${claimable('r')} ${where}
      ORDER BY r.due_at ${limit}
      FOR NO KEY UPDATE SKIP LOCKED
    )${claimTail}`;

  /** Signal pop: the first queued signal `name` of the run locked by CTE `cur` (FIFO by id). */
  const popSignal = (nameParam: string) => `
    DELETE FROM ${n.signals} g WHERE g.id = (
      SELECT q.id FROM ${n.signals} q
      WHERE q.run_id = $1::text AND q.name = ${nameParam}::text AND EXISTS (SELECT 1 FROM cur)
      ORDER BY q.id LIMIT 1
    ) RETURNING g.payload`;

  /** A control request: `cur` locks the run, `d` decides the outcome, `upd` applies it when ok. */
  const control = (outcome: string, set: string, evt: string) => `
    WITH cur AS MATERIALIZED (
      SELECT r.run_id, r.status, r.pause_requested, r.cancel_compensate, r.resume_status,
        (r.lease_expires_at IS NOT NULL AND r.lease_expires_at > now()) AS live
      FROM ${n.runs} r WHERE r.run_id = $1::text
      FOR NO KEY UPDATE
    ),
    d AS MATERIALIZED (SELECT cur.*, ${outcome} AS outcome FROM cur),
    upd AS (
      UPDATE ${n.runs} r SET ${set}, updated_at = now()
      FROM d WHERE r.run_id = d.run_id AND d.outcome = 'ok'
      RETURNING r.run_id
    ),
    e AS (SELECT d.*, CASE WHEN d.outcome = 'ok' THEN ${evt} END AS evt FROM d)
    SELECT e.status, e.outcome, e.evt, CASE WHEN e.evt IS NOT NULL THEN ${notify('e.evt', 'e.run_id')} END AS notified
    FROM e`;

  return {
    createRun: createRunStatement(true),
    createRunWithoutSteps: createRunStatement(false),

    replaceRun: replaceStatement(true),
    replaceRunLocked: replaceStatement(false),

    // After replaceRunLocked, in its transaction (a statement of its own, so that its snapshot, taken once the run's
    // row was locked, sees every row a commit of the old run wrote): the old run's signals and steps go, the new
    // run's step rows are written (over the old rows of their indexes). $1 run_id, $2 step rows (json), $3 their indexes
    replaceChildren: `
      WITH ${replaceChildrenCtes('$1::text', '$2::json', '$3::integer[]', 'true')}
      SELECT 1 AS done`,

    // The queued signals of a run that has ended (a terminal run never gets new ones: sendSignal refuses it, under
    // the row lock), after a terminal commit reported stale_signals. $1 run_id
    dropStaleSignals: `
      DELETE FROM ${n.signals} g WHERE g.run_id = $1::text
        AND EXISTS (SELECT 1 FROM ${n.runs} r WHERE r.run_id = $1::text AND r.status IN ${TERMINAL_STATUSES_SQL})`,

    getRun: `SELECT ${runColumns('r')}, ${stepsOf('r.run_id')} AS steps FROM ${n.runs} r WHERE r.run_id = $1::text`,

    // $1 owner, $2 lease ms, $3 limit
    claimRuns: claimSelect('', 'LIMIT $3::integer'),
    // $1 owner, $2 lease ms, $3 limit, $4 workflows (text[])
    claimRunsForWorkflows: claimSelect('AND r.workflow = ANY($4::text[])', 'LIMIT $3::integer'),
    // $1 owner, $2 lease ms, $3 run_id
    claimRun: claimSelect('AND r.run_id = $3::text', ''),
    claimRunForWorkflows: claimSelect('AND r.run_id = $3::text AND r.workflow = ANY($4::text[])', ''),

    // $1 run_id, $2 token, $3 lease ms
    renewLease: `
      WITH u AS (
        UPDATE ${n.runs} r SET lease_expires_at = ${addMs('now()', '$3')}
        WHERE r.run_id = $1::text AND r.lease_token = $2::text
        RETURNING r.cancel_compensate, r.pause_requested
      )
      SELECT * FROM u`,

    // $1 run_id, $2 token
    releaseLease: `
      WITH u AS (
        UPDATE ${n.runs} r SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
          due_at = CASE WHEN r.status IN ('pending', 'running', 'compensating') THEN now() ELSE r.due_at END,
          updated_at = now()
        WHERE r.run_id = $1::text AND r.lease_token = $2::text
        RETURNING r.run_id
      )
      SELECT 'ready' AS evt, ${notify(`'ready'`, 'u.run_id')} AS notified FROM u`,

    commit: commitStatement(n, { batch: false, wait: true }),
    commitNoWait: commitStatement(n, { batch: false, wait: false }),
    commitFast: fastCommitStatement(n),
    commitBatch: commitStatement(n, { batch: true, wait: true }),
    commitBatchNoWait: commitStatement(n, { batch: true, wait: false }),
    // $1 run_id, $2 token, $3 signal name
    takeSignal: `
      WITH cur AS MATERIALIZED (
        SELECT r.run_id, r.wait_until, now() AS ts FROM ${n.runs} r
        WHERE r.run_id = $1::text AND r.lease_token = $2::text
        FOR NO KEY UPDATE
      ),
      sig AS (${popSignal('$3')}),
      upd AS (
        UPDATE ${n.runs} r SET status = 'running', next_input = sig.payload, wait_signal = NULL, wait_until = NULL,
          updated_at = cur.ts
        FROM cur, sig WHERE r.run_id = cur.run_id
        RETURNING r.run_id
      )
      SELECT (SELECT payload FROM sig) AS payload, (cur.wait_until IS NOT NULL AND cur.wait_until <= cur.ts) AS timed_out
      FROM cur`,

    // $1 run_id, $2 name, $3 payload
    sendSignal: `
      WITH cur AS MATERIALIZED (
        SELECT r.run_id, r.status, r.wait_signal FROM ${n.runs} r WHERE r.run_id = $1::text
        FOR NO KEY UPDATE
      ),
      ins AS (
        INSERT INTO ${n.signals} (run_id, name, payload)
        SELECT cur.run_id, $2::text, $3::text FROM cur WHERE cur.status NOT IN ${TERMINAL_STATUSES_SQL}
        RETURNING id
      ),
      upd AS (
        UPDATE ${n.runs} r SET signal_seq = r.signal_seq + 1,
          due_at = CASE WHEN cur.wait_signal = $2::text THEN now() ELSE r.due_at END
        FROM cur WHERE r.run_id = cur.run_id AND cur.status NOT IN ${TERMINAL_STATUSES_SQL}
        RETURNING r.run_id
      ),
      e AS (SELECT cur.*, CASE WHEN cur.status = 'waiting' AND cur.wait_signal = $2::text THEN 'ready' END AS evt FROM cur)
      SELECT e.status, e.evt, CASE WHEN e.evt IS NOT NULL THEN ${notify('e.evt', 'e.run_id')} END AS notified FROM e`,

    // $1 run_id
    pause: control(
      `CASE WHEN cur.status IN ${TERMINAL_STATUSES_SQL} THEN 'not-active'
            WHEN cur.status = 'paused' OR cur.pause_requested THEN 'noop' ELSE 'ok' END`,
      `pause_requested = CASE WHEN d.live THEN true ELSE r.pause_requested END,
       status = CASE WHEN d.live THEN r.status ELSE 'paused' END,
       resume_status = CASE WHEN d.live THEN r.resume_status ELSE r.status END,
       lease_owner = CASE WHEN d.live THEN r.lease_owner END,
       lease_token = CASE WHEN d.live THEN r.lease_token END,
       lease_expires_at = CASE WHEN d.live THEN r.lease_expires_at END,
       due_at = CASE WHEN NOT d.live AND r.status NOT IN ('waiting', 'sleeping') THEN now() ELSE r.due_at END`,
      `CASE WHEN d.live THEN 'control' END`,
    ),
    // $1 run_id
    resume: control(
      `CASE WHEN cur.status IN ${TERMINAL_STATUSES_SQL} THEN 'not-active'
            WHEN cur.status = 'paused' OR cur.pause_requested THEN 'ok' ELSE 'noop' END`,
      `status = CASE WHEN d.status = 'paused' THEN COALESCE(r.resume_status, 'pending') ELSE r.status END,
       resume_status = CASE WHEN d.status = 'paused' THEN NULL ELSE r.resume_status END,
       pause_requested = CASE WHEN d.status = 'paused' THEN r.pause_requested ELSE false END`,
      `CASE WHEN d.status = 'paused' THEN 'ready' END`,
    ),
    // $1 run_id, $2 compensate
    cancel: control(
      `CASE WHEN cur.status IN ('cancelled', 'compensating') OR cur.cancel_compensate IS NOT NULL THEN 'noop'
            WHEN cur.status IN ${TERMINAL_STATUSES_SQL} THEN 'not-active' ELSE 'ok' END`,
      `cancel_compensate = $2::boolean,
       pause_requested = false,
       status = CASE WHEN r.status = 'paused' THEN COALESCE(r.resume_status, 'pending') ELSE r.status END,
       resume_status = CASE WHEN r.status = 'paused' THEN NULL ELSE r.resume_status END,
       due_at = now()`,
      `CASE WHEN d.live THEN 'control' ELSE 'ready' END`,
    ),
    // $1 run_id
    retry: control(
      `CASE WHEN cur.status = 'failed' THEN 'ok' ELSE 'invalid-state' END`,
      `status = 'pending', error = NULL, finished_at = NULL, due_at = now()`,
      `'ready'`,
    ),

    // $1 statuses (text[]), $2 older than ms, $3 batch size
    purge: `
      WITH c AS (
        SELECT r.run_id FROM ${n.runs} r
        WHERE r.status = ANY($1::text[]) AND r.status IN ${TERMINAL_STATUSES_SQL}
          AND r.finished_at < now() - $2::float8 * interval '1 millisecond'
        LIMIT $3::integer
        FOR UPDATE SKIP LOCKED
      ),
      d AS (DELETE FROM ${n.runs} r WHERE r.run_id = ANY (ARRAY(SELECT c.run_id FROM c)) RETURNING 1),
      -- NOTE: no foreign keys (see the schema): the runs' steps and signals go here. Nothing writes them for a run
      -- that is terminal and row-locked, so this statement's snapshot sees them all.
      ds AS (DELETE FROM ${n.steps} s WHERE s.run_id = ANY (ARRAY(SELECT c.run_id FROM c))),
      dg AS (DELETE FROM ${n.signals} g WHERE g.run_id = ANY (ARRAY(SELECT c.run_id FROM c)))
      SELECT count(*)::integer AS deleted FROM d`,

    list({ workflow, statuses, after }) {
      const where: string[] = [];
      const params: string[] = [];
      const next = () => `$${params.push('x')}`;
      if (workflow) where.push(`r.workflow = ${next()}::text`);
      if (statuses) where.push(`r.status = ANY(${next()}::text[])`);
      if (after) {
        const at = next();
        const id = next();
        where.push(`(r.created_at, r.run_id) < (${fromMs(`${at}::float8`)}, ${id}::text)`);
      }
      const limit = next();
      return `SELECT ${runColumns('r')}, ${stepsOf('r.run_id')} AS steps FROM ${n.runs} r
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY r.created_at DESC, r.run_id DESC
        LIMIT ${limit}::integer`;
    },
  };
}
