/**
 * Connection errors at startup, for the Postgres and Redis stores: an unusable URL fails at once with a
 * ConfigurationError (no connection attempt, no retry); a connection failure fails `init()` with a StoreError naming
 * host:port, the cause and what to fix, never the password; transient causes are retried with one warning per retry,
 * the others are not retried.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { ConfigurationError, StoreError } from '../../src/errors/errors.js';
import { TypeOrmSqlClient } from '../../src/store/postgres/postgres.client.js';
import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { connectAttempts } from '../../src/store/redis/redis.connection.js';
import { RedisStore } from '../../src/store/redis/redis.store.js';
import { startRedis, type RedisServer } from '../setup/redis-server.js';
import { testPostgres, testRedis } from '../setup/test-servers.js';
import { CapturingLogger, closedPort, fakePostgresRejecting, rejection } from './connection-errors.helpers.js';

const PASSWORD = 'Sup3rS3cret';
const postgres = testPostgres();
const redis = testRedis();

/** Runs `fn` with DATABASE_URL set to `value` (undefined: unset), restoring it after. */
async function withDatabaseUrl<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.DATABASE_URL;
  if (value === undefined) delete process.env.DATABASE_URL;
  else process.env.DATABASE_URL = value;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
  }
}

async function postgresInitError(options: ConstructorParameters<typeof PostgresStore>[0], logger: CapturingLogger) {
  const store = new PostgresStore({ ...options, logger });
  try {
    return await rejection(store.init());
  } finally {
    await store.close();
  }
}

async function redisInitError(url: string, logger: CapturingLogger, connectTimeoutMs?: number) {
  const store = new RedisStore({ url, logger, connectTimeoutMs });
  try {
    return await rejection(store.init());
  } finally {
    await store.close();
  }
}

describe('Postgres store: unusable URLs fail at once', () => {
  it.each([
    ['not a URL (pg would resolve it to host "base")', 'base', 'does not start with postgres:// or postgresql://'],
    ['host:port without a scheme', 'localhost:5432/app', 'does not start with postgres:// or postgresql://'],
    ['an unencoded / in the password', `postgres://app:${PASSWORD}/x@localhost:5432/app`, 'cannot be parsed as a URL'],
    ['an unencoded # in the password', `postgres://app:${PASSWORD}#x@localhost:5432/app`, 'cannot be parsed as a URL'],
    ['the http scheme', `http://app:${PASSWORD}@localhost:5432/app`, 'its scheme is "http://"'],
    ['a Redis URL', `redis://:${PASSWORD}@localhost:6379`, "use store { type: 'redis' }"],
    ['surrounding quotes', `"postgres://app:${PASSWORD}@localhost:5432/app"`, 'wrapped in quotes'],
    ['a trailing space', `postgres://app:${PASSWORD}@localhost:5432/app `, 'starts or ends with whitespace'],
  ])('%s: a ConfigurationError naming store.url, with an example, without the password', async (_, url, problem) => {
    const logger = new CapturingLogger();
    const { error, ms } = await postgresInitError({ url }, logger);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toContain('store.url');
    expect(error.message).toContain(problem);
    expect(error.message).toContain('postgres://user:password@localhost:5432/mydb');
    expect(error.message).not.toContain(PASSWORD);
    expect(ms).toBeLessThan(200);
    expect([...logger.logs, ...logger.warnings, ...logger.errors]).toEqual([]); // no attempt, no retry
  });

  it('names DATABASE_URL when the URL came from it', async () => {
    const logger = new CapturingLogger();
    const { error, ms } = await withDatabaseUrl(`app:${PASSWORD}@localhost/app`, () => postgresInitError({}, logger));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toContain('DATABASE_URL');
    expect(error.message).not.toContain(PASSWORD);
    expect(ms).toBeLessThan(200);
    expect(logger.warnings).toEqual([]);
  });

  it('accepts what pg accepts: postgresql://, an empty host with ?host=, a Unix socket path, a space in the password', () => {
    // Checked through the URL check alone: connect() only gets past it for these (the connection itself fails later).
    return Promise.all(
      [
        'postgresql://app@127.0.0.1:1/app',
        'postgres://app@/app?host=/nonexistent-socket-dir',
        '/nonexistent-socket-dir app',
        'postgres://app:with space@127.0.0.1:1/app',
      ].map(async (url) => {
        const { error } = await rejection(TypeOrmSqlClient.connect({ url, connectAttempts: 1, logger: new CapturingLogger() }));
        expect(error).toBeInstanceOf(StoreError);
        expect(error.message).not.toContain('with space');
      }),
    );
  });
});

