/**
 * The checker of the chaos soak: reads every run from the store (through a WorkflowClient) and the effects ledger of
 * every worker, and counts the runs that break an invariant:
 * - lost: a run missing, a stored output that no finished execution produced, a signal never delivered, a compensation
 *   missing, a child run missing;
 * - duplicated: a step body started again after its checkpoint (the next step had begun), a side effect under another
 *   idempotency key than the visit's, a signal delivered twice, a compensation of a visit that did not complete or in a
 *   run that needed none, more step visits than the workflow makes. Not counted: a body started by a worker within
 *   {@link STALE_AFTER_STOP_MS} of its resumption from SIGSTOP whose output was not the one recorded (`staleAfterStop`):
 *   it was frozen between the lease check that precedes every attempt and the body's first line, which no lease can
 *   prevent; its checkpoint was refused (README, Guarantees: leases and fencing);
 * - stuck: a run not ended after the drain, or a resume slower than lease + poll + injected outage (+ slack);
 * - wrong_status: an end status other than the one the input and the control calls imply, compensations out of
 *   reverse order, the wrong signal winning a waitForAny.
 * And, for flow control and schedules (flow-checks.ts): over_limit, over_rate, bad_debounce, early, dup_ticks,
 * missed_ticks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunInfo, WorkflowClient } from '../src/index.js';
import type { RunPlan } from './plan.js';
import { COMPENSABLE, TICK_SCHEDULE, type ChaosEntry } from './workflows.js';
import { checkFlow, type Execution } from './flow-checks.js';

/**
 * How soon after its resumption from SIGSTOP a worker may start a body it had passed the lease check for before the stop
 * (the checker's `staleAfterStop`).
 */
export const STALE_AFTER_STOP_MS = 250;

export interface Window {
  kind: 'worker-down' | 'worker-stopped' | 'store-restart' | 'latency' | 'drop' | 'blackhole';
  from: number;
  to: number;
  pid?: number;
}

export interface ControlLog {
  /** When the first attempt of the start call was made (the run was created at or after it). */
  calledAt?: number;
  startedAt?: number;
  /** chaos-debounced: each start of the burst, in order. `uncertain`: an attempt failed in a way that may have applied it. */
  debounce?: { n: number; calledAt: number; returnedAt?: number; runId?: string; uncertain: boolean }[];
  signals: { name: string; id: string; p: string; ackedAt: number; outcome: string }[];
  pauses: { from: number; to: number; pause: string; resume: string }[];
  /** `sentAt`: when the call was made; `at`: when it resolved. */
  cancel?: { outcome: string; uncertain: boolean; at: number; sentAt?: number };
  retriedAt?: number;
}

export type ViolationKind = 'lost' | 'duplicated' | 'stuck' | 'wrong_status' | 'over_limit' | 'over_rate' | 'bad_debounce' | 'early' | 'dup_ticks' | 'missed_ticks';
export interface Violation {
  run: string;
  kind: ViolationKind;
  detail: string;
}

export interface CheckResult {
  runs: number;
  childRuns: number;
  lost: number;
  duplicated: number;
  stuck: number;
  wrongStatus: number;
  maxResumeMs: number;
  overLimit: number;
  overRate: number;
  badDebounce: number;
  early: number;
  dupTicks: number;
  missedTicks: number;
  /** Flow-control and schedule figures for stderr (not violations). */
  flowStats: string;
  /** The gap behind max_resume_ms. */
  maxResumeAt?: string;
  reExecutions: number;
  /**
   * Bodies started again after their checkpoint by a worker just resumed from SIGSTOP, their output not recorded (not a
   * violation: see the header).
   */
  staleAfterStop: number;
  violations: Violation[];
}

export interface CheckInput {
  client: WorkflowClient;
  dir: string;
  plans: RunPlan[];
  controls: Map<string, ControlLog>;
  windows: Window[];
  leaseMs: number;
  pollMs: number;
  slackMs: number;
  describe(id: string): Promise<RunInfo | undefined>;
  /** One worker process (PGlite): its kills and stops are outages of the whole system, not hand-overs. */
  singleProcess?: boolean;
  /** The span over which every tick of the schedule must have fired (the first worker ready → the schedule paused). */
  ticks?: { from: number; to: number };
}

