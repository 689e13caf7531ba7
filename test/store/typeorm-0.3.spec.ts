/**
 * The Postgres store on an app's own TypeORM 0.3 DataSource (most Nest apps today): the conformance suite, and
 * `start(…, { transaction })` through a TypeORM 0.3 EntityManager. TypeORM 0.3 is installed as the `typeorm-0.3` alias.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm-0.3';
import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { Step, Workflow, type WorkflowStore } from '../../src/index.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { dropSchema, randomSchemaName } from '../setup/postgres-server.js';
import { testPostgres } from '../setup/test-servers.js';
import { useApps } from '../nest/helpers.js';

const { url, describe: describePg } = testPostgres();
const sources = new WeakMap<WorkflowStore, DataSource>();

async function dataSource(): Promise<DataSource> {
  const ds = new DataSource({ type: 'postgres', url });
  await ds.initialize();
  return ds;
}

@Workflow('typeorm03-echo')
class Echo {
  @Step() echo(input: string) {
    return `${input}!`;
  }
}

describePg('postgres store on TypeORM 0.3', () => {
  it('is TypeORM 0.3', async () => {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../node_modules/typeorm-0.3/package.json', import.meta.url), 'utf8')) as { version: string };
    expect(pkg.version).toMatch(/^0\.3\./);
    // the DataSource the suite uses is that package's
    expect(typeof (DataSource as unknown as { prototype: { initialize: unknown } }).prototype.initialize).toBe('function');
  });

  describeStoreConformance('postgres (TypeORM 0.3 DataSource)', {
    create: async () => {
      const ds = await dataSource();
      // NOTE: the store's option is typed with TypeORM 1's DataSource; a 0.3 one has the same shape where it matters.
      const store = new PostgresStore({ dataSource: ds as never, schema: randomSchemaName() });
      sources.set(store, ds);
      return store;
    },
    destroy: async (store) => {
      await dropSchema(url, (store as PostgresStore).names.schema);
      await sources.get(store)?.destroy();
    },
  });

  describe('start({ transaction }) with a TypeORM 0.3 EntityManager', () => {
    const apps = useApps();
    let ds: DataSource;
    const schema = randomSchemaName();
    beforeAll(async () => {
      ds = await dataSource();
    });
    afterAll(async () => {
      await dropSchema(url, schema);
      await ds.destroy();
    });

    it('creates the run only if the caller\'s transaction commits, then runs it', async () => {
      const { client } = await apps.boot([Echo], { store: { type: 'postgres', dataSource: ds as never, schema } });
      const rolledBack = `rb-${randomUUID()}`;
      await expect(
        ds.transaction(async (manager) => {
          await client.start(Echo, 'no', { id: rolledBack, transaction: manager as never });
          throw new Error('roll back');
        }),
      ).rejects.toThrow('roll back');
      expect(await client.describe(rolledBack)).toBeUndefined();
      const committed = `c-${randomUUID()}`;
      await ds.transaction(async (manager) => {
        await client.start(Echo, 'yes', { id: committed, transaction: manager as never });
      });
      expect(await client.getHandle(committed).result({ timeout: '10s' })).toBe('yes!');
    });
  });
});
