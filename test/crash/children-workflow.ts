/**
 * The workflows of the child-run crash tests (children.crash.spec.ts), shared by the worker program (which executes
 * them; registered when `CRASH_CHILDREN=1`) and the test process (whose worker-less client starts the parents).
 *
 * - `fanout-parent`: step `spawn` returns `Flow.all` of `input.n` children (optionally with `input.concurrency`);
 *   step `join` receives the array of the children's outputs and records it in the ledger.
 * - `fanout-child`: one step `work`, which sleeps `CRASH_CHILD_STEP_MS` (default 0; honours `ctx.signal`).
 *
 * Every step body appends a line to the JSONL ledger `CRASH_LEDGER` when it starts and when it finishes (the same
 * ledger file as crash-workflow.ts, told apart by `wf`), with `appendFileSync`: a line is in the file before the body
 * goes on, so a SIGKILL cannot lose it.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { Flow, Step, Workflow, type StepContext } from '../../src/index.js';

export const FANOUT_PARENT = 'fanout-parent';
export const FANOUT_CHILD = 'fanout-child';

export interface FanoutInput {
  n: number;
  concurrency?: number;
}

export interface ChildInput {
  i: number;
}

/** What a child's step (and so the child run) returns. */
export interface ChildOutput {
  i: number;
  pid: number;
  nonce: string;
}

/** One line of the ledger written by these workflows. */
export interface FanoutLedgerEntry {
  wf: typeof FANOUT_PARENT | typeof FANOUT_CHILD;
  phase: 'start' | 'done' | 'aborted';
  step: 'spawn' | 'join' | 'work';
  pid: number;
  runId: string;
  key: string;
  attempt: number;
  nonce: string;
  at: number;
  /** Child: its index. */
  i?: number;
  /** Join (start): the outputs the step received. */
  outputs?: ChildOutput[];
}

function write(entry: Omit<FanoutLedgerEntry, 'pid' | 'at'>): void {
  const ledger = process.env.CRASH_LEDGER;
  if (!ledger) throw new Error('CRASH_LEDGER is not set');
  appendFileSync(ledger, `${JSON.stringify({ ...entry, pid: process.pid, at: Date.now() })}\n`);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
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

@Workflow(FANOUT_CHILD)
export class FanoutChild {
  @Step()
  async work(input: ChildInput, ctx: StepContext): Promise<ChildOutput> {
    const nonce = randomUUID();
    const base = { wf: FANOUT_CHILD, step: 'work', runId: ctx.runId, key: ctx.idempotencyKey, attempt: ctx.attempt, nonce, i: input.i } as const;
    write({ ...base, phase: 'start' });
    const ms = Number(process.env.CRASH_CHILD_STEP_MS ?? 0);
    if (ms > 0 && !(await sleep(ms, ctx.signal))) {
      write({ ...base, phase: 'aborted' });
      throw new Error(`child ${ctx.runId} aborted`);
    }
    write({ ...base, phase: 'done' });
    return { i: input.i, pid: process.pid, nonce };
  }
}

@Workflow(FANOUT_PARENT)
export class FanoutParent {
  @Step()
  spawn(input: FanoutInput, ctx: StepContext) {
    const nonce = randomUUID();
    const base = { wf: FANOUT_PARENT, step: 'spawn', runId: ctx.runId, key: ctx.idempotencyKey, attempt: ctx.attempt, nonce } as const;
    write({ ...base, phase: 'start' });
    const children = Array.from({ length: input.n }, (_, i) => Flow.child(FanoutChild, { i } satisfies ChildInput));
    write({ ...base, phase: 'done' });
    return Flow.all(children, input.concurrency !== undefined ? { concurrency: input.concurrency } : {});
  }

  @Step()
  join(outputs: ChildOutput[], ctx: StepContext) {
    const nonce = randomUUID();
    const base = { wf: FANOUT_PARENT, step: 'join', runId: ctx.runId, key: ctx.idempotencyKey, attempt: ctx.attempt, nonce } as const;
    write({ ...base, phase: 'start', outputs });
    write({ ...base, phase: 'done' });
    return { count: outputs.length, nonce, pid: process.pid };
  }
}
