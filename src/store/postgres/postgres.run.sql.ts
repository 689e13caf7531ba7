import { LIVE_STATUSES, TERMINAL_STATUSES } from '../run-state-machine.js';
import { type ParamRefs, ParamTable } from './postgres.params.js';
import { type SchemaNames, sqlList } from './postgres.schema.js';
import { LIVE_GROUP_SAMPLE, RUN_HISTORY_LIMIT } from '../workflow-store.interface.js';
import {
  addMs,
  appendEventsSql,
  blockedBy,
  concKey,
  dueExpr,
  fromMs,
  ms,
  noSteps,
  notifyExpr,
  pushBegins,
  rateFull,
  rateKey,
  runColumns,
  STEP_ROW_COLUMNS,
  type StepRow,
  stepsOf,
  upsertStepsSql,
} from './postgres.sql-fragments.js';

/** Parameters of the statements that write a new run, by name (each statement takes those of {@link NEW_RUN_ARGS}). */
const NEW_RUN_PARAMS = new ParamTable([
  ['run_id', 'text'],
  ['workflow', 'text'],
  ['version', 'integer'],
  ['status', 'text'],
  ['input', 'text'],
  ['state', 'text'],
  ['current_step', 'text'],
  ['lease_owner', 'text'], // null: no lease
  ['lease_token', 'text'],
  ['lease_ms', 'float8'],
  ['ready', 'boolean'], // notify 'ready'
  ['live', 'text'], // the live step (json), or null
  ['live_index', 'integer'], // its index
  ['steps', 'json'], // the rows for the steps table
  ['written', 'integer[]'], // their indexes
  ['events', 'text[]'], // the first events of its history, or null
  ['pipeline', 'text'], // its pipeline fingerprint, or null
] as const);

/**
 * The flow control parameters of a new run (`NewRun.priority`, `due`, `concurrency`, `rateLimit`), and what the
 * statements that may not claim it at once (rule F4) write instead of `steps`/`written`/`live`.
 */
const FLOW_PARAMS = [
  ['priority', 'bigint'], // any safe integer (a bigint: in the claim index it takes the room an integer would, alignment)
  ['due_ms', 'float8'], // due in ms from now, or null
  ['due_at', 'float8'], // due at this instant (epoch ms), or null (neither: due now)
  ['conc_key', 'text'], // null: no concurrency limit
  ['conc_limit', 'integer'],
  ['conc_scope', 'text'],
  ['rate_key', 'text'], // null: no rate limit
  ['rate_limit', 'integer'],
  ['rate_per_ms', 'float8'],
  ['fresh', 'boolean'], // no step entry but a `running` one: its first claim is its begin (F3)
  ['steps_idle', 'json'], // the rows for the steps table when it is not claimed at once (no `running` entry)
  ['written_idle', 'integer[]'], // their indexes
] as const;

/** Parameters of rule D (`createRunDebounce`). */
const DEBOUNCE_PARAMS = [
  ['db_key', 'text'],
  ['db_delay', 'float8'], // ms
  ['db_max', 'float8'], // ms from the first creation, or null
] as const;

/** The statements that may write a run with flow control (`createRunFlow`, the replacements, `createRunDebounce`). */
const FLOW_RUN_PARAMS = new ParamTable([...NEW_RUN_PARAMS.without('status', 'ready').specs, ...FLOW_PARAMS, ...DEBOUNCE_PARAMS]);

/** Name of a parameter of the statements that write a new run. */
export type NewRunParam = (typeof FLOW_RUN_PARAMS)['specs'][number][0] | 'status' | 'ready';

/** The parameters of the run row of the plain statements (without the step rows and the events). */
type RunRowParam = Exclude<(typeof NEW_RUN_PARAMS)['specs'][number][0], 'steps' | 'written' | 'events'>;

/** The parameters of the run row of the flow statements (without the step rows). */
type FlowRowParam = Exclude<(typeof FLOW_RUN_PARAMS)['specs'][number][0], 'steps' | 'written' | 'steps_idle' | 'written_idle' | 'db_key' | 'db_delay' | 'db_max'>;

/** The step rows a flow statement writes (`steps` when it claims the run at once, else `steps_idle`). */
type FlowRowsParam = 'run_id' | 'steps' | 'written' | 'steps_idle' | 'written_idle' | 'events';

/** The step rows `createRunFlow` writes (a new run: no old rows to keep). */
type NewRowsParam = 'steps' | 'steps_idle';

const FLOW_ROW_ONLY = ['steps', 'written', 'steps_idle', 'written_idle'] as const;

/**
 * The parameters of each statement that writes a new run: `NEW_RUN_ARGS.createRun.values(byName)` is the values
 * array of `createRun`. `WithoutSteps` and `replaceRunLocked` write no step rows; `replaceChildren` only those and
 * the events. `createRun` and `createRunWithoutSteps` write no events (`…WithEvents` do); the replacements always
 * take `events` (null: none), since they delete the replaced run's history anyway. The plain statements (a run
 * without priority, delay or limits: the common start) take no flow parameters; `createRunFlow` and the replacements
 * take them all, `createRunDebounce` those of rule D.
 */
export const NEW_RUN_ARGS = {
  createRun: NEW_RUN_PARAMS.without('written', 'events'),
  createRunWithoutSteps: NEW_RUN_PARAMS.without('steps', 'written', 'events'),
  createRunWithEvents: NEW_RUN_PARAMS.without('written'),
  createRunWithoutStepsWithEvents: NEW_RUN_PARAMS.without('steps', 'written'),
  createRunFlow: FLOW_RUN_PARAMS.without('written', 'written_idle', 'db_key', 'db_delay', 'db_max'),
  replaceRun: FLOW_RUN_PARAMS.without('db_key', 'db_delay', 'db_max'),
  replaceRunLocked: FLOW_RUN_PARAMS.without(...FLOW_ROW_ONLY, 'db_key', 'db_delay', 'db_max'),
  replaceChildren: NEW_RUN_PARAMS.only('run_id', 'steps', 'written', 'events'),
  createRunDebounce: FLOW_RUN_PARAMS.without(
    'lease_owner',
    'lease_token',
    'lease_ms',
    'live',
    'live_index',
    'steps',
    'written',
    'due_ms',
    'due_at',
    'fresh',
    'written_idle',
  ),
};

