/**
 * The chaos soak: a store (own throwaway server, or DATABASE_URL / REDIS_URL), a fault proxy in front of it, W worker
 * processes (chaos/worker.ts) behind the proxy, a worker-less client in this process that drives the planned runs and
 * their control calls, and a fault loop. Then the checker (checker.ts).
 *
 * PGlite (one process per data folder): one worker process opens the folder, no proxy, and the driver's calls go
 * through the worker's IPC channel (driver-client.ts); the checker opens the folder itself once the worker has stopped.
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DurableExecutionModule, InvalidRunStateError, RunNotActiveError, RunNotFoundError, WorkflowClient, type RunInfo, type StartOptions } from '../src/index.js';
import { chaosStoreOptions } from './store-options.js';
import { CHAOS_WORKFLOWS, PLANT, TICK_MS, TICK_SCHEDULE } from './workflows.js';
import { IpcDriver, localDriver, type DriverClient } from './driver-client.js';
import { FaultProxy } from './proxy.js';
import { makePlan, rng, type RunPlan } from './plan.js';
import { check, type CheckResult, type ControlLog, type Window } from './checker.js';
import { POISON_SLEEP_MS, POISON_WORKFLOW, poisonRun } from './poison.js';

/** How many runs the soak poisons (their stored state damaged while they sleep). */
const POISON_RUNS = 3;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface SoakOptions {
  store: 'postgres' | 'redis' | 'pglite';
  runs: number;
  workers: number;
  durationMs: number;
  seed: number;
  leaseMs: number;
  pollMs: number;
  /** How long after the fault window the runs may take to end. */
  drainMs: number;
  /** Allowance of the resume bound for a loaded machine (documented). */
  slackMs: number;
  dir?: string;
  log: (line: string) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Worker {
  index: number;
  child: ChildProcess;
  pid: number;
  state: 'running' | 'stopped' | 'dead';
  out: string;
  /** Ready (bootstrapped); an exit after it that the soak did not cause is a crash. */
  ready?: boolean;
  /** The soak killed or stopped it on purpose. */
  killed?: boolean;
}

interface Store {
  kind: SoakOptions['store'];
  url: string;
  host: string;
  port: number;
  namespace: string;
  restart?: () => Promise<void>;
  stop: () => Promise<void>;
}

async function openStore(opts: SoakOptions, dir: string): Promise<Store> {
  if (opts.store === 'pglite') {
    // NOTE: no server and no restart: the store is the worker process itself (a restart is its SIGKILL).
    return { kind: 'pglite', url: '', host: '', port: 0, namespace: join(dir, 'pglite'), stop: async () => undefined };
  }
  const namespace = opts.store === 'postgres' ? `chaos_${randomUUID().slice(0, 8)}` : `chaos:${randomUUID().slice(0, 8)}:`;
  if (opts.store === 'postgres') {
    if (process.env.DATABASE_URL) {
      const u = new URL(process.env.DATABASE_URL);
      return { kind: 'postgres', url: u.toString(), host: u.hostname, port: Number(u.port || 5432), namespace, stop: async () => undefined };
    }
    const { startPostgres } = await import('../test/setup/postgres-server.js');
    const pg = await startPostgres();
    return { kind: 'postgres', url: pg.url, host: '127.0.0.1', port: pg.port, namespace, restart: () => pg.restart(), stop: () => pg.stop() };
  }
  if (opts.store === 'redis') {
    if (process.env.REDIS_URL) {
      const u = new URL(process.env.REDIS_URL);
      return { kind: 'redis', url: u.toString(), host: u.hostname, port: Number(u.port || 6379), namespace, stop: async () => undefined };
    }
    const { startRedis } = await import('../test/setup/redis-server.js');
    const redis = await startRedis({ appendfsync: 'always' });
    return { kind: 'redis', url: redis.url, host: '127.0.0.1', port: redis.port, namespace, restart: () => redis.kill9AndRestart(), stop: () => redis.stop() };
  }
  throw new Error(`unknown store ${String(opts.store)}`);
}

function proxiedUrl(store: Store, port: number): string {
  const u = new URL(store.url);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

export async function runSoak(opts: SoakOptions): Promise<CheckResult & { faults: number; dir: string; poisoned: number; crashed: number }> {
  if (opts.store === 'pglite' && opts.workers !== 1) {
    throw new Error(`--store=pglite runs one worker process (PGlite opens a data folder in one process at a time); got --workers=${opts.workers}`);
  }
  const pglite = opts.store === 'pglite';
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'cairn-chaos-'));
  mkdirSync(join(dir, 'markers'), { recursive: true });
  const store = await openStore(opts, dir);
  const proxy = pglite ? undefined : new FaultProxy(store.host, store.port);
  await proxy?.start();
  const workerUrl = proxy ? proxiedUrl(store, proxy.port) : '';
  const windows: Window[] = [];
  const faultLog: string[] = [];
  const controls = new Map<string, ControlLog>();
  let faults = 0;
  /** Worker processes that exited after bootstrap without the soak killing them. */
  const crashes: string[] = [];
  const workers: Worker[] = [];
  let app: INestApplicationContext | undefined;
  let checkApp: INestApplicationContext | undefined;
  /** When the fault window began: once every worker is ready (set again then; the plan's times count from it). */
  let began = Date.now();
  const r = rng(opts.seed ^ 0x9e3779b9);
  const between = (lo: number, hi: number) => Math.round(lo + r() * (hi - lo));
  const note = (what: string) => faultLog.push(`${Date.now() - began}ms ${what}`);

  const spawnWorker = (index: number): Promise<Worker> => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CHAOS_STORE: store.kind,
      CHAOS_URL: workerUrl,
      CHAOS_NAMESPACE: store.namespace,
      CHAOS_LEDGER: join(dir, `ledger-${index}.jsonl`),
      CHAOS_MARKERS: join(dir, 'markers'),
      CHAOS_INSTANCE: `chaos-w${index}`,
      CHAOS_LEASE_MS: String(opts.leaseMs),
      CHAOS_POLL_MS: String(opts.pollMs),
      NO_COLOR: '1',
    };
    delete env.NODE_OPTIONS;
    // PGlite: an IPC channel, the driver's way to the store (driver-client.ts).
    const child = spawn(process.execPath, ['--import', '@swc-node/register/esm-register', 'chaos/worker.ts'], {
      cwd: ROOT,
      env,
      stdio: pglite ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
      ...(pglite ? { serialization: 'advanced' as const } : {}),
    });
    const w: Worker = { index, child, pid: child.pid!, state: 'running', out: '' };
    const onData = (c: Buffer) => {
      w.out += c.toString('utf8');
      if (w.out.length > 400_000) w.out = w.out.slice(-200_000);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      w.state = 'dead';
      if (w.ready && !w.killed) crashes.push(`worker ${index} (pid ${w.pid}) exited by itself: code=${code} signal=${signal}`);
      writeFileSync(join(dir, `worker-${index}-${w.pid}.log`), `${w.out}\nexit code=${code} signal=${signal}\n`);
    });
    return new Promise((resolveReady, reject) => {
      const timer = setInterval(() => {
        if (/^READY \d+$/m.test(w.out)) {
          clearInterval(timer);
          w.ready = true;
          resolveReady(w);
        } else if (w.state === 'dead') {
          clearInterval(timer);
          reject(new Error(`worker ${index} exited before READY:\n${w.out.slice(-3000)}`));
        }
      }, 20);
    });
  };

  /**
   * Starts a worker as a process manager would: one that dies before it is ready (its bootstrap met a store restart or
   * a dropped connection, and failed fast, as it should) is started again, a few times.
   */
  const startWorker = async (index: number): Promise<Worker> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await spawnWorker(index);
      } catch (error) {
        if (attempt >= 10) throw error;
        note(`worker ${index} failed to start (attempt ${attempt}); starting it again`);
        await sleep(500);
      }
    }
  };

  try {
    @Module({
      imports: [DurableExecutionModule.forRoot({ store: chaosStoreOptions(store.kind, store.url, store.namespace), worker: { enabled: false } })],
      providers: CHAOS_WORKFLOWS,
    })
    class ChaosClientModule {}
    const openClient = () => NestFactory.createApplicationContext(ChaosClientModule, { logger: ['error'], abortOnError: false });
    let driver: DriverClient;
    if (pglite) {
      driver = new IpcDriver(() => {
        const w = workers[0];
        return w?.ready && w.state !== 'dead' ? w.child : undefined;
      });
    } else {
      app = await openClient();
      driver = localDriver(app.get(WorkflowClient), (id) => poisonRun(store.kind, store.url, store.namespace, id));
    }

    let firstReadyAt = 0;
    await Promise.all(
      Array.from({ length: opts.workers }, async (_, i) => {
        workers[i] = await startWorker(i);
        firstReadyAt ||= Date.now();
      }),
    );
    // NOTE: the window starts once the workers are up (booting 3 of them can take 10 s on a loaded 2-core machine).
    const bootMs = Date.now() - began;
    began = Date.now();
    opts.log(`chaos: store=${store.kind} workers=${opts.workers} (up in ${bootMs} ms) runs=${opts.runs} duration=${opts.durationMs}ms seed=${opts.seed} dir=${dir}${PLANT ? ` PLANTED=${PLANT}` : ''}`);

    /** A client call retried through store outages. `uncertain`: an attempt failed in a way that may have applied it. */
    const persist = async (what: () => Promise<void>): Promise<{ outcome: 'ok' | 'not-active' | 'not-found' | 'invalid-state'; uncertain: boolean }> => {
      let uncertain = false;
      const deadline = Date.now() + opts.durationMs + opts.drainMs;
      for (;;) {
        try {
          await what();
          return { outcome: 'ok', uncertain };
        } catch (error) {
          if (error instanceof RunNotActiveError) return { outcome: 'not-active', uncertain };
          if (error instanceof RunNotFoundError) return { outcome: 'not-found', uncertain };
          if (error instanceof InvalidRunStateError) return { outcome: 'invalid-state', uncertain };
          uncertain = true;
          if (Date.now() > deadline) throw error;
          await sleep(200);
        }
      }
    };
    const describe = async (id: string): Promise<RunInfo | undefined> => {
      for (;;) {
        try {
          return await driver.describe(id);
        } catch {
          await sleep(200);
        }
      }
    };

    const plans = makePlan(opts.seed, opts.runs, Math.round(opts.durationMs * 0.85));
    const driveEnd = began + opts.durationMs + opts.drainMs;

    /** A debounce burst: its starts one after the other, each retried through store outages until it returns. */
    const debounceBurst = async (p: RunPlan, log: ControlLog) => {
      const d = p.debounce!;
      log.debounce = [];
      for (let n = 0; n < d.starts; n++) {
        if (n > 0) await sleep(d.gapMs);
        const entry: NonNullable<ControlLog['debounce']>[number] = { n, calledAt: Date.now(), uncertain: false };
        log.debounce.push(entry);
        // PLANTED=debounce: a key per start, so the burst gives several runs.
        const key = PLANT === 'debounce' ? `${p.id}/${n}` : p.id;
        while (Date.now() < driveEnd) {
          try {
            entry.runId = (await driver.start(p.wf, { burst: p.id, n }, { debounce: { key, delay: d.delayMs, maxDelay: d.maxDelayMs } })).runId;
            entry.returnedAt = Date.now();
            break;
          } catch {
            entry.uncertain = true;
            await sleep(200);
          }
        }
      }
    };

    const script = async (p: RunPlan) => {
      const log: ControlLog = { signals: [], pauses: [] };
      controls.set(p.id, log);
      await sleep(Math.max(0, began + p.startAt - Date.now()));
      if (p.debounce) return debounceBurst(p, log);
      const options: StartOptions = { id: p.id };
      if (p.priority !== undefined) options.priority = p.priority;
      // PLANTED=delay: the start forgets its delay (the checker still expects it).
      if (p.delayMs !== undefined && PLANT !== 'delay') options.delay = p.delayMs;
      log.calledAt = Date.now();
      await persist(() => driver.start(p.wf, p.input, options).then(() => undefined));
      log.startedAt = Date.now();
      const tasks: Promise<void>[] = [];
      if (p.pause) {
        const pz = p.pause;
        tasks.push(
          (async () => {
            await sleep(pz.afterMs);
            const at = Date.now();
            const res = await persist(() => driver.pause(p.id));
            if (res.outcome !== 'ok' && !res.uncertain) return;
            await sleep(pz.forMs);
            const resumed = await persist(() => driver.resume(p.id));
            log.pauses.push({ from: at, to: Date.now(), pause: res.outcome, resume: resumed.outcome });
          })(),
        );
      }
      if (p.cancelAfterMs !== undefined) {
        const after = p.cancelAfterMs;
        tasks.push(
          (async () => {
            await sleep(after);
            const sentAt = Date.now();
            const res = await persist(() => driver.cancel(p.id));
            log.cancel = { outcome: res.outcome, uncertain: res.uncertain, at: Date.now(), sentAt };
          })(),
        );
      }
      if (p.signals) {
        const sends = p.signals;
        tasks.push(
          (async () => {
            for (let i = 0; i < sends.length; i++) {
              const s = sends[i];
              await sleep(s.delayMs);
              if (i === 1 && p.cancelWhileWaiting) {
                // Cancel once the run waits for its second signal (it would wait for it for 30 minutes).
                while (Date.now() < driveEnd) {
                  const info = await describe(p.id);
                  if (info && info.steps.filter((st) => st.name === 'wait').length >= 2 && info.status === 'waiting') break;
                  await sleep(100);
                }
                const sentAt = Date.now();
                const res = await persist(() => driver.cancel(p.id));
                log.cancel = { outcome: res.outcome, uncertain: res.uncertain, at: Date.now(), sentAt };
                return;
              }
              const first = await persist(() => driver.signal(p.id, s.name, s.payload, { id: s.id }));
              const ackedAt = Date.now();
              // The same signal id again: it must be ignored.
              await persist(() => driver.signal(p.id, s.name, s.payload, { id: s.id }));
              log.signals.push({ name: s.name, id: s.id, p: s.payload.p, ackedAt, outcome: first.outcome });
            }
          })(),
        );
      }
      if (p.manual) {
        tasks.push(
          (async () => {
            while (Date.now() < driveEnd) {
              const info = await describe(p.id);
              if (info?.status === 'failed') {
                writeFileSync(join(dir, 'markers', encodeURIComponent(p.id)), '');
                const res = await persist(() => driver.retry(p.id));
                if (res.outcome === 'ok') {
                  log.retriedAt = Date.now();
                  return;
                }
              }
              await sleep(150);
            }
          })(),
        );
      }
      await Promise.all(tasks);
    };
    const scripts = Promise.all(plans.map((p) => script(p).catch((error: unknown) => opts.log(`chaos: driver of ${p.id} failed: ${String(error)}`))));

    // Poison runs: started a quarter into the fault window; each one's state is damaged while it sleeps (directly in
    // the store, not through the proxy), when the store lets it be in time.
    const poisonIds = Array.from({ length: POISON_RUNS }, (_, i) => `poison-${i}`);
    const poisoned: string[] = [];
    const poisoning = (async () => {
      await sleep(Math.min(opts.durationMs * 0.25, 15_000));
      for (const [i, id] of poisonIds.entries()) await persist(() => driver.start(POISON_WORKFLOW, { n: i }, { id }).then(() => undefined));
      for (const id of poisonIds) {
        // PGlite: the one worker may be down for seconds; a run that has not woken (the store still has it sleeping and
        // unleased: the damage is conditional on it) can still be damaged, until the drive ends.
        const deadline = pglite ? driveEnd : Date.now() + POISON_SLEEP_MS - 2_000;
        let last = '';
        while (Date.now() < deadline) {
          const info = await describe(id);
          last = `${info?.status}`;
          if (pglite && info && !['pending', 'running', 'sleeping'].includes(info.status)) break;
          if (info?.status === 'sleeping') {
            const done = await driver.poison(id).catch((error: unknown) => ((last = `sleeping, damage failed: ${String(error)}`), false));
            if (done) {
              poisoned.push(id);
              note(`poisoned run ${id} (its engine state damaged in the store)`);
              break;
            }
          }
          await sleep(100);
        }
        if (!poisoned.includes(id)) note(`could not poison run ${id} in time (last seen: ${last})`);
      }
    })().catch((error: unknown) => opts.log(`chaos: poisoning failed: ${String(error)}`));

    // PLANTED=gap: the schedule paused for 3.5 s just after the fault window (ticks missed with every instance up);
    // PLANTED=tick: a second run for a tick that has fired, mid-window.
    const planting = (async () => {
      if (PLANT !== 'gap' && PLANT !== 'tick') return;
      await sleep(PLANT === 'gap' ? opts.durationMs + 1_000 : opts.durationMs * 0.5);
      if (PLANT === 'gap') {
        await persist(() => driver.pauseSchedule(TICK_SCHEDULE));
        note('PLANTED: schedule paused for 3.5 s');
        await sleep(3_500);
        await persist(() => driver.resumeSchedule(TICK_SCHEDULE));
      } else {
        const iso = new Date(Math.floor((Date.now() - 2 * TICK_MS) / TICK_MS) * TICK_MS).toISOString();
        await persist(() => driver.start(TICK_SCHEDULE, { scheduledAt: iso }, { id: `${TICK_SCHEDULE}@${iso}!dup` }).then(() => undefined));
        note(`PLANTED: a second run for tick ${iso}`);
      }
    })().catch((error: unknown) => opts.log(`chaos: planting failed: ${String(error)}`));

    // ---------------------------------------------------------------------------------------------------------------
    // Faults
    const faultEnd = began + opts.durationMs;
    const restarting = new Set<Promise<void>>();
    const usable = () => workers.filter((w) => w.state === 'running');
    const gapMs = Math.max(1_500, Math.min(5_000, opts.durationMs / 14));
    await sleep(1_000);
    while (Date.now() < faultEnd - 2_000) {
      await sleep(between(gapMs * 0.5, gapMs * 1.5));
      if (Date.now() >= faultEnd - 2_000) break;
      // PGlite: only the worker's kill (a third of the faults: its reboot takes seconds) and stop apply (no proxy, no
      // server to restart), and its one worker may go.
      const x = pglite ? (r() < 1 / 3 ? 0 : 0.3) : r();
      const spare = pglite ? 0 : 1;
      if (x < 0.22 && usable().length > spare) {
        const w = usable()[Math.floor(r() * usable().length)];
        const at = Date.now();
        w.killed = true;
        w.child.kill('SIGKILL');
        w.state = 'dead';
        note(`SIGKILL worker ${w.index} (pid ${w.pid})`);
        faults++;
        const downMs = between(300, 2_000);
        const p = (async () => {
          await sleep(downMs);
          workers[w.index] = await startWorker(w.index);
          windows.push({ kind: 'worker-down', from: at, to: Date.now(), pid: w.pid });
        })();
        restarting.add(p);
        void p.finally(() => restarting.delete(p));
      } else if (x < 0.4 && usable().length > spare) {
        const w = usable()[Math.floor(r() * usable().length)];
        const at = Date.now();
        w.child.kill('SIGSTOP');
        w.state = 'stopped';
        const ms = between(500, opts.leaseMs * 2);
        note(`SIGSTOP worker ${w.index} (pid ${w.pid}) for ${ms}ms`);
        faults++;
        const p = (async () => {
          await sleep(ms);
          w.child.kill('SIGCONT');
          if (w.state === 'stopped') w.state = 'running';
          windows.push({ kind: 'worker-stopped', from: at, to: Date.now(), pid: w.pid });
        })();
        restarting.add(p);
        void p.finally(() => restarting.delete(p));
      } else if (x < 0.55 && store.restart) {
        const at = Date.now();
        note(`store restart (${store.kind === 'postgres' ? 'pg_ctl stop -m immediate; start' : 'SIGKILL redis-server; restart on its AOF'})`);
        faults++;
        await store.restart();
        windows.push({ kind: 'store-restart', from: at, to: Date.now() });
        note(`store back after ${Date.now() - at}ms`);
      } else if (!proxy) {
        continue;
      } else if (x < 0.7) {
        const ms = between(1_500, 4_000);
        const lat = between(20, 120);
        note(`proxy latency ${lat}ms for ${ms}ms`);
        faults++;
        const at = Date.now();
        proxy.latency(lat);
        await sleep(ms);
        proxy.latency(0);
        windows.push({ kind: 'latency', from: at, to: Date.now() });
      } else if (x < 0.85) {
        const n = proxy.dropAll(0.5 + r() * 0.5);
        note(`proxy dropped ${n} connections mid-stream`);
        faults++;
        windows.push({ kind: 'drop', from: Date.now(), to: Date.now() + 500 });
      } else {
        const ms = between(1_500, 4_000);
        const then = r() < 0.5 ? 'flush' : 'drop';
        note(`proxy black-hole for ${ms}ms, then ${then}`);
        faults++;
        const at = Date.now();
        proxy.blackhole();
        await sleep(ms);
        proxy.release(then);
        windows.push({ kind: 'blackhole', from: at, to: Date.now() });
      }
    }
    // Heal everything.
    await Promise.all([...restarting]);
    for (const w of workers) {
      if (w.state === 'stopped') {
        w.child.kill('SIGCONT');
        w.state = 'running';
      }
    }
    for (let i = 0; i < workers.length; i++) if (workers[i].state === 'dead') workers[i] = await startWorker(i);
    const faultsEndedAt = Date.now();
    opts.log(`chaos: fault window over after ${faultsEndedAt - began}ms (${faults} faults); draining`);

    await scripts;
    await poisoning;
    await planting;
    // Wait for every run to end (a debounce burst's runs are those its starts returned).
    const runIdsOf = (p: RunPlan) => (p.debounce ? [...new Set((controls.get(p.id)?.debounce ?? []).flatMap((d) => (d.runId ? [d.runId] : [])))] : [p.id]);
    const ids = [...plans.flatMap(runIdsOf), ...poisonIds];
    const drainDeadline = Math.max(Date.now(), faultsEndedAt) + opts.drainMs;
    const drain = async (ids: string[]) => {
      let pending = ids;
      while (pending.length > 0 && Date.now() < drainDeadline) {
        const still: string[] = [];
        for (let i = 0; i < pending.length; i += 100) {
          const batch = pending.slice(i, i + 100);
          const infos = await Promise.all(batch.map((id) => describe(id)));
          batch.forEach((id, j) => {
            const s = infos[j]?.status;
            if (!s || !['completed', 'failed', 'compensated', 'cancelled'].includes(s)) still.push(id);
          });
        }
        pending = still;
        if (pending.length > 0) await sleep(500);
      }
    };
    await drain(ids);
    // The schedule: paused (ticks up to here must all have run), then its runs drained too.
    const ticksTo = Date.now();
    await persist(() => driver.pauseSchedule(TICK_SCHEDULE));
    const tickIds: string[] = [];
    for (let cursor: string | undefined, first = true; first || cursor; first = false) {
      const page = await driver.list({ workflow: TICK_SCHEDULE, limit: 500, cursor }).catch(() => undefined);
      if (!page) {
        await sleep(200);
        first = true;
        continue;
      }
      tickIds.push(...page.runs.map((r) => r.runId));
      cursor = page.cursor;
    }
    await drain(tickIds);
    // Let in-flight compensations of ended children settle, then stop the workers before reading the ledger.
    await sleep(500);
    await Promise.all(
      workers.map(async (w) => {
        if (w.state === 'dead') return;
        w.killed = true;
        w.child.kill('SIGCONT');
        w.child.kill('SIGTERM');
        const exited = new Promise((d) => w.child.once('exit', d));
        const t = setTimeout(() => w.child.kill('SIGKILL'), 8_000);
        await exited;
        clearTimeout(t);
      }),
    );
    writeFileSync(join(dir, 'faults.log'), `${faultLog.join('\n')}\n`);
    // PGlite: the worker has closed the folder; the checker opens it (worker-less) and reads the store directly.
    if (pglite) checkApp = await openClient();
    const client = (checkApp ?? app)!.get(WorkflowClient);
    const checkDescribe = async (id: string): Promise<RunInfo | undefined> => {
      for (;;) {
        try {
          return await client.describe(id);
        } catch {
          await sleep(200);
        }
      }
    };
    const result = await check({
      client,
      dir,
      plans,
      controls,
      windows,
      leaseMs: opts.leaseMs,
      pollMs: opts.pollMs,
      slackMs: opts.slackMs,
      describe: checkDescribe,
      singleProcess: pglite,
      ticks: { from: firstReadyAt, to: ticksTo },
    });
    // A poisoned run must end failed with CorruptRunError naming it; an unpoisoned one (damaged too late) completes.
    for (const id of poisonIds) {
      const info = await checkDescribe(id);
      const ok = poisoned.includes(id)
        ? info?.status === 'failed' && info.error?.name === 'CorruptRunError' && info.error.message.includes(id)
        : info?.status === 'completed';
      if (!ok) {
        result.wrongStatus++;
        result.violations.push({ run: id, kind: 'wrong_status', detail: `${poisoned.includes(id) ? 'poisoned' : 'not poisoned'}, ended ${info?.status}: ${JSON.stringify(info?.error)}` });
      }
    }
    for (const crash of crashes) result.violations.push({ run: '-', kind: 'lost', detail: crash });
    return { ...result, faults, dir, poisoned: poisoned.length, crashed: crashes.length };
  } finally {
    for (const w of workers) {
      if (w && w.state !== 'dead') {
        w.killed = true;
        w.child.kill('SIGKILL');
      }
    }
    await app?.close().catch(() => undefined);
    await checkApp?.close().catch(() => undefined);
    await proxy?.stop().catch(() => undefined);
    await store.stop().catch(() => undefined);
  }
}
