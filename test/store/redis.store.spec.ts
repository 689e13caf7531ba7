import { randomUUID } from 'node:crypto';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { testRedis } from '../setup/test-servers.js';
import { deletePrefix as deleteKeys, redisCorruptions } from './redis-test-helpers.js';

const redis = testRedis();
const url = () => redis.url;
const deletePrefix = (prefix: string) => deleteKeys(url(), prefix);



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
    corruptions: redisCorruptions(),
    wakesParentsInSecondWrite: true,
  });
});
