import { startPostgres, type PostgresServer } from './postgres-server.js';
import { startRedis, type RedisServer } from './redis-server.js';

interface Servers {
  postgres?: PostgresServer;
  redis?: RedisServer;
}

/**
 * Starts throwaway PostgreSQL and Redis servers for the whole test run unless `DATABASE_URL` / `REDIS_URL` are set.
 * Test workers inherit the URLs through the environment.
 */
export default async function globalSetup(): Promise<void> {
  const servers: Servers = {};
  (globalThis as { __cairnServers?: Servers }).__cairnServers = servers;
  if (!process.env.DATABASE_URL && process.env.CAIRN_SKIP_POSTGRES !== '1') {
    servers.postgres = await startPostgres();
    process.env.DATABASE_URL = servers.postgres.url;
  }
  if (!process.env.REDIS_URL && process.env.CAIRN_SKIP_REDIS !== '1') {
    servers.redis = await startRedis();
    process.env.REDIS_URL = servers.redis.url;
  }
}
