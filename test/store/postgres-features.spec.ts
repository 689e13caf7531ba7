import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { DataSource, type Logger as TypeOrmLogger } from 'typeorm';
import { InvalidArgumentError, StoreError } from '../../src/errors/errors.js';
import { createCairnSchemaMigration } from '../../src/store/postgres/postgres.migration.js';
import { SCHEMA_VERSION } from '../../src/store/postgres/postgres.schema.js';
import { buildStatements } from '../../src/store/postgres/postgres.sql.js';
import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import {
  type LeaseRequest,
  PUBLISH_MAX_BYTES,
  RUN_HISTORY_LIMIT,
  type RunPatch,
  type StoreEvent,
  type StoredRun,
} from '../../src/store/workflow-store.interface.js';
import { dropSchema, randomSchemaName, startPostgres, withPgClient } from '../setup/postgres-server.js';
import { testPostgres } from '../setup/test-servers.js';
import { freePort } from '../setup/postgres-server.js';
import { newRun } from '../support/runs.js';

const { url, describe: describePg } = testPostgres();
const LEASE: LeaseRequest = { owner: 'spec', leaseMs: 30_000 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };

function collectingLogger() {
  const lines: string[] = [];
  return {
    lines,
    logger: {
      log: (m: string) => void lines.push(`log: ${m}`),
      warn: (m: string) => void lines.push(`warn: ${m}`),
      error: (m: string) => void lines.push(`error: ${m}`),
    },
  };
}

/** A TypeORM logger that counts the statements sent (each `dataSource.query` is one round trip). */
class CountingLogger implements TypeOrmLogger {
  queries: string[] = [];
  logQuery(query: string): void {
    this.queries.push(query);
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}
}

async function newDataSource(extra: Partial<{ logger: TypeOrmLogger }> = {}): Promise<DataSource> {
  const ds = new DataSource({ type: 'postgres', url, logging: extra.logger !== undefined, ...extra });
  await ds.initialize();
  return ds;
}


