import { CodecStore } from '../../src/codec/codec.store.js';
import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { dropSchema, randomSchemaName, withPgClient } from '../setup/postgres-server.js';
import { testPostgres } from '../setup/test-servers.js';
import { corruptions } from '../store/postgres-test-helpers.js';
import { aesCodec, codecCorruptions, throughWrapper } from './codec-test-helpers.js';

const { url, describe: describePg } = testPostgres();

describePg('postgres + AesGcmCodec', () => {
  describeStoreConformance('postgres + AesGcmCodec', {
    create: async () => new CodecStore(new PostgresStore({ url, schema: randomSchemaName('cairn_codec') }), aesCodec()),
    destroy: async (store) => dropSchema(url, ((store as CodecStore).inner as PostgresStore).names.schema),
    corruptions: {
      ...throughWrapper(corruptions((_store, sql, params) => withPgClient(url, (query) => query(sql, params)))),
      ...codecCorruptions(),
    },
  });
});
