/**
 * `npm run bench -- --curves [--stores=postgres,redis] [--smoke] [--curve-ended=0,100000,1000000] [--curve-live=100000]
 * [--curve-sets=load,workers,rss,resume,cluster] [--json out.json]`: how cairn scales on Postgres and Redis. Prints
 * `bench store=<s> scenario=curve_<name> <x>=<value> …` lines, the x value first (see bench/README.md, "Scaling curves").
 * `--curve-sets` picks the curves (default all; `load` is curve_ended, curve_live and the claim plans), `--curve-live`
 * the number of sleeping and of waiting runs of curve_live (default 100,000 each). Only the Postgres live-runs curve:
 * `--curves --stores=postgres --curve-sets=load --curve-ended=0` (its point without runs is the reference).
 *
 * - `curve_ended`: conc64 (1,000 runs, measured in turns over the points) and the time of one claim
 *   (`claimRuns(lease, 1, refs)`, refs: every workflow of the bench app) with an empty due set and with a few due runs,
 *   in a store holding 0, 100,000 and 1,000,000 ended runs;
 * - `curve_live`: the same with 100,000 sleeping and 100,000 waiting runs in the store (in the same turns);
 * - `curve_claim_plan` (Postgres): the plan of the claim statement at the largest point (`EXPLAIN ANALYZE`, printed as
 *   `plan| …` lines), whether it is an index scan;
 * - `curve_workers`: total conc64 throughput of 1, 2 and 4 worker processes (bench/curve-worker.ts) on one store;
 * - `curve_cluster` (Redis): conc64 on a single Redis and on a Redis Cluster of 3 masters, in turns;
 * - `curve_rss`: bytes per in-flight run of one instance holding 1,000 and 10,000 runs blocked inside a step;
 * - `curve_resume`: the `resume` scenario with 1,000 and 10,000 interrupted runs.
 *
 * The ended, sleeping and waiting runs are copies of a real run of each kind (its row, or its hash and its index
 * entries), written in bulk: Postgres `INSERT … SELECT … generate_series` into the runs and steps tables, Redis
 * pipelines of HSETs, ZADDs and HSETs of the meta hash. Each point has its own schema / key prefix, dropped at the end.
 */
import { randomUUID } from 'node:crypto';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { Cluster, Redis } from 'ioredis';
import type { INestApplicationContext } from '@nestjs/common';
import type { WorkflowClient, WorkflowRef, WorkflowStore } from '../src/index.js';
import { createStore } from '../src/store/create-store.js';
import { claimStatements } from '../src/store/postgres/postgres.claim.sql.js';
import { quoteIdent, schemaNames } from '../src/store/postgres/postgres.schema.js';
import { RedisKeys, globEscape } from '../src/store/redis/redis.keys.js';
import { BenchSleep, BenchWait, boot, conc, pct, resumeRuns, seq, summary, unclosable, type Chunk } from './app.js';
import type { Fields } from './report.js';

export interface CurveContext {
  smoke: boolean;
  /** `postgres`, `redis` (others are ignored). */
  stores: string[];
  /** Prints (and records) a `bench …` line. */
  line(store: string, scenario: string, fields: Fields): void;
  /** `--curve-ended=…`: the ended-run counts (default 0, 100,000, 1,000,000). */
  ended?: number[];
}

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const logger = { log() {}, warn() {}, error: (m: string) => console.error(m) };
const started = performance.now();
/** Progress, on stderr (the `bench …` lines are on stdout). */
const progress = (m: string) => console.error(`[curves ${((performance.now() - started) / 1000).toFixed(0).padStart(4)}s] ${m}`);
const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);

/** Options of the curves that bench/run.ts does not pass on (read from the command line here). */
const argv = process.argv.slice(2);
const argOption = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
/** `--curve-sets=…`: which curves to run (default all). */
const curveSets = new Set((argOption('curve-sets') ?? 'load,workers,rss,resume,cluster').split(','));
/** `--curve-live=N`: the sleeping runs and the waiting runs of curve_live (default 100,000 each; smoke 200). */
const liveOption = argOption('curve-live');

/** Every workflow the curve apps register, at version 1 (the bench's workflows declare none): what their worker claims. */
const APP_WORKFLOWS = ['bench3', 'bench20', 'bench1', 'benchFanout', 'bench3key', 'benchSleep', 'benchWait'];

type Kind = 'ended' | 'sleeping' | 'waiting';
const STATUS_OF: Record<Kind, string> = { ended: 'completed', sleeping: 'sleeping', waiting: 'waiting' };

