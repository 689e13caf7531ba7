import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { testRedis } from '../setup/test-servers.js';

const redis = testRedis();
const url = () => redis.url;

/** Deletes every key of a prefix. */
async function deletePrefix(prefix: string): Promise<void> {
  const client = new Redis(url(), { lazyConnect: true, maxRetriesPerRequest: 2 });
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

const prefixes = new WeakMap<object, string>();

redis.describe('redis', () => {
  describeStoreConformance('redis', {
    create: async () => {
      const keyPrefix = `cairn-test-${randomUUID().slice(0, 8)}:`;
      const store = new RedisStore({ url: url(), keyPrefix, logger: { log() {}, warn() {}, error() {} } });
      prefixes.set(store, keyPrefix);
      return store;
    },
    destroy: async (store) => {
      const prefix = prefixes.get(store);
      if (prefix) await deletePrefix(prefix);
    },
  });
});
