/**
 * The claim's cost does not depend on the runs that are not due yet (sleeping, delayed, waiting with a timeout): proven
 * with `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of the claim statements, never with timings. The claim reads the claim
 * index one priority at a time (`claimDueSelect` in postgres.claim.sql.ts): the priorities by a loose index scan, then
 * per priority the range `due_at <= now()`, so a run not due yet is never read. The earlier claim read the index in
 * `(priority DESC, due_at)` order with `due_at <= now()` as a filter: with nothing due it read every entry (3,834
 * buffers with 1,000,000 sleeping runs, ~75 with 20,000).
 */
import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import pg from 'pg';
import { claimStatements } from '../../src/store/postgres/postgres.claim.sql.js';
import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import type { LeaseRequest } from '../../src/store/workflow-store.interface.js';
import { dropSchema, randomSchemaName } from '../setup/postgres-server.js';
import { testPostgres } from '../setup/test-servers.js';
import { allNodes, candidateCtes, insertSleepersSql, LEVELS, type PlanNode, sleeperParams } from './claim-plan.js';
import { newRun } from '../support/runs.js';

const { url, describe: describePg } = testPostgres();
const LEASE: LeaseRequest = { owner: 'bound-spec', leaseMs: 600_000 };
const WORKFLOW = 'wf';

/**
 * What a claim read to choose its candidates: through the claim index (rows, rows filtered out, buffers), in all, and
 * whether it seq-scanned the runs; and how many runs it claimed.
 */
interface Reads {
  nodes: PlanNode[];
  claimIndexScans: PlanNode[];
  claimIndexRows: number;
  claimIndexFiltered: number;
  claimIndexBuffers: number;
  candidateBuffers: number;
  seqScanOfRuns: boolean;
  claimed: number;
}

