import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidArgumentError, StoreError } from '../../src/errors/errors.js';
import { createPgliteStore, PGLITE_LOCK_FILE } from '../../src/store/postgres/pglite.js';
import type { SqlClient } from '../../src/store/postgres/postgres.client.js';
import { SCHEMA_VERSION } from '../../src/store/postgres/postgres.schema.js';
import type { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { RUN_HISTORY_LIMIT } from '../../src/store/workflow-store.interface.js';
import { newRun } from '../support/runs.js';


async function initError(store: PostgresStore): Promise<unknown> {
  return store.init().then(
    () => undefined,
    (e: unknown) => e,
  );
}

function waitExit(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.once('exit', () => done());
  });
}

describe('PGlite store: one app per data folder', () => {
  let root: string;
  let dataDir: string;
  const lockFile = () => join(dataDir, PGLITE_LOCK_FILE);
  const runId = `kept-${randomUUID()}`;

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'cairn-pglite-lock-'));
    dataDir = join(root, 'data dir with spaces');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('refuses a second open of the same folder (same process), naming it; reopens after close with the data kept', async () => {
    const first = createPgliteStore({ dataDir });
    await first.init();
    expect(first.name).toBe('pglite');
    expect(readFileSync(lockFile(), 'utf8').split('\n')[0]).toBe(String(process.pid));
    await first.createRun(newRun({ runId }), { onConflict: 'keep' });

    const second = createPgliteStore({ dataDir });
    const error = await initError(second);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as Error).message).toContain(resolve(dataDir));

    await first.close();
    expect(existsSync(lockFile())).toBe(false);
    await second.init();
    expect((await second.getRun(runId))?.runId).toBe(runId);
    await second.close();
  }, 30_000);

  it('refuses a folder held by another live process, and takes over the lock once that process is gone', async () => {
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(lockFile(), `${holder.pid}\n${hostname()}\n`);
      const blocked = createPgliteStore({ dataDir });
      const error = await initError(blocked);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as Error).message).toContain(resolve(dataDir));
      expect((error as Error).message).toContain(String(holder.pid));
    } finally {
      holder.kill('SIGKILL');
      await waitExit(holder);
    }
    const store = createPgliteStore({ dataDir });
    await store.init();
    expect((await store.getRun(runId))?.runId).toBe(runId);
    await store.close();
  }, 30_000);

  it('opens a folder whose previous app was killed (stale lock, crash recovery)', async () => {
    const pgliteEntry = pathToFileURL(join(process.cwd(), 'node_modules/@electric-sql/pglite/dist/index.js')).href;
    const script = join(root, 'crash-child.mjs');
    writeFileSync(
      script,
      `import { writeFileSync } from 'node:fs';
       import { hostname } from 'node:os';
       const { PGlite } = await import(${JSON.stringify(pgliteEntry)});
       const [dir, runId, lock] = process.argv.slice(2);
       writeFileSync(lock, process.pid + '\\n' + hostname() + '\\n', { flag: 'wx' });
       const db = await PGlite.create({ dataDir: dir });
       await db.query("INSERT INTO cairn_runs (run_id, workflow, version, status, input, state, due_at, created_at, updated_at) VALUES ($1, 'wf', 1, 'pending', '1', '{}', now(), now(), now())", [runId]);
       process.stdout.write('ready\\n');
       setInterval(() => db.query('SELECT 1'), 5);`,
    );
    const crashedRunId = `crashed-${randomUUID()}`;
    const child = spawn(process.execPath, [script, dataDir, crashedRunId, lockFile()], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((ready, failed) => {
        child.stdout!.on('data', (chunk) => String(chunk).includes('ready') && ready());
        child.once('exit', (code) => failed(new Error(`child exited early (${code})`)));
      });
    } finally {
      child.kill('SIGKILL');
      await waitExit(child);
    }
    expect(existsSync(lockFile())).toBe(true);
    const store = createPgliteStore({ dataDir });
    await store.init();
    try {
      expect((await store.getRun(crashedRunId))?.runId).toBe(crashedRunId);
      expect(readFileSync(lockFile(), 'utf8').split('\n')[0]).toBe(String(process.pid));
    } finally {
      await store.close();
    }
  }, 30_000);

  it('hands out at once, at the next open, the runs a previous app left leased (not after leaseMs)', async () => {
    const workflow = `wf-${randomUUID()}`;
    const lease = { owner: 'old-app', leaseMs: 60_000 };
    const first = createPgliteStore({ dataDir });
    await first.init();
    const running = (await first.createRun(newRun({ workflow }), { onConflict: 'keep', lease })).run;
    const waiting = (await first.createRun(newRun({ workflow }), { onConflict: 'keep', lease })).run;
    expect((await first.commit(waiting.runId, waiting.leaseToken!, { leaseMs: 60_000, wait: { signals: ['go'], timeoutMs: 3_600_000 } })).ok).toBe(true);
    expect(await first.claimRuns({ owner: 'other', leaseMs: 60_000 }, 10, [{ workflow, version: 1 }])).toEqual([]);
    await first.close(); // without releasing: as if killed

    const second = createPgliteStore({ dataDir });
    await second.init();
    try {
      const claimed = await second.claimRuns({ owner: 'new-app', leaseMs: 30_000 }, 10, [{ workflow, version: 1 }]);
      expect(claimed.map((r) => r.runId)).toEqual([running.runId]);
      expect(claimed[0]).toMatchObject({ recovered: true, previousOwner: 'old-app', status: 'running' });
      expect(claimed[0].orphanedMs).toBeGreaterThanOrEqual(0);
      expect(claimed[0].leaseToken).not.toBe(running.leaseToken);
      expect((await second.commit(running.runId, running.leaseToken!, { leaseMs: 30_000, status: 'completed' })).ok).toBe(false);
      // A run that was not leased keeps its wake-up time.
      const stillWaiting = (await second.getRun(waiting.runId))!;
      expect(stillWaiting.status).toBe('waiting');
      expect(stillWaiting.dueAt!.getTime()).toBeGreaterThan(Date.now() + 3_000_000);
    } finally {
      await second.close();
    }
  }, 30_000);

  it('refuses a caller transaction, and stays usable after an SQL error in a statement', async () => {
    const store = createPgliteStore({ dataDir });
    await store.init();
    try {
      await expect(store.createRun(newRun(), { onConflict: 'keep', transaction: { query: async () => [] } })).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
      const created = await store.createRun(newRun(), { onConflict: 'keep', lease: { owner: 'spec', leaseMs: 30_000 } });
      const bogus = store.commit(created.run.runId, created.run.leaseToken!, { leaseMs: 30_000, status: 'bogus' as never });
      await expect(bogus).rejects.toBeInstanceOf(StoreError);
      await expect(bogus).rejects.toThrow(/check constraint/i);
      expect(await store.commit(created.run.runId, created.run.leaseToken!, { leaseMs: 30_000, status: 'completed' })).toEqual({ ok: true });
      expect((await store.getRun(created.run.runId))?.status).toBe('completed');
    } finally {
      await store.close();
    }
  }, 30_000);
});

