import { type RunStatus, TERMINAL_STATUSES } from '../run-state-machine.js';
import { ParamTable } from './postgres.params.js';
import { type SchemaNames, sqlList } from './postgres.schema.js';
import {
  addMs,
  appendEventsSql,
  concKey,
  dueExpr,
  freeSlotSql,
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
  ['wait', 'text[]'], // signal names, or null
  ['wait_ms', 'float8'], // signal timeout ms, or null
  ['release', 'boolean'],
  ['clear_cancel', 'boolean'],
  ['lease_ms', 'float8'],
  ['set_live', 'boolean'], // the patch has steps: `live` replaces runs.live_step
  ['live', 'text'], // the trailing running step row (JSON), or null
  ['live_index', 'integer'], // its index, or null
  ['written', 'integer[]'], // the indexes of the rows in `steps`
  ['keep_input', 'boolean'], // leave next_input (and next_input_signal) as is
  ['mid_step', 'boolean'], // a write while a step runs: a pending pause is not applied
  ['events', 'text[]'], // history events to append (only in the statements for patches with events)
] as const);

/** Name of a checkpoint parameter. */
export type CommitParam = (typeof COMMIT_PARAMS)['specs'][number][0];

/**
 * Parameters of the `commitSpecial` statement (a patch with `children` or `restart`, always alone): those of the
 * checkpoint, then these. The children to spawn come as parallel arrays (one INSERT … SELECT FROM unnest for all of
 * them), their first events flattened (`ev_ids[i]`'s event number `ev_seqs[i]`).
 */
const SPECIAL_ONLY_PARAMS = [
  ['restart', 'boolean'],
  ['restart_input', 'text'],
  ['ch', 'boolean'], // the patch has `children`
  ['ch_at_least', 'integer'], // `endedAtLeast`
  ['ch_fail_fast', 'boolean'],
  ['sp_ids', 'text[]'],
  ['sp_workflows', 'text[]'],
  ['sp_versions', 'integer[]'],
  ['sp_inputs', 'text[]'],
  ['sp_states', 'text[]'],
  ['sp_pipelines', 'text[]'],
  ['sp_held', 'boolean[]'],
  ['sp_nev', 'integer[]'], // each child's event_seq (its number of events)
  ['sp_n', 'integer[]'], // how many spawn entries name this id (an ended run counts once per entry: rule 8c)
  ['ev_ids', 'text[]'],
  ['ev_seqs', 'integer[]'],
  ['ev_bodies', 'text[]'],
  ['rel_ids', 'text[]'],
] as const;

const SPECIAL_COMMIT_PARAMS = new ParamTable([...COMMIT_PARAMS.specs, ...SPECIAL_ONLY_PARAMS]);

/** Name of a parameter of `commitSpecial` that the other checkpoint statements do not have. */
export type SpecialParam = (typeof SPECIAL_ONLY_PARAMS)[number][0];

/** The values of `commitSpecial`'s own parameters, by name. */
export type SpecialValues = Record<SpecialParam, unknown>;

/** The parameters of `commitSpecial`: the checkpoint's values (with a wait and events), its step rows, then its own. */
export function specialCommitArgs(values: CommitValues, steps: string | null, special: SpecialValues): unknown[] {
  return SPECIAL_COMMIT_PARAMS.valuesWith<'steps' | SpecialParam>(values as Record<Exclude<CommitParam, 'steps'>, unknown>, {
    steps,
    ...special,
  });
}

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
 * The fast paths' fenced UPDATE of run `r` (`commitFast`, `commitFastBatch…`) up to its conditions: `F`, a parameter as
 * the statement reads it (`$n` alone, a column of `from` in a batch); `events`, the number of events the commit appends
 * (null: a statement without events). Its WHERE holds only where none of the full statement's rules can apply (see
 * {@link fastCommitStatement}); the caller may add conditions and writes the RETURNING.
 */
function fastUpdateSql(n: SchemaNames, F: (name: FastCommitParam) => string, { events, from }: { events: string | null; from?: string }): string {
  const frees = fastFrees(F, 'r');
  return `UPDATE ${n.runs} r SET
          status = COALESCE(${F('status')}, r.status),
          state = COALESCE(${F('state')}, r.state),
          current_step = CASE WHEN ${F('set_step')} THEN ${F('step')} ELSE r.current_step END,
          output = CASE WHEN ${F('set_output')} THEN ${F('output')} ELSE r.output END,
          error = CASE WHEN ${F('set_error')} THEN ${F('error')}::jsonb ELSE r.error END,
          next_input = CASE WHEN ${F('keep_input')} THEN r.next_input END,
          next_input_signal = CASE WHEN ${F('keep_input')} THEN r.next_input_signal END,
          wait_signals = NULL,
          wait_until = NULL,
          children_wait_ended_at_least = NULL,
          children_fail_fast = NULL,
          resume_status = CASE WHEN ${F('term')} THEN NULL ELSE r.resume_status END,
          due_at = CASE WHEN ${F('term')} THEN NULL WHEN ${F('set_due')} THEN ${dueExpr('now()', F('due'), F('due_at'))} ELSE r.due_at END,
          lease_owner = CASE WHEN ${F('rel')} THEN NULL ELSE r.lease_owner END,
          lease_token = CASE WHEN ${F('rel')} THEN NULL ELSE r.lease_token END,
          lease_expires_at = CASE WHEN ${F('rel')} THEN NULL ELSE ${addMs('now()', F('lease_ms'))} END,
          updated_at = now(),
          finished_at = CASE WHEN ${F('term')} THEN now() ELSE r.finished_at END,
          live_step = CASE WHEN ${F('set_live')} THEN ${F('live')} ELSE r.live_step END,
          live_index = CASE WHEN ${F('set_live')} THEN ${F('live_index')} ELSE r.live_index END,
          slot_held = r.slot_held AND NOT ${frees}${events ? `,
          event_seq = r.event_seq + ${events}` : ''}${from ? `
        FROM ${from}` : ''}
        WHERE r.run_id = ${F('run_id')} AND r.lease_token = ${F('token')}
          AND NOT r.pause_requested AND r.cancel_compensate IS NULL AND r.status NOT IN ${sqlList(TERMINAL_STATUSES)}
          AND ${F('status')} IS DISTINCT FROM 'paused'
          AND (NOT ${F('set_live')} OR r.live_index IS NULL OR r.live_index = ${F('live_index')} OR r.live_index = ${F('row_i')})
          AND (r.conc_key IS NULL OR r.slot_held OR NOT ${frees})`;
}

