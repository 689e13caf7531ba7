import { type RunStatus, TERMINAL_STATUSES } from '../run-state-machine.js';
import { ParamTable } from './postgres.params.js';
import { type SchemaNames, sqlList } from './postgres.schema.js';
import {
  addMs,
  appendEventsSql,
  dueExpr,
  notifyExpr,
  staleSignals,
  type StepRow,
  stepRowsFrom,
  trimEventsSql,
  upsertStepsSql,
} from './postgres.sql-fragments.js';

/**
 * Parameters of a checkpoint, by name: the `$n` of `commitEvents` (`commit` leaves out `events`, the `NoWait`
 * statements `wait` and `wait_ms`) and the `p_<name>` keys of each object of `commitBatch`'s JSON array (plus `k`,
 * the object's position).
 */
export const COMMIT_PARAMS = new ParamTable([
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
  ['keep_input', 'boolean'], // leave next_input as is
  ['mid_step', 'boolean'], // a write while a step runs: a pending pause is not applied
  ['events', 'text[]'], // history events to append (only in the statements for patches with events)
] as const);

/** Name of a checkpoint parameter. */
export type CommitParam = (typeof COMMIT_PARAMS)['specs'][number][0];

/** The values of a checkpoint's parameters, by name. */
export type CommitValues = Record<CommitParam, unknown>;

/** Which checkpoint statement: with a signal to wait for (`wait`), with history events to append (`events`). */
export interface CommitVariant {
  wait: boolean;
  events: boolean;
}

/** The parameters of each variant of the checkpoint statement (a statement without events has no `events`). */
const VARIANT_PARAMS = {
  wait: { events: COMMIT_PARAMS, plain: COMMIT_PARAMS.without('events') },
  noWait: { events: COMMIT_PARAMS.without('wait', 'wait_ms'), plain: COMMIT_PARAMS.without('wait', 'wait_ms', 'events') },
};

/** The parameters of a checkpoint statement variant. */
function variantParams({ wait, events }: CommitVariant): ParamTable<CommitParam> {
  const byWait = wait ? VARIANT_PARAMS.wait : VARIANT_PARAMS.noWait;
  return (events ? byWait.events : byWait.plain) as ParamTable<CommitParam>;
}

/** The variant a checkpoint needs: `wait` when it waits for a signal, `events` when it appends history events. */
export function commitVariant(values: CommitValues): CommitVariant {
  return { wait: values.wait !== null, events: values.events !== null };
}

/** The parameters for `commit` & co. (see {@link commitVariant}): the checkpoint's values with its step rows as JSON text. */
export function commitArgs(values: CommitValues, variant: CommitVariant, steps: string | null): unknown[] {
  return variantParams(variant).valuesWith<'steps'>(values as Record<Exclude<CommitParam, 'steps'>, unknown>, { steps });
}

/** The names of the parameters of a variant, for the `p_<name>` keys of a batch's JSON objects. */
export function commitParamNames(variant: CommitVariant): readonly CommitParam[] {
  return variantParams(variant).names;
}

/**
 * Parameters of `commitFast`: those of the checkpoint it reads, `term` and `rel` (computed by {@link fastCommitArgs}),
 * and the patch's row for the steps table as plain parameters (all null: none).
 */
const FAST_COMMIT_EVENTS_PARAMS = new ParamTable([
  ...COMMIT_PARAMS.only('run_id', 'token', 'status', 'state', 'set_step', 'step', 'set_output', 'output', 'set_error', 'error', 'set_due', 'due', 'due_at').specs,
  ['term', 'boolean'], // the patch ends the run
  ['rel', 'boolean'], // the lease is released (`release` or `term`)
  ...COMMIT_PARAMS.only('lease_ms', 'set_live', 'live', 'live_index', 'keep_input', 'events').specs,
  ['row_i', 'integer'],
  ['row_name', 'text'],
  ['row_status', 'text'],
  ['row_attempts', 'integer'],
  ['row_output', 'text'],
  ['row_st', 'float8'],
  ['row_ft', 'float8'],
  ['row_error', 'text'],
  ['row_hb', 'float8'],
  ['row_hd', 'text'],
] as const);

