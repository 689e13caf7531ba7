/**
 * The workflows of the chaos soak (`npm run chaos`), shared by the worker processes (which execute them) and the
 * driver/checker process (whose worker-less client starts and inspects them).
 *
 * Every step and compensation body appends lines to the effects ledger (`CHAOS_LEDGER`, one file per worker process):
 * `s` when it starts, `d` when it finishes (`a` when it gives up on `ctx.signal`), `cs`/`cd` for compensations. Each
 * line is written with `writeSync` + `fdatasync` before the body goes on, so no fault of the process loses it. A line
 * carries the run, the step, the idempotency key, the attempt, the instance (pid), the visit and generation the body
 * believes it is in (from its input), and a nonce that is also in the step's output.
 *
 * Between them the workflows use every feature the engine has: retries (`flaky`), timeouts (`slow`), compensation
 * (every `comp*`), durable sleep (`nap`), signals with ids (`chaos-signal`), `Flow.waitForAny` (`chaos-any`),
 * `Flow.goto` loops (`chaos-loop`, `chaos-signal`), child runs with `Flow.all` and `concurrency` (`chaos-fan`),
 * `Flow.continueAsNew` (`chaos-cycle`), a failed run resumed by `retry()` (`chaos-manual`), per-key concurrency limits
 * with scope 'run' and 'step' (`chaos-keyed`, `chaos-keyed-step`), a rate limit (`chaos-rated`), debounced starts
 * (`chaos-debounced`) and a schedule every second (`chaos-tick`).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Flow, NonRetryableError, RetryPolicy, Schedule, Step, Workflow, type CompensationContext, type StepContext } from '../src/index.js';
import { ChaosPoison } from './poison.js';

/** One line of the effects ledger. */
export interface ChaosEntry {
  /** s: step body started, d: finished, a: aborted (ctx.signal), cs / cd: compensation started / finished. */
  t: 's' | 'd' | 'a' | 'cs' | 'cd';
  run: string;
  wf: string;
  step: string;
  key: string;
  att: number;
  pid: number;
  at: number;
  nonce: string;
  /** The visit (goto loops) and generation (continue-as-new) the body derives from its input. */
  visit: number;
  gen: number;
  /** What a signal step received, what a join step received. */
  got?: unknown;
}

let fd: number | undefined;
function ledgerFd(): number {
  if (fd === undefined) {
    const path = process.env.CHAOS_LEDGER;
    if (!path) throw new Error('CHAOS_LEDGER is not set');
    fd = openSync(path, 'a');
  }
  return fd;
}

export function writeEntry(entry: Omit<ChaosEntry, 'pid' | 'at'>): void {
  const f = ledgerFd();
  writeSync(f, `${JSON.stringify({ ...entry, pid: process.pid, at: Date.now() })}\n`);
  fdatasyncSync(f);
}

function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface StepOut {
  nonce: string;
  step: string;
  [k: string]: unknown;
}

/**
 * Runs a step body between its ledger lines. `work` may throw (the `d` line is then not written) and may return
 * extra fields of the output.
 */
async function body(ctx: StepContext, where: { visit?: number; gen?: number; got?: unknown }, work?: () => Promise<Record<string, unknown> | void> | Record<string, unknown> | void): Promise<StepOut> {
  const nonce = randomUUID();
  const base = { run: ctx.runId, wf: ctx.workflow, step: ctx.step, key: ctx.idempotencyKey, att: ctx.attempt, nonce, visit: where.visit ?? 1, gen: where.gen ?? 1 };
  writeEntry({ ...base, t: 's', ...(where.got === undefined ? {} : { got: where.got }) });
  const extra = (await work?.()) ?? {};
  writeEntry({ ...base, t: 'd' });
  return { nonce, step: ctx.step, ...extra };
}

async function compensation(ctx: CompensationContext, where: { visit?: number; gen?: number } = {}): Promise<void> {
  const nonce = randomUUID();
  const base = { run: ctx.runId, wf: ctx.workflow, step: ctx.step, key: ctx.idempotencyKey, att: ctx.attempt, nonce, visit: where.visit ?? 1, gen: where.gen ?? 1 };
  writeEntry({ ...base, t: 'cs' });
  writeEntry({ ...base, t: 'cd' });
}

const STEP_RETRY = RetryPolicy.fixed(4, '50ms');

// ---------------------------------------------------------------------------------------------------------------------