/**
 * The fast paths' other writes, for the runs `upd` updated (`from` yields them with their parameters, `F`): the step row
 * of the patch (`st`, none when `row_i` is null), and with `events` the history append (`ea`, numbered up to
 * `lastSeq`) and its trim (`et`). CTEs, each followed by a comma.
 */
function fastRowsSql(n: SchemaNames, F: (name: FastCommitParam) => string, { from, lastSeq, events }: { from: string; lastSeq: string; events: boolean }): string {
  const st = upsertStepsSql(
    n,
    `${from} CROSS JOIN LATERAL (SELECT ${F('row_i')}, ${F('row_name')}, ${F('row_status')}, ${F('row_attempts')}, ${F('row_output')}, ${F('row_st')}, ${F('row_ft')}, ${F('row_error')}, ${F('row_hb')}, ${F('row_hd')})
          AS x(i, name, status, attempts, output, st, ft, error, hb, hd)
        WHERE x.i IS NOT NULL`,
    'upd.run_id',
  );
  if (!events) return `st AS (${st}),`;
  return `st AS (${st}),
      ea AS (${appendEventsSql(n, { from, runId: 'upd.run_id', lastSeq, bodies: F('events') })}),
      et AS (${trimEventsSql(n, { from: 'upd', runId: 'upd.run_id', lastSeq })}),`;
}

/** Rule F2 in the fast paths: the commit gives the slot of run `r` back (if it holds one): it ends it, or releases a `step` scope one. */
function fastFrees(F: (name: FastCommitParam) => string, r: string): string {
  return `(${F('term')} OR (${F('rel')} AND ${r}.conc_scope = 'step'))`;
}

/**
 * The fast path of the common checkpoint (no `wait`, at most one row for the steps table): a single UPDATE that
 * applies only when the run has no pending pause or cancel request and is not terminal (nor asked to become
 * `paused`), so that none of the pause/cancel rules can apply, and `term` / `rel` follow from the patch alone
 * (computed by {@link fastCommitArgs}). A lone UPDATE locks and fences on the token by itself (re-checked on the
 * newest row version if a control request commits first). It also applies only when the run's live step, if the
 * patch replaces it, is an index the patch writes (always so for the engine's checkpoints), so it never has to move
 * the old live step into the steps table. It returns no row when it did nothing (fenced, a pause/cancel pending,
 * terminal, another live step): the caller then sends `commitNoWait`, which decides. Like every checkpoint it clears
 * the run's wait fields (`wait_signals`, `wait_until`, `children_wait_*`). A terminal commit of a child updates its
 * parent's row by rule 4 in the same statement (`fpar` → `parentCtes`; nothing runs for the others: `term` is false).
 * Cheaper per checkpoint than `commitNoWait` (~0.05 ms): no row lock of its own, no CTE chain, and the step row
 * as plain parameters (no JSON record set). A terminal commit also deletes the run's queued signals (`dg`, skipped
 * by its one-time filter otherwise) and reports `stale_signals` (see {@link commitStatement}). Parameters:
 * {@link FAST_COMMIT_PARAMS}.
 *
 * Rule F2: a commit that ends the run, or releases the lease of a run with `scope: 'step'`, gives its slot back
 * (`slot_held` false, and `fk` takes one from its key's `held`, in this statement). Its RETURNING sees only the new row,
 * so the fast path applies to such a commit only when the run holds a slot (or has no concurrency key): then `freed`
 * names the key whose slot it gave back. A run with a key and no slot (claimed with a cancel pending, F1) takes the
 * full statement, which reads `slot_held` under its lock.
 *
 * `events` (`commitFastEvents`, for a patch with history events): the UPDATE also adds their number to `event_seq`,
 * `ea` inserts them (numbered up to the new `event_seq`) and `et` trims the history to RUN_HISTORY_LIMIT. Without
 * events none of this is rendered: a checkpoint without events costs what it did before histories.
 */
