import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  InvalidArgumentError,
  Step,
  UnknownWorkflowError,
  Workflow,
  WorkflowDefinitionError,
  type StepContext,
} from '../../src/index.js';
import { eventually, moduleFor, rejection, SharedMemoryStore, useApps } from './helpers.js';

let ran: { version: number; runId: string }[] = [];

@Workflow({ name: 'order', version: 1 })
class OrderV1 {
  @Step() charge(input: number, ctx: StepContext) {
    ran.push({ version: 1, runId: ctx.runId });
    return `v1:${input}`;
  }
}

@Workflow({ name: 'order', version: 2 })
class OrderV2 {
  @Step() reserve(input: number) {
    return input * 10;
  }
  @Step() charge(input: number, ctx: StepContext) {
    ran.push({ version: 2, runId: ctx.runId });
    return `v2:${input}`;
  }
}

@Workflow({ name: 'order', version: 2 })
class OrderV2Again {
  @Step() other() {
    return 1;
  }
}

describe('versions side by side', () => {
  const apps = useApps();
  beforeEach(() => {
    ran = [];
  });

  it('starts the highest version by name, a chosen one with `version`, and a class its own; runs keep their version', async () => {
    const { client } = await apps.boot([OrderV1, OrderV2]);
    expect(await client.execute('order', 1, { id: 'by-name' })).toBe('v2:10');
    expect(await client.execute('order', 1, { id: 'chosen', version: 1 })).toBe('v1:1');
    expect(await client.execute(OrderV1, 2, { id: 'by-class' })).toBe('v1:2');
    expect(await client.execute(OrderV2, 2, { id: 'by-class-2' })).toBe('v2:20');
    expect((await client.describe('by-name'))!.version).toBe(2);
    expect((await client.describe('chosen'))!.version).toBe(1);
    await rejection(client.start('order', 1, { version: 3 }), UnknownWorkflowError);
    await rejection(client.start('order', 1, { version: 0 }), InvalidArgumentError);
    // a fork keeps the source's version
    const forked = await client.fork('chosen', { fromStep: 'charge' });
    expect(await forked.result()).toBe('v1:1');
    expect((await forked.describe()).version).toBe(1);
  });

  it('fails bootstrap on two classes with the same name and version', async () => {
    const error = await rejection(apps.bootModule([moduleFor()], [OrderV2, OrderV2Again]), WorkflowDefinitionError);
    expect(error.message).toMatch(/named "order" with version 2 \(classes "OrderV2" and "OrderV2Again"\)/);
  });

  it('drains each version on the instances that register it (a rolling deploy)', async () => {
    const store = new SharedMemoryStore();
    // an instance that only starts runs, knowing both versions (e.g. the API tier during the deploy)
    const starter = await apps.boot([OrderV1, OrderV2], { store, worker: { enabled: false } });
    const ids = { v1: ['a1', 'a2', 'a3'], v2: ['b1', 'b2', 'b3'] };
    for (const id of ids.v1) await starter.client.start('order', 1, { id, version: 1 });
    for (const id of ids.v2) await starter.client.start('order', 1, { id });
    // old instances (v1 only) and new ones (v2 only)
    await apps.boot([OrderV1], { store });
    await apps.boot([OrderV2], { store });
    await eventually(async () => {
      const { runs } = await starter.client.list({ workflow: 'order' });
      return runs.length === 6 && runs.every((r) => r.status === 'completed');
    });
    for (const id of ids.v1) expect(await starter.client.getHandle(id).result()).toBe('v1:1');
    for (const id of ids.v2) expect(await starter.client.getHandle(id).result()).toBe('v2:10');
    expect(ran.filter((r) => r.version === 1).map((r) => r.runId).sort()).toEqual(ids.v1);
    expect(ran.filter((r) => r.version === 2).map((r) => r.runId).sort()).toEqual(ids.v2);
  });

  it('leaves runs of a version no instance registers pending', async () => {
    const store = new SharedMemoryStore();
    const starter = await apps.boot([OrderV1, OrderV2], { store, worker: { enabled: false } });
    await starter.client.start('order', 1, { id: 'orphan-v1', version: 1 });
    const newOnly = await apps.boot([OrderV2], { store });
    await newOnly.client.start('order', 5, { id: 'fresh-v2' });
    await eventually(async () => (await newOnly.client.describe('fresh-v2'))?.status === 'completed');
    expect((await newOnly.client.describe('orphan-v1'))!.status).toBe('pending');
  });
});
