import { afterEach, describe, expect, it } from '@jest/globals';
import type { INestApplicationContext } from '@nestjs/common';
import {
  AesGcmCodec,
  CodecStore,
  ConfigurationError,
  Flow,
  MemoryStore,
  Step,
  Workflow,
  WorkflowFailedError,
  WORKFLOW_STORE,
  type WorkflowStore,
} from '../../src/index.js';
import { bootApp, eventually } from '../support/workflows.js';
import { testKey } from './codec-test-helpers.js';

/** A MemoryStore several apps share (closing one app does not close it). */
class SharedMemoryStore extends MemoryStore {
  override async close(): Promise<void> {}
}

@Workflow('codec_module')
class Approval {
  @Step() ask(input: { order: string }) {
    return Flow.waitForSignal('approve', { value: { asked: input.order } });
  }
  @Step() decide(payload: { ok: boolean }) {
    return { approved: payload.ok };
  }
}

let apps: INestApplicationContext[] = [];
afterEach(async () => {
  for (const app of apps) await app.close();
  apps = [];
});

async function boot(store: WorkflowStore, keys: Record<string, Buffer>, currentKeyId: string) {
  const booted = await bootApp([Approval], { store: store as never, codec: new AesGcmCodec({ keys, currentKeyId }) });
  apps.push(booted.app);
  return booted;
}

describe('the codec option', () => {
  it('wraps the configured store (a custom one too) so that the engine only ever talks to the codec', async () => {
    const store = new SharedMemoryStore();
    const { app, client } = await boot(store, { k1: testKey() }, 'k1');
    const provided = app.get<WorkflowStore>(WORKFLOW_STORE);
    expect(provided).toBeInstanceOf(CodecStore);
    expect((provided as CodecStore).inner).toBe(store);
    const handle = await client.start(Approval, { order: 'o-1' });
    await eventually(async () => (await client.describe(handle.runId))?.status === 'waiting');
    await client.signal(handle.runId, 'approve', { ok: true });
    expect(await handle.result()).toEqual({ approved: true });
    expect(AesGcmCodec.keyIdOf((await store.getRun(handle.runId))!.input)).toBe('k1');
  });

  it('refuses at bootstrap a codec that is not one', async () => {
    for (const codec of [{}, { encode: (d: string) => d }, 'aes']) {
      await expect(bootApp([Approval], { codec: codec as never })).rejects.toBeInstanceOf(ConfigurationError);
    }
  });

  it('fails a run whose consumed signal payload is under a removed key, naming it, and retry delivers the payload once the key is back', async () => {
    const store = new SharedMemoryStore();
    const k1 = testKey();
    const k2 = testKey();
    const { client } = await boot(store, { k2 }, 'k2');
    const handle = await client.start(Approval, { order: 'o-2' });
    await eventually(async () => (await client.describe(handle.runId))?.status === 'waiting');
    // a signal sent by an instance that still used k1 (since removed here)
    const old = new CodecStore(store, new AesGcmCodec({ keys: { k1 }, currentKeyId: 'k1' }));
    await old.sendSignal(handle.runId, 'approve', JSON.stringify({ ok: true }));
    const error = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause).toMatchObject({ name: 'CorruptRunError' });
    expect((error as WorkflowFailedError).cause.message).toContain(`nextInput of run "${handle.runId}": key "k1" is not among the codec's keys ("k2")`);
    // nothing lost: the payload stays stored (under k1) as the run's nextInput, and once k1 is back, retry delivers it
    expect(AesGcmCodec.keyIdOf((await store.getRun(handle.runId))!.nextInput!)).toBe('k1');
    await apps.shift()!.close();
    const restored = await boot(store, { k1, k2 }, 'k2');
    await restored.client.retry(handle.runId);
    expect(await restored.client.getHandle(handle.runId).result()).toEqual({ approved: true });
  });
});
