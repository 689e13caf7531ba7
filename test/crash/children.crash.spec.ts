/**
 * Crash tests of child runs (`Flow.all` of 100 `Flow.child`), on PostgreSQL and on Redis, with real worker processes
 * (worker-app.ts with `CRASH_CHILDREN=1`) that are SIGKILLed at exact points of the store's writes
 * (children-kill-points.ts: the worker kills itself there, so no ledger poll races a write of a few ms).
 *
 * 1. While the parent starts its children: right as its step returned (before the write), right after the write, and,
 *    on Redis, between the writes of a spawn (children created held / parent committed but children not released).
 *    A fresh worker then finishes the parent.
 * 2. While the children end, with two workers (one survives); on Redis also between a child's end and its parent's
 *    wake-up (a lost wake-up, repaired by the parent's recheck, `childRecheckMs`).
 *
 * After each: every child's step body completed once per visit (re-executions share the key), the parent's join step
 * ran once with the 100 outputs in order, every step visit is checkpointed once (stored steps and history), and the
 * parent has exactly its 100 children (`list({ parentRunId })`, ids `${key}:0..99`), and no other run exists.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { readFileSync, existsSync } from 'node:fs';
import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DurableExecutionModule, WORKFLOW_STORE, WorkflowClient, type RunInfo, type StoredRun, type WorkflowStore } from '../../src/index.js';
import { FANOUT_CHILD, FANOUT_PARENT, FanoutChild, FanoutParent, type ChildOutput, type FanoutLedgerEntry } from './children-workflow.js';
import {
  FatalError,
  crashStore,
  createLedger,
  describeAll,
  dropStore,
  killAllWorkers,
  startWorker,
  startWorkers,
  waitFor,
  workerOutputs,
  type CrashStore,
  type Ledger,
  type StoreKind,
  type WorkerProcess,
  type WorkerSettings,
} from './harness.js';
import { report } from './scenarios.js';
import { testPostgres, testRedis, type TestServer } from '../setup/test-servers.js';

const N = 100;
const LEASE_MS = 1_500;
const RECHECK_MS = 1_000;
/**
 * Scheduling slack in the recovery bounds: under `npm test` this spec shares 2 cores with another Jest worker (the
 * chaos soak, the other crash specs) and its own 2 workers' processes. Measured locally, the Postgres mid-way case took
 * up to 7.1 s of an 8.6 s bound with 2.5 s of slack, and CI once went past it. The bounds still tell a reclaim by lease
 * and poll (seconds) from one left to the store's default recheck (30 s) or never.
 */
const LOAD_SLACK_MS = 5_000;

interface KillLine {
  wf: 'kill';
  point: string;
  pid: number;
  at: number;
  [k: string]: unknown;
}
type Line = FanoutLedgerEntry | KillLine;

interface Fanout {
  store: CrashStore;
  ledger: Ledger;
  app: INestApplicationContext;
  client: WorkflowClient;
  raw: WorkflowStore;
  lines(): Line[];
}

const silent = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };

function readLines(path: string): Line[] {
  if (!existsSync(path)) return [];
  const out: Line[] = [];
  for (const text of readFileSync(path, 'utf8').split('\n')) {
    if (!text) continue;
    try {
      out.push(JSON.parse(text) as Line);
    } catch {
      // a line being written
    }
  }
  return out;
}