postgres.describe('Postgres store: connection failures', () => {
  it('refused: retried with one warning per retry, then a StoreError with host:port, the cause, the attempts and the fix', async () => {
    const port = await closedPort();
    const logger = new CapturingLogger();
    const { error, ms } = await rejection(
      TypeOrmSqlClient.connect({ url: `postgres://app:${PASSWORD}@127.0.0.1:${port}/app`, connectAttempts: 2, logger }),
    );
    expect(error).toBeInstanceOf(StoreError);
    expect(error.message).toContain(`Cannot connect to PostgreSQL at 127.0.0.1:${port} after 2 attempts`);
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).toContain('start PostgreSQL, or fix the host and port in store.url');
    expect(error.message).not.toContain(PASSWORD);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatch(new RegExp(`^PostgreSQL at 127\\.0\\.0\\.1:${port}: connection attempt 1/2 failed \\(.*ECONNREFUSED.*\\); retrying in 300 ms\\.$`));
    expect(ms).toBeLessThan(1_500);
  });

  it('unknown host (ENOTFOUND): the host and the cause, without the password', async () => {
    const logger = new CapturingLogger();
    const { error, ms } = await rejection(
      TypeOrmSqlClient.connect({ url: `postgres://app:${PASSWORD}@db.invalid:5432/app`, connectAttempts: 1, logger }),
    );
    expect(error).toBeInstanceOf(StoreError);
    expect(error.message).toContain('Cannot connect to PostgreSQL at db.invalid:5432 after 1 attempt (');
    expect(error.message).toContain('ENOTFOUND');
    expect(error.message).toContain('fix the host in store.url');
    expect(error.message).not.toContain(PASSWORD);
    expect(logger.warnings).toEqual([]);
    expect(ms).toBeLessThan(1_500);
  });

  it('wrong password (28P01): init() fails at once, not retried, naming the fix', async () => {
    const server = await fakePostgresRejecting('28P01', 'password authentication failed for user "app"');
    try {
      const logger = new CapturingLogger();
      const { error, ms } = await postgresInitError({ url: server.url(`app:${PASSWORD}`) }, logger);
      expect(error).toBeInstanceOf(StoreError);
      expect(error.message).toContain('Cannot connect to PostgreSQL at 127.0.0.1:');
      expect(error.message).toContain('28P01: password authentication failed for user "app"');
      expect(error.message).toContain('not retried');
      expect(error.message).toContain('fix the user name and password in store.url');
      expect(error.message).not.toContain(PASSWORD);
      expect(logger.warnings).toEqual([]);
      expect(server.connections()).toBeLessThanOrEqual(2); // one attempt (TypeORM may open one more pool connection)
      expect(ms).toBeLessThan(1_500);
    } finally {
      await server.close();
    }
  });

  it('unknown database (3D000) on the test server: init() fails at once, not retried', async () => {
    const url = new URL(postgres.url);
    url.pathname = '/cairn_no_such_database';
    url.password = PASSWORD; // the test server trusts every login: the password is ignored, and must not be shown
    const logger = new CapturingLogger();
    const { error, ms } = await postgresInitError({ url: url.toString() }, logger);
    expect(error).toBeInstanceOf(StoreError);
    expect(error.message).toContain(`Cannot connect to PostgreSQL at ${url.hostname}:${url.port}`);
    expect(error.message).toContain('3D000');
    expect(error.message).toContain('cairn_no_such_database');
    expect(error.message).toContain('not retried');
    expect(error.message).toContain('CREATE DATABASE');
    expect(error.message).not.toContain(PASSWORD);
    expect(logger.warnings).toEqual([]);
    expect(ms).toBeLessThan(1_500);
  });

  it('unknown user (28000) on the test server: init() fails at once, not retried', async () => {
    const url = new URL(postgres.url);
    url.username = 'cairn_no_such_role';
    const logger = new CapturingLogger();
    const { error, ms } = await postgresInitError({ url: url.toString() }, logger);
    expect(error).toBeInstanceOf(StoreError);
    expect(error.message).toContain('28000');
    expect(error.message).toContain('not retried');
    expect(error.message).toContain('check the user name in store.url');
    expect(logger.warnings).toEqual([]);
    expect(ms).toBeLessThan(1_500);
  });
});

describe('Redis store: unusable URLs fail at once', () => {
  it.each([
    ['host:port without a scheme', `localhost:6379`, 'does not start with redis:// or rediss://'],
    ['user:password@host without a scheme', `app:${PASSWORD}@localhost:6379`, 'does not start with redis:// or rediss://'],
    ['an unencoded / in the password', `redis://:${PASSWORD}/x@localhost:6379`, 'cannot be parsed as a URL'],
    ['a PostgreSQL URL', `postgres://app:${PASSWORD}@localhost:5432/app`, "its scheme is \"postgres://\" (a PostgreSQL URL: use store { type: 'postgres' }"],
    ['the http scheme', `http://localhost:6379`, 'its scheme is "http://"'],
    ['a database that is not a number', `redis://:${PASSWORD}@localhost:6379/cache`, 'the path must be a database number'],
    ['surrounding quotes', `'redis://:${PASSWORD}@localhost:6379'`, 'wrapped in quotes'],
  ])('%s: a ConfigurationError naming store.url, with an example, without the password', async (_, url, problem) => {
    const logger = new CapturingLogger();
    const { error, ms } = await redisInitError(url, logger);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toContain('store.url');
    expect(error.message).toContain(problem);
    expect(error.message).toContain('redis://:password@localhost:6379/0');
    expect(error.message).not.toContain(PASSWORD);
    expect(ms).toBeLessThan(200);
    expect([...logger.logs, ...logger.warnings, ...logger.errors]).toEqual([]);
  });

  it('connectTimeoutMs bounds the attempts: the delays between them (300, 600, 1200, 2400 …) fit in it', () => {
    expect(connectAttempts(0)).toBe(1);
    expect(connectAttempts(299)).toBe(1);
    expect(connectAttempts(300)).toBe(2);
    expect(connectAttempts(5_000)).toBe(5); // the default, as for Postgres
    expect(connectAttempts(9_300)).toBe(7);
  });
});

