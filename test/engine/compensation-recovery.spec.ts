import { beforeEach, describe, expect, it } from '@jest/globals';
import { NonRetryableError, RecoveryLimitError, Step, Workflow, WorkflowFailedError, type CompensationContext, type RenewResult } from '../../src/index.js';
import { rejection, SharedMemoryStore, untilAborted, useApps } from '../nest/helpers.js';

let undoCalls: { key: string; attempt: number }[] = [];
let undoCrashes = true;

/** A store on which every lease renewal is refused: an instance that keeps dying while it works. */
class RefusingRenewals extends SharedMemoryStore {
  refuse = true;
  override async renewLease(runId: string, token: string, leaseMs: number): Promise<RenewResult> {
    if (this.refuse) return { ok: false };
    return super.renewLease(runId, token, leaseMs);
  }
}

@Workflow()
class CrashingUndo {
  @Step({ compensate: 'undoA' }) a(input: string) {
    return `${input}>a`;
  }
  async undoA(_output: string, ctx: CompensationContext) {
    undoCalls.push({ key: ctx.idempotencyKey, attempt: ctx.attempt });
    if (undoCrashes) await untilAborted(ctx.signal, 10_000); // cut off by the lost lease, like a crash
  }
  @Step() b() {
    throw new NonRetryableError('b broke');
  }
}

describe('recovery limit during compensation', () => {
  const apps = useApps();
  beforeEach(() => {
    undoCalls = [];
    undoCrashes = true;
  });

  it('a compensation that keeps crashing ends the run failed (phase compensation) instead of looping', async () => {
    const store = new RefusingRenewals();
    const { client } = await apps.boot([CrashingUndo], { store, maxRecoveries: 2, worker: { leaseMs: 150, pollIntervalMs: 20 } });
    const handle = await client.start(CrashingUndo, 'in', { id: 'undo-crash' });
    const error = await rejection(handle.result({ timeout: '5s' }), WorkflowFailedError);
    expect(error.cause).toMatchObject({ name: RecoveryLimitError.name, step: 'a', phase: 'compensation' });
    expect(undoCalls).toEqual([
      { key: 'undo-crash:a:compensate', attempt: 1 },
      { key: 'undo-crash:a:compensate', attempt: 1 },
      { key: 'undo-crash:a:compensate', attempt: 1 },
    ]);
    const info = await client.describe('undo-crash');
    expect(info?.status).toBe('failed');
    expect(info?.steps.map((s) => s.status)).toEqual(['completed', 'failed']);
    expect(info?.steps[0].error).toContain('RecoveryLimitError');

    // once the cause is fixed, retry resumes the compensation and the run ends compensated
    undoCrashes = false;
    store.refuse = false;
    await client.retry('undo-crash');
    await rejection(client.getHandle('undo-crash').result({ timeout: '3s' }), WorkflowFailedError);
    const after = await client.describe('undo-crash');
    expect(after?.status).toBe('compensated');
    expect(after?.steps.map((s) => s.status)).toEqual(['compensated', 'failed']);
    expect(after?.error).toMatchObject({ name: 'NonRetryableError', step: 'b', phase: 'step' });
  });
});
