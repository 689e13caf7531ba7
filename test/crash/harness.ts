/**
 * Helpers of the crash tests (not a spec file): worker child processes, the step ledger, a worker-less client in the
 * test process, and clean-up of the schema / key prefix each test uses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DurableExecutionModule, WorkflowClient, type RunInfo, type StoreOptions } from '../../src/index.js';
import { CrashWorkflow, STEP_NAMES, type CrashStep, type LedgerEntry, type StepOutput } from './crash-workflow.js';
import { HeartbeatWorkflow } from './heartbeat-workflow.js';
import { VersionedV1, VersionedV2 } from './versioned-workflow.js';
import { FLOW_WORKFLOWS } from './flow-workflow.js';

export { CRASH_WORKFLOW, STEP_NAMES, type CrashStep, type LedgerEntry, type StepOutput } from './crash-workflow.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const WORKER = 'test/crash/worker-app.ts';

/** An error that `waitFor` does not take for "not yet". */
export class FatalError extends Error {}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value; errors thrown by `check` count as "not yet" (e.g. a store that is down). */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      if (error instanceof FatalError) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    }
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Stores: one fresh Postgres schema or Redis key prefix per test
// ---------------------------------------------------------------------------------------------------------------------

export type StoreKind = 'postgres' | 'redis';

export interface CrashStore {
  kind: StoreKind;
  url: string;
  /** Postgres schema or Redis key prefix. */
  namespace: string;
  /** The module's store options. */
  options: StoreOptions;
  /** Environment of a worker process on this store. */
  env: NodeJS.ProcessEnv;
}

export function crashStore(kind: StoreKind, url: string | undefined): CrashStore {
  if (!url) throw new Error(`${kind === 'postgres' ? 'DATABASE_URL' : 'REDIS_URL'} is not set (the jest globalSetup starts a server and sets it)`);
  const unique = randomUUID().replace(/-/g, '').slice(0, 12);
  if (kind === 'postgres') {
    const schema = `crash_${unique}`;
    return {
      kind,
      url,
      namespace: schema,
      options: { type: 'postgres', url, schema },
      env: { CRASH_STORE: 'postgres', DATABASE_URL: url, CRASH_SCHEMA: schema },
    };
  }
  const keyPrefix = `crash:${unique}:`;
  return {
    kind,
    url,
    namespace: keyPrefix,
    options: { type: 'redis', url, keyPrefix },
    env: { CRASH_STORE: 'redis', REDIS_URL: url, CRASH_KEY_PREFIX: keyPrefix },
  };
}