/**
 * One run's object in `createRunBatch`'s JSON array (GroupCommit adds `k`, its position): the plain statements'
 * parameters by name (`steps`: the step rows themselves, not their JSON text; `written` is not read).
 */
export function createBatchEntry(values: Readonly<Record<NewRunParam, unknown>>, steps: readonly StepRow[] | null): Record<string, unknown> {
  const entry: Record<string, unknown> = {};
  for (const name of NEW_RUN_PARAMS.names) entry[name] = name === 'steps' ? steps : values[name];
  return entry;
}

/** The parameters of a keyed start in `createRunFlowBatch` beyond those of the plain statements. */
const FLOW_BATCH_PARAMS = [
  ['priority', 'bigint'],
  ['conc_key', 'text'],
  ['conc_limit', 'integer'],
  ['conc_scope', 'text'],
] as const;

/**
 * Whether a start with flow control may go in a `createRunFlowBatch` (see there): it wants its lease now (no delay) and
 * has a concurrency key and no rate limit. Its values must have a JSON form (finite numbers: they were checked).
 */
export function fitsFlowBatch(values: Readonly<Record<NewRunParam, unknown>>): boolean {
  return (
    values.lease_token !== null &&
    values.conc_key !== null &&
    values.rate_key === null &&
    values.due_ms === null &&
    values.due_at === null &&
    typeof values.lease_ms === 'number' &&
    Number.isFinite(values.lease_ms)
  );
}

/** One keyed start's object in `createRunFlowBatch`'s JSON array (GroupCommit adds `k`): `createBatchEntry`'s and the key's. */
export function createFlowBatchEntry(values: Readonly<Record<NewRunParam, unknown>>, steps: readonly StepRow[] | null): Record<string, unknown> {
  const entry = createBatchEntry(values, steps);
  for (const [name] of FLOW_BATCH_PARAMS) entry[name] = values[name];
  return entry;
}

/**
 * Which filters a `list` statement has; its parameters come in this order (the ones it has): parentRunId, workflow, statuses,
 * createdFrom (epoch ms), createdTo (epoch ms), after (epoch ms, run id), limit.
 */
export interface ListFilter {
  workflow: boolean;
  statuses: boolean;
  createdFrom?: boolean;
  createdTo?: boolean;
  after: boolean;
  /** Only the children of a run (the parent list index). */
  parentRunId?: boolean;
}

