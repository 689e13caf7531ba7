import { DUE_ON_RELEASE, LIVE_STATUSES, STARTED_BY_CLAIM } from '../run-state-machine.js';
import { type SchemaNames, sqlList } from './postgres.schema.js';
import {
  addMs,
  claimable,
  concKey,
  freeSlotSql,
  inClaimIndex,
  ms,
  notifyExpr,
  notPassedOver,
  pushBegins,
  rateKey,
  recentBegins,
  runColumns,
  stepsOf,
} from './postgres.sql-fragments.js';

/** The statements that claim runs and renew or release their leases (see `Statements`). */
export function claimStatements(n: SchemaNames) {
  const notify = (type: string, runId: string) => notifyExpr(n, type, runId);

  /**
   * What a claim reports of the lease it takes over (`r` the row as locked): its token (a recovery when not null), its
   * owner, and for how long it had expired (ms, never below 0).
   */
  const previousLease = (r: string) =>
    `${r}.lease_token AS prev_token, ${r}.lease_owner AS prev_owner,
        GREATEST(0, ${ms('now()')} - ${ms(`${r}.lease_expires_at`)}) AS orphaned_ms`;

  /**
   * What a candidate (`r`, as locked) needs of its keys to be claimed (null: nothing, the plain case): `ckey` a slot of
   * its concurrency key (F2: it has one and holds no slot), `rkey0` maybe a begin of its rate key (F3: `pending`, no live
   * step; `fc` checks that it has no step row either); none with a cancel pending (F1). NOTE: cheap expressions only:
   * a costly one (a subquery) would be evaluated after the sort of the candidates, which would then carry every column
   * it reads (a plan that reads and sorts all the due runs, e.g. on a table not analyzed yet, pays for each of them).
   */
  const needs = (r: string) => `
        CASE WHEN ${r}.conc_key IS NOT NULL AND NOT ${r}.slot_held AND ${r}.cancel_compensate IS NULL
          THEN ${concKey(`${r}.conc_key`)} END AS ckey, ${r}.conc_limit,
        CASE WHEN ${r}.rate_key IS NOT NULL AND ${r}.cancel_compensate IS NULL AND ${r}.status = 'pending' AND ${r}.live_step IS NULL
          THEN ${rateKey(`${r}.rate_key`)} END AS rkey0, ${r}.rate_limit, ${r}.rate_per_ms`;

  /**
   * Claim of the candidates selected (and locked) by CTE `c`; `$1` owner, `$2` lease ms.
   *
   * Flow control (rules F1–F3), for the candidates that need a slot or a begin (`fc`: `ckey` / `rkey` not null; none
   * for plain runs, so that the rest reads next to nothing for them): `fl` locks the counters of their keys in key
   * order (`FOR NO KEY UPDATE`: in READ COMMITTED it waits for a concurrent claimer and reads the counter it committed,
   * the truth, whatever this statement's snapshot saw), `a` ranks them per key (priority, then due time) and admits
   * those the counters leave room for: `held + rank <= limit` (F2), `recent begins + rank <= limit` (F3). `u` claims
   * the plain candidates and the admitted ones (the others are simply not claimed: their row locks end with the
   * statement), marks the slots taken (`slot_held`) and clears their debounce keys (rule D: the key's next start
   * creates a new run); `ku` adds the slots taken to `held` and the begins to `begins`, counted from what `u`
   * claimed. Under the locks of `fl`, so concurrent claimers never give more than `limit` slots or begins.
   *
   * NOTE: `u` also finds its rows by `run_id = ANY (ARRAY(SELECT c.run_id FROM c))`, besides the join: the plan then
   * probes the primary key for the runs of `c`, even where the planner expects a big `c` (a custom plan with a large
   * `$3`) on a table it has not analyzed yet; with the join alone it hash-joined `c` with a seq scan of every run.
   *
   * NOTE: the UPDATEs of `flow_keys` read their input through scalar subqueries, never `UPDATE … FROM` a derived table:
   * a counter row changed since the statement's snapshot is re-checked (EvalPlanQual) on its newest version, and with
   * a join to a derived table (an aggregate, a UNION ALL) PostgreSQL can drop the row from the update then (a lost
   * increment, seen under load on 15.x).
   */
  const claimTail = `,
    fc AS MATERIALIZED (
      SELECT x.* FROM (
        SELECT c.run_id, c.priority, c.due_at, c.ckey, c.conc_limit,
          -- NOTE: a scalar subquery with LIMIT, not EXISTS (which the planner may hash: a read of every step row).
          CASE WHEN c.rkey0 IS NOT NULL AND (SELECT s.idx FROM ${n.steps} s WHERE s.run_id = c.run_id LIMIT 1) IS NULL
            THEN c.rkey0 END AS rkey,
          c.rate_limit, c.rate_per_ms
        FROM c WHERE c.ckey IS NOT NULL OR c.rkey0 IS NOT NULL
      ) x
      WHERE x.ckey IS NOT NULL OR x.rkey IS NOT NULL
    ),
    fl AS MATERIALIZED (
      SELECT f.key, f.held, f.begins FROM ${n.flowKeys} f
      WHERE f.key = ANY (ARRAY(SELECT fc.ckey FROM fc UNION ALL SELECT fc.rkey FROM fc))
      ORDER BY f.key
      FOR NO KEY UPDATE
    ),
    a AS MATERIALIZED (
      SELECT x.run_id, x.ckey, x.rkey, x.rate_limit, x.rate_per_ms,
        (x.ckey IS NULL OR COALESCE(kc.held, 0) + x.crank <= x.conc_limit)
          AND (x.rkey IS NULL OR COALESCE(${recentBegins('kr.begins', 'x.rate_per_ms')}, 0) + x.rrank <= x.rate_limit) AS ok
      FROM (
        SELECT fc.*,
          row_number() OVER (PARTITION BY fc.ckey ORDER BY fc.priority DESC, fc.due_at) AS crank,
          row_number() OVER (PARTITION BY fc.rkey ORDER BY fc.priority DESC, fc.due_at) AS rrank
        FROM fc
      ) x
      LEFT JOIN fl kc ON kc.key = x.ckey
      LEFT JOIN fl kr ON kr.key = x.rkey
    ),
    u AS (
      UPDATE ${n.runs} r SET
        lease_owner = $1::text,
        lease_token = gen_random_uuid()::text,
        lease_expires_at = ${addMs('now()', '$2')},
        status = CASE WHEN r.status IN ${sqlList(STARTED_BY_CLAIM)} THEN 'running' ELSE r.status END,
        slot_held = r.slot_held OR c.run_id = ANY (ARRAY(SELECT a.run_id FROM a WHERE a.ok AND a.ckey IS NOT NULL)),
        debounce_key = NULL,
        updated_at = now()
      FROM c
      WHERE r.run_id = c.run_id AND r.run_id = ANY (ARRAY(SELECT c.run_id FROM c))
        AND (c.run_id <> ALL (ARRAY(SELECT fc.run_id FROM fc)) OR c.run_id = ANY (ARRAY(SELECT a.run_id FROM a WHERE a.ok)))
      RETURNING ${runColumns('r')}, c.prev_token, c.prev_owner, c.orphaned_ms,
        (SELECT a.ckey FROM a WHERE a.run_id = c.run_id) AS took_slot, (SELECT a.rkey FROM a WHERE a.run_id = c.run_id) AS began,
        c.rate_limit AS began_limit, c.rate_per_ms AS began_per_ms
    ),
    ku AS (
      UPDATE ${n.flowKeys} f SET
        held = f.held + (SELECT count(*)::integer FROM u WHERE u.took_slot = f.key),
        begins = COALESCE((
          SELECT ${pushBegins('f.begins', 'g.n', 'g.lim', 'g.per_ms')}
          FROM (SELECT count(*)::integer AS n, max(u.began_limit) AS lim, max(u.began_per_ms) AS per_ms FROM u WHERE u.began = f.key) g
          WHERE g.n > 0
        ), f.begins)
      WHERE f.key = ANY (ARRAY(SELECT fl.key FROM fl))
        AND f.key = ANY (ARRAY(SELECT u.took_slot FROM u UNION ALL SELECT u.began FROM u))
    )
    SELECT u.*, ${stepsOf(n, 'u.run_id')} AS steps FROM u ORDER BY u.priority DESC, u.due_at`;

  /**
   * `claimRun`'s candidate (CTE `c`): the run `$3` if it is claimable and not passed over by the snapshot's counters
   * (`notPassedOver`, F4), read by its primary key.
   */
  const claimSelect = (where: string) => `
    WITH c AS (
      SELECT r.priority, r.due_at, r.run_id, ${previousLease('r')},${needs('r')}
      FROM ${n.runs} r
      WHERE ${claimable('r')} ${where}
        AND ${notPassedOver(n, 'r')}
      FOR NO KEY UPDATE SKIP LOCKED
    )${claimTail}`;

  /**
   * `claimRuns`' candidates (CTE `c`): up to `$3` claimable runs, highest priority then earliest due first, passed over
   * when the snapshot's counters leave no room for them (`notPassedOver`, F4). O(P·log n + k) whatever the number of
   * runs not due yet (sleeping, delayed, waiting with a timeout), P the number of distinct priorities in the claim index
   * (usually 1), k the runs read (the ones claimed, and the due ones passed over: leased, filtered out, blocked):
   *
   * - `lv` lists the priorities of the claim index from the highest down, one index descent each (a loose index scan:
   *   the next level is the first entry below the previous one). It includes the levels with nothing due.
   * - `c` reads, per level, the range `priority = p AND due_at <= now()` of the claim index in `due_at` order: the scan
   *   stops at the first run not due yet. (A single scan of the index in `(priority DESC, due_at)` order cannot: with no
   *   condition on `priority`, `due_at <= now()` does not bound the scan, and with nothing due it read every entry.)
   *
   * NOTE: no ORDER BY on `c`. The levels come out of `lv` highest first and each level's runs in `due_at` order, so the
   * nested loop yields the runs in claim order, and the outer LIMIT stops pulling at `$3` runs: a lower level is not even
   * read once the higher ones filled the batch, and every row locked is a row claimed. An ORDER BY there would sort
   * the output of every level, i.e. read (and lock, SKIP LOCKED happens in the scan) up to `$3` runs per level.
   *
   * NOTE: `LIMIT (SELECT $3)`, not `LIMIT $3`: the planner estimates a LIMIT it cannot read at 10% of the rows, in the
   * generic plan of the prepared statement as in the custom ones. With `LIMIT $3` a custom plan knew a small `$3` (a
   * poll for one run), looked cheaper than the generic plan, and the plan cache kept planning every claim again
   * (~1 ms each, more than the claim's execution).
   */
  const claimDueSelect = (where: string) => `
    WITH RECURSIVE lv(priority) AS (
      (SELECT r.priority FROM ${n.runs} r WHERE ${inClaimIndex('r')} ORDER BY r.priority DESC LIMIT 1)
      UNION ALL
      SELECT (
        SELECT r.priority FROM ${n.runs} r WHERE ${inClaimIndex('r')} AND r.priority < lv.priority
        ORDER BY r.priority DESC LIMIT 1
      ) FROM lv WHERE lv.priority IS NOT NULL
    ),
    c AS (
      SELECT x.* FROM lv CROSS JOIN LATERAL (
        SELECT r.priority, r.due_at, r.run_id, ${previousLease('r')},${needs('r')}
        FROM ${n.runs} r
        WHERE r.priority = lv.priority AND ${claimable('r')} ${where}
          AND ${notPassedOver(n, 'r')}
        ORDER BY r.due_at LIMIT (SELECT $3::integer)
        FOR NO KEY UPDATE SKIP LOCKED
      ) x
      WHERE lv.priority IS NOT NULL
      LIMIT (SELECT $3::integer)
    )${claimTail}`;

  /**
   * `claimOwnedRuns`: the live runs leased to `$1` (expired or not, due or not). The status and due condition is the
   * claim index's predicate, so the scan stays on that index.
   */
  const claimOwnedSelect = (where: string) => `
    WITH c AS (
      SELECT r.priority, r.due_at, r.run_id, ${previousLease('r')},${needs('r')}
      FROM ${n.runs} r
      WHERE ${inClaimIndex('r')}
        AND r.lease_owner = $1::text AND r.lease_token IS NOT NULL ${where}
        AND ${notPassedOver(n, 'r')}
      LIMIT $3::integer
      FOR NO KEY UPDATE SKIP LOCKED
    )${claimTail}`;

  /**
   * The `workflows` filter of a claim (see `claimFilter` in postgres.store.ts): `$4` the names of the pairs (text[]),
   * `$5` their versions (integer[]), `$6` the pairs as `<version>:<workflow>` keys (text[]), exact (a version has no
   * colon). The name and version tests are cheap and reject nearly every other run before the key is built (the
   * planner evaluates the cheaper quals first); the name test also leaves the planner the choices it had before
   * versions (the claim index, or the workflow index when a name is rare). A plain filter on the scan, never a join: the
   * claim index scan stays in `(priority, due_at)` order under the `LIMIT` and `SKIP LOCKED`, and a due run outside the
   * filter is passed over (not locked, never blocking), at the cost of reading it, as a run of a workflow not registered
   * here always was: ~0.25–0.5 µs a run on the test VM (220,000 due runs of other versions ahead: ~50–100 ms a claim; a
   * claim of 64 runs with none ahead costs what it did with names only).
   */
  const forWorkflows = `AND r.workflow = ANY($4::text[]) AND r.version = ANY($5::integer[])
      AND (r.version::text || ':' || r.workflow) = ANY($6::text[])`;

  return {
    // $1 owner, $2 lease ms, $3 limit
    claimRuns: claimDueSelect(''),
    // $1 owner, $2 lease ms, $3 limit, $4 names (text[]), $5 versions (integer[]), $6 keys (text[])
    claimRunsForWorkflows: claimDueSelect(forWorkflows),
    // $1 owner, $2 lease ms, $3 run_id (, $4 names, $5 versions, $6 keys)
    claimRun: claimSelect('AND r.run_id = $3::text'),
    claimRunForWorkflows: claimSelect(`AND r.run_id = $3::text ${forWorkflows}`),
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

    // $1 run_id, $2 token. Rule F2: a run with `scope: 'step'` gives its slot back (`cur` reads whether it holds one
    // under the row lock; `fk` decrements its key's counter).
    releaseLease: `
      WITH cur AS MATERIALIZED (
        SELECT r.run_id, CASE WHEN r.slot_held AND r.conc_scope = 'step' THEN ${concKey('r.conc_key')} END AS freed
        FROM ${n.runs} r WHERE r.run_id = $1::text AND r.lease_token = $2::text
        FOR NO KEY UPDATE
      ),
      u AS (
        UPDATE ${n.runs} r SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
          due_at = CASE WHEN r.status IN ${sqlList(DUE_ON_RELEASE)} THEN now() ELSE r.due_at END,
          slot_held = r.slot_held AND cur.freed IS NULL,
          updated_at = now()
        FROM cur WHERE r.run_id = cur.run_id
        RETURNING r.run_id
      ),
      fk AS (${freeSlotSql(n, 'SELECT cur.freed FROM cur')})
      SELECT 'ready' AS evt, ${notify(`'ready'`, 'u.run_id')} AS notified FROM u`,
  };
}
