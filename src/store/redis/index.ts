export { RedisStore, type RedisStoreLogger, type RedisStoreOptions } from './redis.store.js';
export { RedisKeys, keySlot } from './redis.keys.js';
