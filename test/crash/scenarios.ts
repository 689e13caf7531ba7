/**
 * The crash scenarios that PostgreSQL and Redis share (not a spec file): each spec file runs them on its store.
 * Every scenario gets a fresh schema / key prefix, its own ledger, and a worker-less client in the test process.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from '@jest/globals';
import type { RunInfo, StoredRun, WorkflowStore } from '../../src/index.js';
import { WORKFLOW_STORE } from '../../src/index.js';
import {
  CRASH_WORKFLOW,
  STEP_NAMES,
  crashStore,
  createLedger,
  describeAll,
  dones,
  dropStore,
  executionSummary,
  killAllWorkers,
  runIdsOf,
  starts,
  startClient,
  startWorkers,
  stepOutput,
  waitAllCompleted,
  waitFor,
  workerOutputs,
  type CrashStore,
  type Ledger,
  type LedgerEntry,
  type StoreKind,
  type TestClient,
  type WorkerProcess,
  type WorkerSettings,
} from './harness.js';

export interface Scenario {
  store: CrashStore;
  ledger: Ledger;
  client: TestClient;
}

/** Runs `fn` with a fresh store namespace, ledger and client; always kills the workers and cleans up. */
export async function withScenario<T>(kind: StoreKind, url: string | undefined, fn: (s: Scenario) => Promise<T>): Promise<T> {
  const store = crashStore(kind, url);
  const ledger = createLedger();
  let client: TestClient | undefined;
  try {
    // NOTE: the client boots first, so the schema exists before the workers race to create it.
    client = await startClient(store);
    return await fn({ store, ledger, client });
  } catch (error) {
    // Say what the workers and the ledger saw: a crash test failing without it is hard to read.
    const tail = ledger.read().slice(-30).map((e) => JSON.stringify(e)).join('\n');
    if (error instanceof Error) error.message += `\n\nledger (last 30 lines):\n${tail}\n\n${workerOutputs()}`;
    throw error;
  } finally {
    await killAllWorkers();
    await client?.close();
    await dropStore(store);
    ledger.remove();
  }
}

/** One line of numbers for the report. */
export function report(name: string, numbers: Record<string, unknown>): void {
  // eslint-disable-next-line no-console
  console.log(`[crash] ${name}: ${JSON.stringify(numbers)}`);
}

function expectCompletedRun(info: RunInfo): void {
  expect(info.status).toBe('completed');
  expect(info.steps.map((s) => [s.name, s.status])).toEqual(STEP_NAMES.map((n) => [n, 'completed']));
}

/** The recorded output of every step is the one of an execution that finished (its nonce is in the ledger). */
function expectOutputsFromLedger(info: RunInfo, entries: LedgerEntry[]): void {
  for (const step of STEP_NAMES) {
    const out = stepOutput(info, step);
    const done = dones(entries, info.runId, step).map((e) => e.nonce);
    expect(done).toContain(out?.nonce);
  }
}

/**
 * Starts worker A, which starts the runs and executes them, then worker B, which gets them only once A is gone.
 * NOTE: B boots only after A has started the runs: a run started while A's poll holds its free slots is not claimed by
 * A at once (it is left pending for any instance), and B must not take it.
 */
async function startAThenB(s: Scenario, a: WorkerSettings, b: WorkerSettings): Promise<[WorkerProcess, WorkerProcess]> {
  const [first] = await startWorkers(s.store, s.ledger, [a]);
  const runIds = runIdsOf(a.runPrefix!, a.start!);
  await waitFor('A to execute every run', () => {
    const entries = s.ledger.read();
    return runIds.every((id) => starts(entries, id, 'one').some((e) => e.pid === first.pid));
  }, 30_000, 20);
  const [second] = await startWorkers(s.store, s.ledger, [b]);
  return [first, second];
}

// ---------------------------------------------------------------------------------------------------------------------
// 1. SIGKILL while a step runs
// ---------------------------------------------------------------------------------------------------------------------

