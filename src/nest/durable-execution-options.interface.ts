import type { WorkflowStore } from '../store/workflow-store.interface.js';

/** Where runs are stored. */
export type StoreOptions =
  | { type: 'memory' }
  | {
      type: 'postgres';
      /** e.g. `postgres://user:pass@host:5432/db` */
      url?: string;
      /** The app's own TypeORM DataSource (left open on shutdown). */
      dataSource?: unknown;
      /** Created when missing. @default 'public' */
      schema?: string;
      /** Prefix of tables and indexes. @default 'cairn_' */
      tablePrefix?: string;
    }
  | {
      type: 'redis';
      /** e.g. `redis://localhost:6379` */
      url?: string;
      /** The app's own ioredis client (left open on shutdown). */
      client?: unknown;
      /** @default 'cairn:' */
      keyPrefix?: string;
      /**
       * Expiry of an ended run's keys (ms or `'30d'`), set by the commit that ends it; `retry` removes it. Index
       * entries of expired runs go at the next `listRuns` over them or `purge` (`retention`). @default none
       */
      ttl?: number | string;
    }
  | {
      type: 'pglite';
      /** Folder of the embedded database. One app at a time. @default './.cairn' */
      dataDir?: string;
    }
  | WorkflowStore;

/** Options of `DurableExecutionModule.forRoot()`. */
export interface DurableExecutionOptions {
  /** @default { type: 'memory' } (not durable: logs a warning) */
  store?: StoreOptions;
  worker?: {
    /** false: this instance only starts and controls runs. @default true */
    enabled?: boolean;
    /** Runs executed at once by this instance. @default 100 */
    concurrency?: number;
    /** Ownership lease of a claimed run, renewed while it runs. @default 30_000 */
    leaseMs?: number;
    /** How often to look for work left by other instances. @default 1_000 */
    pollIntervalMs?: number;
    /** How long shutdown waits for in-flight steps. @default 10_000 */
    shutdownGraceMs?: number;
    /**
     * A stable id of this instance that survives restarts, e.g. the pod name of a StatefulSet (1–200 characters). It
     * must be unique among live instances. When set, a restarted instance takes back at once the runs its previous
     * process left leased under this id, instead of waiting `leaseMs` for those leases to expire. Also names this
     * instance as lease owner in logs. @default a random id per process (`host:pid:random`)
     */
    instanceId?: string;
  };
  /** Purge ended runs older than this, e.g. `'30d'`. `completed` covers completed runs; `failed` failed, compensated and cancelled ones. */
  retention?: { completed?: number | string; failed?: number | string };
  /** Largest serialized input, output or signal payload. @default 1 MiB */
  maxPayloadBytes?: number;
  /** Largest number of step transitions of one run (bounds Flow.goto loops). @default 10_000 */
  maxTransitions?: number;
  /** Recoveries after crashes without progress before a run fails. @default 10 */
  maxRecoveries?: number;
}
