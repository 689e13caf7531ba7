// Temporary profiling harness (obs-): CPU µs per run of bench3, by phase. Not part of the repo.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import { DurableExecutionModule, Step, Workflow, WorkflowClient, type WorkflowStore } from '../../src/index.js';
import { createStore } from '../../src/store/create-store.js';

@Workflow('bench3')
class Bench3 {
  @Step() a(input: { n: number }) { return { n: input.n, a: 1 }; }
  @Step() b(prev: { n: number; a: number }) { return { ...prev, b: 2 }; }
  @Step() c(prev: { n: number; a: number; b: number }) { return { ...prev, c: 3 }; }
}
const args = process.argv.slice(2);
const storeKind = args[0] ?? 'memory';
const mode = args[1] ?? 'none'; // none | otel | otel-off
const runs = Number(args[2] ?? 3000);
const conc = Number(args[3] ?? 1);

async function registerOtel() {
  const { context, metrics, trace } = await import('@opentelemetry/api');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } = await import('@opentelemetry/sdk-metrics');
  const done = (cb: (r: { code: number }) => void) => cb({ code: 0 });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor({ export: (_s, cb) => done(cb), shutdown: async () => undefined })] }));
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: { export: (_m, cb) => done(cb), forceFlush: async () => undefined, shutdown: async () => undefined, selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE }, exportIntervalMillis: 5_000 })] }));
}

async function main() {
  if (mode !== 'none') await registerOtel();
  if (mode === 'als') { const { context, ROOT_CONTEXT } = await import('@opentelemetry/api'); context.with(ROOT_CONTEXT, () => undefined); }
  let store: WorkflowStore;
  const logger = { log() {}, warn() {}, error: (m: string) => console.error(m) };
  let stop = async () => {};
  if (storeKind === 'postgres' && !process.env.DATABASE_URL) { const { startPostgres } = await import('../../test/setup/postgres-server.js'); const s = await startPostgres(); process.env.DATABASE_URL = s.url; stop = () => s.stop(); }
  if (storeKind === 'redis' && !process.env.REDIS_URL) { const { startRedis } = await import('../../test/setup/redis-server.js'); const s = await startRedis(); process.env.REDIS_URL = s.url; stop = () => s.stop(); }
  if (storeKind === 'postgres') store = await createStore({ type: 'postgres', url: process.env.DATABASE_URL!, schema: `obs_${randomUUID().slice(0, 8)}` }, logger);
  else if (storeKind === 'redis') store = await createStore({ type: 'redis', url: process.env.REDIS_URL!, keyPrefix: `obs:${randomUUID().slice(0, 8)}:` }, logger);
  else store = await createStore({ type: 'memory' }, logger as never);
  @Module({ imports: [DurableExecutionModule.forRoot({ store, worker: { concurrency: 128 }, telemetry: { enabled: mode === 'otel' || mode === 'otel-noals' } })], providers: [Bench3] })
  class M {}
  const app = await NestFactory.createApplicationContext(M, { logger: false });
  const client = app.get(WorkflowClient);
  const go = async (n: number) => {
    let next = 0;
    await Promise.all(Array.from({ length: conc }, async () => { while (next++ < n) await client.execute('bench3', { n }); }));
  };
  await go(1500);
  const c0 = process.cpuUsage(); const t0 = performance.now();
  await go(runs);
  const cpu = process.cpuUsage(c0); const ms = performance.now() - t0;
  console.log(`${storeKind} ${mode} conc=${conc} cpu_us_per_run=${((cpu.user + cpu.system) / runs).toFixed(1)} wall_ms_per_run=${(ms / runs).toFixed(3)}`);
  await app.close();
  await stop();
  process.exit(0);
}
void main();