describe('PGlite store: the same SQL as PostgreSQL', () => {
  let root: string;
  let store: PostgresStore;
  const LEASE = { owner: 'spec', leaseMs: 30_000 };
  const session = () => (store as unknown as { client: SqlClient }).client;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'cairn-pglite-sql-'));
    store = createPgliteStore({ dataDir: root });
    await store.init();
  });
  afterAll(async () => {
    await store.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('stores NUL and lone surrogates of step and run errors as U+FFFD instead of failing the commit', async () => {
    const bad = 'nul \u0000 and \uDC00';
    const kept = 'nul \uFFFD and \uFFFD';
    for (const rows of [1, 2]) {
      const { run } = await store.createRun(newRun({ steps: [{ name: 'a', status: 'running', attempts: 0 }] }), { onConflict: 'keep', lease: LEASE });
      const failed = { name: 'a', status: 'failed' as const, attempts: 1, error: bad };
      const steps = Array.from({ length: rows }, (_, index) => ({ index, step: failed }));
      expect(await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status: 'failed', error: { name: 'E', message: bad }, steps })).toEqual({ ok: true });
      const stored = (await store.getRun(run.runId))!;
      expect(stored.error).toEqual({ name: 'E', message: kept });
      expect(stored.steps.map((s) => s.error)).toEqual(steps.map(() => kept));
    }
  });

  it('serialises 300 concurrent replacements of one id, deleting the queued signals of the runs they replace and of runs that end', async () => {
    const base = newRun();
    await store.createRun(base, { onConflict: 'keep', lease: LEASE });
    await store.sendSignal(base.runId, 'x', '1');
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => store.createRun({ ...base, input: `"${i}"` }, { onConflict: 'replace', lease: LEASE })),
    );
    expect(results.map((r) => r.run.generation).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i + 2));
    const last = results.find((r) => r.run.generation === 301)!;
    const signals = async () =>
      (await session().query(`SELECT count(*)::int AS n FROM ${store.names.signals} WHERE run_id = $1`, [base.runId]))[0].n;
    expect(await signals()).toBe(0);
    await store.sendSignal(base.runId, 'x', '1');
    expect(await signals()).toBe(1);
    expect(await store.commit(base.runId, last.run.leaseToken!, { leaseMs: 30_000, status: 'completed', output: '1' })).toEqual({ ok: true });
    expect(await signals()).toBe(0);
    expect(await store.getRun(base.runId)).toMatchObject({ status: 'completed', generation: 301, input: last.run.input });
  });

  it('writes histories through batched commits (its one session batches them), trims them, and replaces them', async () => {
    const beat = { at: new Date(7_000), details: '{"n":1}' };
    const runs = [];
    for (let i = 0; i < 6; i++) {
      const events = i === 0 ? Array.from({ length: RUN_HISTORY_LIMIT }, (_, k) => `{"k":${k}}`) : [`{"start":${i}}`];
      const created = await store.createRun(newRun({ events, steps: [{ name: 'a', status: 'running', attempts: 0 }] }), { onConflict: 'keep', lease: LEASE });
      expect(created.lastEventSeq).toBe(events.length);
      runs.push(created.run);
    }
    const client = session();
    const prepared = client.prepared!.bind(client);
    const texts: string[] = [];
    client.prepared = (name, sql, params) => {
      texts.push(sql);
      return prepared(name, sql, params);
    };
    try {
      const results = await Promise.all(
        runs.map((run, i) =>
          store.commit(run.runId, run.leaseToken!, {
            leaseMs: 30_000,
            steps: [{ index: 0, step: { name: 'a', status: 'running', attempts: 1, heartbeat: beat } }],
            ...(i % 2 === 0 ? { events: [`{"e":${i},"n":1}`, `{"e":${i},"n":2}`] } : { keepInput: true }),
          }),
        ),
      );
      expect(texts.some((t) => t.includes('json_to_recordset($1::json)') && t.includes('unnest(p.p_events)'))).toBe(true);
      expect(results).toEqual(runs.map((_, i) => (i % 2 === 0 ? { ok: true, lastEventSeq: i === 0 ? RUN_HISTORY_LIMIT + 2 : 3 } : { ok: true })));
    } finally {
      client.prepared = prepared;
    }
    const count = async (runId: string) =>
      (await session().query(`SELECT count(*)::int AS n, min(seq) AS first FROM ${store.names.events} WHERE run_id = $1`, [runId]))[0];
    expect(await count(runs[0].runId)).toEqual({ n: RUN_HISTORY_LIMIT, first: 3 });
    expect((await store.listEvents(runs[2].runId, { limit: 10 })).map((e) => e.body)).toEqual(['{"start":2}', '{"e":2,"n":1}', '{"e":2,"n":2}']);
    expect((await store.listEvents(runs[3].runId, { limit: 10 })).map((e) => e.body)).toEqual(['{"start":3}']);
    for (const run of runs) expect((await store.getRun(run.runId))!.steps[0].heartbeat).toEqual(beat);
    const replaced = await store.createRun(newRun({ runId: runs[0].runId, events: ['{"new":true}'] }), { onConflict: 'replace' });
    expect(replaced.lastEventSeq).toBe(1);
    expect(await count(runs[0].runId)).toEqual({ n: 1, first: 1 });
  });

  it('upgrades a version 4 data folder, keeping its runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-pglite-v4-'));
    try {
      const first = createPgliteStore({ dataDir: dir });
      await first.init();
      const { run } = await first.createRun(newRun({ steps: [{ name: 'a', status: 'running', attempts: 0 }] }), { onConflict: 'keep', lease: LEASE });
      const n = first.names;
      const q = (first as unknown as { client: SqlClient }).client.query;
      // Back to version 6 (one wait signal, no child runs, no signal ids), then to 4.
      await q(`DROP TABLE ${n.signalIds}`);
      await q(`ALTER TABLE ${n.runs} ADD COLUMN wait_signal text`);
      await q(
        `ALTER TABLE ${n.runs} DROP COLUMN wait_signals, DROP COLUMN parent_run_id, DROP COLUMN children_ended, DROP COLUMN children_failed,
           DROP COLUMN children_wait_ended_at_least, DROP COLUMN children_fail_fast, DROP COLUMN next_input_signal`,
      );
      await q(`DROP TABLE ${n.events}`);
      await q(`ALTER TABLE ${n.runs} DROP COLUMN event_seq`);
      await q(`ALTER TABLE ${n.steps} DROP COLUMN heartbeat_at, DROP COLUMN heartbeat`);
      await q(`UPDATE ${n.meta} SET version = 4`);
      await first.close();
      const second = createPgliteStore({ dataDir: dir });
      await second.init();
      try {
        // the lease was expired at init (PGlite): claim it again
        const claimed = (await second.claimRun(run.runId, LEASE))!;
        expect(claimed.steps).toEqual([{ name: 'a', status: 'running', attempts: 0 }]);
        expect(await second.listEvents(run.runId, { limit: 5 })).toEqual([]);
        expect(await second.commit(run.runId, claimed.leaseToken, { leaseMs: 30_000, events: ['{"t":1}'] })).toEqual({ ok: true, lastEventSeq: 1 });
        const version = await (second as unknown as { client: SqlClient }).client.query(`SELECT version FROM ${n.meta}`);
        expect(version[0].version).toBe(SCHEMA_VERSION);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replaces a run with step rows over the old run\'s rows', async () => {
    const a = { name: 'a', status: 'completed' as const, attempts: 1, output: '1' };
    const b = { name: 'b', status: 'running' as const, attempts: 0 };
    const { run } = await store.createRun(newRun({ steps: [a, { ...a, name: 'x' }, b] }), { onConflict: 'keep', lease: LEASE });
    const res = await store.createRun(newRun({ runId: run.runId, steps: [{ ...a, output: '2' }, b] }), { onConflict: 'replace' });
    expect(res.run.generation).toBe(2);
    expect((await store.getRun(run.runId))!.steps).toEqual([{ ...a, output: '2' }, b]);
  });
});
