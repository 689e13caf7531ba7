import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError, StoreError } from '../../src/errors/errors.js';
import type { SqlClient } from '../../src/store/postgres/postgres.client.js';
import { createPgliteStore } from '../../src/store/postgres/pglite.js';
import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import { buildStatements } from '../../src/store/postgres/postgres.sql.js';
import type { CommitResult, LeaseRequest, RunPatch, StoredRun } from '../../src/store/workflow-store.interface.js';
import { dropSchema, randomSchemaName, withPgClient } from '../setup/postgres-server.js';
import { testPostgres } from '../setup/test-servers.js';

const { url, describe: describePg } = testPostgres();
const LEASE: LeaseRequest = { owner: 'group', leaseMs: 30_000 };
const N = 50;

/**
 * Counts the statements a store sends through its pg pool (prepared and unnamed alike), and the most in flight at once
 * (`peak`). `stop()` puts the pool back as it was.
 */
function countStatements(store: PostgresStore): { count: number; texts: string[]; peak: number; stop(): void } {
  const pool = (store.dataSource!.driver as unknown as { master: { query: (...a: unknown[]) => unknown } }).master;
  const original = pool.query.bind(pool);
  let inFlight = 0;
  const counter = { count: 0, texts: [] as string[], peak: 0, stop: () => void (pool.query = original) };
  pool.query = (...args: unknown[]) => {
    counter.count++;
    const first = args[0] as string | { text?: string };
    counter.texts.push(typeof first === 'string' ? first : String(first?.text));
    counter.peak = Math.max(counter.peak, ++inFlight);
    const callback = args.at(-1);
    if (typeof callback === 'function') {
      args[args.length - 1] = (...result: unknown[]) => {
        inFlight--;
        (callback as (...r: unknown[]) => void)(...result);
      };
      return original(...args);
    }
    return (original(...args) as Promise<unknown>).finally(() => inFlight--);
  };
  return counter;
}

type Kind = 'fenced' | 'consume' | 'wait' | 'terminal' | 'checkpoint' | 'pause' | 'cancel' | 'bad';

/** The kind of commit `i` of a scenario; `withWaits` false: plain checkpoints instead of signal waits. */
function kindOfCommit(i: number, withWaits = true): Kind {
  if (i === 4) return 'pause';
  if (i === 9) return 'cancel';
  const kind = (['fenced', 'consume', 'wait', 'terminal', 'checkpoint'] as const)[i % 5];
  return !withWaits && (kind === 'consume' || kind === 'wait') ? 'checkpoint' : kind;
}

/** Every run starts with step entry 0 running (the Postgres store keeps it in the run row: `live_step`). */
const FIRST_STEP = { name: 'a', status: 'running' as const, attempts: 0, startedAt: new Date(500) };
const NEXT_STEP = { name: 'next', status: 'running' as const, attempts: 0, startedAt: new Date(3_000) };

/**
 * Whether plain commit `i` writes entry 0 (completes it and starts entry 1, as the engine does) or only starts
 * entry 1: entry 0, still running, must then be kept (the store moves it from the run row to the steps table).
 */
const writesFirst = (i: number) => i % 2 === 0;

function patchOf(i: number, kind: Kind): RunPatch {
  const done = { index: 0, step: { name: `s${i}`, status: 'completed' as const, attempts: 1, output: `"o${i}"`, startedAt: new Date(1_000), finishedAt: new Date(2_000) } };
  const steps = [done];
  switch (kind) {
    case 'consume':
    case 'wait':
      return { state: `{"i":${i}}`, currentStep: 'w', steps, wait: { signals: ['go'], timeoutMs: 60_000 }, leaseMs: 30_000 };
    case 'terminal':
      return { status: 'completed', output: `{"r":${i}}`, currentStep: null, steps, leaseMs: 30_000 };
    case 'bad':
      return { state: `{"i":${i}}`, output: 'nul \u0000 here', steps, leaseMs: 30_000 };
    default: {
      const next = { index: 1, step: NEXT_STEP };
      return { state: `{"i":${i}}`, currentStep: `step-${i}`, steps: writesFirst(i) ? [done, next] : [next], leaseMs: 30_000 };
    }
  }
}

/** The comparable part of a stored run (no ids, tokens or timestamps). */
function shape(run: StoredRun | undefined) {
  if (!run) return undefined;
  return {
    status: run.status,
    state: run.state,
    output: run.output,
    currentStep: run.currentStep,
    nextInput: run.nextInput,
    waitSignals: run.waitSignals,
    waiting: run.waitUntil !== undefined,
    resumeStatus: run.resumeStatus,
    cancelRequested: run.cancelRequested,
    pauseRequested: run.pauseRequested,
    due: run.dueAt !== undefined,
    leased: run.leaseToken !== undefined,
    finished: run.finishedAt !== undefined,
    steps: run.steps.map((s) => ({ ...s })),
  };
}

/** 50 leased runs of all kinds committed concurrently; returns results, stored shapes and remaining signals. */
async function scenario(store: PostgresStore, withWaits = true) {
  const kindOf = (i: number) => kindOfCommit(i, withWaits);
  const ids = Array.from({ length: N }, (_, i) => `gc-${i}`);
  const tokens: string[] = [];
  for (const runId of ids) {
    const { run } = await store.createRun(
      { runId, workflow: 'wf', version: 1, input: '{}', state: '{}', steps: [FIRST_STEP] },
      { onConflict: 'keep', lease: LEASE },
    );
    tokens.push(run.leaseToken!);
  }
  for (let i = 0; i < N; i++) {
    const kind = kindOf(i);
    if (kind === 'consume') {
      await store.sendSignal(ids[i], 'go', `"first-${i}"`);
      await store.sendSignal(ids[i], 'go', `"second-${i}"`);
      await store.sendSignal(ids[i], 'other', `"x-${i}"`);
    }
    if (kind === 'wait') await store.sendSignal(ids[i], 'other', `"x-${i}"`);
    if (kind === 'pause') expect((await store.control(ids[i], { action: 'pause' })).outcome).toBe('ok');
    if (kind === 'cancel') expect((await store.control(ids[i], { action: 'cancel', compensate: true })).outcome).toBe('ok');
  }
  const settled = await Promise.allSettled(
    ids.map((runId, i) => {
      const kind = kindOf(i);
      return store.commit(runId, kind === 'fenced' ? `wrong-${tokens[i]}` : tokens[i], patchOf(i, kind));
    }),
  );
  const runs = await Promise.all(ids.map((id) => store.getRun(id)));
  // What is left in each signal queue: take them (runs still leased) or read them back through a fresh lease.
  const leftovers: (string | undefined)[] = [];
  for (let i = 0; i < N; i++) {
    if (kindOf(i) === 'consume') {
      const taken = await store.takeSignal(ids[i], tokens[i], ['go']);
      leftovers.push(taken.ok ? taken.payload : 'not-ok');
    } else {
      leftovers.push(undefined);
    }
  }
  return { ids, tokens, settled, runs, leftovers };
}

