import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { dropSchema, randomSchemaName } from '../setup/postgres-server.js';
import { testPostgres } from '../setup/test-servers.js';

const { url, describe: describePg } = testPostgres();

describePg('postgres', () => {
  describeStoreConformance('postgres', {
    create: async () => new PostgresStore({ url, schema: randomSchemaName() }),
    destroy: async (store) => dropSchema(url, (store as PostgresStore).names.schema),
  });
});
