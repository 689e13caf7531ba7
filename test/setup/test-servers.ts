import { describe } from '@jest/globals';

/** A test server whose URL the Jest global setup exports, and the `describe` to use for suites that need it. */
export interface TestServer {
  url: string;
  describe: typeof describe | typeof describe.skip;
}

/**
 * The server's URL from the environment. A missing URL fails the suite loudly (the global setup always starts the
 * servers), unless the developer opted out with `CAIRN_SKIP_<NAME>=1`: then the suite is reported as skipped.
 */
function requireServer(env: 'DATABASE_URL' | 'REDIS_URL', skip: 'CAIRN_SKIP_POSTGRES' | 'CAIRN_SKIP_REDIS'): TestServer {
  if (process.env[skip] === '1') return { url: '', describe: describe.skip };
  const url = process.env[env];
  if (!url) throw new Error(`${env} is not set: run the tests through Jest (its global setup starts the server), or set ${skip}=1.`);
  return { url, describe };
}

export const testPostgres = (): TestServer => requireServer('DATABASE_URL', 'CAIRN_SKIP_POSTGRES');
export const testRedis = (): TestServer => requireServer('REDIS_URL', 'CAIRN_SKIP_REDIS');
