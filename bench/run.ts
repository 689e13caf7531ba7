/**
 * npm run bench [-- --smoke] [-- --otel[=turns]] [-- --otel-sample=0.1] [-- --otel-cairn=off] [-- --codec] [-- --turns=5] [-- --scale=1] [-- --stores=memory,pglite,postgres,redis,dbos,limit] [-- --scenarios=seq3,conc64,conc64key,claim10k,roundtrips,promises,resume,steps20,burst,fanout1k,fanout10k]
 *               [-- --json out.json]
 * npm run bench -- --curves [--stores=postgres,redis] [--curve-ended=0,100000,1000000] [--json curves.json]   (bench/curves.ts)
 * npm run bench -- --compare a.json b.json    (each numeric field of a (store, scenario) in both: a, b, b/a)
 * npm run bench -- --charts curves.json [--charts-out=bench/charts]    (the SVGs of the curves: bench/charts.ts)
 *
 * Prints one line per measurement:
 *   bench store=<s> scenario=<name> wf_per_s=… p50_ms=… p99_ms=… [roundtrips=…] [ratio_vs_dbos=…] [ratio_vs_limit=…]
 * Against a peer measured in turns (DBOS, `--otel=turns`, `--codec`), the ratio of the totals and the median of the
 * turns' own ratios (`turn_median_vs_dbos`, `turn_median_ratio`).
 * `--json out.json` also writes them (every field, unrounded) as a JSON array of { store, scenario, fields }.
 * Starts throwaway Postgres/Redis servers (like the tests) unless DATABASE_URL / REDIS_URL are set. DBOS Transact
 * (bench/dbos, installed on first use) and the raw-insert floor (bench/limit) run against the same Postgres server, right
 * after cairn's Postgres scenarios, and the ratios are printed from that one run. See bench/README.md.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createHook } from 'node:async_hooks';
import { randomBytes, randomUUID } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AesGcmCodec, DurableExecutionModule, WorkflowClient, type WorkflowStore } from '../src/index.js';
import { createStore } from '../src/store/create-store.js';
import { Bench3, BenchFanout, boot, conc, quiet, resumeRuns, seq, summary, type Chunk } from './app.js';
import { compareTable, readRecords, writeJson, type BenchRecord } from './report.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
/** The value of `--name=value` or `--name value`. */
const option = (name: string): string | undefined => {
  const at = args.indexOf(`--${name}`);
  if (at !== -1 && args[at + 1] !== undefined && !args[at + 1].startsWith('--')) return args[at + 1];
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
};
/** Every `bench …` line printed, for `--json`. */
const records: BenchRecord[] = [];
const smoke = args.includes('--smoke');
/** --otel: an OpenTelemetry SDK is registered before any app starts (see registerOtel); every line says `otel=on`. */
const otel = args.includes('--otel');
/**
 * --otel=turns: each store's seq3 and conc64 are also measured on an app with OpenTelemetry (registerOtel) in a child
 * process of its own (`--serve-otel`, on a store of its own), in turns with this process's app, which has none (lines
 * `store=<s>+otel`, then `scenario=<name>_otel` with `ratio_vs_plain`). Takes DBOS's place as Postgres's peer.
 */
const otelTurns = flag('otel') === 'turns';
/**
 * --otel-cairn=off (with --otel=turns): the OpenTelemetry peer keeps the SDK and its context manager, and runs each
 * chunk inside a context of its own, as an instrumented app runs a request (so Node 20's AsyncLocalStorage hooks run on
 * every promise), but boots cairn with `telemetry: { enabled: false }`: what OpenTelemetry costs an app before cairn
 * records anything. Against the default (cairn's telemetry on), the difference is cairn's own spans and metrics.
 */
const otelCairn = flag('otel-cairn') !== 'off';
/**
 * --otel-sample=R (with --otel or --otel=turns): the tracer provider samples new traces at rate R (0–1) with
 * `ParentBasedSampler(TraceIdRatioBasedSampler(R))`, as an app that traces a share of its requests would; the metrics
 * still record every run. Without it every trace is recorded.
 */
