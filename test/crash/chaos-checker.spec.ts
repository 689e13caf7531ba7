/**
 * The chaos checker's `duplicated` rule for a body started again after its checkpoint, on a made-up ledger: a worker
 * just resumed from SIGSTOP may start once a body it had passed the lease check for (fenced, counted apart as
 * `staleAfterStop`); any other late start is a violation.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, STALE_AFTER_STOP_MS, type Window } from '../../chaos/checker.js';
import type { RunPlan } from '../../chaos/plan.js';
import type { ChaosEntry } from '../../chaos/workflows.js';
import type { RunInfo, WorkflowClient } from '../../src/index.js';

const T0 = 1_800_000_000_000;
const STEPS = ['open', 'flaky', 'slow', 'nap', 'finish'];

/** A completed chaos-linear run executed by pid 1, each step 10 ms, and its stored steps (outputs carry the nonces). */
function linearRun(runId: string): { entries: ChaosEntry[]; info: RunInfo } {
  const entries: ChaosEntry[] = [];
  STEPS.forEach((step, i) => {
    const base = { run: runId, wf: 'chaos-linear', step, key: `${runId}:${step}`, att: 1, pid: 1, nonce: `${runId}-${step}`, visit: 1, gen: 1 };
    entries.push({ ...base, t: 's', at: T0 + i * 10 }, { ...base, t: 'd', at: T0 + i * 10 + 5 });
  });
  const info = {
    runId,
    workflow: 'chaos-linear',
    status: 'completed',
    generation: 1,
    steps: STEPS.map((name) => ({ name, status: 'completed', attempts: 1, output: { nonce: `${runId}-${name}` } })),
  } as unknown as RunInfo;
  return { entries, info };
}

describe('chaos checker: a body started again after its checkpoint', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** Checks one run whose `open` step pid 2 starts again at `staleAt`, pid 2 having been stopped until `stoppedTo`. */
  async function lateStart(staleAt: number, stoppedTo: number, nonce = 'stale') {
    const { entries, info } = linearRun('lin-1');
    const stale: ChaosEntry = { ...entries[0], pid: 2, nonce, at: staleAt };
    const dir = mkdtempSync(join(tmpdir(), 'cairn-checker-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'ledger-0.jsonl'), [...entries, stale].map((e) => JSON.stringify(e)).join('\n') + '\n');
    const plan = { id: 'lin-1', wf: 'chaos-linear', input: { sleepMs: 0 }, startAt: 0, expect: 'completed' } as unknown as RunPlan;
    const windows: Window[] = [{ kind: 'worker-stopped', from: T0 - 3_000, to: stoppedTo, pid: 2 }];
    return check({
      client: {} as WorkflowClient,
      dir,
      plans: [plan],
      controls: new Map(),
      windows,
      leaseMs: 2_000,
      pollMs: 100,
      slackMs: 500,
      describe: async (id) => (id === 'lin-1' ? info : undefined),
    });
  }

  it(`does not count a start by a worker within ${STALE_AFTER_STOP_MS} ms of its resumption from SIGSTOP whose output was not recorded`, async () => {
    const res = await lateStart(T0 + 100, T0 + 20);
    expect(res.violations).toEqual([]);
    expect(res.duplicated).toBe(0);
    expect(res.staleAfterStop).toBe(1);
  });

  it('counts a late start long after the worker resumed', async () => {
    const res = await lateStart(T0 + 20 + STALE_AFTER_STOP_MS + 100, T0 + 20);
    expect(res.duplicated).toBe(1);
    expect(res.staleAfterStop).toBe(0);
    expect(res.violations[0].detail).toMatch(/step lin-1:open started again \(pid 2, attempt 1\) after its checkpoint/);
  });

  it('counts a late start by a worker that was never stopped, and one whose output is the recorded one', async () => {
    const notStopped = await lateStart(T0 + 100, T0 - 2_000);
    expect(notStopped.duplicated).toBe(1);
    const recorded = await lateStart(T0 + 100, T0 + 20, 'lin-1-open');
    expect(recorded.duplicated).toBe(1);
  });
});
