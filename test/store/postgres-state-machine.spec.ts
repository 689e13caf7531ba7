import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SCHEMA_VERSION, schemaNames, schemaStatements } from '../../src/store/postgres/postgres.schema.js';
import { buildStatements } from '../../src/store/postgres/postgres.sql.js';
import { PostgresStore } from '../../src/store/postgres/postgres.store.js';
import {
  CLAIMABLE_STATUSES,
  DUE_ON_RELEASE,
  LIVE_STATUSES,
  RUN_STATUSES,
  type RunStatus,
  STARTED_BY_CLAIM,
  statusAfterClaim,
  TERMINAL_STATUSES,
} from '../../src/store/run-state-machine.js';
import type { LeaseRequest } from '../../src/store/workflow-store.interface.js';
import { dropSchema, randomSchemaName, withPgClient } from '../setup/postgres-server.js';
import { testPostgres } from '../setup/test-servers.js';
import { newRun } from '../support/runs.js';

/**
 * The Postgres store's copy of the run state machine (src/store/run-state-machine.ts) must be the definition itself:
 * every status list in its SQL is one of the definition's classes, and each class behaves as defined on a real
 * database. A hand-written list, a typo in a status or a class rendered into the wrong place fails here.
 */

const { url, describe: describePg } = testPostgres();
const LEASE: LeaseRequest = { owner: 'spec', leaseMs: 30_000 };
const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };

const CLASSES: Record<string, readonly string[]> = {
  RUN_STATUSES,
  TERMINAL_STATUSES,
  LIVE_STATUSES,
  CLAIMABLE_STATUSES,
  STARTED_BY_CLAIM,
  DUE_ON_RELEASE,
};

/**
 * String literals of the SQL that are not statuses: event types, control outcomes, JSON keys, SQL constants. A new
 * literal must be added here (when it is no status) or be a status of RUN_STATUSES.
 */
const NOT_STATUSES = new Set([
  'ready',
  'control',
  'finished',
  'ok',
  'noop',
  'not-active',
  'invalid-state',
  'type',
  'runId',
  'name',
  'status',
  'attempts',
  'output',
  'startedAt',
  'finishedAt',
  'error',
  'heartbeatAt',
  'heartbeat',
  'epoch',
  '1 millisecond',
  'milliseconds',
  'f',
  ':', // the claim filter's `<version>:<workflow>` keys
  'c:', // flow control: the counter keys of concurrency keys
  'r:', // … and of rate keys
  'step', // a concurrency limit's scope
  'concurrency', // StoredRun.blockedBy
  'rate-limit',
]);

/** Every statement the store sends, and its DDL, for a given schema and prefix. */
function everyStatement(schema: string, prefix: string): Record<string, string> {
  const names = schemaNames(schema, prefix);
  const sql = buildStatements(names);
  const all: Record<string, string> = {};
  for (const [key, value] of Object.entries(sql)) if (typeof value === 'string') all[key] = value;
  for (const workflow of [false, true]) {
    for (const statuses of [false, true]) {
      for (const after of [false, true]) {
        all[`list(${workflow},${statuses},${after})`] = sql.list({ workflow, statuses, after });
        all[`list(${workflow},${statuses},${after},created)`] = sql.list({ workflow, statuses, after, createdFrom: true, createdTo: true });
      }
    }
  }
  all['list(parentRunId)'] = sql.list({ workflow: true, statuses: true, after: true, parentRunId: true });
  schemaStatements(names).forEach((ddl, i) => (all[`schema #${i}`] = ddl));
  return all;
}

/** The SQL text without its `--` comments (their words are no SQL). */
const withoutComments = (sql: string) => sql.replace(/--[^\n]*/g, '');

/** The SQL text without comments and configuration-derived parts (quoted names, the NOTIFY channel literal). */
function withoutNames(sql: string, channel: string): string {
  return withoutComments(sql).replace(/"(?:[^"]|"")*"/g, '"x"').split(`'${channel}'`).join("'<channel>'");
}


const LITERAL = /'((?:[^']|'')*)'/g;
const unquote = (literal: string) => literal.slice(1, -1).replace(/''/g, "'");