function fastCommitStatement(n: SchemaNames, { events }: { events: boolean }): string {
  const params = events ? FAST_COMMIT_EVENTS_PARAMS : FAST_COMMIT_PARAMS;
  const F = (name: FastCommitParam) => (params as ParamTable<FastCommitParam>).ref(name);
  const frees = (r: string) => fastFrees(F, r);
  return `
      WITH upd AS (
        ${fastUpdateSql(n, F, { events: events ? `cardinality(${F('events')})` : null })}
        RETURNING r.run_id, r.signal_seq, r.status, r.parent_run_id,${events ? ' r.event_seq,' : ''}
          CASE WHEN ${F('term')} THEN 'finished'
               WHEN ${F('rel')} AND r.due_at IS NOT NULL AND r.due_at <= now() THEN 'ready' END AS evt,
          CASE WHEN r.conc_key IS NOT NULL AND ${frees('r')} THEN ${concKey('r.conc_key')} END AS freed
      ),
      fk AS (${freeSlotSql(n, 'SELECT upd.freed FROM upd')} AND (${F('term')} OR ${F('rel')})),
      ${fastRowsSql(n, F, { from: 'upd', lastSeq: 'upd.event_seq', events })}
      dg AS (DELETE FROM ${n.signals} g WHERE ${F('term')} AND g.run_id = ${F('run_id')} AND EXISTS (SELECT 1 FROM upd)),
      fpar AS (
        SELECT upd.parent_run_id, upd.status, true AS term, true AS was_live, now() AS ts FROM upd
        WHERE ${F('term')} AND upd.parent_run_id IS NOT NULL
      ),
      ${parentCtes(n, 'fpar')}
      SELECT upd.evt, CASE WHEN upd.evt IS NOT NULL THEN ${notifyExpr(n, 'upd.evt', 'upd.run_id')} END AS notified,
        (SELECT pn.ids FROM pn) AS woke,
        CASE WHEN ${F('term')} THEN ${staleSignals(n, 'upd.signal_seq', 'upd.run_id')} END AS stale_signals${
          events ? ', upd.event_seq AS last_event_seq' : ''
        }
      FROM upd`;
}


/**
 * The fast path for a batch (`commitFastBatch`, `commitFastBatchEvents`): `commitFast`'s UPDATE for several runs at once,
 * `$1` a JSON array of objects carrying {@link FAST_COMMIT_EVENTS_PARAMS} as `p_<name>` keys (a commit without events
 * has `p_events` null) and `k`, the object's position. For the common checkpoints of many runs it replaces the full
 * batch statement's lock (`FOR NO KEY UPDATE`, a second write of each row) and CTE chain by one UPDATE … FROM the
 * batch. It applies where `commitFast` does (rule F2 included: `f` and {@link freeSlotsBatch} give the slots back,
 * per key), and leaves one more case to the full statement: the terminal commit of a child whose parent's commit is in
 * the same batch (the parent's row must not be written twice). Rule 4 as in the full statement: `pc` counts the
 * children a batch ends per parent, `pu` updates each parent once. A run it leaves (fenced, a pause or cancel pending,
 * that case…) returns no row: the caller sends it by the full batch statement, which decides. The batch is ordered by
 * run id (see `GroupCommit`), so that rows are locked in that order.
 */