export interface LinearInput {
  /** Attempts of `flaky` that fail before one succeeds (0–2). */
  flaky: number;
  /** `slow` outlives its 300 ms timeout on attempt 1. */
  slow: boolean;
  sleepMs: number;
  /** `finish` fails for good: the run compensates nap, flaky and open (in that order). */
  fail: boolean;
}

/** open → flaky (retries) → slow (timeout) → nap (durable sleep) → finish. */
@Workflow('chaos-linear')
export class ChaosLinear {
  @Step({ compensate: 'undo', retry: STEP_RETRY })
  open(_input: LinearInput, ctx: StepContext<LinearInput>) {
    return body(ctx, {});
  }

  @Step({ compensate: 'undo', retry: STEP_RETRY })
  flaky(_prev: StepOut, ctx: StepContext<LinearInput>) {
    return body(ctx, {}, () => {
      if (ctx.attempt <= ctx.input.flaky) throw new Error(`flaky: attempt ${ctx.attempt} fails on purpose`);
    });
  }

  @Step({ timeout: '300ms', retry: RetryPolicy.fixed(3, '50ms') })
  slow(_prev: StepOut, ctx: StepContext<LinearInput>) {
    return body(ctx, {}, async () => {
      if (ctx.input.slow && ctx.attempt === 1) {
        await pause(1_500, ctx.signal);
        throw new Error('slow: should have timed out');
      }
    });
  }

  @Step({ compensate: 'undo', retry: STEP_RETRY })
  async nap(_prev: StepOut, ctx: StepContext<LinearInput>) {
    const out = await body(ctx, {});
    return Flow.sleep(ctx.input.sleepMs, out);
  }

  @Step({ retry: STEP_RETRY })
  finish(_prev: StepOut, ctx: StepContext<LinearInput>) {
    return body(ctx, {}, () => {
      if (ctx.input.fail) throw new NonRetryableError('finish fails for good on purpose');
    });
  }

  async undo(_out: StepOut, ctx: CompensationContext) {
    await compensation(ctx);
  }
}

// ---------------------------------------------------------------------------------------------------------------------

export interface LoopInput {
  fail: boolean;
}

/** start → loop ×3 (goto) → end; compensated per visit, latest first, when `end` fails. */
@Workflow('chaos-loop')
export class ChaosLoop {
  @Step({ compensate: 'undo', retry: STEP_RETRY })
  async start(_input: LoopInput, ctx: StepContext<LoopInput>) {
    return { ...(await body(ctx, {})), n: 1 };
  }

  @Step({ compensate: 'undoLoop', retry: STEP_RETRY })
  async loop(prev: { n: number }, ctx: StepContext<LoopInput>) {
    const out = { ...(await body(ctx, { visit: prev.n })), n: prev.n };
    return prev.n < 3 ? Flow.goto('loop', { ...out, n: prev.n + 1 }) : out;
  }

  @Step({ retry: STEP_RETRY })
  end(_prev: unknown, ctx: StepContext<LoopInput>) {
    return body(ctx, {}, () => {
      if (ctx.input.fail) throw new NonRetryableError('end fails for good on purpose');
    });
  }

  async undo(_out: unknown, ctx: CompensationContext) {
    await compensation(ctx);
  }

  async undoLoop(out: { n: number }, ctx: CompensationContext) {
    // NOTE: the output of visit n (goto) is { n: n + 1 }, of the last visit { n }.
    const visit = Number(/#(\d+)/.exec(ctx.idempotencyKey)?.[1] ?? 1);
    void out;
    await compensation(ctx, { visit });
  }
}

// ---------------------------------------------------------------------------------------------------------------------

/** prep → (wait → got) ×2: two signals `go`, each delivered once, in order. */
@Workflow('chaos-signal')
export class ChaosSignal {
  @Step({ compensate: 'undo', retry: STEP_RETRY })
  async prep(_input: unknown, ctx: StepContext) {
    return { ...(await body(ctx, {})), k: 1 };
  }

  @Step({ retry: STEP_RETRY })
  async wait(prev: { k: number }, ctx: StepContext) {
    const out = await body(ctx, { visit: prev.k });
    return Flow.waitForSignal('go', { timeout: '30m', value: { ...out, k: prev.k } });
  }

  @Step({ retry: STEP_RETRY })
  async got(payload: { k: number; p: string }, ctx: StepContext) {
    const k = payload?.k ?? 0;
    const out = { ...(await body(ctx, { visit: k, got: payload })), got: payload };
    return k < 2 ? Flow.goto('wait', { ...out, k: k + 1 }) : out;
  }