const otelSample = flag('otel-sample') === undefined ? undefined : Number(flag('otel-sample'));
if (otelSample !== undefined && !(otelSample >= 0 && otelSample <= 1)) throw new Error(`--otel-sample must be a number from 0 to 1 (got ${flag('otel-sample')})`);
/**
 * Turns of `seq3` and `conc64` against a peer (DBOS, the OpenTelemetry app, the codec app): 5, or with `--turns=N`
 * more and shorter ones (the same runs in all), for a steadier median of the turns' ratios (`turn_median_ratio`).
 */
const peerTurns = Math.max(1, Number(flag('turns') ?? 5));
/**
 * --scale=K: K times the runs of seq3 and conc64 (500 and 2,000 a store), so that many turns stay long enough to
 * average over the VM's hiccups (`--otel=turns --turns=9 --scale=4`: turns of ~900 conc64 runs).
 */
const scale = Number(flag('scale') ?? 1);
if (!(scale > 0)) throw new Error(`--scale must be a positive number (got ${flag('scale')})`);
/**
 * --codec: each store's seq3 and conc64 are also measured with `codec: AesGcmCodec` (a second app on a store of its own),
 * in turns with the plain app (lines `store=<s>+aesgcm`, then `scenario=<name>_codec` with `ratio_vs_plain`). Not with
 * DBOS, which takes the place of the peer: use it with `--stores=postgres` (or memory, redis).
 */
const codecWanted = args.includes('--codec');
const storesWanted = (flag('stores') ?? 'memory,pglite,postgres,dbos,limit,redis').split(',');
const scenariosWanted = (flag('scenarios') ?? 'seq3,conc64,conc64key,claim10k,roundtrips,promises,resume,steps20,burst,fanout1k,fanout10k').split(',');
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
/**
 * Sequential runs before any measurement, on every store and on DBOS (run-dbos.mjs uses the same number): the rate
 * of cairn's Postgres runs still rises for the first ~1,000 runs of a process (V8 optimizing the engine's path) and
 * DBOS's for a few hundred, so fewer would compare processes still warming up rather than their steady states.
 */
const WARMUP_RUNS = 1_500;
/**
 * Then concurrent runs (64 in flight), on every store and on DBOS (run-dbos.mjs uses the same number): the first
 * `conc64` chunk after a sequential warm-up ran at about half the rate of the later ones on Postgres (905 against
 * 1,663–2,492 runs/s in chunks of 400): the concurrent path has its own code to optimize, and each pooled connection
 * prepares and plans its batch statements (PostgreSQL plans a prepared statement afresh on its first five runs).
 */
const WARMUP_CONC_RUNS = 1_000;

/** The warm-up of one app before any measurement: WARMUP_RUNS sequential runs, then WARMUP_CONC_RUNS concurrent ones. */
async function warmUp(client: WorkflowClient): Promise<void> {
  await seq(client, 'bench3', smoke ? 2 : WARMUP_RUNS);
  await conc(client, smoke ? 2 : WARMUP_CONC_RUNS, 64);
}
/** Results by store and scenario, for the ratio lines. */
const results: Record<string, Record<string, number>> = {};