/** A fresh schema / key prefix, a ledger and a worker-less client that knows the fan-out workflows. */
async function withFanout<T>(kind: StoreKind, url: string, fn: (f: Fanout) => Promise<T>): Promise<T> {
  const store = crashStore(kind, url);
  const ledger = createLedger();
  let app: INestApplicationContext | undefined;
  try {
    const module = await Test.createTestingModule({
      imports: [DurableExecutionModule.forRoot({ store: store.options, worker: { enabled: false } })],
      providers: [FanoutParent, FanoutChild],
    })
      .setLogger(silent)
      .compile();
    app = await module.init();
    const f: Fanout = { store, ledger, app, client: app.get(WorkflowClient), raw: app.get<WorkflowStore>(WORKFLOW_STORE), lines: () => readLines(ledger.path) };
    return await fn(f);
  } catch (error) {
    const tail = readLines(ledger.path)
      .filter((l) => l.wf !== FANOUT_CHILD)
      .slice(-20)
      .map((l) => JSON.stringify(l).slice(0, 300))
      .join('\n');
    if (error instanceof Error) error.message += `\n\nledger (parent and kill lines, last 20):\n${tail}\n\n${workerOutputs()}`;
    throw error;
  } finally {
    await killAllWorkers();
    await app?.close().catch(() => undefined);
    await dropStore(store);
    ledger.remove();
  }
}

const worker = (f: Fanout, settings: WorkerSettings) =>
  startWorker(f.store, f.ledger, { children: true, childRecheckMs: RECHECK_MS, leaseMs: LEASE_MS, ...settings });

/** Every child of the parent through `list({ parentRunId })`, a page of 30 at a time. */
async function listChildren(client: WorkflowClient, parentRunId: string): Promise<{ runs: RunInfo[]; pages: number }> {
  const runs: RunInfo[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await client.list({ parentRunId, limit: 30, cursor });
    runs.push(...page.runs);
    cursor = page.cursor;
    if (++pages > 20) throw new Error(`list({ parentRunId: ${parentRunId} }) does not end after 20 pages (${runs.length} runs)`);
  } while (cursor);
  return { runs, pages };
}

/** Every run of the namespace (all workflows). */
async function listAll(client: WorkflowClient): Promise<RunInfo[]> {
  const runs: RunInfo[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.list({ limit: 1000, cursor });
    runs.push(...page.runs);
    cursor = page.cursor;
  } while (cursor);
  return runs;
}

async function waitParentCompleted(f: Fanout, parentId: string, timeoutMs: number): Promise<RunInfo> {
  return waitFor(
    `parent ${parentId} to complete`,
    async () => {
      const info = await f.client.describe(parentId);
      if (info && ['failed', 'compensated', 'cancelled'].includes(info.status)) throw new FatalError(`parent ${parentId} ended ${info.status}: ${JSON.stringify(info.error)}`);
      return info?.status === 'completed' && info;
    },
    timeoutMs,
    25,
  );
}

/** `step.completed` events per step name in a run's history. */
async function completedEvents(client: WorkflowClient, runId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let cursor: string | undefined;
  do {
    const page = await client.history(runId, { limit: 1000, cursor });
    for (const e of page.events) if (e.type === 'step.completed' || e.type === 'child.started') counts[`${e.type}:${e.step}`] = (counts[`${e.type}:${e.step}`] ?? 0) + 1;
    cursor = page.cursor;
  } while (cursor);
  return counts;
}

const childIdsOf = (parentId: string) => Array.from({ length: N }, (_, i) => `${parentId}:spawn:${i}`);

interface Checked {
  childExecutions: number;
  childReExecuted: string[];
  listPages: number;
  joinLatencyMs: number;
  lastChildDoneAt: number;
  joinAt: number;
}

/**
 * The invariants after a crash. `killed`: the pid that was SIGKILLed and when; a child body that completed on it may
 * have lost its checkpoint to the kill and run again (its extra completion is on the killed pid, before the kill).
 */
