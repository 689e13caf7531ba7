import { StoreError } from '../../errors/errors.js';
import type { NewSchedule, SchedulePatch, ScheduleSource, ScheduleStore, StoredSchedule } from '../schedule-store.interface.js';
import type { Row, SqlClient } from './postgres.client.js';
import { quoteIdent, quoteLiteral } from './postgres.schema.js';

const COLUMNS = 'id, workflow, spec, paused, next_fire_at, last_fire_at, last_run_id, source, version, created_at, updated_at';

function date(value: unknown): Date | undefined {
  if (value === null || value === undefined) return undefined;
  return value instanceof Date ? new Date(value.getTime()) : new Date(String(value));
}

function toSchedule(row: Row): StoredSchedule {
  const schedule: StoredSchedule = {
    id: String(row.id),
    workflow: String(row.workflow),
    spec: String(row.spec),
    paused: row.paused === true,
    source: row.source as ScheduleSource,
    version: Number(row.version),
    createdAt: date(row.created_at)!,
    updatedAt: date(row.updated_at)!,
  };
  const next = date(row.next_fire_at);
  const last = date(row.last_fire_at);
  if (next) schedule.nextFireAt = next;
  if (last) schedule.lastFireAt = last;
  if (row.last_run_id !== null && row.last_run_id !== undefined) schedule.lastRunId = String(row.last_run_id);
  return schedule;
}

/**
 * The schedules port on PostgreSQL and PGlite: one table `<schema>.<prefix>schedules`, created idempotently by
 * `init()` (under an advisory lock, so instances starting together do not collide), with a partial index on
 * `next_fire_at` of the schedules that can fire: `due` reads only those. Every method is one statement; `advance` is a
 * conditional UPDATE on `version` (the compare-and-set).
 */
export class PostgresScheduleStore implements ScheduleStore {
  private readonly table: string;
  private readonly dueIndex: string;
  private readonly lockKey: string;
  private readonly sql: { ddl: string[]; create: string; get: string; list: string; delete: string; deleteVersion: string; due: string; dueFor: string; advance: string };

  /**
   * @param db the store's SQL client (read on every call: the store connects in its own `init()`)
   * @param names the store's schema and table prefix
   */
  constructor(
    private readonly db: () => SqlClient,
    names: { schema: string; prefix: string },
  ) {
    const qSchema = quoteIdent(names.schema);
    this.table = `${qSchema}.${quoteIdent(`${names.prefix}schedules`)}`;
    this.dueIndex = quoteIdent(`${names.prefix}schedules_due_idx`);
    this.lockKey = quoteLiteral(`cairn-schedules:${names.schema}.${names.prefix}`);
    const t = this.table;
    this.sql = {
      ddl: [
        `CREATE SCHEMA IF NOT EXISTS ${qSchema}`,
        `CREATE TABLE IF NOT EXISTS ${t} (
          id text PRIMARY KEY,
          workflow text NOT NULL,
          spec text NOT NULL,
          paused boolean NOT NULL DEFAULT false,
          next_fire_at timestamptz,
          last_fire_at timestamptz,
          last_run_id text,
          source text NOT NULL CHECK (source IN ('decorator', 'api')),
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        )`,
        `CREATE INDEX IF NOT EXISTS ${this.dueIndex} ON ${t} (next_fire_at, id) WHERE NOT paused AND next_fire_at IS NOT NULL`,
      ],
      create: `INSERT INTO ${t} (id, workflow, spec, paused, next_fire_at, source) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (id) DO NOTHING RETURNING ${COLUMNS}`,
      get: `SELECT ${COLUMNS} FROM ${t} WHERE id = $1`,
      list: `SELECT ${COLUMNS} FROM ${t} ORDER BY id COLLATE "C"`,
      delete: `DELETE FROM ${t} WHERE id = $1 RETURNING id`,
      deleteVersion: `DELETE FROM ${t} WHERE id = $1 AND version = $2 RETURNING id`,
      due: `SELECT ${COLUMNS} FROM ${t} WHERE NOT paused AND next_fire_at IS NOT NULL AND next_fire_at <= $1
        ORDER BY next_fire_at, id LIMIT $2`,
      dueFor: `SELECT ${COLUMNS} FROM ${t} WHERE NOT paused AND next_fire_at IS NOT NULL AND next_fire_at <= $1
        AND workflow = ANY($3::text[]) ORDER BY next_fire_at, id LIMIT $2`,
      // $3..$9: workflow, spec, paused (null: keep), next_fire_at, whether to set it, last_fire_at, last_run_id.
      advance: `UPDATE ${t} SET
          workflow = COALESCE($3, workflow),
          spec = COALESCE($4, spec),
          paused = COALESCE($5, paused),
          next_fire_at = CASE WHEN $7::boolean THEN $6::timestamptz ELSE next_fire_at END,
          last_fire_at = COALESCE($8::timestamptz, last_fire_at),
          last_run_id = COALESCE($9, last_run_id),
          version = version + 1,
          updated_at = now()
        WHERE id = $1 AND version = $2 RETURNING ${COLUMNS}`,
    };
  }

  async init(): Promise<void> {
    await this.op('init', (db) =>
      db.transaction(async (query) => {
        await query(`SELECT pg_advisory_xact_lock(hashtext(${this.lockKey}))`);
        for (const statement of this.sql.ddl) await query(statement);
      }),
    );
  }

  async create(schedule: NewSchedule): Promise<StoredSchedule | undefined> {
    const [row] = await this.op('create', (db) =>
      db.query(this.sql.create, [schedule.id, schedule.workflow, schedule.spec, schedule.paused, schedule.nextFireAt ?? null, schedule.source]),
    );
    return row && toSchedule(row);
  }

  async get(id: string): Promise<StoredSchedule | undefined> {
    const [row] = await this.op('get', (db) => db.query(this.sql.get, [id]));
    return row && toSchedule(row);
  }

  async list(): Promise<StoredSchedule[]> {
    return (await this.op('list', (db) => db.query(this.sql.list, []))).map(toSchedule);
  }

  async delete(id: string, expectedVersion?: number): Promise<boolean> {
    const rows = await this.op('delete', (db) =>
      expectedVersion === undefined ? db.query(this.sql.delete, [id]) : db.query(this.sql.deleteVersion, [id, expectedVersion]),
    );
    return rows.length > 0;
  }

  async due(until: Date, limit: number, workflows?: readonly string[]): Promise<StoredSchedule[]> {
    const n = Math.max(0, Math.floor(limit));
    const rows = await this.op('due', (db) =>
      workflows === undefined ? db.query(this.sql.due, [until, n]) : db.query(this.sql.dueFor, [until, n, [...workflows]]),
    );
    return rows.map(toSchedule);
  }

  async advance(id: string, expectedVersion: number, patch: SchedulePatch): Promise<StoredSchedule | undefined> {
    const [row] = await this.op('advance', (db) =>
      db.query(this.sql.advance, [
        id,
        expectedVersion,
        patch.workflow ?? null,
        patch.spec ?? null,
        patch.paused ?? null,
        patch.nextFireAt ?? null,
        patch.nextFireAt !== undefined,
        patch.lastFireAt ?? null,
        patch.lastRunId ?? null,
      ]),
    );
    return row && toSchedule(row);
  }

  private async op<T>(what: string, fn: (db: SqlClient) => Promise<T>): Promise<T> {
    const db = this.db();
    try {
      return await fn(db);
    } catch (error) {
      throw new StoreError(`Postgres schedules: ${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}
