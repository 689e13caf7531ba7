/**
 * The chaos checker's flow-control and schedule rules (chaos/flow-checks.ts) on made-up ledgers: each rule flags the
 * violation it is for, and the fenced-execution allowance of the concurrency rule is exactly as documented
 * (docs/chaos.md). The soak itself plants each violation with CHAOS_PLANT (see there).
 */
import { describe, expect, it } from '@jest/globals';
import type { ControlLog, ViolationKind, Window } from '../../chaos/checker.js';
import { checkFlow, type Execution } from '../../chaos/flow-checks.js';
import type { RunPlan } from '../../chaos/plan.js';
import type { ChaosEntry } from '../../chaos/workflows.js';

const T0 = 1_800_000_000_000;

function entry(run: string, wf: string, at: number, pid = 1, got?: unknown): ChaosEntry {
  return { t: 's', run, wf, step: 'hold', key: `${run}:hold`, att: 1, pid, at, nonce: `${run}-${at}`, visit: 1, gen: 1, ...(got === undefined ? {} : { got }) };
}

interface Setup {
  plans?: RunPlan[];
  controls?: Map<string, ControlLog>;
  windows?: Window[];
  execs?: Record<string, Execution[]>;
  entries?: ChaosEntry[];
  tickRuns?: string[];
  ticks?: { from: number; to: number };
  singleProcess?: boolean;
}

function run(setup: Setup): { kind: ViolationKind; run: string }[] {
  const flagged: { kind: ViolationKind; run: string }[] = [];
  checkFlow({
    plans: setup.plans ?? [],
    controls: setup.controls ?? new Map(),
    windows: setup.windows ?? [],
    singleProcess: setup.singleProcess ?? false,
    slackMs: 500,
    execs: (id) => setup.execs?.[id] ?? [],
    entries: setup.entries ?? [],
    tickRuns: setup.tickRuns ?? [],
    ticks: setup.ticks,
    flag: (r, kind) => flagged.push({ run: r, kind }),
  });
  return flagged;
}

const keyed = (id: string, wf = 'chaos-keyed'): RunPlan => ({ id, wf, input: { key: 'k', ms: 100, sleepMs: 100 }, startAt: 0, expect: 'completed' });
const exec = (run: string, from: number, to: number | undefined, committed = true, pid = 1): Execution => ({ entry: entry(run, 'chaos-keyed', from, pid), endAt: to, committed });