async function checkInvariants(f: Fanout, parentId: string, killed: { pid: number; at: number }): Promise<Checked> {
  const lines = f.lines().filter((l): l is FanoutLedgerEntry => l.wf !== 'kill');
  const ids = childIdsOf(parentId);
  const idSet = new Set(ids);

  // --- the parent: completed, one stored entry per step visit, each checkpointed once in the history
  const parent = (await f.client.describe(parentId))!;
  expect(parent.status).toBe('completed');
  expect(parent.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
    ['spawn', 'completed', 1],
    ['join', 'completed', 1],
  ]);
  const rawParent = (await f.raw.getRun(parentId)) as StoredRun;
  expect(rawParent.steps.map((s) => [s.name, s.status])).toEqual([
    ['spawn', 'completed'],
    ['join', 'completed'],
  ]);
  expect(await completedEvents(f.client, parentId)).toEqual({ 'child.started:spawn': 1, 'step.completed:spawn': 1, 'step.completed:join': 1 });

  // --- the spawn step: every execution of its body under the same key (a re-execution is the same visit)
  const spawnStarts = lines.filter((l) => l.wf === FANOUT_PARENT && l.step === 'spawn' && l.phase === 'start');
  expect(spawnStarts.length).toBeGreaterThanOrEqual(1);
  expect(new Set(spawnStarts.map((l) => [l.runId, l.key, l.attempt].join('|')))).toEqual(new Set([`${parentId}|${parentId}:spawn|1`]));

  // --- the children: exactly the 100 expected ids under this parent, and no other run in the namespace
  const { runs: listed, pages } = await listChildren(f.client, parentId);
  expect(listed.map((r) => r.runId).sort()).toEqual([...ids].sort());
  expect(listed.every((r) => r.parentRunId === parentId && r.workflow === FANOUT_CHILD)).toBe(true);
  expect(pages).toBe(Math.ceil(N / 30));
  const all = await listAll(f.client);
  expect(all.map((r) => r.runId).sort()).toEqual([parentId, ...ids].sort());

  const infos = await describeAll(f.client, ids);
  const children = ids.map((id) => infos.get(id)!);
  const histories = new Map<string, Record<string, number>>();
  for (let i = 0; i < ids.length; i += 25) {
    const batch = ids.slice(i, i + 25);
    const counts = await Promise.all(batch.map((id) => completedEvents(f.client, id)));
    batch.forEach((id, j) => histories.set(id, counts[j]));
  }

  // --- each child: completed once per visit (stored entry + history), body completions under the visit's key
  const childLines = lines.filter((l) => l.wf === FANOUT_CHILD);
  expect(childLines.filter((l) => !idSet.has(l.runId)).map((l) => l.runId)).toEqual([]);
  const reExecuted: string[] = [];
  const problems: string[] = [];
  let lastChildDoneAt = 0;
  children.forEach((info, i) => {
    const id = ids[i];
    const starts = childLines.filter((l) => l.runId === id && l.phase === 'start');
    const dones = childLines.filter((l) => l.runId === id && l.phase === 'done');
    const out = info?.output as ChildOutput | undefined;
    const say = (what: string) => problems.push(`${id}: ${what}`);
    if (info?.status !== 'completed') return say(`status ${info?.status}`);
    if (JSON.stringify(info.steps.map((s) => [s.name, s.status, s.attempts])) !== JSON.stringify([['work', 'completed', 1]])) say(`steps ${JSON.stringify(info.steps)}`);
    if (JSON.stringify(histories.get(id)) !== JSON.stringify({ 'step.completed:work': 1 })) say(`history ${JSON.stringify(histories.get(id))}`);
    if (starts.length < 1) say('never started');
    if (!starts.every((l) => l.key === `${id}:work` && l.attempt === 1 && l.i === i)) say(`keys ${JSON.stringify(starts.map((l) => [l.key, l.attempt, l.i]))}`);
    // One completion per visit; a second only if the first was on the killed worker, before the kill (its checkpoint
    // was lost with the process), and the body ran again elsewhere.
    const survivors = dones.filter((l) => l.pid !== killed.pid);
    const lost = dones.filter((l) => l.pid === killed.pid);
    if (dones.length === 0) say('no completion');
    if (survivors.length > 1 || lost.length > 1 || lost.some((l) => l.at > killed.at)) say(`completions ${JSON.stringify(dones.map((l) => [l.pid, l.at]))}`);
    if (lost.length === 1 && survivors.length === 1 && out?.nonce !== survivors[0].nonce) say('the checkpointed completion is not the one after the kill');
    if (dones.length > 1) reExecuted.push(id);
    if (starts.length > 1) {
      // every earlier execution was cut off by the kill (on the killed worker)
      if (!starts.slice(0, -1).every((l) => l.pid === killed.pid)) say(`re-executed without a kill: ${JSON.stringify(starts.map((l) => l.pid))}`);
    }
    if (out?.i !== i || !dones.some((l) => l.nonce === out?.nonce)) say(`output ${JSON.stringify(out)} is not from a completion of the ledger`);
    lastChildDoneAt = Math.max(lastChildDoneAt, ...dones.map((l) => l.at));
  });
  expect(problems).toEqual([]);

  // --- the join: one execution, the 100 stored child outputs in order
  const joinStarts = lines.filter((l) => l.wf === FANOUT_PARENT && l.step === 'join' && l.phase === 'start');
  const joinDones = lines.filter((l) => l.wf === FANOUT_PARENT && l.step === 'join' && l.phase === 'done');
  expect(joinStarts).toHaveLength(1);
  expect(joinDones).toHaveLength(1);
  expect(joinStarts[0].key).toBe(`${parentId}:join`);
  expect(joinStarts[0].outputs).toEqual(children.map((c) => c.output));
  expect(joinStarts[0].outputs!.map((o) => o.i)).toEqual(ids.map((_, i) => i));
  expect(parent.output).toEqual({ count: N, nonce: joinStarts[0].nonce, pid: joinStarts[0].pid });
  expect(parent.steps[1].output).toEqual(parent.output);

  return {
    childExecutions: childLines.filter((l) => l.phase === 'start').length,
    childReExecuted: reExecuted,
    listPages: pages,
    joinLatencyMs: joinStarts[0].at - lastChildDoneAt,
    lastChildDoneAt,
    joinAt: joinStarts[0].at,
  };
}

