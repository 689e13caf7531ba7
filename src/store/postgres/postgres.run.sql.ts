import { LIVE_STATUSES, TERMINAL_STATUSES } from '../run-state-machine.js';
import { type ParamRefs, ParamTable } from './postgres.params.js';
import { type SchemaNames, sqlList } from './postgres.schema.js';
import { LIVE_GROUP_SAMPLE, RUN_HISTORY_LIMIT } from '../workflow-store.interface.js';
import {
  addMs,
  appendEventsSql,
  fromMs,
  ms,
  notifyExpr,
  runColumns,
  STEP_ROW_COLUMNS,
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

/** Name of a parameter of the statements that write a new run. */
export type NewRunParam = (typeof NEW_RUN_PARAMS)['specs'][number][0];

/** The parameters of the run row (without the step rows and the events). */
type RunRowParam = Exclude<NewRunParam, 'steps' | 'written' | 'events'>;

/**
 * The parameters of each statement that writes a new run: `NEW_RUN_ARGS.createRun.values(byName)` is the values
 * array of `createRun`. `WithoutSteps` and `replaceRunLocked` write no step rows; `replaceChildren` only those and
 * the events. `createRun` and `createRunWithoutSteps` write no events (`…WithEvents` do); the replacements always
 * take `events` (null: none), since they delete the replaced run's history anyway.
 */
export const NEW_RUN_ARGS = {
  createRun: NEW_RUN_PARAMS.without('written', 'events'),
  createRunWithoutSteps: NEW_RUN_PARAMS.without('steps', 'written', 'events'),
  createRunWithEvents: NEW_RUN_PARAMS.without('written'),
  createRunWithoutStepsWithEvents: NEW_RUN_PARAMS.without('steps', 'written'),
  replaceRun: NEW_RUN_PARAMS,
  replaceRunLocked: NEW_RUN_PARAMS.without('steps', 'written'),
  replaceChildren: NEW_RUN_PARAMS.only('run_id', 'steps', 'written', 'events'),
};

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
  const newRunInsert = (P: ParamRefs<RunRowParam>, events?: ParamRefs<'events'>) => `
        INSERT INTO ${n.runs} AS r (run_id, workflow, version, status, input, state, current_step, pause_requested, due_at,
                               lease_owner, lease_token, lease_expires_at, created_at, updated_at, live_step, live_index, pipeline${events ? ', event_seq' : ''})
        SELECT ${P.ref('run_id')}, ${P.ref('workflow')}, ${P.ref('version')}, ${P.ref('status')}, ${P.ref('input')}, ${P.ref('state')}, ${P.ref('current_step')}, false, t.ts,
               ${P.ref('lease_owner')}, ${P.ref('lease_token')}, CASE WHEN ${P.ref('lease_token')} IS NULL THEN NULL ELSE ${addMs('t.ts', P.ref('lease_ms'))} END, t.ts, t.ts, ${P.ref('live')}, ${P.ref('live_index')}, ${P.ref('pipeline')}${
                 events ? `, ${eventCount(events)}` : ''
               }
        FROM t`;

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
   * ones of their seqs), when `when`.
   */
  const replaceChildrenCtes = (P: ParamRefs<'run_id' | 'steps' | 'written' | 'events'>, when: string) => `
      ds AS (DELETE FROM ${n.steps} s WHERE s.run_id = ${P.ref('run_id')} AND NOT (s.idx = ANY (${P.ref('written')})) AND ${when}),
      dg AS (DELETE FROM ${n.signals} g WHERE g.run_id = ${P.ref('run_id')} AND ${when}),
      di AS (DELETE FROM ${n.signalIds} gi WHERE gi.run_id = ${P.ref('run_id')} AND ${when}),
      de AS (
        DELETE FROM ${n.events} h WHERE h.run_id = ${P.ref('run_id')}
          AND (h.seq > ${eventCount(P)} OR h.seq <= ${eventCount(P)} - ${RUN_HISTORY_LIMIT}) AND ${when}
      ),
      st AS (${upsertStepsSql(n, `json_to_recordset(${P.ref('steps')}) AS x(${STEP_ROW_COLUMNS}) WHERE ${when}`, P.ref('run_id'))}),
      ea AS (${appendEventsSql(n, {
        from: `(SELECT ${P.ref('run_id')} AS run_id) AS nr`,
        runId: 'nr.run_id',
        lastSeq: `cardinality(${P.ref('events')})`,
        bodies: P.ref('events'),
        when,
        overwrite: true,
      })})`;

  /**
   * `createRun` with `replace`: the run row takes the new run's values in place, an upsert, so that concurrent
   * replacements of one id queue on its row lock and each one finds the row its predecessor committed (`generation`
   * counts them). The old run's lease holder (a row was there: generation > 1) is told.
   *
   * `single`: the whole replacement in one statement, the old run's steps and signals deleted and the new step rows
   * written too. It applies only when the row it locks is the version its
   * snapshot saw (same `xmin`): otherwise a writer of the old run committed in between, whose rows the statement
   * cannot see, and it returns no row (changing nothing); the caller then sends `replaceRunLocked` (the upsert alone)
   * and `replaceChildren` in one transaction.
   */
  const replaceStatement = (P: ParamRefs<RunRowParam | 'events'>, single?: ParamRefs<'run_id' | 'steps' | 'written' | 'events'>) => `
      WITH ${newRunTime},
      up AS (${newRunInsert(P, P)}
        ON CONFLICT (run_id) DO UPDATE SET
          workflow = EXCLUDED.workflow, version = EXCLUDED.version, status = EXCLUDED.status, input = EXCLUDED.input,
          output = NULL, error = NULL, current_step = EXCLUDED.current_step, state = EXCLUDED.state, next_input = NULL,
          next_input_signal = NULL, wait_signals = NULL, wait_until = NULL, resume_status = NULL, cancel_compensate = NULL, pause_requested = false,
          due_at = EXCLUDED.due_at, lease_owner = EXCLUDED.lease_owner, lease_token = EXCLUDED.lease_token,
          lease_expires_at = EXCLUDED.lease_expires_at, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
          finished_at = NULL, live_step = EXCLUDED.live_step, live_index = EXCLUDED.live_index,
          event_seq = EXCLUDED.event_seq, pipeline = EXCLUDED.pipeline, parent_run_id = NULL, children_ended = NULL,
          children_failed = NULL, children_wait_ended_at_least = NULL, children_fail_fast = NULL, generation = r.generation + 1${
            single ? `
        WHERE r.xmin = (SELECT s0.xmin FROM ${n.runs} s0 WHERE s0.run_id = ${P.ref('run_id')})` : ''
          }
        RETURNING r.run_id, r.created_at, r.lease_expires_at, r.generation, r.event_seq
      ),${single ? `${replaceChildrenCtes(single, 'EXISTS (SELECT 1 FROM up)')},` : ''}
      e AS (SELECT up.*, CASE WHEN ${P.ref('ready')} THEN 'ready' END AS evt FROM up)
      SELECT ${ms('e.created_at')} AS created_at, ${ms('e.lease_expires_at')} AS lease_expires_at, e.generation, e.evt,
        CASE WHEN e.generation > 1 THEN ${notify(`'control'`, 'e.run_id')} END AS notified_control,
        CASE WHEN e.evt IS NOT NULL THEN ${notify('e.evt', 'e.run_id')} END AS notified, ${lastEventSeq(P)}
      FROM e`;

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

    replaceRun: replaceStatement(NEW_RUN_ARGS.replaceRun, NEW_RUN_ARGS.replaceRun),
    replaceRunLocked: replaceStatement(NEW_RUN_ARGS.replaceRunLocked),

    // After replaceRunLocked, in its transaction (a statement of its own, so that its snapshot, taken once the run's
    // row was locked, sees every row a commit of the old run wrote): the old run's signals, steps and events go, the
    // new run's step rows and events are written (over the old rows of their indexes and seqs).
    replaceChildren: `
      WITH ${replaceChildrenCtes(NEW_RUN_ARGS.replaceChildren, 'true')}
      SELECT 1 AS done`,

    getRun: `SELECT ${runColumns('r')}, ${stepsOf(n, 'r.run_id')} AS steps FROM ${n.runs} r WHERE r.run_id = $1::text`,

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
      return `SELECT ${runColumns('r')}, ${stepsOf(n, 'r.run_id')} AS steps FROM ${n.runs} r
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY r.created_at DESC, r.run_id DESC
        LIMIT ${limit}::integer`;
    },
  };
}
