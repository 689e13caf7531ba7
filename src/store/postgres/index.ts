export { PostgresStore, type PostgresGroupCommitOptions, type PostgresStoreOptions } from './postgres.store.js';
export { createPgliteStore, DEFAULT_PGLITE_DATA_DIR, type PgliteStoreOptions } from './pglite.js';
export { CairnSchemaMigration, createCairnSchemaMigration, type CairnMigrationOptions } from './postgres.migration.js';
export { SCHEMA_VERSION, DEFAULT_SCHEMA, DEFAULT_TABLE_PREFIX } from './postgres.schema.js';
export type { SqlClient, StoreLogger } from './postgres.client.js';