  async undo(_out: unknown, ctx: CompensationContext) {
    await compensation(ctx);
  }
}

/** wait for the first of `left` / `right` → got. */
@Workflow('chaos-any')
export class ChaosAny {
  @Step({ retry: STEP_RETRY })
  async wait(_input: unknown, ctx: StepContext) {
    const out = await body(ctx, {});
    return Flow.waitForAny(['left', 'right'], { timeout: '30m', value: out });
  }

  @Step({ retry: STEP_RETRY })
  async got(received: unknown, ctx: StepContext) {
    return { ...(await body(ctx, { got: received })), got: received };
  }
}

// ---------------------------------------------------------------------------------------------------------------------

export interface FanInput {
  children: number;
  /** Index of a child that fails for good (the parent compensates `pre`), or -1. */
  failChild: number;
}

/** pre → fan (Flow.all of children, concurrency 2) → join (checks the outputs' order). */
@Workflow('chaos-fan')
export class ChaosFan {
  @Step({ compensate: 'undo', retry: STEP_RETRY })
  pre(_input: FanInput, ctx: StepContext<FanInput>) {
    return body(ctx, {});
  }

  @Step()
  async fan(_prev: unknown, ctx: StepContext<FanInput>) {
    await body(ctx, {});
    const { children, failChild } = ctx.input;
    return Flow.all(Array.from({ length: children }, (_, i) => Flow.child(ChaosChild, { i, fail: i === failChild })), { concurrency: 2 });
  }

  @Step({ retry: STEP_RETRY })
  join(outputs: { i: number }[], ctx: StepContext<FanInput>) {
    return body(ctx, { got: outputs.map((o) => o.i) }, () => {
      if (outputs.length !== ctx.input.children || outputs.some((o, i) => o.i !== i)) {
        throw new NonRetryableError(`join: children outputs out of order: ${JSON.stringify(outputs.map((o) => o.i))}`);
      }
    });
  }

  async undo(_out: unknown, ctx: CompensationContext) {
    await compensation(ctx);
  }
}

@Workflow('chaos-child')
export class ChaosChild {
  @Step({ retry: STEP_RETRY })
  async work(input: { i: number; fail: boolean }, ctx: StepContext<{ i: number; fail: boolean }>) {
    return {
      ...(await body(ctx, {}, async () => {
        await pause(20 + (input.i % 3) * 30, ctx.signal);
        if (input.fail) throw new NonRetryableError(`child ${input.i} fails for good on purpose`);
      })),
      i: input.i,
    };
  }
}

// ---------------------------------------------------------------------------------------------------------------------

/** tick → next: continue-as-new until generation 3. */
@Workflow('chaos-cycle')
export class ChaosCycle {
  @Step({ retry: STEP_RETRY })
  tick(input: { gen: number }, ctx: StepContext<{ gen: number }>) {
    return body(ctx, { gen: input.gen });
  }

  @Step({ retry: STEP_RETRY })
  async next(_prev: StepOut, ctx: StepContext<{ gen: number }>) {
    const out = await body(ctx, { gen: ctx.input.gen });
    return ctx.input.gen < 3 ? Flow.continueAsNew({ gen: ctx.input.gen + 1 }) : out;
  }
}

// ---------------------------------------------------------------------------------------------------------------------

/** pre → gate: `gate` fails for good until the driver opens it (a marker file), then `retry()` completes the run. */
@Workflow('chaos-manual')
export class ChaosManual {
  @Step({ retry: STEP_RETRY })
  pre(_input: unknown, ctx: StepContext) {
    return body(ctx, {});
  }