const TERMINAL = new Set(['completed', 'failed', 'compensated', 'cancelled']);
const SEQUENCE: Record<string, string[]> = {
  'chaos-linear': ['open', 'flaky', 'slow', 'nap', 'finish'],
  'chaos-loop': ['start', 'loop', 'loop', 'loop', 'end'],
  'chaos-signal': ['prep', 'wait', 'got', 'wait', 'got'],
  'chaos-any': ['wait', 'got'],
  'chaos-fan': ['pre', 'fan', 'join'],
  'chaos-cycle': ['tick', 'next'],
  'chaos-manual': ['pre', 'gate'],
  'chaos-child': ['work'],
  'chaos-keyed': ['hold', 'done'],
  'chaos-keyed-step': ['hold', 'done'],
  'chaos-rated': ['work'],
  'chaos-debounced': ['work'],
  [TICK_SCHEDULE]: ['work'],
};
/** Workflows whose runs may legitimately wait for a concurrency slot or a rate window before their first step. */
const HELD_BACK = new Set(['chaos-keyed', 'chaos-keyed-step', 'chaos-rated', 'chaos-debounced']);

export function keyOf(runId: string, step: string, visit: number, gen: number): string {
  const key = visit <= 1 ? `${runId}:${step}` : `${runId}:${step}#${visit}`;
  return gen > 1 ? `${key}~${gen}` : key;
}

export function readLedgers(dir: string): ChaosEntry[] {
  const out: ChaosEntry[] = [];
  for (const f of readdirSync(dir)) {
    if (!/^ledger-.*\.jsonl$/.test(f)) continue;
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as ChaosEntry);
      } catch {
        // a torn last line of a killed process (never observed: one write() per line)
      }
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

/** Length of the union of the windows' parts inside [from, to]. */
function covered(windows: { from: number; to: number }[], from: number, to: number): number {
  const parts = windows
    .map((w) => [Math.max(w.from, from), Math.min(w.to, to)] as const)
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of parts) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

