/** The seeded plan of a chaos soak: which runs, with which inputs and control calls, and the faults' random choices. */

/** mulberry32: a small seeded PRNG (the plan and the fault schedule are reproducible from the seed). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Expect = 'completed' | 'compensated' | 'cancelled';

export interface SignalSend {
  name: string;
  id: string;
  payload: { k: number; p: string };
  /** ms after the previous action. */
  delayMs: number;
}

export interface RunPlan {
  id: string;
  wf: string;
  input: unknown;
  /** ms after the soak began. */
  startAt: number;
  /** The status the input implies (before control calls). */
  expect: Expect;
  /** chaos-signal / chaos-any: the signals to send, in order (each sent twice under the same id). */
  signals?: SignalSend[];
  /** chaos-signal: cancel once the run waits for its second signal, instead of sending it (certain: it waits forever). */
  cancelWhileWaiting?: boolean;
  /** Cancel this long after the start, whatever the run is doing (the outcome decides the expected status). */
  cancelAfterMs?: number;
  pause?: { afterMs: number; forMs: number };
  /** chaos-manual: wait for `failed`, open the gate, `retry()`. */
  manual?: boolean;
  /** Started with `{ delay: delayMs }`: its first step must not begin before (chaos-linear). */
  delayMs?: number;
  /** Started with `{ priority }` (chaos-keyed, chaos-keyed-step: the runs of a group compete for the key's slots). */
  priority?: number;
  /** The runs started together with this one (chaos-keyed, chaos-keyed-step, chaos-rated): its group's first index. */
  group?: number;
  /**
   * chaos-debounced: `starts` starts with the debounce key `id`, one after the other, `gapMs` apart, inputs
   * `{ burst: id, n: 0 … starts - 1 }`; they must give one run, with the last input (unless a fault held a start past
   * the delay: soak.ts records what each start returned, the checker what that allows).
   */
  debounce?: { starts: number; gapMs: number; delayMs: number; maxDelayMs: number };
}

/** The keys of the keyed groups (a group uses one). */
export const KEYS = ['k0', 'k1', 'k2'];

export function makePlan(seed: number, runs: number, spreadMs: number): RunPlan[] {
  const r = rng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const between = (lo: number, hi: number) => Math.round(lo + r() * (hi - lo));
  const plans: RunPlan[] = [];
  for (let i = 0; i < runs; i++) {
    const startAt = Math.round((i / Math.max(1, runs)) * spreadMs);
    const x = r();
    let plan: RunPlan;
    // Flow control: groups of runs started together (limits) and debounce bursts; about a fifth of the runs.
    if (x < 0.055) {
      const wf = x < 0.03 ? 'chaos-keyed' : 'chaos-keyed-step';
      const key = pick(KEYS);
      const n = Math.min(4, runs - i);
      for (let j = 0; j < n; j++) {
        const input = { key, ms: between(80, 250), sleepMs: between(100, 400) };
        plans.push({ id: `${wf === 'chaos-keyed' ? 'key' : 'kst'}-${i + j}`, wf, input, startAt, expect: 'completed', priority: pick([0, 0, 5, 10]), group: i });
      }
      i += n - 1;
      continue;
    }
    if (x < 0.07) {
      const n = Math.min(5, runs - i);
      for (let j = 0; j < n; j++) plans.push({ id: `rate-${i + j}`, wf: 'chaos-rated', input: {}, startAt, expect: 'completed', group: i });
      i += n - 1;
      continue;
    }
    if (x < 0.09) {
      plans.push({ id: `deb-${i}`, wf: 'chaos-debounced', input: {}, startAt, expect: 'completed', debounce: { starts: between(3, 6), gapMs: between(50, 200), delayMs: 1_500, maxDelayMs: 10_000 } });
      continue;
    }
    if (x < 0.35) {
      const fail = r() < 0.25;
      const input = { flaky: between(0, 2), slow: r() < 0.3, sleepMs: between(100, 600), fail };
      plan = { id: `lin-${i}`, wf: 'chaos-linear', input, startAt, expect: fail ? 'compensated' : 'completed' };
      if (r() < 0.08) plan.cancelAfterMs = between(0, 1_500);
      else if (r() < 0.15) plan.delayMs = between(300, 1_500);
    } else if (x < 0.46) {
      const fail = r() < 0.4;
      plan = { id: `loop-${i}`, wf: 'chaos-loop', input: { fail }, startAt, expect: fail ? 'compensated' : 'completed' };
    } else if (x < 0.6) {
      const cancel = r() < 0.25;
      plan = {
        id: `sig-${i}`,
        wf: 'chaos-signal',
        input: {},
        startAt,
        expect: cancel ? 'cancelled' : 'completed',
        cancelWhileWaiting: cancel,
        signals: [
          { name: 'go', id: `sig-${i}/a`, payload: { k: 1, p: 'a' }, delayMs: between(0, 800) },
          { name: 'go', id: `sig-${i}/b`, payload: { k: 2, p: 'b' }, delayMs: between(0, 800) },
        ],
      };
    } else if (x < 0.69) {
      const first = pick(['left', 'right']);
      const other = first === 'left' ? 'right' : 'left';
      plan = {
        id: `any-${i}`,
        wf: 'chaos-any',
        input: {},
        startAt,
        expect: 'completed',
        // NOTE: both are sent (the first before the second): the earliest sent must win, whenever the run gets to its wait.
        signals: [
          { name: first, id: `any-${i}/1`, payload: { k: 1, p: first }, delayMs: between(0, 800) },
          { name: other, id: `any-${i}/2`, payload: { k: 2, p: other }, delayMs: between(0, 200) },
        ],
      };
    } else if (x < 0.81) {
      const failChild = r() < 0.2 ? between(0, 2) : -1;
      plan = { id: `fan-${i}`, wf: 'chaos-fan', input: { children: 3, failChild }, startAt, expect: failChild >= 0 ? 'compensated' : 'completed' };
    } else if (x < 0.93) {
      plan = { id: `cyc-${i}`, wf: 'chaos-cycle', input: { gen: 1 }, startAt, expect: 'completed' };
    } else {
      plan = { id: `man-${i}`, wf: 'chaos-manual', input: {}, startAt, expect: 'completed', manual: true };
    }
    if (!plan.manual && plan.cancelAfterMs === undefined && !plan.cancelWhileWaiting && r() < 0.12) {
      plan.pause = { afterMs: between(0, 1_000), forMs: between(200, 1_500) };
    }
    plans.push(plan);
  }
  return plans;
}