/** `commitFast` for a patch without events. */
const FAST_COMMIT_PARAMS = FAST_COMMIT_EVENTS_PARAMS.without('events');

type FastCommitParam = (typeof FAST_COMMIT_EVENTS_PARAMS)['specs'][number][0];
/** The parameters of `commitFast` that are not the checkpoint's own. */
type FastOnlyParam = Exclude<FastCommitParam, CommitParam>;

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
 * by its one-time filter otherwise) and reports `stale_signals` (see {@link commitStatement}). Parameters:
 * {@link FAST_COMMIT_PARAMS}.
 *
 * `events` (`commitFastEvents`, for a patch with history events): the UPDATE also adds their number to `event_seq`,
 * `ea` inserts them (numbered up to the new `event_seq`) and `et` trims the history to RUN_HISTORY_LIMIT. Without
 * events none of this is rendered: a checkpoint without events costs what it did before histories.
 */
function fastCommitStatement(n: SchemaNames, { events }: { events: boolean }): string {
  const terminal = sqlList(TERMINAL_STATUSES);
  const params = events ? FAST_COMMIT_EVENTS_PARAMS : FAST_COMMIT_PARAMS;
  const F = (name: FastCommitParam) => (params as ParamTable<FastCommitParam>).ref(name);
  return `
      WITH upd AS (
        UPDATE ${n.runs} r SET
          status = COALESCE(${F('status')}, r.status),
          state = COALESCE(${F('state')}, r.state),
          current_step = CASE WHEN ${F('set_step')} THEN ${F('step')} ELSE r.current_step END,
          output = CASE WHEN ${F('set_output')} THEN ${F('output')} ELSE r.output END,
          error = CASE WHEN ${F('set_error')} THEN ${F('error')}::jsonb ELSE r.error END,
          next_input = CASE WHEN ${F('keep_input')} THEN r.next_input END,
          wait_signal = NULL,
          wait_until = NULL,
          resume_status = CASE WHEN ${F('term')} THEN NULL ELSE r.resume_status END,
          due_at = CASE WHEN ${F('term')} THEN NULL WHEN ${F('set_due')} THEN ${dueExpr('now()', F('due'), F('due_at'))} ELSE r.due_at END,
          lease_owner = CASE WHEN ${F('rel')} THEN NULL ELSE r.lease_owner END,
          lease_token = CASE WHEN ${F('rel')} THEN NULL ELSE r.lease_token END,
          lease_expires_at = CASE WHEN ${F('rel')} THEN NULL ELSE ${addMs('now()', F('lease_ms'))} END,
          updated_at = now(),
          finished_at = CASE WHEN ${F('term')} THEN now() ELSE r.finished_at END,
          live_step = CASE WHEN ${F('set_live')} THEN ${F('live')} ELSE r.live_step END,
          live_index = CASE WHEN ${F('set_live')} THEN ${F('live_index')} ELSE r.live_index END${
            events ? `,
          event_seq = r.event_seq + cardinality(${F('events')})` : ''
          }
        WHERE r.run_id = ${F('run_id')} AND r.lease_token = ${F('token')}
          AND NOT r.pause_requested AND r.cancel_compensate IS NULL AND r.status NOT IN ${terminal}
          AND ${F('status')} IS DISTINCT FROM 'paused'
          AND (NOT ${F('set_live')} OR r.live_index IS NULL OR r.live_index = ${F('live_index')} OR r.live_index = ${F('row_i')})
        RETURNING r.run_id, r.signal_seq,${events ? ' r.event_seq,' : ''}
          CASE WHEN ${F('term')} THEN 'finished'
               WHEN ${F('rel')} AND r.due_at IS NOT NULL AND r.due_at <= now() THEN 'ready' END AS evt
      ),
      st AS (${upsertStepsSql(
        n,
        `upd CROSS JOIN (SELECT ${F('row_i')}, ${F('row_name')}, ${F('row_status')}, ${F('row_attempts')}, ${F('row_output')}, ${F('row_st')}, ${F('row_ft')}, ${F('row_error')}, ${F('row_hb')}, ${F('row_hd')})
          AS x(i, name, status, attempts, output, st, ft, error, hb, hd)
        WHERE x.i IS NOT NULL`,
        'upd.run_id',
      )}),${
        events
          ? `
      ea AS (${appendEventsSql(n, { from: 'upd', runId: 'upd.run_id', lastSeq: 'upd.event_seq', bodies: F('events') })}),
      et AS (${trimEventsSql(n, { from: 'upd', runId: 'upd.run_id', lastSeq: 'upd.event_seq' })}),`
          : ''
      }
      dg AS (DELETE FROM ${n.signals} g WHERE ${F('term')} AND g.run_id = ${F('run_id')} AND EXISTS (SELECT 1 FROM upd))
      SELECT upd.evt, CASE WHEN upd.evt IS NOT NULL THEN ${notifyExpr(n, 'upd.evt', 'upd.run_id')} END AS notified,
        CASE WHEN ${F('term')} THEN ${staleSignals(n, 'upd.signal_seq', 'upd.run_id')} END AS stale_signals${
          events ? ', upd.event_seq AS last_event_seq' : ''
        }
      FROM upd`;
}