/** What the curves need of a store kind. */
interface Backend {
  name: 'postgres' | 'redis';
  /** A new store on a schema / key prefix of its own (`tag` names it). */
  make(tag: string): Promise<WorkflowStore>;
  /**
   * Reads the run `templateId` (of status `kind`) of the store made for `tag`; the function returned writes `count`
   * copies of it. (Apart, so that the reading of every template comes before the seeding of any: the Redis one scans
   * the keyspace.)
   */
  seed(tag: string, templateId: string, kind: Kind): Promise<(count: number) => Promise<void>>;
  /** After the seeding: lets the server finish its background work (Postgres CHECKPOINT, Redis AOF rewrite). */
  settle(): Promise<void>;
  /** Postgres: the checkpoints the server has begun so far (timed and requested), to count those inside a point. */
  checkpoints?(): Promise<number>;
  /**
   * Postgres: until `stop()`, commits a one-row INSERT every 100 ms on a connection of its own; `stop()` gives their
   * median latency (ms): what a bare durable write costs on the server and its disk meanwhile.
   */
  commitProbe?(): Promise<{ stop(): Promise<number> }>;
  /** Removes everything the stores made for these tags wrote. */
  cleanup(tags: string[]): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------------
// Postgres
// ---------------------------------------------------------------------------------------------------------------------

export function postgresBackend(url: string): Backend & { url: string; schema(tag: string): string; sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]> } {
  const base = `bc_${randomUUID().slice(0, 8)}`;
  const schema = (tag: string) => `${base}_${tag}`;
  const sql = async <T,>(text: string, params?: unknown[]): Promise<T[]> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(text, params)).rows as T[];
    } finally {
      await client.end();
    }
  };
  const columns = async (s: string, table: string) =>
    (await sql<{ column_name: string }>(`SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, [s, table])).map(
      (r) => r.column_name,
    );
  return {
    name: 'postgres',
    url,
    schema,
    sql,
    make: (tag) => createStore({ type: 'postgres', url, schema: schema(tag) }, logger),
    async seed(tag, templateId, kind) {
      const n = schemaNames(schema(tag));
      const ms = (g: string) => `${g} * interval '1 millisecond'`;
      // Every column of the template row, but: a new id, times spread 1 ms apart, no lease, no debounce key, and the
      // status, due time and end time of the kind (columns that do not exist are simply not there).
      const runOverrides: Record<string, string> = {
        run_id: `$1::text || g`,
        created_at: `t.created_at - ${ms('g')}`,
        updated_at: `t.updated_at - ${ms('g')}`,
        lease_owner: 'NULL',
        lease_token: 'NULL',
        lease_expires_at: 'NULL',
        debounce_key: 'NULL',
        status: `'${STATUS_OF[kind]}'`,
        ...(kind === 'ended' ? { due_at: 'NULL', finished_at: `COALESCE(t.finished_at, t.updated_at) - ${ms('g')}` } : {}),
        ...(kind === 'sleeping' ? { due_at: `now() + interval '1 day' + ${ms('g')}`, finished_at: 'NULL' } : {}),
        ...(kind === 'waiting' ? { finished_at: 'NULL' } : {}),
      };
      const runCols = await columns(n.schema, n.tables.runs);
      const stepCols = await columns(n.schema, n.tables.steps);
      return async (count) => {
        const prefix = `seed-${kind}-${randomUUID().slice(0, 8)}-`;
        const batch = 250_000;
        for (let from = 1; from <= count; from += batch) {
          const to = Math.min(count, from + batch - 1);
          await sql(
            `INSERT INTO ${n.runs} (${runCols.map(quoteIdent).join(', ')})
             SELECT ${runCols.map((c) => runOverrides[c] ?? `t.${quoteIdent(c)}`).join(', ')}
             FROM ${n.runs} t CROSS JOIN generate_series($3::integer, $4::integer) g WHERE t.run_id = $2::text`,
            [prefix, templateId, from, to],
          );
          await sql(
            `INSERT INTO ${n.steps} (${stepCols.map(quoteIdent).join(', ')})
             SELECT ${stepCols.map((c) => (c === 'run_id' ? `$1::text || g` : `s.${quoteIdent(c)}`)).join(', ')}
             FROM ${n.steps} s CROSS JOIN generate_series($3::integer, $4::integer) g WHERE s.run_id = $2::text`,
            [prefix, templateId, from, to],
          );
        }
        await sql(`VACUUM (ANALYZE) ${n.runs}`);
        await sql(`VACUUM (ANALYZE) ${n.steps}`);
      };
    },
    async settle() {
      await sql('CHECKPOINT');
    },
    async commitProbe() {
      const table = `${quoteIdent(`${base}_probe`)}.probe`;
      await sql(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(`${base}_probe`)}; CREATE TABLE IF NOT EXISTS ${table} (at timestamptz)`);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const times: number[] = [];
      let on = true;
      const loop = (async () => {
        while (on) {
          const t0 = performance.now();
          await client.query(`INSERT INTO ${table} VALUES (now())`);
          times.push(performance.now() - t0);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      return {
        async stop() {
          on = false;
          await loop;
          await client.end();
          await sql(`DROP SCHEMA ${quoteIdent(`${base}_probe`)} CASCADE`);
          return median(times);
        },
      };
    },
    async checkpoints() {
      const [row] = await sql<{ n: string }>('SELECT checkpoints_timed + checkpoints_req AS n FROM pg_stat_bgwriter');
      return Number(row.n);
    },
    async cleanup(tags) {
      for (const tag of tags) await sql(`DROP SCHEMA IF EXISTS ${quoteIdent(schema(tag))} CASCADE`);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Writes copies of a template run: ARGV template hash key, template steps key, meta hash key, the template's meta
 * value, the number of index zsets, then each zset's key and the template's score in it, then 4 per copy: its hash key,
 * its steps key, its id, and g (its times are the template's minus g ms).
 */
const SEED_SCRIPT = `
local tmpl = redis.call('HGETALL', ARGV[1])
local steps = redis.call('HGETALL', ARGV[2])
local meta, mv = ARGV[3], ARGV[4]
local nz = tonumber(ARGV[5])
local zs = {}
for i = 1, nz do zs[i] = {ARGV[4 + 2 * i], ARGV[5 + 2 * i]} end
local times = {ca = true, ua = true, fa = true, due = true, wu = true}
local function isTime(n) return n and n > 1e12 and n < 1e13 end
local i = 6 + 2 * nz
while i <= #ARGV do
  local rk, sk, id, g = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local f = {}
  for j = 1, #tmpl, 2 do
    local k, v = tmpl[j], tmpl[j + 1]
    if k == 'id' then v = id
    elseif times[k] and isTime(tonumber(v)) then v = string.format('%d', tonumber(v) - g) end
    f[#f + 1] = k
    f[#f + 1] = v
  end
  redis.call('HSET', rk, unpack(f))
  if #steps > 0 then redis.call('HSET', sk, unpack(steps)) end
  for _, z in ipairs(zs) do
    local score = z[2]
    if isTime(tonumber(score)) then score = string.format('%d', tonumber(score) - g) end
    redis.call('ZADD', z[1], score, id)
  end
  redis.call('HSET', meta, id, mv)
  i = i + 4
end
return 1
`;

/**
 * `ownServer`: the server was started by the bench (not REDIS_URL), so its automatic AOF rewrites may be paused while
 * the seeding grows the AOF (each would fork and copy the dataset meanwhile); `settle()` rewrites it once and restores
 * the setting.
 */
export function redisBackend(url: string, ownServer = false): Backend & { prefix(tag: string): string } {
  const base = `bc:${randomUUID().slice(0, 8)}:`;
  const prefix = (tag: string) => `${base}${tag}:`;
  const withClient = async <T,>(fn: (client: Redis) => Promise<T>): Promise<T> => {
    const client = new Redis(url, { maxRetriesPerRequest: null });
    try {
      return await fn(client);
    } finally {
      client.disconnect();
    }
  };
  return {
    name: 'redis',
    prefix,
    make: (tag) => createStore({ type: 'redis', url, keyPrefix: prefix(tag) }, logger),
    seed: async (tag, templateId, kind) => {
      const client = new Redis(url, { maxRetriesPerRequest: null });
      try {
        const keys = new RedisKeys(prefix(tag));
        const template = keys.run(templateId);
        const hash = await client.hgetall(template.run);
        if (hash.st !== STATUS_OF[kind]) throw new Error(`curves: the ${kind} template run is ${hash.st}, not ${STATUS_OF[kind]}`);
        const meta = await client.hget(keys.meta, templateId);
        if (!meta) throw new Error('curves: the template run has no meta entry');
        // The index zsets the template run is in (whatever the layout): every zset of the prefix's index slot.
        const zsets: { key: string; score: number }[] = [];
        let cursor = '0';
        do {
          const [next, found] = (await client.call('SCAN', cursor, 'MATCH', `${globEscape(keys.index)}*`, 'COUNT', '10000', 'TYPE', 'zset')) as [string, string[]];
          cursor = next;
          for (const key of found) {
            const score = await client.zscore(key, templateId);
            if (score !== null) zsets.push({ key, score: Number(score) });
          }
        } while (cursor !== '0');
        const expected = kind === 'ended' ? [keys.created, keys.byStatus('completed'), keys.byWorkflow(hash.wf), keys.byWorkflowStatus(hash.wf, 'completed'), keys.finished('completed')] : [keys.created];
        for (const key of expected) if (!zsets.some((z) => z.key === key)) throw new Error(`curves: the ${kind} template run is not in ${key}`);
        progress(`redis ${kind} template is in ${zsets.length} index zsets (${zsets.map((z) => z.key.slice(keys.index.length)).join(' ')}) and the meta hash`);
        // The copies are written by a script on the server (a standalone one: the curves seed no cluster), from the
        // template's hash, steps and index entries: one call per 5,000 runs instead of ~8 commands per run. Times (ms
        // since the epoch) move 1 ms per copy, as the rows of Postgres do.
        const runPrefix = `seed-${kind}-${randomUUID().slice(0, 8)}-`;
        const head = [template.run, template.steps, keys.meta, meta, String(zsets.length), ...zsets.flatMap((z) => [z.key, String(z.score)])];
        return (count) =>
          withClient(async (writer) => {
            if (ownServer) await writer.config('SET', 'auto-aof-rewrite-percentage', '0');
            const batch = 5_000;
            for (let from = 1; from <= count; from += batch) {
              const to = Math.min(count, from + batch - 1);
              const argv = [...head];
              for (let g = from; g <= to; g++) {
                const id = `${runPrefix}${g}`;
                const k = keys.run(id);
                argv.push(k.run, k.steps, id, String(g));
              }
              await writer.eval(SEED_SCRIPT, 0, ...argv);
            }
          });
      } finally {
        client.disconnect();
      }
    },
    settle: () =>
      withClient(async (client) => {
        // NOTE: the seeding grew the AOF; its rewrite (a fork copying the dataset) must not fall in the measurements,
        // nor the freeing of the keys a cleanup unlinked.
        await client.bgrewriteaof().catch(() => undefined);
        for (let i = 0; i < 2_400; i++) {
          const info = `${await client.info('persistence')}${await client.info('memory')}`;
          if (/aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info) && /lazyfree_pending_objects:0/.test(info)) break;
          await new Promise((r) => setTimeout(r, 250));
        }
        if (ownServer) await client.config('SET', 'auto-aof-rewrite-percentage', '100');
      }),
    cleanup: (tags) =>
      withClient(async (client) => {
        for (const tag of tags) {
          let cursor = '0';
          do {
            const [next, found] = await client.scan(cursor, 'MATCH', `${globEscape(prefix(tag))}*`, 'COUNT', 10_000);
            cursor = next;
            if (found.length > 0) await client.unlink(...found);
          } while (cursor !== '0');
        }
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// curve_ended, curve_live (and the claim plan)
// ---------------------------------------------------------------------------------------------------------------------

interface Point {
  tag: string;
  scenario: 'curve_ended' | 'curve_live';
  x: Fields;
  counts: Partial<Record<Kind, number>>;
  store?: WorkflowStore;
  app?: INestApplicationContext;
  client?: WorkflowClient;
  chunks: Chunk[];
  claimEmpty: number[];
  claimDue: number[];
  seedS: number;
}

/** Waits until a run has one of `statuses` (the template of a sleeping or waiting run). */
async function waitForStatus(store: WorkflowStore, runId: string, status: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const run = await store.getRun(runId);
    if (run?.status === status && !run.leaseToken) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`curves: run ${runId} did not reach status ${status}`);
}

async function loadCurves(ctx: CurveContext, backend: Backend, pgExtras?: ReturnType<typeof postgresBackend>): Promise<void> {
  const { smoke } = ctx;
  const ended = ctx.ended ?? (smoke ? [0, 200, 2_000] : [0, 100_000, 1_000_000]);
  const live = liveOption ? Number(liveOption) : smoke ? 200 : 100_000;
  const points: Point[] = [
    ...ended.map((n, i): Point => ({ tag: `e${i}`, scenario: 'curve_ended', x: { ended: n }, counts: { ended: n }, chunks: [], claimEmpty: [], claimDue: [], seedS: 0 })),
    { tag: 'live', scenario: 'curve_live', x: { sleeping: live, waiting: live }, counts: { sleeping: live, waiting: live }, chunks: [], claimEmpty: [], claimDue: [], seedS: 0 },
  ];
  // NOTE: a process's rate still rises over its first few thousand runs (V8 optimizing the engine's path, see the
  // README's warm-up note), so the process warms up first, then each point's app, and the points are measured in turns.
  const runsPerPoint = smoke ? 40 : 4_000;
  const turns = smoke ? 2 : 8;
  const warm = smoke ? 20 : 500;
  try {
    const jobs: { p: Point; kind: Kind; count: number; write: (count: number) => Promise<void> }[] = [];
    for (const p of points) {
      p.store = await backend.make(p.tag);
      const { app, client } = await boot(unclosable(p.store), {}, undefined, [BenchSleep, BenchWait]);
      Object.assign(p, { app, client });
      for (const kind of ['ended', 'sleeping', 'waiting'] as const) {
        const count = p.counts[kind];
        if (!count) continue;
        const workflow = kind === 'ended' ? 'bench3' : kind === 'sleeping' ? 'benchSleep' : 'benchWait';
        const handle = await client.start(workflow, { n: -1 }, { id: `template-${kind}-${randomUUID().slice(0, 8)}` });
        if (kind === 'ended') await handle.result({ timeout: '30s' });
        await waitForStatus(p.store, handle.runId, STATUS_OF[kind]);
        jobs.push({ p, kind, count, write: await backend.seed(p.tag, handle.runId, kind) });
      }
    }
    for (const job of jobs) {
      progress(`${backend.name} ${job.p.tag}: seeding ${job.count} ${job.kind} runs`);
      const t0 = performance.now();
      await job.write(job.count);
      job.p.seedS += (performance.now() - t0) / 1000;
      progress(`${backend.name} ${job.p.tag}: ${job.count} ${job.kind} runs seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    await backend.settle();
    progress(`${backend.name}: warming up ${points.length} apps`);
    await seq(points[0].client!, 'bench3', smoke ? 10 : 1_500);
    for (const p of points) await conc(p.client!, warm, 64);
    // conc64 in turns over the points (forward on even turns, backward on odd ones): each sees the same machine drift.
    for (let t = 0; t < turns; t++) {
      for (const p of t % 2 === 0 ? points : [...points].reverse()) p.chunks.push(await conc(p.client!, Math.round(runsPerPoint / turns), 64));
    }
    for (const p of points) await p.app!.close();
    // One claim at a time, as a worker's poll asks for it: with nothing due, then with a few runs due.
    const refs: WorkflowRef[] = APP_WORKFLOWS.map((workflow) => ({ workflow, version: 1 }));
    const lease = { owner: 'curve-claim', leaseMs: 600_000 };
    const rounds = smoke ? 2 : 5;
    const due = smoke ? 3 : 5;
    for (let r = 0; r < rounds; r++) {
      for (const p of r % 2 === 0 ? points : [...points].reverse()) {
        const store = p.store!;
        for (let i = 0; i < due; i++) {
          const s = performance.now();
          const got = await store.claimRuns(lease, 1, refs);
          p.claimEmpty.push(performance.now() - s);
          if (got.length !== 0) throw new Error(`curves: a claim on an empty due set claimed ${got[0].runId}`);
        }
        for (let i = 0; i < due; i++) {
          await store.createRun({ runId: `due-${r}-${i}-${randomUUID().slice(0, 8)}`, workflow: 'bench3', version: 1, input: '{"n":0}', state: '{}' }, { onConflict: 'keep' });
        }
        for (let i = 0; i < due; i++) {
          const s = performance.now();
          const got = await store.claimRuns(lease, 1, refs);
          p.claimDue.push(performance.now() - s);
          if (got.length !== 1) throw new Error(`curves: a claim with ${due - i} runs due claimed ${got.length}`);
        }
      }
    }
    // wf_per_s: all of a point's runs over the sum of its turns' times; turn_median_wf_per_s: the median of its turns'
    // rates, which a burst of the other tenants' load in one or two turns moves less.
    const turnMedian = (p: Point) => median(p.chunks.map((c) => c.lat.length / (c.ms / 1000)));
    const base = summary(points[0].chunks).wf_per_s;
    const baseMedian = turnMedian(points[0]);
    for (const p of points) {
      const s = summary(p.chunks);
      ctx.line(backend.name, p.scenario, {
        ...p.x,
        wf_per_s: s.wf_per_s,
        p50_ms: s.p50_ms,
        p99_ms: s.p99_ms,
        runs: s.runs,
        claim_empty_ms: median(p.claimEmpty),
        claim_due_ms: median(p.claimDue),
        ratio_vs_0: s.wf_per_s / base,
        turn_median_wf_per_s: turnMedian(p),
        turn_median_ratio_vs_0: turnMedian(p) / baseMedian,
        seed_s: p.seedS,
      });
    }
    if (pgExtras) {
      const endedPoints = points.filter((p) => p.scenario === 'curve_ended');
      for (const p of new Set([endedPoints[0], endedPoints.at(-1)!])) await claimPlan(ctx, pgExtras, p, refs);
      // With nothing due, among the sleeping and waiting runs: the claim reads none of their entries (see the README).
      await claimPlan(ctx, pgExtras, points.at(-1)!, refs, false);
    }
  } finally {
    for (const p of points) await p.store?.close().catch(() => undefined);
    await backend.cleanup(points.map((p) => p.tag));
  }
}

/**
 * `curve_claim_plan`: `EXPLAIN (ANALYZE, BUFFERS)` of the claim statement the worker sends (`claimRunsForWorkflows`,
 * one run, the app's workflows), with a few runs due (`due=5`) or none (`due=0`; the claims of the curve left theirs
 * leased), as a custom and as a generic plan (the store sends it as a named prepared statement: after five executions
 * Postgres may keep a generic plan), each explained twice on one connection (the first planning of a session also fills
 * its catalog caches) and the second kept. Then the plan cache's own choice (`plan_cache_mode = auto`) over 10
 * executions: `auto_generic_plans` / `auto_custom_plans`. All in a transaction rolled back. Prints the plans as
 * `plan| <point> <custom|generic> | …` lines.
 */
async function claimPlan(ctx: CurveContext, backend: ReturnType<typeof postgresBackend>, point: Point, refs: WorkflowRef[], due = true): Promise<void> {
  const store = point.store!;
  for (let i = 0; i < (due ? 5 : 0); i++) {
    await store.createRun({ runId: `plan-due-${i}-${randomUUID().slice(0, 8)}`, workflow: 'bench3', version: 1, input: '{"n":0}', state: '{}' }, { onConflict: 'keep' });
  }
  const n = schemaNames(backend.schema(point.tag));
  const statement = claimStatements(n).claimRunsForWorkflows;
  const names = refs.map((r) => r.workflow);
  const versions = refs.map((r) => r.version);
  const keys = refs.map((r) => `${r.version}:${r.workflow}`);
  const lit = (xs: (string | number)[]) => `ARRAY[${xs.map((x) => (typeof x === 'number' ? String(x) : `'${x.replace(/'/g, "''")}'`)).join(',')}]`;
  const execute = `EXECUTE curve_claim('curve-plan', 600000, 1, ${lit(names)}::text[], ${lit(versions)}::integer[], ${lit(keys)}::text[])`;
  const plans: Record<string, string[]> = {};
  const fields: Fields = { ...point.x, due: due ? 5 : 0 };
  const label = Object.entries(point.x).map(([k, v]) => `${k}=${v}`).join(' ');
  await withPg(backend.url, async (query) => {
    await query('BEGIN');
    await query(`PREPARE curve_claim(text, integer, integer, text[], integer[], text[]) AS ${statement}`);
    for (const mode of ['force_custom_plan', 'force_generic_plan']) {
      await query(`SET LOCAL plan_cache_mode = ${mode}`);
      for (let i = 0; i < 2; i++) plans[mode] = (await query(`EXPLAIN (ANALYZE, BUFFERS) ${execute}`)).map((r) => String(r['QUERY PLAN']));
    }
    await query('ROLLBACK');
    await query('DEALLOCATE curve_claim');
    await query('BEGIN');
    await query(`PREPARE curve_claim(text, integer, integer, text[], integer[], text[]) AS ${statement}`);
    for (let i = 0; i < 10; i++) await query(execute);
    const [chosen] = await query(`SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'curve_claim'`);
    fields.auto_generic_plans = Number(chosen?.generic_plans ?? NaN);
    fields.auto_custom_plans = Number(chosen?.custom_plans ?? NaN);
    await query('ROLLBACK');
  });
  for (const [mode, plan] of Object.entries(plans)) {
    const short = mode === 'force_custom_plan' ? 'custom' : 'generic';
    for (const l of plan) console.log(`plan| ${label} ${short} | ${l}`);
    const text = plan.join('\n');
    const seqScan = /Seq Scan on \S*runs\b/.test(text);
    // 1: the runs are read through the claim index (an index scan; a bitmap index scan on a small table), no seq scan
    const indexScan = text.includes(`Index Scan using ${n.tables.runs}_claim_idx`);
    const bitmapScan = text.includes(`Bitmap Index Scan on ${n.tables.runs}_claim_idx`);
    fields[`${short}_claim_index_scan`] = (indexScan || bitmapScan) && !seqScan ? 1 : 0;
    fields[`${short}_scan`] = seqScan ? 'seq' : indexScan ? 'index' : bitmapScan ? 'bitmap' : 'other';
    fields[`${short}_seq_scan_runs`] = seqScan ? 1 : 0;
    fields[`${short}_planning_ms`] = Number(/Planning Time: ([\d.]+) ms/.exec(text)?.[1] ?? NaN);
    fields[`${short}_exec_ms`] = Number(/Execution Time: ([\d.]+) ms/.exec(text)?.[1] ?? NaN);
    // the statement's buffers (its first `Buffers:` line is the top node's: all of them)
    const buffers = /Buffers: shared((?: \w+=\d+)+)/.exec(text)?.[1] ?? '';
    fields[`${short}_buffers`] = [...buffers.matchAll(/(hit|read)=(\d+)/g)].reduce((a, m) => a + Number(m[2]), 0);
  }
  ctx.line('postgres', 'curve_claim_plan', fields);
}

/** Runs statements on one connection of the Postgres backend's server. */
async function withPg(url: string, fn: (query: (text: string) => Promise<Record<string, unknown>[]>) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await fn(async (text) => (await client.query(text)).rows as Record<string, unknown>[]);
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// curve_workers, curve_rss
// ---------------------------------------------------------------------------------------------------------------------

/** The machine's CPU time so far (jiffies): busy (user, nice, system, irq, softirq), steal, and all. */
function cpuTimes(): { busy: number; steal: number; total: number } {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = values.map(Number);
  return { busy: user + nice + system + irq + softirq, steal: steal ?? 0, total: values.slice(0, 8).map(Number).reduce((a, b) => a + b, 0) };
}

/** CPU time (ms) used so far by the processes `pick` selects by pid, parent pid and command line (/proc). */
function processCpuMs(pick: (pid: number, ppid: number, cmdline: string) => boolean): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (pick(Number(entry), Number(rest[1]), cmdline)) ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      // the process ended meanwhile
    }
  }
  return (ticks * 1000) / 100; // USER_HZ: 100 on Linux
}

/** The CPU time (ms) of a server the bench started: Postgres (its postmaster and backends) or redis-server on a port. */
export type ServerCpu = () => number;

export function postgresCpu(dataDir: string): ServerCpu {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return () => processCpuMs((pid, ppid) => pid === postmaster || ppid === postmaster);
}

export function redisCpu(port: number): ServerCpu {
  return () => processCpuMs((_, __, cmdline) => /(^|\/)redis-server /.test(cmdline) && cmdline.includes(`:${port}`));
}

interface Child {
  proc: ChildProcess;
  next(): Promise<string>;
}

/** Spawns bench/curve-worker.ts with `args`; `next()` resolves with each line it prints. */
function spawnWorker(args: string[], nodeArgs: string[] = []): Child {
  const proc = spawn(process.execPath, [...nodeArgs, '--import', '@swc-node/register/esm-register', here('./curve-worker.ts'), ...args], {
    cwd: here('..'),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  let ended: Error | undefined;
  createInterface({ input: proc.stdout! }).on('line', (l) => (waiting.length > 0 ? waiting.shift()!(l) : lines.push(l)));
  const exited = new Promise<string>((_, reject) =>
    proc.on('exit', (code) => {
      ended = new Error(`bench/curve-worker.ts ${args.join(' ')} exited with code ${code}`);
      reject(ended);
    }),
  );
  exited.catch(() => undefined);
  return {
    proc,
    next: () => (lines.length > 0 ? Promise.resolve(lines.shift()!) : ended ? Promise.reject(ended) : Promise.race([new Promise<string>((r) => waiting.push(r)), exited])),
  };
}

/** Where a worker process finds its store: the `--store`, `--url` and schema / prefix arguments. */
type Locate = (tag: string) => string[];

async function workersCurve(ctx: CurveContext, backend: Backend, locate: Locate, serverCpu?: ServerCpu): Promise<void> {
  const { smoke } = ctx;
  const counts = smoke ? [1, 2] : [1, 2, 4];
  const total = smoke ? 60 : 6_000;
  // In ABBA cycles (1, 2, 4, 4, 2, 1, …), so that the load of the machine's other tenants falls on every count alike.
  const cycles = smoke ? 1 : 3;
  const order = Array.from({ length: cycles }, () => [...counts, ...[...counts].reverse()]).flat();
  const tag = 'workers';
  // The schema / key prefix is created by the first worker's app; the others find it.
  const store = await backend.make(tag);
  await store.init();
  await store.close();
  progress(`${backend.name}: starting ${counts.at(-1)} worker processes`);
  const children = Array.from({ length: counts.at(-1)! }, () => spawnWorker(['--mode=share', ...locate(tag), `--warm=${smoke ? 20 : 1_000}`]));
  try {
    for (const c of children) if ((await c.next()) !== 'ready') throw new Error('curves: a worker process did not get ready');
    const by = new Map<number, { ms: number; lat: number[]; cpuMs: number; serverMs: number; busy: number; steal: number; jiffies: number }>();
    for (const k of order) {
      const share = Math.ceil(total / k);
      const cpu0 = cpuTimes();
      const server0 = serverCpu?.() ?? 0;
      const t0 = performance.now();
      for (const c of children.slice(0, k)) c.proc.stdin!.write(`go ${share}\n`);
      const done = await Promise.all(children.slice(0, k).map((c) => c.next()));
      const ms = performance.now() - t0;
      const cpu1 = cpuTimes();
      const server1 = serverCpu?.() ?? 0;
      const acc = by.get(k) ?? { ms: 0, lat: [], cpuMs: 0, serverMs: 0, busy: 0, steal: 0, jiffies: 0 };
      acc.ms += ms;
      acc.serverMs += server1 - server0;
      acc.busy += cpu1.busy - cpu0.busy;
      acc.steal += cpu1.steal - cpu0.steal;
      acc.jiffies += cpu1.total - cpu0.total;
      for (const d of done) {
        const [word, , cpuMs, lat] = d.split(' ');
        if (word !== 'done') throw new Error(`curves: a worker process answered ${d.slice(0, 80)}`);
        acc.cpuMs += Number(cpuMs);
        acc.lat.push(...lat.split(',').map(Number));
      }
      by.set(k, acc);
    }
    const one = by.get(1)!;
    for (const k of counts) {
      const r = by.get(k)!;
      const lat = r.lat.sort((a, b) => a - b);
      const wf = lat.length / (r.ms / 1000);
      ctx.line(backend.name, 'curve_workers', {
        workers: k,
        wf_per_s: wf,
        p50_ms: pct(lat, 50),
        p99_ms: pct(lat, 99),
        runs: lat.length,
        in_flight: 64 * k,
        cores: availableParallelism(),
        // the machine's CPU busy (all processes: workers, server, this one), in % of all its cores, and stolen
        cpu_busy_pct: (100 * r.busy) / r.jiffies,
        cpu_steal_pct: (100 * r.steal) / r.jiffies,
        // the worker processes' own CPU time, and the server's (when the bench started it), in % of one core
        workers_cpu_pct: (100 * r.cpuMs) / r.ms,
        ...(serverCpu ? { server_cpu_pct: (100 * r.serverMs) / r.ms } : {}),
        ratio_vs_1: wf / (one.lat.length / (one.ms / 1000)),
      });
    }
  } finally {
    for (const c of children) c.proc.stdin!.end('exit\n');
    await Promise.all(children.map((c) => new Promise((r) => (c.proc.exitCode !== null ? r(undefined) : c.proc.once('exit', r)))));
    await backend.cleanup([tag]);
  }
}

async function rssCurve(ctx: CurveContext, backend: Backend, locate: Locate): Promise<void> {
  const sizes = ctx.smoke ? [50, 200] : [1_000, 10_000];
  for (const n of sizes) {
    const tag = `rss${n}`;
    const store = await backend.make(tag);
    await store.init();
    await store.close();
    progress(`${backend.name}: ${n} runs blocked in one instance`);
    try {
      const child = spawnWorker(['--mode=rss', ...locate(tag), `--inflight=${n}`, `--warm=${ctx.smoke ? 20 : 300}`], ['--expose-gc']);
      const [word, rssBefore, rssWith, heapBefore, heapWith, reached] = (await child.next()).split(' ');
      if (word !== 'rss') throw new Error(`curves: the rss worker answered ${word}`);
      await new Promise((r) => (child.proc.exitCode !== null ? r(undefined) : child.proc.once('exit', r)));
      ctx.line(backend.name, 'curve_rss', {
        inflight: n,
        bytes_per_run: (Number(rssWith) - Number(rssBefore)) / n,
        heap_bytes_per_run: (Number(heapWith) - Number(heapBefore)) / n,
        rss_before_mb: Number(rssBefore) / 2 ** 20,
        rss_with_mb: Number(rssWith) / 2 ** 20,
        blocked: Number(reached),
      });
    } finally {
      await backend.cleanup([tag]);
    }
  }
}

async function resumeCurve(ctx: CurveContext, backend: Backend): Promise<void> {
  for (const n of ctx.smoke ? [10, 50] : [1_000, 10_000]) {
    const tag = `resume${n}`;
    progress(`${backend.name}: resume of ${n} runs`);
    try {
      const before = await backend.checkpoints?.();
      const probe = await backend.commitProbe?.();
      let commitMs: number | undefined;
      let r: Awaited<ReturnType<typeof resumeRuns>>;
      try {
        r = await resumeRuns(() => backend.make(tag), n);
      } finally {
        // NOTE: stopped even when the point fails: its connection would keep the process alive.
        commitMs = await probe?.stop();
      }
      const during: Fields = { resume_cpu_pct: r.resume_cpu_pct };
      if (commitMs !== undefined) during.commit_ms = commitMs;
      if (before !== undefined) during.server_checkpoints = (await backend.checkpoints!()) - before;
      ctx.line(backend.name, 'curve_resume', { runs: n, resume_s: r.resume_s, wf_per_s: r.wf_per_s, ...during });
    } finally {
      await backend.cleanup([tag]);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// curve_cluster
// ---------------------------------------------------------------------------------------------------------------------

/** A Redis Cluster of 3 masters, started as test/store/redis-cluster.spec.ts starts its own. */
async function startCluster(): Promise<{ ports: number[]; stop(): Promise<void> }> {
  const { startRedis } = await import('../test/setup/redis-server.js');
  const run = promisify(execFile);
  const nodes: Awaited<ReturnType<typeof startRedis>>[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await startRedis({ extraArgs: ['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000'] }));
  const stop = async () => void (await Promise.allSettled(nodes.map((n) => n.stop())));
  try {
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 20_000 });
    for (let i = 0; i < 200; i++) {
      const states = await Promise.all(nodes.map(async (n) => (await run('redis-cli', ['-p', String(n.port), 'cluster', 'info'])).stdout.includes('cluster_state:ok')));
      if (states.every(Boolean)) return { ports: nodes.map((n) => n.port), stop };
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('curves: the Redis Cluster did not reach cluster_state:ok');
  } catch (error) {
    await stop();
    throw error;
  }
}

async function clusterCurve(ctx: CurveContext, url: string): Promise<void> {
  const { smoke } = ctx;
  progress('redis: starting a cluster of 3 masters');
  const cluster = await startCluster();
  const client = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
  const singlePrefix = `bcc:${randomUUID().slice(0, 8)}:`;
  const single = await boot(await createStore({ type: 'redis', url, keyPrefix: singlePrefix }, logger));
  const clustered = await boot(await createStore({ type: 'redis', client, keyPrefix: `bcc:${randomUUID().slice(0, 8)}:` }, logger));
  try {
    await seq(single.client, 'bench3', smoke ? 10 : 1_500);
    const warm = smoke ? 20 : 1_000;
    await conc(single.client, warm, 64);
    await conc(clustered.client, warm, 64);
    const turns = smoke ? 2 : 8;
    const runs = smoke ? 40 : 4_000;
    const a: Chunk[] = [];
    const b: Chunk[] = [];
    for (let t = 0; t < turns; t++) {
      if (t % 2 === 1) b.push(await conc(clustered.client, runs / turns, 64));
      a.push(await conc(single.client, runs / turns, 64));
      if (t % 2 === 0) b.push(await conc(clustered.client, runs / turns, 64));
    }
    const sa = summary(a);
    const sb = summary(b);
    ctx.line('redis', 'curve_cluster', { masters: 1, ...sa, ratio_vs_single: 1 });
    ctx.line('redis', 'curve_cluster', { masters: 3, ...sb, ratio_vs_single: sb.wf_per_s / sa.wf_per_s });
  } finally {
    await single.app.close();
    await clustered.app.close();
    await client.quit().catch(() => undefined);
    await cluster.stop();
    const r = new Redis(url);
    let cursor = '0';
    do {
      const [next, found] = await r.scan(cursor, 'MATCH', `${globEscape(singlePrefix)}*`, 'COUNT', 10_000);
      cursor = next;
      if (found.length > 0) await r.unlink(...found);
    } while (cursor !== '0');
    r.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------------------------------

export async function runCurves(ctx: CurveContext): Promise<void> {
  const servers: { stop(): Promise<void> }[] = [];
  try {
    if (ctx.stores.includes('postgres')) {
      let url = process.env.DATABASE_URL;
      let serverCpu: ServerCpu | undefined;
      if (!url) {
        const { startBenchPostgres } = await import('./postgres-server.js');
        const server = await startBenchPostgres((line) => console.error(line));
        servers.push(server);
        url = server.url;
        serverCpu = postgresCpu(server.dataDir);
      }
      const backend = postgresBackend(url);
      const locate: Locate = (tag) => ['--store=postgres', `--url=${url}`, `--schema=${backend.schema(tag)}`];
      if (curveSets.has('load')) await loadCurves(ctx, backend, backend);
      await backend.settle();
      if (curveSets.has('workers')) await workersCurve(ctx, backend, locate, serverCpu);
      if (curveSets.has('rss')) await rssCurve(ctx, backend, locate);
      if (curveSets.has('resume')) await resumeCurve(ctx, backend);
    }
    if (ctx.stores.includes('redis')) {
      let url = process.env.REDIS_URL;
      let serverCpu: ServerCpu | undefined;
      if (!url) {
        const { startRedis } = await import('../test/setup/redis-server.js');
        const server = await startRedis();
        servers.push(server);
        url = server.url;
        serverCpu = redisCpu(server.port);
      }
      const backend = redisBackend(url, !process.env.REDIS_URL);
      const locate: Locate = (tag) => ['--store=redis', `--url=${url}`, `--prefix=${backend.prefix(tag)}`];
      // NOTE: first, on the server before it held a million runs (no AOF rewrite or freeing of them in its way).
      if (curveSets.has('cluster')) await clusterCurve(ctx, url);
      if (curveSets.has('load')) await loadCurves(ctx, backend);
      await backend.settle();
      if (curveSets.has('workers')) await workersCurve(ctx, backend, locate, serverCpu);
      if (curveSets.has('rss')) await rssCurve(ctx, backend, locate);
      if (curveSets.has('resume')) await resumeCurve(ctx, backend);
    }
  } finally {
    for (const s of servers) await s.stop().catch(() => undefined);
  }
}