export async function check(input: CheckInput): Promise<CheckResult> {
  const entries = readLedgers(input.dir);
  const byRun = new Map<string, ChaosEntry[]>();
  for (const e of entries) {
    const list = byRun.get(e.run) ?? [];
    list.push(e);
    byRun.set(e.run, list);
  }
  const violations: Violation[] = [];
  const flag = (run: string, kind: ViolationKind, detail: string) => violations.push({ run, kind, detail });
  // NOTE: with one worker process (PGlite), nothing takes its runs over while it is down or stopped: those windows are
  // outages too.
  // The runs that piled up while it was down are all due when it is back, on one process: the bound allows as long
  // again (at most 10 s) for it to work through them.
  const outages = input.singleProcess
    ? input.windows.map((w) => (w.kind === 'worker-down' ? { ...w, to: w.to + Math.min(w.to - w.from, 10_000) } : w))
    : input.windows.filter((w) => w.kind !== 'worker-down' && w.kind !== 'worker-stopped');
  const infos = new Map<string, RunInfo>();
  let maxResumeMs = 0;
  let maxResumeAt: string | undefined;
  let reExecutions = 0;
  let staleAfterStop = 0;
  /** Whether a start `e` came from a worker just resumed from SIGSTOP (see STALE_AFTER_STOP_MS). */
  const justResumed = (e: ChaosEntry) =>
    input.windows.some((w) => w.kind === 'worker-stopped' && w.pid === e.pid && e.at >= w.to && e.at <= w.to + STALE_AFTER_STOP_MS);
  let childRuns = 0;

  /** Records a resume gap [from, to] of a run and checks it against the bound. */
  const resume = (run: string, what: string, from: number, to: number, log?: ControlLog) => {
    if (!(to > from)) return;
    const paused = covered((log?.pauses ?? []).map((p) => ({ from: p.from, to: p.to })), from, to);
    const gap = to - from - paused;
    const outage = covered(outages, from, to);
    if (gap > maxResumeMs) {
      maxResumeMs = gap;
      maxResumeAt = `${run} ${what}`;
    }
    const bound = input.leaseMs + input.pollMs + outage + input.slackMs;
    if (gap > bound) flag(run, 'stuck', `${what}: resumed after ${gap} ms > lease ${input.leaseMs} + poll ${input.pollMs} + outage ${outage} + slack ${input.slackMs}`);
  };

  const checkRun = async (runId: string, wf: string, plan: RunPlan | undefined, info: RunInfo | undefined, log: ControlLog | undefined) => {
    const lines = byRun.get(runId) ?? [];
    if (!info) return flag(runId, 'lost', 'the run is not in the store');
    infos.set(runId, info);
    if (!TERMINAL.has(info.status)) {
      let kids = '';
      if (wf === 'chaos-fan') {
        const page = await input.client.list({ parentRunId: runId, limit: 100 }).catch(() => ({ runs: [] as RunInfo[] }));
        kids = `; its children: ${page.runs.map((k) => `${k.runId} ${k.status}`).join(', ') || 'none'}`;
      }
      const last = lines.at(-1);
      return flag(runId, 'stuck', `still ${info.status} at step ${info.currentStep ?? '-'} after the drain${kids}; last ledger line: ${last ? `${last.t} ${last.key} at ${last.at}` : 'none'}`);
    }

    // --- status
    if (plan) {
      const allowed = new Set<string>();
      const c = log?.cancel;
      if (c?.outcome === 'ok') {
        allowed.add('cancelled');
        if (plan.expect === 'compensated') allowed.add('compensated');
        // A cancel aborts the running step when it reaches the instance running it. Sent while the last step runs
        // (from the previous step's end on: its checkpoint may already have been written without the cancel), it may
        // reach that instance after the step returned, its final checkpoint in flight: the run then completes, the
        // documented race (README, WorkflowClient: cancel).
        const lastStart = lines.filter((l) => l.t === 's').at(-1);
        const before = lastStart ? lines.filter((l) => l.t === 'd' && l.at <= lastStart.at && l.step !== lastStart.step).at(-1) : undefined;
        const lastRunsFrom = before?.at ?? lastStart?.at;
        if (plan.expect === 'completed' && lastRunsFrom !== undefined && c.sentAt !== undefined && lastRunsFrom <= c.sentAt) allowed.add('completed');
      } else {
        allowed.add(plan.expect);
        if (c?.uncertain) allowed.add('cancelled');
      }
      if (!allowed.has(info.status)) {
        flag(runId, 'wrong_status', `ended ${info.status}, expected ${[...allowed].join(' or ')} (cancel: ${c ? JSON.stringify(c) : 'none'}; error: ${info.error?.name ?? ''} ${info.error?.message?.slice(0, 200) ?? ''})`);
      }
    }

    // --- keys: every side effect under the key of the visit the body is in
    for (const e of lines) {
      const stepKey = keyOf(runId, e.step, e.visit, e.gen);
      const expected = e.t === 'cs' || e.t === 'cd' ? `${stepKey}:compensate` : stepKey;
      if (e.key !== expected) flag(runId, 'duplicated', `${e.t} of ${e.step} (visit ${e.visit}, gen ${e.gen}) under key ${e.key}, expected ${expected}`);
    }

    // --- the stored steps
    const visits = new Map<string, number>();
    const steps = info.steps.map((st) => {
      const v = (visits.get(st.name) ?? 0) + 1;
      visits.set(st.name, v);
      return { ...st, visit: v, key: keyOf(runId, st.name, v, info.generation) };
    });
    if (info.status === 'completed') {
      const names = steps.map((s) => s.name);
      const want = SEQUENCE[wf];
      if (names.join(',') !== want.join(',')) {
        flag(runId, names.length > want.length ? 'duplicated' : 'wrong_status', `completed with steps ${names.join(',')}, expected ${want.join(',')}`);
      }
    }
    const starts = (key: string) => lines.filter((e) => e.t === 's' && e.key === key);
    const dones = (key: string) => lines.filter((e) => e.t === 'd' && e.key === key);
    for (let i = 0; i < steps.length; i++) {
      const st = steps[i];
      if (st.status !== 'completed' && st.status !== 'compensated') continue;
      const nonce = (st.output as { nonce?: unknown } | undefined)?.nonce;
      if (typeof nonce === 'string' && !dones(st.key).some((d) => d.nonce === nonce)) {
        flag(runId, 'lost', `step ${st.key}: stored output (nonce ${nonce}) is from no finished execution in the ledger`);
      }
      const next = steps[i + 1];
      const nextStart = next ? starts(next.key)[0] : undefined;
      if (nextStart) {
        const allLate = starts(st.key).filter((e) => e.at > nextStart.at);
        const late = allLate.filter((e) => !(justResumed(e) && e.nonce !== nonce));
        staleAfterStop += allLate.length - late.length;
        if (late.length > 0) flag(runId, 'duplicated', `step ${st.key} started again (pid ${late[0].pid}, attempt ${late[0].att}) after its checkpoint: ${next.key} had started at ${nextStart.at}, it at ${late[0].at}`);
        // The resume gap from this step's checkpointed execution to the next step.
        const produced = dones(st.key).find((d) => d.nonce === nonce) ?? dones(st.key).at(-1);
        // NOTE: after its sleep a chaos-keyed-step run needs a slot again: it may wait for one.
        if (produced && st.name !== 'fan' && st.name !== 'gate' && wf !== 'chaos-keyed-step') {
          let ready = produced.at;
          if (wf === 'chaos-linear' && st.name === 'nap') ready += (plan?.input as { sleepMs: number }).sleepMs;
          if (wf === 'chaos-keyed' && st.name === 'hold') ready += (plan?.input as { sleepMs: number }).sleepMs;
          if (st.name === 'wait') {
            const sig = wf === 'chaos-any' ? log?.signals[0] : log?.signals[st.visit - 1];
            if (!sig) ready = Infinity;
            else ready = Math.max(ready, sig.ackedAt);
          }
          if (ready !== Infinity) resume(runId, `${st.key} → ${next.key}`, ready, nextStart.at, log);
        }
      }
    }
    // Re-executions of one visit: the gap from the interrupted execution to the next one.
    const sByKey = new Map<string, ChaosEntry[]>();
    for (const e of lines) if (e.t === 's') sByKey.set(e.key, [...(sByKey.get(e.key) ?? []), e]);
    for (const [key, list] of sByKey) {
      for (let i = 1; i < list.length; i++) {
        const s1 = list[i - 1];
        const s2 = list[i];
        if (s2.att > s1.att) continue; // a retry, not a resume
        reExecutions++;
        const end = lines.find((e) => (e.t === 'd' || e.t === 'a') && e.nonce === s1.nonce);
        const cut = input.windows.find((w) => (w.kind === 'worker-down' || w.kind === 'worker-stopped') && w.pid === s1.pid && w.from >= s1.at && w.from <= s2.at);
        let from = end?.at ?? cut?.from ?? s1.at;
        if (log?.retriedAt && log.retriedAt > from && log.retriedAt < s2.at) from = log.retriedAt;
        resume(runId, `re-execution of ${key}`, from, s2.at, log);
      }
    }
    // Start → first step.
    const first = lines.find((e) => e.t === 's');
    const delay = plan?.delayMs ?? 0;
    if (log?.startedAt && first && !HELD_BACK.has(wf)) resume(runId, delay ? `start → first step after its delay of ${delay} ms` : 'start → first step', log.startedAt + delay, first.at, log);
    if (delay && log?.calledAt && first && first.at < log.calledAt + delay) {
      flag(runId, 'early', `started with delay ${delay} ms at ${log.calledAt}, its first step began ${log.calledAt + delay - first.at} ms early, at ${first.at}`);
    }

    // --- signals
    if (wf === 'chaos-signal' && info.status === 'completed') {
      const got = steps.filter((s) => s.name === 'got').map((s) => (s.output as { got?: { p?: string } } | undefined)?.got?.p);
      if (got.join(',') !== 'a,b') flag(runId, got.filter((p) => p === 'a').length > 1 ? 'duplicated' : 'lost', `signals received ${JSON.stringify(got)}, sent a then b (each twice under its id)`);
    }
    if (wf === 'chaos-any' && info.status === 'completed') {
      const got = (steps.find((s) => s.name === 'got')?.output as { got?: { signal?: string | null; payload?: { p?: string } } } | undefined)?.got;
      const firstSent = plan?.signals?.[0];
      if (!got?.signal) flag(runId, 'lost', `the step after waitForAny received ${JSON.stringify(got)}, not { signal, payload }: the name of the signal that woke it was lost`);
      else if (got.signal !== firstSent?.name || got.payload?.p !== firstSent?.payload.p) flag(runId, 'wrong_status', `waitForAny received ${JSON.stringify(got)}, the earliest sent was ${firstSent?.name}`);
    }
    if (wf === 'chaos-cycle' && info.status === 'completed') {
      if (info.generation !== 3) flag(runId, 'wrong_status', `completed in generation ${info.generation}, expected 3`);
      for (const g of [1, 2, 3]) if (dones(keyOf(runId, 'tick', 1, g)).length === 0) flag(runId, 'lost', `generation ${g}: tick never finished`);
    }

    // --- compensations
    const comp = lines.filter((e) => e.t === 'cs');
    const compensating = info.status === 'compensated' || info.status === 'cancelled';
    if (!compensating) {
      if (comp.length > 0) flag(runId, 'duplicated', `ended ${info.status} but compensation ran: ${[...new Set(comp.map((e) => e.key))].join(', ')}`);
    } else {
      const need = steps.filter((s) => (s.status === 'completed' || s.status === 'compensated') && COMPENSABLE[wf].has(s.name)).map((s) => `${s.key}:compensate`).reverse();
      const firstAt = new Map<string, number>();
      for (const e of comp) if (!firstAt.has(e.key)) firstAt.set(e.key, e.at);
      const ran = [...firstAt.keys()];
      const missing = need.filter((k) => !ran.includes(k));
      const extra = ran.filter((k) => !need.includes(k));
      if (missing.length > 0) flag(runId, 'lost', `compensations missing: ${missing.join(', ')} (ran: ${ran.join(', ') || 'none'})`);
      if (extra.length > 0) flag(runId, 'duplicated', `compensations of visits that were not completed: ${extra.join(', ')} (needed: ${need.join(', ') || 'none'})`);
      if (missing.length === 0 && extra.length === 0 && ran.join(',') !== need.join(',')) flag(runId, 'wrong_status', `compensations ran in the order ${ran.join(', ')}, expected ${need.join(', ')}`);
      for (const k of need) if (ran.includes(k) && !lines.some((e) => e.t === 'cd' && e.key === k)) flag(runId, 'lost', `compensation ${k} never finished`);
      for (let i = 0; i + 1 < ran.length; i++) {
        const nextAt = firstAt.get(ran[i + 1])!;
        const again = comp.find((e) => e.key === ran[i] && e.at > nextAt);
        if (again) flag(runId, 'duplicated', `compensation ${ran[i]} started again after ${ran[i + 1]} had started`);
      }
    }

    // --- children
    if (wf === 'chaos-fan') {
      const fan = steps.find((s) => s.name === 'fan');
      if (fan) {
        const kids: RunInfo[] = [];
        let cursor: string | undefined;
        do {
          const page = await input.client.list({ parentRunId: runId, limit: 100, cursor });
          kids.push(...page.runs);
          cursor = page.cursor;
        } while (cursor);
        const n = (plan?.input as { children: number }).children;
        const failChild = (plan?.input as { failChild: number }).failChild;
        const ids = kids.map((k) => k.runId).sort();
        const want = Array.from({ length: n }, (_, i) => `${fan.key}:${i}`).sort();
        if (ids.join(',') !== want.join(',') && (info.status === 'completed' || fan.status === 'completed')) {
          flag(runId, ids.length > n ? 'duplicated' : 'lost', `children ${ids.join(',')}, expected ${want.join(',')}`);
        }
        for (const kid of kids) {
          childRuns++;
          const i = Number(kid.runId.slice(kid.runId.lastIndexOf(':') + 1));
          const full = await input.describe(kid.runId);
          await checkRun(kid.runId, 'chaos-child', undefined, full, undefined);
          if (info.status === 'completed' && kid.status !== 'completed') flag(runId, 'wrong_status', `completed with child ${kid.runId} ${kid.status}`);
          if (i === failChild && kid.status === 'completed') flag(runId, 'wrong_status', `child ${kid.runId} was to fail, it completed`);
        }
      }
    }
  };

  for (const plan of input.plans) {
    if (plan.debounce) {
      // A debounce burst: its runs are the ones its starts returned (normally one).
      const ids = [...new Set((input.controls.get(plan.id)?.debounce ?? []).map((d) => d.runId).filter((id): id is string => id !== undefined))];
      if (ids.length === 0) flag(plan.id, 'lost', 'no start of the debounce burst returned');
      for (const id of ids) await checkRun(id, plan.wf, { ...plan, id }, await input.describe(id), undefined);
      continue;
    }
    const info = await input.describe(plan.id);
    await checkRun(plan.id, plan.wf, plan, info, input.controls.get(plan.id));
  }
  // The schedule's runs: every one in the store (each must complete like any other run).
  const tickRuns: RunInfo[] = [];
  if (input.ticks) {
    let cursor: string | undefined;
    do {
      const page = await input.client.list({ workflow: TICK_SCHEDULE, limit: 500, cursor });
      tickRuns.push(...page.runs);
      cursor = page.cursor;
    } while (cursor);
    for (const run of tickRuns) await checkRun(run.runId, TICK_SCHEDULE, { id: run.runId, wf: TICK_SCHEDULE, input: run.input, startAt: 0, expect: 'completed' }, await input.describe(run.runId), undefined);
  }
  const execs = (runId: string): Execution[] => {
    const lines = byRun.get(runId) ?? [];
    const stored = new Set((infos.get(runId)?.steps ?? []).map((st) => (st.output as { nonce?: string } | undefined)?.nonce).filter(Boolean));
    return lines
      .filter((e) => e.t === 's')
      .map((e) => {
        const end = lines.find((x) => (x.t === 'd' || x.t === 'a') && x.nonce === e.nonce);
        return { entry: e, endAt: end?.at, committed: stored.has(e.nonce) };
      });
  };
  const flowStats = checkFlow({
    plans: input.plans,
    controls: input.controls,
    windows: input.windows,
    outages,
    singleProcess: input.singleProcess ?? false,
    slackMs: input.slackMs,
    execs,
    entries,
    tickRuns: tickRuns.map((r) => r.runId),
    ticks: input.ticks,
    flag,
  });
  const count = (kind: ViolationKind) => new Set(violations.filter((v) => v.kind === kind).map((v) => v.run)).size;
  return {
    overLimit: count('over_limit'),
    overRate: count('over_rate'),
    badDebounce: count('bad_debounce'),
    early: count('early'),
    dupTicks: count('dup_ticks'),
    missedTicks: count('missed_ticks'),
    flowStats,
    runs: input.plans.length,
    childRuns,
    lost: count('lost'),
    duplicated: count('duplicated'),
    stuck: count('stuck'),
    wrongStatus: count('wrong_status'),
    maxResumeMs: Math.round(maxResumeMs),
    maxResumeAt,
    reExecutions,
    staleAfterStop,
    violations,
  };
}