/**
 * The parameters of `commitFast`, from the values of the checkpoint's parameters (without a wait) and the patch's
 * row for the steps table, if any.
 */
export function fastCommitArgs(values: CommitValues, row: StepRow | undefined): unknown[] {
  const status = values.status;
  const term = typeof status === 'string' && TERMINAL_STATUSES.includes(status as RunStatus);
  const params = (values.events !== null ? FAST_COMMIT_EVENTS_PARAMS : FAST_COMMIT_PARAMS) as ParamTable<FastCommitParam>;
  return params.valuesWith<FastOnlyParam>(values, {
    term,
    rel: values.release === true || term,
    row_i: row?.i ?? null,
    row_name: row?.name ?? null,
    row_status: row?.status ?? null,
    row_attempts: row?.attempts ?? null,
    row_output: row?.output ?? null,
    row_st: row?.st ?? null,
    row_ft: row?.ft ?? null,
    row_error: row?.error ?? null,
    row_hb: row?.hb ?? null,
    row_hd: row?.hd ?? null,
  });
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
 *
 * `events` (the `…Events` statements, for patches with history events): `cur` reads the run's `event_seq` (under the
 * lock), `f` computes the new one (`last_event_seq`, null without events: in a batch, commits without events have
 * `p_events` null), `upd` writes it, `ea` appends the events (only when `upd` did: it joins `upd`) and `et` trims the
 * history to RUN_HISTORY_LIMIT. Without `events` none of this is rendered.
 */
