import { afterAll, expect, it } from '@jest/globals';
import type { INestApplicationContext } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  AesGcmCodec,
  CodecStore,
  Flow,
  RetryPolicy,
  Step,
  Workflow,
  WorkflowClient,
  WORKFLOW_STORE,
  type PayloadCodec,
  type StepContext,
  type WorkflowStore,
} from '../../src/index.js';
import type { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import type { RedisStore } from '../../src/store/redis/redis.store.js';
import { dropSchema, randomSchemaName, withPgClient } from '../setup/postgres-server.js';
import { testPostgres, testRedis } from '../setup/test-servers.js';
import { deletePrefix } from '../store/redis-test-helpers.js';
import { bootApp, eventually, sleep } from '../support/workflows.js';
import { testKey } from './codec-test-helpers.js';

/**
 * No plaintext in the raw store: a real app with the codec runs a workflow whose input, step outputs, heartbeat
 * details, signal payloads and error messages (a retried attempt, a failed and compensated run) all hold a marker, with cluster events
 * on; then every row of every table of the store's schema (Postgres) and every key of its prefix (Redis), and every
 * broadcast on its channel, are searched for the marker. The same scan of an app without a codec finds it (the scan
 * is not blind).
 */
const MARKER = `SECRET-${randomUUID().slice(0, 8)}`;
const pg = testPostgres();
const redis = testRedis();

@Workflow('codec_secret')
class SecretFlow {
  @Step({ retry: RetryPolicy.fixed(2, 10), compensate: 'refund' })
  async charge(input: { card: string }, ctx: StepContext) {
    await ctx.heartbeat({ progress: `${MARKER} heartbeat` });
    if (ctx.attempt === 1) throw new Error(`card declined: ${MARKER}`);
    return { receipt: `${MARKER} receipt of ${input.card}` };
  }
  /** Undoes `charge` when the run fails: the engine state then holds the error being compensated. */
  async refund() {
    await sleep(20);
  }
  @Step() approve() {
    return Flow.waitForSignal('approve', { value: { waiting: `${MARKER} waiting` } });
  }
  @Step() finish(payload: { note: string; fail?: boolean }) {
    if (payload.fail) throw new Error(`refused: ${MARKER} ${payload.note}`);
    return { done: `${MARKER} ${payload.note}` };
  }
}

const codec = (): PayloadCodec => new AesGcmCodec({ keys: { k1: testKey() }, currentKeyId: 'k1' });

/** Runs the workflow three ways; returns what the client decoded, to show the marker did go through the app. */
async function exercise(client: WorkflowClient): Promise<string> {
  const ok = await client.start(SecretFlow, { card: `${MARKER} 4111` });
  const failing = await client.start(SecretFlow, { card: `${MARKER} 4242` });
  const parked = await client.start(SecretFlow, { card: `${MARKER} 5555` });
  for (const h of [ok, failing, parked]) await eventually(async () => (await client.describe(h.runId))?.status === 'waiting', 10_000);
  await client.signal(ok.runId, 'approve', { note: `${MARKER} approved` });
  await client.signal(failing.runId, 'approve', { note: `${MARKER} no`, fail: true });
  await client.signal(parked.runId, 'other', { note: `${MARKER} queued, never consumed` });
  expect(await ok.result()).toEqual({ done: `${MARKER} ${MARKER} approved` });
  await expect(failing.result()).rejects.toThrow(`refused: ${MARKER}`);
  expect((await client.describe(failing.runId))!.status).toBe('compensated');
  const seen = JSON.stringify([
    await client.describe(ok.runId),
    await client.describe(failing.runId),
    await client.describe(parked.runId),
    await client.history(ok.runId),
    await client.history(failing.runId),
  ]);
  for (const part of [`${MARKER} heartbeat`, `${MARKER} receipt`, `card declined: ${MARKER}`, `${MARKER} approved`, `refused: ${MARKER}`, `${MARKER} 4111`]) {
    expect(seen).toContain(part);
  }
  return seen;
}

async function boot(store: object, withCodec: boolean): Promise<{ app: INestApplicationContext; client: WorkflowClient; raw: WorkflowStore }> {
  const { app, client } = await bootApp([SecretFlow], {
    store: store as never,
    ...(withCodec ? { codec: codec() } : {}),
    events: { cluster: true },
    worker: { pollIntervalMs: 50, shutdownGraceMs: 1_000 },
  });
  const provided = app.get<WorkflowStore>(WORKFLOW_STORE);
  expect(provided instanceof CodecStore).toBe(withCodec);
  return { app, client, raw: provided instanceof CodecStore ? provided.inner : provided };
}

/** Every row of every table of a schema, as text. */
async function postgresRows(url: string, schema: string): Promise<Map<string, string[]>> {
  return withPgClient(url, async (query) => {
    const tables = await query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema]);
    const out = new Map<string, string[]>();
    for (const { table_name: table } of tables) {
      const rows = await query(`SELECT t::text AS row FROM "${schema}"."${String(table)}" t`);
      out.set(String(table), rows.map((r) => String(r.row)));
    }
    return out;
  });
}

