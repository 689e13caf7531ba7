import type { Cluster, Redis } from 'ioredis';

import type { StoreLogger } from '../store-logger.interface.js';

/** Where the store writes what operators should know (the one store logger shape). */
export type RedisStoreLogger = StoreLogger;

/** Options of the Redis store. */
export interface RedisStoreOptions {
  /** Connection URL (`redis://`, `rediss://`), used when no `client` is given. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** An ioredis client (or Cluster) to borrow: the store never closes it. */
  client?: Redis | Cluster;
  /** Prefix of every key and of the event channel. Default `cairn:`. */
  keyPrefix?: string;
  logger?: RedisStoreLogger;
  /** How long `init()` keeps trying to reach the server at `url`. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * How long after it is first seen a write-ahead index mark (left by an instance that died mid-operation) is taken
   * as abandoned and repaired by claimers. Default 5000 ms; lower only in tests.
   */
  indexRepairGraceMs?: number;
  /**
   * Expiry of an ended run: when a commit ends a run (completed, failed, compensated, cancelled), its keys are set to
   * expire this long after (ms, or an `ms` string such as `'30d'`), in the same script. Retrying a failed run removes
   * the expiry. Its index entries go when the run is next seen gone (`listRuns`, `purge`/`retention`, `sweepExpired()`,
   * `reindex()`). Default: none (ended runs stay until purged).
   */
  ttl?: number | string;
  /**
   * How long a parent waiting for its children (`Flow` child runs) waits at most before it is due again, in ms.
   * Parent and children are in different slots: a child's end reaches its parent in a second write, and a parent's
   * children are released after its commit. If the process dies between two of these writes, the parent's recheck
   * makes it due, and its engine reads its children's outcomes and carries on (it releases the children still held and
   * spawns the missing ones again). A shorter interval repairs sooner, at the cost of a claim and a read of the
   * children's outcomes per waiting parent per interval. Default 30000 ms.
   */
  childRecheckMs?: number;
}
