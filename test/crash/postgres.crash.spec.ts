/**
 * Crash tests on PostgreSQL: worker processes are killed (SIGKILL), stopped past their lease (SIGSTOP/SIGCONT), run
 * side by side, and the server itself is restarted with `pg_ctl stop -m immediate` under load.
 *
 * Tests 1–4 use the shared server of the jest globalSetup (`DATABASE_URL`), each in a schema of its own; test 5
 * restarts a server of its own, so the shared one is never disturbed.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { startPostgres, type PostgresServer } from '../setup/postgres-server.js';
import { STEP_NAMES, dones, killAllWorkers, runIdsOf, starts, startWorkers, stepOutput, waitAllCompleted, waitFor } from './harness.js';
import { killRightAfterCheckpoint, killWhileStepRuns, report, stoppedWorkerIsFenced, threeWorkersExactlyOnce, withScenario } from './scenarios.js';

const url = () => process.env.DATABASE_URL;

describe('crash: PostgreSQL store', () => {
  let own: PostgresServer | undefined;

  afterAll(async () => {
    await killAllWorkers();
    await own?.stop().catch(() => undefined);
  });

  it('SIGKILL of a worker while a step runs: another process completes the run; the killed step ran twice with the same key and attempt, the others once', async () => {
    await withScenario('postgres', url(), killWhileStepRuns);
  }, 60_000);

  it('SIGKILL right after a checkpoint: the checkpointed step is not re-run', async () => {
    await withScenario('postgres', url(), killRightAfterCheckpoint);
  }, 60_000);

  it('SIGSTOP past the lease, SIGCONT after another worker completed the run: nothing the stale worker does reaches the store', async () => {
    await withScenario('postgres', url(), stoppedWorkerIsFenced);
  }, 60_000);

  it('3 worker processes complete 300 runs with every step executed exactly once', async () => {
    await withScenario('postgres', url(), threeWorkersExactlyOnce);
  }, 90_000);

  it('a Postgres restart (stop -m immediate, start) in the middle of 50 runs loses none; re-run steps keep their key', async () => {
    own = await startPostgres();
    const server = own;
    await withScenario('postgres', server.url, async (s) => {
      const workers = await startWorkers(s.store, s.ledger, [
        { concurrency: 5, stepMs: 250 },
        { concurrency: 5, stepMs: 250 },
      ]);
      const ids = runIdsOf('pgr-', 50);
      await Promise.all(ids.map((id, i) => s.client.client.start('crash', { i }, { id, conflictPolicy: 'fail' })));
      const doneAtRestart = await waitFor('40 steps done', () => {
        const n = s.ledger.read().filter((e) => e.phase === 'done').length;
        return n >= 40 && n;
      }, 30_000, 20);
      const restartBegan = Date.now();
      await server.restart();
      const restartMs = Date.now() - restartBegan;
      const infos = await waitAllCompleted(s.client.client, ids, 60_000);
      const recoveredInMs = Date.now() - restartBegan;
      const entries = s.ledger.read();

      expect(workers.map((w) => w.alive())).toEqual([true, true]);
      // The restart happened while runs were in flight.
      expect(doneAtRestart).toBeLessThan(3 * ids.length);
      let reRuns = 0;
      for (const id of ids) {
        const info = infos.get(id)!;
        expect(info.status).toBe('completed');
        expect(info.steps.map((st) => [st.name, st.status])).toEqual(STEP_NAMES.map((n) => [n, 'completed']));
        for (const step of STEP_NAMES) {
          const executions = starts(entries, id, step);
          expect(executions.length).toBeGreaterThanOrEqual(1);
          reRuns += executions.length - 1;
          // Re-executions (if any) are of the same step visit: same key, same attempt number.
          expect(new Set(executions.map((e) => e.key))).toEqual(new Set([`${id}:${step}`]));
          expect(new Set(executions.map((e) => e.attempt))).toEqual(new Set([1]));
          expect(dones(entries, id, step).map((e) => e.nonce)).toContain(stepOutput(info, step)?.nonce);
        }
      }
      report('postgres server-restart', { runs: ids.length, stepsDoneAtRestart: doneAtRestart, restartMs, recoveredInMs, reRunSteps: reRuns, ledgerLines: entries.length });
    });
  }, 90_000);
});