async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describePg('PostgresStore', () => {
  const schemas: string[] = [];
  const schema = () => {
    const name = randomSchemaName();
    schemas.push(name);
    return name;
  };
  afterAll(async () => {
    for (const name of schemas) await dropSchema(url, name);
  });

  describe('run ids and names are data', () => {
    let store: PostgresStore;
    beforeAll(async () => {
      store = new PostgresStore({ url, schema: schema(), logger: silent });
      await store.init();
    });
    afterAll(() => store.close());

    const hostile = [
      `'; DROP TABLE cairn_runs;--`,
      `"; DROP SCHEMA public CASCADE;--`,
      `it's "quoted" \\ back\\slash $1 %s ? :name`,
      'ünïcødé ☃ 日本語 🚀 é (combining)',
      'x'.repeat(255),
      '🚀'.repeat(127),
      ' leading and trailing spaces ',
      'line\nbreak\ttab\r',
    ];

    it.each(hostile.map((id) => [id.slice(0, 40), id]))('stores and finds %j verbatim', async (_label, runId) => {
      const created = await store.createRun(newRun({ runId, workflow: runId, currentStep: runId }), { onConflict: 'keep', lease: LEASE });
      expect(created.created).toBe(true);
      const run = (await store.getRun(runId))!;
      expect(run.runId).toBe(runId);
      expect(run.workflow).toBe(runId);
      expect(run.currentStep).toBe(runId);
      expect((await store.sendSignal(runId, runId, runId)).outcome).toBe('ok');
      const res = await store.commit(runId, created.run.leaseToken!, { leaseMs: 30_000, wait: { signals: [runId] } });
      expect(res).toMatchObject({ ok: true, consumedSignal: { name: runId, payload: runId } });
      expect((await store.listRuns({ workflow: runId, limit: 5 })).map((r) => r.runId)).toEqual([runId]);
      expect((await store.control(runId, { action: 'cancel', compensate: false })).outcome).toBe('ok');
    });

    it('still has its tables after the hostile ids', async () => {
      await withPgClient(url, async (query) => {
        const rows = await query(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1`, [store.names.schema]);
        expect(rows[0].n).toBe(8);
      });
    });

    it('refuses ids PostgreSQL text cannot hold, and never finds them', async () => {
      for (const runId of ['nul\u0000byte', 'lone\uD800surrogate']) {
        await expect(store.createRun(newRun({ runId }), { onConflict: 'keep' })).rejects.toBeInstanceOf(InvalidArgumentError);
        expect(await store.getRun(runId)).toBeUndefined();
        expect((await store.sendSignal(runId, 'x', '1')).outcome).toBe('not-found');
        expect((await store.control(runId, { action: 'pause' })).outcome).toBe('not-found');
      }
    });
  });

  describe('connections', () => {
    it('uses a borrowed DataSource (LISTEN included) and leaves it open on close', async () => {
      const ds = await newDataSource();
      try {
        const store = new PostgresStore({ dataSource: ds, schema: schema(), logger: silent });
        await store.init();
        const events: StoreEvent[] = [];
        const unsubscribe = await store.subscribe((e) => events.push(e));
        const run = newRun();
        await store.createRun(run, { onConflict: 'keep' });
        await waitFor(() => events.some((e) => e.type === 'ready' && e.runId === run.runId));
        await unsubscribe();
        await store.close();
        expect(ds.isInitialized).toBe(true);
        expect(await ds.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      } finally {
        await ds.destroy();
      }
    });

    it('destroys the DataSource it created from a URL on close', async () => {
      const store = new PostgresStore({ url, schema: schema(), logger: silent });
      await store.init();
      const ds = store.dataSource!;
      expect(ds.isInitialized).toBe(true);
      await store.close();
      expect(ds.isInitialized).toBe(false);
      await expect(store.getRun('x')).rejects.toBeInstanceOf(StoreError);
    });

    it('keeps working across a server crash and restart (pool and LISTEN reconnect)', async () => {
      const server = await startPostgres();
      const { lines, logger } = collectingLogger();
      const store = new PostgresStore({ url: server.url, logger });
      try {
        await store.init();
        const events: StoreEvent[] = [];
        const unsubscribe = await store.subscribe((e) => events.push(e));
        const before = newRun();
        await store.createRun(before, { onConflict: 'keep' });
        await server.restart();
        // The first statements may hit connections the crash killed; the pool replaces them.
        const after = newRun();
        const deadline = Date.now() + 10_000;
        for (;;) {
          try {
            await store.createRun(after, { onConflict: 'keep' });
            break;
          } catch (error) {
            expect(error).toBeInstanceOf(StoreError);
            if (Date.now() > deadline) throw error;
            await sleep(100);
          }
        }
        expect((await store.getRun(before.runId))?.runId).toBe(before.runId);
        // LISTEN came back: a later change is heard.
        const probe = newRun();
        const heardDeadline = Date.now() + 10_000;
        while (!events.some((e) => 'runId' in e && e.runId === probe.runId)) {
          if (Date.now() > heardDeadline) throw new Error(`no event after restart; log: ${lines.join(' | ')}`);
          await store.createRun({ ...probe, runId: probe.runId }, { onConflict: 'replace' });
          await sleep(200);
        }
        await unsubscribe();
      } finally {
        await store.close();
        await server.stop();
      }
    }, 30_000);

    it('falls back to unnamed statements when the connection loses its prepared statements (poolers)', async () => {
      const { lines, logger } = collectingLogger();
      const store = new PostgresStore({ url, schema: schema(), logger, poolSize: 1 });
      await store.init();
      try {
        const run = newRun();
        await store.createRun(run, { onConflict: 'keep' });
        expect((await store.getRun(run.runId))?.runId).toBe(run.runId);
        // What a transaction-mode pooler does: the next statement lands on a backend that never saw the Parse.
        await store.dataSource!.query('DEALLOCATE ALL');
        expect((await store.getRun(run.runId))?.runId).toBe(run.runId);
        expect(lines.filter((l) => l.includes('prepared statements'))).toHaveLength(1);
        expect((await store.getRun(run.runId))?.runId).toBe(run.runId);
        expect(lines.filter((l) => l.includes('prepared statements'))).toHaveLength(1);
      } finally {
        await store.close();
      }
    });

    it('fails with a StoreError naming host:port (not the password) when the server refuses connections', async () => {
      const port = await freePort();
      const { lines, logger } = collectingLogger();
      const store = new PostgresStore({ url: `postgres://cairn:s3cr3t-pw@127.0.0.1:${port}/db`, logger });
      const started = Date.now();
      const error = await store.init().then(
        () => undefined,
        (e: unknown) => e,
      );
      const elapsed = Date.now() - started;
      expect(error).toBeInstanceOf(StoreError);
      const text = (error as Error).message;
      expect(text).toContain(`127.0.0.1:${port}`);
      expect(text).not.toContain('s3cr3t-pw');
      expect(elapsed).toBeLessThan(10_000);
      expect(elapsed).toBeGreaterThan(2_000); // it did retry
      const retries = lines.filter((l) => l.startsWith('warn:'));
      expect(retries.length).toBe(4);
      for (const line of retries) expect(line).not.toContain('s3cr3t-pw');
    }, 15_000);
  });

  describe('schema', () => {
    it('honours schema and tablePrefix (quoted safely) for tables and indexes', async () => {
      const name = `${schema()}_Mixed "Case"`;
      schemas.push(name);
      const store = new PostgresStore({ url, schema: name, tablePrefix: 'My-App.', logger: silent });
      await store.init();
      try {
        const run = newRun();
        await store.createRun(run, { onConflict: 'keep' });
        expect((await store.getRun(run.runId))?.runId).toBe(run.runId);
        await withPgClient(url, async (query) => {
          const tables = await query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [name]);
          expect(tables.map((t) => t.table_name)).toEqual(['My-App.flow_keys', 'My-App.pipelines', 'My-App.run_events', 'My-App.runs', 'My-App.schema_version', 'My-App.signal_ids', 'My-App.signals', 'My-App.steps']);
          const indexes = await query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY 1`, [name]);
          for (const index of indexes) expect(String(index.indexname).startsWith('My-App.')).toBe(true);
          expect(indexes.map((i) => i.indexname)).toEqual(
            expect.arrayContaining(['My-App.runs_claim_idx', 'My-App.runs_list_idx', 'My-App.runs_workflow_list_idx', 'My-App.runs_purge_idx']),
          );
          const elsewhere = await query(`SELECT table_schema FROM information_schema.tables WHERE table_name = 'My-App.runs' AND table_schema <> $1`, [name]);
          expect(elsewhere).toEqual([]);
        });
      } finally {
        await store.close();
      }
    });

    it('lets several instances initialize an empty schema at once', async () => {
      const name = schema();
      const stores = Array.from({ length: 4 }, () => new PostgresStore({ url, schema: name, logger: silent }));
      try {
        await Promise.all(stores.map((s) => s.init()));
        const run = newRun();
        await stores[0].createRun(run, { onConflict: 'keep' });
        expect((await stores[3].getRun(run.runId))?.runId).toBe(run.runId);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });

    it('refuses a schema created by a newer version', async () => {
      const name = schema();
      const first = new PostgresStore({ url, schema: name, logger: silent });
      await first.init();
      await first.close();
      await withPgClient(url, (query) => query(`UPDATE "${name}".cairn_schema_version SET version = $1`, [SCHEMA_VERSION + 1]));
      const second = new PostgresStore({ url, schema: name, logger: silent });
      const error = await second.init().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StoreError);
      expect((error as Error).message).toMatch(new RegExp(`schema version ${SCHEMA_VERSION + 1}.*newer`));
      await second.close();
    });

    /**
     * Turns the current tables into those of version 1 … 6 (version 6 has `wait_signal text` for `wait_signals`, and no
     * child columns, `next_input_signal` nor signal ids table; the DDL of version 5 is that of version 6
     * without the pipelines table and `runs.pipeline`; that of version 4 is version 5's without the history table,
     * `runs.event_seq` and the steps' heartbeat columns); below 3 with `runId`'s running step 0 as a row of steps.
     */
    /** A runs row of version 6 as the migration to 7 leaves it: its wait signal in an array, no children. */
    function v7Columns(row: Record<string, unknown>): Record<string, unknown> {
      const { wait_signal: waitSignal, ...rest } = row;
      return {
        ...rest,
        wait_signals: waitSignal === null || waitSignal === undefined ? null : [waitSignal],
        parent_run_id: null,
        children_ended: null,
        children_failed: null,
        children_wait_ended_at_least: null,
        children_fail_fast: null,
        next_input_signal: null,
      };
    }

    async function downgrade(name: string, runId: string, to: 1 | 2 | 3 | 4 | 5 | 6): Promise<void> {
      await withPgClient(url, async (query) => {
        // Version 6: one wait signal per run, no child runs, no signal ids.
        await query(`DROP TABLE "${name}".cairn_signal_ids`);
        await query(`ALTER TABLE "${name}".cairn_runs ADD COLUMN wait_signal text`);
        await query(`UPDATE "${name}".cairn_runs SET wait_signal = wait_signals[1]`);
        await query(
          `ALTER TABLE "${name}".cairn_runs DROP COLUMN wait_signals, DROP COLUMN parent_run_id, DROP COLUMN children_ended,
             DROP COLUMN children_failed, DROP COLUMN children_wait_ended_at_least, DROP COLUMN children_fail_fast,
             DROP COLUMN next_input_signal`,
        );
        if (to === 6) {
          await query(`UPDATE "${name}".cairn_schema_version SET version = 6`);
          return;
        }
        await query(`DROP TABLE "${name}".cairn_pipelines`);
        await query(`ALTER TABLE "${name}".cairn_runs DROP COLUMN pipeline`);
        if (to === 5) {
          await query(`UPDATE "${name}".cairn_schema_version SET version = 5`);
          return;
        }
        await query(`DROP TABLE "${name}".cairn_run_events`);
        await query(`ALTER TABLE "${name}".cairn_runs DROP COLUMN event_seq`);
        await query(`ALTER TABLE "${name}".cairn_steps DROP COLUMN heartbeat_at, DROP COLUMN heartbeat`);
        if (to === 4) {
          await query(`UPDATE "${name}".cairn_schema_version SET version = 4`);
          return;
        }
        await query(`ALTER TABLE "${name}".cairn_runs DROP COLUMN generation`);
        if (to === 3) {
          await query(`UPDATE "${name}".cairn_schema_version SET version = 3`);
          return;
        }
        await query(
          `INSERT INTO "${name}".cairn_steps (run_id, idx, name, status, attempts, started_at)
           SELECT run_id, 0, live_step::json ->> 'name', 'running', 0, timestamptz 'epoch' + interval '1 second' FROM "${name}".cairn_runs WHERE run_id = $1`,
          [runId],
        );
        await query(`ALTER TABLE "${name}".cairn_runs DROP COLUMN live_step, DROP COLUMN live_index`);
        if (to === 1) {
          for (const table of ['cairn_steps', 'cairn_signals']) {
            await query(`ALTER TABLE "${name}".${table} ADD FOREIGN KEY (run_id) REFERENCES "${name}".cairn_runs (run_id) ON DELETE CASCADE`);
          }
        }
        await query(`UPDATE "${name}".cairn_schema_version SET version = $1`, [to]);
      });
    }

    it('upgrades a version 1 schema (foreign keys from steps and signals to runs), keeping the runs', async () => {
      const name = schema();
      const first = new PostgresStore({ url, schema: name, logger: silent });
      await first.init();
      const { run } = await first.createRun(newRun({ steps: [{ name: 'a', status: 'running', attempts: 0, startedAt: new Date(1_000) }] }), {
        onConflict: 'keep',
        lease: LEASE,
      });
      await first.sendSignal(run.runId, 'go', '1');
      await first.close();
      await downgrade(name, run.runId, 1);
      const foreignKeys = () =>
        withPgClient(url, (query) =>
          query(`SELECT count(*)::int AS n FROM pg_constraint WHERE contype = 'f' AND connamespace = $1::regnamespace`, [`"${name}"`]),
        );
      expect((await foreignKeys())[0].n).toBe(2);

      const second = new PostgresStore({ url, schema: name, logger: silent });
      await second.init();
      try {
        expect((await foreignKeys())[0].n).toBe(0);
        const version = await withPgClient(url, (query) => query(`SELECT version FROM "${name}".cairn_schema_version`));
        expect(version[0].version).toBe(SCHEMA_VERSION);
        const kept = await second.getRun(run.runId);
        expect(kept?.steps).toEqual([{ name: 'a', status: 'running', attempts: 0, startedAt: new Date(1_000) }]);
        expect(await second.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, wait: { signals: ['go'] } })).toEqual({
          ok: true,
          consumedSignal: { name: 'go', payload: '1' },
        });
      } finally {
        await second.close();
      }
    });

    it('upgrades a version 2 schema with a run in flight: its running step, a row of steps, is completed in place', async () => {
      const name = schema();
      const first = new PostgresStore({ url, schema: name, logger: silent });
      await first.init();
      const a = { name: 'a', status: 'running' as const, attempts: 0, startedAt: new Date(1_000) };
      const { run } = await first.createRun(newRun({ steps: [a] }), { onConflict: 'keep', lease: LEASE });
      await first.close();
      await downgrade(name, run.runId, 2);

      const second = new PostgresStore({ url, schema: name, logger: silent });
      await second.init();
      try {
        expect((await second.getRun(run.runId))?.steps).toEqual([a]);
        const aDone = { ...a, status: 'completed' as const, attempts: 1, output: '1', finishedAt: new Date(2_000) };
        const b = { name: 'b', status: 'running' as const, attempts: 0, startedAt: new Date(2_000) };
        const steps = [{ index: 0, step: aDone }, { index: 1, step: b }];
        expect(await second.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, currentStep: 'b', steps })).toEqual({ ok: true });
        expect((await second.getRun(run.runId))?.steps).toEqual([aDone, b]);
      } finally {
        await second.close();
      }
    });

    it('upgrades a version 3 schema: existing runs are generation 1, a replacement 2', async () => {
      const name = schema();
      const first = new PostgresStore({ url, schema: name, logger: silent });
      await first.init();
      const a = { name: 'a', status: 'running' as const, attempts: 0, startedAt: new Date(1_000) };
      const { run } = await first.createRun(newRun({ steps: [a] }), { onConflict: 'keep', lease: LEASE });
      await first.close();
      await downgrade(name, run.runId, 3);

      const second = new PostgresStore({ url, schema: name, logger: silent });
      await second.init();
      try {
        const version = await withPgClient(url, (query) => query(`SELECT version FROM "${name}".cairn_schema_version`));
        expect(version[0].version).toBe(SCHEMA_VERSION);
        expect(await second.getRun(run.runId)).toMatchObject({ generation: 1, steps: [a] });
        expect(await second.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'completed', output: '1' })).toEqual({ ok: true });
        const replaced = await second.createRun(newRun({ runId: run.runId }), { onConflict: 'replace' });
        expect(replaced.run.generation).toBe(2);
        expect(await second.getRun(run.runId)).toMatchObject({ generation: 2, status: 'pending', steps: [] });
      } finally {
        await second.close();
      }
    });

    it('upgrades a version 4 schema, keeping its runs: no history yet, then histories and heartbeats work', async () => {
      const name = schema();
      const first = new PostgresStore({ url, schema: name, logger: silent });
      await first.init();
      const a = { name: 'a', status: 'completed' as const, attempts: 1, output: '1', startedAt: new Date(1_000), finishedAt: new Date(2_000) };
      const b = { name: 'b', status: 'running' as const, attempts: 0, startedAt: new Date(2_000) };
      // In flight (a row of steps and the live step), waiting with a queued signal of another name, and ended.
      const { run: inFlight } = await first.createRun(newRun({ steps: [a, b], currentStep: 'b' }), { onConflict: 'keep', lease: LEASE });
      const { run: waiting } = await first.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      await first.sendSignal(waiting.runId, 'other', '"o"');
      await first.commit(waiting.runId, waiting.leaseToken!, { leaseMs: 30_000, wait: { signals: ['go'] } });
      const { run: ended } = await first.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      await first.commit(ended.runId, ended.leaseToken!, { leaseMs: 30_000, status: 'completed', output: '"done"' });
      await first.close();
      await downgrade(name, inFlight.runId, 4);
      const columns = (table: string) =>
        withPgClient(url, (query) =>
          query(`SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, [name, table]),
        ).then((rows) => rows.map((r) => r.column_name));
      expect(await columns('cairn_runs')).not.toContain('event_seq');
      expect(await columns('cairn_steps')).not.toContain('heartbeat');
      const before = await Promise.all([inFlight, waiting, ended].map(async (r) => {
        const rows = await withPgClient(url, (query) => query(`SELECT * FROM "${name}".cairn_runs WHERE run_id = $1`, [r.runId]));
        return rows[0];
      }));

      const second = new PostgresStore({ url, schema: name, logger: silent });
      await second.init();
      try {
        const version = await withPgClient(url, (query) => query(`SELECT version FROM "${name}".cairn_schema_version`));
        expect(version[0].version).toBe(SCHEMA_VERSION);
        expect(await columns('cairn_runs')).toContain('event_seq');
        expect(await columns('cairn_steps')).toEqual(expect.arrayContaining(['heartbeat_at', 'heartbeat']));
        expect(await columns('cairn_run_events')).toEqual(['run_id', 'seq', 'body']);
        // The rows are kept as they were (event_seq 0: no history).
        for (const [i, r] of [inFlight, waiting, ended].entries()) {
          const rows = await withPgClient(url, (query) => query(`SELECT * FROM "${name}".cairn_runs WHERE run_id = $1`, [r.runId]));
          expect(rows[0]).toEqual({ ...v7Columns(before[i]), event_seq: 0, pipeline: null });
          expect(await second.listEvents(r.runId, { limit: 10 })).toEqual([]);
        }
        expect(await second.getRun(inFlight.runId)).toMatchObject({ status: 'running', currentStep: 'b', steps: [a, b] });
        expect((await second.getRun(inFlight.runId))!.corrupt).toBeUndefined();

        // Histories start at 1, heartbeats are stored on the old runs' steps.
        const at = new Date(5_000);
        const bBeat = { ...b, attempts: 1, heartbeat: { at, details: '{"n":1}' } };
        expect(await second.commit(inFlight.runId, inFlight.leaseToken!, { leaseMs: 30_000, keepInput: true, midStep: true, steps: [{ index: 1, step: bBeat }], events: ['{"t":"hb"}'] })).toEqual({
          ok: true,
          lastEventSeq: 1,
        });
        const aBeat = { ...a, heartbeat: { at } };
        const bDone = { ...bBeat, status: 'completed' as const, output: '2', finishedAt: new Date(6_000) };
        expect(
          await second.commit(inFlight.runId, inFlight.leaseToken!, {
            leaseMs: 30_000,
            status: 'completed',
            output: '2',
            steps: [{ index: 0, step: aBeat }, { index: 1, step: bDone }],
            events: ['{"t":"b done"}', '{"t":"end"}'],
          }),
        ).toEqual({ ok: true, lastEventSeq: 3 });
        expect((await second.getRun(inFlight.runId))!.steps).toEqual([aBeat, bDone]);
        expect(await second.sendSignal(waiting.runId, 'go', '"g"', '{"t":"signal"}')).toEqual({ outcome: 'ok', status: 'waiting', eventSeq: 1 });
        expect((await second.control(ended.runId, { action: 'pause' }, '{"t":"pause"}')).outcome).toBe('not-active');
        expect((await second.listEvents(inFlight.runId, { limit: 10 })).map((e) => e.seq)).toEqual([1, 2, 3]);
        expect(await second.listEvents(waiting.runId, { limit: 10 })).toEqual([{ seq: 1, body: '{"t":"signal"}' }]);
        expect(await second.listEvents(ended.runId, { limit: 10 })).toEqual([]);
        // The old signal is still there for the waiting run.
        const claimed = (await second.claimRun(waiting.runId, LEASE))!;
        expect(await second.takeSignal(waiting.runId, claimed.leaseToken, ['other'])).toEqual({ ok: true, payload: '"o"', signal: 'other', timedOut: false });
        await sleep(5);
        expect(await second.purge(['completed'], 0)).toBe(2);
        expect(await second.listEvents(inFlight.runId, { limit: 10 })).toEqual([]);
      } finally {
        await second.close();
      }
    });

    it('upgrades a version 6 schema: a waiting run\'s signal becomes a one-name wait, then child runs and signal ids work', async () => {
      const name = schema();
      const first = new PostgresStore({ url, schema: name, logger: silent });
      await first.init();
      const { run: waiting } = await first.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      await first.sendSignal(waiting.runId, 'other', '"o"');
      await first.commit(waiting.runId, waiting.leaseToken!, { leaseMs: 30_000, wait: { signals: ['go'], timeoutMs: 3_600_000 } });
      const { run: running } = await first.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      await first.close();
      await downgrade(name, waiting.runId, 6);
      const rowOf = async (runId: string) =>
        (await withPgClient(url, (query) => query(`SELECT * FROM "${name}".cairn_runs WHERE run_id = $1`, [runId])))[0];
      const before = [await rowOf(waiting.runId), await rowOf(running.runId)];
      expect(before[0].wait_signal).toBe('go');
      expect(before[1].wait_signal).toBeNull();

      const second = new PostgresStore({ url, schema: name, logger: silent });
      await second.init();
      try {
        const version = await withPgClient(url, (query) => query(`SELECT version FROM "${name}".cairn_schema_version`));
        expect(version[0].version).toBe(SCHEMA_VERSION);
        expect(await rowOf(waiting.runId)).toEqual(v7Columns(before[0]));
        expect(await rowOf(running.runId)).toEqual(v7Columns(before[1]));
        expect(await second.getRun(waiting.runId)).toMatchObject({ status: 'waiting', waitSignals: ['go'] });
        expect((await second.getRun(waiting.runId))!.children).toBeUndefined();
        // The migrated wait is woken by its signal (once per id), and the signal is handed to it.
        expect(await second.sendSignal(waiting.runId, 'go', '"g"', undefined, { id: 'k' })).toEqual({ outcome: 'ok', status: 'waiting' });
        expect(await second.sendSignal(waiting.runId, 'go', '"g2"', undefined, { id: 'k' })).toEqual({ outcome: 'noop', status: 'waiting' });
        const claimed = (await second.claimRun(waiting.runId, LEASE))!;
        expect(await second.takeSignal(waiting.runId, claimed.leaseToken, ['go', 'other'])).toEqual({ ok: true, payload: '"o"', signal: 'other', timedOut: false });
        expect(await second.takeSignal(waiting.runId, claimed.leaseToken, ['go'])).toEqual({ ok: true, payload: '"g"', signal: 'go', timedOut: false });
        // The migrated run's next input is named after its signal (the column added by the migration).
        expect(await second.getRun(waiting.runId)).toMatchObject({ nextInput: '"g"', nextInputSignal: 'go' });
        // An old run spawns children, which are listed by parent, and whose end it counts.
        const child = { runId: `child-${randomUUID()}`, workflow: 'w', version: 1, input: '1', state: '{}' };
        expect(await second.commit(running.runId, running.leaseToken!, { leaseMs: 30_000, children: { spawn: [child], endedAtLeast: 1, failFast: false } })).toEqual({ ok: true });
        expect((await second.listRuns({ parentRunId: running.runId, limit: 10 })).map((r) => r.runId)).toEqual([child.runId]);
        const c = (await second.claimRun(child.runId, LEASE))!;
        await second.commit(child.runId, c.leaseToken, { leaseMs: 30_000, status: 'completed', output: '2' });
        expect(await second.getRun(running.runId)).toMatchObject({ status: 'waiting', children: { ended: 1, failed: false, wait: { endedAtLeast: 1, failFast: false } } });
        expect((await second.getRun(running.runId))!.dueAt).toBeDefined();
        expect(await second.getRunOutcomes([child.runId])).toEqual([{ runId: child.runId, status: 'completed', output: '2', parentRunId: running.runId, held: false }]);
        expect((await second.getRunOutcomes([running.runId]))[0].childrenEnded).toBe(1);
      } finally {
        await second.close();
      }
    });

    it('upgrades a version 5 schema, keeping its runs: no pipeline for them, then pipelines and summaries work', async () => {
      const name = schema();
      const first = new PostgresStore({ url, schema: name, logger: silent });
      await first.init();
      const workflow = `wf-${randomUUID()}`;
      const { run: inFlight } = await first.createRun(newRun({ workflow, currentStep: 'b', events: ['{"t":"start"}'] }), { onConflict: 'keep', lease: LEASE });
      const { run: ended } = await first.createRun(newRun({ workflow }), { onConflict: 'keep', lease: LEASE });
      await first.commit(ended.runId, ended.leaseToken!, { leaseMs: 30_000, status: 'completed', output: '"done"' });
      await first.close();
      await downgrade(name, inFlight.runId, 5);
      const columns = (table: string) =>
        withPgClient(url, (query) =>
          query(`SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, [name, table]),
        ).then((rows) => rows.map((r) => r.column_name));
      expect(await columns('cairn_runs')).not.toContain('pipeline');
      expect(await columns('cairn_pipelines')).toEqual([]);
      const rowOf = async (runId: string) =>
        (await withPgClient(url, (query) => query(`SELECT * FROM "${name}".cairn_runs WHERE run_id = $1`, [runId])))[0];
      const before = [await rowOf(inFlight.runId), await rowOf(ended.runId)];

      const second = new PostgresStore({ url, schema: name, logger: silent });
      await second.init();
      try {
        const version = await withPgClient(url, (query) => query(`SELECT version FROM "${name}".cairn_schema_version`));
        expect(version[0].version).toBe(SCHEMA_VERSION);
        expect(await columns('cairn_runs')).toContain('pipeline');
        expect(await columns('cairn_pipelines')).toEqual(['fingerprint', 'body']);
        // The rows are kept as they were (no pipeline).
        expect(await rowOf(inFlight.runId)).toEqual({ ...v7Columns(before[0]), pipeline: null });
        expect(await rowOf(ended.runId)).toEqual({ ...v7Columns(before[1]), pipeline: null });
        expect((await second.getRun(inFlight.runId))!.pipeline).toBeUndefined();
        expect(await second.listEvents(inFlight.runId, { limit: 10 })).toEqual([{ seq: 1, body: '{"t":"start"}' }]);

        const { run: fresh } = await second.createRun(newRun({ workflow, currentStep: 'b', pipeline: 'fp-6' }), { onConflict: 'keep' });
        expect((await second.getRun(fresh.runId))!.pipeline).toBe('fp-6');
        const groups = (await second.summarizeLiveRuns()).filter((g) => g.workflow === workflow);
        expect(groups.map((g) => [g.pipeline ?? null, g.currentStep, g.runIds]).sort()).toEqual(
          [
            [null, 'b', [inFlight.runId]],
            ['fp-6', 'b', [fresh.runId]],
          ].sort(),
        );
        await second.savePipeline('fp-6', '["a","b"]');
        expect(await second.getPipelines(['fp-6'])).toEqual({ 'fp-6': '["a","b"]' });
        // A replace of an old run writes the new run's fingerprint.
        const replaced = await second.createRun(newRun({ runId: ended.runId, workflow, pipeline: 'fp-6' }), { onConflict: 'replace' });
        expect(replaced.run).toMatchObject({ generation: 2, pipeline: 'fp-6' });
        expect((await second.getRun(ended.runId))!.pipeline).toBe('fp-6');
      } finally {
        await second.close();
      }
    });

    it('keeps the running step in the run row: the start writes no step row, a checkpoint one', async () => {
      const name = schema();
      const store = new PostgresStore({ url, schema: name, logger: silent });
      await store.init();
      try {
        const stepRows = async (runId: string) =>
          withPgClient(url, (query) => query(`SELECT idx, status FROM "${name}".cairn_steps WHERE run_id = $1 ORDER BY idx`, [runId]));
        const a = { name: 'a', status: 'running' as const, attempts: 0, startedAt: new Date(1_000) };
        const { run } = await store.createRun(newRun({ steps: [a] }), { onConflict: 'keep', lease: LEASE });
        expect(await stepRows(run.runId)).toEqual([]);
        expect((await store.getRun(run.runId))?.steps).toEqual([a]);
        const aDone = { ...a, status: 'completed' as const, attempts: 1, output: '1', finishedAt: new Date(2_000) };
        const b = { name: 'b', status: 'running' as const, attempts: 0, startedAt: new Date(2_000) };
        await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, steps: [{ index: 0, step: aDone }, { index: 1, step: b }] });
        expect(await stepRows(run.runId)).toEqual([{ idx: 0, status: 'completed' }]);
        // Another instance claims it (after a lost lease) and reads both entries.
        await store.releaseLease(run.runId, run.leaseToken!);
        const [claimed] = await store.claimRuns({ owner: 'other', leaseMs: 30_000 }, 10);
        expect(claimed.steps).toEqual([aDone, b]);
        const bDone = { ...b, status: 'completed' as const, attempts: 1, output: '2', finishedAt: new Date(3_000) };
        await store.commit(run.runId, claimed.leaseToken, { leaseMs: 30_000, status: 'completed', output: '2', steps: [{ index: 1, step: bDone }] });
        expect(await stepRows(run.runId)).toEqual([{ idx: 0, status: 'completed' }, { idx: 1, status: 'completed' }]);
        const ended = await store.getRun(run.runId);
        expect(ended?.steps).toEqual([aDone, bDone]);
        const live = await withPgClient(url, (query) => query(`SELECT live_step, live_index FROM "${name}".cairn_runs WHERE run_id = $1`, [run.runId]));
        expect(live).toEqual([{ live_step: null, live_index: null }]);
      } finally {
        await store.close();
      }
    });

    it('leaves no steps or signals behind when a run is replaced or purged', async () => {
      const name = schema();
      const store = new PostgresStore({ url, schema: name, logger: silent });
      await store.init();
      try {
        const leftovers = async (runId: string) => {
          const rows = await withPgClient(url, (query) =>
            query(
              `SELECT (SELECT count(*)::int FROM "${name}".cairn_steps WHERE run_id = $1) AS steps,
                      (SELECT count(*)::int FROM "${name}".cairn_signals WHERE run_id = $1) AS signals`,
              [runId],
            ),
          );
          return rows[0];
        };
        const step = { name: 'a', status: 'completed' as const, attempts: 1, output: '1', startedAt: new Date(1_000), finishedAt: new Date(2_000) };
        const { run } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
        await store.sendSignal(run.runId, 'go', '1');
        await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, steps: [{ index: 0, step }] });
        expect(await leftovers(run.runId)).toEqual({ steps: 1, signals: 1 });

        const replaced = await store.createRun(newRun({ runId: run.runId }), { onConflict: 'replace' });
        expect(replaced.created).toBe(true);
        expect(await leftovers(run.runId)).toEqual({ steps: 0, signals: 0 });
        expect((await store.getRun(run.runId))?.steps).toEqual([]);

        const { run: done } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
        await store.commit(done.runId, done.leaseToken!, { leaseMs: 30_000, steps: [{ index: 0, step }] });
        await store.sendSignal(done.runId, 'go', '1');
        await store.commit(done.runId, done.leaseToken!, { leaseMs: 30_000, status: 'completed', output: '1' });
        await sleep(5);
        expect(await store.purge(['completed'], 0)).toBe(1);
        expect(await leftovers(done.runId)).toEqual({ steps: 0, signals: 0 });
      } finally {
        await store.close();
      }
    });

    it('is created by the TypeORM migration too, after which the store creates nothing', async () => {
      const name = schema();
      const ds = new DataSource({ type: 'postgres', url, migrations: [createCairnSchemaMigration({ schema: name })], logging: false });
      await ds.initialize();
      try {
        await ds.runMigrations();
        const logger = new CountingLogger();
        const borrowed = await newDataSource({ logger });
        try {
          const store = new PostgresStore({ dataSource: borrowed, schema: name, logger: silent });
          await store.init();
          expect(logger.queries.some((q) => /CREATE /i.test(q))).toBe(false);
          const run = newRun({ events: ['{"t":"start"}'] });
          expect(await store.createRun(run, { onConflict: 'keep' })).toMatchObject({ created: true, lastEventSeq: 1 });
          expect((await store.getRun(run.runId))?.runId).toBe(run.runId);
          expect(await store.listEvents(run.runId, { limit: 5 })).toEqual([{ seq: 1, body: '{"t":"start"}' }]);
          await store.close();
        } finally {
          await borrowed.destroy();
        }
        await ds.undoLastMigration();
        const rows = await ds.query(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1`, [name]);
        expect(rows[0].n).toBe(0);
      } finally {
        await ds.destroy();
      }
    });
  });

  describe.each([
    ['named prepared statements', true],
    ['unnamed statements', false],
  ])('transactions and round trips (%s)', (_label, preparedStatements) => {
    let ds: DataSource;
    let logger: CountingLogger;
    let store: PostgresStore;
    /** Statements sent straight through the DataSource's pg pool (the prepared-statement path). */
    const poolQueries: unknown[] = [];
    beforeAll(async () => {
      logger = new CountingLogger();
      ds = await newDataSource({ logger });
      const pool = (ds.driver as unknown as { master: { query: (...args: unknown[]) => unknown } }).master;
      const original = pool.query.bind(pool);
      pool.query = (...args: unknown[]) => {
        poolQueries.push(args[0]);
        return original(...args);
      };
      store = new PostgresStore({ dataSource: ds, schema: schema(), logger: silent, preparedStatements });
      await store.init();
    });
    afterAll(async () => {
      await store.close();
      await ds.destroy();
    });

    it('creates a run inside the caller\'s transaction: gone on rollback, there on commit', async () => {
      const rolledBack = newRun();
      await expect(
        ds.transaction(async (manager) => {
          const res = await store.createRun(rolledBack, { onConflict: 'keep', transaction: manager });
          expect(res.created).toBe(true);
          // visible inside the transaction
          expect(await manager.query('SELECT 1 FROM ' + store.names.runs + ' WHERE run_id = $1', [rolledBack.runId])).toHaveLength(1);
          throw new Error('rollback');
        }),
      ).rejects.toThrow('rollback');
      expect(await store.getRun(rolledBack.runId)).toBeUndefined();

      const committed = newRun();
      await ds.transaction(async (manager) => {
        await store.createRun(committed, { onConflict: 'keep', transaction: manager });
      });
      expect((await store.getRun(committed.runId))?.status).toBe('pending');
    });

    it('replaces a run inside the caller\'s transaction', async () => {
      const run = newRun();
      await store.createRun(run, { onConflict: 'keep' });
      await expect(
        ds.transaction(async (manager) => {
          await store.createRun({ ...run, input: '"new"' }, { onConflict: 'replace', transaction: manager });
          throw new Error('rollback');
        }),
      ).rejects.toThrow('rollback');
      expect((await store.getRun(run.runId))?.input).toBe(run.input);
      await ds.transaction(async (manager) => {
        const res = await store.createRun({ ...run, input: '"new"' }, { onConflict: 'replace', transaction: manager });
        expect(res.run.generation).toBe(2);
      });
      expect(await store.getRun(run.runId)).toMatchObject({ input: '"new"', generation: 2 });
    });

    it('serialises concurrent replacements of one id in callers\' transactions', async () => {
      const run = newRun();
      await store.createRun(run, { onConflict: 'keep' });
      const n = 20;
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          ds.transaction((manager) => store.createRun({ ...run, input: `"${i}"` }, { onConflict: 'replace', transaction: manager })),
        ),
      );
      expect(results.map((r) => r.run.generation).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 2));
      const last = results.find((r) => r.run.generation === n + 1)!;
      expect(await store.getRun(run.runId)).toMatchObject({ generation: n + 1, input: last.run.input });
    });

    it('reports an SQL error as a StoreError and goes on', async () => {
      const created = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      const bogus = store.commit(created.run.runId, created.run.leaseToken!, { leaseMs: 30_000, status: 'bogus' as never });
      await expect(bogus).rejects.toBeInstanceOf(StoreError);
      await expect(bogus).rejects.toThrow(/check constraint/i);
      expect(await store.commit(created.run.runId, created.run.leaseToken!, { leaseMs: 30_000, status: 'completed' })).toEqual({ ok: true });
    });

    it('refuses a transaction that is not an EntityManager', async () => {
      await expect(store.createRun(newRun(), { onConflict: 'keep', transaction: {} })).rejects.toBeInstanceOf(InvalidArgumentError);
    });

    async function count<T>(fn: () => Promise<T>): Promise<{ result: T; queries: unknown[] }> {
      const before = logger.queries.length;
      const beforePool = poolQueries.length;
      const result = await fn();
      const viaPool = poolQueries.slice(beforePool);
      expect(viaPool.length > 0).toBe(preparedStatements);
      return { result, queries: [...logger.queries.slice(before), ...viaPool] };
    }

    it('commits a step checkpoint in exactly one round trip', async () => {
      const t0 = new Date();
      const { result: created, queries: createQueries } = await count(() =>
        store.createRun(newRun({ steps: [{ name: 'a', status: 'running', attempts: 0, startedAt: t0 }], currentStep: 'a' }), {
          onConflict: 'keep',
          lease: LEASE,
        }),
      );
      expect(createQueries).toHaveLength(1);
      const run = created.run as StoredRun & { leaseToken: string };
      await store.sendSignal(run.runId, 'go', '"payload"');

      const { result, queries } = await count(() =>
        store.commit(run.runId, run.leaseToken, {
          leaseMs: 30_000,
          state: '{"next":"b"}',
          currentStep: 'b',
          steps: [
            { index: 0, step: { name: 'a', status: 'completed', attempts: 1, output: '1', startedAt: t0, finishedAt: new Date() } },
            { index: 1, step: { name: 'b', status: 'running', attempts: 0, startedAt: new Date() } },
          ],
          wait: { signals: ['go'], timeoutMs: 1_000 },
        }),
      );
      expect(result).toMatchObject({ ok: true, consumedSignal: { name: 'go', payload: '"payload"' } });
      expect(queries).toHaveLength(1);

      const { queries: endQueries } = await count(() => store.commit(run.runId, run.leaseToken, { leaseMs: 30_000, status: 'completed', output: '2' }));
      expect(endQueries).toHaveLength(1);
      const stored = (await store.getRun(run.runId))!;
      expect(stored.status).toBe('completed');
      expect(stored.steps.map((s) => s.name)).toEqual(['a', 'b']);
    });

    it('appends history events in the same round trip: a start, a checkpoint (fast path and full statement), a signal, a control request', async () => {
      const step = (name: string, status: 'running' | 'completed') => ({ name, status, attempts: status === 'running' ? 0 : 1 });
      const { result: created, queries: createQueries } = await count(() =>
        store.createRun(newRun({ steps: [step('a', 'running')], events: ['{"t":"start"}'] }), { onConflict: 'keep', lease: LEASE }),
      );
      expect(createQueries).toHaveLength(1);
      expect(created.lastEventSeq).toBe(1);
      const run = created.run as StoredRun & { leaseToken: string };
      const checkpoint = (i: number, extra: Partial<RunPatch> = {}) =>
        count(() =>
          store.commit(run.runId, run.leaseToken, {
            leaseMs: 30_000,
            steps: [{ index: i, step: step(`s${i}`, 'completed') }, { index: i + 1, step: step(`s${i + 1}`, 'running') }],
            events: [`{"done":${i}}`, `{"start":${i + 1}}`],
            ...extra,
          }),
        );
      const fast = await checkpoint(0);
      expect(fast.result).toEqual({ ok: true, lastEventSeq: 3 });
      expect(fast.queries).toHaveLength(1);
      expect(JSON.stringify(fast.queries)).toContain('AND NOT r.pause_requested');
      await store.sendSignal(run.runId, 'go', '"p"');
      const full = await checkpoint(1, { wait: { signals: ['go'] } });
      expect(full.result).toEqual({ ok: true, consumedSignal: { name: 'go', payload: '"p"' }, lastEventSeq: 5 });
      expect(full.queries).toHaveLength(1);
      const signal = await count(() => store.sendSignal(run.runId, 's', '1', '{"t":"signal"}'));
      expect(signal.result).toEqual({ outcome: 'ok', status: 'running', eventSeq: 6 });
      expect(signal.queries).toHaveLength(1);
      const pause = await count(() => store.control(run.runId, { action: 'pause' }, '{"t":"pause"}'));
      expect(pause.result).toEqual({ outcome: 'ok', status: 'running', eventSeq: 7 });
      expect(pause.queries).toHaveLength(1);
      expect((await store.listEvents(run.runId, { limit: 10 })).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    });

    it('writes the first events of a run in the caller\'s transaction: none on rollback', async () => {
      const rolledBack = newRun({ events: ['{"t":"start"}'] });
      await expect(
        ds.transaction(async (manager) => {
          expect(await store.createRun(rolledBack, { onConflict: 'keep', transaction: manager })).toMatchObject({ created: true, lastEventSeq: 1 });
          throw new Error('rollback');
        }),
      ).rejects.toThrow('rollback');
      expect(await store.listEvents(rolledBack.runId, { limit: 10 })).toEqual([]);
      await ds.transaction(async (manager) => {
        await store.createRun(rolledBack, { onConflict: 'keep', transaction: manager });
        await store.createRun({ ...rolledBack, events: ['{"t":"again"}'] }, { onConflict: 'replace', transaction: manager });
      });
      expect(await store.listEvents(rolledBack.runId, { limit: 10 })).toEqual([{ seq: 1, body: '{"t":"again"}' }]);
    });

    it('claims, renews, signals and controls in one round trip each', async () => {
      const workflow = `wf-${randomUUID()}`;
      await store.createRun(newRun({ workflow }), { onConflict: 'keep' });
      const { result: claimed, queries: claimQueries } = await count(() => store.claimRuns(LEASE, 10, [{ workflow, version: 1 }]));
      expect(claimed).toHaveLength(1);
      expect(claimQueries).toHaveLength(1);
      const runId = claimed[0].runId;
      expect((await count(() => store.renewLease(runId, claimed[0].leaseToken, 30_000))).queries).toHaveLength(1);
      expect((await count(() => store.sendSignal(runId, 's', '1'))).queries).toHaveLength(1);
      expect((await count(() => store.control(runId, { action: 'pause' }))).queries).toHaveLength(1);
      expect((await count(() => store.takeSignal(runId, claimed[0].leaseToken, ['s']))).queries).toHaveLength(1);
    });
  });

  describe('dashboard queries (on 20,000 runs)', () => {
    const RUNS = 20_000;
    const DAY = 24 * 3600_000;
    let ds: DataSource;
    let logger: CountingLogger;
    let store: PostgresStore;
    const now = Date.now();

    beforeAll(async () => {
      logger = new CountingLogger();
      ds = await newDataSource({ logger });
      store = new PostgresStore({ dataSource: ds, schema: schema(), logger: silent, preparedStatements: false });
      await store.init();
      // 60% in workflow 'big', 10% in each of wf-6 … wf-9; 2% failed, 1% each running, pending, waiting, sleeping, the
      // rest completed; created over the last 30 days (run-00000001 the oldest).
      await withPgClient(url, async (query) => {
        await query(
          `INSERT INTO ${store.names.runs} (run_id, workflow, version, status, input, state, created_at, updated_at, finished_at)
           SELECT 'run-' || lpad(i::text, 8, '0'), CASE WHEN i % 10 < 6 THEN 'big' ELSE 'wf-' || (i % 10) END, 1, s.status,
             '{}', '{}', c.ts, c.ts, CASE WHEN s.status IN ('completed','failed') THEN c.ts END
           FROM generate_series(1, ${RUNS}) i
           CROSS JOIN LATERAL (SELECT CASE WHEN i % 100 < 2 THEN 'failed' WHEN i % 100 = 2 THEN 'running'
             WHEN i % 100 = 3 THEN 'pending' WHEN i % 100 = 4 THEN 'waiting' WHEN i % 100 = 5 THEN 'sleeping'
             ELSE 'completed' END AS status) s
           CROSS JOIN LATERAL (SELECT date_trunc('milliseconds', now() - (${RUNS} - i) * (interval '30 days' / ${RUNS})) AS ts) c`,
        );
        await query(`VACUUM ANALYZE ${store.names.runs}`);
      });
    });
    afterAll(async () => {
      await store.close();
      await ds.destroy();
    });

    async function roundTrips<T>(fn: () => Promise<T>): Promise<{ result: T; queries: number }> {
      const before = logger.queries.length;
      const result = await fn();
      return { result, queries: logger.queries.length - before };
    }

    it('counts runs per status in one round trip, fast', async () => {
      const started = performance.now();
      const all = await roundTrips(() => store.countRuns({}));
      const elapsed = performance.now() - started;
      expect(all).toEqual({
        result: { completed: 18_800, failed: 400, running: 200, pending: 200, waiting: 200, sleeping: 200 },
        queries: 1,
      });
      // NOTE: ~4 ms here (~15–20 ms on 100,000 runs); the bound only catches a plan gone badly wrong.
      expect(elapsed).toBeLessThan(200);
      expect(await roundTrips(() => store.countRuns({ workflow: 'wf-7' }))).toEqual({ result: { completed: 2_000 }, queries: 1 });
      expect(await store.countRuns({ workflow: 'none' })).toEqual({});
    });

    it('lists a creation-time window in one round trip, newest first', async () => {
      const from = new Date(now - 10 * DAY);
      const to = new Date(now - 9 * DAY);
      const { result, queries } = await roundTrips(() => store.listRuns({ workflow: 'wf-7', statuses: ['completed'], createdFrom: from, createdTo: to, limit: 50 }));
      expect(queries).toBe(1);
      expect(result.length).toBeGreaterThan(10);
      for (const run of result) {
        expect(run.createdAt.getTime()).toBeGreaterThanOrEqual(from.getTime());
        expect(run.createdAt.getTime()).toBeLessThan(to.getTime());
        expect(run).toMatchObject({ workflow: 'wf-7', status: 'completed' });
      }
      const times = result.map((r) => r.createdAt.getTime());
      expect(times).toEqual([...times].sort((a, b) => b - a));
      await expect(store.listRuns({ createdFrom: new Date(NaN), limit: 1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    });

    it.each([
      ['no other filter', { workflow: false, statuses: false }, [], 'list'],
      ['a workflow', { workflow: true, statuses: false }, ['wf-7'], 'workflow_list'],
      ['statuses', { workflow: false, statuses: true }, [['pending', 'sleeping']], 'status_list'],
    ] as const)('scans a list index over the creation range only, with %s', async (_label, filter, params, index) => {
      const sql = buildStatements(store.names).list({ ...filter, createdFrom: true, createdTo: true, after: false });
      const plan = await withPgClient(url, (query) =>
        query(`EXPLAIN (COSTS OFF) ${sql}`, [...params, now - 10 * DAY, now - 9 * DAY, 50]),
      );
      const text = plan.map((row) => String(row['QUERY PLAN'])).join('\n');
      expect(text).toContain(`Index Scan using cairn_runs_${index}_idx on cairn_runs r`);
      expect(text).toMatch(/Index Cond: .*\(created_at >= .*\(created_at < /);
      expect(text).not.toMatch(/Seq Scan on cairn_runs/);
    });

    it('lists queued signals and retries with a next input in one round trip each', async () => {
      const { run } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      await store.sendSignal(run.runId, 'b', '1');
      await store.sendSignal(run.runId, 'a', '2');
      await store.sendSignal(run.runId, 'b', '3');
      expect(await roundTrips(() => store.listSignals(run.runId))).toEqual({
        result: [
          { name: 'a', payload: '2' },
          { name: 'b', payload: '1' },
          { name: 'b', payload: '3' },
        ],
        queries: 1,
      });
      await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'failed', error: { name: 'Error', message: 'x' } });
      expect(await store.listSignals(run.runId)).toEqual([]);
      expect(await roundTrips(() => store.control(run.runId, { action: 'retry', nextInput: '"skip"' }))).toMatchObject({
        result: { outcome: 'ok' },
        queries: 1,
      });
      expect(await store.getRun(run.runId)).toMatchObject({ status: 'pending', nextInput: '"skip"' });
      // Without nextInput, a retry leaves the run's next input as it is.
      const { run: other } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      await store.commit(other.runId, other.leaseToken!, { leaseMs: 30_000, status: 'failed', error: { name: 'Error', message: 'x' } });
      await withPgClient(url, (query) =>
        query(`UPDATE ${store.names.runs} SET next_input = '"kept"', next_input_signal = 'k' WHERE run_id = $1`, [other.runId]),
      );
      expect((await store.control(other.runId, { action: 'retry' })).outcome).toBe('ok');
      expect(await store.getRun(other.runId)).toMatchObject({ status: 'pending', nextInput: '"kept"', nextInputSignal: 'k' });
      // With nextInput, the next input is no signal's payload any more.
      const { run: third } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      await store.commit(third.runId, third.leaseToken!, { leaseMs: 30_000, status: 'failed', error: { name: 'Error', message: 'x' } });
      await withPgClient(url, (query) =>
        query(`UPDATE ${store.names.runs} SET next_input = '"old"', next_input_signal = 'k' WHERE run_id = $1`, [third.runId]),
      );
      expect((await store.control(third.runId, { action: 'retry', nextInput: '"new"' })).outcome).toBe('ok');
      const retried = (await store.getRun(third.runId))!;
      expect(retried.nextInput).toBe('"new"');
      expect(retried.nextInputSignal).toBeUndefined();
    });

    it('names the signal of the next input through every checkpoint statement, and clears it with the input', async () => {
      const waited = async () => {
        const { run } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
        await store.sendSignal(run.runId, 'go', '"g"');
        expect(await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, wait: { signals: ['x', 'go'] } })).toMatchObject({
          ok: true,
          consumedSignal: { name: 'go', payload: '"g"' },
        });
        expect(await store.getRun(run.runId)).toMatchObject({ nextInput: '"g"', nextInputSignal: 'go' });
        return run;
      };
      // The fast path (no wait, one step row at most): kept with keepInput, cleared without.
      const a = await waited();
      await store.commit(a.runId, a.leaseToken!, { leaseMs: 30_000, keepInput: true, state: '{"s":1}' });
      expect(await store.getRun(a.runId)).toMatchObject({ nextInput: '"g"', nextInputSignal: 'go' });
      await store.commit(a.runId, a.leaseToken!, { leaseMs: 30_000, state: '{"s":2}' });
      let stored = (await store.getRun(a.runId))!;
      expect(stored.nextInput).toBeUndefined();
      expect(stored.nextInputSignal).toBeUndefined();
      // continue-as-new clears both, even with keepInput.
      const b = await waited();
      await store.commit(b.runId, b.leaseToken!, { leaseMs: 30_000, keepInput: true, restart: { input: '"again"' } });
      stored = (await store.getRun(b.runId))!;
      expect(stored.nextInput).toBeUndefined();
      expect(stored.nextInputSignal).toBeUndefined();
      // takeSignal names it, and a claim reads it.
      const c = await waited();
      await store.commit(c.runId, c.leaseToken!, { leaseMs: 30_000, wait: { signals: ['later'] } });
      await store.sendSignal(c.runId, 'later', '"l"');
      const claimed = (await store.claimRun(c.runId, LEASE))!;
      expect(claimed.nextInputSignal).toBeUndefined();
      expect(await store.takeSignal(c.runId, claimed.leaseToken, ['later'])).toMatchObject({ ok: true, signal: 'later' });
      expect(await store.getRun(c.runId)).toMatchObject({ nextInput: '"l"', nextInputSignal: 'later' });
      // a replaced run starts without one
      await store.createRun(newRun({ runId: c.runId }), { onConflict: 'replace' });
      expect((await store.getRun(c.runId))!.nextInputSignal).toBeUndefined();
    });
  });

  describe('claims by (workflow, version), behind 5,000 due runs of another version (among 55,000 runs)', () => {
    const BACKLOG = 5_000;
    const ENDED = 50_000;
    let store: PostgresStore;
    const workflow = 'orders';
    const v = (version: number, name = workflow) => ({ workflow: name, version });

    beforeAll(async () => {
      store = new PostgresStore({ url, schema: schema(), logger: silent });
      await store.init();
      // version 1: a backlog due long ago that no claimer below registers; version 2 (and 'mail' 2): due later; and
      // ended runs, as a table has them (on a table of due runs only, a seq scan and a sort may rightly win).
      await withPgClient(url, async (query) => {
        await query(
          `INSERT INTO ${store.names.runs} (run_id, workflow, version, status, input, state, created_at, updated_at, due_at)
           SELECT 'v1-' || lpad(i::text, 5, '0'), 'orders', 1, 'pending', '{}', '{}', now(), now(), now() - interval '1 hour' + i * interval '1 ms'
           FROM generate_series(1, ${BACKLOG}) i
           UNION ALL
           SELECT 'v2-' || i, 'orders', 2, 'pending', '{}', '{}', now(), now(), now() - interval '1 minute' + i * interval '1 ms'
           FROM generate_series(1, 3) i
           UNION ALL
           SELECT 'mail-' || i, 'mail', 2, 'pending', '{}', '{}', now(), now(), now() - interval '2 minutes' + i * interval '1 ms'
           FROM generate_series(1, 2) i
           UNION ALL
           SELECT 'done-' || i, 'orders', 2, 'completed', '{}', '{}', now(), now(), NULL
           FROM generate_series(1, ${ENDED}) i`,
        );
        await query(`VACUUM ANALYZE ${store.names.runs}`);
      });
    });
    afterAll(() => store.close());

    it('scans the claim index in due order with the pairs as a filter: no join, no sort', async () => {
      const sql = buildStatements(store.names);
      for (const [key, third] of [
        ['claimRunsForWorkflows', '10'],
        ['claimRunForWorkflows', `'v2-1'`],
      ] as const) {
        for (const mode of ['force_custom_plan', 'force_generic_plan']) {
          const text = await withPgClient(url, async (query) => {
            await query(`SET plan_cache_mode = ${mode}`);
            await query(`PREPARE pgv_claim(text, float8, ${key === 'claimRunForWorkflows' ? 'text' : 'integer'}, text[], integer[], text[]) AS ${sql[key]}`);
            const plan = await query(`EXPLAIN (COSTS OFF) EXECUTE pgv_claim('me', 30000, ${third}, '{orders}', '{2}', '{2:orders}')`);
            const lines = plan.map((row) => String(row['QUERY PLAN']));
            // the selection of the runs to claim (CTE c), up to its subplans (flow control: they read the counters of
            // runs with a key only); the CTEs that follow work on its few rows
            const start = lines.findIndex((l) => l.includes('CTE c'));
            const end = lines.findIndex((l, i) => i > start && /^\s*(CTE \w+|SubPlan \d+)$/.test(l));
            return lines.slice(start, end).join('\n');
          });
          expect(text).toMatch(/Filter: .*\(workflow = ANY .*\(version = ANY .*\(\(\(\(version\)::text \|\| ':'::text\) \|\| workflow\) = ANY/);
          expect(text).not.toMatch(/Join|Hash|Seq Scan|Function Scan/);
          if (key === 'claimRunsForWorkflows') {
            // per priority level (the levels from CTE lv), the due range of the claim index in due order
            expect(text).toMatch(/Nested Loop\n\s+->  CTE Scan on lv( lv_\d+)?\n/);
            expect(text).toMatch(
              /->  LockRows\n\s+->  Index Scan using cairn_runs_claim_idx on cairn_runs r(_\d+)?\n\s+Index Cond: \(\(priority = lv(_\d+)?\.priority\) AND .*\(due_at <= now\(\)\)\)\n/,
            );
            expect(text).not.toMatch(/Sort/);
          } else {
            expect(text).toMatch(/Index Scan using cairn_runs_pkey on cairn_runs r\n\s+Index Cond: \(run_id = /);
          }
        }
      }
    });

    it('claims the runs of the pairs asked for, earliest first, past the due runs of other versions', async () => {
      const started = performance.now();
      // ('mail', 1) and ('orders', 2): the runs of ('orders', 1) and ('mail', 2) have a name and a version asked for
      const claimed = await store.claimRuns(LEASE, 10, [v(1, 'mail'), v(2)]);
      const elapsed = performance.now() - started;
      expect(claimed.map((r) => [r.runId, r.version])).toEqual([
        ['v2-1', 2],
        ['v2-2', 2],
        ['v2-3', 2],
      ]);
      // NOTE: a few ms here (the claim reads the 5,000 runs ahead); the bound only catches a plan gone badly wrong.
      expect(elapsed).toBeLessThan(1_000);
      expect(await store.claimRuns(LEASE, 10, [v(2), v(3)])).toEqual([]);
      expect(await store.claimRun('v1-00001', LEASE, [v(2), v(1, 'mail')])).toBeUndefined();
      // two versions of one name, and another name: every pair is matched exactly
      const mixed = await store.claimRuns(LEASE, 4, [v(2, 'mail'), v(1)]);
      expect(mixed.map((r) => r.runId)).toEqual(['v1-00001', 'v1-00002', 'v1-00003', 'v1-00004']);
      expect((await store.claimRuns(LEASE, 10, [v(2, 'mail')])).map((r) => r.runId)).toEqual(['mail-1', 'mail-2']);
    });

    it('is not held up by rows of other versions that another transaction has locked', async () => {
      const { runs } = store.names;
      await withPgClient(url, async (query) => {
        await query(`INSERT INTO ${runs} (run_id, workflow, version, status, input, state, created_at, updated_at, due_at)
          VALUES ('v3-1', 'orders', 3, 'pending', '{}', '{}', now(), now(), now())`);
        await query('BEGIN');
        try {
          await query(`SELECT run_id FROM ${runs} WHERE workflow = 'orders' AND version = 1 FOR UPDATE`);
          const claimed = await store.claimRuns(LEASE, 10, [v(3)]);
          expect(claimed.map((r) => r.runId)).toEqual(['v3-1']);
        } finally {
          await query('ROLLBACK');
        }
      });
    });

    it('claims nothing when no pair can match a run (pairs no run can have are left out)', async () => {
      const claims = [
        store.claimRuns(LEASE, 10, []),
        store.claimRuns(LEASE, 10, [v(1.5), v(2 ** 31), { workflow: 'a\u0000b', version: 1 }]),
        store.claimRun('v1-04000', LEASE, [v(Number.NaN)]),
        store.claimOwnedRuns(LEASE, 10, [v(-(2 ** 31) - 1)]),
      ];
      expect(await Promise.all(claims)).toEqual([[], [], undefined, []]);
    });
  });

  describe('concurrency', () => {
    let store: PostgresStore;
    beforeAll(async () => {
      store = new PostgresStore({ url, schema: schema(), logger: silent });
      await store.init();
    });
    afterAll(() => store.close());

    it('does not lose a signal that commits while a commit is going to wait for it', async () => {
      const created = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      const run = created.run as StoredRun & { leaseToken: string };
      const sql = buildStatements(store.names);
      await withPgClient(url, async (query) => {
        // A sender holds the run row: its signal is not visible to the commit's snapshot.
        await query('BEGIN');
        await query(sql.sendSignal, [run.runId, 'go', '"raced"', null, null, null]);
        const commit = store.commit(run.runId, run.leaseToken, { leaseMs: 30_000, wait: { signals: ['go'] } });
        await sleep(200); // the commit has taken its snapshot and waits for the row lock
        await query('COMMIT');
        const res = await commit;
        expect(res.ok).toBe(true);
        const stored = (await store.getRun(run.runId))!;
        if (res.ok && res.consumedSignal) {
          expect(res.consumedSignal.payload).toBe('"raced"');
        } else {
          // Not consumed by the commit: the run must be due now so a claimer takes the signal at once.
          expect(stored.status).toBe('waiting');
          const woke = (await store.claimRun(run.runId, LEASE))!;
          expect(woke).toBeDefined();
          expect(await store.takeSignal(run.runId, woke.leaseToken, ['go'])).toEqual({ ok: true, payload: '"raced"', signal: 'go', timedOut: false });
        }
      });
    });

    it('creates each of many concurrent runs once, and claims each once across instances', async () => {
      const other = new PostgresStore({ url, schema: store.names.schema, logger: silent });
      await other.init();
      try {
        const workflow = `wf-${randomUUID()}`;
        const runs = Array.from({ length: 40 }, () => newRun({ workflow }));
        await Promise.all(runs.flatMap((r) => [store.createRun(r, { onConflict: 'keep' }), other.createRun(r, { onConflict: 'keep' })]));
        const claims = await Promise.all(
          Array.from({ length: 8 }, (_, i) => (i % 2 ? store : other).claimRuns({ owner: `w${i}`, leaseMs: 30_000 }, 7, [{ workflow, version: 1 }])),
        );
        const ids = claims.flat().map((r) => r.runId);
        expect(ids).toHaveLength(40);
        expect(new Set(ids).size).toBe(40);
      } finally {
        await other.close();
      }
    });
  });

  describe('replacement under load', () => {
    let store: PostgresStore;
    beforeAll(async () => {
      store = new PostgresStore({ url, schema: schema(), logger: silent });
      await store.init();
    });
    afterAll(() => store.close());

    it('lets 2,000 concurrent replacements of one id all succeed, each one generation above the one it replaced, without taking the pool', async () => {
      const base = newRun({ steps: [{ name: 'a', status: 'running', attempts: 0 }] });
      await store.createRun(base, { onConflict: 'keep', lease: LEASE });
      const bystander = newRun();
      await store.createRun(bystander, { onConflict: 'keep' });
      const n = 2_000;
      let floodDone = false;
      const flood = Promise.all(
        Array.from({ length: n }, (_, i) =>
          store.createRun(
            {
              ...base,
              input: `"${i}"`,
              // some with a finished step for the steps table (written over the old run's rows)
              steps: i % 3 === 0 ? [{ name: 'a', status: 'completed', attempts: 1, output: `"${i}"` }, { name: 'b', status: 'running', attempts: 0 }] : base.steps,
            },
            { onConflict: 'replace', lease: i % 2 === 0 ? LEASE : undefined },
          ),
        ),
      ).finally(() => (floodDone = true));
      // Other calls are not stuck behind the replacements (they queue on this instance, on one connection).
      expect((await store.getRun(bystander.runId))?.runId).toBe(bystander.runId);
      expect(floodDone).toBe(false);
      const results = await flood;
      expect(results.every((r) => r.created)).toBe(true);
      expect(results.map((r) => r.run.generation).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 2));
      const last = results.find((r) => r.run.generation === n + 1)!;
      const stored = (await store.getRun(base.runId))!;
      expect(stored).toMatchObject({ generation: n + 1, input: last.run.input, steps: last.run.steps });
      expect(stored.corrupt).toBeUndefined();
    }, 60_000);

    it('replaces in one statement, or in a transaction when a writer of the old run commits while it waits for the row', async () => {
      const counter = { n: 0 };
      const { run } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      const leftovers = async () =>
        (
          await withPgClient(url, (query) =>
            query(
              `SELECT (SELECT count(*)::int FROM ${store.names.steps} WHERE run_id = $1) AS steps,
                      (SELECT count(*)::int FROM ${store.names.signals} WHERE run_id = $1) AS signals`,
              [run.runId],
            ),
          )
        )[0];
      await withPgClient(url, async (query) => {
        // The old run's holder writes a step row and a signal arrives, committed after the replacement's snapshot.
        await query('BEGIN');
        await query(`UPDATE ${store.names.runs} SET updated_at = now(), signal_seq = signal_seq + 1 WHERE run_id = $1`, [run.runId]);
        await query(`INSERT INTO ${store.names.steps} (run_id, idx, name, status, attempts) VALUES ($1, 0, 'old', 'completed', 1)`, [run.runId]);
        await query(`INSERT INTO ${store.names.signals} (run_id, name, payload) VALUES ($1, 'go', '1')`, [run.runId]);
        const replacing = store.createRun(newRun({ runId: run.runId, input: '"new"' }), { onConflict: 'replace' });
        await sleep(200); // the replacement has taken its snapshot and waits for the row lock
        await query('COMMIT');
        expect((await replacing).run.generation).toBe(2);
      });
      expect(await leftovers()).toEqual({ steps: 0, signals: 0 });
      expect(await store.getRun(run.runId)).toMatchObject({ input: '"new"', generation: 2, steps: [] });
      // Unraced: one statement, no transaction.
      const logger = new CountingLogger();
      const ds = await newDataSource({ logger });
      try {
        const other = new PostgresStore({ dataSource: ds, schema: store.names.schema, logger: silent, preparedStatements: false });
        await other.init();
        const before = logger.queries.length;
        const res = await other.createRun(
          newRun({ runId: run.runId, steps: [{ name: 'a', status: 'completed', attempts: 1 }, { name: 'b', status: 'running', attempts: 0 }] }),
          { onConflict: 'replace' },
        );
        counter.n = logger.queries.length - before;
        expect(res.run.generation).toBe(3);
        await other.close();
      } finally {
        await ds.destroy();
      }
      expect(counter.n).toBe(1);
      expect((await store.getRun(run.runId))!.steps.map((s) => s.name)).toEqual(['a', 'b']);
    });

    it('leaves none of the old run\'s steps or signals when its lease holder writes while it is replaced', async () => {
      const { run } = await store.createRun(newRun({ steps: [{ name: 's0', status: 'running', attempts: 0 }] }), { onConflict: 'keep', lease: LEASE });
      const writes = Array.from({ length: 30 }, (_, i) =>
        Promise.all([
          store.commit(run.runId, run.leaseToken!, {
            leaseMs: 30_000,
            steps: [
              { index: i, step: { name: `s${i}`, status: 'completed', attempts: 1, output: '1' } },
              { index: i + 1, step: { name: `s${i + 1}`, status: 'running', attempts: 0 } },
            ],
          }),
          store.sendSignal(run.runId, 'go', `"${i}"`),
        ]),
      );
      const replaced = await store.createRun(newRun({ runId: run.runId, input: '"new"' }), { onConflict: 'replace' });
      await Promise.all(writes);
      expect(replaced.run.generation).toBe(2);
      const stored = (await store.getRun(run.runId))!;
      expect(stored).toMatchObject({ input: '"new"', status: 'pending', steps: [] });
      // Signals sent after the replacement belong to the new run: only those may remain.
      const claimed = (await store.claimRun(run.runId, LEASE))!;
      const steps = await withPgClient(url, (query) => query(`SELECT count(*)::int AS n FROM ${store.names.steps} WHERE run_id = $1`, [run.runId]));
      expect(steps[0].n).toBe(0);
      expect(claimed.steps).toEqual([]);
    });
  });

  describe('signals of runs that end (rule 4)', () => {
    let store: PostgresStore;
    beforeAll(async () => {
      store = new PostgresStore({ url, schema: schema(), logger: silent });
      await store.init();
    });
    afterAll(() => store.close());

    const queued = async (runId: string) =>
      (await withPgClient(url, (query) => query(`SELECT count(*)::int AS n FROM ${store.names.signals} WHERE run_id = $1`, [runId])))[0].n;

    it.each([
      ['the fast path', false],
      ['the full statement (a pause request pending)', true],
    ])('deletes the queued signals in the commit that ends the run (%s), and only then', async (_label, pause) => {
      const { run } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      for (const name of ['a', 'b', 'a']) await store.sendSignal(run.runId, name, '1');
      expect(await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, state: '{"x":1}' })).toEqual({ ok: true });
      expect(await queued(run.runId)).toBe(3);
      if (pause) expect((await store.control(run.runId, { action: 'pause' })).outcome).toBe('ok');
      expect(await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'failed', error: { name: 'E', message: 'm' } })).toEqual({ ok: true });
      expect(await queued(run.runId)).toBe(0);
      expect((await store.sendSignal(run.runId, 'a', '1')).outcome).toBe('not-active');
      expect(await queued(run.runId)).toBe(0);
    });

    it.each([
      ['the fast path', false],
      ['the full statement (a pause request pending)', true],
    ])('deletes a signal that committed while the ending commit waited for the run (%s)', async (_label, pause) => {
      const { run } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      await store.sendSignal(run.runId, 'early', '1');
      if (pause) expect((await store.control(run.runId, { action: 'pause' })).outcome).toBe('ok');
      const sql = buildStatements(store.names);
      await withPgClient(url, async (query) => {
        // A sender holds the run row: its signal is not visible to the commit's snapshot.
        await query('BEGIN');
        await query(sql.sendSignal, [run.runId, 'late', '"raced"', null, null, null]);
        const commit = store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'completed', output: '1' });
        await sleep(200); // the commit has taken its snapshot and waits for the row lock
        await query('COMMIT');
        expect(await commit).toEqual({ ok: true });
      });
      expect(await queued(run.runId)).toBe(0);
    });

    it('deletes them in a batched commit too, and keeps those of runs that go on', async () => {
      const grouped = new PostgresStore({ url, schema: store.names.schema, logger: silent, poolSize: 1 });
      await grouped.init();
      try {
        const runs = [];
        for (let i = 0; i < 6; i++) {
          const { run } = await grouped.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
          await grouped.sendSignal(run.runId, 'x', '1');
          runs.push(run);
        }
        const results = await Promise.all(
          runs.map((run, i) =>
            grouped.commit(run.runId, run.leaseToken!, i % 2 ? { leaseMs: 30_000, status: 'cancelled' } : { leaseMs: 30_000, state: '{"i":1}' }),
          ),
        );
        expect(results.every((r) => r.ok)).toBe(true);
        expect(await Promise.all(runs.map((run) => queued(run.runId)))).toEqual([1, 0, 1, 0, 1, 0]);
      } finally {
        await grouped.close();
      }
    });
  });

  describe('text PostgreSQL cannot hold, in error messages', () => {
    let store: PostgresStore;
    beforeAll(async () => {
      store = new PostgresStore({ url, schema: schema(), logger: silent });
      await store.init();
    });
    afterAll(() => store.close());

    const bad = 'nul \u0000 and a lone \uD800 surrogate';
    const kept = 'nul \uFFFD and a lone \uFFFD surrogate';

    it.each([
      ['the fast path', 1],
      ['the full statement', 2],
    ])('stores NUL and lone surrogates of step and run errors as U+FFFD instead of failing the commit (%s)', async (_label, rows) => {
      const { run } = await store.createRun(newRun({ steps: [{ name: 'a', status: 'running', attempts: 0 }] }), { onConflict: 'keep', lease: LEASE });
      const failed = { name: 'a', status: 'failed' as const, attempts: 1, error: bad };
      const steps = rows === 1 ? [{ index: 0, step: failed }] : [{ index: 0, step: failed }, { index: 1, step: { ...failed, name: 'b' } }];
      const res = await store.commit(run.runId, run.leaseToken!, {
        leaseMs: 30_000,
        status: 'failed',
        error: { name: `E${bad}`, message: bad, step: bad, phase: 'step' },
        steps,
      });
      expect(res).toEqual({ ok: true });
      const stored = (await store.getRun(run.runId))!;
      expect(stored.error).toEqual({ name: `E${kept}`, message: kept, step: kept, phase: 'step' });
      expect(stored.steps.map((s) => s.error)).toEqual(steps.map(() => kept));
      expect(stored.corrupt).toBeUndefined();
    });

    it('does so for a running step with an error (the live step) and for the steps of a new run', async () => {
      const failed = { name: 'a', status: 'failed' as const, attempts: 1, error: bad };
      const running = { name: 'b', status: 'running' as const, attempts: 1, error: bad };
      const created = await store.createRun(newRun({ steps: [failed, running] }), { onConflict: 'keep', lease: LEASE });
      expect(created.run.steps.map((s) => s.error)).toEqual([kept, kept]);
      expect((await store.getRun(created.run.runId))!.steps.map((s) => s.error)).toEqual([kept, kept]);
      const replaced = await store.createRun(newRun({ runId: created.run.runId, steps: [failed, running] }), { onConflict: 'replace' });
      expect((await store.getRun(replaced.run.runId))!.steps.map((s) => s.error)).toEqual([kept, kept]);
    });
  });

  describe('damaged rows', () => {
    let store: PostgresStore;
    beforeAll(async () => {
      store = new PostgresStore({ url, schema: schema(), logger: silent });
      await store.init();
    });
    afterAll(() => store.close());

    const damage = (sql: string, runId: string) => withPgClient(url, (query) => query(sql, [runId]));

    it('claims a batch with damaged runs among healthy ones: every run comes back, the damaged ones say why', async () => {
      const workflow = `wf-${randomUUID()}`;
      const runs = Array.from({ length: 6 }, () => newRun({ workflow, steps: [{ name: 'a', status: 'running', attempts: 0 }] }));
      for (const run of runs) await store.createRun(run, { onConflict: 'keep' });
      await damage(`UPDATE ${store.names.runs} SET live_step = 'garbage' WHERE run_id = $1`, runs[1].runId);
      await damage(`UPDATE ${store.names.runs} SET error = '[1]'::jsonb WHERE run_id = $1`, runs[4].runId);
      const claimed = await store.claimRuns(LEASE, 10, [{ workflow, version: 1 }]);
      expect(claimed.map((r) => r.runId).sort()).toEqual(runs.map((r) => r.runId).sort());
      const byId = new Map(claimed.map((r) => [r.runId, r]));
      expect(byId.get(runs[1].runId)!.corrupt).toMatch(new RegExp(`^column live_step of run "${runs[1].runId}": .*JSON`));
      expect(byId.get(runs[1].runId)!.steps).toEqual([{ name: '?', status: 'failed', attempts: 0, error: '<undecodable>' }]);
      expect(byId.get(runs[4].runId)!.corrupt).toMatch(new RegExp(`^column error of run "${runs[4].runId}": `));
      expect(byId.get(runs[4].runId)!.error).toBeUndefined();
      for (const i of [0, 2, 3, 5]) {
        expect(byId.get(runs[i].runId)!.corrupt).toBeUndefined();
        expect(byId.get(runs[i].runId)!.steps).toEqual([{ name: 'a', status: 'running', attempts: 0 }]);
      }
    });

    it('fails a run with a damaged live step through the full statement (a pause pending) without reading it', async () => {
      const { run } = await store.createRun(newRun({ steps: [{ name: 'a', status: 'running', attempts: 0 }] }), { onConflict: 'keep', lease: LEASE });
      await damage(`UPDATE ${store.names.runs} SET live_step = 'garbage' WHERE run_id = $1`, run.runId);
      expect((await store.control(run.runId, { action: 'pause' })).outcome).toBe('ok');
      const error = { name: 'CorruptRunError', message: 'damaged' };
      expect(await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'failed', error, clearCancel: true })).toEqual({ ok: true });
      expect(await store.getRun(run.runId)).toMatchObject({ status: 'failed', error });
    });

    it('heals a damaged live step that a checkpoint writes over', async () => {
      const { run } = await store.createRun(newRun({ steps: [{ name: 'a', status: 'running', attempts: 0 }] }), { onConflict: 'keep', lease: LEASE });
      await damage(`UPDATE ${store.names.runs} SET live_step = '{"v":2}' WHERE run_id = $1`, run.runId);
      expect((await store.getRun(run.runId))!.corrupt).toMatch(/column live_step/);
      const a = { name: 'a', status: 'completed' as const, attempts: 1, output: '1' };
      const b = { name: 'b', status: 'running' as const, attempts: 0 };
      expect(await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, steps: [{ index: 0, step: a }, { index: 1, step: b }] })).toEqual({ ok: true });
      const healed = (await store.getRun(run.runId))!;
      expect(healed.corrupt).toBeUndefined();
      expect(healed.steps).toEqual([a, b]);
    });
  });

  describe('absolute wake-up times', () => {
    let store: PostgresStore;
    beforeAll(async () => {
      store = new PostgresStore({ url, schema: schema(), logger: silent });
      await store.init();
    });
    afterAll(() => store.close());

    it('stores `due.at` as is through the full statement too', async () => {
      const { run } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      expect((await store.control(run.runId, { action: 'cancel', compensate: false })).outcome).toBe('ok');
      const at = new Date(Date.UTC(2031, 0, 2, 3, 4, 5, 678));
      const res = await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'sleeping', due: { at }, release: true, clearCancel: true });
      expect(res).toEqual({ ok: true });
      expect((await store.getRun(run.runId))!.dueAt).toEqual(at);
    });

    it('refuses an invalid Date', async () => {
      const { run } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      await expect(store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, due: { at: new Date(Number.NaN) } })).rejects.toBeInstanceOf(InvalidArgumentError);
    });
  });

  describe('histories (schema version 5)', () => {
    let store: PostgresStore;
    beforeAll(async () => {
      store = new PostgresStore({ url, schema: schema(), logger: silent });
      await store.init();
    });
    afterAll(() => store.close());

    /** A run's history rows as stored: how many, the first and the last seq. */
    const stored = async (runId: string) =>
      (
        await withPgClient(url, (query) =>
          query(`SELECT count(*)::int AS n, min(seq) AS first, max(seq) AS last FROM ${store.names.events} WHERE run_id = $1`, [runId]),
        )
      )[0];
    const eventSeq = async (runId: string) =>
      (await withPgClient(url, (query) => query(`SELECT event_seq FROM ${store.names.runs} WHERE run_id = $1`, [runId])))[0]?.event_seq;
    const bodies = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `{"${tag}":${i}}`);
    const LIMIT = RUN_HISTORY_LIMIT;

    it('renders nothing of histories into the statements of commits without events', () => {
      const sql = buildStatements(store.names);
      for (const key of ['commit', 'commitNoWait', 'commitFast', 'commitBatch', 'commitBatchNoWait'] as const) {
        expect(sql[key]).not.toContain('run_events');
        expect(sql[key]).not.toContain('event_seq');
        // NOTE: the events come as a text[] unnested into rows (the signal names of a wait are a text[] too).
        expect(sql[key]).not.toContain('unnest(');
      }
      for (const key of ['commitEvents', 'commitNoWaitEvents', 'commitFastEvents', 'commitBatchEvents', 'commitBatchNoWaitEvents'] as const) {
        expect(sql[key]).toContain('run_events');
        expect(sql[key]).toContain(`- ${LIMIT}`);
      }
    });

    it.each([
      ['the fast path', 'fast'],
      ['the full statement: a pause pending, midStep', 'full'],
      ['the full statement: a signal wait', 'wait'],
    ])('appends events and trims the history to RUN_HISTORY_LIMIT in the same statement (%s)', async (_label, path) => {
      const created = await store.createRun(newRun({ events: bodies(LIMIT - 1, 'c') }), { onConflict: 'keep', lease: LEASE });
      expect(created.lastEventSeq).toBe(LIMIT - 1);
      const { runId, leaseToken } = created.run as StoredRun & { leaseToken: string };
      if (path === 'full') expect((await store.control(runId, { action: 'pause' })).outcome).toBe('ok');
      const commit = async (events: string[]) => {
        if (path === 'wait') await store.sendSignal(runId, 'go', '"g"');
        const extra = path === 'full' ? { midStep: true } : path === 'wait' ? { wait: { signals: ['go'] } } : {};
        return store.commit(runId, leaseToken, { leaseMs: 30_000, events, ...extra });
      };
      expect(await commit(bodies(3, 'x'))).toMatchObject({ ok: true, lastEventSeq: LIMIT + 2 });
      expect(await stored(runId)).toEqual({ n: LIMIT, first: 3, last: LIMIT + 2 });
      expect(await commit(bodies(2, 'y'))).toMatchObject({ ok: true, lastEventSeq: LIMIT + 4 });
      expect(await stored(runId)).toEqual({ n: LIMIT, first: 5, last: LIMIT + 4 });
      expect(await eventSeq(runId)).toBe(LIMIT + 4);
      expect(await store.listEvents(runId, { limit: 2 })).toEqual([
        { seq: 5, body: '{"c":4}' },
        { seq: 6, body: '{"c":5}' },
      ]);
      expect(await store.listEvents(runId, { afterSeq: LIMIT + 1, limit: 10 })).toEqual([
        { seq: LIMIT + 2, body: '{"x":2}' },
        { seq: LIMIT + 3, body: '{"y":0}' },
        { seq: LIMIT + 4, body: '{"y":1}' },
      ]);
      if (path === 'full') {
        // midStep: the pending pause waits for the step's end.
        expect(await store.getRun(runId)).toMatchObject({ status: 'running', pauseRequested: true, leaseToken });
        expect(await store.commit(runId, leaseToken, { leaseMs: 30_000, events: ['{"end":1}'] })).toEqual({ ok: true, paused: true, lastEventSeq: LIMIT + 5 });
      }
      // A commit without events leaves the history and the counter alone.
      const before = await stored(runId);
      const plain = await store.commit(runId, leaseToken, { leaseMs: 30_000, state: '{"s":1}' });
      expect(plain.ok && plain.lastEventSeq).toBeFalsy();
      expect(await stored(runId)).toEqual(before);
    });

    it('keeps only the newest RUN_HISTORY_LIMIT events of one write that brings more (createRun, commit)', async () => {
      const created = await store.createRun(newRun({ events: bodies(LIMIT + 5, 'c') }), { onConflict: 'keep', lease: LEASE });
      expect(created.lastEventSeq).toBe(LIMIT + 5);
      const { runId, leaseToken } = created.run as StoredRun & { leaseToken: string };
      expect(await stored(runId)).toEqual({ n: LIMIT, first: 6, last: LIMIT + 5 });
      expect(await store.commit(runId, leaseToken, { leaseMs: 30_000, events: bodies(LIMIT + 2, 'x') })).toEqual({ ok: true, lastEventSeq: 2 * LIMIT + 7 });
      expect(await stored(runId)).toEqual({ n: LIMIT, first: LIMIT + 8, last: 2 * LIMIT + 7 });
      expect((await store.listEvents(runId, { limit: 1 }))[0]).toEqual({ seq: LIMIT + 8, body: '{"x":2}' });
    });

    it('appends the events of signals and control requests that apply (and trims), never of the others', async () => {
      const created = await store.createRun(newRun({ events: bodies(LIMIT, 'c') }), { onConflict: 'keep' });
      const runId = created.run.runId;
      expect(await store.sendSignal(runId, 'go', '1', '{"t":"signal"}')).toEqual({ outcome: 'ok', status: 'pending', eventSeq: LIMIT + 1 });
      expect(await store.control(runId, { action: 'pause' }, '{"t":"pause"}')).toEqual({ outcome: 'ok', status: 'pending', eventSeq: LIMIT + 2 });
      expect(await store.control(runId, { action: 'pause' }, '{"t":"again"}')).toEqual({ outcome: 'noop', status: 'paused' });
      expect(await store.control(runId, { action: 'retry' }, '{"t":"retry"}')).toEqual({ outcome: 'invalid-state', status: 'paused' });
      expect(await store.sendSignal(runId, 'go', '2')).toEqual({ outcome: 'ok', status: 'paused' });
      expect(await store.control(runId, { action: 'resume' })).toEqual({ outcome: 'ok', status: 'paused' });
      expect(await store.control(runId, { action: 'cancel', compensate: false }, '{"t":"cancel"}')).toEqual({ outcome: 'ok', status: 'pending', eventSeq: LIMIT + 3 });
      expect(await stored(runId)).toEqual({ n: LIMIT, first: 4, last: LIMIT + 3 });
      expect((await store.listEvents(runId, { afterSeq: LIMIT, limit: 10 })).map((e) => e.body)).toEqual(['{"t":"signal"}', '{"t":"pause"}', '{"t":"cancel"}']);
      expect(await store.sendSignal(`missing-${randomUUID()}`, 'go', '1', '{"t":"x"}')).toEqual({ outcome: 'not-found' });
      await expect(store.sendSignal(runId, 'go', '1', 'nul \u0000')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.control(runId, { action: 'resume' }, 'lone \uD800')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.commit(runId, 'x', { leaseMs: 1, events: ['nul \u0000'] })).rejects.toBeInstanceOf(InvalidArgumentError);
    });

    it('pages by seq and treats odd queries as the memory store does', async () => {
      const { run } = await store.createRun(newRun({ events: bodies(5, 'p') }), { onConflict: 'keep' });
      const seqs = async (afterSeq: number | undefined, limit: number) => (await store.listEvents(run.runId, { afterSeq, limit })).map((e) => e.seq);
      expect(await seqs(undefined, 10)).toEqual([1, 2, 3, 4, 5]);
      expect(await seqs(2.5, 10)).toEqual([3, 4, 5]);
      expect(await seqs(-7, 2)).toEqual([1, 2]);
      expect(await seqs(5, 10)).toEqual([]);
      expect(await seqs(2 ** 40, 10)).toEqual([]);
      expect(await seqs(0, 0)).toEqual([]);
      expect(await seqs(0, Number.POSITIVE_INFINITY)).toEqual([1, 2, 3, 4, 5]);
      await expect(store.listEvents(run.runId, { limit: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await store.listEvents('nul \u0000', { limit: 10 })).toEqual([]);
    });

    it('deletes the replaced run\'s history, in one statement or in the transaction of a raced replacement', async () => {
      const created = await store.createRun(newRun({ events: bodies(3, 'old') }), { onConflict: 'keep', lease: LEASE });
      const { runId, leaseToken } = created.run as StoredRun & { leaseToken: string };
      await store.commit(runId, leaseToken, { leaseMs: 30_000, events: bodies(2, 'more') });
      const replaced = await store.createRun(newRun({ runId, events: ['{"new":1}', '{"new":2}'] }), { onConflict: 'replace' });
      expect(replaced).toMatchObject({ created: true, lastEventSeq: 2, run: { generation: 2 } });
      expect(await store.listEvents(runId, { limit: 10 })).toEqual([
        { seq: 1, body: '{"new":1}' },
        { seq: 2, body: '{"new":2}' },
      ]);
      expect(await eventSeq(runId)).toBe(2);
      // Raced: a writer of the old run appends an event after the replacement's snapshot.
      await withPgClient(url, async (query) => {
        await query('BEGIN');
        await query(`UPDATE ${store.names.runs} SET event_seq = event_seq + 1, updated_at = now() WHERE run_id = $1`, [runId]);
        await query(`INSERT INTO ${store.names.events} (run_id, seq, body) VALUES ($1, 3, '{"old":3}')`, [runId]);
        const replacing = store.createRun(newRun({ runId, events: ['{"third":1}'] }), { onConflict: 'replace' });
        await sleep(200);
        await query('COMMIT');
        expect(await replacing).toMatchObject({ created: true, lastEventSeq: 1, run: { generation: 3 } });
      });
      expect(await store.listEvents(runId, { limit: 10 })).toEqual([{ seq: 1, body: '{"third":1}' }]);
      expect(await stored(runId)).toEqual({ n: 1, first: 1, last: 1 });
      // Without events: none left, and the next ones start at 1.
      const bare = await store.createRun(newRun({ runId }), { onConflict: 'replace', lease: LEASE });
      expect(bare.lastEventSeq).toBeUndefined();
      expect(await stored(runId)).toEqual({ n: 0, first: null, last: null });
      expect(await store.commit(runId, bare.run.leaseToken!, { leaseMs: 30_000, events: ['{"a":1}'] })).toEqual({ ok: true, lastEventSeq: 1 });
      // keep: the existing run's history is left alone, and no seq is reported
      const kept = await store.createRun(newRun({ runId, events: ['{"ignored":1}'] }), { onConflict: 'keep' });
      expect(kept.created).toBe(false);
      expect(kept.lastEventSeq).toBeUndefined();
      expect(await store.listEvents(runId, { limit: 10 })).toEqual([{ seq: 1, body: '{"a":1}' }]);
    });

    it('writes the events of group-commit batches, each run its own, none of a fenced-out commit, trimmed', async () => {
      const grouped = new PostgresStore({ url, schema: store.names.schema, logger: silent, poolSize: 1 });
      await grouped.init();
      const texts: string[] = [];
      const pool = (grouped.dataSource!.driver as unknown as { master: { query: (...a: unknown[]) => unknown } }).master;
      const original = pool.query.bind(pool);
      pool.query = (...args: unknown[]) => {
        const first = args[0] as string | { text?: string };
        texts.push(typeof first === 'string' ? first : String(first?.text));
        return original(...args);
      };
      try {
        const beat = { at: new Date(4_000), details: '{"pct":50}' };
        const runs: (StoredRun & { leaseToken: string })[] = [];
        for (let i = 0; i < 8; i++) {
          const events = i === 5 ? bodies(LIMIT, 'full') : [`{"start":${i}}`];
          const { run } = await grouped.createRun(newRun({ events, steps: [{ name: 'a', status: 'running', attempts: 0 }] }), { onConflict: 'keep', lease: LEASE });
          runs.push(run as StoredRun & { leaseToken: string });
        }
        await grouped.sendSignal(runs[6].runId, 'go', '"payload"');
        const patchOf = (i: number): RunPatch => {
          const base: RunPatch = {
            leaseMs: 30_000,
            state: `{"i":${i}}`,
            steps: [{ index: 0, step: { name: 'a', status: 'running', attempts: 1, heartbeat: beat } }],
          };
          if (i % 2 === 0 || i === 3 || i === 5) base.events = [`{"e":${i},"n":1}`, `{"e":${i},"n":2}`];
          if (i === 6) base.wait = { signals: ['go'] };
          if (i === 7) Object.assign(base, { status: 'completed', output: '1' });
          return base;
        };
        const before = texts.length;
        // The first commit takes the only slot; the others queue up and go together.
        const results = await Promise.all(runs.map((run, i) => grouped.commit(run.runId, i === 3 ? 'wrong' : run.leaseToken, patchOf(i))));
        const batches = texts.slice(before).filter((t) => t.includes('json_to_recordset($1::json)'));
        expect(batches.length).toBeGreaterThan(0);
        expect(batches.some((t) => t.includes('unnest(p.p_events)'))).toBe(true);
        results.forEach((result, i) => {
          if (i === 3) expect(result).toEqual({ ok: false });
          else if (i === 5) expect(result).toEqual({ ok: true, lastEventSeq: LIMIT + 2 });
          else if (i === 6) expect(result).toEqual({ ok: true, consumedSignal: { name: 'go', payload: '"payload"' }, lastEventSeq: 3 });
          else if (i % 2 === 0) expect(result).toEqual({ ok: true, lastEventSeq: 3 });
          else expect(result).toEqual({ ok: true });
        });
        for (const [i, run] of runs.entries()) {
          const seqs = (await grouped.listEvents(run.runId, { limit: 2 * LIMIT })).map((e) => e.body);
          if (i === 5) {
            expect(await stored(run.runId)).toEqual({ n: LIMIT, first: 3, last: LIMIT + 2 });
          } else {
            const expected = [`{"start":${i}}`, ...(i % 2 === 0 ? [`{"e":${i},"n":1}`, `{"e":${i},"n":2}`] : [])];
            expect(seqs).toEqual(expected);
            expect(await eventSeq(run.runId)).toBe(expected.length);
          }
          const read = (await grouped.getRun(run.runId))!;
          expect(read.corrupt).toBeUndefined();
          expect(read.steps[0].heartbeat).toEqual(i === 3 ? undefined : beat);
        }
      } finally {
        await grouped.close();
      }
    });
  });

  describe('heartbeats and handed-over inputs (schema version 5)', () => {
    let store: PostgresStore;
    beforeAll(async () => {
      store = new PostgresStore({ url, schema: schema(), logger: silent });
      await store.init();
    });
    afterAll(() => store.close());

    const stepRow = async (runId: string, idx: number) =>
      (
        await withPgClient(url, (query) =>
          query(`SELECT status, (extract(epoch FROM heartbeat_at) * 1000)::float8 AS hb, heartbeat FROM ${store.names.steps} WHERE run_id = $1 AND idx = $2`, [runId, idx]),
        )
      )[0];

    it('keeps a heartbeat in the live step, in steps rows, and when the live step moves to a row', async () => {
      const beat = (ms: number, details?: string) => (details === undefined ? { at: new Date(ms) } : { at: new Date(ms), details });
      const a = { name: 'a', status: 'running' as const, attempts: 0, startedAt: new Date(1_000), heartbeat: beat(1_500, '"first"') };
      const created = await store.createRun(newRun({ steps: [a] }), { onConflict: 'keep', lease: LEASE });
      expect(created.run.steps).toEqual([a]);
      const { runId, leaseToken } = created.run as StoredRun & { leaseToken: string };
      expect((await store.getRun(runId))!.steps).toEqual([a]);
      // fast path, live step
      const a2 = { ...a, heartbeat: beat(2_000) };
      expect(await store.commit(runId, leaseToken, { leaseMs: 30_000, midStep: true, keepInput: true, steps: [{ index: 0, step: a2 }] })).toEqual({ ok: true });
      expect((await store.getRun(runId))!.steps).toEqual([a2]);
      // starting entry 1 without writing entry 0: the full statement moves the live step (with its heartbeat) to a row
      const b = { name: 'b', status: 'running' as const, attempts: 0, heartbeat: beat(3_000, '{"x":"ünï 🚀"}') };
      expect(await store.commit(runId, leaseToken, { leaseMs: 30_000, steps: [{ index: 1, step: b }] })).toEqual({ ok: true });
      expect(await stepRow(runId, 0)).toEqual({ status: 'running', hb: 2_000, heartbeat: null });
      expect((await store.getRun(runId))!.steps).toEqual([a2, b]);
      // a completed entry written as a row (with entry 2 live), through the fast path's plain parameters
      const bDone = { ...b, status: 'completed' as const, attempts: 1, output: '1' };
      const c = { name: 'c', status: 'running' as const, attempts: 0 };
      expect(await store.commit(runId, leaseToken, { leaseMs: 30_000, steps: [{ index: 1, step: bDone }, { index: 2, step: c }] })).toEqual({ ok: true });
      expect(await stepRow(runId, 1)).toEqual({ status: 'completed', hb: 3_000, heartbeat: '{"x":"ünï 🚀"}' });
      // and through the full statement's JSON rows
      const aDone = { ...a2, status: 'completed' as const, attempts: 1, heartbeat: beat(4_000, '"last"') };
      const cDone = { ...c, status: 'completed' as const, attempts: 1 };
      expect(
        await store.commit(runId, leaseToken, { leaseMs: 30_000, status: 'completed', steps: [{ index: 0, step: aDone }, { index: 2, step: cDone }] }),
      ).toEqual({ ok: true });
      expect(await stepRow(runId, 0)).toEqual({ status: 'completed', hb: 4_000, heartbeat: '"last"' });
      expect((await store.getRun(runId))!.steps).toEqual([aDone, bDone, cDone]);
    });

    it('refuses a heartbeat time that is not a valid Date', async () => {
      const { run } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
      const step = { name: 'a', status: 'running' as const, attempts: 0, heartbeat: { at: new Date(Number.NaN) } };
      await expect(store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, steps: [{ index: 0, step }] })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.createRun(newRun({ steps: [step] }), { onConflict: 'keep' })).rejects.toBeInstanceOf(InvalidArgumentError);
    });

    it('names a damaged heartbeat in `corrupt`', async () => {
      const damaged = async (sql: string[]) => {
        const { run } = await store.createRun(newRun({ steps: [{ name: 'a', status: 'running', attempts: 0 }] }), { onConflict: 'keep' });
        await withPgClient(url, async (query) => {
          for (const text of sql) await query(text, [run.runId]);
        });
        return (await store.getRun(run.runId))!;
      };
      const live = await damaged([`UPDATE ${store.names.runs} SET live_step = (live_step::jsonb || '{"hb":"soon"}'::jsonb)::text WHERE run_id = $1`]);
      expect(live.corrupt).toMatch(/^column live_step of run .*: the heartbeat time is not a number/);
      expect(live.steps).toEqual([{ name: '?', status: 'failed', attempts: 0, error: '<undecodable>' }]);
      const row = await damaged([
        `UPDATE ${store.names.runs} SET live_step = NULL, live_index = NULL WHERE run_id = $1`,
        `INSERT INTO ${store.names.steps} (run_id, idx, name, status, attempts, heartbeat) VALUES ($1, 0, 'a', 'running', 0, '1')`,
      ]);
      expect(row.corrupt).toMatch(/^step 0 of run .*: heartbeat details without a heartbeat time/);
    });

    it.each([
      ['the fast path', 'fast'],
      ['the full statement', 'full'],
      ['a group-commit batch', 'batch'],
    ])('keeps the handed-over input through commits with keepInput, and clears it otherwise (%s)', async (_label, path) => {
      const target = path === 'batch' ? new PostgresStore({ url, schema: store.names.schema, logger: silent, poolSize: 1 }) : store;
      await target.init();
      try {
        const { run } = await target.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
        const token = run.leaseToken!;
        await target.sendSignal(run.runId, 'go', '"in"');
        expect(await target.commit(run.runId, token, { leaseMs: 30_000, wait: { signals: ['go'] } })).toEqual({ ok: true, consumedSignal: { name: 'go', payload: '"in"' } });
        if (path === 'full') expect((await target.control(run.runId, { action: 'pause' })).outcome).toBe('ok');
        const commit = async (keepInput: boolean) => {
          const patch: RunPatch = { leaseMs: 30_000, keepInput, midStep: path === 'full', state: `{"k":${keepInput}}` };
          if (path !== 'batch') return target.commit(run.runId, token, patch);
          // Two other runs' commits queue with it (the first takes the only slot).
          const others = await Promise.all([1, 2].map(async () => (await target.createRun(newRun(), { onConflict: 'keep', lease: LEASE })).run));
          const [, result] = await Promise.all([
            target.commit(others[0].runId, others[0].leaseToken!, { leaseMs: 30_000 }),
            target.commit(run.runId, token, patch),
            target.commit(others[1].runId, others[1].leaseToken!, { leaseMs: 30_000 }),
          ]);
          return result;
        };
        expect(await commit(true)).toEqual({ ok: true });
        expect((await target.getRun(run.runId))!.nextInput).toBe('"in"');
        expect(await commit(false)).toEqual({ ok: true });
        expect((await target.getRun(run.runId))!.nextInput).toBeUndefined();
      } finally {
        if (target !== store) await target.close();
      }
    });
  });

  describe('child runs (schema version 7)', () => {
    it('spawns thousands of children in the parent\'s one statement, and a child\'s end updates its parent in its own; ready events for both', async () => {
      const name = schema();
      const store = new PostgresStore({ url, schema: name, logger: silent });
      const listener = new PostgresStore({ url, schema: name, logger: silent });
      await Promise.all([store.init(), listener.init()]);
      const seen: StoreEvent[] = [];
      const unsubscribe = await listener.subscribe((e) => seen.push(e));
      const counter = { n: 0 };
      const pool = (store.dataSource!.driver as unknown as { master: { query: (...a: unknown[]) => unknown } }).master;
      const original = pool.query.bind(pool);
      pool.query = (...args: unknown[]) => {
        counter.n++;
        return original(...args);
      };
      try {
        const { run: parent } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
        const spawn = Array.from({ length: 3_000 }, (_, i) => ({
          runId: `${parent.runId}-c${i}`,
          workflow: 'child',
          version: 1,
          input: `${i}`,
          state: '{}',
          events: ['{"t":"started"}'],
          held: i >= 2,
        }));
        let before = counter.n;
        const t0 = Date.now();
        expect(
          await store.commit(parent.runId, parent.leaseToken!, { leaseMs: 30_000, children: { spawn, release: [spawn[2].runId], endedAtLeast: 2, failFast: true } }),
        ).toEqual({ ok: true });
        const spawnMs = Date.now() - t0;
        expect(counter.n - before).toBe(1);
        expect(spawnMs).toBeLessThan(5_000);
        expect(await store.getRun(parent.runId)).toMatchObject({ status: 'waiting', children: { ended: 0, failed: false, wait: { endedAtLeast: 2, failFast: true } } });
        expect((await store.getRun(parent.runId))!.dueAt).toBeUndefined();
        expect(await store.listEvents(spawn[5].runId, { limit: 5 })).toEqual([{ seq: 1, body: '{"t":"started"}' }]);
        const outcomes = await store.getRunOutcomes(spawn.slice(0, 4).map((c) => c.runId));
        expect(outcomes.map((o) => [o.runId, o.held]).sort()).toEqual(spawn.slice(0, 4).map((c, i) => [c.runId, i === 3]));
        // Ready events: the two due children and the released one (not the held ones).
        const ready = () => new Set(seen.filter((e) => e.type === 'ready').map((e) => (e as { runId: string }).runId));
        await waitFor(() => ready().size >= 3);
        expect([...ready()].sort()).toEqual(spawn.slice(0, 3).map((c) => c.runId).sort());
        expect((await store.listRuns({ parentRunId: parent.runId, limit: 5_000 })).length).toBe(3_000);

        // A child's end: one statement, which counts it on the parent; a failed one wakes it (failFast).
        const child = (await store.claimRun(spawn[0].runId, LEASE))!;
        before = counter.n;
        expect(await store.commit(child.runId, child.leaseToken, { leaseMs: 30_000, status: 'failed', error: { name: 'E', message: 'no' } })).toEqual({ ok: true });
        expect(counter.n - before).toBe(1);
        const woken = (await store.getRun(parent.runId))!;
        expect(woken).toMatchObject({ status: 'waiting', children: { ended: 1, failed: true } });
        expect(woken.dueAt!.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
        await waitFor(() => ready().has(parent.runId));
      } finally {
        pool.query = original;
        await unsubscribe();
        await Promise.all([store.close(), listener.close()]);
      }
    }, 60_000);

    /**
     * The lost wake-up of an absolute counter: a child that ends between its parent's snapshot and the parent's write
     * must still be counted. A transaction of the test's holds a row lock so that both statements are under way (the
     * parent's with its snapshot taken) before either writes; which one gets the row first then varies.
     */
    describe('a child end racing with its parent\'s commit', () => {
      const waiters = (name: string) =>
        withPgClient(url, async (query) =>
          Number(
            (
              await query(`SELECT count(*)::integer AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position($1 in query) > 0`, [
                `"${name}".`,
              ])
            )[0].n,
          ),
        );
      const untilWaiting = async (name: string, n: number) => {
        const deadline = Date.now() + 10_000;
        while ((await waiters(name)) < n) {
          if (Date.now() > deadline) throw new Error(`fewer than ${n} statements waiting for a lock`);
          await sleep(5);
        }
      };
      /** Runs `race` while a transaction of the test's holds `runId`'s row, once `waiting` statements wait for it. */
      const underLock = async <T>(name: string, runId: string, waiting: number, race: () => Promise<T>): Promise<T> =>
        withPgClient(url, async (query) => {
          await query('BEGIN');
          await query(`SELECT 1 FROM "${name}".cairn_runs WHERE run_id = $1 FOR UPDATE`, [runId]);
          const racing = race();
          racing.catch(() => undefined);
          try {
            await untilWaiting(name, waiting);
          } finally {
            await query('COMMIT');
          }
          return racing;
        });

      /**
       * Starts `a`, then `b` once `a` waits for the locked row, and releases the row once both wait: `a` gets it first.
       */
      const inOrder = <A, B>(name: string, lockedRunId: string, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> =>
        underLock(name, lockedRunId, 2, async () => {
          const first = a();
          first.catch(() => undefined);
          await untilWaiting(name, 1);
          return Promise.all([first, b()]);
        });

      for (const childFirst of [false, true]) {
        const order = childFirst ? 'the child\'s end first' : 'the parent\'s commit first';
        it(`counts an end of the parent's child while the parent waits again (rejoin), ${order}: never overwritten`, async () => {
          const name = schema();
          const parents = new PostgresStore({ url, schema: name, logger: silent });
          const children = new PostgresStore({ url, schema: name, logger: silent });
          await Promise.all([parents.init(), children.init()]);
          try {
            for (let i = 0; i < 3; i++) {
              const { run: parent } = await parents.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
              const a = { runId: `${parent.runId}-a`, workflow: 'w', version: 1, input: '1', state: '{}' };
              const spawn = { leaseMs: 30_000, children: { spawn: [a], endedAtLeast: 0, failFast: false } };
              expect(await parents.commit(parent.runId, parent.leaseToken!, spawn)).toEqual({ ok: true, childrenReady: true });
              const mine = (await parents.getRunOutcomes([parent.runId, a.runId])).find((o) => o.runId === parent.runId)!;
              expect(mine.childrenEnded).toBe(0);
              const claimed = (await children.claimRun(a.runId, LEASE))!;
              // Either way the parent's commit reads the child live (its snapshot is taken before the end commits).
              const wait = () => parents.commit(parent.runId, parent.leaseToken!, { leaseMs: 30_000, children: { endedAtLeast: mine.childrenEnded! + 1, failFast: false } });
              const end = () => children.commit(a.runId, claimed.leaseToken, { leaseMs: 30_000, status: 'completed', output: '2' });
              const [waits, ends] = childFirst
                ? ((await inOrder(name, parent.runId, end, wait)).reverse() as [Awaited<ReturnType<typeof wait>>, Awaited<ReturnType<typeof end>>])
                : await inOrder(name, parent.runId, wait, end);
              expect(ends).toEqual({ ok: true });
              const after = (await parents.getRun(parent.runId))!;
              expect(after.children?.ended).toBe(1);
              if (childFirst) {
                // The end was counted before the parent's commit locked its row: the commit sees it and goes on.
                expect(waits).toEqual({ ok: true, childrenReady: true });
                expect(after.status).toBe('running');
              } else {
                // The end came after the parent's commit: it wakes the parent.
                expect(waits).toEqual({ ok: true });
                expect(after).toMatchObject({ status: 'waiting', dueAt: expect.any(Date) });
              }
            }
          } finally {
            await Promise.all([parents.close(), children.close()]);
          }
        }, 60_000);

        it(`counts a parentless run that ends while the parent spawns (links) it, ${order}`, async () => {
          const name = schema();
          const parents = new PostgresStore({ url, schema: name, logger: silent });
          const children = new PostgresStore({ url, schema: name, logger: silent });
          await Promise.all([parents.init(), children.init()]);
          try {
            for (let i = 0; i < 3; i++) {
              const { run: parent } = await parents.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
              const { run: orphan } = await children.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
              const spec = { runId: orphan.runId, workflow: 'w', version: 1, input: '1', state: '{}' };
              // The parent's commit locks its own row, then waits for the run's (to link it).
              const spawn = () => parents.commit(parent.runId, parent.leaseToken!, { leaseMs: 30_000, children: { spawn: [spec], endedAtLeast: 1, failFast: false } });
              const end = () => children.commit(orphan.runId, orphan.leaseToken!, { leaseMs: 30_000, status: 'completed', output: '2' });
              const [spawns, ends] = childFirst
                ? ((await inOrder(name, orphan.runId, end, spawn)).reverse() as [Awaited<ReturnType<typeof spawn>>, Awaited<ReturnType<typeof end>>])
                : await inOrder(name, orphan.runId, spawn, end);
              expect(ends).toEqual({ ok: true });
              expect((await children.getRun(orphan.runId))!.parentRunId).toBe(parent.runId);
              const after = (await parents.getRun(parent.runId))!;
              expect(after.children?.ended).toBe(1);
              if (childFirst) {
                // It ended without a parent; the link (re-checked on its newest row) counts it as ended now.
                expect(spawns).toEqual({ ok: true, childrenReady: true });
                expect(after.status).toBe('running');
              } else {
                // Linked live, then its end (re-checked on the parent's newest row, which has children state) wakes it.
                expect(spawns).toEqual({ ok: true });
                expect(after).toMatchObject({ status: 'waiting', dueAt: expect.any(Date) });
              }
            }
          } finally {
            await Promise.all([parents.close(), children.close()]);
          }
        }, 60_000);
      }
    });
  });

  describe('publish', () => {
    it('broadcasts a message to every instance listening, this one included, whatever its bytes up to PUBLISH_MAX_BYTES', async () => {
      const name = schema();
      const a = new PostgresStore({ url, schema: name, logger: silent });
      const b = new PostgresStore({ url, schema: name, logger: silent });
      const other = new PostgresStore({ url, schema: schema(), logger: silent });
      await Promise.all([a.init(), b.init(), other.init()]);
      const seen = { a: [] as StoreEvent[], b: [] as StoreEvent[], other: [] as StoreEvent[] };
      const unsubscribe = await Promise.all([a.subscribe((e) => seen.a.push(e)), b.subscribe((e) => seen.b.push(e)), other.subscribe((e) => seen.other.push(e))]);
      try {
        const messages = [
          '"'.repeat(PUBLISH_MAX_BYTES), // JSON-escaped, twice as long: it is not sent as JSON
          'é'.repeat(PUBLISH_MAX_BYTES / 2),
          '',
          '{"type":"ready","runId":"not-a-run-event"}',
          `it's \\ "quoted" \n ${'🚀'.repeat(10)}`,
        ];
        for (const body of messages) await a.publish(body);
        const received = (events: StoreEvent[]) => events.filter((e) => e.type === 'message').map((e) => (e as { body: string }).body);
        await waitFor(() => received(seen.a).length === messages.length && received(seen.b).length === messages.length);
        expect(received(seen.a)).toEqual(messages);
        expect(received(seen.b)).toEqual(messages);
        expect(seen.b.some((e) => e.type === 'ready')).toBe(false);
        await sleep(100);
        expect(seen.other).toEqual([]);

        await expect(a.publish('é'.repeat(PUBLISH_MAX_BYTES / 2 + 1))).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(a.publish('nul \u0000')).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(a.publish('lone \uDC00')).rejects.toBeInstanceOf(InvalidArgumentError);
      } finally {
        await Promise.all(unsubscribe.map((u) => u()));
        await Promise.all([a.close(), b.close(), other.close()]);
      }
    });

    it('delivers its own messages in-process when the connection cannot LISTEN', async () => {
      const store = new PostgresStore({ url, schema: schema(), logger: silent });
      await store.init();
      try {
        const client = (store as unknown as { client: { listen?: unknown } }).client;
        client.listen = undefined;
        const seen: StoreEvent[] = [];
        const unsubscribe = await store.subscribe((e) => seen.push(e));
        await store.publish('local');
        await waitFor(() => seen.length > 0);
        expect(seen).toEqual([{ type: 'message', body: 'local' }]);
        await unsubscribe();
      } finally {
        await store.close();
      }
    });
  });

  describe('events', () => {
    it('delivers events from one instance to another over LISTEN/NOTIFY, and reconnects', async () => {
      const name = schema();
      const a = new PostgresStore({ url, schema: name, logger: silent });
      const b = new PostgresStore({ url, schema: name, logger: silent });
      await Promise.all([a.init(), b.init()]);
      const events: StoreEvent[] = [];
      const unsubscribe = await b.subscribe((e) => events.push(e));
      try {
        const run = newRun();
        await a.createRun(run, { onConflict: 'keep' });
        await waitFor(() => events.some((e) => e.type === 'ready' && e.runId === run.runId));
        const claimed = (await a.claimRun(run.runId, LEASE))!;
        await a.control(run.runId, { action: 'pause' });
        await waitFor(() => events.some((e) => e.type === 'control' && e.runId === run.runId));

        // Rolled back changes send nothing.
        const ds = a.dataSource!;
        const ghost = newRun();
        await ds
          .transaction(async (manager) => {
            await a.createRun(ghost, { onConflict: 'keep', transaction: manager });
            throw new Error('rollback');
          })
          .catch(() => undefined);

        // Kill the LISTEN connection: the store reconnects and events flow again.
        const listeners = (sql: string) =>
          withPgClient(url, (query) =>
            query(`${sql} FROM pg_stat_activity WHERE application_name = 'nestjs-cairn-listener' AND query ILIKE $1`, [`%${b.names.channel}%`]),
          );
        expect(await listeners('SELECT pg_terminate_backend(pid)')).toHaveLength(1);
        const deadline = Date.now() + 5_000;
        while ((await listeners('SELECT pid')).length === 0) {
          if (Date.now() > deadline) throw new Error('the LISTEN connection did not come back');
          await sleep(50);
        }
        await a.commit(run.runId, claimed.leaseToken, { leaseMs: 30_000, status: 'completed' });
        await waitFor(() => events.some((e) => e.type === 'finished' && e.runId === run.runId));
        expect(events.some((e) => 'runId' in e && e.runId === ghost.runId)).toBe(false);
      } finally {
        await unsubscribe();
        await Promise.all([a.close(), b.close()]);
      }
    });
  });
});