redis.describe('Redis store: connection failures', () => {
  let secured: RedisServer;
  const SERVER_PASSWORD = 'Right-0ne';

  beforeAll(async () => {
    secured = await startRedis();
    const admin = new Redis(secured.url);
    await admin.call('CONFIG', 'SET', 'requirepass', SERVER_PASSWORD);
    admin.disconnect();
  });

  afterAll(async () => {
    if (!secured) return;
    const admin = new Redis(`redis://:${SERVER_PASSWORD}@127.0.0.1:${secured.port}`);
    await admin.call('CONFIG', 'SET', 'requirepass', '').catch(() => undefined); // so that stop() can SHUTDOWN it
    admin.disconnect();
    await secured.stop();
  });

  it('refused: retried with one warning per retry, then a StoreError with host:port, ECONNREFUSED, the attempts and the fix', async () => {
    const port = await closedPort();
    const logger = new CapturingLogger();
    const { error, ms } = await redisInitError(`redis://:${PASSWORD}@127.0.0.1:${port}`, logger, 300);
    expect(error).toBeInstanceOf(StoreError);
    expect(error.message).toContain(`cannot connect to Redis at 127.0.0.1:${port} after 2 attempts`);
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).not.toContain('Connection is closed');
    expect(error.message).toContain('start Redis, or fix the host and port in store.url');
    expect(error.message).not.toContain(PASSWORD);
    expect((error as { cause?: { code?: string } }).cause?.code).toBe('ECONNREFUSED');
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatch(new RegExp(`^Redis at 127\\.0\\.0\\.1:${port}: connection attempt 1/2 failed \\(.*ECONNREFUSED.*\\); retrying in 300 ms\\.$`));
    expect(ms).toBeLessThan(1_500);
  });

  it('unknown host (ENOTFOUND): the host and the cause, without the password', async () => {
    const logger = new CapturingLogger();
    const { error, ms } = await redisInitError(`redis://:${PASSWORD}@cache.invalid:6379`, logger, 0);
    expect(error).toBeInstanceOf(StoreError);
    expect(error.message).toContain('cannot connect to Redis at cache.invalid:6379 after 1 attempt (');
    expect(error.message).toContain('ENOTFOUND');
    expect(error.message).toContain('fix the host in store.url');
    expect(error.message).not.toContain(PASSWORD);
    expect(ms).toBeLessThan(1_500);
  });

  it('wrong password (WRONGPASS): init() fails at once, not retried, naming the fix', async () => {
    const logger = new CapturingLogger();
    const { error, ms } = await redisInitError(`redis://:${PASSWORD}@127.0.0.1:${secured.port}`, logger);
    expect(error).toBeInstanceOf(StoreError);
    expect(error.message).toContain(`cannot connect to Redis at 127.0.0.1:${secured.port} (WRONGPASS`);
    expect(error.message).toContain('not retried');
    expect(error.message).toContain('The user name or password is wrong: fix them in store.url');
    expect(error.message).not.toContain(PASSWORD);
    expect(logger.warnings).toEqual([]);
    expect(ms).toBeLessThan(1_000);
  });

  it('no password for a server that requires one (NOAUTH): init() fails at once, not retried', async () => {
    const logger = new CapturingLogger();
    const { error, ms } = await redisInitError(`redis://127.0.0.1:${secured.port}`, logger);
    expect(error).toBeInstanceOf(StoreError);
    expect(error.message).toContain('NOAUTH');
    expect(error.message).toContain('not retried');
    expect(error.message).toContain('add it, as in redis://:password@host:port');
    expect(logger.warnings).toEqual([]);
    expect(ms).toBeLessThan(1_000);
  });

  it('the right password connects', async () => {
    const store = new RedisStore({ url: `redis://:${SERVER_PASSWORD}@127.0.0.1:${secured.port}`, logger: new CapturingLogger() });
    try {
      await store.init();
      expect(await store.client.ping()).toBe('PONG');
    } finally {
      await store.close();
    }
  });
});
