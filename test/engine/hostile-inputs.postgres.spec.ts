/**
 * The hostile-input catalogue of issue 19 on PostgreSQL (see hostile-inputs.suite.ts).
 * NOTE: 5,000 signals, not 100,000: each `signal()` is one statement that also appends a history event and trims the
 * history to its bound, about 1 ms a round trip here, so 100,000 sequential sends alone would take minutes; 5,000 keep
 * the case within seconds and still far beyond any one page or batch size of the store.
 */
import { randomSchemaName } from '../setup/postgres-server.js';
import { testPostgres } from '../setup/test-servers.js';
import { closedPort } from '../store/connection-errors.helpers.js';
import { hostileInputSuite } from './hostile-inputs.suite.js';

const pg = testPostgres();

pg.describe('postgres', () => {
  hostileInputSuite('postgres', {
    store: () => ({ type: 'postgres', url: pg.url, schema: randomSchemaName('cairn_hostile') }),
    signals: { sent: 5_000, consumed: 200 },
    concurrentStarts: 2_000,
    controlCalls: 1_000,
    unreachable: async () => {
      const port = await closedPort();
      return {
        options: { store: { type: 'postgres', url: `postgres://app:secret@127.0.0.1:${port}/app` } },
        names: ['PostgreSQL', `127.0.0.1:${port}`, 'ECONNREFUSED'],
      };
    },
  });
});
