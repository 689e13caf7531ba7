/**
 * Flow-control workflows of the multi-process tests (flow-control.crash.spec.ts), registered by worker-app.ts with
 * `CRASH_FLOW=1` and by the test's worker-less client. Every step body appends `{ wf, runId, key, phase, pid, at }` to
 * the JSONL ledger `CRASH_LEDGER` when it starts and when it ends (`appendFileSync`: in the file before the body goes
 * on, so a SIGKILL cannot lose it).
 * - `flow-keyed`: at most 2 runs per `input.key` (scope 'run'); the step takes `input.ms`.
 * - `flow-rated`: at most 10 runs begin per second (sliding window).
 * - `flow-debounced`: returns its input.
 * - `flow-slot`: at most 1 run per `input.key`; the step hangs while `CRASH_FLOW_HANG` names the run id (the victim of
 *   the crash test), else takes 50 ms.
 */
import { appendFileSync } from 'node:fs';
import { Schedule, Step, Workflow, type StepContext } from '../../src/index.js';

export interface FlowLedgerEntry {
  wf: string;
  runId: string;
  key?: string;
  phase: 'start' | 'end';
  pid: number;
  at: number;
  input?: unknown;
}

function record(entry: Omit<FlowLedgerEntry, 'pid' | 'at'>): void {
  const ledger = process.env.CRASH_LEDGER;
  if (!ledger) throw new Error('CRASH_LEDGER is not set');
  appendFileSync(ledger, `${JSON.stringify({ ...entry, pid: process.pid, at: Date.now() })}\n`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

@Workflow({ name: 'flow-keyed', concurrency: { limit: 2, key: (input: { key: string }) => input.key } })
export class FlowKeyed {
  @Step() async work(input: { key: string; ms: number }, ctx: StepContext) {
    record({ wf: 'flow-keyed', runId: ctx.runId, key: input.key, phase: 'start' });
    await sleep(input.ms);
    record({ wf: 'flow-keyed', runId: ctx.runId, key: input.key, phase: 'end' });
    return input.key;
  }
}

@Workflow({ name: 'flow-rated', rateLimit: { limit: 10, per: '1s' } })
export class FlowRated {
  @Step() async work(input: number, ctx: StepContext) {
    record({ wf: 'flow-rated', runId: ctx.runId, phase: 'start' });
    return input;
  }
}

@Workflow({ name: 'flow-debounced' })
export class FlowDebounced {
  @Step() async work(input: unknown, ctx: StepContext) {
    record({ wf: 'flow-debounced', runId: ctx.runId, phase: 'start', input });
    return input;
  }
}

@Workflow({ name: 'flow-slot', concurrency: { limit: 1, key: (input: { key: string }) => input.key } })
export class FlowSlot {
  @Step() async work(input: { key: string }, ctx: StepContext) {
    record({ wf: 'flow-slot', runId: ctx.runId, key: input.key, phase: 'start' });
    if (process.env.CRASH_FLOW_HANG === ctx.runId) await new Promise(() => undefined);
    await sleep(50);
    record({ wf: 'flow-slot', runId: ctx.runId, key: input.key, phase: 'end' });
    return ctx.runId;
  }
}

/** Registered by workers with `CRASH_FLOW_TICK=1` only: a schedule firing every second (catch-up: the latest tick). */
@Schedule({ id: 'flow-tick', every: '1s' })
@Workflow({ name: 'flow-tick' })
export class FlowTick {
  @Step() async work(input: { scheduledAt: Date }, ctx: StepContext) {
    record({ wf: 'flow-tick', runId: ctx.runId, phase: 'start', input });
    return ctx.runId;
  }
}

export const FLOW_WORKFLOWS = [FlowKeyed, FlowRated, FlowDebounced, FlowSlot];
