/**
 * Crash tests on Redis: worker processes are killed (SIGKILL), stopped past their lease (SIGSTOP/SIGCONT), run side
 * by side, and redis-server itself is SIGKILLed under load and restarted on its data directory.
 *
 * Tests 1–4 use the shared server of the jest globalSetup (`REDIS_URL`), each under a key prefix of its own; test 5
 * kills a server of its own (appendfsync always), so the shared one is never disturbed.
 */
import { afterAll, expect, it } from '@jest/globals';
import { startRedis, type RedisServer } from '../setup/redis-server.js';
import {
  STEP_NAMES,
  describeAll,
  dones,
  killAllWorkers,
  runIdsOf,
  starts,
  startWorkers,
  stepOutput,
  waitAllCompleted,
  waitFor,
  type CrashStep,
  type LedgerEntry,
} from './harness.js';
import { testRedis } from '../setup/test-servers.js';
import { killRightAfterCheckpoint, killWhileStepRuns, report, stoppedWorkerIsFenced, threeWorkersExactlyOnce, withScenario } from './scenarios.js';

const redis = testRedis();
const url = () => redis.url;

/** Checkpoints the ledger proves were acknowledged: step X finished and step X+1 started (only after X's commit resolved). */
function acknowledgedCheckpoints(entries: LedgerEntry[]): { runId: string; step: CrashStep; nonce: string }[] {
  const out: { runId: string; step: CrashStep; nonce: string }[] = [];
  const runIds = [...new Set(entries.map((e) => e.runId))];
  for (const runId of runIds) {
    for (let i = 0; i < STEP_NAMES.length - 1; i++) {
      const step = STEP_NAMES[i];
      const next = STEP_NAMES[i + 1];
      const done = dones(entries, runId, step);
      if (done.length === 1 && starts(entries, runId, next).length > 0) out.push({ runId, step, nonce: done[0].nonce });
    }
  }
  return out;
}

redis.describe('crash: Redis store', () => {
  let own: RedisServer | undefined;

  afterAll(async () => {
    await killAllWorkers();
    await own?.stop().catch(() => undefined);
  });

  it('SIGKILL of a worker while a step runs: another process completes the run; the killed step ran twice with the same key and attempt, the others once', async () => {
    await withScenario('redis', url(), killWhileStepRuns);
  }, 60_000);

  it('SIGKILL right after a checkpoint: the checkpointed step is not re-run', async () => {
    await withScenario('redis', url(), killRightAfterCheckpoint);
  }, 60_000);

  it('SIGSTOP past the lease, SIGCONT after another worker completed the run: nothing the stale worker does reaches the store', async () => {
    await withScenario('redis', url(), stoppedWorkerIsFenced);
  }, 60_000);

  it('3 worker processes complete 300 runs with every step executed exactly once', async () => {
    await withScenario('redis', url(), threeWorkersExactlyOnce);
  }, 90_000);

  it('SIGKILL of redis-server (appendfsync always) during 200 runs, restarted on its directory: no acknowledged checkpoint is lost, all runs complete', async () => {
    own = await startRedis({ appendfsync: 'always' });
    const server = own;
    await withScenario('redis', server.url, async (s) => {
      const workers = await startWorkers(s.store, s.ledger, [
        { concurrency: 20, stepMs: 100 },
        { concurrency: 20, stepMs: 100 },
      ]);
      const ids = runIdsOf('rk-', 200);
      for (let i = 0; i < ids.length; i += 50) {
        await Promise.all(ids.slice(i, i + 50).map((id, j) => s.client.client.start('crash', { i: i + j }, { id, conflictPolicy: 'fail' })));
      }
      await waitFor('200 steps done', () => s.ledger.read().filter((e) => e.phase === 'done').length >= 200, 30_000, 10);
      // NOTE: read synchronously right before the kill: kill9AndRestart() sends SIGKILL before it first yields, so
      // every checkpoint this snapshot proves acknowledged was acknowledged before the kill.
      const snapshot = s.ledger.read();
      const killedAt = Date.now();
      await server.kill9AndRestart();
      const restartMs = Date.now() - killedAt;
      expect(snapshot.filter((e) => e.phase === 'done').length).toBeLessThan(3 * ids.length); // killed mid-way
      const acked = acknowledgedCheckpoints(snapshot);
      expect(acked.length).toBeGreaterThan(0);

      // Right after the restart: every acknowledged checkpoint is there, with the output of that execution.
      const ackedRuns = [...new Set(acked.map((a) => a.runId))];
      const rightAfter = await waitFor('describe() after the restart', () => describeAll(s.client.client, ackedRuns), 15_000, 50);
      const missing: string[] = [];
      for (const a of acked) {
        const entry = rightAfter.get(a.runId)?.steps.find((st) => st.name === a.step);
        if (entry?.status !== 'completed' || (entry.output as { nonce?: string } | undefined)?.nonce !== a.nonce) {
          missing.push(`${a.runId}/${a.step}: ${JSON.stringify(entry)}`);
        }
      }
      expect(missing).toEqual([]);

      const infos = await waitAllCompleted(s.client.client, ids, 60_000);
      const recoveredInMs = Date.now() - killedAt;
      const entries = s.ledger.read();
      expect(workers.map((w) => w.alive())).toEqual([true, true]);

      // An acknowledged checkpoint is never re-executed, and keeps its output to the end.
      for (const a of acked) {
        expect(starts(entries, a.runId, a.step)).toHaveLength(1);
        expect(stepOutput(infos.get(a.runId)!, a.step)?.nonce).toBe(a.nonce);
      }
      let reRuns = 0;
      for (const id of ids) {
        const info = infos.get(id)!;
        expect(info.steps.map((st) => [st.name, st.status])).toEqual(STEP_NAMES.map((n) => [n, 'completed']));
        for (const step of STEP_NAMES) {
          const executions = starts(entries, id, step);
          reRuns += executions.length - 1;
          expect(new Set(executions.map((e) => e.key))).toEqual(new Set([`${id}:${step}`]));
          expect(new Set(executions.map((e) => e.attempt))).toEqual(new Set([1]));
          expect(dones(entries, id, step).map((e) => e.nonce)).toContain(stepOutput(info, step)?.nonce);
        }
      }
      report('redis server-kill9', {
        runs: ids.length,
        stepsDoneAtKill: snapshot.filter((e) => e.phase === 'done').length,
        acknowledgedCheckpointsChecked: acked.length,
        restartMs,
        recoveredInMs,
        reRunSteps: reRuns,
      });
    });
  }, 90_000);
});