/** Checks every result and the stored rows of `scenario` (and that they equal those of `reference`, if given). */
function verify(a: Awaited<ReturnType<typeof scenario>>, s?: Awaited<ReturnType<typeof scenario>>, withWaits = true): void {
  const kindOf = (i: number) => kindOfCommit(i, withWaits);
  for (let i = 0; i < N; i++) {
    const kind = kindOf(i);
    const ra = a.settled[i];
    expect(ra.status).toBe('fulfilled');
    const result = (ra as PromiseFulfilledResult<CommitResult>).value;
    if (s) expect(s.settled[i]).toEqual({ status: 'fulfilled', value: result });
    switch (kind) {
      case 'fenced':
        expect(result).toEqual({ ok: false });
        break;
      case 'consume':
        expect(result).toEqual({ ok: true, consumedSignal: { name: 'go', payload: `"first-${i}"` } });
        break;
      case 'pause':
        expect(result).toEqual({ ok: true, paused: true });
        break;
      case 'cancel':
        expect(result).toEqual({ ok: true, cancel: { compensate: true } });
        break;
      default:
        expect(result).toEqual({ ok: true });
    }
    if (s) {
      expect(shape(a.runs[i])).toEqual(shape(s.runs[i]));
      expect(a.leftovers[i]).toEqual(s.leftovers[i]);
    }
  }

  // Spot checks of the stored rows.
  const run = (i: number) => a.runs[i]!;
  expect(run(0)).toMatchObject({ status: 'running', state: '{}', leaseToken: a.tokens[0] }); // fenced: untouched
  expect(run(0).steps).toEqual([FIRST_STEP]);
  if (withWaits) {
    expect(run(1)).toMatchObject({ status: 'running', nextInput: '"first-1"', state: '{"i":1}', leaseToken: a.tokens[1] });
    expect(a.leftovers[1]).toBe('"second-1"');
    expect(run(2)).toMatchObject({ status: 'waiting', waitSignals: ['go'], state: '{"i":2}' });
    expect(run(2).leaseToken).toBeUndefined();
  } else {
    expect(run(1)).toMatchObject({ status: 'running', currentStep: 'step-1', state: '{"i":1}', leaseToken: a.tokens[1] });
    expect(run(1).nextInput).toBeUndefined();
    expect(run(1).steps).toEqual([FIRST_STEP, NEXT_STEP]); // entry 0 not written: kept
  }
  expect(run(3)).toMatchObject({ status: 'completed', output: '{"r":3}' });
  expect(run(3).finishedAt).toBeInstanceOf(Date);
  expect(run(3).leaseToken).toBeUndefined();
  expect(run(3).steps).toEqual([
    { name: 's3', status: 'completed', attempts: 1, output: '"o3"', startedAt: new Date(1_000), finishedAt: new Date(2_000) },
  ]);
  expect(run(4)).toMatchObject({ status: 'paused', resumeStatus: 'running', pauseRequested: false });
  expect(run(9)).toMatchObject({ status: 'running', cancelRequested: { compensate: true }, currentStep: 'step-9' });
  expect(run(19)).toMatchObject({ status: 'running', currentStep: 'step-19', leaseToken: a.tokens[19] });
  expect(run(19).leaseExpiresAt!.getTime()).toBeGreaterThan(Date.now() + 20_000);
  expect(run(19).steps).toEqual([FIRST_STEP, NEXT_STEP]);
  expect(run(9).steps).toEqual([FIRST_STEP, NEXT_STEP]); // the full statement (cancel pending) keeps it too
  expect(run(14).steps).toEqual([
    { name: 's14', status: 'completed', attempts: 1, output: '"o14"', startedAt: new Date(1_000), finishedAt: new Date(2_000) },
    NEXT_STEP,
  ]);
}

/**
 * Opens stores on schemas of their own (`prefix`), initialized; those of the describe block calling this are closed
 * and their schemas dropped after its tests.
 */
function storesOf(prefix: string): (options?: Omit<ConstructorParameters<typeof PostgresStore>[0], 'url' | 'schema'>) => Promise<PostgresStore> {
  const stores: PostgresStore[] = [];
  afterAll(async () => {
    for (const store of stores) {
      await store.close();
      await dropSchema(url, store.names.schema);
    }
  });
  return async (options = {}) => {
    const store = new PostgresStore({ url, schema: randomSchemaName(prefix), ...options });
    await store.init();
    stores.push(store);
    return store;
  };
}

