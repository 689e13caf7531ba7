import { describe, expect, it } from '@jest/globals';
import { Flow, Step, Workflow, WorkflowDefinitionError } from '../../src/index.js';
import { eventually, moduleFor, rejection, SharedMemoryStore, useApps } from './helpers.js';

// The deployed code today: three steps, the last two wait for signals.
@Workflow({ name: 'order' })
class OrderToday {
  @Step() a() {
    return 1;
  }
  @Step() b() {
    return Flow.waitForSignal('go-b');
  }
  @Step() c() {
    return Flow.waitForSignal('go-c');
  }
}

// Tomorrow's candidates.
@Workflow({ name: 'order' })
class OrderWithoutB {
  @Step() a() {
    return 1;
  }
  @Step() c() {
    return 2;
  }
}

@Workflow({ name: 'order' })
class OrderWithoutA {
  @Step() b() {
    return 1;
  }
  @Step() c() {
    return 2;
  }
}

@Workflow({ name: 'order' })
class OrderPlusD {
  @Step() a() {
    return 1;
  }
  @Step() b() {
    return 1;
  }
  @Step() c() {
    return 1;
  }
  @Step() d() {
    return 1;
  }
}

@Workflow({ name: 'order', version: 2 })
class OrderV2 {
  @Step() only() {
    return 1;
  }
}

describe('the compatibility gate', () => {
  const apps = useApps();

  /** Two runs waiting at b and one at c, written by today's code. */
  async function runsInFlight() {
    const store = new SharedMemoryStore();
    const today = await apps.boot([OrderToday], { store });
    await today.client.start(OrderToday, null, { id: 'at-b-1' });
    await today.client.start(OrderToday, null, { id: 'at-b-2' });
    await today.client.start(OrderToday, null, { id: 'at-c' });
    await eventually(async () => (await today.client.list({ status: 'waiting' })).runs.length === 3);
    await today.client.signal('at-c', 'go-b');
    await eventually(async () => (await today.client.describe('at-c'))?.currentStep === 'c');
    expect(await today.client.checkCompatibility()).toEqual({ ok: true, runsChecked: 3, incompatible: [], unclaimable: [] });
    await today.app.close();
    apps.forget(today.app);
    return store;
  }

  it('names the runs whose step is gone', async () => {
    const store = await runsInFlight();
    const { client } = await apps.boot([OrderWithoutB], { store, worker: { enabled: false } });
    const report = await client.checkCompatibility();
    expect(report.ok).toBe(false);
    expect(report.runsChecked).toBe(3);
    expect(report.unclaimable).toEqual([]);
    expect(report.incompatible.map((r) => r.runId).sort()).toEqual(['at-b-1', 'at-b-2', 'at-c']);
    const atB = report.incompatible.find((r) => r.runId === 'at-b-1')!;
    expect(atB).toMatchObject({ workflow: 'order', version: 1 });
    expect(atB.reason).toMatch(/at step "b", which OrderWithoutB \(order v1\) no longer has \(steps: a, c\) \(2 runs like this one\)/);
    // the run at c completed b, which is gone too
    expect(report.incompatible.find((r) => r.runId === 'at-c')!.reason).toMatch(/step\(s\) it completed \("b"\) no longer exist/);
  });

  it('names the runs whose completed steps are gone', async () => {
    const store = await runsInFlight();
    const { client } = await apps.boot([OrderWithoutA], { store, worker: { enabled: false } });
    const report = await client.checkCompatibility();
    expect(report.incompatible.map((r) => r.runId).sort()).toEqual(['at-b-1', 'at-b-2', 'at-c']);
    expect(report.incompatible.find((r) => r.runId === 'at-c')!.reason).toMatch(/step\(s\) it completed \("a"\) no longer exist/);
  });

  it('accepts a compatible change, and reports the live runs of a version the app no longer registers', async () => {
    const store = await runsInFlight();
    const plus = await apps.boot([OrderPlusD], { store, worker: { enabled: false } });
    expect((await plus.client.checkCompatibility()).ok).toBe(true);
    const v2 = await apps.boot([OrderV2], { store, worker: { enabled: false } });
    expect(await v2.client.checkCompatibility()).toEqual({
      ok: false,
      runsChecked: 3,
      incompatible: [],
      unclaimable: [{ workflow: 'order', version: 1, runs: 3 }],
    });
  });

  it("stops bootstrap with versioning.onIncompatible: 'fail'", async () => {
    const store = await runsInFlight();
    const error = await rejection(
      apps.bootModule([moduleFor({ store, versioning: { onIncompatible: 'fail' } })], [OrderWithoutB]),
      WorkflowDefinitionError,
    );
    expect(error.message).toMatch(/incompatible: run "at-b-1"/);
    // the default only warns
    const { client } = await apps.boot([OrderWithoutB], { store, worker: { enabled: false } });
    expect((await client.checkCompatibility()).ok).toBe(false);
  });
});
