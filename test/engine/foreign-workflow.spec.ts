import { describe, expect, it } from '@jest/globals';
import { Step, Workflow, type ClaimedRun, type LeaseRequest, type WorkflowRef } from '../../src/index.js';
import { SharedMemoryStore, sleep, useApps } from '../nest/helpers.js';

@Workflow('wf-a')
class WfA {
  @Step() a(input: string) {
    return `${input}>a`;
  }
}

@Workflow('wf-b')
class WfB {
  @Step() b(input: string) {
    return `${input}>b`;
  }
}

/** Counts the claims and releases that reach the store. */
class CountingStore extends SharedMemoryStore {
  claims = 0;
  releases = 0;
  override async claimRun(runId: string, lease: LeaseRequest, workflows?: readonly WorkflowRef[]): Promise<ClaimedRun | undefined> {
    const claimed = await super.claimRun(runId, lease, workflows);
    if (claimed) this.claims++;
    return claimed;
  }
  override async releaseLease(runId: string, token: string): Promise<void> {
    this.releases++;
    return super.releaseLease(runId, token);
  }
}

describe('runs of workflows another deployment registers', () => {
  const apps = useApps();

  it('are left to that deployment: no claim and release loop here', async () => {
    const store = new CountingStore();
    await apps.boot([WfA], { store });
    const starter = await apps.boot([WfB], { store, worker: { enabled: false } });
    const handle = await starter.client.start('wf-b', 'in', { id: 'foreign-1' });
    await sleep(300); // store events and polls of the wf-a worker happen meanwhile
    expect(store.claims).toBe(0);
    expect(store.releases).toBe(0);
    expect((await handle.describe()).status).toBe('pending');

    // a worker that registers wf-b runs it
    await apps.boot([WfB], { store });
    expect(await handle.result({ timeout: '3s' })).toBe('in>b');
  });
});
