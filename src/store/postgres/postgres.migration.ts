import type { MigrationInterface, QueryRunner } from 'typeorm';
import type { Row } from './postgres.client.js';
import { toRows } from './postgres.client.js';
import {
  DEFAULT_SCHEMA,
  DEFAULT_TABLE_PREFIX,
  dropStatements,
  ensureSchemaInTransaction,
  schemaNames,
  type SqlQuery,
} from './postgres.schema.js';

export interface CairnMigrationOptions {
  schema?: string;
  tablePrefix?: string;
}

function runnerQuery(queryRunner: QueryRunner): SqlQuery {
  return async (sql, params) => toRows(await queryRunner.query(sql, params)) as Row[];
}

/**
 * Builds a TypeORM migration that creates (or upgrades) the nestjs-cairn tables for a given schema and prefix, from
 * the same DDL the store runs at startup. Use it when your app manages its schema with migrations:
 *
 * ```ts
 * new DataSource({ ..., migrations: [createCairnSchemaMigration({ schema: 'workflows' })] })
 * ```
 *
 * The store's own startup check then finds the schema current and creates nothing. `down()` drops the tables.
 */
export function createCairnSchemaMigration(options: CairnMigrationOptions = {}): new () => MigrationInterface {
  const names = schemaNames(options.schema ?? DEFAULT_SCHEMA, options.tablePrefix ?? DEFAULT_TABLE_PREFIX);
  return class CairnSchemaMigration implements MigrationInterface {
    /** TypeORM reads the migration's timestamp from the last 13 digits of its name. */
    readonly name = 'CairnSchema1767225600000';

    async up(queryRunner: QueryRunner): Promise<void> {
      await ensureSchemaInTransaction(runnerQuery(queryRunner), names);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      for (const statement of dropStatements(names)) await queryRunner.query(statement);
    }
  };
}

/** The migration for the default schema (`public`) and prefix (`cairn_`): `migrations: [CairnSchemaMigration]`. */
export const CairnSchemaMigration = createCairnSchemaMigration();
