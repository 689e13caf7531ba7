import { CLAIMABLE_STATUSES } from '../run-state-machine.js';
import { RUN_HISTORY_LIMIT, type StoredStep } from '../workflow-store.interface.js';
import { quoteLiteral, type SchemaNames, sqlList } from './postgres.schema.js';

/**
 * Pieces of SQL text the statements share (times as epoch milliseconds, events, step rows, the columns of a run).
 * Only configuration-derived names and constants go into the text; values are always parameters.
 */

/** An instant read as epoch milliseconds (float8). */
export const ms = (expr: string) => `(extract(epoch FROM ${expr}) * 1000)::float8`;
/** `base` plus `param` milliseconds. */
export const addMs = (base: string, param: string) => `(${base} + ${param}::float8 * interval '1 millisecond')`;
/** The instant of an epoch-milliseconds expression. */
export const fromMs = (expr: string) => `(timestamptz 'epoch' + ${expr} * interval '1 millisecond')`;
/** A wake-up time: the absolute `at` (epoch ms) as is when given, else `base` + `delay` ms (null when both are null). */
export const dueExpr = (base: string, delay: string, at: string) => `COALESCE(${fromMs(at)}, ${addMs(base, delay)})`;

/**
 * Whether a signal committed between the statement's snapshot and its lock of the run (the sender bumps
 * `signal_seq` under the row lock): the row's `signal_seq` (`seq`, read under the lock) differs from the one the
 * snapshot sees. Such a signal is invisible to the statement, so its DELETE could not remove it.
 */
export function staleSignals(n: SchemaNames, seq: string, runId: string): string {
  return `${seq} IS DISTINCT FROM (SELECT s0.signal_seq FROM ${n.runs} s0 WHERE s0.run_id = ${runId})`;
}

/** `pg_notify` of a store event on the store's channel. */
export function notifyExpr(n: SchemaNames, type: string, runId: string): string {
  return `pg_notify(${quoteLiteral(n.channel)}, json_build_object('type', ${type}, 'runId', ${runId})::text)`;
}

/** The columns of a step row in the `steps` JSON parameter and in `runs.live_step` (see {@link stepRowsFrom}). */
export const STEP_ROW_COLUMNS =
  'i integer, name text, status text, attempts integer, output text, st float8, ft float8, error text, hb float8, hd text';

/**
 * The step rows a statement writes to the steps table, as a record set `x` (for a LATERAL join): the rows of the
 * `steps` JSON array, plus the run's previous live step (`runs.live_step` of its locked row, `old`) when the patch
 * replaces the live step without writing that index itself, so that no entry is lost. `written`: the indexes of the
 * `steps` rows (the old live step's JSON is only parsed when it has to move).
 */
