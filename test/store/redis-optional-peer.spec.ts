import { describe, expect, it, jest } from '@jest/globals';

// ioredis is an optional peer: the store module must load without it, and init() must say how to install it.
jest.unstable_mockModule('ioredis', () => {
  throw new Error("Cannot find package 'ioredis' imported from redis.store.js");
});

describe('RedisStore without ioredis installed', () => {
  it('loads, and fails init with a ConfigurationError telling to npm install ioredis', async () => {
    const { RedisStore } = await import('../../src/store/redis/redis.store.js');
    const { ConfigurationError } = await import('../../src/errors/errors.js');
    const store = new RedisStore({ url: 'redis://127.0.0.1:1' });
    const error = await store.init().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toContain('npm install ioredis');
    await store.close();
  });
});
