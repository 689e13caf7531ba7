import { TERMINAL_STATUSES } from '../run-state-machine.js';
import { type ParamRefs, ParamTable } from './postgres.params.js';
import { type SchemaNames, sqlList } from './postgres.schema.js';
import { addMs, fromMs, ms, notifyExpr, runColumns, STEP_ROW_COLUMNS, stepsOf, upsertStepsSql } from './postgres.sql-fragments.js';

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
] as const);

/** Name of a parameter of the statements that write a new run. */
export type NewRunParam = (typeof NEW_RUN_PARAMS)['specs'][number][0];

/** The parameters of the run row (without the step rows). */
type RunRowParam = Exclude<NewRunParam, 'steps' | 'written'>;

/**
 * The parameters of each statement that writes a new run: `NEW_RUN_ARGS.createRun.values(byName)` is the values
 * array of `createRun`. `WithoutSteps` and `replaceRunLocked` write no step rows; `replaceChildren` only those.
 */
export const NEW_RUN_ARGS = {
  createRun: NEW_RUN_PARAMS.without('written'),
  createRunWithoutSteps: NEW_RUN_PARAMS.without('steps', 'written'),
  replaceRun: NEW_RUN_PARAMS,
  replaceRunLocked: NEW_RUN_PARAMS.without('steps', 'written'),
  replaceChildren: NEW_RUN_PARAMS.only('run_id', 'steps', 'written'),
};

