import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import type { RunInfo } from '../../src/index.js';
import { defaultStateFile, type SampleAppConfig } from '../../sample-app/src/create-app.js';

export type E2eStore = SampleAppConfig['store'];

/** The stores the e2e suites run on: memory and pglite always; postgres and redis unless explicitly skipped. */
export function e2eStores(): E2eStore[] {
  const stores: E2eStore[] = ['memory', 'pglite'];
  if (process.env.CAIRN_SKIP_POSTGRES !== '1') stores.push('postgres');
  if (process.env.CAIRN_SKIP_REDIS !== '1') stores.push('redis');
  return stores;
}

/**
 * A configuration for an in-process sample app on a store, with its own temp folder, Postgres schema or Redis prefix.
 * @throws when the store's server URL is missing (the jest globalSetup sets it; CAIRN_SKIP_POSTGRES/REDIS=1 opts out)
 */
export function e2eConfig(store: E2eStore, overrides: Partial<SampleAppConfig> = {}): SampleAppConfig {
  if (store === 'postgres' && !process.env.DATABASE_URL) {
    throw new Error('DATABASE_URL is not set: the jest globalSetup should have started PostgreSQL. Set CAIRN_SKIP_POSTGRES=1 to skip the postgres runs.');
  }
  if (store === 'redis' && !process.env.REDIS_URL) {
    throw new Error('REDIS_URL is not set: the jest globalSetup should have started Redis. Set CAIRN_SKIP_REDIS=1 to skip the redis runs.');
  }
  const dataDir = mkdtempSync(join(tmpdir(), `cairn-e2e-${store}-`));
  const unique = randomUUID().replace(/-/g, '').slice(0, 12);
  return {
    store,
    dataDir,
    stateFile: defaultStateFile(dataDir),
    databaseUrl: process.env.DATABASE_URL,
    postgresSchema: `e2e_${unique}`,
    redisUrl: process.env.REDIS_URL,
    redisKeyPrefix: `e2e:${unique}:`,
    port: 0,
    paymentFailureRate: 0.5,
    approvalThreshold: 1000,
    approvalTimeout: '2s',
    shipDelayMs: 20,
    leaseMs: 5_000,
    pollIntervalMs: 50,
    logger: false,
    ...overrides,
  };
}

/** Drops what a run of the suite left behind: the temp folder, the Postgres schema, the Redis keys. */
export async function cleanUp(config: SampleAppConfig): Promise<void> {
  rmSync(config.dataDir, { recursive: true, force: true });
  if (config.store === 'postgres') {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: config.databaseUrl });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS "${config.postgresSchema}" CASCADE`);
    } finally {
      await client.end();
    }
  }
  if (config.store === 'redis') {
    const { Redis } = await import('ioredis');
    const redis = new Redis(config.redisUrl!, { lazyConnect: true });
    await redis.connect();
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.redisKeyPrefix}*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  }
}

type Server = Parameters<typeof request>[0];

const TERMINAL = new Set(['completed', 'compensated', 'failed', 'cancelled']);

/** Polls `GET /orders/:id` until `done(order)` holds; fails at once when the order ends otherwise. */
export async function waitForOrder(server: Server, orderId: string, done: (order: RunInfo) => boolean, timeoutMs = 15_000): Promise<RunInfo> {
  const deadline = Date.now() + timeoutMs;
  let last: RunInfo | undefined;
  for (;;) {
    const res = await request(server).get(`/orders/${encodeURIComponent(orderId)}`);
    if (res.status === 200) {
      last = res.body as RunInfo;
      if (done(last)) return last;
      if (TERMINAL.has(last.status)) throw new Error(`order ${orderId} ended without reaching the expected state: ${JSON.stringify(last)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`order ${orderId} did not reach the expected state in ${timeoutMs} ms; last seen: ${JSON.stringify(last ?? res.body)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Polls until the order has the status. */
export const waitForStatus = (server: Server, orderId: string, status: RunInfo['status'], timeoutMs?: number) =>
  waitForOrder(server, orderId, (o) => o.status === status, timeoutMs);

/** A valid order body. */
export const orderBody = (amount = 25, items = [{ sku: 'book', qty: 1 }], customerId = 'cust-1') => ({ customerId, items, amount });