async function killLineOf(f: Fanout, w: WorkerProcess, point: string): Promise<KillLine> {
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([w.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 30_000)))]);
  clearTimeout(timer);
  if (exit === 'timeout') throw new Error(`worker ${w.pid} did not reach its kill point ${point} within 30 s`);
  expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
  const kills = f.lines().filter((l): l is KillLine => l.wf === 'kill');
  expect(kills.map((k) => [k.point, k.pid])).toEqual([[point, w.pid]]);
  return kills[0];
}

// ---------------------------------------------------------------------------------------------------------------------
// 1. SIGKILL while the parent starts its children
// ---------------------------------------------------------------------------------------------------------------------

type SpawnPoint = 'spawn-before-commit' | 'spawn-after-commit' | 'spawn-held' | 'spawn-unreleased';

/** What the store must hold right after the kill, per kill point (none is a half-written spawn). */
const AFTER_KILL: Record<SpawnPoint, { parent: string; children: number; listed: number; held: number; spawnBodies: number }> = {
  // nothing written: the parent is still leased to the dead worker and re-runs the step (same key)
  'spawn-before-commit': { parent: 'running', children: 0, listed: 0, held: 0, spawnBodies: 2 },
  // the whole spawn written: the parent waits, the children are due
  'spawn-after-commit': { parent: 'waiting', children: N, listed: N, held: 0, spawnBodies: 1 },
  // Redis: children created held, the parent's commit not written: the step is re-run and finds them (same ids).
  // They are listed under the parent already: its child index is written ahead of the children (spawn-intent.lua).
  'spawn-held': { parent: 'running', children: N, listed: N, held: N, spawnBodies: 2 },
  // Redis: the parent waits, its children are held: its recheck releases them
  'spawn-unreleased': { parent: 'waiting', children: N, listed: N, held: N, spawnBodies: 1 },
};

