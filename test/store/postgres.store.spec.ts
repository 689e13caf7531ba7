import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { dropSchema, randomSchemaName, withPgClient } from '../setup/postgres-server.js';
import { testPostgres } from '../setup/test-servers.js';
import { corruptions } from './postgres-test-helpers.js';

const { url, describe: describePg } = testPostgres();


describePg('postgres', () => {
  describeStoreConformance('postgres', {
    create: async () => new PostgresStore({ url, schema: randomSchemaName() }),
    destroy: async (store) => dropSchema(url, (store as PostgresStore).names.schema),
    corruptions: corruptions((_store, sql, params) => withPgClient(url, (query) => query(sql, params))),
  });
});