/** Drops the test's schema or deletes its keys (best effort: the server may be gone). */
export async function dropStore(store: CrashStore): Promise<void> {
  try {
    if (store.kind === 'postgres') {
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: store.url, connectionTimeoutMillis: 3_000 });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${store.namespace}" CASCADE`);
      } finally {
        await client.end();
      }
    } else {
      const { Redis } = await import('ioredis');
      const redis = new Redis(store.url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
      await redis.connect();
      try {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${store.namespace}*`, 'COUNT', 1000);
          if (keys.length > 0) await redis.del(...keys);
          cursor = next;
        } while (cursor !== '0');
      } finally {
        redis.disconnect();
      }
    }
  } catch {
    // the server may have been stopped already (own servers are deleted with their folder)
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// The worker-less client of the test process
// ---------------------------------------------------------------------------------------------------------------------

export interface TestClient {
  app: INestApplicationContext;
  client: WorkflowClient;
  close(): Promise<void>;
}

const silent = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };

/** A Nest app context in the test process that starts and describes runs but executes none (worker disabled). */
export async function startClient(store: CrashStore): Promise<TestClient> {
  const module = await Test.createTestingModule({
    imports: [DurableExecutionModule.forRoot({ store: store.options, worker: { enabled: false } })],
    providers: [CrashWorkflow, HeartbeatWorkflow, VersionedV1, VersionedV2, ...FLOW_WORKFLOWS],
  })
    .setLogger(silent)
    .compile();
  const app = await module.init();
  let closed = false;
  return {
    app,
    client: app.get(WorkflowClient),
    async close() {
      if (closed) return;
      closed = true;
      await app.close().catch(() => undefined);
    },
  };
}

/** Describes runs (in parallel batches). */
export async function describeAll(client: WorkflowClient, runIds: string[]): Promise<Map<string, RunInfo | undefined>> {
  const out = new Map<string, RunInfo | undefined>();
  for (let i = 0; i < runIds.length; i += 50) {
    const batch = runIds.slice(i, i + 50);
    const infos = await Promise.all(batch.map((id) => client.describe(id)));
    batch.forEach((id, j) => out.set(id, infos[j]));
  }
  return out;
}

/** Waits until every run is `completed` (fails at once when one ends otherwise). Store errors are retried. */
export async function waitAllCompleted(client: WorkflowClient, runIds: string[], timeoutMs: number): Promise<Map<string, RunInfo>> {
  let pending = [...runIds];
  const done = new Map<string, RunInfo>();
  await waitFor(
    `${runIds.length} runs to complete`,
    async () => {
      const infos = await describeAll(client, pending);
      for (const [id, info] of infos) {
        if (!info) continue;
        if (info.status === 'completed') done.set(id, info);
        else if (['failed', 'compensated', 'cancelled'].includes(info.status)) {
          throw new FatalError(`run ${id} ended ${info.status}: ${JSON.stringify(info)}`);
        }
      }
      pending = pending.filter((id) => !done.has(id));
      return pending.length === 0;
    },
    timeoutMs,
    100,
  ).catch((error: unknown) => {
    throw new Error(`${String(error)}; still not completed: ${pending.slice(0, 10).join(', ')}${pending.length > 10 ? ', …' : ''}`);
  });
  return done;
}

/** The output a step recorded in `describe()`. */
export function stepOutput(info: RunInfo, step: CrashStep): StepOutput | undefined {
  return info.steps.find((s) => s.name === step)?.output as StepOutput | undefined;
}

// ---------------------------------------------------------------------------------------------------------------------
// The ledger
// ---------------------------------------------------------------------------------------------------------------------

export interface Ledger {
  dir: string;
  path: string;
  read(): LedgerEntry[];
  remove(): void;
}

export function createLedger(): Ledger {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-crash-'));
  const path = join(dir, 'ledger.jsonl');
  return {
    dir,
    path,
    read: () => readLedger(path),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function readLedger(path: string): LedgerEntry[] {
  if (!existsSync(path)) return [];
  const out: LedgerEntry[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as LedgerEntry);
    } catch {
      // a line being written right now (never the case with appendFileSync of one short line, but harmless)
    }
  }
  return out;
}

/** Ledger entries by `${runId}/${step}`. */
export function byRunStep(entries: LedgerEntry[]): Map<string, LedgerEntry[]> {
  const map = new Map<string, LedgerEntry[]>();
  for (const e of entries) {
    const k = `${e.runId}/${e.step}`;
    const list = map.get(k) ?? [];
    list.push(e);
    map.set(k, list);
  }
  return map;
}

export const starts = (entries: LedgerEntry[], runId: string, step: CrashStep) =>
  entries.filter((e) => e.phase === 'start' && e.runId === runId && e.step === step);
export const dones = (entries: LedgerEntry[], runId: string, step: CrashStep) =>
  entries.filter((e) => e.phase === 'done' && e.runId === runId && e.step === step);

/** Every step of every run: how many times the body started, with which keys and attempts. */
export function executionSummary(entries: LedgerEntry[], runIds: string[]) {
  const rows: { runId: string; step: CrashStep; starts: number; keys: string[]; attempts: number[]; pids: number[] }[] = [];
  for (const runId of runIds) {
    for (const step of STEP_NAMES) {
      const s = starts(entries, runId, step);
      rows.push({ runId, step, starts: s.length, keys: [...new Set(s.map((e) => e.key))], attempts: [...new Set(s.map((e) => e.attempt))], pids: s.map((e) => e.pid) });
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------------
// Worker processes
// ---------------------------------------------------------------------------------------------------------------------

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  /** Resolves once the output matches. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGKILL and wait for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM (the app closes) and wait for the exit; SIGKILL after `timeoutMs`. */
  terminate(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Every worker spawned by this test file, killed by `killAllWorkers()` (and on exit, whatever happens). */
const spawned = new Set<WorkerProcess>();
let exitHook = false;

export interface WorkerSettings {
  leaseMs?: number;
  pollMs?: number;
  concurrency?: number;
  /** Start this many runs with ids `${runPrefix}${i}`. */
  start?: number;
  runPrefix?: string;
  stepMs?: number;
  slowStep?: CrashStep;
  slowMs?: number;
  slowIgnoresSignal?: boolean;
  /** Sleeps in steps end early once this file exists. */
  releaseFile?: string;
  /** false: the worker keeps no timer of its own that holds the process up (CRASH_KEEPALIVE=0). */
  keepAlive?: boolean;
  /** Register OpenTelemetry in the worker, writing its spans to this file (CRASH_OTEL_SPANS; otel-file-exporter.ts). */
  otelSpans?: string;
  /** Versions of the versioned workflow the worker registers, e.g. '1' or '1,2' (versioned-workflow.ts). */
  versions?: string;
  /** Register the fan-out workflows of children-workflow.ts (CRASH_CHILDREN=1). */
  children?: boolean;
  /** The Redis store's `childRecheckMs` (CRASH_CHILD_RECHECK_MS). */
  childRecheckMs?: number;
  /** How long each fan-out child's step sleeps (CRASH_CHILD_STEP_MS). */
  childStepMs?: number;
  /** Where the worker SIGKILLs itself (CRASH_KILL_AT; children-kill-points.ts). */
  killAt?: string;
  /** Register the flow-control workflows of flow-workflow.ts (CRASH_FLOW=1). */
  flow?: boolean;
  /** The run whose `flow-slot` step hangs in this worker (CRASH_FLOW_HANG). */
  flowHang?: string;
  /** Register the every-second schedule of flow-workflow.ts (CRASH_FLOW_TICK=1). */
  flowTick?: boolean;
}

/** Spawns `worker-app.ts` as a child process and waits for its READY line (and STARTED when it starts runs). */
export async function startWorker(store: CrashStore, ledger: Ledger, settings: WorkerSettings = {}): Promise<WorkerProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...store.env,
    CRASH_LEDGER: ledger.path,
    CRASH_LEASE_MS: String(settings.leaseMs ?? 1_500),
    CRASH_POLL_MS: String(settings.pollMs ?? 100),
    CRASH_CONCURRENCY: String(settings.concurrency ?? 10),
    CRASH_START: String(settings.start ?? 0),
    CRASH_RUN_PREFIX: settings.runPrefix ?? '',
    CRASH_STEP_MS: String(settings.stepMs ?? 0),
    CRASH_SLOW_STEP: settings.slowStep ?? '',
    CRASH_SLOW_MS: String(settings.slowMs ?? 0),
    CRASH_SLOW_IGNORE_SIGNAL: settings.slowIgnoresSignal ? '1' : '0',
    CRASH_KEEPALIVE: settings.keepAlive === false ? '0' : '1',
    CRASH_RELEASE_FILE: settings.releaseFile ?? '',
    CRASH_OTEL_SPANS: settings.otelSpans ?? '',
    CRASH_VERSIONS: settings.versions ?? '',
    CRASH_CHILDREN: settings.children ? '1' : '',
    CRASH_CHILD_RECHECK_MS: settings.childRecheckMs !== undefined ? String(settings.childRecheckMs) : '',
    CRASH_CHILD_STEP_MS: String(settings.childStepMs ?? 0),
    CRASH_KILL_AT: settings.killAt ?? '',
    CRASH_FLOW: settings.flow ? '1' : '',
    CRASH_FLOW_HANG: settings.flowHang ?? '',
    CRASH_FLOW_TICK: settings.flowTick ? '1' : '',
    NO_COLOR: '1',
  };
  // NOTE: Jest's --experimental-vm-modules must not leak into the child.
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--import', '@swc-node/register/esm-register', WORKER], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > 2_000_000) output = output.slice(-1_000_000);
    for (const l of [...listeners]) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  const alive = () => child.exitCode === null && child.signalCode === null;

  const waitForOutput = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<void>((resolveWait, reject) => {
      const check = () => {
        if (pattern.test(output)) finish();
        else if (!alive()) finish(new Error(`worker ${child.pid} exited before printing ${pattern}:\n${output.slice(-4000)}`));
      };
      const timer = setTimeout(() => finish(new Error(`worker ${child.pid} did not print ${pattern} within ${timeoutMs} ms:\n${output.slice(-4000)}`)), timeoutMs);
      const onExit = () => check();
      function finish(error?: Error) {
        clearTimeout(timer);
        listeners.delete(check);
        child.off('exit', onExit);
        if (error) reject(error);
        else resolveWait();
      }
      listeners.add(check);
      child.on('exit', onExit);
      check();
    });

  const worker: WorkerProcess = {
    child,
    pid: child.pid!,
    output: () => output,
    exited,
    alive,
    waitForOutput,
    async kill9() {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
    async terminate(timeoutMs = 15_000) {
      if (alive()) {
        child.kill('SIGCONT'); // harmless when running; needed when stopped
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        try {
          return await exited;
        } finally {
          clearTimeout(timer);
        }
      }
      return exited;
    },
  };
  spawned.add(worker);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const w of spawned) if (w.alive()) w.child.kill('SIGKILL');
    });
  }
  await waitForOutput(/^READY \d+$/m, 60_000);
  if (settings.start) await waitForOutput(/^STARTED \d+$/m, 60_000);
  return worker;
}

/** The last lines of every worker's output, for failure messages. */
export function workerOutputs(maxChars = 3_000): string {
  return [...spawned]
    .map((w) => {
      const state = w.alive() ? 'alive' : `exited: code ${w.child.exitCode}, signal ${w.child.signalCode}`;
      if (process.env.CRASH_DEBUG_DIR) writeFileSync(join(process.env.CRASH_DEBUG_DIR, `worker-${w.pid}.log`), w.output());
      return `--- worker ${w.pid} (${state}) ---\n${w.output().slice(-maxChars)}`;
    })
    .join('\n');
}

/** SIGKILLs every worker still alive (stopped ones too) and waits for them. Safe to call more than once. */
export async function killAllWorkers(): Promise<void> {
  const all = [...spawned];
  for (const w of all) if (w.alive()) w.child.kill('SIGKILL');
  await Promise.all(all.map((w) => w.exited));
  spawned.clear();
}

/** Starts several workers at once. */
export function startWorkers(store: CrashStore, ledger: Ledger, list: WorkerSettings[]): Promise<WorkerProcess[]> {
  return Promise.all(list.map((s) => startWorker(store, ledger, s)));
}

/** Run ids `${prefix}0` … `${prefix}${n - 1}`. */
export const runIdsOf = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
