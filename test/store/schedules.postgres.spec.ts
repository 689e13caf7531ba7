import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgliteStore } from '../../src/store/postgres/pglite.js';
import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { scheduleStoreOf } from '../../src/store/schedules/schedule-store.factory.js';
import { dropSchema, randomSchemaName } from '../setup/postgres-server.js';
import { testPostgres } from '../setup/test-servers.js';
import { describeScheduleStoreConformance } from './schedules.conformance.js';

describeScheduleStoreConformance('pglite', {
  create: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-pglite-schedules-'));
    const store = await createPgliteStore({ dataDir: dir });
    await store.init();
    return {
      schedules: scheduleStoreOf(store)!,
      close: async () => {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});

const { url, describe: describePg } = testPostgres();

describePg('postgres', () => {
  describeScheduleStoreConformance('postgres', {
    create: async () => {
      const schema = randomSchemaName();
      const store = new PostgresStore({ url, schema, tablePrefix: 'sch_' });
      await store.init();
      return {
        schedules: scheduleStoreOf(store)!,
        close: async () => {
          await store.close();
          await dropSchema(url, schema);
        },
      };
    },
  });
});