async function killWhileSpawning(f: Fanout, point: SpawnPoint): Promise<void> {
  const parentId = `p-${point}`;
  const ids = childIdsOf(parentId);
  const a = await worker(f, { killAt: point, concurrency: 20 });
  await f.client.start(FANOUT_PARENT, { n: N }, { id: parentId, conflictPolicy: 'fail' });
  const kill = await killLineOf(f, a, point);

  // What the store holds right after the kill: a whole spawn or none of it.
  const raw = (await f.raw.getRun(parentId))!;
  const outcomes = await f.raw.getRunOutcomes(ids);
  const { runs: listedAtKill } = await listChildren(f.client, parentId);
  const expected = AFTER_KILL[point];
  const atKill = {
    parent: raw.status,
    children: outcomes.length,
    listed: listedAtKill.length,
    held: outcomes.filter((o) => o.held).length,
    ended: outcomes.filter((o) => ['completed', 'failed', 'compensated', 'cancelled'].includes(o.status)).length,
    counted: raw.children?.ended ?? 0,
  };
  // no child has ended, so none is counted on the parent
  expect(atKill).toEqual({ parent: expected.parent, children: expected.children, listed: expected.listed, held: expected.held, ended: 0, counted: 0 });
  if (expected.parent === 'running') expect(raw.leaseOwner).toBeDefined();
  expect(outcomes.every((o) => o.parentRunId === parentId)).toBe(true);

  const b = await worker(f, { concurrency: 20, pollMs: 100 });
  const recoveryBegan = Date.now();
  await waitParentCompleted(f, parentId, 30_000);
  const recoveredInMs = Date.now() - recoveryBegan;
  const checked = await checkInvariants(f, parentId, kill);

  const lines = f.lines().filter((l): l is FanoutLedgerEntry => l.wf !== 'kill');
  const spawnStarts = lines.filter((l) => l.wf === FANOUT_PARENT && l.step === 'spawn' && l.phase === 'start');
  expect(spawnStarts.map((l) => l.pid)).toEqual(expected.spawnBodies === 2 ? [a.pid, b.pid] : [a.pid]);
  // The killed worker died before it could run a child: every child body ran once, on the fresh worker.
  const childStarts = lines.filter((l) => l.wf === FANOUT_CHILD && l.phase === 'start');
  expect(childStarts).toHaveLength(N);
  expect(new Set(childStarts.map((l) => l.pid))).toEqual(new Set([b.pid]));
  expect(checked.childReExecuted).toEqual([]);
  report(`${f.store.kind} children kill ${point}`, { children: N, atKill, recoveredInMs, spawnBodies: spawnStarts.length, childExecutions: checked.childExecutions, joinLatencyMs: checked.joinLatencyMs });
}

// ---------------------------------------------------------------------------------------------------------------------
// 2. SIGKILL while the children end
// ---------------------------------------------------------------------------------------------------------------------

interface Ending {
  /** The kill point of worker A (children-kill-points.ts). */
  point: string;
  pollMs: number;
  /** The longest the parent may take to run its join step after its last child's body finished. */
  joinBoundMs: number;
  /** Settings of the worker that is killed (A) and of the survivor (B). */
  a: WorkerSettings;
  b: WorkerSettings;
  /** What the ledger must show at the kill (children whose body completed before it). */
  atKill: 'mid-way' | 'all-but-last';
}