function line(store: string, scenario: string, fields: Record<string, string | number>): void {
  const rate = fields.wf_per_s ?? fields.inserts_per_s;
  if (typeof rate === 'number') (results[store] ??= {})[scenario] = rate;
  records.push({ store, scenario, fields: otel ? { ...fields, otel: 'on' } : { ...fields } });
  const rest = Object.entries(otel ? { ...fields, otel: 'on' } : fields)
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

/**
 * Counts what reaches the server: SQL statements sent by `pg`, commands sent by ioredis. Only while `on` (the
 * `roundtrips` scenario): the check reads the call's arguments, work that must not weigh on the other scenarios. Also
 * the time with at least one of them in flight (`wireMs`: from the call to its reply, overlapping calls counted once),
 * so that the scenario can tell a run's time on the wire from the app's own.
 */
const driverCalls = { count: 0, on: false, inFlight: 0, busySince: 0, wireMs: 0 };
function callSent(): () => void {
  driverCalls.count++;
  if (driverCalls.inFlight++ === 0) driverCalls.busySince = performance.now();
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--driverCalls.inFlight === 0) driverCalls.wireMs += performance.now() - driverCalls.busySince;
  };
}
const pgQuery = pg.Client.prototype.query;
/** The scheduler's background read (once per poll, whatever the runs do) is not a round trip of a run. */
const isScheduleCall = (a: unknown[]) => JSON.stringify(a.slice(0, 3)).includes('schedules') || JSON.stringify(a.slice(0, 3)).includes('{~s~');
(pg.Client.prototype as { query: unknown }).query = function (this: unknown, ...a: unknown[]) {
  if (!driverCalls.on || isScheduleCall(a)) return (pgQuery as (...x: unknown[]) => unknown).apply(this, a);
  const replied = callSent();
  // NOTE: pg answers through a callback argument (as pg-pool calls it), a config's `callback`, or a promise.
  const at = a.findIndex((x) => typeof x === 'function');
  const config = a[0] as { callback?: (...x: unknown[]) => unknown } | undefined;
  if (at >= 0) {
    const callback = a[at] as (...x: unknown[]) => unknown;
    a[at] = (...x: unknown[]) => (replied(), callback(...x));
  } else if (typeof config?.callback === 'function') {
    const callback = config.callback;
    config.callback = (...x: unknown[]) => (replied(), callback(...x));
  }
  const result = (pgQuery as (...x: unknown[]) => unknown).apply(this, a) as { then?: (f: () => void, r: () => void) => void } | undefined;
  if (at < 0 && typeof result?.then === 'function') result.then(replied, replied);
  return result;
};
async function countRedisCommands(): Promise<void> {
  const { Redis } = (await import('ioredis')) as unknown as { Redis: { prototype: { sendCommand: (...a: unknown[]) => unknown } } };
  const send = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (this: unknown, ...a: unknown[]) {
    const command = a[0] as { args?: unknown; promise?: Promise<unknown> };
    if (driverCalls.on && !isScheduleCall([command?.args])) {
      const replied = callSent();
      command?.promise?.then(replied, replied);
    }
    return send.apply(this, a);
  };
}

/** A peer measured in turns with cairn (DBOS in `--serve` mode): runs a chunk of a scenario on request. */
interface Peer {
  name: string;
  chunk(scenario: 'seq3' | 'conc64', runs: number): Promise<Chunk>;
  /** Lets the peer run its other scenarios and exit. */
  finish(): Promise<void>;
}

/**
 * `runs` runs of a scenario in `turns` chunks, taking turns with the peer (ABBA order: cairn first on even turns, the
 * peer first on odd ones), so that both see the same machine: on a noisy VM the drift between two measurements taken
 * a minute apart is larger than the gaps being measured. Prints both lines.
 */
async function inTurns(
  name: string,
  scenario: 'seq3' | 'conc64',
  runs: number,
  own: (n: number) => Promise<Chunk>,
  peer?: Peer,
): Promise<void> {
  const turns = smoke ? 1 : peerTurns;
  const mine: Chunk[] = [];
  const theirs: Chunk[] = [];
  for (let t = 0; t < turns; t++) {
    const n = Math.round(runs / turns);
    if (peer && t % 2 === 1) theirs.push(await peer.chunk(scenario, n));
    mine.push(await own(n));
    if (peer && t % 2 === 0) theirs.push(await peer.chunk(scenario, n));
  }
  line(name, scenario, summary(mine));
  if (peer) {
    line(peer.name, scenario, summary(theirs));
    // NOTE: the median of the turns' own ratios: one turn hit by the VM's noise moves it less than the totals' ratio.
    const ratios = mine.map((m, t) => m.ms / m.lat.length / (theirs[t].ms / theirs[t].lat.length)).sort((a, b) => a - b);
    (turnRatios[peer.name] ??= {})[scenario] = ratios[Math.floor(ratios.length / 2)];
  }
}

/** The median over the turns of (peer's rate / this process's rate), by peer and scenario (see inTurns). */
const turnRatios: Record<string, Record<string, number>> = {};

/** A peer's ratio line: the ratio of the totals, and the median of the turns' own ratios when it ran in turns. */
function peerRatio(peer: string, scenario: string, ratioVsPlain: number): Record<string, number> {
  const turn = turnRatios[peer]?.[scenario];
  return { ratio_vs_plain: ratioVsPlain, ...(turn !== undefined ? { turn_median_ratio: turn } : {}) };
}