describePg('Postgres group commit', () => {
  const open = storesOf('cairn_gc');

  it('commits 50 concurrent runs in fewer statements, each with its own result, exactly as one by one', async () => {
    const grouped = await open({ poolSize: 4 });
    const single = await open({ poolSize: 4, groupCommit: false });
    const g = countStatements(grouped);

    const before = g.count;
    const a = await scenario(grouped);
    const s = await scenario(single);

    // Statements: the commits went in far fewer statements than commits.
    const commitStatements = g.texts.slice(before).filter((t) => /AS do_pause/.test(t));
    const batchStatements = commitStatements.filter((t) => t.includes('json_to_recordset($1::json)'));
    expect(batchStatements.length).toBeGreaterThan(0);
    expect(commitStatements.length).toBeLessThan(N / 2);

    verify(a, s);
  });

  it('commits without signal waits through statements that pop no signal (batch, fast path, fallback), all alike', async () => {
    const grouped = await open({ poolSize: 4 });
    const single = await open({ poolSize: 4, groupCommit: false });
    const g = countStatements(grouped);
    const t = countStatements(single);

    const before = g.count;
    const a = await scenario(grouped, false);
    const s = await scenario(single, false);

    const batches = g.texts.slice(before).filter((x) => /AS do_pause/.test(x) && x.includes('json_to_recordset($1::json)'));
    expect(batches.length).toBeGreaterThan(0);
    // NOTE: they name the signal table only to delete the queue of a run that ends (rule 4), nothing else.
    const popsSignals = (x: string) => /\b(snap|sig) AS\b/.test(x);
    expect(batches.some(popsSignals)).toBe(false);
    // One by one: every commit tries the fast path first; only the fenced ones, those with a pause or cancel
    // request pending, and those that start entry 1 without writing the running entry 0 fall back to the full
    // statement.
    const fast = t.texts.filter((x) => x.includes('AND NOT r.pause_requested'));
    const full = t.texts.filter((x) => /AS do_pause/.test(x));
    expect(fast.length).toBe(N);
    const fallbacks = Array.from({ length: N }, (_, i) => kindOfCommit(i, false)).filter(
      (k, i) => k === 'fenced' || k === 'pause' || k === 'cancel' || (k === 'checkpoint' && !writesFirst(i)),
    );
    expect(full.length).toBe(fallbacks.length);
    expect([...fast, ...full].some(popsSignals)).toBe(false);

    verify(a, s, false);
  });

  it('never puts two commits of one run in a batch, and sends a lone commit at once', async () => {
    const store = await open({ poolSize: 1 });
    const counter = countStatements(store);
    const { run } = await store.createRun(
      { runId: 'dup', workflow: 'wf', version: 1, input: '{}', state: '{}' },
      { onConflict: 'keep', lease: LEASE },
    );
    const others = await Promise.all(
      [1, 2, 3].map(async (i) => (await store.createRun({ runId: `o${i}`, workflow: 'wf', version: 1, input: '{}', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run),
    );
    const before = counter.count;
    const lone = await store.commit('dup', run.leaseToken!, { state: '{"n":0}', leaseMs: 30_000 });
    expect(lone).toEqual({ ok: true });
    expect(counter.count - before).toBe(1);
    expect(counter.texts.at(-1)).not.toContain('json_to_recordset($1::json)');

    // First one goes alone (the slot is free); the rest queue: dup#2 and the others batch, dup#3 waits for the next.
    const token = run.leaseToken!;
    const results = await Promise.all([
      store.commit('dup', token, { state: '{"n":1}', leaseMs: 30_000 }),
      store.commit('dup', token, { state: '{"n":2}', leaseMs: 30_000 }),
      store.commit('o1', others[0].leaseToken!, { state: '{"o":1}', leaseMs: 30_000 }),
      store.commit('dup', token, { state: '{"n":3}', steps: [{ index: 0, step: { name: 'a', status: 'completed', attempts: 1 } }], leaseMs: 30_000 }),
      store.commit('o2', others[1].leaseToken!, { state: '{"o":2}', leaseMs: 30_000 }),
      store.commit('o3', others[2].leaseToken!, { status: 'completed', output: '1', release: true, leaseMs: 30_000 }),
    ]);
    expect(results.every((r) => r.ok)).toBe(true);
    // Commits of one run are applied in call order.
    expect((await store.getRun('dup'))!.state).toBe('{"n":3}');
    expect((await store.getRun('dup'))!.steps.map((s) => s.name)).toEqual(['a']);
    expect((await store.getRun('o3'))!.status).toBe('completed');
    const sent = counter.texts.slice(before + 1).filter((t) => /signal_seq AS seq0/.test(t));
    expect(sent.length).toBeLessThan(6);
  });

  it.each([
    ['default', {}, 4],
    ['maxStatements: 1', { groupCommit: { maxStatements: 1 } }, 1],
    ['maxStatements: 2', { groupCommit: { maxStatements: 2 } }, 2],
    ['maxStatements over the pool size', { poolSize: 3, groupCommit: { maxStatements: 8 } }, 3],
  ] as const)('keeps at most as many write statements in flight as allowed (%s), the rest batched behind them', async (_name, options, most) => {
    const store = await open({ poolSize: 10, ...options });
    const runs: StoredRun[] = [];
    for (let i = 0; i < 40; i++) {
      runs.push((await store.createRun({ runId: `slot${i}`, workflow: 'wf', version: 1, input: '{}', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run);
    }
    // Statements of the pool in flight, counted while the 40 commits go out (no other statement is under way).
    const counter = countStatements(store);
    const results = await Promise.all(runs.map((run, i) => store.commit(run.runId, run.leaseToken!, { state: `{"i":${i}}`, leaseMs: 30_000 })));
    counter.stop();
    expect(results.every((r) => r.ok)).toBe(true);
    expect(counter.peak).toBe(most);
    // The first `most` went alone at once; the other commits queued and went together in the statement after them.
    expect(counter.count).toBe(most + 1);
    for (const [i, run] of runs.entries()) expect((await store.getRun(run.runId))!.state).toBe(`{"i":${i}}`);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses groupCommit.maxStatements %p with a ConfigurationError that says what it takes', (maxStatements) => {
    expect(() => new PostgresStore({ url, groupCommit: { maxStatements } })).toThrow(ConfigurationError);
    expect(() => new PostgresStore({ url, groupCommit: { maxStatements } })).toThrow(/groupCommit\.maxStatements must be a positive integer/);
  });

  it('batches absolute wake-up times, error texts PostgreSQL cannot hold and the ends of runs with queued signals', async () => {
    const store = await open({ poolSize: 1 });
    const counter = countStatements(store);
    const runs: StoredRun[] = [];
    for (let i = 0; i < 9; i++) {
      const { run } = await store.createRun({ runId: `abs${i}`, workflow: 'wf', version: 1, input: '{}', state: '{}', steps: [FIRST_STEP] }, { onConflict: 'keep', lease: LEASE });
      await store.sendSignal(run.runId, 'x', '1');
      runs.push(run);
    }
    const at = (i: number) => new Date(Date.UTC(2030, 5, 1, 0, 0, 0, i * 7 + 1));
    const before = counter.count;
    const results = await Promise.all(
      runs.map((run, i) => {
        const patch: RunPatch =
          i % 3 === 0
            ? { status: 'sleeping', due: { at: at(i) }, release: true, leaseMs: 30_000 }
            : i % 3 === 1
              ? {
                  status: 'failed',
                  error: { name: 'E', message: `nul \u0000 ${i}` },
                  steps: [{ index: 0, step: { ...FIRST_STEP, status: 'failed', attempts: 1, error: `step \u0000 ${i}` } }],
                  leaseMs: 30_000,
                }
              : { state: `{"i":${i}}`, due: { delayMs: 60_000 }, leaseMs: 30_000 };
        return store.commit(run.runId, run.leaseToken!, patch);
      }),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(counter.texts.slice(before).filter((t) => t.includes('json_to_recordset($1::json)')).length).toBeGreaterThan(0);
    const signals = await withPgClient(url, (query) =>
      query(`SELECT run_id, count(*)::int AS n FROM ${store.names.signals} GROUP BY run_id ORDER BY run_id`),
    );
    expect(signals).toEqual(runs.filter((_, i) => i % 3 !== 1).map((run) => ({ run_id: run.runId, n: 1 })));
    for (let i = 0; i < runs.length; i++) {
      const stored = (await store.getRun(runs[i].runId))!;
      if (i % 3 === 0) expect(stored).toMatchObject({ status: 'sleeping', dueAt: at(i) });
      if (i % 3 === 1) {
        expect(stored).toMatchObject({ status: 'failed', error: { name: 'E', message: `nul \uFFFD ${i}` } });
        expect(stored.steps[0].error).toBe(`step \uFFFD ${i}`);
      }
      if (i % 3 === 2) expect(stored.dueAt!.getTime()).toBeGreaterThan(Date.now() + 50_000);
    }
  });

  it('fences a run taken over while its batch waited for the row lock, without affecting the rest of the batch', async () => {
    const store = await open({ poolSize: 1 });
    const counter = countStatements(store);
    const runs: StoredRun[] = [];
    for (const id of ['t-a', 't-x', 't-b', 't-c']) {
      runs.push((await store.createRun({ runId: id, workflow: 'wf', version: 1, input: '{}', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run);
    }
    await withPgClient(url, async (query) => {
      await query('BEGIN');
      // Another worker takes t-x over (new token) and has not committed yet.
      await query(`UPDATE ${store.names.runs} SET lease_token = 'taken-over' WHERE run_id = 't-x'`);
      const before = counter.count;
      const pending = Promise.all(runs.map((run, i) => store.commit(run.runId, run.leaseToken!, { state: `{"v":${i}}`, leaseMs: 30_000 })));
      await new Promise((resolve) => setTimeout(resolve, 300));
      await query('COMMIT');
      expect(await pending).toEqual([{ ok: true }, { ok: false }, { ok: true }, { ok: true }]);
      expect(counter.texts.slice(before).filter((t) => t.includes('json_to_recordset($1::json)'))).toHaveLength(1);
    });
    expect((await store.getRun('t-x'))!).toMatchObject({ state: '{}', leaseToken: 'taken-over' });
    for (const [i, id] of [[0, 't-a'], [2, 't-b'], [3, 't-c']] as const) {
      expect((await store.getRun(id))!.state).toBe(`{"v":${i}}`);
    }
  });

  it('sends the commits of a failed batch again one by one, so that only the bad one fails', async () => {
    const store = await open({ poolSize: 1 });
    const counter = countStatements(store);
    const runs: StoredRun[] = [];
    for (let i = 0; i < 8; i++) {
      runs.push((await store.createRun({ runId: `f${i}`, workflow: 'wf', version: 1, input: '{}', state: '{}', steps: [FIRST_STEP] }, { onConflict: 'keep', lease: LEASE })).run);
    }
    const before = counter.count;
    const settled = await Promise.allSettled(
      runs.map((run, i) =>
        store.commit(run.runId, run.leaseToken!, patchOf(i, i === 5 ? 'bad' : i === 6 ? 'terminal' : 'checkpoint')),
      ),
    );
    const sent = counter.texts.slice(before);
    expect(sent.filter((t) => t.includes('json_to_recordset($1::json)'))).toHaveLength(1); // f1..f7 together, failed
    // f0 alone, the batch, then f1..f7 alone; f1, f3 and f7 keep entry 0 (see writesFirst): the full statement
    // after their fast try.
    expect(sent).toHaveLength(1 + 1 + 7 + 3);
    settled.forEach((result, i) => {
      if (i === 5) {
        expect(result.status).toBe('rejected');
        expect((result as PromiseRejectedResult).reason).toBeInstanceOf(StoreError);
      } else {
        expect(result).toEqual({ status: 'fulfilled', value: { ok: true } });
      }
    });
    for (let i = 0; i < 8; i++) {
      const run = (await store.getRun(`f${i}`))!;
      if (i === 5) expect(run).toMatchObject({ state: '{}', status: 'running' });
      else if (i === 6) expect(run).toMatchObject({ status: 'completed', output: '{"r":6}' });
      else expect(run).toMatchObject({ state: `{"i":${i}}`, currentStep: `step-${i}` });
      expect(run.steps).toHaveLength(i === 5 || i === 6 ? 1 : 2);
    }
  });

  /** p1 goes on while its children p1a, p1b run (endedAtLeast 0); p2 waits until two of its three have ended. */
  async function parentsAndChildren(store: PostgresStore) {
    const create = async (runId: string) =>
      (await store.createRun({ runId, workflow: 'wf', version: 1, input: '{}', state: '{}' }, { onConflict: 'keep', lease: LEASE })).run;
    const child = (runId: string) => ({ runId, workflow: 'wf', version: 1, input: '{}', state: '{}' });
    const p1 = await create('p1');
    expect(await store.commit('p1', p1.leaseToken!, { leaseMs: 30_000, children: { spawn: [child('p1a'), child('p1b')], endedAtLeast: 0, failFast: false } })).toEqual({
      ok: true,
      childrenReady: true,
    });
    const p2 = await create('p2');
    expect(await store.commit('p2', p2.leaseToken!, { leaseMs: 30_000, children: { spawn: [child('p2a'), child('p2b'), child('p2c')], endedAtLeast: 2, failFast: false } })).toEqual({ ok: true });
    const tokens = new Map<string, string>([['p1', p1.leaseToken!]]);
    for (const id of ['p1a', 'p1b', 'p2a', 'p2b']) tokens.set(id, (await store.claimRun(id, LEASE))!.leaseToken);
    const blocker = await create('blocker');
    tokens.set('blocker', blocker.leaseToken!);
    return tokens;
  }

  /** Rule 4 after the batch: p1 counted both its children (one failed), p2 counted two and was woken. */
  async function expectParentsCounted(store: PostgresStore, p1: Record<string, unknown>) {
    expect(await store.getRun('p1')).toMatchObject({ ...p1, children: { ended: 2, failed: true } });
    const p2After = (await store.getRun('p2'))!;
    expect(p2After).toMatchObject({ status: 'waiting', children: { ended: 2, failed: false, wait: { endedAtLeast: 2, failFast: false } } });
    expect(p2After.dueAt!.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
    expect((await store.claimRun('p2', LEASE))?.runId).toBe('p2');
  }

  const isBatch = (x: string) => x.includes('json_to_recordset($1::json)');
  const isFullBatch = (x: string) => isBatch(x) && /AS do_pause/.test(x);

  it('counts the children a fast batch ends once per parent, and leaves a child ending beside its parent\'s commit to the full statement', async () => {
    const store = await open({ poolSize: 1 });
    const counter = countStatements(store);
    const tokens = await parentsAndChildren(store);
    const before = counter.count;
    const results = await Promise.all([
      store.commit('blocker', tokens.get('blocker')!, { state: '{"b":1}', leaseMs: 30_000 }), // alone: the others queue
      store.commit('p1', tokens.get('p1')!, { state: '{"p":1}', leaseMs: 30_000 }),
      store.commit('p1a', tokens.get('p1a')!, { status: 'completed', output: '1', leaseMs: 30_000 }),
      store.commit('p1b', tokens.get('p1b')!, { status: 'failed', error: { name: 'E', message: 'm' }, leaseMs: 30_000 }),
      store.commit('p2a', tokens.get('p2a')!, { status: 'completed', output: '1', leaseMs: 30_000 }),
      store.commit('p2b', tokens.get('p2b')!, { status: 'completed', output: '2', leaseMs: 30_000 }),
    ]);
    expect(results).toEqual(Array.from({ length: 6 }, () => ({ ok: true })));
    // The blocker alone, then the fast batch (p1, p2a, p2b: p2 is not in it), then p1a and p1b by the full batch
    // statement (their parent's commit was in the fast batch), then nothing.
    const texts = counter.texts.slice(before);
    expect(texts.map((x) => (isFullBatch(x) ? 'full' : isBatch(x) ? 'fast' : 'alone'))).toEqual(['alone', 'fast', 'full']);
    await expectParentsCounted(store, { status: 'running', state: '{"p":1}' });
  });

  it('gives back the slots of the runs of one key a fast batch ends, counted together (rule F2)', async () => {
    const store = await open({ poolSize: 1 });
    const counter = countStatements(store);
    const concurrency = { key: 'k', limit: 4, scope: 'run' as const };
    const held = async () => withPgClient(url, async (query) => (await query(`SELECT held FROM ${store.names.flowKeys} WHERE key = 'c:k'`))[0]?.held);
    const runs: StoredRun[] = [];
    for (let i = 0; i < 4; i++) {
      const { run } = await store.createRun({ runId: `key${i}`, workflow: 'wf', version: 1, input: '{}', state: '{}', concurrency }, { onConflict: 'keep', lease: LEASE });
      expect(run.leaseToken).toBeDefined();
      runs.push(run);
    }
    // the fifth waits for a slot
    const fifth = (await store.createRun({ runId: 'key4', workflow: 'wf', version: 1, input: '{}', state: '{}', concurrency }, { onConflict: 'keep', lease: LEASE })).run;
    expect(fifth.leaseToken).toBeUndefined();
    expect(await held()).toBe(4);
    const { run: blocker } = await store.createRun({ runId: 'kblocker', workflow: 'wf', version: 1, input: '{}', state: '{}' }, { onConflict: 'keep', lease: LEASE });
    const before = counter.count;
    const results = await Promise.all([
      store.commit('kblocker', blocker.leaseToken!, { state: '{"b":1}', leaseMs: 30_000 }), // alone: the others queue
      store.commit('key0', runs[0].leaseToken!, { state: '{"i":0}', leaseMs: 30_000 }), // keeps its slot
      ...runs.slice(1).map((run, i) => store.commit(run.runId, run.leaseToken!, { status: i === 0 ? 'failed' : 'completed', output: '1', leaseMs: 30_000 })),
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, true, true, true, true]);
    // one fast batch did all four: three slots back at once
    const texts = counter.texts.slice(before);
    expect(texts.filter((x) => x.includes('json_to_recordset($1::json)'))).toHaveLength(1);
    expect(texts.filter((x) => /AS do_pause/.test(x))).toHaveLength(0);
    expect(await held()).toBe(1);
    expect((await store.getRun('key0'))!.slotHeld).toBe(true);
    for (const run of runs.slice(1)) expect((await store.getRun(run.runId))!.slotHeld).toBeFalsy();
    expect((await store.claimRun('key4', LEASE))?.runId).toBe('key4');
    expect(await held()).toBe(2);
  });

  it('updates a parent once per ending child in a full batch, and sends a child ending with its parent\'s commit again alone', async () => {
    const store = await open({ poolSize: 1 });
    const counter = countStatements(store);
    const tokens = await parentsAndChildren(store);
    // Two step rows each: not the fast path (it takes one at most), so all of them go by the full batch statement.
    const twoRows = [0, 1].map((index) => ({ index, step: { name: `s${index}`, status: 'completed' as const, attempts: 1, output: '1', startedAt: new Date(1_000), finishedAt: new Date(2_000) } }));
    const before = counter.count;
    const results = await Promise.all([
      store.commit('blocker', tokens.get('blocker')!, { state: '{"b":1}', leaseMs: 30_000 }), // alone: the others queue
      store.commit('p1', tokens.get('p1')!, { state: '{"p":1}', steps: twoRows, leaseMs: 30_000 }),
      store.commit('p1a', tokens.get('p1a')!, { status: 'completed', output: '1', steps: twoRows, leaseMs: 30_000 }),
      store.commit('p1b', tokens.get('p1b')!, { status: 'failed', error: { name: 'E', message: 'm' }, steps: twoRows, leaseMs: 30_000 }),
      store.commit('p2a', tokens.get('p2a')!, { status: 'completed', output: '1', steps: twoRows, leaseMs: 30_000 }),
      store.commit('p2b', tokens.get('p2b')!, { status: 'completed', output: '2', steps: twoRows, leaseMs: 30_000 }),
    ]);
    expect(results).toEqual(Array.from({ length: 6 }, () => ({ ok: true })));
    // p1a and p1b were left out of the full batch (their parent's commit was in it) and sent again alone, by the full
    // single statement (two step rows), which applies rule 4 too.
    const texts = counter.texts.slice(before);
    expect(texts.map((x) => (isFullBatch(x) ? 'full' : isBatch(x) ? 'fast' : 'alone'))).toEqual(['alone', 'full', 'alone', 'alone']);
    await expectParentsCounted(store, { status: 'running', state: '{"p":1}' });
    expect((await store.getRun('p1a'))!.steps).toHaveLength(2);
  });
});

describePg('Postgres group commit of starts', () => {
  const open = storesOf('cairn_gs');

  /** Start `i` of the scenario: leased or not, with or without step rows and events, or a start of an existing id. */
  const startOf = (i: number): { run: Parameters<PostgresStore['createRun']>[0]; lease: boolean } => {
    const running = { name: 'a', status: 'running' as const, attempts: 0, startedAt: new Date(1_000) };
    const done = { name: 'pre', status: 'completed' as const, attempts: 1, output: `"p${i}"`, startedAt: new Date(500), finishedAt: new Date(900) };
    const base = { runId: i % 10 === 9 ? `existing-${i}` : `s-${i}`, workflow: 'w', version: 1, input: `{"i":${i}}`, state: `{"s":${i}}`, currentStep: 'a', pipeline: 'fp' };
    switch (i % 4) {
      case 0: // the engine's common start: claimed at once, its live step and its first event
        return { run: { ...base, steps: [running], events: [`{"type":"run.started","i":${i}}`] }, lease: true };
      case 1: // not claimed (no capacity): due now
        return { run: { ...base, events: [`{"type":"run.started","i":${i}}`, '{"type":"x"}'] }, lease: false };
      case 2: // with a completed step before the live one (a step row for the steps table)
        return { run: { ...base, steps: [done, running] }, lease: true };
      default: // nothing but the run row
        return { run: base, lease: false };
    }
  };

  async function startAll(store: PostgresStore, n: number) {
    for (let i = 9; i < n; i += 10) await store.createRun({ runId: `existing-${i}`, workflow: 'old', version: 1, input: '"old"', state: '{}' }, { onConflict: 'keep' });
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => {
        const { run, lease } = startOf(i);
        return store.createRun(run, { onConflict: 'keep', ...(lease ? { lease: LEASE } : {}) });
      }),
    );
    const runs = await Promise.all(results.map((r) => store.getRun(r.run.runId)));
    const events = await Promise.all(results.map((r) => store.listEvents(r.run.runId, { limit: 10 })));
    return { results, runs, events };
  }

  /** The comparable part of a start's result, its stored run and its history. */
  const comparable = (x: Awaited<ReturnType<typeof startAll>>, i: number) => {
    const run = x.runs[i]!;
    return {
      created: x.results[i].created,
      result: { status: x.results[i].run.status, workflow: x.results[i].run.workflow, leased: x.results[i].run.leaseToken !== undefined, lastEventSeq: x.results[i].lastEventSeq },
      stored: { status: run.status, input: run.input, state: run.state, steps: run.steps, leased: run.leaseToken !== undefined, currentStep: run.currentStep, pipeline: run.pipeline },
      events: x.events[i].map((e) => [e.seq, e.body]),
    };
  };

  it('writes the plain starts queued meanwhile in one statement, each as if alone; an existing id goes again alone', async () => {
    const N = 60;
    const grouped = await open({ poolSize: 2 });
    const single = await open({ poolSize: 2, groupCommit: false });
    const g = countStatements(grouped);
    const before = g.count;
    const a = await startAll(grouped, N);
    const texts = g.texts.slice(before, before + N + 6);
    const s = await startAll(single, N);

    const batches = texts.filter((t) => t.includes('json_to_recordset($1::json)') && t.includes('INSERT INTO'));
    expect(batches.length).toBeGreaterThan(0);
    // 6 existing ids, then the 60 starts in far fewer statements (the existing ones' second try included)
    expect(texts.filter((t) => /INSERT INTO/.test(t)).length).toBeLessThan(6 + N / 2);
    for (let i = 0; i < N; i++) {
      expect({ i, ...comparable(a, i) }).toEqual({ i, ...comparable(s, i) });
    }
    // spot checks
    expect(comparable(a, 0)).toMatchObject({ created: true, result: { status: 'running', leased: true, lastEventSeq: 1 }, stored: { status: 'running', leased: true } });
    expect(comparable(a, 1)).toMatchObject({ created: true, result: { status: 'pending', leased: false, lastEventSeq: 2 }, events: [[1, '{"type":"run.started","i":1}'], [2, '{"type":"x"}']] });
    expect(a.runs[2]!.steps.map((step) => step.name)).toEqual(['pre', 'a']);
    expect(comparable(a, 9)).toMatchObject({ created: false, result: { workflow: 'old' }, stored: { input: '"old"' }, events: [] });
    // the runs not leased are claimable, the leased ones are not
    const claimed = await grouped.claimRuns({ owner: 'c', leaseMs: 30_000 }, 100);
    expect(claimed.map((c) => c.runId).sort()).toEqual(a.results.filter((r, i) => !r.created || !startOf(i).lease).map((r) => r.run.runId).sort());
  });

  it('sends the starts of a failed batch again one by one, so that only the bad one fails', async () => {
    const grouped = await open({ poolSize: 1 });
    const starts = Array.from({ length: 8 }, (_, i) => ({ runId: `b-${i}`, workflow: 'w', version: 1, input: i === 5 ? 'nul \u0000 here' : `{"i":${i}}`, state: '{}' }));
    const results = await Promise.allSettled(starts.map((run) => grouped.createRun(run, { onConflict: 'keep' })));
    expect(results.map((r) => r.status)).toEqual(starts.map((_, i) => (i === 5 ? 'rejected' : 'fulfilled')));
    expect((results[5] as PromiseRejectedResult).reason).toBeInstanceOf(StoreError);
    for (let i = 0; i < 8; i++) expect((await grouped.getRun(`b-${i}`))?.input).toBe(i === 5 ? undefined : `{"i":${i}}`);
  });
});

/**
 * Keyed starts (a concurrency key, a lease wanted now) of a scenario, in order: `kx` an existing id, `ka1`–`ka3` three
 * starts of key `a` (limit 2, its counter exists), `kb1` one of key `b` (limit 1, its slot taken), `kc1` the first of
 * key `c` (no counter yet), `kd1` one of key `d` (limit 3, priority 5), `ke1` one with a delay (never in a batch).
 */
const KEYED = ['kx', 'ka1', 'ka2', 'ka3', 'kb1', 'kc1', 'kd1', 'ke1'] as const;

function keyedStart(id: (typeof KEYED)[number]): [Parameters<PostgresStore['createRun']>[0], Parameters<PostgresStore['createRun']>[1]] {
  const key = id === 'kx' ? 'a' : id[1];
  const limit = key === 'b' ? 1 : key === 'd' ? 3 : 2;
  const run = {
    runId: id,
    workflow: 'wk',
    version: 1,
    input: `{"id":"${id}"}`,
    state: '{}',
    currentStep: 'a',
    steps: [{ name: 'a', status: 'running' as const, attempts: 0, startedAt: new Date(1_000) }],
    events: [`{"type":"run.started","id":"${id}"}`],
    concurrency: { key, limit, scope: 'run' as const },
    ...(id === 'kd1' ? { priority: 5 } : {}),
    ...(id === 'ke1' ? { due: { delayMs: 60_000 } } : {}),
  };
  return [run, { onConflict: 'keep', lease: LEASE }];
}

/** Before the keyed starts: the existing run `kx` (another workflow) and the run holding key `b`'s one slot. */
async function keyedBefore(store: PostgresStore): Promise<void> {
  await store.createRun({ runId: 'kx', workflow: 'old', version: 1, input: '"old"', state: '{}' }, { onConflict: 'keep' });
  await store.createRun({ runId: 'kb0', workflow: 'wk', version: 1, input: '{}', state: '{}', concurrency: { key: 'b', limit: 1, scope: 'run' } }, { onConflict: 'keep', lease: LEASE });
  // the counter of key a, and of d (their runs ended)
  for (const key of ['a', 'd']) {
    const { run } = await store.createRun({ runId: `${key}0`, workflow: 'wk', version: 1, input: '{}', state: '{}', concurrency: { key, limit: 1, scope: 'run' } }, { onConflict: 'keep', lease: LEASE });
    await store.commit(run.runId, run.leaseToken!, { status: 'completed', output: '1', release: true, leaseMs: 30_000 });
  }
}

/** What a keyed start's result and stored run say, and the counters of the keys. */
async function keyedOutcome(store: PostgresStore, results: Awaited<ReturnType<PostgresStore['createRun']>>[]) {
  const runs = await Promise.all(KEYED.map((id) => store.getRun(id)));
  const events = await Promise.all(KEYED.map((id) => store.listEvents(id, { limit: 10 })));
  const held = await withPgClient(url, (query) => query(`SELECT key, held FROM ${store.names.flowKeys} WHERE key LIKE 'c:%' ORDER BY key`));
  return {
    starts: KEYED.map((id, i) => ({
      id,
      created: results[i].created,
      status: results[i].run.status,
      leased: results[i].run.leaseToken !== undefined,
      blockedBy: results[i].run.blockedBy,
      slotHeld: results[i].run.slotHeld ?? false,
      lastEventSeq: results[i].lastEventSeq,
      stored: {
        workflow: runs[i]!.workflow,
        status: runs[i]!.status,
        leased: runs[i]!.leaseToken !== undefined,
        slotHeld: runs[i]!.slotHeld ?? false,
        priority: runs[i]!.priority,
        concurrency: runs[i]!.concurrency,
        steps: runs[i]!.steps.map((step) => [step.name, step.status]),
        currentStep: runs[i]!.currentStep,
        blockedBy: runs[i]!.blockedBy,
      },
      events: events[i].map((e) => [e.seq, e.body]),
    })),
    held: Object.fromEntries(held.map((row) => [row.key, Number(row.held)])),
  };
}

describePg('Postgres group commit of keyed starts', () => {
  const open = storesOf('cairn_gk');

  it('writes the keyed starts queued meanwhile that their slots admit in one statement, each as if alone; the others go alone', async () => {
    const grouped = await open({ poolSize: 1 });
    const single = await open({ groupCommit: false });
    await keyedBefore(grouped);
    await keyedBefore(single);

    const g = countStatements(grouped);
    const before = g.count;
    const [, ...batched] = await Promise.all([
      // alone at once (a plain start): the keyed ones queue behind it
      grouped.createRun({ runId: 'plain', workflow: 'w', version: 1, input: '{}', state: '{}' }, { onConflict: 'keep', lease: LEASE }),
      ...KEYED.map((id) => grouped.createRun(...keyedStart(id))),
    ]);
    const texts = g.texts.slice(before);
    g.stop();
    const sequential: Awaited<ReturnType<PostgresStore['createRun']>>[] = [];
    for (const id of KEYED) sequential.push(await single.createRun(...keyedStart(id)));

    const a = await keyedOutcome(grouped, batched);
    const s = await keyedOutcome(single, sequential);
    for (let i = 0; i < KEYED.length; i++) expect(a.starts[i]).toEqual(s.starts[i]);
    expect(a.held).toEqual(s.held);
    // spot checks
    const by = Object.fromEntries(a.starts.map((x) => [x.id, x]));
    expect(a.held).toEqual({ 'c:a': 2, 'c:b': 1, 'c:c': 1, 'c:d': 1, 'c:e': 0 });
    expect(by.kx).toMatchObject({ created: false, stored: { workflow: 'old' }, events: [] });
    expect(by.ka1).toMatchObject({ created: true, status: 'running', leased: true, slotHeld: true, lastEventSeq: 1, stored: { slotHeld: true, steps: [['a', 'running']] } });
    expect(by.ka1.events).toEqual([[1, '{"type":"run.started","id":"ka1"}']]);
    expect(by.ka2).toMatchObject({ leased: true, slotHeld: true });
    expect(by.ka3).toMatchObject({ created: true, status: 'pending', leased: false, blockedBy: 'concurrency', stored: { blockedBy: 'concurrency', steps: [] } });
    expect(by.kb1).toMatchObject({ status: 'pending', blockedBy: 'concurrency' });
    expect(by.kc1).toMatchObject({ status: 'running', leased: true, slotHeld: true });
    expect(by.kd1).toMatchObject({ status: 'running', leased: true, stored: { priority: 5, concurrency: { key: 'd', limit: 3, scope: 'run' } } });
    expect(by.ke1).toMatchObject({ status: 'pending', leased: false });

    // One keyed batch: it wrote what F2 admits of the keys with counters (ka1 and kd1; kx took key a's other slot in
    // it, but its id exists), the rest went alone, by the single statement.
    const flowBatches = texts.filter((t) => / AS nth\b/.test(t));
    expect(flowBatches).toHaveLength(1);
    const flowSingles = texts.filter((t) => /\bnr AS MATERIALIZED\b/.test(t));
    // kx (its id exists), ka2 (not admitted: kx took its place in the batch), ka3, kb1, kc1 (twice: it creates the
    // counter, then again), ke1
    expect(flowSingles.length).toBe(7);
  });

  it('never gives more than a key\'s limit in a batch, and its ended runs\' slots come back', async () => {
    const store = await open({ poolSize: 1 });
    const concurrency = { key: 'k', limit: 3, scope: 'run' as const };
    const first = await store.createRun({ runId: 'k0', workflow: 'wk', version: 1, input: '{}', state: '{}', concurrency }, { onConflict: 'keep', lease: LEASE });
    const results = await Promise.all([
      store.createRun({ runId: 'plain', workflow: 'w', version: 1, input: '{}', state: '{}' }, { onConflict: 'keep', lease: LEASE }),
      ...Array.from({ length: 10 }, (_, i) =>
        store.createRun({ runId: `k${i + 1}`, workflow: 'wk', version: 1, input: '{}', state: '{}', concurrency }, { onConflict: 'keep', lease: LEASE }),
      ),
    ]);
    const leased = results.slice(1).filter((r) => r.run.leaseToken !== undefined);
    expect(leased.map((r) => r.run.runId)).toEqual(['k1', 'k2']);
    const held = async () => withPgClient(url, async (query) => Number((await query(`SELECT held FROM ${store.names.flowKeys} WHERE key = 'c:k'`))[0]?.held));
    expect(await held()).toBe(3);
    await store.commit('k0', first.run.leaseToken!, { status: 'completed', output: '1', release: true, leaseMs: 30_000 });
    expect(await held()).toBe(2);
    const claimed = await store.claimRuns({ owner: 'c', leaseMs: 30_000 }, 10);
    expect(claimed.map((c) => c.runId)).toEqual(['k3']);
    expect(await held()).toBe(3);
  });

  it('keeps the order of two starts of one id when they are of different kinds (plain, keyed)', async () => {
    const store = await open({ poolSize: 1 });
    const concurrency = { key: 'o', limit: 5, scope: 'run' as const };
    await store.createRun({ runId: 'o-first', workflow: 'wk', version: 1, input: '{}', state: '{}', concurrency }, { onConflict: 'keep', lease: LEASE });
    const [, , plain, keyed] = await Promise.all([
      store.createRun({ runId: 'blocker', workflow: 'w', version: 1, input: '{}', state: '{}' }, { onConflict: 'keep', lease: LEASE }), // alone: the others queue
      store.createRun({ runId: 'z', workflow: 'wk', version: 1, input: '{}', state: '{}', concurrency }, { onConflict: 'keep', lease: LEASE }),
      store.createRun({ runId: 'x', workflow: 'plain-first', version: 1, input: '{}', state: '{}' }, { onConflict: 'keep', lease: LEASE }),
      store.createRun({ runId: 'x', workflow: 'keyed-second', version: 1, input: '{}', state: '{}', concurrency }, { onConflict: 'keep', lease: LEASE }),
    ]);
    expect(plain).toMatchObject({ created: true, run: { workflow: 'plain-first' } });
    expect(keyed).toMatchObject({ created: false, run: { workflow: 'plain-first' } });
    expect((await store.getRun('x'))?.workflow).toBe('plain-first');
  });

  it('sends the keyed starts of a failed batch again one by one, so that only the bad one fails', async () => {
    const store = await open({ poolSize: 1 });
    const concurrency = { key: 'f', limit: 10, scope: 'run' as const };
    await store.createRun({ runId: 'f-first', workflow: 'wk', version: 1, input: '{}', state: '{}', concurrency }, { onConflict: 'keep', lease: LEASE });
    const starts = Array.from({ length: 6 }, (_, i) => ({ runId: `f-${i}`, workflow: 'wk', version: 1, input: i === 3 ? 'nul \u0000 here' : `{"i":${i}}`, state: '{}', concurrency }));
    const results = await Promise.allSettled([
      store.createRun({ runId: 'plain', workflow: 'w', version: 1, input: '{}', state: '{}' }, { onConflict: 'keep', lease: LEASE }),
      ...starts.map((run) => store.createRun(run, { onConflict: 'keep', lease: LEASE })),
    ]);
    expect(results.slice(1).map((r) => r.status)).toEqual(starts.map((_, i) => (i === 3 ? 'rejected' : 'fulfilled')));
    expect((results[4] as PromiseRejectedResult).reason).toBeInstanceOf(StoreError);
    for (let i = 0; i < 6; i++) expect((await store.getRun(`f-${i}`))?.input).toBe(i === 3 ? undefined : `{"i":${i}}`);
    const held = await withPgClient(url, async (query) => Number((await query(`SELECT held FROM ${store.names.flowKeys} WHERE key = 'c:f'`))[0]?.held));
    expect(held).toBe(6);
  });
});

describePg('Postgres group commit: plans', () => {
  const open = storesOf('cairn_gcp');
  const BATCH = [
    'commitBatch',
    'commitBatchNoWait',
    'commitBatchEvents',
    'commitBatchNoWaitEvents',
    'commitFastBatch',
    'commitFastBatchEvents',
    'createRunBatch',
    'createRunFlowBatch',
  ] as const;

  /**
   * How the generic plan of each batch statement (what a prepared statement keeps) reads the runs table: one entry per
   * plan node on it, `Index Scan using <index>`, `Seq Scan`, … (updates left out: they write the rows found below them).
   */
  async function runsAccess(store: PostgresStore): Promise<Record<string, string[]>> {
    const sql = buildStatements(store.names);
    return withPgClient(url, async (query) => {
      await query('SET plan_cache_mode = force_generic_plan');
      const out: Record<string, string[]> = {};
      for (const name of BATCH) {
        await query(`PREPARE ${name} AS ${sql[name]}`);
        const [row] = await query(`EXPLAIN (FORMAT JSON) EXECUTE ${name}('[]')`);
        const nodes: string[] = [];
        const walk = (node: Record<string, unknown>) => {
          if (node['Relation Name'] === store.names.tables.runs && node['Node Type'] !== 'ModifyTable') {
            nodes.push(`${String(node['Node Type'])}${node['Index Name'] ? ` using ${String(node['Index Name'])}` : ''}`);
          }
          for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
        };
        walk((row['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0].Plan);
        out[name] = nodes;
      }
      return out;
    });
  }

  it('finds each run of a batch by its key in the generic plans, whatever the table held when they were made', async () => {
    // A prepared statement keeps its generic plan. One made while the table was new or small must not read the whole
    // table (or a whole index) once it has grown: each batch then cost O(runs), 24 ms at 15,000 runs, until
    // autovacuum's ANALYZE happened to replan it.
    const store = await open();
    const byKey = (plans: Record<string, string[]>) =>
      Object.fromEntries(Object.entries(plans).map(([name, nodes]) => [name, nodes.filter((node) => node !== `Index Scan using ${store.names.tables.runs}_pkey`)]));
    const none = Object.fromEntries(BATCH.map((name) => [name, []]));
    const fresh = await runsAccess(store);
    expect(fresh.commitBatchEvents.length).toBeGreaterThanOrEqual(4);
    expect(fresh.commitFastBatchEvents.length).toBeGreaterThanOrEqual(2);
    expect(byKey(fresh)).toEqual(none);
    let made = 0;
    // NOTE: analyzed at a few pages (100 runs), a seq scan is the cheaper plan, rightly; autovacuum analyzes a
    // growing table again after every 10% of growth, which replans it.
    for (const size of [1_000, 3_000]) {
      for (; made < size; made += 100) {
        await Promise.all(
          Array.from({ length: 100 }, (_, j) =>
            store.createRun({ runId: `r-${made + j}`, workflow: 'w', version: 1, input: '{}', state: '{}' }, { onConflict: 'keep', lease: LEASE }),
          ),
        );
      }
      await withPgClient(url, (query) => query(`ANALYZE ${store.names.runs}`));
      expect({ size, plans: byKey(await runsAccess(store)) }).toEqual({ size, plans: none });
    }
  }, 60_000);
});

describe('PGlite group commit', () => {
  it('commits 50 concurrent runs through batch statements on PGlite too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-gc-pglite-'));
    const store = createPgliteStore({ dataDir: dir });
    try {
      await store.init();
      const client = (store as unknown as { client: SqlClient }).client;
      const prepared = client.prepared!.bind(client);
      const texts: string[] = [];
      client.prepared = (name, sql, params) => {
        texts.push(sql);
        return prepared(name, sql, params);
      };
      const a = await scenario(store);
      verify(a);
      const commits = texts.filter((t) => /signal_seq AS seq0/.test(t));
      expect(commits.filter((t) => t.includes('json_to_recordset($1::json)')).length).toBeGreaterThan(0);
      expect(commits.length).toBeLessThan(N / 2);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
