/**
 * npm run bench [-- --smoke] [-- --stores=memory,pglite,postgres,redis,dbos,limit] [-- --scenarios=seq3,conc64,roundtrips,resume,steps20]
 *
 * Prints one line per measurement:
 *   bench store=<s> scenario=<name> wf_per_s=… p50_ms=… p99_ms=… [roundtrips=…] [ratio_vs_dbos=…] [ratio_vs_limit=…]
 * Starts throwaway Postgres/Redis servers (like the tests) unless DATABASE_URL / REDIS_URL are set. DBOS Transact
 * (bench/dbos, installed on first use) and the raw-insert floor (bench/limit) run against the same Postgres server, right
 * after cairn's Postgres scenarios, and the ratios are printed from that one run. See bench/README.md.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DurableExecutionModule, Step, Workflow, WorkflowClient, type WorkflowStore } from '../src/index.js';
import { createStore } from '../src/store/create-store.js';

@Workflow('bench3')
class Bench3 {
  @Step() a(input: { n: number }) {
    return { n: input.n, a: 1 };
  }
  @Step() b(prev: { n: number; a: number }) {
    return { ...prev, b: 2 };
  }
  @Step() c(prev: { n: number; a: number; b: number }) {
    return { ...prev, c: 3 };
  }
}

function makeSteps20() {
  @Workflow('bench20')
  class Bench20 {}
  for (let i = 0; i < 20; i++) {
    const name = `s${String(i).padStart(2, '0')}`;
    Object.defineProperty(Bench20.prototype, name, {
      value: function (prev: { n: number }) {
        return { n: prev.n + 1 };
      },
      configurable: true,
      writable: true,
    });
    Step()(Bench20.prototype, name, Object.getOwnPropertyDescriptor(Bench20.prototype, name)!);
  }
  return Bench20;
}
const Bench20 = makeSteps20();

const args = process.argv.slice(2);
const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const smoke = args.includes('--smoke');
const storesWanted = (flag('stores') ?? 'memory,pglite,postgres,dbos,limit,redis').split(',');
const scenariosWanted = (flag('scenarios') ?? 'seq3,conc64,roundtrips,resume,steps20').split(',');
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
/** Results by store and scenario, for the ratio lines. */
const results: Record<string, Record<string, number>> = {};
const quiet = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function line(store: string, scenario: string, fields: Record<string, string | number>): void {
  const rate = fields.wf_per_s ?? fields.inserts_per_s;
  if (typeof rate === 'number') (results[store] ??= {})[scenario] = rate;
  const rest = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(2)) : v}`)
    .join(' ');
  console.log(`bench store=${store} scenario=${scenario} ${rest}`);
}

/** Counts store calls: every WorkflowStore method is one round trip to the store's server. */
function countingStore(store: WorkflowStore): { store: WorkflowStore; count: () => number; reset: () => void } {
  let calls = 0;
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || prop === 'subscribe' || prop === 'init' || prop === 'close') return value;
      return (...a: unknown[]) => {
        calls++;
        return (value as (...x: unknown[]) => unknown).apply(target, a);
      };
    },
  });
  return { store: proxy, count: () => calls, reset: () => (calls = 0) };
}

/** Counts what reaches the server: SQL statements sent by `pg`, commands sent by ioredis. */
const driverCalls = { count: 0 };
const pgQuery = pg.Client.prototype.query;
(pg.Client.prototype as { query: unknown }).query = function (this: unknown, ...a: unknown[]) {
  driverCalls.count++;
  return (pgQuery as (...x: unknown[]) => unknown).apply(this, a);
};
async function countRedisCommands(): Promise<void> {
  const { Redis } = (await import('ioredis')) as unknown as { Redis: { prototype: { sendCommand: (...a: unknown[]) => unknown } } };
  const send = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (this: unknown, ...a: unknown[]) {
    driverCalls.count++;
    return send.apply(this, a);
  };
}

async function boot(store: WorkflowStore, worker: { leaseMs?: number; pollIntervalMs?: number; concurrency?: number } = {}) {
  @Module({
    imports: [DurableExecutionModule.forRoot({ store, worker: { concurrency: 128, ...worker } })],
    providers: [Bench3, Bench20],
  })
  class BenchModule {}
  const app = await NestFactory.createApplicationContext(BenchModule, { logger: false });
  return { app, client: app.get(WorkflowClient) };
}

async function seq(client: WorkflowClient, workflow: string, runs: number): Promise<{ wf: number; lat: number[] }> {
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    const out = (await client.execute(workflow, { n: i })) as { n: number };
    lat.push(performance.now() - s);
    if (workflow === 'bench3' && (out as { c?: number }).c !== 3) throw new Error('wrong result');
  }
  return { wf: runs / ((performance.now() - t0) / 1000), lat: lat.sort((a, b) => a - b) };
}

async function conc(client: WorkflowClient, runs: number, inFlight: number): Promise<{ wf: number; lat: number[] }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < runs) {
        const i = next++;
        const s = performance.now();
        const out = (await client.execute('bench3', { n: i })) as { c: number };
        if (out.c !== 3) throw new Error('wrong result');
        lat.push(performance.now() - s);
      }
    }),
  );
  return { wf: runs / ((performance.now() - t0) / 1000), lat: lat.sort((a, b) => a - b) };
}

async function benchStore(name: string, make: () => Promise<WorkflowStore>): Promise<void> {
  const raw = await make();
  const counting = countingStore(raw);
  const { app, client } = await boot(counting.store);
  try {
    const n = smoke ? 5 : name === 'memory' ? 20_000 : 500;
    const cn = smoke ? 10 : name === 'memory' ? 20_000 : 2_000;
    await seq(client, 'bench3', smoke ? 2 : 50); // warm-up
    if (scenariosWanted.includes('seq3')) {
      const r = await seq(client, 'bench3', n);
      line(name, 'seq3', { wf_per_s: r.wf, p50_ms: pct(r.lat, 50), p99_ms: pct(r.lat, 99), runs: n });
    }
    if (scenariosWanted.includes('conc64')) {
      const r = await conc(client, cn, 64);
      line(name, 'conc64', { wf_per_s: r.wf, p50_ms: pct(r.lat, 50), p99_ms: pct(r.lat, 99), runs: cn });
    }
    if (scenariosWanted.includes('roundtrips')) {
      const runs = smoke ? 3 : 50;
      counting.reset();
      const before = driverCalls.count;
      for (let i = 0; i < runs; i++) await client.execute('bench3', { n: i });
      const driver = (driverCalls.count - before) / runs;
      // NOTE: memory and PGlite have no wire; their round trips are the store calls.
      const wire = name === 'postgres' || name === 'redis';
      line(name, 'roundtrips', { roundtrips: wire ? driver : counting.count() / runs, store_calls: counting.count() / runs, runs });
    }
    if (scenariosWanted.includes('steps20')) {
      const runs = smoke ? 2 : name === 'memory' ? 2_000 : 100;
      const r = await seq(client, 'bench20', runs);
      line(name, 'steps20', { wf_per_s: r.wf, p50_ms: pct(r.lat, 50), p99_ms: pct(r.lat, 99), step_ms: pct(r.lat, 50) / 20, runs });
    }
  } finally {
    await app.close();
  }
  if (scenariosWanted.includes('resume')) await resume(name, make);
}

/** A store whose calls never answer once `kill()`ed: an instance that died in the middle of its runs. */
function killableStore(store: WorkflowStore): { store: WorkflowStore; kill: () => void } {
  let dead = false;
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...a: unknown[]) => (dead && prop !== 'close' ? new Promise(() => undefined) : (value as (...x: unknown[]) => unknown).apply(target, a));
    },
  });
  return { store: proxy, kill: () => (dead = true) };
}

@Workflow('resume3')
class Resume3 {
  static gate: Promise<void> = new Promise(() => undefined);
  static reached = 0;
  static block = true;
  @Step() a(input: { n: number }) {
    return { n: input.n, a: 1 };
  }
  @Step() async b(prev: { n: number; a: number }) {
    if (Resume3.block) {
      Resume3.reached++;
      await Resume3.gate;
    }
    return { ...prev, b: 2 };
  }
  @Step() c(prev: { n: number; a: number; b: number }) {
    return { ...prev, c: 3 };
  }
}

/** `resume`: runs interrupted mid-pipeline (after step a, in step b) by a dying instance; a fresh one finishes them. */
async function resume(name: string, make: () => Promise<WorkflowStore>): Promise<void> {
  if (name === 'pglite') return; // one app per data folder: no second instance to resume on
  const runs = smoke ? 10 : name === 'memory' ? 1_000 : 1_000;
  const leaseMs = 1_000;
  const shared = await make();
  // NOTE: both instances share one store; neither app's shutdown may close it.
  const unclosable = (): WorkflowStore => new Proxy(shared, { get: (t, p, r) => (p === 'close' ? async () => undefined : Reflect.get(t, p, r)) });
  const dying = killableStore(unclosable());
  Resume3.block = true;
  Resume3.reached = 0;
  @Module({ imports: [DurableExecutionModule.forRoot({ store: dying.store, worker: { concurrency: runs, leaseMs } })], providers: [Resume3] })
  class DyingModule {}
  const a = await NestFactory.createApplicationContext(DyingModule, { logger: false });
  const client = a.get(WorkflowClient);
  const ids: string[] = [];
  for (let i = 0; i < runs; i++) ids.push((await client.start('resume3', { n: i })).runId);
  const deadline = Date.now() + 60_000;
  while (Resume3.reached < runs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  dying.kill();
  Resume3.block = false;
  await new Promise((r) => setTimeout(r, leaseMs + 100)); // the dead instance's leases expire
  const t0 = performance.now();
  @Module({
    imports: [DurableExecutionModule.forRoot({ store: unclosable(), worker: { concurrency: 128, leaseMs: 30_000, pollIntervalMs: 50 } })],
    providers: [Resume3],
  })
  class FreshModule {}
  const b = await NestFactory.createApplicationContext(FreshModule, { logger: false });
  const fresh = b.get(WorkflowClient);
  for (const id of ids) {
    const out = (await fresh.getHandle(id).result({ timeout: '120s' })) as { c: number };
    if (out.c !== 3) throw new Error('wrong result');
  }
  const seconds = (performance.now() - t0) / 1000;
  line(name, 'resume', { wf_per_s: runs / seconds, resume_s: seconds, runs });
  await b.close();
  void a.close().catch(() => undefined);
  await shared.close();
}

/** Runs a bench/ sub-runner (DBOS, raw-insert floor) and echoes its lines. */
function subRunner(script: string, url: string): void {
  const out = execFileSync(process.execPath, ['--no-deprecation', here(script), `--url=${url}`, ...(smoke ? ['--smoke'] : [])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  });
  for (const l of out.split('\n')) {
    const m = /^bench store=(\S+) scenario=(\S+) (.*)$/.exec(l.trim());
    if (!m) continue;
    const fields: Record<string, string | number> = {};
    for (const kv of m[3].split(' ')) {
      const [k, v] = kv.split('=');
      fields[k] = Number.isNaN(Number(v)) ? v : Number(v);
    }
    line(m[1], m[2], fields);
  }
}

/** ratio lines: cairn on Postgres against DBOS, and against the raw single-row-insert floor (writes per second). */
function ratios(): void {
  const cairn = results.postgres ?? {};
  for (const scenario of ['seq3', 'conc64']) {
    const wf = cairn[scenario];
    if (wf === undefined) continue;
    const fields: Record<string, number> = { wf_per_s: wf };
    const dbos = results.dbos?.[scenario];
    if (dbos) fields.ratio_vs_dbos = wf / dbos;
    const limit = results.limit?.[scenario];
    // NOTE: a 3-step run needs 4 durable writes (start, 3 checkpoints); the floor is the raw insert rate.
    if (limit) fields.ratio_vs_limit = (wf * 4) / limit;
    line('postgres', `${scenario}_ratios`, fields);
  }
}

async function main(): Promise<void> {
  const servers: { stop(): Promise<void> }[] = [];
  const logger = { log() {}, warn() {}, error: (m: string) => console.error(m) };
  try {
    if (storesWanted.includes('memory')) await benchStore('memory', async () => createStore({ type: 'memory' }, quiet as never));
    if (storesWanted.includes('pglite')) {
      const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-pglite-'));
      await benchStore('pglite', async () => createStore({ type: 'pglite', dataDir: dir }, logger));
      rmSync(dir, { recursive: true, force: true });
    }
    if (storesWanted.includes('postgres')) {
      let url = process.env.DATABASE_URL;
      if (!url) {
        const { startPostgres } = await import('../test/setup/postgres-server.js');
        const pg = await startPostgres();
        servers.push(pg);
        url = pg.url;
      }
      const schema = `bench_${randomUUID().slice(0, 8)}`;
      await benchStore('postgres', async () => createStore({ type: 'postgres', url, schema }, logger));
      if (storesWanted.includes('dbos')) {
        if (!existsSync(here('./dbos/node_modules'))) {
          execFileSync('npm', ['install', '--prefix', here('./dbos'), '--no-audit', '--no-fund'], { stdio: ['ignore', 'ignore', 'inherit'] });
        }
        subRunner('./dbos/run-dbos.mjs', url!);
      }
      if (storesWanted.includes('limit')) subRunner('./limit/run-limit.mjs', url!);
      ratios();
    }
    if (storesWanted.includes('redis')) {
      await countRedisCommands();
      let url = process.env.REDIS_URL;
      if (!url) {
        const { startRedis } = await import('../test/setup/redis-server.js');
        const redis = await startRedis();
        servers.push(redis);
        url = redis.url;
      }
      await benchStore('redis', async () => createStore({ type: 'redis', url, keyPrefix: `bench:${randomUUID().slice(0, 8)}:` }, logger));
    }
  } finally {
    for (const s of servers) await s.stop().catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