export function commitStatement(n: SchemaNames, { batch, wait, events }: { batch: boolean } & CommitVariant): string {
  const terminal = sqlList(TERMINAL_STATUSES);
  const params = variantParams({ wait, events });
  /** A parameter as seen from CTE `at` (batch: a column carried along; single: `$n` with its type). */
  const P = (name: CommitParam, at: string): string => (batch ? `${at}.p_${name}` : params.ref(name));
  const pColumns = params.specs
    .map(([name, type]) => `p_${name} ${type}`)
    .join(', ');
  /** Parameters the UPDATE reads, carried through `f` in batch mode. */
  const carried = (
    ['state', 'set_step', 'step', 'set_output', 'output', 'set_error', 'error', 'lease_ms', 'set_live', 'live', 'live_index', 'keep_input'] as const
  )
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
               r.signal_seq, r.live_step AS old_live, r.live_index AS old_live_index,${events ? ' r.event_seq AS old_event_seq,' : ''} now() AS ts
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
          c2.status1 IN ${terminal} AS term
        FROM c2
      ),
      c4 AS (
        SELECT c3.*,
          (NOT c3.term AND c3.pause_requested AND c3.cancel_compensate IS NULL AND c3.status1 <> 'paused'
            AND NOT ${P('mid_step', 'c3')}) AS do_pause,
          CASE WHEN c3.term OR ${P('clear_cancel', 'c3')} THEN NULL ELSE c3.cancel_compensate END AS cancel_after
        FROM c3
      ),
      f AS (
        SELECT ${batch ? 'c4.k, ' : ''}c4.run_id, c4.ts, c4.consumed, c4.term, c4.do_pause, c4.new_wait_signal, c4.new_wait_until,
          c4.cancel_after, c4.signal_seq,${batch ? ` ${carried},` : ''}${
            events
              ? `
          CASE WHEN cardinality(${P('events', 'c4')}) > 0 THEN c4.old_event_seq + cardinality(${P('events', 'c4')}) END AS last_event_seq,`
              : ''
          }
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
          next_input = COALESCE(f.consumed, CASE WHEN ${P('keep_input', 'f')} THEN r.next_input END),
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
          live_index = CASE WHEN ${P('set_live', 'f')} THEN ${P('live_index', 'f')} ELSE r.live_index END${
            events ? `,
          event_seq = COALESCE(f.last_event_seq, r.event_seq)` : ''
          }
        FROM f WHERE r.run_id = f.run_id${batch ? ' AND r.run_id = ANY (ARRAY(SELECT f.run_id FROM f))' : ''}
        RETURNING r.run_id${events ? ', f.last_event_seq' : ''}
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
      }),${
        events
          ? `
      ea AS (${appendEventsSql(n, {
        from: batch ? 'upd JOIN p ON p.p_run_id = upd.run_id' : 'upd',
        runId: 'upd.run_id',
        lastSeq: 'upd.last_event_seq',
        bodies: P('events', 'p'),
      })}),
      et AS (${trimEventsSql(n, { from: 'upd', runId: 'upd.run_id', lastSeq: 'upd.last_event_seq' })}),`
          : ''
      }
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
        CASE WHEN e.term THEN ${staleSignals(n, 'e.signal_seq', 'e.run_id')} END AS stale_signals${
          events ? ', e.last_event_seq' : ''
        }
      FROM e`;
}

/** The checkpoint statements (see `Statements`). */
export function commitStatements(n: SchemaNames) {
  return {
    commit: commitStatement(n, { batch: false, wait: true, events: false }),
    commitNoWait: commitStatement(n, { batch: false, wait: false, events: false }),
    commitFast: fastCommitStatement(n, { events: false }),
    commitBatch: commitStatement(n, { batch: true, wait: true, events: false }),
    commitBatchNoWait: commitStatement(n, { batch: true, wait: false, events: false }),
    // The same for patches with history events (see commitStatement's `events`).
    commitEvents: commitStatement(n, { batch: false, wait: true, events: true }),
    commitNoWaitEvents: commitStatement(n, { batch: false, wait: false, events: true }),
    commitFastEvents: fastCommitStatement(n, { events: true }),
    commitBatchEvents: commitStatement(n, { batch: true, wait: true, events: true }),
    commitBatchNoWaitEvents: commitStatement(n, { batch: true, wait: false, events: true }),
    // The queued signals of a run that has ended (a terminal run never gets new ones: sendSignal refuses it, under
    // the row lock), after a terminal commit reported stale_signals. $1 run_id
    dropStaleSignals: `
      DELETE FROM ${n.signals} g WHERE g.run_id = $1::text
        AND EXISTS (SELECT 1 FROM ${n.runs} r WHERE r.run_id = $1::text AND r.status IN ${sqlList(TERMINAL_STATUSES)})`,
  };
}
