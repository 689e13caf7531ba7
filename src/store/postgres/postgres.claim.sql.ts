import { CLAIMABLE_STATUSES, DUE_ON_RELEASE, STARTED_BY_CLAIM } from '../run-state-machine.js';
import { type SchemaNames, sqlList } from './postgres.schema.js';
import { addMs, notifyExpr, runColumns, stepsOf } from './postgres.sql-fragments.js';

/** The statements that claim runs and renew or release their leases (see `Statements`). */
export function claimStatements(n: SchemaNames) {
  const notify = (type: string, runId: string) => notifyExpr(n, type, runId);

  const claimable = (r: string) => `${r}.status IN ${sqlList(CLAIMABLE_STATUSES)} AND ${r}.due_at IS NOT NULL AND ${r}.due_at <= now()
      AND (${r}.lease_expires_at IS NULL OR ${r}.lease_expires_at <= now())`;

  /** Claim of the rows selected (and locked) by CTE `c`; `$1` owner, `$2` lease ms. */
  const claimTail = `,
    u AS (
      UPDATE ${n.runs} r SET
        lease_owner = $1::text,
        lease_token = gen_random_uuid()::text,
        lease_expires_at = ${addMs('now()', '$2')},
        status = CASE WHEN r.status IN ${sqlList(STARTED_BY_CLAIM)} THEN 'running' ELSE r.status END,
        updated_at = now()
      FROM c WHERE r.run_id = c.run_id
      RETURNING ${runColumns('r')}, c.prev_token
    )
    SELECT u.*, ${stepsOf(n, 'u.run_id')} AS steps FROM u ORDER BY u.due_at`;

  const claimSelect = (where: string, limit: string) => `
    WITH c AS (
      SELECT r.run_id, r.lease_token AS prev_token FROM ${n.runs} r
      WHERE ${claimable('r')} ${where}
      ORDER BY r.due_at ${limit}
      FOR NO KEY UPDATE SKIP LOCKED
    )${claimTail}`;

  return {
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
          due_at = CASE WHEN r.status IN ${sqlList(DUE_ON_RELEASE)} THEN now() ELSE r.due_at END,
          updated_at = now()
        WHERE r.run_id = $1::text AND r.lease_token = $2::text
        RETURNING r.run_id
      )
      SELECT 'ready' AS evt, ${notify(`'ready'`, 'u.run_id')} AS notified FROM u`,
  };
}
