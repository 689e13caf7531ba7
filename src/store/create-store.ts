import { ConfigurationError } from '../errors/errors.js';
import { MemoryStore } from './memory/memory.store.js';
import type { WorkflowStore } from './workflow-store.interface.js';

import type { StoreLogger } from './store-logger.interface.js';

export type { StoreLogger } from './store-logger.interface.js';

type StoreConfig =
  | { type: 'memory' }
  | { type: 'postgres'; url?: string; dataSource?: unknown; schema?: string; tablePrefix?: string }
  | { type: 'redis'; url?: string; client?: unknown; keyPrefix?: string; ttl?: number | string; childRecheckMs?: number }
  | { type: 'pglite'; dataDir?: string }
  | WorkflowStore;

function isCustomStore(value: unknown): value is WorkflowStore {
  const v = value as Partial<WorkflowStore> | null;
  return !!v && typeof v === 'object' && typeof v.createRun === 'function' && typeof v.commit === 'function' && typeof v.claimRuns === 'function';
}

/**
 * Builds the configured store. Only the chosen adapter is loaded, so `typeorm`/`pg` and `ioredis` stay optional.
 * @throws ConfigurationError for an unknown type or options that do not fit it
 */
export async function createStore(config: StoreConfig | undefined, logger: StoreLogger): Promise<WorkflowStore> {
  if (config === undefined || (config as { type?: string }).type === 'memory') {
    logger.warn(
      'Using the in-memory store: runs are NOT durable and are lost when the process exits. ' +
        "Configure store: { type: 'postgres' | 'redis' | 'pglite' } for anything that must survive a restart.",
    );
    return new MemoryStore();
  }
  if (isCustomStore(config)) return config;
  const type = (config as { type?: unknown }).type;
  switch (type) {
    case 'postgres': {
      const c = config as Extract<StoreConfig, { type: 'postgres' }>;
      if (!c.url && !c.dataSource) {
        throw new ConfigurationError("store { type: 'postgres' } needs a url (e.g. process.env.DATABASE_URL) or a TypeORM dataSource.");
      }
      const { PostgresStore } = await import('./postgres/postgres.store.js');
      return new PostgresStore({ ...c, dataSource: c.dataSource as never, logger });
    }
    case 'pglite': {
      const c = config as Extract<StoreConfig, { type: 'pglite' }>;
      const { createPgliteStore } = await import('./postgres/pglite.js');
      return createPgliteStore({ dataDir: c.dataDir, logger });
    }
    case 'redis': {
      const c = config as Extract<StoreConfig, { type: 'redis' }>;
      if (!c.url && !c.client) {
        throw new ConfigurationError("store { type: 'redis' } needs a url (e.g. process.env.REDIS_URL) or an ioredis client.");
      }
      const { RedisStore } = await import('./redis/redis.store.js');
      return new RedisStore({ ...c, client: c.client as never, logger });
    }
    default:
      throw new ConfigurationError(
        `Unknown store ${JSON.stringify(type)}: use { type: 'memory' | 'postgres' | 'redis' | 'pglite' } or an object implementing WorkflowStore.`,
      );
  }
}
