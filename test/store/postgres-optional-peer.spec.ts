import { describe, expect, it, jest } from '@jest/globals';

// typeorm/pg and @electric-sql/pglite are optional peers: the store modules must load without them, and init() must
// say what to install.
jest.unstable_mockModule('typeorm', () => {
  throw new Error("Cannot find package 'typeorm' imported from postgres.client.js");
});
jest.unstable_mockModule('@electric-sql/pglite', () => {
  throw new Error("Cannot find package '@electric-sql/pglite' imported from pglite.js");
});

async function initError(store: { init(): Promise<void> }): Promise<unknown> {
  return store.init().then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('Postgres and PGlite stores without their optional packages', () => {
  it('loads, and fails init with a ConfigurationError telling to npm install typeorm pg', async () => {
    const { PostgresStore } = await import('../../src/store/postgres/postgres.store.js');
    const { ConfigurationError } = await import('../../src/errors/errors.js');
    const store = new PostgresStore({ url: 'postgres://127.0.0.1:1/db' });
    const error = await initError(store);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toContain('npm install typeorm pg');
    await store.close();
  });

  it('loads, and fails init with a ConfigurationError telling to npm install @electric-sql/pglite', async () => {
    const { mkdtempSync, rmSync, existsSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { createPgliteStore } = await import('../../src/store/postgres/pglite.js');
    const { ConfigurationError } = await import('../../src/errors/errors.js');
    const dir = mkdtempSync(join(tmpdir(), 'cairn-pglite-peer-'));
    try {
      const store = createPgliteStore({ dataDir: dir });
      const error = await initError(store);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).toContain('npm install @electric-sql/pglite');
      expect(existsSync(join(dir, 'cairn.lock'))).toBe(false); // the lock was released
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('needs a connection: a ConfigurationError without url, dataSource or DATABASE_URL', async () => {
    const { PostgresStore } = await import('../../src/store/postgres/postgres.store.js');
    const { ConfigurationError } = await import('../../src/errors/errors.js');
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      const error = await initError(new PostgresStore({}));
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).toMatch(/url/);
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
  });
});
