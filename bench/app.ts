/**
 * What bench/run.ts, bench/curves.ts and the worker processes of bench/curve-worker.ts share: the bench workflows, the
 * app they boot, the measured loops (`seq`, `conc`) and the `resume` scenario.
 */
import 'reflect-metadata';
import { Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DurableExecutionModule, Flow, Step, Workflow, WorkflowClient, type PayloadCodec, type WorkflowStore } from '../src/index.js';

@Workflow('bench3')
export class Bench3 {
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

/** `conc64key`: bench3 with a concurrency limit of 1 per key (each of the 64 lanes starts its runs under its own key). */
@Workflow({ name: 'bench3key', concurrency: { limit: 1, key: (input: { k: string }) => input.k } })
export class Bench3Key {
  @Step() a(input: { n: number; k: string }) {
    return { n: input.n, a: 1 };
  }
  @Step() b(prev: { n: number; a: number }) {
    return { ...prev, b: 2 };
  }
  @Step() c(prev: { n: number; a: number; b: number }) {
    return { ...prev, c: 3 };
  }
}

/** A one-step child of the fan-out scenarios. */
@Workflow('bench1')
export class Bench1 {
  @Step() only(input: { i: number }) {
    return { i: input.i };
  }
}

/** `fanout1k` / `fanout10k`: one parent whose step fans out `n` one-step children with `Flow.all`, then counts them. */
@Workflow('benchFanout')
export class BenchFanout {
  @Step() spread(input: { n: number }) {
    return Flow.all(Array.from({ length: input.n }, (_, i) => Flow.child(Bench1, { i })));
  }
  @Step() join(outputs: { i: number }[]) {
    for (let i = 0; i < outputs.length; i++) if (outputs[i].i !== i) throw new Error(`wrong child output at ${i}`);
    return { children: outputs.length };
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
export const Bench20 = makeSteps20();

/** Curves: a run that sleeps a day after its first step (the template of the sleeping runs a curve store holds). */
@Workflow('benchSleep')
export class BenchSleep {
  @Step() a(input: { n: number }) {
    return Flow.sleep('1d', { n: input.n, a: 1 });
  }
  @Step() b(prev: { n: number; a: number }) {
    return { ...prev, b: 2 };
  }
}

/** Curves: a run that waits for a signal after its first step (the template of the waiting runs). */
@Workflow('benchWait')
export class BenchWait {
  @Step() a(input: { n: number }) {
    return Flow.waitForSignal('go', { value: { n: input.n, a: 1 } });
  }
  @Step() b(payload: unknown) {
    return { payload };
  }
}

/** Curves (`curve_rss`): a run whose second step blocks until `BenchBlock.release()`. */
@Workflow('benchBlock')
export class BenchBlock {
  static reached = 0;
  private static open: () => void = () => undefined;
  private static gate: Promise<void> = new Promise((resolve) => (BenchBlock.open = resolve));
  /** Lets every blocked run (and every later one) go on. */
  static release(): void {
    BenchBlock.open();
  }
  @Step() a(input: { n: number }) {
    return { n: input.n, a: 1 };
  }
  @Step() async b(prev: { n: number; a: number }) {
    BenchBlock.reached++;
    await BenchBlock.gate;
    return { ...prev, b: 2 };
  }
}

export const quiet = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };

export function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export interface WorkerSettings {
  leaseMs?: number;
  pollIntervalMs?: number;
  concurrency?: number;
}

export async function boot(store: WorkflowStore, worker: WorkerSettings = {}, codec?: PayloadCodec, extra: Type[] = [], telemetry = true) {
  @Module({
    imports: [
      DurableExecutionModule.forRoot({ store, worker: { concurrency: 128, ...worker }, ...(codec ? { codec } : {}), ...(telemetry ? {} : { telemetry: { enabled: false } }) }),
    ],
    providers: [Bench3, Bench20, Bench1, BenchFanout, Bench3Key, ...extra],
  })
  class BenchModule {}
  const app = await NestFactory.createApplicationContext(BenchModule, { logger: false });
  return { app, client: app.get(WorkflowClient) };
}

/** One measured stretch: its wall time and the latency of each run in it (ms). */
export interface Chunk {
  ms: number;
  lat: number[];
}

export async function seq(client: WorkflowClient, workflow: string, runs: number): Promise<Chunk> {
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    const out = (await client.execute(workflow, { n: i })) as { n: number };
    lat.push(performance.now() - s);
    if (workflow === 'bench3' && (out as { c?: number }).c !== 3) throw new Error('wrong result');
  }
  return { ms: performance.now() - t0, lat };
}

export async function conc(client: WorkflowClient, runs: number, inFlight: number, keyed = false): Promise<Chunk> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async (_, lane) => {
      while (next < runs) {
        const i = next++;
        const s = performance.now();
        const out = (await (keyed ? client.execute('bench3key', { n: i, k: `lane-${lane}` }) : client.execute('bench3', { n: i }))) as { c: number };
        if (out.c !== 3) throw new Error('wrong result');
        lat.push(performance.now() - s);
      }
    }),
  );
  return { ms: performance.now() - t0, lat };
}