describe('chaos checker: flow control and schedules', () => {
  it('over_limit: a third run of a key overlapping two others (scope run: from its first body to its last, the sleep included)', () => {
    const plans = [keyed('a'), keyed('b'), keyed('c')];
    const ok = run({ plans, execs: { a: [exec('a', T0, T0 + 100), exec('a', T0 + 400, T0 + 500)], b: [exec('b', T0 + 10, T0 + 450)], c: [exec('c', T0 + 500, T0 + 600)] } });
    expect(ok).toEqual([]);
    // c begins while a sleeps between its two steps: a still holds its slot.
    const bad = run({ plans, execs: { a: [exec('a', T0, T0 + 100), exec('a', T0 + 400, T0 + 500)], b: [exec('b', T0 + 10, T0 + 450)], c: [exec('c', T0 + 200, T0 + 300)] } });
    expect(bad.filter((v) => v.kind === 'over_limit').map((v) => v.run).sort()).toEqual(['a', 'b', 'c']);
    // With scope 'step' the sleep gives the slot back: no violation.
    const step = [keyed('a', 'chaos-keyed-step'), keyed('b', 'chaos-keyed-step'), keyed('c', 'chaos-keyed-step')];
    expect(run({ plans: step, execs: { a: [exec('a', T0, T0 + 100), exec('a', T0 + 400, T0 + 500)], b: [exec('b', T0 + 10, T0 + 450)], c: [exec('c', T0 + 200, T0 + 300)] } })).toEqual([]);
  });

  it('over_limit: an uncommitted execution counts until its process was stopped, a committed one counts whole', () => {
    const plans = [keyed('a', 'chaos-keyed-step'), keyed('b', 'chaos-keyed-step'), keyed('c', 'chaos-keyed-step')];
    const stop: Window = { kind: 'worker-stopped', from: T0 + 50, to: T0 + 3_000, pid: 7 };
    const execs = (committed: boolean) => ({ a: [exec('a', T0, T0 + 3_100, committed, 7)], b: [exec('b', T0 + 2_500, T0 + 2_600)], c: [exec('c', T0 + 2_550, T0 + 2_650)] });
    expect(run({ plans, windows: [stop], execs: execs(false) })).toEqual([]);
    expect(run({ plans, windows: [stop], execs: execs(true) }).filter((v) => v.kind === 'over_limit')).toHaveLength(3);
    // Uncommitted but no fault that could have cost it its lease: it counts whole.
    expect(run({ plans, execs: execs(false) }).filter((v) => v.kind === 'over_limit')).toHaveLength(3);
  });

  it('over_rate: the k-th begin before max(k-th start, (k-3)-th earliest + 1 s)', () => {
    const plans = ['r0', 'r1', 'r2', 'r3'].map((id): RunPlan => ({ id, wf: 'chaos-rated', input: {}, startAt: 0, expect: 'completed' }));
    const controls = new Map(plans.map((p): [string, ControlLog] => [p.id, { calledAt: T0, signals: [], pauses: [] }]));
    const begins = (last: number) => ({ r0: [exec('r0', T0 + 10, T0 + 11)], r1: [exec('r1', T0 + 20, T0 + 21)], r2: [exec('r2', T0 + 30, T0 + 31)], r3: [exec('r3', T0 + last, T0 + last + 1)] });
    expect(run({ plans, controls, execs: begins(1_000) })).toEqual([]);
    // A late first begin (a body delayed after its claim) does not make a violation of the others.
    expect(run({ plans, controls, execs: { ...begins(1_000), r0: [exec('r0', T0 + 5_000, T0 + 5_001)] } })).toEqual([]);
    expect(run({ plans, controls, execs: begins(40) })).toEqual([{ run: 'r3', kind: 'over_rate' }]);
  });

  it('bad_debounce: a split within the delay, or a run that executed an input other than its last start', () => {
    const plan: RunPlan = { id: 'deb-1', wf: 'chaos-debounced', input: {}, startAt: 0, expect: 'completed', debounce: { starts: 3, gapMs: 100, delayMs: 1_500, maxDelayMs: 10_000 } };
    const starts = (ids: string[]) => ids.map((runId, n) => ({ n, calledAt: T0 + n * 100, returnedAt: T0 + n * 100 + 20, runId, uncertain: false }));
    const ran = (runId: string, n: number) => entry(runId, 'chaos-debounced', T0 + 2_000, 1, { burst: 'deb-1', n });
    const controls = (ids: string[]) => new Map([['deb-1', { signals: [], pauses: [], debounce: starts(ids) } as ControlLog]]);
    expect(run({ plans: [plan], controls: controls(['x', 'x', 'x']), entries: [ran('x', 2)] })).toEqual([]);
    expect(run({ plans: [plan], controls: controls(['x', 'x', 'x']), entries: [ran('x', 1)] })).toEqual([{ run: 'x', kind: 'bad_debounce' }]);
    expect(run({ plans: [plan], controls: controls(['x', 'x', 'y']), entries: [ran('x', 1), ran('y', 2)] })).toEqual([{ run: 'y', kind: 'bad_debounce' }]);
    expect(run({ plans: [plan], controls: controls(['x', 'x', 'x']), entries: [ran('x', 2), ran('z', 2)] })).toEqual([{ run: 'z', kind: 'bad_debounce' }]);
  });

  it('dup_ticks and missed_ticks: one run per tick, none missing unless a store fault (or, with one process, its stop) was near', () => {
    const id = (at: number) => `chaos-tick@${new Date(at).toISOString()}`;
    const ticks = Array.from({ length: 10 }, (_, i) => T0 + i * 1_000);
    const ran = (at: number, runId = id(at)) => entry(runId, 'chaos-tick', at + 5, 1, new Date(at).toISOString());
    const span = { from: T0 - 1_000, to: T0 + 10_000 };
    expect(run({ tickRuns: ticks.map(id), entries: ticks.map((t) => ran(t)), ticks: span })).toEqual([]);
    const missing = ticks.filter((_, i) => i !== 5);
    expect(run({ tickRuns: missing.map(id), entries: missing.map((t) => ran(t)), ticks: span })).toEqual([{ run: id(ticks[5]), kind: 'missed_ticks' }]);
    const restart: Window = { kind: 'store-restart', from: T0 + 1_000, to: T0 + 1_500 };
    expect(run({ tickRuns: missing.map(id), entries: missing.map((t) => ran(t)), ticks: span, windows: [restart] })).toEqual([]);
    // One worker of several stopped: the others fire every tick (defect 5 of docs/chaos.md, fixed), so a tick missed
    // then is a violation; with one process its stop excuses it; CHAOS_LENIENT_TICKS=1 excuses the old gap.
    const stopped: Window = { kind: 'worker-stopped', from: T0 + 4_500, to: T0 + 6_000, pid: 1 };
    expect(run({ tickRuns: missing.map(id), entries: missing.map((t) => ran(t)), ticks: span, windows: [stopped] })).toEqual([{ run: id(ticks[5]), kind: 'missed_ticks' }]);
    expect(run({ tickRuns: missing.map(id), entries: missing.map((t) => ran(t)), ticks: span, windows: [stopped], singleProcess: true })).toEqual([]);
    process.env.CHAOS_LENIENT_TICKS = '1';
    try {
      expect(run({ tickRuns: missing.map(id), entries: missing.map((t) => ran(t)), ticks: span, windows: [stopped] })).toEqual([]);
    } finally {
      delete process.env.CHAOS_LENIENT_TICKS;
    }
    const earlier: Window = { kind: 'worker-stopped', from: T0 - 2_000, to: T0 - 1_000, pid: 1 };
    expect(run({ tickRuns: missing.map(id), entries: missing.map((t) => ran(t)), ticks: span, windows: [earlier] })).toEqual([{ run: id(ticks[5]), kind: 'missed_ticks' }]);
    const dup = `${id(ticks[3])}!dup`;
    const flagged = run({ tickRuns: [...ticks.map(id), dup], entries: [...ticks.map((t) => ran(t)), ran(ticks[3], dup)], ticks: span });
    expect(flagged.every((v) => v.kind === 'dup_ticks')).toBe(true);
    expect([...new Set(flagged.map((v) => v.run))].sort()).toEqual([id(ticks[3]), dup].sort());
  });
});
