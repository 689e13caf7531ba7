import { afterAll, expect, it } from '@jest/globals';
import type { INestApplicationContext } from '@nestjs/common';
import {
  AesGcmCodec,
  CodecStore,
  CorruptRunError,
  Flow,
  PayloadTooLargeError,
  Step,
  Workflow,
  WorkflowClient,
  WorkflowFailedError,
  WORKFLOW_STORE,
  type WorkflowStore,
} from '../../src/index.js';
import type { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { dropSchema, randomSchemaName, withPgClient } from '../setup/postgres-server.js';
import { testPostgres } from '../setup/test-servers.js';
import { bootApp, eventually } from '../support/workflows.js';
import { flipCiphertext, testKey } from './codec-test-helpers.js';

/**
 * Key rotation and undecodable values, through real apps on one Postgres schema, restarted with different keys:
 * values under an older key still read after `currentKeyId` moves; a run whose key was removed (or whose ciphertext was
 * tampered with) fails alone with CorruptRunError naming the run and the key, loses nothing, and completes on `retry`
 * once the key (or the value) is back.
 */
const pg = testPostgres();
const K1 = testKey();
const K2 = testKey();

@Workflow('codec_rotation')
class Rotating {
  @Step() first(input: { n: number; nap?: number; pad?: string }) {
    return input.nap ? Flow.sleep(input.nap, { n: input.n }) : { n: input.n };
  }
  @Step() second(prev: { n: number }) {
    return { n: prev.n, done: `ok ${prev.n}` };
  }
}

const schema = randomSchemaName('cairn_codec_rot');
let current: INestApplicationContext | undefined;
afterAll(async () => {
  await current?.close();
  if (pg.url) await dropSchema(pg.url, schema);
});

/** Closes the running app, then boots one with these keys. */
async function restartWith(keys: Record<string, Buffer>, currentKeyId: string, maxPayloadBytes?: number): Promise<WorkflowClient> {
  await current?.close();
  const { app, client } = await bootApp([Rotating], {
    store: { type: 'postgres', url: pg.url, schema },
    codec: new AesGcmCodec({ keys, currentKeyId }),
    ...(maxPayloadBytes ? { maxPayloadBytes } : {}),
  });
  current = app;
  expect(app.get<WorkflowStore>(WORKFLOW_STORE)).toBeInstanceOf(CodecStore);
  return client;
}

/** A run that sleeps, then is paused: in flight, and claimed by no one until it is resumed. */
async function parked(client: WorkflowClient, n: number): Promise<string> {
  const handle = await client.start(Rotating, { n, nap: 100 });
  await eventually(async () => (await client.describe(handle.runId))?.status === 'sleeping');
  await client.pause(handle.runId);
  return handle.runId;
}

const rawRun = (runId: string) =>
  withPgClient(pg.url, async (query) => (await query(`SELECT input, state, error::text AS error FROM "${schema}".cairn_runs WHERE run_id = $1`, [runId]))[0] as { input: string; state: string; error: string | null });
const setInput = (runId: string, input: string) => withPgClient(pg.url, (query) => query(`UPDATE "${schema}".cairn_runs SET input = $2 WHERE run_id = $1`, [runId, input]));

async function failure(promise: Promise<unknown>): Promise<WorkflowFailedError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  return error as WorkflowFailedError;
}

