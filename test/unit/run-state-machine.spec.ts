/**
 * The run state machine's definition, and the memory store (the reference implementation) against it: each status
 * class is checked by behaviour, through the store port, for every status.
 */
import { describe, expect, it } from '@jest/globals';
import { MemoryStore } from '../../src/store/memory/memory.store.js';
import {
  CLAIMABLE_STATUSES,
  DUE_ON_RELEASE,
  LIVE_STATUSES,
  RUN_STATUSES,
  STARTED_BY_CLAIM,
  TERMINAL_STATUSES,
  isTerminal,
  statusAfterClaim,
  type RunStatus,
} from '../../src/store/run-state-machine.js';
import type { WorkflowStore } from '../../src/store/workflow-store.interface.js';

const LEASE = { owner: 'a', leaseMs: 60_000 };
let seq = 0;

/** A run put in `status` through the port, unleased and due now where the status allows. */
async function runIn(store: WorkflowStore, status: RunStatus): Promise<string> {
  const runId = `r${++seq}`;
  if (status === 'paused') {
    await store.createRun({ runId, workflow: 'w', version: 1, input: '1', state: '{}' }, { onConflict: 'keep' });
    await store.control(runId, { action: 'pause' });
    return runId;
  }
  const { run } = await store.createRun({ runId, workflow: 'w', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE });
  await store.commit(runId, run.leaseToken!, { status, due: { delayMs: 0 }, release: true, leaseMs: 60_000 });
  return runId;
}

describe('run state machine definition', () => {
  it('partitions the statuses into live and terminal', () => {
    expect([...LIVE_STATUSES, ...TERMINAL_STATUSES].sort()).toEqual([...RUN_STATUSES].sort());
    expect(LIVE_STATUSES.filter((s) => TERMINAL_STATUSES.includes(s))).toEqual([]);
  });

  it('keeps every class inside the live statuses, and paused out of the claimable ones', () => {
    for (const cls of [CLAIMABLE_STATUSES, DUE_ON_RELEASE, STARTED_BY_CLAIM]) for (const s of cls) expect(LIVE_STATUSES).toContain(s);
    expect(CLAIMABLE_STATUSES).not.toContain('paused');
    for (const s of STARTED_BY_CLAIM) expect(CLAIMABLE_STATUSES).toContain(s);
    for (const s of DUE_ON_RELEASE) expect(CLAIMABLE_STATUSES).toContain(s);
  });
});

describe('memory store against the state machine definition', () => {
  it.each(RUN_STATUSES.map((s) => [s]))('a %s run: claimable, started by a claim, terminal as the definition says', async (status) => {
    const store = new MemoryStore();
    const runId = await runIn(store, status);
    expect((await store.getRun(runId))!.status).toBe(status);
    const claimed = await store.claimRun(runId, LEASE);
    expect(claimed !== undefined).toBe(CLAIMABLE_STATUSES.includes(status));
    if (claimed) expect(claimed.status).toBe(statusAfterClaim(status));
    expect(claimed?.status === 'running' && status !== 'running').toBe(STARTED_BY_CLAIM.includes(status));
    // terminal statuses refuse signals and live control requests
    expect((await store.sendSignal(runId, 's', '1')).outcome).toBe(isTerminal(status) ? 'not-active' : 'ok');
  });

  it.each(LIVE_STATUSES.filter((s) => s !== 'paused').map((s) => [s]))('releasing a leased %s run makes it due at once as the definition says', async (status) => {
    const store = new MemoryStore();
    const runId = `rel${++seq}`;
    const { run } = await store.createRun({ runId, workflow: 'w', version: 1, input: '1', state: '{}' }, { onConflict: 'keep', lease: LEASE });
    // not due (a far wake-up) but still leased, then released
    await store.commit(runId, run.leaseToken!, { status, due: { delayMs: 600_000 }, leaseMs: 60_000 });
    await store.releaseLease(runId, run.leaseToken!);
    const due = (await store.getRun(runId))!.dueAt;
    expect(due !== undefined && due.getTime() <= Date.now()).toBe(DUE_ON_RELEASE.includes(status));
  });
});
