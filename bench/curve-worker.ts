/**
 * A child process of `npm run bench -- --curves` (bench/curves.ts), on a Postgres schema or Redis key prefix that the
 * parent gives it:
 *
 *   node --import @swc-node/register/esm-register bench/curve-worker.ts --mode=share --store=postgres --url=… --schema=… [--warm=N]
 *     boots the bench app, warms it up (N conc64 runs), prints `ready`; then for each `go <runs>` line it reads it runs
 *     that many bench3 runs 64 in flight and prints `done <ms> <cpu ms> <latency,…>`; `exit` (or the end of its input)
 *     closes the app.
 *
 *   node --expose-gc --import @swc-node/register/esm-register bench/curve-worker.ts --mode=rss --store=redis --url=… --prefix=… --inflight=N
 *     boots the bench app with a worker concurrency of max(N, 10,000) + 128, warms it up, measures its RSS and heap
 *     after a full GC, starts N runs that block inside their second step, waits until all N are in it, collects again
 *     and prints `rss <rss before> <rss with> <heap before> <heap with> <runs blocked>` (bytes), then exits.
 */
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Cluster } from 'ioredis';
import type { WorkflowStore } from '../src/index.js';
import { createStore } from '../src/store/create-store.js';
import { BenchBlock, BenchSleep, BenchWait, boot, conc } from './app.js';

const args = process.argv.slice(2);
const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const logger = { log() {}, warn() {}, error: (m: string) => console.error(m) };

async function makeStore(): Promise<WorkflowStore> {
  const kind = opt('store');
  if (kind === 'postgres') return createStore({ type: 'postgres', url: opt('url')!, schema: opt('schema')! }, logger);
  if (kind === 'redis') return createStore({ type: 'redis', url: opt('url')!, keyPrefix: opt('prefix')! }, logger);
  if (kind === 'redis-cluster') {
    const nodes = opt('url')!.split(',').map((hp) => ({ host: hp.split(':')[0], port: Number(hp.split(':')[1]) }));
    return createStore({ type: 'redis', client: new Cluster(nodes), keyPrefix: opt('prefix')! }, logger);
  }
  throw new Error(`curve-worker: unknown --store=${kind}`);
}

async function share(): Promise<void> {
  const { app, client } = await boot(await makeStore(), {}, undefined, [BenchSleep, BenchWait]);
  await conc(client, Number(opt('warm') ?? 500), 64);
  console.log('ready');
  for await (const l of createInterface({ input: process.stdin })) {
    if (l === 'exit') break;
    const [command, runs] = l.split(' ');
    if (command !== 'go') continue;
    const cpu = process.cpuUsage();
    const chunk = await conc(client, Number(runs), 64);
    const used = process.cpuUsage(cpu);
    console.log(`done ${chunk.ms} ${(used.user + used.system) / 1000} ${chunk.lat.map((x) => x.toFixed(2)).join(',')}`);
  }
  await app.close();
}

async function rss(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const collect = async () => {
    for (let i = 0; i < 3; i++) {
      gc?.();
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const inflight = Number(opt('inflight'));
  const { client } = await boot(await makeStore(), { concurrency: Math.max(inflight, 10_000) + 128 }, undefined, [BenchBlock]);
  await conc(client, Number(opt('warm') ?? 300), 64);
  await collect();
  const before = process.memoryUsage();
  let next = 0;
  const tag = randomUUID().slice(0, 8);
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < inflight) {
        const i = next++;
        await client.start('benchBlock', { n: i }, { id: `block-${tag}-${i}` });
      }
    }),
  );
  const deadline = Date.now() + 120_000;
  while (BenchBlock.reached < inflight && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 500));
  await collect();
  const withRuns = process.memoryUsage();
  console.log(`rss ${before.rss} ${withRuns.rss} ${before.heapUsed} ${withRuns.heapUsed} ${BenchBlock.reached}${gc ? '' : ' nogc'}`);
  // NOTE: the blocked runs are left as they are: the parent drops the schema (key prefix) of this process.
  process.exit(0);
}

const mode = opt('mode');
(mode === 'share' ? share() : mode === 'rss' ? rss() : Promise.reject(new Error(`curve-worker: unknown --mode=${mode}`))).then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
