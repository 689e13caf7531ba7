import type { PostgresServer } from './postgres-server.js';
import type { RedisServer } from './redis-server.js';

interface Servers {
  postgres?: PostgresServer;
  redis?: RedisServer;
}

// NOTE: Jest loads globalSetup as CommonJS, where moduleNameMapper does not apply: load the siblings by extensionless
// require (the transform hook resolves the .ts files).
const load = <T>(path: string): T => require(path) as T;

/**
 * Starts throwaway PostgreSQL and Redis servers for the whole test run unless `DATABASE_URL` / `REDIS_URL` are set.
 * Test workers inherit the URLs through the environment.
 */
export default async function globalSetup(): Promise<void> {
  const servers: Servers = {};
  (globalThis as { __cairnServers?: Servers }).__cairnServers = servers;
  const starts: Promise<void>[] = [];
  if (!process.env.DATABASE_URL && process.env.CAIRN_SKIP_POSTGRES !== '1') {
    const { startPostgres } = load<typeof import('./postgres-server.js')>('./postgres-server');
    starts.push(
      startPostgres().then((pg) => {
        servers.postgres = pg;
        process.env.DATABASE_URL = pg.url;
      }),
    );
  }
  if (!process.env.REDIS_URL && process.env.CAIRN_SKIP_REDIS !== '1') {
    const { startRedis } = load<typeof import('./redis-server.js')>('./redis-server');
    starts.push(
      startRedis().then((redis) => {
        servers.redis = redis;
        process.env.REDIS_URL = redis.url;
      }),
    );
  }
  const results = await Promise.allSettled(starts);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled([servers.postgres?.stop(), servers.redis?.stop()]);
    throw failed.reason;
  }
}