/** Every key of a prefix with everything it holds, as text. */
async function redisValues(url: string, prefix: string): Promise<Map<string, string[]>> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await client.connect();
  const out = new Map<string, string[]>();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const type = await client.type(key);
        let values: string[];
        if (type === 'string') values = [(await client.get(key)) ?? ''];
        else if (type === 'hash') values = Object.entries(await client.hgetall(key)).flat();
        else if (type === 'list') values = await client.lrange(key, 0, -1);
        else if (type === 'set') values = await client.smembers(key);
        else if (type === 'zset') values = await client.zrange(key, 0, -1, 'WITHSCORES');
        else if (type === 'stream') values = (await client.xrange(key, '-', '+')).flatMap(([id, fields]) => [id, ...fields]);
        else throw new Error(`key ${key} has type ${type}, which this scan does not read`);
        out.set(key, [key, ...values]);
      }
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
  return out;
}

const hits = (scanned: Map<string, string[]>) => [...scanned].flatMap(([where, values]) => values.filter((v) => v.includes(MARKER)).map((v) => `${where}: ${v.slice(0, 200)}`));

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
});

pg.describe('no plaintext in the raw store: postgres', () => {
  it.each([true, false])('with a codec: %s', async (withCodec) => {
    const schema = randomSchemaName('cairn_codec_scan');
    cleanups.push(() => dropSchema(pg.url, schema));
    const { app, client, raw } = await boot({ type: 'postgres', url: pg.url, schema }, withCodec);
    const notified: string[] = [];
    const listener = new (await import('pg')).default.Client({ connectionString: pg.url });
    listener.on('error', () => undefined);
    await listener.connect();
    listener.on('notification', (n) => notified.push(n.payload ?? ''));
    await listener.query(`LISTEN "${(raw as PostgresStore).names.channel}"`);
    try {
      await exercise(client);
      await sleep(200);
    } finally {
      await app.close();
      await listener.end();
    }
    const rows = await postgresRows(pg.url, schema);
    for (const table of ['runs', 'steps', 'signals', 'run_events']) expect([table, (rows.get(`cairn_${table}`) ?? []).length > 0]).toEqual([table, true]);
    expect(notified.some((n) => n.startsWith('message:'))).toBe(true);
    const found = [...hits(rows), ...notified.filter((n) => n.includes(MARKER)).map((n) => `NOTIFY: ${n.slice(0, 200)}`)];
    if (withCodec) expect(found).toEqual([]);
    else expect(found.length).toBeGreaterThan(0);
  }, 60_000);
});

redis.describe('no plaintext in the raw store: redis', () => {
  it.each([true, false])('with a codec: %s', async (withCodec) => {
    const keyPrefix = `cairn-codec-scan-${randomUUID().slice(0, 8)}:`;
    cleanups.push(() => deletePrefix(redis.url, keyPrefix));
    const { app, client, raw } = await boot({ type: 'redis', url: redis.url, keyPrefix }, withCodec);
    const published: string[] = [];
    const subscriber = new Redis(redis.url);
    subscriber.on('error', () => undefined);
    subscriber.on('message', (_channel: string, message: string) => published.push(message));
    await subscriber.subscribe((raw as RedisStore).keys.channel);
    try {
      await exercise(client);
      await sleep(200);
    } finally {
      await app.close();
      subscriber.disconnect();
    }
    const keys = await redisValues(redis.url, keyPrefix);
    expect(keys.size).toBeGreaterThan(5);
    expect(published.some((m) => m.includes('"message"'))).toBe(true);
    const found = [...hits(keys), ...published.filter((m) => m.includes(MARKER)).map((m) => `PUBLISH: ${m.slice(0, 200)}`)];
    if (withCodec) expect(found).toEqual([]);
    else expect(found.length).toBeGreaterThan(0);
  }, 60_000);
});
