import { afterAll } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Cluster } from 'ioredis';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import { scheduleStoreOf } from '../../src/store/schedules/schedule-store.factory.js';
import { startRedis, type RedisServer } from '../setup/redis-server.js';
import { testRedis } from '../setup/test-servers.js';
import { deletePrefix } from './redis-test-helpers.js';
import { describeScheduleStoreConformance } from './schedules.conformance.js';

const redis = testRedis();
const quiet = { log() {}, warn() {}, error() {} };

redis.describe('redis', () => {
  describeScheduleStoreConformance('redis', {
    create: async () => {
      const keyPrefix = `cairn-sched-${randomUUID().slice(0, 8)}:`;
      const store = new RedisStore({ url: redis.url, keyPrefix, logger: quiet });
      await store.init();
      return {
        schedules: scheduleStoreOf(store)!,
        close: async () => {
          await store.close();
          await deletePrefix(redis.url, keyPrefix);
        },
      };
    },
  });
});

const run = promisify(execFile);
const nodes: RedisServer[] = [];
let ready: Promise<void> | undefined;

async function startCluster(): Promise<void> {
  for (let i = 0; i < 3; i++) nodes.push(await startRedis({ extraArgs: ['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000'] }));
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 20_000 });
  for (let i = 0; i < 200; i++) {
    const states = await Promise.all(nodes.map(async (n) => (await run('redis-cli', ['-p', String(n.port), 'cluster', 'info'])).stdout.includes('cluster_state:ok')));
    if (states.every(Boolean)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the test cluster did not reach cluster_state:ok');
}

redis.describe('redis cluster', () => {
  afterAll(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
  });
  describeScheduleStoreConformance('redis cluster', {
    create: async () => {
      ready ??= startCluster();
      await ready;
      const client = new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
      const store = new RedisStore({ client, keyPrefix: `cairn-sched-cluster-${randomUUID().slice(0, 8)}:`, logger: quiet });
      await store.init();
      return { schedules: scheduleStoreOf(store)!, close: async () => void (await client.quit()) };
    },
  });
});