/** The statements that create, replace, read, list and purge runs (see `Statements`). */
export function runStatements(n: SchemaNames) {
  const terminal = sqlList(TERMINAL_STATUSES);
  const notify = (type: string, runId: string) => notifyExpr(n, type, runId);

  /** The number of events of a new run (0 when `events` is null). */
  const eventCount = (P: ParamRefs<'events'>) => `COALESCE(cardinality(${P.ref('events')}), 0)`;

  /**
   * Columns and values of a new run's row (parameters of `P`), `t.ts` its creation time. `events`: P has `events`, and
   * `event_seq` is their number (else the column's default, 0).
   */
  const newRunInsert = (P: ParamRefs<RunRowParam>, events?: ParamRefs<'events'>, from = 't') => `
        INSERT INTO ${n.runs} AS r (run_id, workflow, version, status, input, state, current_step, pause_requested, due_at,
                               lease_owner, lease_token, lease_expires_at, created_at, updated_at, live_step, live_index, pipeline${events ? ', event_seq' : ''})
        SELECT ${P.ref('run_id')}, ${P.ref('workflow')}, ${P.ref('version')}, ${P.ref('status')}, ${P.ref('input')}, ${P.ref('state')}, ${P.ref('current_step')}, false, t.ts,
               ${P.ref('lease_owner')}, ${P.ref('lease_token')}, CASE WHEN ${P.ref('lease_token')} IS NULL THEN NULL ELSE ${addMs('t.ts', P.ref('lease_ms'))} END, t.ts, t.ts, ${P.ref('live')}, ${P.ref('live_index')}, ${P.ref('pipeline')}${
                 events ? `, ${eventCount(events)}` : ''
               }
        FROM ${from}`;

  /** The `seq` of the last event written with a new run (`e.event_seq`), null when it has none. */
  const lastEventSeq = (P: ParamRefs<'events'>) => `CASE WHEN cardinality(${P.ref('events')}) > 0 THEN e.event_seq END AS last_event_seq`;
  const newRunTime = `t AS (SELECT date_trunc('milliseconds', clock_timestamp()) AS ts)`;

  /**
   * A new run, unless its id exists. `steps`: the placeholder of its rows for the steps table; none: no step rows to
   * write (the common start: only a live step). `events`: its first events, appended with it (`ea`); none: no events.
   */
  const createRunStatement = (P: ParamRefs<RunRowParam>, steps?: string, events?: ParamRefs<'events'>) => `
      WITH ${newRunTime},
      ins AS (${newRunInsert(P, events)}
        ON CONFLICT (run_id) DO NOTHING
        RETURNING r.run_id, r.created_at, r.lease_expires_at, r.generation, r.event_seq
      ),${
        steps
          ? `
      st AS (${upsertStepsSql(n, `ins CROSS JOIN json_to_recordset(${steps}) AS x(${STEP_ROW_COLUMNS})`, 'ins.run_id')}),`
          : ''
      }${
        events
          ? `
      ea AS (${appendEventsSql(n, { from: 'ins', runId: 'ins.run_id', lastSeq: 'ins.event_seq', bodies: events.ref('events') })}),`
          : ''
      }
      e AS (SELECT ins.*, CASE WHEN ${P.ref('ready')} THEN 'ready' END AS evt FROM ins)
      SELECT ${ms('e.created_at')} AS created_at, ${ms('e.lease_expires_at')} AS lease_expires_at, e.generation, e.evt,
        CASE WHEN e.evt IS NOT NULL THEN ${notify('e.evt', 'e.run_id')} END AS notified${events ? `, ${lastEventSeq(events)}` : ''}
      FROM e`;

  /**
   * CTEs deleting the old run's steps (but those at the indexes `written`), signals and events (but those at the
   * seqs the new run's events take), and writing the new step rows (`steps`) and events (`events`, over the old
   * ones of their seqs), when `when`. `rows`: the step rows and their indexes (default: the `steps` and `written`
   * parameters).
   */
  const replaceChildrenCtes = (
    P: ParamRefs<'run_id' | 'steps' | 'written' | 'events'>,
    when: string,
    rows: { steps: string; written: string } = { steps: P.ref('steps'), written: P.ref('written') },
  ) => `
      ds AS (DELETE FROM ${n.steps} s WHERE s.run_id = ${P.ref('run_id')} AND NOT (s.idx = ANY (${rows.written})) AND ${when}),
      dg AS (DELETE FROM ${n.signals} g WHERE g.run_id = ${P.ref('run_id')} AND ${when}),
      di AS (DELETE FROM ${n.signalIds} gi WHERE gi.run_id = ${P.ref('run_id')} AND ${when}),
      de AS (
        DELETE FROM ${n.events} h WHERE h.run_id = ${P.ref('run_id')}
          AND (h.seq > ${eventCount(P)} OR h.seq <= ${eventCount(P)} - ${RUN_HISTORY_LIMIT}) AND ${when}
      ),
      st AS (${upsertStepsSql(n, `json_to_recordset(${rows.steps}) AS x(${STEP_ROW_COLUMNS}) WHERE ${when}`, P.ref('run_id'))}),
      ea AS (${appendEventsSql(n, {
        from: `(SELECT ${P.ref('run_id')} AS run_id) AS nr`,
        runId: 'nr.run_id',
        lastSeq: `cardinality(${P.ref('events')})`,
        bodies: P.ref('events'),
        when,
        overwrite: true,
      })})`;

  /**
   * A run with flow control (`createRunFlow`), or any replacement (`mode` `replace`: `replaceRunLocked`;
   * `replaceSingle`: `replaceRun`, with `rows`): ONE statement that decides whether the run is claimed at once and
   * writes it so.
   *
   * - `nr`: when it is due (`due_ms` from now, or `due_at`; now when neither), the counters it needs (`ckey`: a slot,
   *   F2; `rkey`: a begin, F3, only when `fresh`), and with `replace` the slot the replaced run gives back (`okey`,
   *   read by `o` under the old row's lock).
   * - `kl` locks those counters in key order (only when the lease is wanted (`want`: asked for and due now); the
   *   replaced run's always), so that the admission reads the committed truth (as a claim does, see
   *   postgres.claim.sql.ts); without a lease they are only read (`cnt`, for `blocked_by`).
   * - `adm`: `leased` when wanted, every counter it needs exists (`missing`: one was created after this statement's
   *   snapshot, or never: nothing is written but the counters (`fki`), and the caller sends the statement again,
   *   `retry`) and has room: `held` (less the replaced run's slot of the same key) `< limit` (F2), the rate window not
   *   full (F3). Otherwise (F4) the run is created `pending`, due when given, with no lease and the step rows without
   *   the `running` entry (`steps_idle`).
   * - `fki` creates the counters of its keys (before any claim can see the run: same statement); `ku` takes its slot
   *   and records its begin when leased, and gives the replaced run's slot back, once the run is written (input
   *   through scalar subqueries: see the NOTE of the claim statements in postgres.claim.sql.ts).
   *
   * A replacement: the run row takes the new run's values in place, an upsert, so that concurrent replacements of one
   * id queue on its row lock and each one finds the row its predecessor committed (`generation` counts them). The old
   * run's lease holder (a row was there: generation > 1) is told. It applies only when `o` has read the row it
   * replaces (else the row was created after the snapshot: no row returned, the caller tries again). `replaceSingle`:
   * the whole replacement in one statement, the old run's steps and signals deleted and the new step rows written too.
   * It applies only when the row it locks is the version its snapshot saw (same `xmin`): otherwise a writer of the old
   * run committed in between, whose rows the statement cannot see, and it returns no run (changing nothing); the
   * caller then sends `replaceRunLocked` (the upsert alone) and `replaceChildren` in one transaction.
   *
   * Returns one row (`retry`, `leased`, `due_at`, `blocked_by`), with the run's columns when it was written.
   */
  const flowStatement = (
    P: ParamRefs<FlowRowParam>,
    mode: 'keep' | 'replace' | 'replaceSingle',
    rows?: ParamRefs<FlowRowsParam> | ParamRefs<NewRowsParam>,
  ) => {
    const replace = mode !== 'keep';
    const leased = (value: string) => `CASE WHEN adm.leased THEN ${value} END`;
    const stepRowsOf = (R: ParamRefs<FlowRowsParam>) => ({
      steps: `(SELECT CASE WHEN adm.idle THEN ${R.ref('steps_idle')} ELSE ${R.ref('steps')} END FROM adm)`,
      written: `(SELECT CASE WHEN adm.idle THEN ${R.ref('written_idle')} ELSE ${R.ref('written')} END FROM adm)::integer[]`,
    });
    const held = (key: string) =>
      `COALESCE((SELECT kl.held FROM kl WHERE kl.key = ${key}), (SELECT fs.held FROM ${n.flowKeys} fs WHERE fs.key = ${key}), 0)`;
    const begins = (key: string) =>
      `COALESCE((SELECT kl.begins FROM kl WHERE kl.key = ${key}), (SELECT fs.begins FROM ${n.flowKeys} fs WHERE fs.key = ${key}),
          ARRAY[]::timestamptz[])`;
    const written = replace ? 'up' : 'ins';
    return `
      WITH ${newRunTime},${
        replace
          ? `
      o AS MATERIALIZED (SELECT r.conc_key, r.slot_held FROM ${n.runs} r WHERE r.run_id = ${P.ref('run_id')} FOR NO KEY UPDATE),`
          : ''
      }
      nr AS MATERIALIZED (
        SELECT t.ts, COALESCE(${dueExpr('t.ts', P.ref('due_ms'), P.ref('due_at'))}, t.ts) AS due,
          ${concKey(P.ref('conc_key'))} AS ckey,
          CASE WHEN ${P.ref('fresh')} THEN ${rateKey(P.ref('rate_key'))} END AS rkey,
          ${replace ? `(SELECT ${concKey('o.conc_key')} FROM o WHERE o.slot_held)` : 'NULL::text'} AS okey
        FROM t
      ),
      nw AS MATERIALIZED (
        SELECT nr.*, (${P.ref('lease_token')} IS NOT NULL AND nr.due <= nr.ts AND (nr.ckey IS NOT NULL OR nr.rkey IS NOT NULL)) AS gated,
          (${P.ref('lease_token')} IS NOT NULL AND nr.due <= nr.ts) AS want
        FROM nr
      ),
      kl AS MATERIALIZED (
        SELECT f.key, f.held, f.begins FROM ${n.flowKeys} f
        WHERE f.key = ANY (ARRAY(
          SELECT u.key FROM nw CROSS JOIN unnest(ARRAY[CASE WHEN nw.gated THEN nw.ckey END, CASE WHEN nw.gated THEN nw.rkey END, nw.okey]) AS u(key)
        ))
        ORDER BY f.key
        FOR NO KEY UPDATE
      ),
      cnt AS MATERIALIZED (
        SELECT nw.*,
          (nw.gated AND ((nw.ckey IS NOT NULL AND NOT EXISTS (SELECT 1 FROM kl WHERE kl.key = nw.ckey))
                      OR (nw.rkey IS NOT NULL AND NOT EXISTS (SELECT 1 FROM kl WHERE kl.key = nw.rkey)))) AS missing,
          (nw.ckey IS NULL OR ${held('nw.ckey')} - CASE WHEN nw.okey = nw.ckey THEN 1 ELSE 0 END < ${P.ref('conc_limit')}) AS c_ok,
          (nw.rkey IS NULL OR NOT ${rateFull(begins('nw.rkey'), P.ref('rate_limit'), P.ref('rate_per_ms'), 'nw.ts')}) AS r_ok
        FROM nw
      ),
      lv AS MATERIALIZED (SELECT cnt.*, (cnt.want AND NOT cnt.missing AND cnt.c_ok AND cnt.r_ok) AS leased FROM cnt),
      adm AS MATERIALIZED (SELECT lv.*, (${P.ref('lease_token')} IS NOT NULL AND NOT lv.leased) AS idle FROM lv),
      fki AS (
        INSERT INTO ${n.flowKeys} (key)
        SELECT k.key FROM unnest(ARRAY[${concKey(P.ref('conc_key'))}, ${rateKey(P.ref('rate_key'))}]) AS k(key) WHERE k.key IS NOT NULL
        ON CONFLICT (key) DO NOTHING
      ),
      ${written} AS (
        INSERT INTO ${n.runs} AS r (run_id, workflow, version, status, input, state, current_step, pause_requested, due_at,
                               lease_owner, lease_token, lease_expires_at, created_at, updated_at, live_step, live_index, pipeline,
                               event_seq, priority, conc_key, conc_limit, conc_scope, slot_held, rate_key, rate_limit, rate_per_ms)
        SELECT ${P.ref('run_id')}, ${P.ref('workflow')}, ${P.ref('version')}, CASE WHEN adm.leased THEN 'running' ELSE 'pending' END,
               ${P.ref('input')}, ${P.ref('state')}, ${P.ref('current_step')}, false, adm.due,
               ${leased(P.ref('lease_owner'))}, ${leased(P.ref('lease_token'))}, ${leased(addMs('adm.ts', P.ref('lease_ms')))}, adm.ts, adm.ts,
               CASE WHEN NOT adm.idle THEN ${P.ref('live')} END, CASE WHEN NOT adm.idle THEN ${P.ref('live_index')} END,
               ${P.ref('pipeline')}, ${eventCount(P)},
               COALESCE(${P.ref('priority')}, 0), ${P.ref('conc_key')}, ${P.ref('conc_limit')}, ${P.ref('conc_scope')},
               adm.leased AND adm.ckey IS NOT NULL, ${P.ref('rate_key')}, ${P.ref('rate_limit')}, ${P.ref('rate_per_ms')}
        FROM adm WHERE NOT adm.missing${
          replace
            ? `
        ON CONFLICT (run_id) DO UPDATE SET
          workflow = EXCLUDED.workflow, version = EXCLUDED.version, status = EXCLUDED.status, input = EXCLUDED.input,
          output = NULL, error = NULL, current_step = EXCLUDED.current_step, state = EXCLUDED.state, next_input = NULL,
          next_input_signal = NULL, wait_signals = NULL, wait_until = NULL, resume_status = NULL, cancel_compensate = NULL, pause_requested = false,
          due_at = EXCLUDED.due_at, lease_owner = EXCLUDED.lease_owner, lease_token = EXCLUDED.lease_token,
          lease_expires_at = EXCLUDED.lease_expires_at, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
          finished_at = NULL, live_step = EXCLUDED.live_step, live_index = EXCLUDED.live_index,
          event_seq = EXCLUDED.event_seq, pipeline = EXCLUDED.pipeline, parent_run_id = NULL, children_ended = NULL,
          children_failed = NULL, children_wait_ended_at_least = NULL, children_fail_fast = NULL, generation = r.generation + 1,
          priority = EXCLUDED.priority, conc_key = EXCLUDED.conc_key, conc_limit = EXCLUDED.conc_limit,
          conc_scope = EXCLUDED.conc_scope, slot_held = EXCLUDED.slot_held, rate_key = EXCLUDED.rate_key,
          rate_limit = EXCLUDED.rate_limit, rate_per_ms = EXCLUDED.rate_per_ms, debounce_key = NULL, debounce_first = NULL
        WHERE EXISTS (SELECT 1 FROM o)${
          mode === 'replaceSingle' ? ` AND r.xmin = (SELECT s0.xmin FROM ${n.runs} s0 WHERE s0.run_id = ${P.ref('run_id')})` : ''
        }`
            : `
        ON CONFLICT (run_id) DO NOTHING`
        }
        RETURNING r.run_id, r.created_at, r.lease_expires_at, r.generation, r.event_seq
      ),${
        mode === 'replaceSingle'
          ? `${replaceChildrenCtes(rows as ParamRefs<FlowRowsParam>, 'EXISTS (SELECT 1 FROM up)', stepRowsOf(rows as ParamRefs<FlowRowsParam>))},`
          : mode === 'keep'
            ? `
      st AS (${upsertStepsSql(
        n,
        `ins CROSS JOIN adm CROSS JOIN json_to_recordset(CASE WHEN adm.idle THEN ${(rows as ParamRefs<NewRowsParam>).ref('steps_idle')} ELSE ${(rows as ParamRefs<NewRowsParam>).ref('steps')} END)
          AS x(${STEP_ROW_COLUMNS})`,
        'ins.run_id',
      )}),
      ea AS (${appendEventsSql(n, { from: 'ins', runId: 'ins.run_id', lastSeq: 'ins.event_seq', bodies: P.ref('events') })}),`
            : ''
      }
      ku AS (
        UPDATE ${n.flowKeys} f SET
          held = GREATEST(f.held + (
            SELECT CASE WHEN adm.leased AND f.key = adm.ckey THEN 1 ELSE 0 END - CASE WHEN f.key = adm.okey THEN 1 ELSE 0 END FROM adm
          ), 0),
          begins = CASE WHEN (SELECT adm.leased AND f.key = adm.rkey FROM adm)
            THEN ${pushBegins('f.begins', '1', P.ref('rate_limit'), P.ref('rate_per_ms'), '(SELECT adm.ts FROM adm)')} ELSE f.begins END
        WHERE f.key = ANY (ARRAY(SELECT kl.key FROM kl))
          AND f.key = ANY (ARRAY(
            SELECT u.key FROM adm CROSS JOIN unnest(ARRAY[CASE WHEN adm.leased THEN adm.ckey END, CASE WHEN adm.leased THEN adm.rkey END, adm.okey]) AS u(key)
          ))
          AND EXISTS (SELECT 1 FROM ${written})
      ),
      e AS (SELECT ${written}.*, CASE WHEN NOT adm.leased AND adm.due <= adm.ts THEN 'ready' END AS evt FROM ${written} CROSS JOIN adm)
      SELECT adm.missing AS retry, adm.leased, adm.idle, ${ms('adm.due')} AS due_at,
        CASE WHEN NOT adm.leased AND adm.due <= adm.ts THEN
          CASE WHEN NOT adm.c_ok THEN 'concurrency' WHEN NOT adm.r_ok THEN 'rate-limit' END
        END AS blocked_by,
        e.run_id, ${ms('e.created_at')} AS created_at, ${ms('e.lease_expires_at')} AS lease_expires_at, e.generation, e.evt,${
          replace
            ? `
        CASE WHEN e.generation > 1 THEN ${notify(`'control'`, 'e.run_id')} END AS notified_control,`
            : ''
        }
        CASE WHEN e.evt IS NOT NULL THEN ${notify('e.evt', 'e.run_id')} END AS notified, ${lastEventSeq(P)}
      FROM adm LEFT JOIN e ON true`;
  };

  /**
   * Rule D (`createRunDebounce`): the run of the debounce key `db_key` takes this start when it is still `pending`
   * and has never been claimed (no lease, no step entry): its input and state, `due_at` = now + `db_delay`, never later
   * than its first creation + `db_max` (`created` false). Otherwise the run is created with the key, due in `db_delay`
   * (never claimed at once, without a `running` step entry), `debounce_first` = now. One upsert on the partial unique
   * index of the key: concurrent starts with one key queue on it and give one run. A run that holds the key but takes
   * no starts any more (e.g. paused) makes the upsert do nothing: `clr` takes the key from it, no row is returned, and
   * the caller sends the statement again. An existing `run_id` (never, for the engine's fresh ids) writes nothing too.
   */
  const debounceStatement = (P: ParamRefs<(typeof NEW_RUN_ARGS.createRunDebounce.names)[number]>) => `
      WITH ${newRunTime},
      up AS (
        INSERT INTO ${n.runs} AS r (run_id, workflow, version, status, input, state, current_step, pause_requested, due_at,
                               created_at, updated_at, pipeline, event_seq, priority, conc_key, conc_limit, conc_scope,
                               rate_key, rate_limit, rate_per_ms, debounce_key, debounce_first)
        SELECT ${P.ref('run_id')}, ${P.ref('workflow')}, ${P.ref('version')}, 'pending', ${P.ref('input')}, ${P.ref('state')},
               ${P.ref('current_step')}, false, ${addMs('t.ts', P.ref('db_delay'))}, t.ts, t.ts, ${P.ref('pipeline')}, ${eventCount(P)},
               COALESCE(${P.ref('priority')}, 0), ${P.ref('conc_key')}, ${P.ref('conc_limit')}, ${P.ref('conc_scope')},
               ${P.ref('rate_key')}, ${P.ref('rate_limit')}, ${P.ref('rate_per_ms')}, ${P.ref('db_key')}, t.ts
        FROM t WHERE NOT EXISTS (SELECT 1 FROM ${n.runs} x WHERE x.run_id = ${P.ref('run_id')})
        ON CONFLICT (debounce_key) WHERE debounce_key IS NOT NULL DO UPDATE SET
          input = EXCLUDED.input, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at,
          due_at = LEAST(EXCLUDED.due_at, ${addMs('r.debounce_first', P.ref('db_max'))})
        WHERE r.status = 'pending' AND r.lease_token IS NULL AND ${noSteps(n, 'r')}
        RETURNING ${runColumns('r')}, r.event_seq, r.run_id = ${P.ref('run_id')} AS created,
          (r.run_id = ${P.ref('run_id')} AND r.due_at <= r.created_at) AS ready
      ),
      fki AS (
        INSERT INTO ${n.flowKeys} (key)
        SELECT k.key FROM up CROSS JOIN unnest(ARRAY[${concKey(P.ref('conc_key'))}, ${rateKey(P.ref('rate_key'))}]) AS k(key)
        WHERE up.created AND k.key IS NOT NULL
        ON CONFLICT (key) DO NOTHING
      ),
      st AS (${upsertStepsSql(n, `up CROSS JOIN json_to_recordset(${P.ref('steps_idle')}) AS x(${STEP_ROW_COLUMNS}) WHERE up.created`, 'up.run_id')}),
      ea AS (${appendEventsSql(n, { from: 'up', runId: 'up.run_id', lastSeq: 'up.event_seq', bodies: P.ref('events'), when: 'up.created' })}),
      clr AS (
        UPDATE ${n.runs} r SET debounce_key = NULL
        WHERE r.debounce_key = ${P.ref('db_key')} AND NOT EXISTS (SELECT 1 FROM up)
          AND NOT (r.status = 'pending' AND r.lease_token IS NULL AND ${noSteps(n, 'r')})
      )
      SELECT up.*, CASE WHEN up.ready THEN 'ready' END AS evt, CASE WHEN up.ready THEN ${notify(`'ready'`, 'up.run_id')} END AS notified,
        CASE WHEN up.created AND cardinality(${P.ref('events')}) > 0 THEN up.event_seq END AS last_event_seq
      FROM up`;

  /**
   * The parts the start batches (`createRunBatch`, `createRunFlowBatch`) share: `p`, the runs of `$1` (`columns`: their
   * column definition list after `k`), estimated at 1 row (`k BETWEEN …`, see the batch checkpoint's `p`); and, for the
   * runs `ins` wrote, their step rows (`st`) and first events (`ea`). CTEs, each followed by a comma.
   */
  const batchInput = (columns: string) => `
      WITH p AS MATERIALIZED (
        SELECT * FROM json_to_recordset($1::json) AS x(k integer, ${columns}) WHERE x.k BETWEEN 0 AND 2147483647
      ),`;
  const batchChildren = `
      st AS (${upsertStepsSql(n, `ins JOIN p ON p.run_id = ins.run_id CROSS JOIN json_to_recordset(p.steps) AS x(${STEP_ROW_COLUMNS})`, 'ins.run_id')}),
      ea AS (${appendEventsSql(n, { from: 'ins JOIN p ON p.run_id = ins.run_id', runId: 'ins.run_id', lastSeq: 'ins.event_seq', bodies: 'p.events' })}),`;

  /**
   * Group commit of starts (`createRunBatch`): the plain new runs of `$1`, a JSON array of objects, one per run: `k`, its
   * position, and the parameters of the plain statements by name (`steps` an array of step rows or null, `events` an
   * array or null). Each run is written unless its id exists, as by `createRunWithEvents`. Returns one row per run
   * written, with `k`; a run whose id exists has none (the caller sends that start alone, which decides). `p` is
   * estimated at 1 row (`k BETWEEN …`, see the batch checkpoint's `p`).
   */
  const createRunBatch = (() => {
    const B: ParamRefs<RunRowParam | 'events'> = { ref: (name) => `p.${name}` };
    const columns = NEW_RUN_PARAMS.specs.map(([name, type]) => `${name} ${type}`).join(', ');
    return `${batchInput(columns)}
      ${newRunTime},
      ins AS (${newRunInsert(B, B, 'p CROSS JOIN t')}
        ON CONFLICT (run_id) DO NOTHING
        RETURNING r.run_id, r.created_at, r.lease_expires_at, r.generation, r.event_seq
      ),${batchChildren}
      e AS (
        SELECT ins.*, p.k, CASE WHEN p.ready THEN 'ready' END AS evt, cardinality(p.events) > 0 AS has_events
        FROM ins JOIN p ON p.run_id = ins.run_id
      )
      SELECT e.k, ${ms('e.created_at')} AS created_at, ${ms('e.lease_expires_at')} AS lease_expires_at, e.generation, e.evt,
        CASE WHEN e.evt IS NOT NULL THEN ${notify('e.evt', 'e.run_id')} END AS notified,
        CASE WHEN e.has_events THEN e.event_seq END AS last_event_seq
      FROM e`;
  })();

  /**
   * Group commit of keyed starts (`createRunFlowBatch`): the starts of `$1` (objects as `createRunBatch`'s, with
   * `priority`, `conc_key`, `conc_limit` and `conc_scope`; each one wants its lease now, has a concurrency key and no
   * rate limit: {@link fitsFlowBatch}) that rule F2 admits at once, written leased and holding their key's slot, as
   * `createRunFlow` writes them. `kl` locks the keys' counters in key order (as claims and batches do: no deadlock),
   * `adm` admits the starts of each key in batch order while its slots last: the n-th start of a key is admitted when
   * `held + n <= conc_limit` (starts it admits before it all count, whatever their limits: never more than a start's own
   * limit), and `ku` takes one slot per run written. A start it does not write (its key has no counter yet, no slot is
   * free, its id exists) returns no row: the caller sends it alone by `createRunFlow`, which decides (creates the
   * counter, writes it `pending` and blocked, reads the existing run). Returns one row per run written, with `k`, as
   * `createRunFlow`'s.
   */
  const createRunFlowBatch = (() => {
    const columns = [...NEW_RUN_PARAMS.specs, ...FLOW_BATCH_PARAMS].map(([name, type]) => `${name} ${type}`).join(', ');
    return `${batchInput(columns)}
      ${newRunTime},
      kl AS MATERIALIZED (
        SELECT f.key, f.held FROM ${n.flowKeys} f WHERE f.key = ANY (ARRAY(SELECT ${concKey('p.conc_key')} FROM p))
        ORDER BY f.key
        FOR NO KEY UPDATE
      ),
      adm AS MATERIALIZED (
        SELECT q.* FROM (
          SELECT p.*, kl.held + row_number() OVER (PARTITION BY kl.key ORDER BY p.k) AS nth
          FROM p JOIN kl ON kl.key = ${concKey('p.conc_key')}
        ) q
        WHERE q.nth <= q.conc_limit
      ),
      ins AS (
        INSERT INTO ${n.runs} AS r (run_id, workflow, version, status, input, state, current_step, pause_requested, due_at,
                               lease_owner, lease_token, lease_expires_at, created_at, updated_at, live_step, live_index, pipeline,
                               event_seq, priority, conc_key, conc_limit, conc_scope, slot_held)
        SELECT adm.run_id, adm.workflow, adm.version, 'running', adm.input, adm.state, adm.current_step, false, t.ts,
               adm.lease_owner, adm.lease_token, ${addMs('t.ts', 'adm.lease_ms')}, t.ts, t.ts, adm.live, adm.live_index, adm.pipeline,
               COALESCE(cardinality(adm.events), 0), COALESCE(adm.priority, 0), adm.conc_key, adm.conc_limit, adm.conc_scope, true
        FROM adm CROSS JOIN t
        ON CONFLICT (run_id) DO NOTHING
        RETURNING r.run_id, r.created_at, r.lease_expires_at, r.generation, r.event_seq, ${concKey('r.conc_key')} AS ckey
      ),${batchChildren}
      ku AS (
        UPDATE ${n.flowKeys} f SET held = f.held + (SELECT count(*)::integer FROM ins WHERE ins.ckey = f.key)
        WHERE f.key = ANY (ARRAY(SELECT ins.ckey FROM ins))
      )
      SELECT p.k, false AS retry, true AS leased, false AS idle, ${ms('t.ts')} AS due_at, NULL::text AS blocked_by,
        ins.run_id, ${ms('ins.created_at')} AS created_at, ${ms('ins.lease_expires_at')} AS lease_expires_at, ins.generation,
        NULL::text AS evt, CASE WHEN cardinality(p.events) > 0 THEN ins.event_seq END AS last_event_seq
      FROM ins JOIN p ON p.run_id = ins.run_id CROSS JOIN t`;
  })();

  const live = sqlList(LIVE_STATUSES);

  return {
    createRun: createRunStatement(NEW_RUN_ARGS.createRun, NEW_RUN_ARGS.createRun.ref('steps')),
    createRunWithoutSteps: createRunStatement(NEW_RUN_ARGS.createRunWithoutSteps),
    createRunWithEvents: createRunStatement(
      NEW_RUN_ARGS.createRunWithEvents,
      NEW_RUN_ARGS.createRunWithEvents.ref('steps'),
      NEW_RUN_ARGS.createRunWithEvents,
    ),
    createRunWithoutStepsWithEvents: createRunStatement(
      NEW_RUN_ARGS.createRunWithoutStepsWithEvents,
      undefined,
      NEW_RUN_ARGS.createRunWithoutStepsWithEvents,
    ),

    createRunBatch,
    createRunFlowBatch,
    createRunFlow: flowStatement(NEW_RUN_ARGS.createRunFlow, 'keep', NEW_RUN_ARGS.createRunFlow),
    createRunDebounce: debounceStatement(NEW_RUN_ARGS.createRunDebounce),
    replaceRun: flowStatement(NEW_RUN_ARGS.replaceRun, 'replaceSingle', NEW_RUN_ARGS.replaceRun),
    replaceRunLocked: flowStatement(NEW_RUN_ARGS.replaceRunLocked, 'replace'),

    // After replaceRunLocked, in its transaction (a statement of its own, so that its snapshot, taken once the run's
    // row was locked, sees every row a commit of the old run wrote): the old run's signals, steps and events go, the
    // new run's step rows and events are written (over the old rows of their indexes and seqs).
    replaceChildren: `
      WITH ${replaceChildrenCtes(NEW_RUN_ARGS.replaceChildren, 'true')}
      SELECT 1 AS done`,

    getRun: `SELECT ${runColumns('r')}, ${blockedBy(n, 'r')} AS blocked_by, ${stepsOf(n, 'r.run_id')} AS steps
      FROM ${n.runs} r WHERE r.run_id = $1::text`,

    // $1 run ids (text[]): what a parent reads of itself (`children_ended`) and of its children, in one statement (one
    // snapshot). `held`: pending and not due (not released yet).
    getRunOutcomes: `
      SELECT r.run_id, r.status, r.output, r.error::text AS error, r.parent_run_id,
        (r.status = 'pending' AND r.due_at IS NULL) AS held, r.children_ended
      FROM ${n.runs} r WHERE r.run_id = ANY ($1::text[])`,

    // $1 run_id, $2 after seq, $3 limit
    listEvents: `
      SELECT h.seq, h.body FROM ${n.events} h WHERE h.run_id = $1::text AND h.seq > $2::integer
      ORDER BY h.seq LIMIT $3::integer`,

    // $1 statuses (text[]), $2 older than ms, $3 batch size
    purge: `
      WITH c AS (
        SELECT r.run_id FROM ${n.runs} r
        WHERE r.status = ANY($1::text[]) AND r.status IN ${terminal}
          AND r.finished_at < now() - $2::float8 * interval '1 millisecond'
        LIMIT $3::integer
        FOR UPDATE SKIP LOCKED
      ),
      d AS (DELETE FROM ${n.runs} r WHERE r.run_id = ANY (ARRAY(SELECT c.run_id FROM c)) RETURNING 1),
      -- NOTE: no foreign keys (see the schema): the runs' steps, signals and events go here. Nothing writes them for a run
      -- that is terminal and row-locked, so this statement's snapshot sees them all.
      ds AS (DELETE FROM ${n.steps} s WHERE s.run_id = ANY (ARRAY(SELECT c.run_id FROM c))),
      dg AS (DELETE FROM ${n.signals} g WHERE g.run_id = ANY (ARRAY(SELECT c.run_id FROM c))),
      di AS (DELETE FROM ${n.signalIds} gi WHERE gi.run_id = ANY (ARRAY(SELECT c.run_id FROM c))),
      de AS (DELETE FROM ${n.events} h WHERE h.run_id = ANY (ARRAY(SELECT c.run_id FROM c)))
      SELECT count(*)::integer AS deleted FROM d`,

    // countRuns: runs per status, of all workflows or of one ($1). A scan of the runs (the planner picks a seq scan +
    // HashAggregate, or the workflow list index for a small workflow): ~15–20 ms for 100,000 runs, so no index of its own.
    countRuns: `SELECT r.status, count(*)::integer AS n FROM ${n.runs} r GROUP BY r.status`,
    countRunsForWorkflow: `SELECT r.status, count(*)::integer AS n FROM ${n.runs} r WHERE r.workflow = $1::text GROUP BY r.status`,

    // summarizeLiveRuns: the live runs by (workflow, version, pipeline, current step), with a few ids each. NOTE: the
    // `status IN` of the live class is the leading column of the status list index, so the planner reads the live
    // runs' entries of it and never an ended run (~15 ms for 10,000 live runs among 1,000,000).
    summarizeLiveRuns: `
      SELECT r.workflow, r.version, r.pipeline, r.current_step, count(*)::integer AS n,
        to_json((array_agg(r.run_id))[1:${LIVE_GROUP_SAMPLE}])::text AS run_ids
      FROM ${n.runs} r WHERE r.status IN ${live}
      GROUP BY r.workflow, r.version, r.pipeline, r.current_step`,

    // $1 fingerprint, $2 body: written once (a fingerprint always names the same body).
    savePipeline: `INSERT INTO ${n.pipelines} (fingerprint, body) VALUES ($1::text, $2::text) ON CONFLICT (fingerprint) DO NOTHING`,
    // $1 fingerprints (text[])
    getPipelines: `SELECT p.fingerprint, p.body FROM ${n.pipelines} p WHERE p.fingerprint = ANY($1::text[])`,

    // $1 run_id. The queued signals of a live run: per name, FIFO by id (the signals queue index's order). An ended
    // run has none (its terminal commit deletes them; the check covers the instant before a stale one is dropped).
    listSignals: `
      SELECT g.name, g.payload FROM ${n.signals} g
      WHERE g.run_id = $1::text
        AND EXISTS (SELECT 1 FROM ${n.runs} r WHERE r.run_id = $1::text AND r.status NOT IN ${terminal})
      ORDER BY g.name, g.id`,

    list({ workflow, statuses, createdFrom, createdTo, after, parentRunId }: ListFilter): string {
      const where: string[] = [];
      const params: string[] = [];
      const next = () => `$${params.push('x')}`;
      if (parentRunId) where.push(`r.parent_run_id = ${next()}::text`);
      if (workflow) where.push(`r.workflow = ${next()}::text`);
      if (statuses) where.push(`r.status = ANY(${next()}::text[])`);
      // NOTE: plain ranges on created_at, so each list index (… created_at DESC, run_id DESC) scans only the range.
      if (createdFrom) where.push(`r.created_at >= ${fromMs(`${next()}::float8`)}`);
      if (createdTo) where.push(`r.created_at < ${fromMs(`${next()}::float8`)}`);
      if (after) {
        const at = next();
        const id = next();
        where.push(`(r.created_at, r.run_id) < (${fromMs(`${at}::float8`)}, ${id}::text)`);
      }
      const limit = next();
      return `SELECT ${runColumns('r')}, ${blockedBy(n, 'r')} AS blocked_by, ${stepsOf(n, 'r.run_id')} AS steps FROM ${n.runs} r
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY r.created_at DESC, r.run_id DESC
        LIMIT ${limit}::integer`;
    },
  };
}