/** The literal lists of `IN (…)` / `NOT IN (…)`: `'a','b'` → ['a', 'b']. */
function literalLists(sql: string): string[][] {
  const lists: string[][] = [];
  for (const match of withoutComments(sql).matchAll(/\bIN\s*\(([^()]*)\)/gi)) {
    const body = match[1];
    if (!body.includes("'")) continue;
    const items = body.split(',').map((item) => item.trim());
    for (const item of items) expect(item).toMatch(/^'(?:[^']|'')*'$/);
    lists.push(items.map(unquote));
  }
  return lists;
}

describe('postgres store SQL: status lists come from run-state-machine.ts', () => {
  const schema = 'public';
  const prefix = 'cairn_';
  const statements = everyStatement(schema, prefix);
  const channel = schemaNames(schema, prefix).channel;

  it('finds the status lists it checks (the claim, the terminal class, the schema CHECK)', () => {
    const lists = Object.values(statements).flatMap(literalLists);
    for (const cls of [RUN_STATUSES, TERMINAL_STATUSES, CLAIMABLE_STATUSES, STARTED_BY_CLAIM, DUE_ON_RELEASE]) {
      expect(lists).toContainEqual([...cls]);
    }
  });

  it.each(Object.keys(statements).map((key) => [key]))('%s: every IN / NOT IN list of statuses is a class of the definition', (key) => {
    for (const list of literalLists(statements[key])) {
      const cls = Object.entries(CLASSES).find(([, statuses]) => statuses.length === list.length && statuses.every((s, i) => s === list[i]));
      expect({ list, cls: cls?.[0] }).toEqual({ list, cls: expect.any(String) });
    }
  });

  it.each(Object.keys(statements).map((key) => [key]))('%s: every string literal is a status of RUN_STATUSES or a known non-status', (key) => {
    const text = withoutNames(statements[key], channel);
    const unknown = [...text.matchAll(LITERAL)]
      .map((m) => unquote(m[0]))
      .filter((value) => value !== '<channel>' && !NOT_STATUSES.has(value) && !(RUN_STATUSES as readonly string[]).includes(value));
    expect(unknown).toEqual([]);
  });

  it('renders the DDL as schema version 8 has it (a changed class changes the schema: bump SCHEMA_VERSION, add a migration)', () => {
    // NOTE: the status CHECK and the claim index predicate are rendered from the definition, but a database created
    // by an earlier release keeps its own: a new status or class needs a migration of both. Update these texts then.
    expect(SCHEMA_VERSION).toBe(8);
    const ddl = Object.values(statements).join('\n');
    expect(ddl).toContain(
      `CHECK (status IN ('pending','running','sleeping','waiting','paused','compensating','completed','compensated','failed','cancelled'))`,
    );
    expect(ddl).toContain(`WHERE status IN ('pending','running','sleeping','waiting','compensating') AND due_at IS NOT NULL`);
    // Version 5: the runs' histories and the steps' heartbeats.
    expect(ddl).toContain('event_seq integer NOT NULL DEFAULT 0');
    expect(ddl).toMatch(/CREATE TABLE IF NOT EXISTS "public"\."cairn_run_events" \(\s*run_id text COLLATE "C" NOT NULL,\s*seq integer NOT NULL,\s*body text NOT NULL,\s*PRIMARY KEY \(run_id, seq\)\s*\)/);
    expect(ddl).toMatch(/heartbeat_at timestamptz,\s*heartbeat text,/);
    // Version 6: the runs' pipeline fingerprints and the pipeline descriptions.
    expect(ddl).toMatch(/event_seq integer NOT NULL DEFAULT 0,\s*pipeline text,/);
    expect(ddl).toMatch(/CREATE TABLE IF NOT EXISTS "public"\."cairn_pipelines" \(\s*fingerprint text COLLATE "C" PRIMARY KEY,\s*body text NOT NULL\s*\)/);
    // Version 7: waits for several signals, child runs, signal ids.
    expect(ddl).toMatch(/next_input text,\s*next_input_signal text,\s*wait_signals text\[\],\s*wait_until timestamptz,/);
    expect(ddl).not.toMatch(/wait_signal text/);
    expect(ddl).toMatch(
      /pipeline text,\s*parent_run_id text COLLATE "C",\s*children_ended integer,\s*children_failed boolean,\s*children_wait_ended_at_least integer,\s*children_fail_fast boolean,/,
    );
    expect(ddl).toMatch(/CREATE TABLE IF NOT EXISTS "public"\."cairn_signal_ids" \(\s*run_id text COLLATE "C" NOT NULL,\s*id text NOT NULL,\s*PRIMARY KEY \(run_id, id\)\s*\)/);
    expect(ddl).toMatch(
      /CREATE INDEX IF NOT EXISTS "cairn_runs_parent_list_idx" ON "public"\."cairn_runs" \(parent_run_id, created_at DESC, run_id DESC\)\s*WHERE parent_run_id IS NOT NULL/,
    );
    // Version 8: flow control (priorities, limits, debounce), the counters per key, the claim index by priority.
    expect(ddl).toMatch(
      /children_fail_fast boolean,\s*priority bigint NOT NULL DEFAULT 0,\s*conc_key text,\s*conc_limit integer,\s*conc_scope text,\s*slot_held boolean NOT NULL DEFAULT false,\s*rate_key text,\s*rate_limit integer,\s*rate_per_ms bigint,\s*debounce_key text,\s*debounce_first timestamptz\s*\) WITH \(fillfactor = 85\)/,
    );
    expect(ddl).toMatch(
      /CREATE TABLE IF NOT EXISTS "public"\."cairn_flow_keys" \(\s*key text COLLATE "C" PRIMARY KEY,\s*held integer NOT NULL DEFAULT 0,\s*begins timestamptz\[\] NOT NULL DEFAULT ARRAY\[\]::timestamptz\[\]\s*\)/,
    );
    expect(ddl).toMatch(/CREATE INDEX IF NOT EXISTS "cairn_runs_claim_idx" ON "public"\."cairn_runs" \(priority DESC, due_at\)\s*WHERE status IN/);
    expect(ddl).toMatch(/CREATE UNIQUE INDEX IF NOT EXISTS "cairn_runs_debounce_idx" ON "public"\."cairn_runs" \(debounce_key\) WHERE debounce_key IS NOT NULL/);
  });

  it('summarizes the live runs by the live class, the leading column of the status list index', () => {
    expect(statements.summarizeLiveRuns).toContain(`WHERE r.status IN ('${LIVE_STATUSES.join("','")}')`);
    const index = Object.values(statements).find((sql) => sql.includes('_status_list_idx'))!;
    expect(index).toMatch(/ON "public"\."cairn_runs" \(status, /);
  });

  it('renders the claim index predicate as the claim statements do (one text: the planner matches them)', () => {
    const index = Object.values(statements).find((sql) => sql.includes('_claim_idx'))!;
    expect(index).toMatch(/^CREATE INDEX/);
    const predicate = `status IN ('${CLAIMABLE_STATUSES.join("','")}')`;
    expect(index).toContain(predicate);
    for (const key of ['claimRuns', 'claimRunsForWorkflows', 'claimRun', 'claimRunForWorkflows']) {
      expect(statements[key]).toContain(`r.${predicate}`);
    }
  });
});