  @Step()
  gate(_prev: unknown, ctx: StepContext) {
    return body(ctx, {}, () => {
      const dir = process.env.CHAOS_MARKERS ?? '';
      if (!existsSync(join(dir, encodeURIComponent(ctx.runId)))) throw new NonRetryableError('gate closed');
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Flow control and schedules. `CHAOS_PLANT` (read by the driver and the workers) breaks one invariant on purpose, to
// show that the checker catches it: `limit` (the concurrency limits become 4, the checker still expects 2), `rate`
// (the rate limit becomes 30 per second); the others are planted by the driver (soak.ts).

export const PLANT = process.env.CHAOS_PLANT ?? '';
/** The concurrency limit per key of `chaos-keyed` and `chaos-keyed-step`, as the checker expects it. */
export const KEYED_LIMIT = 2;
/** The rate limit of `chaos-rated`, as the checker expects it: at most RATE_LIMIT runs begin in any RATE_PER_MS. */
export const RATE_LIMIT = 3;
export const RATE_PER_MS = 1_000;
/** The schedule of `chaos-tick`: every TICK_MS, catch-up 'latest', overlap 'allow' (every tick it fires starts a run). */
export const TICK_SCHEDULE = 'chaos-tick';
export const TICK_MS = 1_000;

export interface KeyedInput {
  key: string;
  /** How long each step body takes. */
  ms: number;
  /** The durable sleep between the two steps (scope 'run': the run keeps its slot; 'step': it gives it back). */
  sleepMs: number;
}

const keyOfInput = (input: KeyedInput) => input.key;

/** hold (a body of `ms`) → sleep → done; at most KEYED_LIMIT runs per key hold a slot from their first claim to their end. */
@Workflow({ name: 'chaos-keyed', concurrency: { limit: PLANT === 'limit' ? 4 : KEYED_LIMIT, key: keyOfInput } })
export class ChaosKeyed {
  @Step({ retry: STEP_RETRY })
  async hold(input: KeyedInput, ctx: StepContext<KeyedInput>) {
    // NOTE: the body ignores ctx.signal on purpose: a fenced execution runs to its end, as user code may.
    const out = await body(ctx, {}, async () => void (await pause(input.ms)));
    return Flow.sleep(input.sleepMs, out);
  }

  @Step({ retry: STEP_RETRY })
  done(_prev: StepOut, ctx: StepContext<KeyedInput>) {
    return body(ctx, {}, async () => void (await pause(ctx.input.ms)));
  }
}

/** The same with `scope: 'step'`: a run holds its slot only while it executes (the sleep gives it back). */
@Workflow({ name: 'chaos-keyed-step', concurrency: { limit: PLANT === 'limit' ? 4 : KEYED_LIMIT, key: keyOfInput, scope: 'step' } })
export class ChaosKeyedStep {
  @Step({ retry: STEP_RETRY })
  async hold(input: KeyedInput, ctx: StepContext<KeyedInput>) {
    const out = await body(ctx, {}, async () => void (await pause(input.ms)));
    return Flow.sleep(input.sleepMs, out);
  }

  @Step({ retry: STEP_RETRY })
  done(_prev: StepOut, ctx: StepContext<KeyedInput>) {
    return body(ctx, {}, async () => void (await pause(ctx.input.ms)));
  }
}

/** One short step; at most RATE_LIMIT runs begin (first claim) in any window of RATE_PER_MS. */
@Workflow({ name: 'chaos-rated', rateLimit: { limit: PLANT === 'rate' ? 30 : RATE_LIMIT, per: RATE_PER_MS } })
export class ChaosRated {
  @Step({ retry: STEP_RETRY })
  work(_input: unknown, ctx: StepContext) {
    return body(ctx, {});
  }
}

/** Started with `debounce`: one step that records the input it got. */
@Workflow('chaos-debounced')
export class ChaosDebounced {
  @Step({ retry: STEP_RETRY })
  work(input: { burst: string; n: number }, ctx: StepContext) {
    return body(ctx, { got: input });
  }
}

/** Fired by its schedule every second: one step that records the tick it was started for. */
@Schedule({ id: TICK_SCHEDULE, every: TICK_MS, catchUp: 'latest', overlap: 'allow' })
@Workflow(TICK_SCHEDULE)
export class ChaosTick {
  @Step({ retry: STEP_RETRY })
  work(input: { scheduledAt: Date | string }, ctx: StepContext) {
    return body(ctx, { got: new Date(input.scheduledAt).toISOString() });
  }
}

export const CHAOS_WORKFLOWS = [
  ChaosLinear,
  ChaosLoop,
  ChaosSignal,
  ChaosAny,
  ChaosFan,
  ChaosChild,
  ChaosCycle,
  ChaosManual,
  ChaosPoison,
  ChaosKeyed,
  ChaosKeyedStep,
  ChaosRated,
  ChaosDebounced,
  ChaosTick,
];

/** Steps with a compensation, by workflow. */
export const COMPENSABLE: Record<string, Set<string>> = {
  'chaos-linear': new Set(['open', 'flaky', 'nap']),
  'chaos-loop': new Set(['start', 'loop']),
  'chaos-signal': new Set(['prep']),
  'chaos-any': new Set(),
  'chaos-fan': new Set(['pre']),
  'chaos-child': new Set(),
  'chaos-cycle': new Set(),
  'chaos-manual': new Set(),
  'chaos-keyed': new Set(),
  'chaos-keyed-step': new Set(),
  'chaos-rated': new Set(),
  'chaos-debounced': new Set(),
  [TICK_SCHEDULE]: new Set(),
};