/** `--codec`: an app with AesGcmCodec on its own store, warmed up like the plain one, measured in turns with it. */
async function codecPeer(name: string, make: () => Promise<WorkflowStore>): Promise<Peer> {
  const { app, client } = await boot(await make(), {}, new AesGcmCodec({ keys: { bench: randomBytes(32) }, currentKeyId: 'bench' }));
  await warmUp(client);
  return {
    name: `${name}+aesgcm`,
    chunk: (scenario, runs) => (scenario === 'seq3' ? seq(client, 'bench3', runs) : conc(client, runs, 64)),
    finish: async () => {
      for (const scenario of ['seq3', 'conc64']) {
        const plain = results[name]?.[scenario];
        const coded = results[`${name}+aesgcm`]?.[scenario];
        if (plain && coded) line(name, `${scenario}_codec`, peerRatio(`${name}+aesgcm`, scenario, coded / plain));
      }
      await app.close();
    },
  };
}

async function benchStore(name: string, make: () => Promise<WorkflowStore>, peer?: Peer, makeForCodec?: () => Promise<WorkflowStore>): Promise<void> {
  const codec = codecWanted && !peer && makeForCodec ? await codecPeer(name, makeForCodec) : undefined;
  peer ??= codec;
  const raw = await make();
  const counting = countingStore(raw);
  const { app, client } = await boot(counting.store);
  try {
    const n = Math.round(scale * (smoke ? 5 : name === 'memory' ? 20_000 : 500));
    const cn = Math.round(scale * (smoke ? 10 : name === 'memory' ? 20_000 : 2_000));
    await warmUp(client);
    if (scenariosWanted.includes('seq3')) await inTurns(name, 'seq3', n, (k) => seq(client, 'bench3', k), peer);
    if (scenariosWanted.includes('conc64')) await inTurns(name, 'conc64', cn, (k) => conc(client, k, 64), peer);
    if (scenariosWanted.includes('conc64key')) {
      // In turns with plain conc64 on the same app, so both see the same machine load.
      const plain: Chunk[] = [];
      const keyed: Chunk[] = [];
      const turns = smoke ? 2 : 4;
      for (let t = 0; t < turns; t++) {
        if (t % 2 === 0) plain.push(await conc(client, Math.ceil(cn / turns), 64));
        keyed.push(await conc(client, Math.ceil(cn / turns), 64, true));
        if (t % 2 === 1) plain.push(await conc(client, Math.ceil(cn / turns), 64));
      }
      const p = summary(plain);
      const k = summary(keyed);
      line(name, 'conc64key', { ...k, plain_wf_per_s: p.wf_per_s, ratio_vs_conc64: k.wf_per_s / p.wf_per_s });
    }
    if (scenariosWanted.includes('claim10k')) await claim10k(name, raw, smoke ? 200 : 10_000);
    if (scenariosWanted.includes('roundtrips')) {
      const runs = smoke ? 3 : 200;
      counting.reset();
      const before = driverCalls.count;
      driverCalls.wireMs = 0;
      driverCalls.on = true;
      const t0 = performance.now();
      for (let i = 0; i < runs; i++) await client.execute('bench3', { n: i });
      const runMs = (performance.now() - t0) / runs;
      driverCalls.on = false;
      const driver = (driverCalls.count - before) / runs;
      // NOTE: memory and PGlite have no wire; their round trips are the store calls.
      const wire = name === 'postgres' || name === 'redis';
      // Runs one after another, as in seq3: run_ms = wire_ms (a statement or command in flight) + app_ms (the rest).
      const wireMs = driverCalls.wireMs / runs;
      const timing: Record<string, number> = wire ? { run_ms: runMs, wire_ms: wireMs, app_ms: runMs - wireMs, wire_share: wireMs / runMs } : {};
      line(name, 'roundtrips', { roundtrips: wire ? driver : counting.count() / runs, store_calls: counting.count() / runs, runs, ...timing });
    }
    if (scenariosWanted.includes('promises')) {
      // Promises created per run at conc64: under an app's context manager (OpenTelemetry), each costs hook calls.
      const runs = smoke ? 10 : 500;
      let created = 0;
      const hook = createHook({
        init(_id, type) {
          if (type === 'PROMISE') created++;
        },
      });
      hook.enable();
      try {
        await conc(client, runs, 64);
      } finally {
        hook.disable();
      }
      line(name, 'promises', { promises_per_run: created / runs, runs });
    }
    if (scenariosWanted.includes('steps20')) {
      const runs = smoke ? 2 : name === 'memory' ? 2_000 : 100;
      const r = summary([await seq(client, 'bench20', runs)]);
      line(name, 'steps20', { ...r, step_ms: r.p50_ms / 20 });
    }
    for (const [scenario, full] of [['fanout1k', 1_000], ['fanout10k', 10_000]] as const) {
      if (scenariosWanted.includes(scenario)) await fanout(name, scenario, client, smoke ? (full === 1_000 ? 20 : 50) : full);
    }
  } finally {
    await app.close();
    await codec?.finish();
  }
  if (scenariosWanted.includes('resume')) await resume(name, make);
  if (scenariosWanted.includes('burst')) await burst(name, make);
}

