import type { StoreOptions } from '../src/index.js';

/** The module's store options of a chaos process (worker or driver). */
export function chaosStoreOptions(kind: string, url: string, namespace: string): StoreOptions {
  switch (kind) {
    case 'postgres':
      return { type: 'postgres', url, schema: namespace };
    case 'redis':
      // NOTE: childRecheckMs is a RedisStore option the module's type does not list (createStore passes it on); a short
      // one bounds how long a parent can wait for a wake-up lost with a killed process.
      return { type: 'redis', url, keyPrefix: namespace, childRecheckMs: 3_000 } as StoreOptions;
    case 'pglite':
      return { type: 'pglite', dataDir: namespace };
    default:
      throw new Error(`unknown store ${kind}`);
  }
}
