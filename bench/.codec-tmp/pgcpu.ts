import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomBytes } from 'node:crypto';
import { AesGcmCodec, DurableExecutionModule, Step, Workflow, WorkflowClient, type PayloadCodec } from '../../src/index.js';
import { startPostgres } from '../../test/setup/postgres-server.js';

@Workflow('bench3')
class Bench3 {
  @Step() a(input: { n: number }) { return { n: input.n, a: 1 }; }
  @Step() b(prev: { n: number; a: number }) { return { ...prev, b: 2 }; }
  @Step() c(prev: { n: number; a: number; b: number }) { return { ...prev, c: 3 }; }
}
const mode = process.argv[2] ?? 'all';
async function boot(url: string, schema: string, codec?: PayloadCodec) {
  @Module({ imports: [DurableExecutionModule.forRoot({ store: { type: 'postgres', url, schema }, worker: { concurrency: 128 }, ...(codec ? { codec } : {}) })], providers: [Bench3] })
  class M {}
  const app = await NestFactory.createApplicationContext(M, { logger: false });
  return { app, client: app.get(WorkflowClient) };
}
async function conc(client: WorkflowClient, runs: number) {
  let next = 0;
  const c0 = process.cpuUsage(); const t0 = performance.now();
  await Promise.all(Array.from({ length: 64 }, async () => { while (next < runs) { next++; await client.execute('bench3', { n: next }); } }));
  const c = process.cpuUsage(c0);
  return { wf_s: Math.round(runs / ((performance.now() - t0) / 1000)), node_cpu_us_per_run: Math.round((c.user + c.system) / runs) };
}
async function seq(client: WorkflowClient, runs: number) {
  const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < runs; i++) await client.execute('bench3', { n: i });
  const c = process.cpuUsage(c0);
  return { wf_s: Math.round(runs / ((performance.now() - t0) / 1000)), node_cpu_us_per_run: Math.round((c.user + c.system) / runs) };
}
const pg = await startPostgres();
try {
  const plain = await boot(pg.url, 'b_plain');
  const coded = await boot(pg.url, 'b_codec', new AesGcmCodec({ keys: { k: randomBytes(32) }, currentKeyId: 'k' }));
  for (const x of [plain, coded]) await conc(x.client, 1500);
  for (let r = 0; r < 3; r++) {
    console.log('conc64 plain', JSON.stringify(await conc(plain.client, 1000)));
    console.log('conc64 codec', JSON.stringify(await conc(coded.client, 1000)));
    console.log('seq3   plain', JSON.stringify(await seq(plain.client, 300)));
    console.log('seq3   codec', JSON.stringify(await seq(coded.client, 300)));
  }
  await plain.app.close(); await coded.app.close();
} finally { await pg.stop(); }
process.exit(0);
