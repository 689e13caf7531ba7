import type { DataSourceLike, RedisClientLike } from '../client/workflow-types.js';
import type { WorkflowStore } from '../store/workflow-store.interface.js';

/** Where runs are stored. */
export type StoreOptions =
  | { type: 'memory' }
  | {
      type: 'postgres';
      /** e.g. `postgres://user:pass@host:5432/db` */
      url?: string;
      /** The app's own TypeORM DataSource, 0.3.20+ or 1.x (left open on shutdown). */
      dataSource?: DataSourceLike;
      /** Created when missing. @default 'public' */
      schema?: string;
      /** Prefix of tables and indexes. @default 'cairn_' */
      tablePrefix?: string;
    }
  | {
      type: 'redis';
      /** e.g. `redis://localhost:6379` */
      url?: string;
      /** The app's own ioredis (5 or 6) client or Cluster (left open on shutdown). */
      client?: RedisClientLike;
      /** @default 'cairn:' */
      keyPrefix?: string;
      /**
       * Expiry of an ended run's keys (ms or `'30d'`), set by the commit that ends it; `retry` removes it. Index
       * entries of expired runs go at the next `listRuns` over them or `purge` (`retention`). @default none
       */
      ttl?: number | string;
      /**
       * How often a parent waiting for child runs is checked again, in ms: a child's end wakes its parent in a second
       * write (another slot), and a crash between the two is repaired by this check. @default 30000
       */
      childRecheckMs?: number;
    }
  | {
      type: 'pglite';
      /** Folder of the embedded database. One app at a time. @default './.cairn' */
      dataDir?: string;
    }
  | CustomStore;

/**
 * A custom store instance. (`type?: never` keeps the store's methods out of the completions of `{ type: 'postgres', … }`:
 * an object literal with a `type` is never a custom store, so the editor offers only that type's options.)
 */
export type CustomStore = WorkflowStore & { type?: never };

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
  /** Most queued (unconsumed) signals one run may hold; `signal()` past it throws `SignalQueueFullError`. @default 10_000 */
  maxQueuedSignals?: number;
  /** Largest number of step transitions of one run (bounds Flow.goto loops). @default 10_000 */
  maxTransitions?: number;
  /** Recoveries after crashes without progress before a run fails. @default 10 */
  maxRecoveries?: number;
  /** The compatibility check of the runs in flight against this app's definitions, at bootstrap. */
  versioning?: {
    /**
     * When runs in flight cannot continue on the registered definitions, or live runs have a version this app does not
     * register: `'warn'` logs the report, `'fail'` stops bootstrap with it. @default 'warn'
     */
    onIncompatible?: 'fail' | 'warn';
  };
  /**
   * `false`: record no history (`client.history()` is then empty, and `WorkflowEvents` / `@OnWorkflowEvent` see
   * nothing), for the last bit of checkpoint throughput. @default true
   */
  history?: boolean;
  /** The event stream (`WorkflowEvents`, `@OnWorkflowEvent`). */
  events?: {
    /**
     * Broadcast every history event through the store (Postgres NOTIFY, Redis PUBLISH; one call per batch of events),
     * so `stream({ scope: 'cluster' })` on any instance sees the events of all of them. @default false
     */
    cluster?: boolean;
  };
  /**
   * Traces and metrics through `@opentelemetry/api` (an optional peer; without it nothing is recorded). Register the
   * OpenTelemetry SDK before the app is created. `enabled: false` records nothing even when the API is installed.
   * @default { enabled: true }
   */
  telemetry?: { enabled?: boolean };
  /**
   * Encodes every value a run stores (inputs, outputs, signal payloads, heartbeat details, error messages, the engine's
   * state and history) before it reaches the store, and decodes it on the way back: the store holds only what the
   * codec returns. E.g. `new AesGcmCodec({ keys: { k1: process.env.CAIRN_KEY_K1! }, currentKeyId: 'k1' })`. Ids, names,
   * statuses and times stay readable. `maxPayloadBytes` applies to the values before encoding. A value that cannot be
   * decoded (a missing key, tampering) fails only its run, with `CorruptRunError` naming the run and the key id.
   * @default none (values are stored as serialized)
   */
  codec?: import('../codec/payload-codec.interface.js').PayloadCodec;
}
