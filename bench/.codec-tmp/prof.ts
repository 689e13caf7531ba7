import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomBytes } from 'node:crypto';
import { AesGcmCodec, DurableExecutionModule, MemoryStore, Step, Workflow, WorkflowClient, type PayloadCodec } from '../../src/index.js';

@Workflow('bench3')
class Bench3 {
  @Step() a(input: { n: number }) { return { n: input.n, a: 1 }; }
  @Step() b(prev: { n: number; a: number }) { return { ...prev, b: 2 }; }
  @Step() c(prev: { n: number; a: number; b: number }) { return { ...prev, c: 3 }; }
}
const counts = { enc: 0, dec: 0, encBytes: 0 };
const aes = new AesGcmCodec({ keys: { k: randomBytes(32) }, currentKeyId: 'k' });
const counting: PayloadCodec = { encode: (d) => { counts.enc++; counts.encBytes += d.length; return aes.encode(d); }, decode: (d) => { counts.dec++; return aes.decode(d); } };
async function run(codec?: PayloadCodec) {
  @Module({ imports: [DurableExecutionModule.forRoot({ store: new MemoryStore(), worker: { concurrency: 128 }, ...(codec ? { codec } : {}) })], providers: [Bench3] })
  class M {}
  const app = await NestFactory.createApplicationContext(M, { logger: false });
  const client = app.get(WorkflowClient);
  for (let i = 0; i < 3000; i++) await client.execute('bench3', { n: i });
  const N = 5000;
  counts.enc = counts.dec = counts.encBytes = 0;
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await client.execute('bench3', { n: i });
  const c1 = process.cpuUsage(c0);
  const us = (c1.user + c1.system) / N;
  await app.close();
  return { us, enc: counts.enc / N, dec: counts.dec / N, bytes: counts.encBytes / Math.max(1, counts.enc) };
}
const identity: PayloadCodec = { encode: (d) => d, decode: (d) => d };
for (let r = 0; r < 3; r++) {
  console.log('plain', await run());
  console.log('identity', await run(identity));
  console.log('codec', await run(counting));
}
const s = JSON.stringify({ n: 1234, a: 1, b: 2 });
for (let r = 0; r < 3; r++) { const c0 = process.cpuUsage(); for (let i = 0; i < 100000; i++) aes.encode(s); const c = process.cpuUsage(c0); console.log('enc cpu us', (c.user + c.system) / 100000); }