async function killWhileChildrenEnd(f: Fanout, e: Ending): Promise<void> {
  const point = e.point.replace(/:.*/, '');
  const parentId = `p-${point}`;
  const common: WorkerSettings = { children: true, childRecheckMs: RECHECK_MS, leaseMs: LEASE_MS, pollMs: e.pollMs };
  // A alone first, until it holds a child: then B joins (whichever boots faster, A always has children to end).
  const [a] = await startWorkers(f.store, f.ledger, [{ ...common, ...e.a, killAt: e.point }]);
  await f.client.start(FANOUT_PARENT, { n: N }, { id: parentId, conflictPolicy: 'fail' });
  const deadline = Date.now() + 20_000;
  while (!f.lines().some((l) => l.wf === FANOUT_CHILD && l.phase === 'start' && l.pid === a.pid)) {
    if (Date.now() > deadline) throw new Error('worker A never started a child');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const [b] = await startWorkers(f.store, f.ledger, [{ ...common, ...e.b }]);
  const kill = await killLineOf(f, a, point);
  const rawAtKill = (await f.raw.getRun(parentId))!;
  const doneAtKill = f.lines().filter((l) => l.wf === FANOUT_CHILD && l.phase === 'done' && l.at <= kill.at);
  if (e.atKill === 'mid-way') {
    // killed mid-way: some children ended, many had not
    expect(doneAtKill.length).toBeGreaterThanOrEqual(20);
    expect(doneAtKill.length).toBeLessThan(N - 10);
  } else {
    // the killed worker's child is the last one: its end was written, the parent was not told
    expect(doneAtKill.filter((l) => l.pid === b.pid)).toHaveLength(N - 1);
    expect(doneAtKill.filter((l) => l.pid === a.pid)).toHaveLength(1);
    // the lost wake-up: the parent still waits and has not counted the child that ended (read by the dying worker: a
    // read from here, after the exit, may come after the survivor's recheck on a loaded machine)
    expect(kill.parent).toEqual({ status: 'waiting', ended: N - 1 });
  }
  const inFlightOnA = f.lines().filter((l) => l.wf === FANOUT_CHILD && l.phase === 'start' && l.pid === a.pid && l.at <= kill.at).length - doneAtKill.filter((l) => l.pid === a.pid).length;

  const parent = await waitParentCompleted(f, parentId, 40_000);
  const completedInMs = Date.now() - kill.at;
  const checked = await checkInvariants(f, parentId, kill);
  expect(b.alive()).toBe(true);
  // The parent wakes when its last child ends: on Postgres through the store (no poll: pollMs is longer than the
  // bound), on Redis at the latest by its recheck.
  expect(checked.joinLatencyMs).toBeGreaterThanOrEqual(0);
  expect(checked.joinLatencyMs).toBeLessThanOrEqual(e.joinBoundMs);
  // From the kill: lease expiry + a poll to reclaim the dead worker's children + the children's work left (on the
  // survivor alone, `concurrency` at a time) + the parent's wake-up + scheduling slack (LOAD_SLACK_MS).
  // (all-but-last: nothing to reclaim, the kill came after the last child's end: only the wake-up is left.)
  const stepMs = Math.max(e.a.childStepMs ?? 0, e.b.childStepMs ?? 0);
  const workLeftMs = Math.ceil((N - doneAtKill.length) / (e.b.concurrency ?? 10)) * stepMs;
  const bound = e.atKill === 'mid-way' ? LEASE_MS + e.pollMs + workLeftMs + e.joinBoundMs + LOAD_SLACK_MS : e.joinBoundMs + LOAD_SLACK_MS;
  expect(parent.finishedAt!.getTime() - kill.at).toBeLessThanOrEqual(bound);
  report(`${f.store.kind} children kill ${e.point}`, {
    children: N,
    childrenDoneAtKill: doneAtKill.length,
    parentAtKill: { status: rawAtKill.status, children: rawAtKill.children },
    inFlightOnKilled: inFlightOnA,
    childExecutions: checked.childExecutions,
    bodiesCompletedTwice: checked.childReExecuted.length,
    lastChildAfterKillMs: checked.lastChildDoneAt - kill.at,
    joinLatencyMs: checked.joinLatencyMs,
    joinBoundMs: e.joinBoundMs,
    parentDoneAfterKillMs: parent.finishedAt!.getTime() - kill.at,
    completedInMs,
    bound,
  });
}

// ---------------------------------------------------------------------------------------------------------------------

afterAll(() => killAllWorkers());

/** Killed mid-way through the children's ends: A and B run 10 children at a time (150 ms each); A dies after its 20th. */
const midWay = (point: string, pollMs: number, joinBoundMs: number): Ending => ({
  point,
  pollMs,
  joinBoundMs,
  a: { concurrency: 10, childStepMs: 150 },
  b: { concurrency: 10, childStepMs: 150 },
  atKill: 'mid-way',
});

const servers: [StoreKind, TestServer, SpawnPoint[], Ending[]][] = [
  ['postgres', testPostgres(), ['spawn-before-commit', 'spawn-after-commit'], [midWay('child-end-after:20', 3_000, 1_000)]],
  [
    'redis',
    testRedis(),
    ['spawn-held', 'spawn-unreleased'],
    [
      midWay('child-end-after:20', 500, RECHECK_MS + 500 + 2_500),
      // A runs one slow child while B runs the 99 others: A's child ends last, and A dies between its end and the
      // parent's CHILD_ENDED (a lost wake-up): only the parent's recheck can wake it.
      {
        point: 'child-end-unnotified:1',
        pollMs: 500,
        joinBoundMs: RECHECK_MS + 500 + 2_500,
        // NOTE: 6.5 s (long enough for B to boot and run the 99 others on a loaded machine), half a recheck period off
        // its multiples: the child ends between two rechecks of the parent.
        a: { concurrency: 1, childStepMs: 6_500 },
        b: { concurrency: 10, childStepMs: 20 },
        atKill: 'all-but-last',
      },
    ],
  ],
];

/**
 * Redis: the worker dies after creating the children held and before the parent's commit, then the parent is cancelled
 * before its step runs again. The children must not be left behind (held forever, never run, never ended): the cancel
 * finds them under the parent and cancels them.
 */
async function cancelAfterSpawnHeld(f: Fanout): Promise<void> {
  const parentId = 'orphans';
  const ids = childIdsOf(parentId).slice(0, 5);
  const a = await worker(f, { killAt: 'spawn-held', concurrency: 20 });
  await f.client.start(FANOUT_PARENT, { n: 5 }, { id: parentId, conflictPolicy: 'fail' });
  await killLineOf(f, a, 'spawn-held');
  expect((await f.raw.getRunOutcomes(ids)).map((o) => [o.status, o.held])).toEqual(ids.map(() => ['pending', true]));
  await f.client.cancel(parentId);
  await worker(f, { concurrency: 20, pollMs: 100 });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const outcomes = await f.raw.getRunOutcomes(ids);
    const parent = (await f.raw.getRun(parentId))!;
    if (parent.status === 'cancelled' && outcomes.length === 5 && outcomes.every((o) => o.status === 'cancelled')) break;
    if (Date.now() > deadline) {
      throw new Error(`left behind: parent ${parent.status}, children ${JSON.stringify(outcomes.map((o) => [o.runId, o.status, o.held]))}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // none of the children ran
  expect(f.lines().filter((l) => l.wf === FANOUT_CHILD)).toEqual([]);
}

describe.each(servers)('crash: child runs on %s', (kind, server, spawnPoints, endings) => {
  server.describe(`(${kind})`, () => {
    it.each(spawnPoints)(`SIGKILL at %s of a parent's 100 children: a fresh worker finishes; each child once, one join, no duplicate`, async (point) => {
      await withFanout(kind, server.url, (f) => killWhileSpawning(f, point));
    }, 45_000);

    if (kind === 'redis') {
      it('SIGKILL with the children held and the parent not committed, then a cancel: the children are cancelled too', async () => {
        await withFanout(kind, server.url, (f) => cancelAfterSpawnHeld(f));
      }, 45_000);
    }

    it.each(endings.map((e) => [e.point, e] as const))(`SIGKILL while the children end (%s): the survivor finishes, the parent completes within the bound`, async (_point, ending) => {
      await withFanout(kind, server.url, (f) => killWhileChildrenEnd(f, ending));
    }, 45_000);
  });
});