/** The line fields of chunks taken together: runs per second over their summed wall time, p50/p99 of all runs. */
export function summary(chunks: Chunk[]): { wf_per_s: number; p50_ms: number; p99_ms: number; runs: number } {
  const lat = chunks.flatMap((c) => c.lat).sort((a, b) => a - b);
  const ms = chunks.reduce((sum, c) => sum + c.ms, 0);
  return { wf_per_s: lat.length / (ms / 1000), p50_ms: pct(lat, 50), p99_ms: pct(lat, 99), runs: lat.length };
}

/** A proxy of a store whose `close()` does nothing: for apps that share one store (their shutdown may not close it). */
export function unclosable(shared: WorkflowStore): WorkflowStore {
  return new Proxy(shared, { get: (t, p, r) => (p === 'close' ? async () => undefined : Reflect.get(t, p, r)) });
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

/**
 * `resume`: `runs` runs interrupted mid-pipeline (after step a, in step b) by a dying instance; a fresh one finishes
 * them (`resume_s` from its start to the last run's result). The dying instance's lease is 1 s up to 1,000 runs, 10 s
 * above (10,000 runs in flight renew their leases every third of it: at 1 s that is 30,000 renewals a second while they
 * are being started); the fresh instance starts once the leases have expired.
 */
export async function resumeRuns(
  make: () => Promise<WorkflowStore>,
  runs: number,
): Promise<{ wf_per_s: number; resume_s: number; runs: number; resume_cpu_pct: number }> {
  const leaseMs = runs <= 1_000 ? 1_000 : 10_000;
  const shared = await make();
  // NOTE: both instances share one store; neither app's shutdown may close it.
  const dying = killableStore(unclosable(shared));
  Resume3.block = true;
  Resume3.reached = 0;
  @Module({ imports: [DurableExecutionModule.forRoot({ store: dying.store, worker: { concurrency: runs, leaseMs } })], providers: [Resume3] })
  class DyingModule {}
  const a = await NestFactory.createApplicationContext(DyingModule, { logger: ['error'], abortOnError: false });
  const client = a.get(WorkflowClient);
  const ids: string[] = new Array(runs);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(64, runs) }, async () => {
      while (next < runs) {
        const i = next++;
        ids[i] = (await client.start('resume3', { n: i })).runId;
      }
    }),
  );
  const deadline = Date.now() + 60_000 + runs * 10;
  while (Resume3.reached < runs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  dying.kill();
  Resume3.block = false;
  await new Promise((r) => setTimeout(r, leaseMs + 100)); // the dead instance's leases expire
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  @Module({
    imports: [DurableExecutionModule.forRoot({ store: unclosable(shared), worker: { concurrency: 128, leaseMs: 30_000, pollIntervalMs: 50 } })],
    providers: [Resume3],
  })
  class FreshModule {}
  const b = await NestFactory.createApplicationContext(FreshModule, { logger: ['error'], abortOnError: false });
  const fresh = b.get(WorkflowClient);
  let waited = 0;
  const doneAt: number[] = new Array(runs);
  await Promise.all(
    Array.from({ length: Math.min(64, runs) }, async () => {
      while (waited < runs) {
        const i = waited++;
        const out = (await fresh.getHandle(ids[i]).result({ timeout: '300s' })) as { c: number };
        doneAt[i] = performance.now() - t0;
        if (out.c !== 3) throw new Error('wrong result');
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // NOTE: a resume far slower than its runs' median says where its last runs were: their histories, on stderr.
  const order = [...doneAt.keys()].sort((x, y) => doneAt[x] - doneAt[y]);
  const median = doneAt[order[Math.floor(runs / 2)]];
  const lateAfter = 3 * median + 2_000;
  if (doneAt[order[runs - 1]] > lateAfter) {
    console.error(`resume: ${runs} runs, median result at ${median.toFixed(0)} ms, last at ${doneAt[order[runs - 1]].toFixed(0)} ms; the 3 last:`);
    for (const i of order.slice(-3)) {
      const { events } = await fresh.history(ids[i], { limit: 100 });
      const line = events.map((e) => `${e.type}${e.step ? `(${e.step}#${e.attempt ?? ''})` : ''}@${e.at.toISOString().slice(11, 23)}/${e.instanceId?.slice(0, 8) ?? ''}`).join(' ');
      console.error(`resume: ${ids[i]} done at ${doneAt[i].toFixed(0)} ms: ${line}`);
    }
    const late = order.filter((i) => doneAt[i] > lateAfter).length;
    console.error(`resume: ${late} runs ended more than 3x the median (+2 s) after the fresh instance started`);
  }
  await b.close();
  void a.close().catch(() => undefined);
  await shared.close();
  // This process's CPU while the fresh instance resumes (% of one core): whether the resume waits on the store.
  return { wf_per_s: runs / seconds, resume_s: seconds, runs, resume_cpu_pct: (cpu.user + cpu.system) / 10_000 / seconds };
}
