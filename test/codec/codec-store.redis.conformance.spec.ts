import { randomUUID } from 'node:crypto';
import { CodecStore } from '../../src/codec/codec.store.js';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { testRedis } from '../setup/test-servers.js';
import { deletePrefix, redisCorruptions } from '../store/redis-test-helpers.js';
import { aesCodec, codecCorruptions, throughWrapper } from './codec-test-helpers.js';

const redis = testRedis();
const prefixes = new WeakMap<object, string>();

redis.describe('redis + AesGcmCodec', () => {
  describeStoreConformance('redis + AesGcmCodec', {
    create: async () => {
      const keyPrefix = `cairn-codec-${randomUUID().slice(0, 8)}:`;
      const store = new CodecStore(new RedisStore({ url: redis.url, keyPrefix, logger: { log() {}, warn() {}, error() {} } }), aesCodec());
      prefixes.set(store, keyPrefix);
      return store;
    },
    destroy: async (store) => {
      const prefix = prefixes.get(store);
      if (prefix) await deletePrefix(redis.url, prefix);
    },
    corruptions: { ...throughWrapper(redisCorruptions()), ...codecCorruptions() },
    wakesParentsInSecondWrite: true,
  });
});