describePg('postgres claim: the runs not due yet cost a claim nothing', () => {
  const schema = randomSchemaName('h2_claim');
  let store: PostgresStore;
  let client: pg.Client;
  let sql: ReturnType<typeof claimStatements>;
  let runsTable: string;
  let claimIndex: string;
  let sleepers = 0;

  beforeAll(async () => {
    store = new PostgresStore({ url, schema });
    await store.init();
    sql = claimStatements(store.names);
    runsTable = store.names.tables.runs;
    claimIndex = `${store.names.tables.runs}_claim_idx`;
    client = new pg.Client({ connectionString: url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await store?.close();
    await dropSchema(url, schema);
  });

  /** Adds `count` sleeping runs (due in an hour or more) spread over LEVELS, written in bulk. */
  async function addSleepers(count: number): Promise<void> {
    await client.query(insertSleepersSql(store.names.runs), sleeperParams(WORKFLOW, sleepers + 1, sleepers + count));
    sleepers += count;
  }

  /** Deletes every run but the sleeping ones (those a test created through the store, claimed or not). */
  async function clearDue(): Promise<void> {
    await client.query(`DELETE FROM ${store.names.runs} WHERE run_id NOT LIKE 'sleeper-%'`);
  }

  /** A run due now (or `agoMs` ago) of priority `priority`, created through the store. */
  async function addDue(priority: number, agoMs = 0, workflow = WORKFLOW): Promise<string> {
    const run = newRun({ workflow, priority, due: { at: new Date(Date.now() - agoMs) } });
    await store.createRun(run, { onConflict: 'keep' });
    return run.runId;
  }

  const lit = (x: string | number | (string | number)[]): string =>
    Array.isArray(x) ? `ARRAY[${x.map(lit).join(',')}]` : typeof x === 'number' ? String(x) : `'${x.replace(/'/g, "''")}'`;

  /**
   * `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of a claim of `limit` runs as the store sends it (a prepared statement),
   * with the custom or the generic plan, in a transaction rolled back (nothing is claimed).
   */
  async function explainClaim(limit: number, mode: 'force_custom_plan' | 'force_generic_plan', forWorkflows = true): Promise<Reads> {
    const text = forWorkflows ? sql.claimRunsForWorkflows : sql.claimRuns;
    const types = forWorkflows ? 'text, integer, integer, text[], integer[], text[]' : 'text, integer, integer';
    const args = [lit('explain'), lit(600_000), lit(limit)];
    if (forWorkflows) args.push(`${lit([WORKFLOW, 'other'])}::text[]`, `${lit([1, 1])}::integer[]`, `${lit([`1:${WORKFLOW}`, '1:other'])}::text[]`);
    await client.query('BEGIN');
    try {
      await client.query(`PREPARE h2_claim(${types}) AS ${text}`);
      await client.query(`SET LOCAL plan_cache_mode = ${mode}`);
      const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE h2_claim(${args.join(', ')})`);
      const plan = (rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0].Plan;
      return reads(plan);
    } finally {
      await client.query('ROLLBACK');
      await client.query('DEALLOCATE ALL');
    }
  }

  /**
   * What the plan `root` read to find the candidates (CTEs `lv` and `c`, where the runs are chosen and locked: the rest of
   * the statement updates the runs chosen, by their primary key, or by a seq scan when the planner finds the table
   * small next to the batch).
   */
  function reads(root: PlanNode): Reads {
    const ctes = candidateCtes(root);
    expect(ctes.map((x) => x['Subplan Name'])).toContain('CTE c');
    const nodes = allNodes(ctes);
    const scans = nodes.filter((x) => x['Index Name'] === claimIndex);
    // (the scans' own buffers include the heap pages they read; a bitmap scan's are on its Bitmap Heap Scan)
    const heapOfBitmaps = nodes.filter((x) => x['Node Type'] === 'Bitmap Heap Scan' && x['Relation Name'] === runsTable);
    const sum = (xs: PlanNode[], f: (x: PlanNode) => number) => xs.reduce((a, x) => a + f(x), 0);
    return {
      nodes,
      claimIndexScans: scans,
      claimIndexRows: sum(scans, (x) => (x['Actual Rows'] ?? 0) * (x['Actual Loops'] ?? 1)),
      claimIndexFiltered: sum(scans, (x) => x['Rows Removed by Filter'] ?? 0),
      claimIndexBuffers: sum([...scans, ...heapOfBitmaps], (x) => (x['Shared Hit Blocks'] ?? 0) + (x['Shared Read Blocks'] ?? 0)),
      candidateBuffers: sum(ctes, (x) => (x['Shared Hit Blocks'] ?? 0) + (x['Shared Read Blocks'] ?? 0)),
      seqScanOfRuns: nodes.some((x) => x['Node Type'] === 'Seq Scan' && x['Relation Name'] === runsTable),
      claimed: root['Actual Rows'] ?? 0,
    };
  }

  it('reads the claim index by priority level and never scans the runs, on a table not analyzed yet too', async () => {
    // A fresh table, as the bench's claim10k has it: no statistics yet (autovacuum may not have come by).
    await addSleepers(2_000);
    for (let i = 0; i < 150; i++) await addDue(0, 1_000 + i);
    for (const mode of ['force_custom_plan', 'force_generic_plan'] as const) {
      for (const limit of [1, 100]) {
        for (const forWorkflows of [true, false]) {
          const r = await explainClaim(limit, mode, forWorkflows);
          expect({ mode, limit, forWorkflows, claimed: r.claimed, seqScan: r.seqScanOfRuns }).toEqual({ mode, limit, forWorkflows, claimed: limit, seqScan: false });
          // the loose scan of the levels (the first and the recursive term) and the range scan per level
          expect(r.claimIndexScans.length).toBeGreaterThanOrEqual(3);
          // every row the range scan returned was claimed, and none was filtered out (no sleeper is ever read)
          expect(r.claimIndexFiltered).toBe(0);
        }
      }
    }
    // Claim them: nothing due is left.
    let claimed = 0;
    for (let got = -1; got !== 0; claimed += got) got = (await store.claimRuns(LEASE, 64)).length;
    expect(claimed).toBe(150);
  });

  beforeEach(clearDue);

  it('with nothing due, reads as many index pages with 20,000 sleeping runs as with 2,000', async () => {
    await client.query(`VACUUM (ANALYZE) ${store.names.runs}`);
    const small = await explainClaim(1, 'force_custom_plan');
    const smallGeneric = await explainClaim(1, 'force_generic_plan');
    expect(sleepers).toBe(2_000);
    await addSleepers(18_000);
    await client.query(`VACUUM (ANALYZE) ${store.names.runs}`);
    const [{ pages }] = (await client.query(`SELECT pg_relation_size($1::regclass) / current_setting('block_size')::integer AS pages`, [`${store.names.qSchema}.${store.names.indexes.claim}`])).rows as { pages: string }[];
    for (const [before, mode] of [[small, 'force_custom_plan'], [smallGeneric, 'force_generic_plan']] as const) {
      const large = await explainClaim(1, mode);
      expect(large.claimed).toBe(0);
      expect(large.seqScanOfRuns).toBe(false);
      // nothing is returned by the index scans but the priority levels (one per level; EXPLAIN rounds the rows per loop)
      expect(large.claimIndexRows).toBeLessThanOrEqual(LEVELS.length + 1);
      expect(large.claimIndexFiltered).toBe(0);
      // a few pages per level (a descent of the btree to find it, one to find its due range), whatever the count:
      // the earlier claim read every leaf page of the index (~1 per 300 sleeping runs), 10× more here than at 2,000
      expect(large.claimIndexBuffers).toBeLessThanOrEqual(before.claimIndexBuffers + 2 * LEVELS.length);
      expect(large.claimIndexBuffers).toBeLessThanOrEqual(8 * (LEVELS.length + 1));
      expect(large.claimIndexBuffers).toBeLessThan(Number(pages) / 2);
      expect(large.candidateBuffers).toBeLessThan(100);
    }
  });

  it('claims a due run of a lower priority behind 20,000 not-due runs of higher priorities, reading none of them', async () => {
    expect(sleepers).toBe(20_000);
    const low = await addDue(-2, 5_000);
    const r = await explainClaim(10, 'force_custom_plan');
    expect(r.claimed).toBe(1);
    expect(r.claimIndexFiltered).toBe(0);
    expect(r.claimIndexBuffers).toBeLessThanOrEqual(8 * (LEVELS.length + 2));
    const claimed = await store.claimRuns(LEASE, 10, [{ workflow: WORKFLOW, version: 1 }]);
    expect(claimed.map((c) => c.runId)).toEqual([low]);
    expect(await store.claimRuns(LEASE, 10)).toEqual([]);
  });

  it('claims highest priority first, then earliest due, across levels between the sleeping ones', async () => {
    const p6late = await addDue(6, 1_000);
    const p6early = await addDue(6, 3_000);
    const p4 = await addDue(4, 9_000);
    const p0 = await addDue(0, 20_000);
    const pMinus = await addDue(-1, 60_000);
    expect((await store.claimRuns(LEASE, 3)).map((c) => c.runId)).toEqual([p6early, p6late, p4]);
    expect((await store.claimRuns(LEASE, 3)).map((c) => c.runId)).toEqual([p0, pMinus]);
  });

  it('a batch that the highest level fills reads no lower level (every run it locks, it claims)', async () => {
    for (let i = 0; i < 10; i++) await addDue(9, 1_000 + i);
    for (let i = 0; i < 10; i++) await addDue(0, 100_000 + i);
    for (const mode of ['force_custom_plan', 'force_generic_plan'] as const) {
      const r = await explainClaim(5, mode);
      expect(r.claimed).toBe(5);
      // the range scan of level 9 (one loop) locked 5 runs; level 0 was not read (a second loop)
      const locks = r.nodes.filter((x) => x['Node Type'] === 'LockRows');
      expect(locks.map((x) => [x['Actual Loops'], x['Actual Rows']])).toEqual([[1, 5]]);
    }
    // the rest: 5 of level 9, then level 9's last 5 with 5 of level 0 (a batch across two levels), then level 0's last 5
    const batches = [await store.claimRuns(LEASE, 5), await store.claimRuns(LEASE, 10), await store.claimRuns(LEASE, 10)];
    expect(batches.map((b) => b.map((c) => c.priority))).toEqual([[9, 9, 9, 9, 9], [9, 9, 9, 9, 9, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]);
  });

  it('concurrent claimers never double-claim nor wait for each other across levels (SKIP LOCKED in each level)', async () => {
    const ids = new Set<string>();
    for (const p of [8, 8, 6, 2, 0, 0, -3]) for (let i = 0; i < 6; i++) ids.add(await addDue(p, 1_000 * i));
    const stores = await Promise.all(Array.from({ length: 4 }, async () => {
      const s = new PostgresStore({ url, schema });
      await s.init();
      return s;
    }));
    try {
      const got: string[] = [];
      await Promise.all(
        stores.map(async (s, k) => {
          for (let batch = await s.claimRuns({ owner: `c${k}`, leaseMs: 600_000 }, 3); batch.length > 0; batch = await s.claimRuns({ owner: `c${k}`, leaseMs: 600_000 }, 3)) {
            got.push(...batch.map((c) => c.runId));
          }
        }),
      );
      expect(got.length).toBe(ids.size);
      expect(new Set(got)).toEqual(ids);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
