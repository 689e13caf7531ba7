/**
 * PGlite runs the Postgres store's claim statement as is (one priority level at a time: see postgres.claim.sql.ts and
 * test/store/postgres-claim-bound.spec.ts). Here, on PGlite: the claim order across levels among many runs not due
 * yet, and with nothing due, a claim that reads as many pages of the claim index with 20,000 sleeping runs as with
 * 2,000 (`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`, no timings).
 */
import { afterAll, beforeAll, expect, it, describe } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimStatements } from '../../src/store/postgres/postgres.claim.sql.js';
import { createPgliteStore } from '../../src/store/postgres/pglite.js';
import type { SqlClient } from '../../src/store/postgres/postgres.client.js';
import type { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import type { LeaseRequest } from '../../src/store/workflow-store.interface.js';
import { newRun } from '../support/runs.js';
import { allNodes, candidateCtes, insertSleepersSql, LEVELS, type PlanNode, sleeperParams } from './claim-plan.js';

const LEASE: LeaseRequest = { owner: 'levels-spec', leaseMs: 600_000 };
describe('pglite claim: by priority level, the runs not due yet never read', () => {
  let dir: string;
  let store: PostgresStore;
  let session: SqlClient;
  let sleepers = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-pglite-claim-'));
    store = createPgliteStore({ dataDir: dir });
    await store.init();
    session = (store as unknown as { client: SqlClient }).client;
  });

  afterAll(async () => {
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function addSleepers(count: number): Promise<void> {
    await session.query(insertSleepersSql(store.names.runs), sleeperParams('wf', sleepers + 1, sleepers + count));
    sleepers += count;
  }

  async function addDue(priority: number, agoMs: number): Promise<string> {
    const run = newRun({ priority, due: { at: new Date(Date.now() - agoMs) } });
    await store.createRun(run, { onConflict: 'keep' });
    return run.runId;
  }

  /** The claim index's pages read and rows filtered out by a claim of one run (rolled back), and the runs it claimed. */
  async function explainClaim(): Promise<{ buffers: number; filtered: number; claimed: number; seqScan: boolean }> {
    const text = claimStatements(store.names).claimRuns;
    const claimIndex = `${store.names.tables.runs}_claim_idx`;
    return session.transaction(async (query) => {
      await query(`PREPARE h2_claim(text, integer, integer) AS ${text}`);
      try {
        const [row] = await query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE h2_claim('explain', 600000, 1)`);
        const raw = row['QUERY PLAN'];
        const root = (typeof raw === 'string' ? JSON.parse(raw) : raw)[0].Plan as PlanNode;
        const nodes = allNodes(candidateCtes(root));
        const scans = nodes.filter((x) => x['Index Name'] === claimIndex || (x['Node Type'] === 'Bitmap Heap Scan' && x['Relation Name'] === store.names.tables.runs));
        // nothing is claimed: the transaction is rolled back
        throw Object.assign(new Error('rollback'), {
          result: {
            buffers: scans.reduce((a, x) => a + (x['Shared Hit Blocks'] ?? 0) + (x['Shared Read Blocks'] ?? 0), 0),
            filtered: scans.reduce((a, x) => a + (x['Rows Removed by Filter'] ?? 0), 0),
            claimed: root['Actual Rows'] ?? 0,
            seqScan: nodes.some((x) => x['Node Type'] === 'Seq Scan' && x['Relation Name'] === store.names.tables.runs),
          },
        });
      } finally {
        await query('DEALLOCATE h2_claim').catch(() => undefined);
      }
    }).catch((error: Error & { result?: { buffers: number; filtered: number; claimed: number; seqScan: boolean } }) => {
      if (!error.result) throw error;
      return error.result;
    });
  }

  it('claims highest priority first, then earliest due, across levels between 2,000 sleeping runs', async () => {
    await addSleepers(2_000);
    const p6late = await addDue(6, 1_000);
    const p6early = await addDue(6, 3_000);
    const p4 = await addDue(4, 9_000);
    const p0 = await addDue(0, 20_000);
    const low = await addDue(-1, 60_000);
    expect((await store.claimRuns(LEASE, 3)).map((c) => c.runId)).toEqual([p6early, p6late, p4]);
    expect((await store.claimRuns(LEASE, 3)).map((c) => c.runId)).toEqual([p0, low]);
    expect(await store.claimRuns(LEASE, 3)).toEqual([]);
  });

  it('with nothing due, reads as many claim index pages with 20,000 sleeping runs as with 2,000', async () => {
    await session.query(`DELETE FROM ${store.names.runs} WHERE run_id NOT LIKE 'sleeper-%'`);
    await session.query(`VACUUM (ANALYZE) ${store.names.runs}`);
    const small = await explainClaim();
    await addSleepers(18_000);
    await session.query(`VACUUM (ANALYZE) ${store.names.runs}`);
    const large = await explainClaim();
    expect(sleepers).toBe(20_000);
    expect({ claimed: large.claimed, filtered: large.filtered, seqScan: large.seqScan }).toEqual({ claimed: 0, filtered: 0, seqScan: false });
    expect(large.buffers).toBeGreaterThan(0);
    expect(large.buffers).toBeLessThanOrEqual(small.buffers + 2 * LEVELS.length);
    expect(large.buffers).toBeLessThanOrEqual(8 * (LEVELS.length + 1));
    // and a due run of a lower priority behind them all is claimed
    const low = await addDue(-5, 1_000);
    expect((await store.claimRuns(LEASE, 10)).map((c) => c.runId)).toEqual([low]);
  });
});
