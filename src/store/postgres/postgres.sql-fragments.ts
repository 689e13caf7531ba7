import { RUN_HISTORY_LIMIT, type StoredStep } from '../workflow-store.interface.js';
import { quoteLiteral, type SchemaNames } from './postgres.schema.js';

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
    ${r}.children_failed, ${r}.children_wait_ended_at_least, ${r}.children_fail_fast`;
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
