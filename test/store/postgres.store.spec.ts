import { describe, it } from '@jest/globals';
import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { dropSchema, randomSchemaName } from '../setup/postgres-server.js';

const url = process.env.DATABASE_URL;

if (url) {
  describeStoreConformance('postgres', {
    create: async () => new PostgresStore({ url, schema: randomSchemaName() }),
    destroy: async (store) => dropSchema(url, (store as PostgresStore).names.schema),
  });
} else {
  describe('WorkflowStore conformance: postgres', () => {
    it.skip('needs DATABASE_URL (or the throwaway server of the Jest global setup)', () => undefined);
  });
}