export function stepRowsFrom(p: { steps: string; setLive: string; liveIndex: string; written: string }, old: { live: string; index: string }): string {
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
export function upsertStepsSql(n: SchemaNames, from: string, runIdExpr: string): string {
  return `
    INSERT INTO ${n.steps} AS s (run_id, idx, name, status, attempts, output, started_at, finished_at, error, heartbeat_at, heartbeat)
    SELECT ${runIdExpr}, x.i, x.name, x.status, x.attempts, x.output, ${fromMs('x.st')}, ${fromMs('x.ft')}, x.error, ${fromMs('x.hb')}, x.hd
    FROM ${from}
    ON CONFLICT (run_id, idx) DO UPDATE SET
      name = EXCLUDED.name, status = EXCLUDED.status, attempts = EXCLUDED.attempts, output = EXCLUDED.output,
      started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, error = EXCLUDED.error,
      heartbeat_at = EXCLUDED.heartbeat_at, heartbeat = EXCLUDED.heartbeat`;
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
  /** The latest heartbeat's time (epoch ms) and details. */
  hb: number | null;
  hd: string | null;
}

/** The steps of a run as one JSON array text (ordered by index; the live step is not among them), as `mapRun` reads them. */
export function stepsOf(n: SchemaNames, runIdExpr: string): string {
  return `(
    SELECT json_agg(json_build_object(
      'name', s.name, 'status', s.status, 'attempts', s.attempts, 'output', s.output,
      'startedAt', ${ms('s.started_at')}, 'finishedAt', ${ms('s.finished_at')}, 'error', s.error,
      'heartbeatAt', ${ms('s.heartbeat_at')}, 'heartbeat', s.heartbeat
    ) ORDER BY s.idx)::text
    FROM ${n.steps} s WHERE s.run_id = ${runIdExpr})`;
}

/** Columns of a run as `mapRun` reads them (without steps), from the runs row `r`. */
export function runColumns(r: string): string {
  return `
    ${r}.run_id, ${r}.workflow, ${r}.version, ${r}.status, ${r}.input, ${r}.output, ${r}.error::text AS error,
    ${r}.current_step, ${r}.state, ${r}.next_input, ${r}.next_input_signal, array_to_json(${r}.wait_signals)::text AS wait_signals,
    ${ms(`${r}.wait_until`)} AS wait_until,
    ${r}.resume_status, ${r}.cancel_compensate, ${r}.pause_requested, ${ms(`${r}.due_at`)} AS due_at,
    ${r}.lease_owner, ${r}.lease_token, ${ms(`${r}.lease_expires_at`)} AS lease_expires_at,
    ${ms(`${r}.created_at`)} AS created_at, ${ms(`${r}.updated_at`)} AS updated_at, ${ms(`${r}.finished_at`)} AS finished_at,
    ${r}.live_step, ${r}.live_index, ${r}.generation, ${r}.pipeline, ${r}.parent_run_id, ${r}.children_ended,
    ${r}.children_failed, ${r}.children_wait_ended_at_least, ${r}.children_fail_fast,
    ${r}.priority, ${r}.conc_key, ${r}.conc_limit, ${r}.conc_scope, ${r}.slot_held, ${r}.rate_key, ${r}.rate_limit, ${r}.rate_per_ms`;
}

/**
 * Whether the runs row `r` is in the claim index: the index's predicate (`claimIndex` in postgres.schema.ts), as the
 * planner must find it in a statement to use that index.
 */
export const inClaimIndex = (r: string) => `${r}.status IN ${sqlList(CLAIMABLE_STATUSES)} AND ${r}.due_at IS NOT NULL`;

/** Whether the runs row `r` is claimable now (the port's definition; the claim index's predicate leads it). */
export const claimable = (r: string) => `${inClaimIndex(r)} AND ${r}.due_at <= now()
      AND (${r}.lease_expires_at IS NULL OR ${r}.lease_expires_at <= now())`;

// ---------------------------------------------------------------------------------------------------------------
// Flow control (rules F1–F3 of `claimRuns`). A run's counters live in `flow_keys` (see the schema): its concurrency
// key's under `'c:' || conc_key` (`held`), its rate key's under `'r:' || rate_key` (`begins`, oldest first).
// ---------------------------------------------------------------------------------------------------------------

/** The `flow_keys` key of a concurrency key (null for null). */
export const concKey = (expr: string) => `('c:' || ${expr})`;
/** The `flow_keys` key of a rate key (null for null). */
export const rateKey = (expr: string) => `('r:' || ${expr})`;

/** `at` minus `perMs` milliseconds: where a rate window that ends at `at` starts. */
const windowStart = (at: string, perMs: string) => `(${at} - ${perMs}::float8 * interval '1 millisecond')`;

/**
 * Rule F3: whether the window of `begins` (ascending) is full at `at`: `limit` of them are later than `at - perMs` (the
 * `limit`-th newest is enough to look at).
 */
export function rateFull(begins: string, limit: string, perMs: string, at = 'now()'): string {
  return `(${limit} <= 0 OR (cardinality(${begins}) >= ${limit}
        AND (${begins})[cardinality(${begins}) - ${limit} + 1] > ${windowStart(at, perMs)}))`;
}

/** Rule F3: how many of `begins` fall in the window of `perMs` that ends at `at`. */
export function recentBegins(begins: string, perMs: string, at = 'now()'): string {
  return `(SELECT count(*)::integer FROM unnest(${begins}) AS b(bt) WHERE b.bt > ${windowStart(at, perMs)})`;
}

/**
 * Rule F3: `begins` after `count` more begins at `at`: the ones still in the window of `perMs`, then the new ones,
 * the newest `limit` of them, oldest first.
 */
export function pushBegins(begins: string, count: string, limit: string, perMs: string, at = 'now()'): string {
  return `ARRAY(
          SELECT z.bt FROM (
            SELECT y.bt FROM (
              SELECT b.bt FROM unnest(${begins}) AS b(bt) WHERE b.bt > ${windowStart(at, perMs)}
              UNION ALL SELECT ${at} FROM generate_series(1, ${count})
            ) y(bt) ORDER BY y.bt DESC LIMIT GREATEST(${limit}, 1)
          ) z ORDER BY z.bt)`;
}

/** Whether the runs row `r` has no step entry (rule F3: its next claim is its begin). */
export function noSteps(n: SchemaNames, r: string): string {
  return `(${r}.live_step IS NULL AND ${stepRow(n, r)} IS NULL)`;
}

/**
 * A step row of the runs row `r` (null: none). NOTE: a scalar subquery with LIMIT, not EXISTS: the planner may turn
 * an EXISTS into a hashed subplan, which reads the whole steps table once per statement.
 */
function stepRow(n: SchemaNames, r: string): string {
  return `(SELECT s.idx FROM ${n.steps} s WHERE s.run_id = ${r}.run_id LIMIT 1)`;
}

/** Rule F2, as the statement's snapshot has it: every slot of the concurrency key of the runs row `r` is held. */
export function concFull(n: SchemaNames, r: string): string {
  return `EXISTS (SELECT 1 FROM ${n.flowKeys} fs WHERE fs.key = ${concKey(`${r}.conc_key`)} AND fs.held >= ${r}.conc_limit)`;
}

/** Rule F3, as the statement's snapshot has it: the window of the rate key of the runs row `r` is full. */
export function rateKeyFull(n: SchemaNames, r: string): string {
  return `EXISTS (SELECT 1 FROM ${n.flowKeys} fs WHERE fs.key = ${rateKey(`${r}.rate_key`)}
        AND ${rateFull('fs.begins', `${r}.rate_limit`, `${r}.rate_per_ms`)})`;
}

/**
 * Rules F1–F3 in a claim's candidate scan: whether the runs row `r` may be claimed as far as the statement's snapshot
 * of the counters tells (so that runs passed over never fill the LIMIT: no head-of-line blocking, F4). Plain runs
 * pass on the first, null tests; the counters are read only for runs with a key.
 */
export function notPassedOver(n: SchemaNames, r: string): string {
  return `(${r}.conc_key IS NULL OR ${r}.slot_held OR ${r}.cancel_compensate IS NOT NULL OR NOT ${concFull(n, r)})
        AND (${r}.rate_key IS NULL OR ${r}.cancel_compensate IS NOT NULL OR ${r}.status <> 'pending' OR ${r}.live_step IS NOT NULL
          OR NOT ${rateKeyFull(n, r)} OR ${stepRow(n, r)} IS NOT NULL)`;
}

/**
 * `StoredRun.blockedBy` of the runs row `r` (reads only): claimable now, no cancel pending, and its concurrency key's
 * slots all held while it holds none (`concurrency`), else about to begin with its rate key's window full
 * (`rate-limit`). Null for every run without a key.
 */
export function blockedBy(n: SchemaNames, r: string): string {
  return `CASE WHEN (${r}.conc_key IS NOT NULL OR ${r}.rate_key IS NOT NULL) AND ${r}.cancel_compensate IS NULL AND ${claimable(r)} THEN
        CASE WHEN ${r}.conc_key IS NOT NULL AND NOT ${r}.slot_held AND ${concFull(n, r)} THEN 'concurrency'
             WHEN ${r}.rate_key IS NOT NULL AND ${r}.status = 'pending' AND ${noSteps(n, r)} AND ${rateKeyFull(n, r)} THEN 'rate-limit'
        END
      END`;
}

/**
 * Rule F2: the UPDATE giving back one slot of the `flow_keys` key that the scalar query `key` returns (none: null),
 * never below 0. One key per statement: a single row lock, so it cannot deadlock with the claims (which lock keys in
 * key order).
 */
export function freeSlotSql(n: SchemaNames, key: string): string {
  return `UPDATE ${n.flowKeys} fk SET held = GREATEST(fk.held - 1, 0) WHERE fk.key = (${key})`;
}

/**
 * A history append: the INSERT of the events `bodies` (a text[] expression; null: none) of each run that `from` yields
 * (a FROM item giving the run id `runId` and `lastSeq`, the run's `event_seq` after the append), numbered
 * `lastSeq - n + 1 … lastSeq` in order. Only the newest RUN_HISTORY_LIMIT of one append are inserted (older ones
 * would be trimmed at once, and the trim cannot see rows inserted by its own statement). `when`: a further condition;
 * `overwrite`: over the rows of the same seq (a replaced run's, which the same statement deletes otherwise).
 */
export function appendEventsSql(
  n: SchemaNames,
  p: { from: string; runId: string; lastSeq: string; bodies: string; when?: string; overwrite?: boolean },
): string {
  return `
    INSERT INTO ${n.events} (run_id, seq, body)
    SELECT ${p.runId}, ${p.lastSeq} - cardinality(${p.bodies}) + b.ord, b.body
    FROM ${p.from} CROSS JOIN LATERAL unnest(${p.bodies}) WITH ORDINALITY AS b(body, ord)
    WHERE b.ord > cardinality(${p.bodies}) - ${RUN_HISTORY_LIMIT}${p.when ? ` AND ${p.when}` : ''}${
      p.overwrite ? `
    ON CONFLICT (run_id, seq) DO UPDATE SET body = EXCLUDED.body` : ''
    }`;
}

/**
 * The trim of the histories that an append took past RUN_HISTORY_LIMIT: `from` yields the runs (`runId`) and their
 * `event_seq` after it (`lastSeq`); `when`, a condition on them (e.g. that the run had events appended). `seq` is
 * contiguous, so that is `seq <= lastSeq - RUN_HISTORY_LIMIT`; a run with fewer events is not even probed.
 */
export function trimEventsSql(n: SchemaNames, p: { from: string; runId: string; lastSeq: string; when?: string }): string {
  return `
    DELETE FROM ${n.events} h USING ${p.from}
    WHERE h.run_id = ${p.runId} AND ${p.lastSeq} > ${RUN_HISTORY_LIMIT} AND h.seq <= ${p.lastSeq} - ${RUN_HISTORY_LIMIT}${
      p.when ? ` AND ${p.when}` : ''
    }`;
}
