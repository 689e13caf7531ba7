/**
 * npm run bench [-- --smoke] [-- --stores=memory,pglite,postgres,redis] [-- --scenarios=seq3,conc64,roundtrips,steps20]
 *
 * Prints one line per measurement:
 *   bench store=<s> scenario=<name> wf_per_s=… p50_ms=… p99_ms=… [roundtrips=…]
 * Starts throwaway Postgres/Redis servers (like the tests) unless DATABASE_URL / REDIS_URL are set.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
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
const storesWanted = (flag('stores') ?? 'memory,pglite,postgres,redis').split(',');
const scenariosWanted = (flag('scenarios') ?? 'seq3,conc64,roundtrips,steps20').split(',');
const quiet = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function line(store: string, scenario: string, fields: Record<string, string | number>): void {
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

async function boot(store: WorkflowStore) {
  @Module({
    imports: [DurableExecutionModule.forRoot({ store, worker: { concurrency: 128 } })],
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
      for (let i = 0; i < runs; i++) await client.execute('bench3', { n: i });
      line(name, 'roundtrips', { roundtrips: counting.count() / runs, runs });
    }
    if (scenariosWanted.includes('steps20')) {
      const runs = smoke ? 2 : name === 'memory' ? 2_000 : 100;
      const r = await seq(client, 'bench20', runs);
      line(name, 'steps20', { wf_per_s: r.wf, p50_ms: pct(r.lat, 50), p99_ms: pct(r.lat, 99), step_ms: pct(r.lat, 50) / 20, runs });
    }
  } finally {
    await app.close();
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
    }
    if (storesWanted.includes('redis')) {
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