/**
 * `fanout1k` / `fanout10k`: one parent run fans out `children` one-step children with `Flow.all` and joins them:
 * `wall_ms` from `start()` to the parent's result. The reference, measured right after on the same app: as many
 * independent `conc64` runs (the 3-step bench3, 64 in flight), `conc64_ms`; `ratio_vs_conc64` = wall_ms ÷ conc64_ms
 * (the goal for fanout10k: at most 10).
 */
async function fanout(name: string, scenario: string, client: WorkflowClient, children: number): Promise<void> {
  const t0 = performance.now();
  const handle = await client.start(BenchFanout, { n: children }, { id: `${scenario}-${randomUUID().slice(0, 8)}` });
  const out = (await handle.result({ timeout: '1800s' })) as { children: number };
  const wall = performance.now() - t0;
  if (out.children !== children) throw new Error('wrong result');
  const reference = await conc(client, children, 64);
  line(name, scenario, {
    wall_ms: wall,
    children_per_s: children / (wall / 1000),
    children,
    conc64_ms: reference.ms,
    ratio_vs_conc64: wall / reference.ms,
  });
}

/**
 * `claim10k`: `runs` due runs are queued (created straight in the store, 64 at a time), then one claimer takes them in
 * batches of 100 (`claimRuns`, as a worker's poll does) until all are claimed: `wall_ms` of the claims alone.
 */
async function claim10k(name: string, store: WorkflowStore, runs: number): Promise<void> {
  const workflow = `claim10k_${randomUUID().slice(0, 8)}`;
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < runs) {
        const i = next++;
        await store.createRun({ runId: `${workflow}-${i}`, workflow, version: 1, input: '{}', state: '{}' }, { onConflict: 'keep' });
      }
    }),
  );
  const lease = { owner: 'claim10k', leaseMs: 600_000 };
  const refs = [{ workflow, version: 1 }];
  let claimed = 0;
  let batches = 0;
  const t0 = performance.now();
  while (claimed < runs) {
    const got = await store.claimRuns(lease, 100, refs);
    if (got.length === 0) throw new Error(`claim10k: only ${claimed} of ${runs} runs were claimable`);
    claimed += got.length;
    batches++;
  }
  const ms = performance.now() - t0;
  line(name, 'claim10k', { wall_ms: ms, claims_per_s: runs / (ms / 1000), batch_ms: ms / batches, runs });
}

/**
 * `burst`: 10,000 runs started at once by an instance without a worker, then one worker instance with the default
 * settings (concurrency 100, poll every second) drains them: the time from its start to the last run's end.
 */
