import type { Cluster, Redis } from 'ioredis';
import { ConfigurationError, StoreError } from '../../errors/errors.js';
import { errorMessage } from './redis.errors.js';
import type { RedisStoreLogger } from './redis-store-options.interface.js';

/** A standalone (or Sentinel) client, or a Cluster. */
export type RedisClient = Redis | Cluster;

/** Whether the client is a Cluster (scripts are then sent one by one, never in a cross-slot pipeline). */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `host:port` of a Redis URL, without credentials. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || '127.0.0.1'}:${parsed.port || '6379'}`;
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

/** What {@link connectRedis} needs. */
export interface ConnectOptions {
  url: string;
  /** How long to keep trying. */
  connectTimeoutMs: number;
  logger: RedisStoreLogger;
  /** Whether the store was closed (its client's errors are no longer reported). */
  isClosed: () => boolean;
}

/**
 * Connects a client of the store's own: ioredis is loaded here (an optional peer dependency), the connection is retried
 * until `connectTimeoutMs`, then fails with a `StoreError` naming host:port. Later connection errors are logged at most
 * once every 10 s while ioredis reconnects.
 * @throws ConfigurationError when ioredis cannot be loaded
 */
export async function connectRedis(options: ConnectOptions): Promise<RedisClient> {
  let mod: { Redis?: typeof Redis; default?: unknown };
  try {
    mod = (await import('ioredis')) as unknown as { Redis?: typeof Redis; default?: unknown };
  } catch (error) {
    throw new ConfigurationError(
      `The Redis store needs the ioredis package, which could not be loaded (${errorMessage(error)}). Install it: npm install ioredis`,
    );
  }
  const RedisClass = (mod.Redis ?? mod.default) as typeof Redis;
  const where = describeUrl(options.url);
  let connecting = true;
  let lastClientError = 0;
  const client = new RedisClass(options.url, {
    lazyConnect: true,
    connectTimeout: 2_000,
    retryStrategy: (times: number) => (connecting ? null : Math.min(50 * 2 ** Math.min(times, 6), 2_000)),
  });
  client.on('error', (error: unknown) => {
    if (connecting || options.isClosed()) return;
    const now = Date.now();
    if (now - lastClientError < 10_000) return;
    lastClientError = now;
    options.logger.warn(`Redis store: connection to ${where}: ${errorMessage(error)}`);
  });
  const deadline = Date.now() + options.connectTimeoutMs;
  try {
    for (;;) {
      try {
        await client.connect();
        return client;
      } catch (error) {
        if (Date.now() >= deadline) {
          client.disconnect();
          throw new StoreError(`Redis store: cannot connect to Redis at ${where}: ${errorMessage(error)}`, { cause: error });
        }
        await sleep(200);
        if (client.status !== 'end' && client.status !== 'wait' && client.status !== 'close') client.disconnect();
      }
    }
  } finally {
    connecting = false;
  }
}

/** Warns when the server is configured so that runs may be lost. Tolerates CONFIG being disabled. */
export async function checkDurability(client: RedisClient, logger: RedisStoreLogger): Promise<void> {
  let appendonly: string | undefined;
  let policy: string | undefined;
  try {
    const aof = (await client.call('CONFIG', 'GET', 'appendonly')) as string[];
    const mem = (await client.call('CONFIG', 'GET', 'maxmemory-policy')) as string[];
    appendonly = aof?.[1];
    policy = mem?.[1];
  } catch (error) {
    logger.log(
      `Redis store: could not read the server configuration (${errorMessage(error)}); skipping the durability check. ` +
        'Make sure appendonly is yes and maxmemory-policy is noeviction.',
    );
    return;
  }
  if (appendonly !== undefined && appendonly !== 'yes') {
    logger.warn(
      `Redis store: appendonly is "${appendonly}" on the Redis server. Without the append-only file, a Redis crash or ` +
        'restart loses every run, step checkpoint and signal written since the last RDB snapshot (all of them when ' +
        'snapshots are off). Set appendonly yes (appendfsync everysec loses at most about one second of writes on a ' +
        'machine crash; always loses none).',
    );
  }
  if (policy !== undefined && policy !== 'noeviction') {
    logger.warn(
      `Redis store: maxmemory-policy is "${policy}" on the Redis server. When Redis reaches maxmemory it may evict ` +
        'run, step, signal or index keys, silently losing runs and their checkpoints. Set maxmemory-policy noeviction ' +
        '(writes then fail loudly instead).',
    );
  }
}