export async function killWhileStepRuns(s: Scenario): Promise<void> {
  const ids = runIdsOf('mid-', 5);
  // A starts the runs (so it claims them at once) and is slow in step one; B is an ordinary worker.
  const [a, b] = await startAThenB(s, { start: ids.length, runPrefix: 'mid-', slowStep: 'one', slowMs: 60_000 }, {});
  await waitFor('step one running on A in every run', () => ids.every((id) => starts(s.ledger.read(), id, 'one').some((e) => e.pid === a.pid)), 30_000);
  const killedAt = Date.now();
  await a.kill9();
  const infos = await waitAllCompleted(s.client.client, ids, 30_000);
  const recoveredInMs = Date.now() - killedAt;
  const entries = s.ledger.read();

  for (const id of ids) {
    const info = infos.get(id)!;
    expectCompletedRun(info);
    const one = starts(entries, id, 'one');
    // The killed step ran twice: cut off on A, then again on B, with the same key and attempt number.
    expect(one.map((e) => e.pid)).toEqual([a.pid, b.pid]);
    expect(one.map((e) => e.key)).toEqual([`${id}:one`, `${id}:one`]);
    expect(one.map((e) => e.attempt)).toEqual([1, 1]);
    expect(dones(entries, id, 'one').map((e) => e.pid)).toEqual([b.pid]);
    for (const step of ['two', 'three'] as const) {
      expect(starts(entries, id, step).map((e) => [e.pid, e.key, e.attempt])).toEqual([[b.pid, `${id}:${step}`, 1]]);
    }
    // An execution cut off by a crash is not counted (DESIGN §1 RunInfo.steps).
    expect(info.steps.map((st) => st.attempts)).toEqual([1, 1, 1]);
    expectOutputsFromLedger(info, entries);
    for (const step of STEP_NAMES) expect(stepOutput(info, step)?.pid).toBe(b.pid);
  }
  const summary = executionSummary(entries, ids);
  report(`${s.store.kind} kill-while-step-runs`, {
    runs: ids.length,
    killedStepExecutions: summary.filter((r) => r.step === 'one').map((r) => r.starts),
    otherStepExecutions: summary.filter((r) => r.step !== 'one').map((r) => r.starts),
    recoveredInMs,
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// 2. SIGKILL right after a checkpoint
// ---------------------------------------------------------------------------------------------------------------------

export async function killRightAfterCheckpoint(s: Scenario): Promise<void> {
  const ids = runIdsOf('ckpt-', 5);
  const [a, b] = await startAThenB(s, { start: ids.length, runPrefix: 'ckpt-', slowStep: 'two', slowMs: 60_000 }, {});
  // Step two starts only after step one's checkpoint resolved: kill as soon as it has started everywhere.
  const atKill = await waitFor(
    'step two started on A in every run',
    () => {
      const entries = s.ledger.read();
      return ids.every((id) => starts(entries, id, 'two').some((e) => e.pid === a.pid)) && entries;
    },
    30_000,
    10,
  );
  await a.kill9();
  const infos = await waitAllCompleted(s.client.client, ids, 30_000);
  const entries = s.ledger.read();

  for (const id of ids) {
    const info = infos.get(id)!;
    expectCompletedRun(info);
    // Step one is not re-run: one execution, on A, and its output is the one checkpointed before the kill.
    expect(starts(entries, id, 'one').map((e) => e.pid)).toEqual([a.pid]);
    const oneDone = dones(atKill, id, 'one');
    expect(oneDone).toHaveLength(1);
    expect(stepOutput(info, 'one')).toEqual({ pid: a.pid, step: 'one', nonce: oneDone[0].nonce });
    // Step two was cut off on A and ran again on B under the same key and attempt.
    const two = starts(entries, id, 'two');
    expect(two.map((e) => [e.pid, e.key, e.attempt])).toEqual([
      [a.pid, `${id}:two`, 1],
      [b.pid, `${id}:two`, 1],
    ]);
    expect(starts(entries, id, 'three').map((e) => e.pid)).toEqual([b.pid]);
    expect(info.steps.map((st) => st.attempts)).toEqual([1, 1, 1]);
    expectOutputsFromLedger(info, entries);
  }
  const summary = executionSummary(entries, ids);
  report(`${s.store.kind} kill-right-after-checkpoint`, {
    runs: ids.length,
    stepOneExecutions: summary.filter((r) => r.step === 'one').map((r) => r.starts),
    stepTwoExecutions: summary.filter((r) => r.step === 'two').map((r) => r.starts),
    stepThreeExecutions: summary.filter((r) => r.step === 'three').map((r) => r.starts),
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// 3. SIGSTOP past the lease, SIGCONT after another worker completed the run
// ---------------------------------------------------------------------------------------------------------------------

export async function stoppedWorkerIsFenced(s: Scenario): Promise<void> {
  const ids = runIdsOf('stop-', 3);
  // NOTE: 3 s, not less: A must keep its leases until the SIGSTOP. Under the full suite on 2 cores, A once went 1.5 s
  // without renewing (starved), claimed its own runs again and ran step two twice before the stop.
  const leaseMs = 3_000;
  const releaseFile = join(s.ledger.dir, 'release-stale-steps');
  // A's step two ignores ctx.signal and sleeps until the test releases it, so after SIGCONT its body finishes and A
  // tries to checkpoint it (however long B took to boot on a busy machine).
  const [a, b] = await startAThenB(
    s,
    { start: ids.length, runPrefix: 'stop-', leaseMs, slowStep: 'two', slowMs: 60_000, slowIgnoresSignal: true, releaseFile },
    { leaseMs },
  );
  await waitFor(
    'step two started on A in every run',
    () => {
      const entries = s.ledger.read();
      return ids.every((id) => starts(entries, id, 'two').some((e) => e.pid === a.pid));
    },
    30_000,
    10,
  );
  a.child.kill('SIGSTOP');
  const stoppedAt = Date.now();
  const infos = await waitAllCompleted(s.client.client, ids, 30_000);
  const takenOverInMs = Date.now() - stoppedAt;

  const store = s.client.app.get<WorkflowStore>(WORKFLOW_STORE);
  const rawBefore = new Map<string, StoredRun | undefined>();
  for (const id of ids) rawBefore.set(id, await store.getRun(id));
  const before = await describeAll(s.client.client, ids);

  // Release A's step bodies while it is still stopped: on SIGCONT its lease renewal and its checkpoints are both due.
  writeFileSync(releaseFile, '');
  const stoppedForMs = Date.now() - stoppedAt;
  a.child.kill('SIGCONT');

  // Every stale step body finishes on A, and A notices it lost each run; then A is closed (SIGTERM → app.close()).
  await waitFor('A finished its stale step bodies', () => ids.every((id) => dones(s.ledger.read(), id, 'two').some((e) => e.pid === a.pid)), 15_000);
  // NOTE: a refused commit names the workflow (`Run "id" (crash): lease lost …`), a refused renewal does not.
  for (const id of ids) await a.waitForOutput(new RegExp(`Run "${id}"(?: \\(${CRASH_WORKFLOW}\\))?: lease lost`), 15_000);
  const closed = await a.terminate();
  expect(closed).toEqual({ code: 0, signal: null });

  const after = await describeAll(s.client.client, ids);
  const entries = s.ledger.read();
  for (const id of ids) {
    const info = after.get(id)!;
    // Nothing A did after resuming reached the store.
    expect(info).toEqual(before.get(id));
    expect(await store.getRun(id)).toEqual(rawBefore.get(id));
    expect(info).toEqual(infos.get(id));
    expectCompletedRun(info);
    expect(stepOutput(info, 'one')?.pid).toBe(a.pid); // checkpointed by A before it was stopped
    expect(stepOutput(info, 'two')?.pid).toBe(b.pid);
    expect(stepOutput(info, 'three')?.pid).toBe(b.pid);
    expect((info.output as { pid: number }).pid).toBe(b.pid);
    // A's stale execution of step two finished (it is in the ledger) but its output is not the stored one.
    const staleDone = dones(entries, id, 'two').filter((e) => e.pid === a.pid);
    expect(staleDone).toHaveLength(1);
    expect(stepOutput(info, 'two')?.nonce).not.toBe(staleDone[0].nonce);
    // Both executions of step two used the same key and attempt; A never started step three.
    expect(starts(entries, id, 'two').map((e) => [e.key, e.attempt])).toEqual([
      [`${id}:two`, 1],
      [`${id}:two`, 1],
    ]);
    expect(starts(entries, id, 'three').map((e) => e.pid)).toEqual([b.pid]);
  }
  const out = a.output();
  report(`${s.store.kind} sigstop-fencing`, {
    runs: ids.length,
    takenOverInMs,
    stoppedForMs,
    staleCommitRejected: (out.match(/lease lost to another instance; dropping the run here/g) ?? []).length,
    staleRenewRejected: (out.match(/lease lost to another instance; interrupting it here/g) ?? []).length,
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// 4. Three processes, 300 runs, no crash: every step exactly once
// ---------------------------------------------------------------------------------------------------------------------

export async function threeWorkersExactlyOnce(s: Scenario): Promise<void> {
  const n = 300;
  const ids = runIdsOf('load-', n);
  // NOTE: no kill here, so a longer lease costs nothing; it keeps a CPU-starved machine from expiring leases
  // (which would legitimately re-run a step and is what the other tests are about).
  const workers = await startWorkers(s.store, s.ledger, [0, 1, 2].map(() => ({ leaseMs: 5_000, concurrency: 25 })));
  const began = Date.now();
  for (let i = 0; i < n; i += 50) {
    await Promise.all(ids.slice(i, i + 50).map((id, j) => s.client.client.start(CRASH_WORKFLOW, { i: i + j }, { id, conflictPolicy: 'fail' })));
  }
  await waitFor(`${n} runs to finish step three`, () => s.ledger.read().filter((e) => e.phase === 'done' && e.step === 'three').length >= n, 60_000, 100);
  const infos = await waitAllCompleted(s.client.client, ids, 30_000);
  const elapsedMs = Date.now() - began;
  const entries = s.ledger.read();

  const started = entries.filter((e) => e.phase === 'start');
  const done = entries.filter((e) => e.phase === 'done');
  expect(done).toHaveLength(3 * n);
  expect(started).toHaveLength(3 * n);
  expect(new Set(started.map((e) => `${e.runId}/${e.step}`)).size).toBe(3 * n);
  expect(new Set(done.map((e) => `${e.runId}/${e.step}`)).size).toBe(3 * n);
  for (const e of started) {
    expect(e.key).toBe(`${e.runId}:${e.step}`);
    expect(e.attempt).toBe(1);
  }
  for (const id of ids) {
    const info = infos.get(id)!;
    expectCompletedRun(info);
    expect(info.steps.map((st) => st.attempts)).toEqual([1, 1, 1]);
    expectOutputsFromLedger(info, entries);
  }
  const perWorker = Object.fromEntries(workers.map((w) => [w.pid, done.filter((e) => e.pid === w.pid).length]));
  report(`${s.store.kind} three-workers-300-runs`, { runs: n, ledgerLines: entries.length, stepsDone: done.length, perWorker, elapsedMs });
}
