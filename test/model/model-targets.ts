import { execFile, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { MemoryStore } from '../../src/store/memory/memory.store.js';
import type { SqlClient } from '../../src/store/postgres/postgres.client.js';
import { createPgliteStore } from '../../src/store/postgres/pglite.js';
import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import type { WorkflowStore } from '../../src/store/workflow-store.interface.js';
import type { KnownBug } from './model-known-bugs.js';
import { dropSchema, randomSchemaName } from '../setup/postgres-server.js';
import { startRedis, type RedisServer } from '../setup/redis-server.js';

/**
 * A store under test for the model test: set up once per describe, handed out empty for every sequence (a fresh
 * namespace, or its tables emptied), torn down at the end.
 */
export interface ModelTarget {
  readonly label: string;
  /** Divergences found and reported (see model-known-bugs.ts): the ops that hit them are skipped for this store. */
  readonly knownBugs?: ReadonlySet<KnownBug>;
  /** The store wakes parents in a second write (Redis, rule 8d of `RunPatch`): see `SequenceOptions`. */
  readonly wakesParentsInSecondWrite?: boolean;
  setup(): Promise<void>;
  /** An initialised store with no runs, for one sequence. */
  fresh(): Promise<WorkflowStore>;
  /** After the sequence (passed or failed). */
  done(store: WorkflowStore): Promise<void>;
  teardown(): Promise<void>;
}

const quiet = { log() {}, warn() {}, error() {} };

/** The reference, also run against itself to check that the harness is deterministic. */
export function memoryTarget(): ModelTarget {
  return {
    label: 'memory (second instance)',
    setup: async () => {},
    fresh: async () => new MemoryStore(),
    done: (store) => store.close(),
    teardown: async () => {},
  };
}

/** One PostgresStore (PostgreSQL or PGlite), its tables (runs, steps, signals, history) emptied before each sequence. */
function sqlTarget(label: string, make: () => PostgresStore, exec: (store: PostgresStore, sql: string) => Promise<unknown>, cleanup: (store: PostgresStore) => Promise<void>): ModelTarget {
  let store: PostgresStore | undefined;
  return {
    label,
    async setup() {
      store = make();
      await store.init();
    },
    async fresh() {
      const n = store!.names;
      // One statement; much faster than TRUNCATE on PGlite (about 2 ms against 70).
      const tables = [n.runs, n.steps, n.signals, n.events, n.signalIds];
      await exec(store!, `WITH ${tables.map((t, i) => `d${i} AS (DELETE FROM ${t})`).join(', ')} SELECT 1`);
      return store!;
    },
    done: async () => {},
    async teardown() {
      if (!store) return;
      await store.close();
      await cleanup(store);
    },
  };
}

export function postgresTarget(url: string): ModelTarget {
  return sqlTarget(
    'postgres',
    () => new PostgresStore({ url, schema: randomSchemaName('cairn_model'), logger: quiet }),
    (store, sql) => store.dataSource!.query(sql),
    (store) => dropSchema(url, store.names.schema),
  );
}

export function pgliteTarget(): ModelTarget {
  let dir: string | undefined;
  /** The store's PGlite session (the only one): the test empties the tables through it. */
  const sessionOf = (store: PostgresStore) => (store as unknown as { client: SqlClient }).client;
  return sqlTarget(
    'pglite',
    () => {
      dir = mkdtempSync(join(tmpdir(), 'cairn-model-pglite-'));
      return createPgliteStore({ dataDir: dir, logger: quiet });
    },
    (store, sql) => sessionOf(store).query(sql),
    async () => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  );
}

/** Redis: one borrowed client; a RedisStore with a fresh key prefix for every sequence. */
function redisTarget(label: string, connect: () => Promise<Redis | Cluster>, deleteKeys: (client: Redis | Cluster, prefix: string) => Promise<void>, stop: () => Promise<void>): ModelTarget {
  let client: Redis | Cluster | undefined;
  const prefix = `cairn-model-${randomUUID().slice(0, 8)}-`;
  let seq = 0;
  return {
    label,
    knownBugs: new Set<KnownBug>(['REDIS_CLAIM_ORDER']),
    wakesParentsInSecondWrite: true,
    async setup() {
      client = await connect();
    },
    async fresh() {
      const store = new RedisStore({ client: client!, keyPrefix: `${prefix}${++seq}:`, logger: quiet });
      await store.init();
      return store;
    },
    done: (store) => store.close(),
    async teardown() {
      if (client) {
        await deleteKeys(client, prefix).catch(() => undefined);
        await client.quit().catch(() => undefined);
      }
      await stop();
    },
  };
}

async function deleteMatching(node: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) await node.del(key);
  } while (cursor !== '0');
}

export function redisStandaloneTarget(url: string): ModelTarget {
  return redisTarget(
    'redis',
    async () => {
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
      await client.connect();
      return client;
    },
    (client, prefix) => deleteMatching(client as Redis, `${prefix}*`),
    async () => {},
  );
}

/** A three-master Redis Cluster of its own (as redis-cluster.spec.ts starts), torn down at the end. */
export function redisClusterTarget(): ModelTarget {
  const run = promisify(execFile);
  const nodes: RedisServer[] = [];
  return redisTarget(
    'redis cluster',
    async () => {
      if (spawnSync('sh', ['-c', 'command -v redis-cli']).status !== 0) {
        throw new Error('redis-cli is not installed: apt-get install -y redis-server (it ships redis-cli), or set CAIRN_SKIP_REDIS=1.');
      }
      for (let i = 0; i < 3; i++) nodes.push(await startRedis({ extraArgs: ['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000'] }));
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
        timeout: 20_000,
      });
      for (let i = 0; ; i++) {
        const states = await Promise.all(
          nodes.map(async (n) => (await run('redis-cli', ['-p', String(n.port), 'cluster', 'info'])).stdout.includes('cluster_state:ok')),
        );
        if (states.every(Boolean)) break;
        if (i >= 200) throw new Error('the model test cluster did not reach cluster_state:ok');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
    },
    async () => {}, // the nodes are stopped (and their folders removed) below
    async () => {
      await Promise.allSettled(nodes.map((n) => n.stop()));
    },
  );
}