pg.describe('codec key rotation and undecodable values (postgres)', () => {
  it('reads old values after rotation, fails only the run whose key is gone or whose value was tampered with, and retry completes them', async () => {
    // 1. Everything under k1: a completed run, and one in flight (paused mid-run).
    let client = await restartWith({ k1: K1 }, 'k1');
    const done1 = await client.start(Rotating, { n: 1 });
    expect(await done1.result()).toEqual({ n: 1, done: 'ok 1' });
    const inFlight1 = await parked(client, 2);
    expect(AesGcmCodec.keyIdOf((await rawRun(done1.runId)).input)).toBe('k1');

    // 2. Rotation: k2 is current, k1 still known. Old values read, new ones are written under k2.
    client = await restartWith({ k1: K1, k2: K2 }, 'k2');
    expect(await client.describe(done1.runId)).toMatchObject({ status: 'completed', input: { n: 1 }, output: { n: 1, done: 'ok 1' } });
    const done2 = await client.start(Rotating, { n: 3 });
    expect(await done2.result()).toEqual({ n: 3, done: 'ok 3' });
    expect(AesGcmCodec.keyIdOf((await rawRun(done2.runId)).input)).toBe('k2');
    const inFlight2 = await parked(client, 4);
    const tampered = await parked(client, 5);

    // 3. k1 removed: the run in flight under k1 fails alone when claimed, naming the run and the key; others go on.
    client = await restartWith({ k2: K2 }, 'k2');
    const stateBefore = (await rawRun(inFlight1)).state;
    await client.resume(inFlight1);
    await client.resume(inFlight2);
    const healthy = await Promise.all([6, 7, 8].map((n) => client.start(Rotating, { n })));
    const error = await failure(client.getHandle(inFlight1).result());
    expect(error.cause.name).toBe('CorruptRunError');
    expect(error.cause.message).toContain(`Run "${inFlight1}" has stored data that cannot be decoded`);
    expect(error.cause.message).toContain(`input of run "${inFlight1}": key "k1" is not among the codec's keys ("k2")`);
    expect(await client.getHandle(inFlight2).result()).toEqual({ n: 4, done: 'ok 4' });
    for (const [i, h] of healthy.entries()) expect(await h.result()).toEqual({ n: 6 + i, done: `ok ${6 + i}` });
    // a completed run under k1 reads with the reason instead of its values; listing never throws
    const old = (await client.describe(done1.runId))!;
    expect(old.status).toBe('completed');
    expect(old.error).toMatchObject({ name: 'CorruptRunError' });
    expect(old.error!.message).toContain(`key "k1" is not among the codec's keys`);
    const listed = await client.list({ workflow: 'codec_rotation', limit: 100 });
    expect(listed.runs).toHaveLength(8);
    // its result is refused, never handed back as a wrong value
    await expect(client.getHandle(done1.runId).result()).rejects.toBeInstanceOf(CorruptRunError);
    // nothing lost: the failed run still holds its k1 values and its state; only its error was written (under k2)
    const kept = await rawRun(inFlight1);
    expect(AesGcmCodec.keyIdOf(kept.input)).toBe('k1');
    expect(kept.state).toBe(stateBefore);
    expect(AesGcmCodec.keyIdOf((JSON.parse(kept.error!) as { message: string }).message)).toBe('k2');

    // 4. Tampered ciphertext: that run fails alone, naming the key; restoring the value and retrying completes it.
    const original = (await rawRun(tampered)).input;
    await setInput(tampered, flipCiphertext(original));
    await client.resume(tampered);
    const tamperError = await failure(client.getHandle(tampered).result());
    expect(tamperError.cause.message).toContain(`input of run "${tampered}": the value under key "k2" fails authentication`);
    await setInput(tampered, original);
    await client.retry(tampered);
    expect(await client.getHandle(tampered).result()).toEqual({ n: 5, done: 'ok 5' });

    // 5. k1 restored: retry continues the failed run from where it was.
    client = await restartWith({ k1: K1, k2: K2 }, 'k2');
    await client.retry(inFlight1);
    expect(await client.getHandle(inFlight1).result()).toEqual({ n: 2, done: 'ok 2' });
    expect((await client.describe(done1.runId))!.error).toBeUndefined();
    const info = (await client.describe(inFlight1))!;
    expect(info.steps.map((s) => [s.name, s.status])).toEqual([
      ['first', 'completed'],
      ['second', 'completed'],
    ]);
  }, 60_000);

  it('applies maxPayloadBytes to the serialized value, before encoding', async () => {
    const client = await restartWith({ k1: K1 }, 'k1', 200);
    // ~190 bytes serialized: accepted, although its stored (encoded) form is well over 200 bytes
    const pad = 'x'.repeat(200 - JSON.stringify({ n: 9, pad: '' }).length - 10);
    const fits = await client.start(Rotating, { n: 9, pad });
    expect(await fits.result()).toEqual({ n: 9, done: 'ok 9' });
    expect((await rawRun(fits.runId)).input.length).toBeGreaterThan(200);
    const tooLarge = { n: 10, pad: `${pad}${'y'.repeat(20)}` };
    const error = await client.start(Rotating, tooLarge).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    // the size reported is the serialized value's, not its encoded form's
    expect((error as Error).message).toContain(`is ${Buffer.byteLength(JSON.stringify(tooLarge))} bytes serialized, over maxPayloadBytes (200)`);
  }, 30_000);
});

// NOTE: PostgresStore is imported for its type only (the app creates the store).
export type { PostgresStore };