async function burst(name: string, make: () => Promise<WorkflowStore>): Promise<void> {
  if (name === 'pglite') return; // one app per data folder: no second instance
  const runs = smoke ? 50 : 10_000;
  const shared = await make();
  const unclosable = (): WorkflowStore => new Proxy(shared, { get: (t, p, r) => (p === 'close' ? async () => undefined : Reflect.get(t, p, r)) });
  @Module({ imports: [DurableExecutionModule.forRoot({ store: unclosable(), worker: { enabled: false } })], providers: [Bench3] })
  class StarterModule {}
  const a = await NestFactory.createApplicationContext(StarterModule, { logger: false });
  const starter = a.get(WorkflowClient);
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < runs) {
        next++;
        ids.push((await starter.start('bench3', { n: next })).runId);
      }
    }),
  );
  const t0 = performance.now();
  @Module({ imports: [DurableExecutionModule.forRoot({ store: unclosable() })], providers: [Bench3] })
  class WorkerModule {}
  const b = await NestFactory.createApplicationContext(WorkerModule, { logger: false });
  const worker = b.get(WorkflowClient);
  for (const id of ids) {
    const out = (await worker.getHandle(id).result({ timeout: '600s' })) as { c: number };
    if (out.c !== 3) throw new Error('wrong result');
  }
  const seconds = (performance.now() - t0) / 1000;
  line(name, 'burst', { wf_per_s: runs / seconds, drain_s: seconds, runs });
  await b.close();
  await a.close();
  await shared.close();
}

/** `resume`: runs interrupted mid-pipeline by a dying instance, finished by a fresh one (see resumeRuns in app.ts). */
async function resume(name: string, make: () => Promise<WorkflowStore>): Promise<void> {
  if (name === 'pglite') return; // one app per data folder: no second instance to resume on
  line(name, 'resume', await resumeRuns(make, smoke ? 10 : 1_000));
}

/** Runs a bench/ sub-runner (DBOS, raw-insert floor) and echoes its lines. */
function subRunner(script: string, url: string): void {
  const out = execFileSync(process.execPath, ['--no-deprecation', here(script), `--url=${url}`, ...(smoke ? ['--smoke'] : [])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  });
  for (const l of out.split('\n')) echoLine(l);
}

/** Echoes a `bench store=… scenario=… k=v …` line of a sub-runner (and records its rate for the ratios). */
function echoLine(l: string): void {
  const m = /^bench store=(\S+) scenario=(\S+) (.*)$/.exec(l.trim());
  if (!m) return;
  const fields: Record<string, string | number> = {};
  for (const kv of m[3].split(' ')) {
    const [k, v] = kv.split('=');
    fields[k] = Number.isNaN(Number(v)) ? v : Number(v);
  }
  line(m[1], m[2], fields);
}