/** The statements that create, replace, read, list and purge runs (see `Statements`). */
export function runStatements(n: SchemaNames) {
  const terminal = sqlList(TERMINAL_STATUSES);
  const notify = (type: string, runId: string) => notifyExpr(n, type, runId);

  /** Columns and values of a new run's row (parameters of `P`), `t.ts` its creation time. */
  const newRunInsert = (P: ParamRefs<RunRowParam>) => `
        INSERT INTO ${n.runs} AS r (run_id, workflow, version, status, input, state, current_step, pause_requested, due_at,
                               lease_owner, lease_token, lease_expires_at, created_at, updated_at, live_step, live_index)
        SELECT ${P.ref('run_id')}, ${P.ref('workflow')}, ${P.ref('version')}, ${P.ref('status')}, ${P.ref('input')}, ${P.ref('state')}, ${P.ref('current_step')}, false, t.ts,
               ${P.ref('lease_owner')}, ${P.ref('lease_token')}, CASE WHEN ${P.ref('lease_token')} IS NULL THEN NULL ELSE ${addMs('t.ts', P.ref('lease_ms'))} END, t.ts, t.ts, ${P.ref('live')}, ${P.ref('live_index')}
        FROM t`;
  const newRunTime = `t AS (SELECT date_trunc('milliseconds', clock_timestamp()) AS ts)`;

  /**
   * A new run, unless its id exists. `steps`: the placeholder of its rows for the steps table; none: no step rows to
   * write (the common start: only a live step).
   */
  const createRunStatement = (P: ParamRefs<RunRowParam>, steps?: string) => `
      WITH ${newRunTime},
      ins AS (${newRunInsert(P)}
        ON CONFLICT (run_id) DO NOTHING
        RETURNING r.run_id, r.created_at, r.lease_expires_at, r.generation
      ),${
        steps
          ? `
      st AS (${upsertStepsSql(n, `ins CROSS JOIN json_to_recordset(${steps}) AS x(${STEP_ROW_COLUMNS})`, 'ins.run_id')}),`
          : ''
      }
      e AS (SELECT ins.*, CASE WHEN ${P.ref('ready')} THEN 'ready' END AS evt FROM ins)
      SELECT ${ms('e.created_at')} AS created_at, ${ms('e.lease_expires_at')} AS lease_expires_at, e.generation, e.evt,
        CASE WHEN e.evt IS NOT NULL THEN ${notify('e.evt', 'e.run_id')} END AS notified
      FROM e`;

  /**
   * CTEs deleting the old run's steps (but those at the indexes `written`) and signals, and writing the new step
   * rows (`steps`), when `when`.
   */
  const replaceChildrenCtes = (P: ParamRefs<'run_id' | 'steps' | 'written'>, when: string) => `
      ds AS (DELETE FROM ${n.steps} s WHERE s.run_id = ${P.ref('run_id')} AND NOT (s.idx = ANY (${P.ref('written')})) AND ${when}),
      dg AS (DELETE FROM ${n.signals} g WHERE g.run_id = ${P.ref('run_id')} AND ${when}),
      st AS (${upsertStepsSql(n, `json_to_recordset(${P.ref('steps')}) AS x(${STEP_ROW_COLUMNS}) WHERE ${when}`, P.ref('run_id'))})`;

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
  const replaceStatement = (P: ParamRefs<RunRowParam>, single?: ParamRefs<'run_id' | 'steps' | 'written'>) => `
      WITH ${newRunTime},
      up AS (${newRunInsert(P)}
        ON CONFLICT (run_id) DO UPDATE SET
          workflow = EXCLUDED.workflow, version = EXCLUDED.version, status = EXCLUDED.status, input = EXCLUDED.input,
          output = NULL, error = NULL, current_step = EXCLUDED.current_step, state = EXCLUDED.state, next_input = NULL,
          wait_signal = NULL, wait_until = NULL, resume_status = NULL, cancel_compensate = NULL, pause_requested = false,
          due_at = EXCLUDED.due_at, lease_owner = EXCLUDED.lease_owner, lease_token = EXCLUDED.lease_token,
          lease_expires_at = EXCLUDED.lease_expires_at, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
          finished_at = NULL, live_step = EXCLUDED.live_step, live_index = EXCLUDED.live_index,
          generation = r.generation + 1${
            single ? `
        WHERE r.xmin = (SELECT s0.xmin FROM ${n.runs} s0 WHERE s0.run_id = ${P.ref('run_id')})` : ''
          }
        RETURNING r.run_id, r.created_at, r.lease_expires_at, r.generation
      ),${single ? `${replaceChildrenCtes(single, 'EXISTS (SELECT 1 FROM up)')},` : ''}
      e AS (SELECT up.*, CASE WHEN ${P.ref('ready')} THEN 'ready' END AS evt FROM up)
      SELECT ${ms('e.created_at')} AS created_at, ${ms('e.lease_expires_at')} AS lease_expires_at, e.generation, e.evt,
        CASE WHEN e.generation > 1 THEN ${notify(`'control'`, 'e.run_id')} END AS notified_control,
        CASE WHEN e.evt IS NOT NULL THEN ${notify('e.evt', 'e.run_id')} END AS notified
      FROM e`;

  return {
    createRun: createRunStatement(NEW_RUN_ARGS.createRun, NEW_RUN_ARGS.createRun.ref('steps')),
    createRunWithoutSteps: createRunStatement(NEW_RUN_ARGS.createRunWithoutSteps),

    replaceRun: replaceStatement(NEW_RUN_ARGS.replaceRun, NEW_RUN_ARGS.replaceRun),
    replaceRunLocked: replaceStatement(NEW_RUN_ARGS.replaceRunLocked),

    // After replaceRunLocked, in its transaction (a statement of its own, so that its snapshot, taken once the run's
    // row was locked, sees every row a commit of the old run wrote): the old run's signals and steps go, the new
    // run's step rows are written (over the old rows of their indexes).
    replaceChildren: `
      WITH ${replaceChildrenCtes(NEW_RUN_ARGS.replaceChildren, 'true')}
      SELECT 1 AS done`,

    getRun: `SELECT ${runColumns('r')}, ${stepsOf(n, 'r.run_id')} AS steps FROM ${n.runs} r WHERE r.run_id = $1::text`,

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
      -- NOTE: no foreign keys (see the schema): the runs' steps and signals go here. Nothing writes them for a run
      -- that is terminal and row-locked, so this statement's snapshot sees them all.
      ds AS (DELETE FROM ${n.steps} s WHERE s.run_id = ANY (ARRAY(SELECT c.run_id FROM c))),
      dg AS (DELETE FROM ${n.signals} g WHERE g.run_id = ANY (ARRAY(SELECT c.run_id FROM c)))
      SELECT count(*)::integer AS deleted FROM d`,

    list({ workflow, statuses, after }: { workflow: boolean; statuses: boolean; after: boolean }): string {
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
      return `SELECT ${runColumns('r')}, ${stepsOf(n, 'r.run_id')} AS steps FROM ${n.runs} r
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY r.created_at DESC, r.run_id DESC
        LIMIT ${limit}::integer`;
    },
  };
}
