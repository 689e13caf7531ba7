import { CLAIMABLE_STATUSES, DUE_ON_RELEASE, LIVE_STATUSES, STARTED_BY_CLAIM } from '../run-state-machine.js';
import { type SchemaNames, sqlList } from './postgres.schema.js';
import { addMs, ms, notifyExpr, runColumns, stepsOf } from './postgres.sql-fragments.js';

/** The statements that claim runs and renew or release their leases (see `Statements`). */
export function claimStatements(n: SchemaNames) {
  const notify = (type: string, runId: string) => notifyExpr(n, type, runId);

  const claimable = (r: string) => `${r}.status IN ${sqlList(CLAIMABLE_STATUSES)} AND ${r}.due_at IS NOT NULL AND ${r}.due_at <= now()
      AND (${r}.lease_expires_at IS NULL OR ${r}.lease_expires_at <= now())`;

  /**
   * What a claim reports of the lease it takes over (`r` the row as locked): its token (a recovery when not null), its
   * owner, and for how long it had expired (ms, never below 0).
   */
  const previousLease = (r: string) =>
    `${r}.lease_token AS prev_token, ${r}.lease_owner AS prev_owner,
        GREATEST(0, ${ms('now()')} - ${ms(`${r}.lease_expires_at`)}) AS orphaned_ms`;

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
      RETURNING ${runColumns('r')}, c.prev_token, c.prev_owner, c.orphaned_ms
    )
    SELECT u.*, ${stepsOf(n, 'u.run_id')} AS steps FROM u ORDER BY u.due_at`;

  const claimSelect = (where: string, limit: string) => `
    WITH c AS (
      SELECT r.run_id, ${previousLease('r')} FROM ${n.runs} r
      WHERE ${claimable('r')} ${where}
      ORDER BY r.due_at ${limit}
      FOR NO KEY UPDATE SKIP LOCKED
    )${claimTail}`;

  /**
   * `claimOwnedRuns`: the live runs leased to `$1` (expired or not, due or not). The status and due condition is the
   * claim index's predicate, so the scan stays on that index.
   */
  const claimOwnedSelect = (where: string) => `
    WITH c AS (
      SELECT r.run_id, ${previousLease('r')} FROM ${n.runs} r
      WHERE r.status IN ${sqlList(CLAIMABLE_STATUSES)} AND r.due_at IS NOT NULL
        AND r.lease_owner = $1::text AND r.lease_token IS NOT NULL ${where}
      LIMIT $3::integer
      FOR NO KEY UPDATE SKIP LOCKED
    )${claimTail}`;

  /**
   * The `workflows` filter of a claim (see `claimFilter` in postgres.store.ts): `$4` the names of the pairs (text[]),
   * `$5` their versions (integer[]), `$6` the pairs as `<version>:<workflow>` keys (text[]), exact (a version has no
   * colon). The name and version tests are cheap and reject nearly every other run before the key is built (the
   * planner evaluates the cheaper quals first); the name test also leaves the planner the choices it had before
   * versions (the claim index, or the workflow index when a name is rare). A plain filter on the scan, never a join: the
   * claim index scan stays in `due_at` order under the `LIMIT` and `SKIP LOCKED`, and a due run outside the filter is
   * passed over (not locked, never blocking), at the cost of reading it, as a run of a workflow not registered here
   * always was: ~0.25–0.5 µs a run on the test VM (220,000 due runs of other versions ahead: ~50–100 ms a claim; a
   * claim of 64 runs with none ahead costs what it did with names only).
   */
  const forWorkflows = `AND r.workflow = ANY($4::text[]) AND r.version = ANY($5::integer[])
      AND (r.version::text || ':' || r.workflow) = ANY($6::text[])`;

  return {
    // $1 owner, $2 lease ms, $3 limit
    claimRuns: claimSelect('', 'LIMIT $3::integer'),
    // $1 owner, $2 lease ms, $3 limit, $4 names (text[]), $5 versions (integer[]), $6 keys (text[])
    claimRunsForWorkflows: claimSelect(forWorkflows, 'LIMIT $3::integer'),
    // $1 owner, $2 lease ms, $3 run_id (, $4 names, $5 versions, $6 keys)
    claimRun: claimSelect('AND r.run_id = $3::text', ''),
    claimRunForWorkflows: claimSelect(`AND r.run_id = $3::text ${forWorkflows}`, ''),
    // $1 owner, $2 lease ms, $3 limit (, $4 names, $5 versions, $6 keys)
    claimOwnedRuns: claimOwnedSelect(''),
    claimOwnedRunsForWorkflows: claimOwnedSelect(forWorkflows),

    // $1 run_id, $2 token, $3 lease ms
    renewLease: `
      WITH u AS (
        UPDATE ${n.runs} r SET lease_expires_at = GREATEST(r.lease_expires_at, ${addMs('now()', '$3')})
        WHERE r.run_id = $1::text AND r.lease_token = $2::text
        RETURNING r.cancel_compensate, r.pause_requested
      )
      SELECT * FROM u`,

    // No parameters. At init of a store that knows no other process holds a lease (PGlite: its folder lock): every
    // lease of a live run is expired now, and a run that was executing is due now (as `releaseLease` makes it). The
    // owner and token stay, so the next claim is a recovery (counted against maxRecoveries, logged with the owner).
    expireAllLeases: `
      UPDATE ${n.runs} r SET lease_expires_at = LEAST(r.lease_expires_at, now()),
        due_at = CASE WHEN r.status IN ${sqlList(DUE_ON_RELEASE)} THEN LEAST(COALESCE(r.due_at, now()), now()) ELSE r.due_at END
      WHERE r.lease_token IS NOT NULL AND r.status IN ${sqlList(LIVE_STATUSES)}`,

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