/** Starts bench/dbos/run-dbos.mjs in `--serve` mode (launched and warmed up) as the peer of cairn's Postgres runs. */
async function startDbosPeer(url: string): Promise<Peer> {
  if (!existsSync(here('./dbos/node_modules'))) {
    execFileSync('npm', ['install', '--prefix', here('./dbos'), '--no-audit', '--no-fund'], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const scenarios = scenariosWanted.filter((x) => ['seq3', 'conc64', 'roundtrips'].includes(x)).join(',');
  const child = spawn(process.execPath, ['--no-deprecation', here('./dbos/run-dbos.mjs'), `--url=${url}`, `--scenarios=${scenarios}`, '--serve', ...(smoke ? ['--smoke'] : [])], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return stdioPeer('dbos', 'bench/dbos/run-dbos.mjs', child);
}

/**
 * A peer in a child process that speaks the `--serve` protocol: it prints `ready` once warmed up, then for each
 * `<scenario> <runs>` line it reads, runs that chunk and prints `chunk <ms> <latency,…>`; `done` lets it finish. Its
 * other `bench …` lines are echoed.
 */
async function stdioPeer(name: string, what: string, child: ReturnType<typeof spawn>, finish?: () => void): Promise<Peer> {
  const exited = new Promise<void>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${what} exited with code ${code}`)))));
  const waiting: ((l: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    if (l === 'ready' || l.startsWith('chunk ')) waiting.shift()?.(l);
    else echoLine(l);
  });
  const next = () => Promise.race([new Promise<string>((resolve) => waiting.push(resolve)), exited.then(() => Promise.reject(new Error(`${what} ended early`)))]);
  await next(); // ready
  return {
    name,
    async chunk(scenario, runs) {
      child.stdin!.write(`${scenario} ${runs}\n`);
      const [, ms, lat] = (await next()).split(' ');
      return { ms: Number(ms), lat: lat.split(',').map(Number) };
    },
    async finish() {
      child.stdin!.end('done\n');
      await exited;
      finish?.();
    },
  };
}

/** `--otel=turns`: this script in `--serve-otel` mode, launched and warmed up, as the peer of a store's runs. */
async function startOtelPeer(store: 'memory' | 'postgres' | 'redis', url?: string): Promise<Peer> {
  const child = spawn(
    process.execPath,
    ['--import', '@swc-node/register/esm-register', fileURLToPath(import.meta.url), `--serve-otel=${store}`, ...(url ? [`--url=${url}`] : []), ...(smoke ? ['--smoke'] : []), ...(otelSample !== undefined ? [`--otel-sample=${otelSample}`] : []), ...(otelCairn ? [] : ['--otel-cairn=off'])],
    { cwd: here('..'), stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const name = `${store}+otel`;
  return stdioPeer(name, `the OpenTelemetry peer of ${store}`, child, () => {
    for (const scenario of ['seq3', 'conc64']) {
      const plain = results[store]?.[scenario];
      const traced = results[name]?.[scenario];
      if (plain && traced) line(store, `${scenario}_otel`, peerRatio(name, scenario, traced / plain));
    }
  });
}

/**
 * `--serve-otel=<store> [--url=…]` (started by `--otel=turns`): registers OpenTelemetry, boots the bench app on a store
 * of its own, warms it up like the main process's, and runs chunks of seq3 / conc64 on request (see stdioPeer).
 */
async function serveOtelPeer(store: string, url: string | undefined): Promise<void> {
  await registerOtel();
  const logger = { log() {}, warn() {}, error: (m: string) => console.error(m) };
  const made =
    store === 'postgres'
      ? await createStore({ type: 'postgres', url: url!, schema: `bench_${randomUUID().slice(0, 8)}_otel` }, logger)
      : store === 'redis'
        ? await createStore({ type: 'redis', url: url!, keyPrefix: `bench:${randomUUID().slice(0, 8)}:otel:` }, logger)
        : await createStore({ type: 'memory' }, quiet as never);
  const { app, client } = await boot(made, {}, undefined, [], otelCairn);
  const { context, createContextKey, ROOT_CONTEXT } = await import('@opentelemetry/api');
  // NOTE: with cairn's telemetry off nothing would enter a context, and the context manager would cost nothing: run
  // each chunk inside one, as an instrumented app runs its requests.
  const request = ROOT_CONTEXT.setValue(createContextKey('bench.request'), true);
  const inRequest = <T,>(body: () => Promise<T>) => (otelCairn ? body() : context.with(request, body));
  await inRequest(() => warmUp(client));
  console.log('ready');
  for await (const l of createInterface({ input: process.stdin })) {
    if (l === 'done') break;
    const [scenario, runs] = l.split(' ');
    const chunk = await inRequest(() => (scenario === 'seq3' ? seq(client, 'bench3', Number(runs)) : conc(client, Number(runs), 64)));
    console.log(`chunk ${chunk.ms} ${chunk.lat.join(',')}`);
  }
  await app.close();
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
    const turn = turnRatios.dbos?.[scenario];
    if (dbos && turn !== undefined) fields.turn_median_vs_dbos = 1 / turn;
    const limit = results.limit?.[scenario];
    // NOTE: a 3-step run needs 4 durable writes (start, 3 checkpoints); the floor is the raw insert rate.
    if (limit) fields.ratio_vs_limit = (wf * 4) / limit;
    line('postgres', `${scenario}_ratios`, fields);
  }
}

/**
 * `--otel`: what an app with OpenTelemetry set up runs with, minus the network: the async-hooks context manager, a
 * tracer provider whose BatchSpanProcessor hands every span to an exporter that drops them, and a meter provider whose
 * periodic reader collects every metric each 5 seconds for an exporter that drops them. Registered before any app is
 * created (the engine takes the global meter when it is built), so every span and metric of the engine is recorded
 * (with `--otel-sample=R`, the spans of a share R of the runs).
 */
async function registerOtel(): Promise<void> {
  const { context, metrics, trace } = await import('@opentelemetry/api');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } = await import('@opentelemetry/sdk-trace-base');
  const { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } = await import('@opentelemetry/sdk-metrics');
  const done = (callback: (result: { code: number }) => void) => callback({ code: 0 }); // ExportResultCode.SUCCESS
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({
      ...(otelSample !== undefined ? { sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(otelSample) }) } : {}),
      spanProcessors: [new BatchSpanProcessor({ export: (_spans, callback) => done(callback), shutdown: async () => undefined })],
    }),
  );
  metrics.setGlobalMeterProvider(
    new MeterProvider({
      readers: [
        new PeriodicExportingMetricReader({
          exporter: {
            export: (_metrics, callback) => done(callback),
            forceFlush: async () => undefined,
            shutdown: async () => undefined,
            selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
          },
          exportIntervalMillis: 5_000,
        }),
      ],
    }),
  );
}

async function main(): Promise<void> {
  const serving = flag('serve-otel');
  if (serving) return serveOtelPeer(serving, args.find((a) => a.startsWith('--url='))?.slice('--url='.length));
  const compareAt = args.indexOf('--compare');
  if (compareAt !== -1) {
    const [a, b] = args.slice(compareAt + 1, compareAt + 3);
    if (!a || !b) throw new Error('usage: npm run bench -- --compare a.json b.json');
    console.log(compareTable(readRecords(a), readRecords(b)));
    return;
  }
  const charts = option('charts');
  if (charts) {
    const { renderCharts } = await import('./charts.js');
    for (const file of await renderCharts(readRecords(charts), option('charts-out') ?? here('./charts'))) console.log(`wrote ${file}`);
    return;
  }
  const json = option('json');
  try {
    await benchmarks();
  } finally {
    if (json) writeJson(json, records);
  }
}

async function benchmarks(): Promise<void> {
  if (args.includes('--curves')) {
    const { runCurves } = await import('./curves.js');
    const ended = option('curve-ended')?.split(',').map(Number);
    return runCurves({ smoke, stores: flag('stores')?.split(',') ?? ['postgres', 'redis'], line, ended });
  }
  if (otel) await registerOtel();
  const servers: { stop(): Promise<void> }[] = [];
  const logger = { log() {}, warn() {}, error: (m: string) => console.error(m) };
  try {
    if (storesWanted.includes('memory')) {
      const memory = async () => createStore({ type: 'memory' }, quiet as never);
      const peer = otelTurns ? await startOtelPeer('memory') : undefined;
      try {
        await benchStore('memory', memory, peer, memory);
      } finally {
        await peer?.finish();
      }
    }
    if (storesWanted.includes('pglite')) {
      const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-pglite-'));
      await benchStore('pglite', async () => createStore({ type: 'pglite', dataDir: dir }, logger));
      rmSync(dir, { recursive: true, force: true });
    }
    if (storesWanted.includes('postgres')) {
      let url = process.env.DATABASE_URL;
      if (!url) {
        const { startBenchPostgres } = await import('./postgres-server.js');
        const pg = await startBenchPostgres((line) => console.error(line));
        servers.push(pg);
        url = pg.url;
      }
      const schema = `bench_${randomUUID().slice(0, 8)}`;
      // DBOS runs in turns with cairn (seq3, conc64), then its other scenarios.
      const dbos = otelTurns ? await startOtelPeer('postgres', url) : storesWanted.includes('dbos') ? await startDbosPeer(url) : undefined;
      try {
        await benchStore('postgres', async () => createStore({ type: 'postgres', url, schema }, logger), dbos, async () =>
          createStore({ type: 'postgres', url, schema: `${schema}_codec` }, logger),
        );
      } finally {
        await dbos?.finish();
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
      const redisStore = async () => createStore({ type: 'redis', url, keyPrefix: `bench:${randomUUID().slice(0, 8)}:` }, logger);
      const peer = otelTurns ? await startOtelPeer('redis', url) : undefined;
      try {
        await benchStore('redis', redisStore, peer, redisStore);
      } finally {
        await peer?.finish();
      }
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