function fastBatchCommitStatement(n: SchemaNames, { events }: { events: boolean }): string {
  const params = events ? FAST_COMMIT_EVENTS_PARAMS : FAST_COMMIT_PARAMS;
  const pColumns = params.specs.map(([name, type]) => `p_${name} ${type}`).join(', ');
  const F = (name: FastCommitParam) => `p.p_${name}`;
  const frees = fastFrees(F, 'r');
  // NOTE: `k BETWEEN …` makes the planner count `p` as 1 row (see commitStatement): one primary-key probe per run in
  // the generic plan whatever the table held when it was made.
  return `
      WITH p AS MATERIALIZED (SELECT * FROM json_to_recordset($1::json) AS x(k integer, ${pColumns}) WHERE x.k BETWEEN 0 AND 2147483647),
      upd AS (
        ${fastUpdateSql(n, F, { events: events ? `COALESCE(cardinality(${F('events')}), 0)` : null, from: 'p' })}
          AND NOT (${F('term')} AND r.parent_run_id IS NOT NULL AND r.parent_run_id = ANY (ARRAY(SELECT q.p_run_id FROM p q)))
        RETURNING p.k, r.run_id, r.signal_seq, r.status, r.parent_run_id, r.conc_key, ${F('term')} AS term, true AS was_live, now() AS ts,
          (r.conc_key IS NOT NULL AND ${frees}) AS freed,${events ? ` CASE WHEN cardinality(${F('events')}) > 0 THEN r.event_seq END AS last_event_seq,` : ''}
          CASE WHEN ${F('term')} THEN 'finished'
               WHEN ${F('rel')} AND r.due_at IS NOT NULL AND r.due_at <= now() THEN 'ready' END AS evt
      ),
      ${fastRowsSql(n, F, { from: 'upd JOIN p ON p.k = upd.k', lastSeq: 'upd.last_event_seq', events })}
      dg AS (DELETE FROM ${n.signals} g WHERE g.run_id = ANY (ARRAY(SELECT upd.run_id FROM upd WHERE upd.term))),
      f AS (SELECT upd.conc_key, upd.freed FROM upd WHERE upd.freed),
      ${freeSlotsBatch(n)}
      ${parentCtes(n, 'upd')}
      SELECT upd.k, false AS deferred, false AS paused, NULL::boolean AS cancel, NULL::text AS consumed, NULL::text AS consumed_name, upd.evt,
        CASE WHEN upd.evt IS NOT NULL THEN ${notifyExpr(n, 'upd.evt', 'upd.run_id')} END::text AS notified,
        CASE WHEN upd.term THEN ${staleSignals(n, 'upd.signal_seq', 'upd.run_id')} END AS stale_signals,
        (SELECT pn.ids FROM pn) AS woke${events ? ', upd.last_event_seq' : ''}
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

/** The `p_<name>` keys of a `commitFastBatch…` statement's objects, with and without events, built once. */
const FAST_BATCH_KEYS = {
  events: FAST_COMMIT_EVENTS_PARAMS.names.map((name) => [name, `p_${name}`] as const),
  plain: FAST_COMMIT_PARAMS.names.map((name) => [name, `p_${name}`] as const),
};

/**
 * The JSON object of one checkpoint in a `commitFastBatch…` statement (`events`: of `commitFastBatchEvents`): `k` and
 * the fast path's parameters ({@link fastCommitArgs}) as `p_<name>` keys.
 */
export function fastBatchEntry(k: number, values: CommitValues, row: StepRow | undefined, events: boolean): Record<string, unknown> {
  const args = fastCommitArgs(values, row);
  const keys = events ? FAST_BATCH_KEYS.events : FAST_BATCH_KEYS.plain;
  const entry: Record<string, unknown> = { k };
  // NOTE: a commit without events in a batch with events: its `events` is null (fastCommitArgs left it out).
  const withEvents = values.events !== null;
  for (let i = 0, j = 0; i < keys.length; i++) {
    const [name, key] = keys[i];
    entry[key] = name === 'events' && !withEvents ? null : args[j++];
  }
  return entry;
}

/**
 * The checkpoint: ONE statement applying rules 1–8 of RunPatch, for one run or (`batch`) for several runs at once.
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
 * run, with `k`. Runs are found by joins on `p` (signals by LATERAL ... LIMIT 1), and `p` is estimated at 1 row (see
 * `p` below), so that the generic plan a prepared statement keeps probes the primary key once per run whatever the
 * table held when it was made (postgres-group-commit.spec.ts checks the plans). No `run_id = ANY (ARRAY(...))` next
 * to those joins: the planner, counting 10 ids in such an array, took it as the index condition (10 probes a run),
 * and on a small or new table preferred a seq scan, or a whole scan of another index that has run_id as its last
 * column, and kept that plan as the table grew.
 *
 * `wait` takes the names of a wait (text[]): `sig` pops the earliest sent queued signal of any of them (lowest id) and
 * returns its name (`consumed_name`).
 *
 * Rule 4, parents: a terminal commit of a child (`parent_run_id`, live before) updates its parent's row in the same
 * statement (`parentCtes`: one UPDATE by key, several children of one parent in a batch counted together), and
 * NOTIFYs `ready` for a parent it wakes (`woke`: their ids, for in-process events). In a batch, the terminal commit of
 * a child whose parent's own commit is in the same batch is left out (not locked, nothing written) and reported as a
 * `deferred` row: the caller sends it again alone (one statement must not write a row twice).
 *
 * `special` (`commitSpecial`, a patch with `children` and/or `restart`; single, with a wait and events): rule 8 and
 * continue-as-new in the same statement. `kid` is the spawn list (parallel array parameters, unnest), `kins` creates
 * the new children in ONE INSERT (ON CONFLICT DO NOTHING: an existing id is never replaced), `kev` writes their first
 * events, `klink` links the parentless existing ones, `krel` releases held children of this run (`kready` + `kn`:
 * NOTIFY `ready` for each child made due). `kend` counts the spawn entries whose run has ended (rule 8c): those
 * `klink` linked by the status it wrote (the newest: a run that ended while `klink` waited for its row counts here,
 * since it ended without a parent), the others by the statement's snapshot (a child of this run that was live in it
 * ends later, and its own terminal commit adds one to the counter: before `cur` locks the parent, `cur` reads it;
 * after, on top of what `upd` writes). `c1.ch_ended` is the parent's counter after them; `upd` ADDS `ch_add` to
 * the row's counter (never sets it: a child end is never overwritten); `c2` decides between `running`
 * (`children_ready`) and `waiting` (lease released, `due_at` null, `children_wait_*` set). `restart`: the step rows
 * not written by the patch are deleted (`dsr`), the old live step is dropped, `input`, `generation`, `next_input`
 * (`next_input_signal`) and the children columns are reset in `upd`.
 *
 * Rule F2: `f.freed` when the run holds a slot (`cur.slot_held`, read under the lock) and the commit ends it, or
 * releases it (rules 3, 5, 7, 8) with `scope: 'step'`; `upd` clears `slot_held` and `fk` takes the slot from its key's
 * `held` (a batch: per key, locked in key order, see {@link freeSlotsBatch}).
 *
 * `events` (the `…Events` statements, for patches with history events): `cur` reads the run's `event_seq` (under the
 * lock), `f` computes the new one (`last_event_seq`, null without events: in a batch, commits without events have
 * `p_events` null), `upd` writes it, `ea` appends the events (only when `upd` did: it joins `upd`) and `et` trims the
 * history to RUN_HISTORY_LIMIT. Without `events` none of this is rendered.
 */
export function commitStatement(
  n: SchemaNames,
  { batch, wait, events, special = false }: { batch: boolean; special?: boolean } & CommitVariant,
): string {
  const terminal = sqlList(TERMINAL_STATUSES);
  const params = special ? SPECIAL_COMMIT_PARAMS : variantParams({ wait, events });
  /** A parameter as seen from CTE `at` (batch: a column carried along; single: `$n` with its type). */
  const P = (name: CommitParam, at: string): string => (batch ? `${at}.p_${name}` : params.ref(name));
  /** A parameter of the `special` statement (single only). */
  const S = (name: SpecialParam): string => SPECIAL_COMMIT_PARAMS.ref(name);
  const pColumns = params.specs
    .map(([name, type]) => `p_${name} ${type}`)
    .join(', ');
  /** Parameters the UPDATE reads, carried through `f` in batch mode. */
  const carried = (
    ['state', 'set_step', 'step', 'set_output', 'output', 'set_error', 'error', 'lease_ms', 'set_live', 'live', 'live_index', 'keep_input'] as const
  )
    .map((name) => `c4.p_${name}`)
    .join(', ');
  const batchIds = 'ARRAY(SELECT p.p_run_id FROM p)';

  // NOTE (batch): `k BETWEEN 0 AND 2147483647` holds for every entry; it is there for the planner, which then
  // estimates `p` at 1 row instead of json_to_recordset's 100. Estimated at 100, the runs were found by a hash join
  // over a seq scan of the runs table while it was small or not yet analyzed, and as a prepared statement keeps its
  // generic plan, that plan stayed while the table grew: each batch read every row (24 ms and 2,000+ buffers a batch
  // at 15,000 runs, throughput falling by half every 4,000 runs until autovacuum's ANALYZE replanned it).
  const p = batch
    ? `p AS MATERIALIZED (SELECT * FROM json_to_recordset($1::json) AS x(k integer, ${pColumns}) WHERE x.k BETWEEN 0 AND 2147483647),`
    : '';
  // NOTE (batch): the terminal commit of a child whose parent is in the same batch is left out (`dfr`, sent again
  // alone by the caller): the parent's row would be written twice by one statement (`upd` and `pu`), which keeps one.
  const deferred = `COALESCE(p.p_status IN ${terminal} AND r.parent_run_id = ANY (${batchIds}), false)`;
  const curFrom = batch
    ? `FROM p JOIN ${n.runs} r ON r.run_id = p.p_run_id AND r.lease_token = p.p_token
        WHERE NOT ${deferred}
        ORDER BY r.run_id
        FOR NO KEY UPDATE OF r`
    : `FROM ${n.runs} r WHERE r.run_id = ${P('run_id', '')} AND r.lease_token = ${P('token', '')}
        FOR NO KEY UPDATE`;
  const signalCtes = !wait
    ? ''
    : batch
      ? `
      snap AS MATERIALIZED (
        SELECT r.run_id, r.signal_seq AS seq0 FROM p JOIN ${n.runs} r ON r.run_id = p.p_run_id
      ),
      sig AS (
        DELETE FROM ${n.signals} g WHERE g.id = ANY (ARRAY(
          SELECT x.id FROM p CROSS JOIN LATERAL (
            SELECT q.id FROM ${n.signals} q WHERE q.run_id = p.p_run_id AND q.name = ANY (p.p_wait) ORDER BY q.id LIMIT 1
          ) x
          WHERE p.p_wait IS NOT NULL AND EXISTS (SELECT 1 FROM cur WHERE cur.run_id = p.p_run_id)
        )) RETURNING g.run_id, g.name, g.payload
      ),`
      : `
      snap AS MATERIALIZED (SELECT r.signal_seq AS seq0 FROM ${n.runs} r WHERE r.run_id = ${P('run_id', '')}),
      sig AS (
        DELETE FROM ${n.signals} g WHERE g.id = (
          SELECT q.id FROM ${n.signals} q
          WHERE q.run_id = ${P('run_id', '')} AND q.name = ANY (${P('wait', '')}) AND EXISTS (SELECT 1 FROM cur)
          ORDER BY q.id LIMIT 1
        ) RETURNING g.name, g.payload
      ),`;
  // Rule 8 (the `special` statement): spawn (`kid` → `kins` + `kev`), link (`klink`), release (`krel`). One INSERT of
  // every new child from arrays (unnest), whatever their number.
  const childCtes = !special
    ? ''
    : `
      kid AS MATERIALIZED (
        SELECT k.* FROM unnest(${S('sp_ids')}, ${S('sp_workflows')}, ${S('sp_versions')}, ${S('sp_inputs')}, ${S('sp_states')},
            ${S('sp_pipelines')}, ${S('sp_held')}, ${S('sp_nev')}, ${S('sp_n')})
          AS k(run_id, workflow, version, input, state, pipeline, held, nev, n)
        WHERE ${S('ch')} AND EXISTS (SELECT 1 FROM cur) AND k.run_id <> ${P('run_id', '')}
      ),
      kins AS (
        INSERT INTO ${n.runs} AS r (run_id, workflow, version, status, input, state, pause_requested, due_at, created_at,
                                    updated_at, pipeline, event_seq, parent_run_id)
        SELECT kid.run_id, kid.workflow, kid.version, 'pending', kid.input, kid.state, false,
          CASE WHEN kid.held AND NOT (kid.run_id = ANY (COALESCE(${S('rel_ids')}, ARRAY[]::text[]))) THEN NULL ELSE t.ts END,
          t.ts, t.ts, kid.pipeline, kid.nev, ${P('run_id', '')}
        FROM kid CROSS JOIN (SELECT date_trunc('milliseconds', cur.ts) AS ts FROM cur) t
        ON CONFLICT (run_id) DO NOTHING
        RETURNING r.run_id, r.due_at
      ),
      kev AS (
        INSERT INTO ${n.events} (run_id, seq, body)
        SELECT v.run_id, v.seq, v.body FROM unnest(${S('ev_ids')}, ${S('ev_seqs')}, ${S('ev_bodies')}) AS v(run_id, seq, body)
        WHERE v.run_id IN (SELECT kins.run_id FROM kins)
      ),
      klink AS (
        UPDATE ${n.runs} c SET parent_run_id = ${P('run_id', '')}
        FROM kid WHERE c.run_id = kid.run_id AND c.run_id = ANY (ARRAY(SELECT kid.run_id FROM kid)) AND c.parent_run_id IS NULL
        RETURNING c.run_id, c.status IN ${terminal} AS ended, kid.n
      ),
      kend AS (
        SELECT (SELECT COALESCE(sum(klink.n), 0) FROM klink WHERE klink.ended)::integer
          + (SELECT COALESCE(sum(kid.n), 0) FROM kid JOIN ${n.runs} c ON c.run_id = kid.run_id
             WHERE c.run_id = ANY (ARRAY(SELECT kid.run_id FROM kid)) AND c.parent_run_id IS NOT NULL
               AND c.status IN ${terminal})::integer AS n
      ),
      krel AS (
        UPDATE ${n.runs} c SET due_at = cur.ts
        FROM cur WHERE c.run_id = ANY (${S('rel_ids')}) AND c.parent_run_id = ${P('run_id', '')} AND c.status = 'pending'
          AND c.due_at IS NULL
        RETURNING c.run_id
      ),
      kready AS (
        SELECT kins.run_id FROM kins WHERE kins.due_at IS NOT NULL UNION ALL SELECT krel.run_id FROM krel
      ),
      kn AS (
        SELECT json_agg(kready.run_id)::text AS ids, count(${notifyExpr(n, `'ready'`, 'kready.run_id')}) AS notified FROM kready
      ),`;
  const consumed = !wait ? 'NULL::text' : batch ? 'sig.payload' : '(SELECT payload FROM sig)';
  const consumedName = !wait ? 'NULL::text' : batch ? 'sig.name' : '(SELECT name FROM sig)';
  const raced = !wait ? 'false' : batch ? 'cur.signal_seq IS DISTINCT FROM snap.seq0' : 'cur.signal_seq IS DISTINCT FROM (SELECT seq0 FROM snap)';
  const c1From = !batch
    ? 'FROM cur'
    : `FROM cur JOIN p ON p.p_run_id = cur.run_id${wait ? `
          LEFT JOIN snap ON snap.run_id = cur.run_id
          LEFT JOIN sig ON sig.run_id = cur.run_id` : ''}`;
  const waitParam = (at: string) => (wait ? P('wait', at) : 'NULL::text[]');
  const waitUntil = wait ? addMs('c2.ts', P('wait_ms', 'c2')) : 'NULL::timestamptz';
  /** The counter rule 8c adds to (`restart` clears the children state first). */
  const chBase = (r: string) => `CASE WHEN ${S('restart')} THEN 0 ELSE COALESCE(${r}.children_ended, 0) END`;
  /**
   * Rule 8c/d (`special`): how many spawn entries name an ended run (`ch_add`), the parent's `children_ended` after
   * them (from `cur`: the newest row version, locked, so with every child end committed before the lock), and
   * whether it need not wait.
   */
  const childrenCols = !special
    ? ''
    : `,
          CASE WHEN ${S('ch')} THEN (SELECT kend.n FROM kend) END AS ch_add,
          CASE WHEN ${S('ch')} THEN ${chBase('cur')} + (SELECT kend.n FROM kend) END AS ch_ended`;
  const chReady = `(c1.ch_ended >= ${S('ch_at_least')}
            OR (${S('ch_fail_fast')} AND NOT ${S('restart')} AND COALESCE(c1.children_failed, false)))`;
  const status1 = `CASE WHEN ${waitParam('c1')} IS NULL THEN c1.status0 WHEN c1.consumed IS NOT NULL THEN 'running' ELSE 'waiting' END`;
  /** Restart (`special`): the old live step is dropped, not moved to the steps table. */
  const oldLiveIndex = special ? `CASE WHEN ${S('restart')} THEN NULL ELSE cur.old_live_index END` : 'cur.old_live_index';

  return `
      WITH ${p}
      cur AS MATERIALIZED (
        SELECT r.run_id, r.status, r.due_at, r.pause_requested, r.cancel_compensate, r.resume_status, r.finished_at,
               r.signal_seq, r.live_step AS old_live, r.live_index AS old_live_index,${events ? ' r.event_seq AS old_event_seq,' : ''}
               r.parent_run_id, r.status NOT IN ${terminal} AS was_live,${special ? ' r.children_ended, r.children_failed,' : ''}
               r.slot_held, r.conc_key, r.conc_scope, now() AS ts
        ${curFrom}
      ),${signalCtes}${childCtes}
      c1 AS (
        SELECT cur.*${batch ? ', p.*' : ''}, ${consumed} AS consumed, ${consumedName} AS consumed_name, ${raced} AS raced,
          COALESCE(${P('status', 'p')}, cur.status) AS status0,
          CASE WHEN ${P('set_due', 'p')} THEN ${dueExpr('cur.ts', P('due', 'p'), P('due_at', 'p'))} ELSE cur.due_at END AS due0${childrenCols}
        ${c1From}
      ),
      c2 AS (
        SELECT c1.*,
          (${waitParam('c1')} IS NOT NULL AND c1.consumed IS NULL) AS waits,${
            special
              ? `
          (${S('ch')} AND NOT ${chReady}) AS ch_waits,
          (${S('ch')} AND ${chReady}) AS ch_ready,
          CASE WHEN ${S('ch')} THEN (CASE WHEN ${chReady} THEN 'running' ELSE 'waiting' END) ELSE ${status1} END AS status1`
              : `
          false AS ch_waits,
          ${status1} AS status1`
          }
        FROM c1
      ),
      c3 AS (
        SELECT c2.*,
          CASE WHEN c2.waits THEN ${waitParam('c2')} END AS new_wait_signals,
          CASE WHEN c2.waits THEN ${waitUntil} END AS new_wait_until,
          CASE WHEN c2.ch_waits THEN NULL WHEN c2.waits THEN (CASE WHEN c2.raced THEN c2.ts ELSE ${waitUntil} END) ELSE c2.due0 END AS due1,
          (${P('release', 'c2')} OR c2.waits OR c2.ch_waits) AS rel1,
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
        SELECT ${batch ? 'c4.k, ' : ''}c4.run_id, c4.ts, c4.consumed, c4.consumed_name, c4.term, c4.do_pause, c4.new_wait_signals,
          c4.new_wait_until, c4.cancel_after, c4.signal_seq, c4.parent_run_id, c4.was_live, c4.ch_waits, c4.conc_key,
          -- Rule F2: an ended run gives its slot back, and so does a released one (rules 3, 5, 7, 8) with scope 'step'.
          (c4.slot_held AND (c4.term OR ((c4.rel1 OR c4.do_pause) AND c4.conc_scope = 'step'))) AS freed,${
            special ? ' c4.ch_ready, c4.ch_add,' : ''
          }${batch ? ` ${carried},` : ''}${
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
          next_input = COALESCE(f.consumed, CASE WHEN ${P('keep_input', 'f')}${special ? ` AND NOT ${S('restart')}` : ''} THEN r.next_input END),
          next_input_signal = CASE WHEN f.consumed IS NOT NULL THEN f.consumed_name
            WHEN ${P('keep_input', 'f')}${special ? ` AND NOT ${S('restart')}` : ''} THEN r.next_input_signal END,
          wait_signals = f.new_wait_signals,
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
          slot_held = r.slot_held AND NOT f.freed,${
            special
              ? `
          live_step = CASE WHEN ${P('set_live', 'f')} THEN ${P('live', 'f')} WHEN ${S('restart')} THEN NULL ELSE r.live_step END,
          live_index = CASE WHEN ${P('set_live', 'f')} THEN ${P('live_index', 'f')} WHEN ${S('restart')} THEN NULL ELSE r.live_index END,
          input = CASE WHEN ${S('restart')} THEN ${S('restart_input')} ELSE r.input END,
          generation = r.generation + CASE WHEN ${S('restart')} THEN 1 ELSE 0 END,
          children_ended = CASE WHEN ${S('ch')} THEN ${chBase('r')} + f.ch_add
                                WHEN ${S('restart')} THEN NULL ELSE r.children_ended END,
          children_failed = CASE WHEN ${S('ch')} THEN false WHEN ${S('restart')} THEN NULL ELSE r.children_failed END,
          children_wait_ended_at_least = CASE WHEN f.ch_waits THEN ${S('ch_at_least')} END,
          children_fail_fast = CASE WHEN f.ch_waits THEN ${S('ch_fail_fast')} END`
              : `
          live_step = CASE WHEN ${P('set_live', 'f')} THEN ${P('live', 'f')} ELSE r.live_step END,
          live_index = CASE WHEN ${P('set_live', 'f')} THEN ${P('live_index', 'f')} ELSE r.live_index END,
          children_wait_ended_at_least = NULL,
          children_fail_fast = NULL`
          }${
            events ? `,
          event_seq = COALESCE(f.last_event_seq, r.event_seq)` : ''
          }
        FROM f WHERE r.run_id = f.run_id
        RETURNING r.run_id${events ? ', f.last_event_seq' : ''}
      ),${
        special
          ? `
      dsr AS (
        DELETE FROM ${n.steps} s WHERE s.run_id = ${P('run_id', '')} AND ${S('restart')} AND NOT (s.idx = ANY (${P('written', '')}))
          AND EXISTS (SELECT 1 FROM upd)
      ),`
          : ''
      }
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
                { live: 'cur.old_live', index: oldLiveIndex },
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
      ${parentCtes(n, 'f')},
      ${batch ? freeSlotsBatch(n) : `fk AS (${freeSlotSql(n, `SELECT ${concKey('f.conc_key')} FROM f WHERE f.freed`)}),`}
      e AS (
        SELECT f.*, CASE WHEN f.term THEN 'finished'
                         WHEN f.rel AND f.due_at IS NOT NULL AND f.due_at <= f.ts AND f.status <> 'paused' THEN 'ready'
                    END AS evt
        FROM f
      )
      SELECT ${batch ? 'e.k, false AS deferred, ' : ''}e.do_pause AS paused, CASE WHEN NOT e.term THEN e.cancel_after END AS cancel,
        e.consumed, e.consumed_name, e.evt,
        CASE WHEN e.evt IS NOT NULL THEN ${notifyExpr(n, 'e.evt', 'e.run_id')} END${batch ? '::text' : ''} AS notified,
        CASE WHEN e.term THEN ${staleSignals(n, 'e.signal_seq', 'e.run_id')} END AS stale_signals,
        (SELECT pn.ids FROM pn) AS woke${
          special ? `, (SELECT kn.ids FROM kn) AS ready_runs, e.ch_ready AS children_ready` : ''
        }${events ? ', e.last_event_seq' : ''}
      FROM e${
        batch
          ? `
      UNION ALL
      SELECT p.k, true, NULL::boolean, NULL::boolean, NULL::text, NULL::text, NULL::text, NULL::text, NULL::boolean, NULL::text${
        events ? ', NULL::integer' : ''
      }
      FROM p JOIN ${n.runs} r ON r.run_id = p.p_run_id AND r.lease_token = p.p_token
      WHERE ${deferred}`
          : ''
      }`;
}

/**
 * Rule 4 for the parents of the runs a checkpoint ends (CTE `f`: `term`, `was_live`, `parent_run_id`, `status`, `ts`): per
 * parent (`pc`, several children of one parent in a batch count together) `children_ended` goes up by their number,
 * `failed` when one did not complete, and due now when it waits for its children (`children_wait_*`, waiting or paused
 * from waiting) and its condition now holds (`ended >= ended_at_least`, or fail-fast and failed). One UPDATE of the parent's row by its key, in the same statement as the
 * children's terminal writes: O(1) per child, no scan of the siblings. A parent without children state is left as it
 * is (`children_ended` null stays null), but its row is still updated: the test of "has children state" must be made
 * on the parent's newest row version, which only an UPDATE's re-check (of a row it locks) reads. A WHERE
 * `children_ended IS NOT NULL` would be judged on the statement's snapshot, and a parent whose first `children`
 * commit (linking this run, then live) committed after that snapshot would be skipped: a lost end.
 * `pn`: the woken parents that are `waiting` (not paused), with their `ready` NOTIFY.
 */
function parentCtes(n: SchemaNames, f: string): string {
  const ended = `pr.children_ended + pc.n`;
  return `pc AS (
        SELECT ${f}.parent_run_id AS run_id, count(*)::integer AS n, bool_or(${f}.status <> 'completed') AS failed, max(${f}.ts) AS ts
        FROM ${f} WHERE ${f}.term AND ${f}.was_live AND ${f}.parent_run_id IS NOT NULL
        GROUP BY ${f}.parent_run_id
      ),
      pu AS (
        UPDATE ${n.runs} pr SET
          children_ended = ${ended},
          children_failed = CASE WHEN pr.children_ended IS NOT NULL THEN pr.children_failed OR pc.failed ELSE pr.children_failed END,
          due_at = CASE WHEN pr.children_wait_ended_at_least IS NOT NULL
                         AND (pr.status = 'waiting' OR (pr.status = 'paused' AND pr.resume_status = 'waiting'))
                         AND (${ended} >= pr.children_wait_ended_at_least
                              OR (pr.children_fail_fast AND (pr.children_failed OR pc.failed)))
                        THEN pc.ts ELSE pr.due_at END
        FROM pc WHERE pr.run_id = pc.run_id
        RETURNING pr.run_id, (pr.status = 'waiting' AND pr.children_wait_ended_at_least IS NOT NULL
          AND (pr.children_ended >= pr.children_wait_ended_at_least OR (pr.children_fail_fast AND pr.children_failed))) AS woke
      ),
      pn AS (
        SELECT json_agg(pu.run_id)::text AS ids, count(${notifyExpr(n, `'ready'`, 'pu.run_id')}) AS notified FROM pu WHERE pu.woke
      )`;
}

/**
 * Rule F2 for a batch (CTE `f`, one row per committed run, `freed` and `conc_key`): the slots given back, per key. Locks
 * the keys' counters in key order first (`fkl`), as the claims do, so that batches and claims never deadlock.
 */
function freeSlotsBatch(n: SchemaNames): string {
  // NOTE: the count through a scalar subquery, not `UPDATE … FROM` a derived table (see the NOTE of the claim
  // statements in postgres.claim.sql.ts).
  return `fkl AS MATERIALIZED (
        SELECT fk.key FROM ${n.flowKeys} fk WHERE fk.key = ANY (ARRAY(SELECT ${concKey('f.conc_key')} FROM f WHERE f.freed))
        ORDER BY fk.key
        FOR NO KEY UPDATE
      ),
      fk AS (
        UPDATE ${n.flowKeys} fk SET held = GREATEST(fk.held - (SELECT count(*)::integer FROM f WHERE f.freed AND ${concKey('f.conc_key')} = fk.key), 0)
        WHERE fk.key = ANY (ARRAY(SELECT fkl.key FROM fkl))
      ),`;
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
    // The fast path of a batch (see fastBatchCommitStatement); what it leaves goes by commitBatch….
    commitFastBatch: fastBatchCommitStatement(n, { events: false }),
    commitFastBatchEvents: fastBatchCommitStatement(n, { events: true }),
    commitBatchEvents: commitStatement(n, { batch: true, wait: true, events: true }),
    commitBatchNoWaitEvents: commitStatement(n, { batch: true, wait: false, events: true }),
    // A patch with `children` or `restart` (rule 8, continue-as-new): always alone, never the fast path.
    commitSpecial: commitStatement(n, { batch: false, wait: true, events: true, special: true }),
    // The queued signals of a run that has ended (a terminal run never gets new ones: sendSignal refuses it, under
    // the row lock), after a terminal commit reported stale_signals. $1 run_id
    dropStaleSignals: `
      DELETE FROM ${n.signals} g WHERE g.run_id = $1::text
        AND EXISTS (SELECT 1 FROM ${n.runs} r WHERE r.run_id = $1::text AND r.status IN ${sqlList(TERMINAL_STATUSES)})`,
  };
}