describePg('postgres store: each status behaves as run-state-machine.ts defines', () => {
  let store: PostgresStore;
  const sql = () => buildStatements(store.names);
  const query = <T>(fn: (q: (text: string, params?: unknown[]) => Promise<Record<string, unknown>[]>) => Promise<T>) => withPgClient(url, fn);

  beforeAll(async () => {
    store = new PostgresStore({ url, schema: randomSchemaName(), logger: silent, groupCommit: false });
    await store.init();
  });
  afterAll(async () => {
    await store.close();
    await dropSchema(url, store.names.schema);
  });

  /** A run forced into `status` behind the store's back; `leased`: with a live lease (its token returned). */
  async function runIn(status: RunStatus, set: { leased: boolean; due: 'past' | 'future' | 'none' }): Promise<{ runId: string; token?: string }> {
    const { run } = await store.createRun(newRun(), { onConflict: 'keep', lease: set.leased ? LEASE : undefined });
    const due = { past: `now() - interval '1 second'`, future: `now() + interval '1 hour'`, none: 'NULL' }[set.due];
    await query((q) =>
      q(
        `UPDATE ${store.names.runs} SET status = $2, due_at = ${due}, finished_at = now() - interval '1 second'
         WHERE run_id = $1`,
        [run.runId, status],
      ),
    );
    return { runId: run.runId, token: run.leaseToken };
  }

  it.each(RUN_STATUSES.map((s) => [s]))('a %s run is claimable iff in CLAIMABLE_STATUSES, and takes statusAfterClaim', async (status) => {
    const { runId } = await runIn(status, { leased: false, due: 'past' });
    const claimed = await store.claimRun(runId, LEASE);
    expect(claimed !== undefined).toBe(CLAIMABLE_STATUSES.includes(status));
    if (claimed) expect(claimed.status).toBe(statusAfterClaim(status));
    expect((await store.getRun(runId))!.status).toBe(claimed ? statusAfterClaim(status) : status);
  });

  it.each(RUN_STATUSES.map((s) => [s]))('releasing the lease of a %s run makes it due iff in DUE_ON_RELEASE', async (status) => {
    const { runId, token } = await runIn(status, { leased: true, due: 'future' });
    await store.releaseLease(runId, token!);
    const run = (await store.getRun(runId))!;
    expect(run.leaseToken).toBeUndefined();
    expect(run.dueAt!.getTime() <= Date.now() + 1_000).toBe(DUE_ON_RELEASE.includes(status));
  });

  it.each(
    RUN_STATUSES.flatMap((s): [RunStatus, string][] => [
      [s, 'the fast path'],
      [s, 'the full statement'],
    ]),
  )('a commit to %s ends the run iff in TERMINAL_STATUSES (%s)', async (status, path) => {
    const { run } = await store.createRun(newRun(), { onConflict: 'keep', lease: LEASE });
    await store.sendSignal(run.runId, 'queued', '1');
    if (path === 'the full statement') expect((await store.control(run.runId, { action: 'pause' })).outcome).toBe('ok');
    expect(await store.commit(run.runId, run.leaseToken!, { leaseMs: 30_000, status })).toMatchObject({ ok: true });
    const after = (await store.getRun(run.runId))!;
    const terminal = TERMINAL_STATUSES.includes(status);
    expect(after.finishedAt !== undefined).toBe(terminal);
    if (terminal) {
      expect(after.status).toBe(status);
      expect(after.leaseToken).toBeUndefined();
      const [row] = await query((q) => q(`SELECT count(*)::integer AS n FROM ${store.names.signals} WHERE run_id = $1`, [run.runId]));
      expect(row.n).toBe(0);
    }
  });

  it.each(RUN_STATUSES.map((s) => [s]))('a %s run refuses signals and pause iff in TERMINAL_STATUSES', async (status) => {
    const terminal = TERMINAL_STATUSES.includes(status);
    const { runId } = await runIn(status, { leased: false, due: 'none' });
    expect((await store.sendSignal(runId, 'go', '1')).outcome).toBe(terminal ? 'not-active' : 'ok');
    const paused = await store.control(runId, { action: 'pause' });
    expect(paused.outcome === 'not-active').toBe(terminal);
  });

  it.each(RUN_STATUSES.map((s) => [s]))('the purge statement deletes a %s run iff in TERMINAL_STATUSES', async (status) => {
    const { runId } = await runIn(status, { leased: false, due: 'none' });
    const [row] = await query((q) => q(sql().purge, [[status], 0, 1_000]));
    // NOTE: other runs of this schema in the same status may go too; only this run's fate is the point.
    expect(Number(row.deleted) > 0).toBe(TERMINAL_STATUSES.includes(status));
    expect((await store.getRun(runId)) === undefined).toBe(TERMINAL_STATUSES.includes(status));
  });
});
