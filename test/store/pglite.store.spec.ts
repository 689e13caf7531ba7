import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgliteStore } from '../../src/store/postgres/pglite.js';
import type { SqlClient } from '../../src/store/postgres/postgres.client.js';
import type { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { corruptions } from './postgres-test-helpers.js';

let dir: string | undefined;


/** The store's PGlite session (a test reaches behind the store to damage its rows). */
const sessionOf = (store: PostgresStore) => (store as unknown as { client: SqlClient }).client;

describeStoreConformance('pglite', {
  create: async () => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-pglite-'));
    return createPgliteStore({ dataDir: dir });
  },
  destroy: async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
  corruptions: corruptions((store, sql, params) => sessionOf(store).query(sql, params)),
});
