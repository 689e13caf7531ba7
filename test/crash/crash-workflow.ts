/**
 * The workflow of the crash tests, shared by the worker program (which executes it) and the test process (whose
 * worker-less client only needs it registered to start runs by name).
 *
 * Every step body appends a line to a JSONL ledger (`CRASH_LEDGER`) when it starts and when it finishes, with
 * `fs.appendFileSync`, so a line is in the file before the body goes on (a SIGKILL of the process cannot lose it).
 * Settings are read from the environment of the process that runs the body:
 * - `CRASH_STEP_MS`: every step sleeps this long (default 0);
 * - `CRASH_SLOW_STEP` + `CRASH_SLOW_MS`: that step sleeps this long instead;
 * - `CRASH_SLOW_IGNORE_SIGNAL=1`: the sleep ignores `ctx.signal` (the body finishes even after its lease was lost);
 * - `CRASH_RELEASE_FILE`: a sleep ends early once this file exists.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync } from 'node:fs';
import { Step, Workflow, type StepContext } from '../../src/index.js';

export const CRASH_WORKFLOW = 'crash';
export const STEP_NAMES = ['one', 'two', 'three'] as const;
export type CrashStep = (typeof STEP_NAMES)[number];

/** One line of the ledger. */
export interface LedgerEntry {
  phase: 'start' | 'done' | 'aborted';
  pid: number;
  runId: string;
  step: CrashStep;
  attempt: number;
  key: string;
  /** Unique per execution of a body (also in the step's output on `done`). */
  nonce: string;
  at: number;
}

/** What every step returns. */
export interface StepOutput {
  pid: number;
  step: CrashStep;
  nonce: string;
}

/** Sleeps `ms`, or until `releaseFile` exists (checked every 25 ms); false when `signal` aborted it first. */
function sleep(ms: number, signal: AbortSignal | undefined, releaseFile: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const finish = (finished: boolean) => {
      clearTimeout(timer);
      clearInterval(poll);
      signal?.removeEventListener('abort', onAbort);
      resolve(finished);
    };
    const onAbort = () => finish(false);
    const timer = setTimeout(() => finish(true), ms);
    const poll = releaseFile ? setInterval(() => existsSync(releaseFile) && finish(true), 25) : undefined;
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

async function body(step: CrashStep, ctx: StepContext): Promise<StepOutput> {
  const ledger = process.env.CRASH_LEDGER;
  if (!ledger) throw new Error('CRASH_LEDGER is not set');
  const nonce = randomUUID();
  const line = (phase: LedgerEntry['phase']) => {
    const entry: LedgerEntry = { phase, pid: process.pid, runId: ctx.runId, step, attempt: ctx.attempt, key: ctx.idempotencyKey, nonce, at: Date.now() };
    appendFileSync(ledger, `${JSON.stringify(entry)}\n`);
  };
  line('start');
  const ms = process.env.CRASH_SLOW_STEP === step ? Number(process.env.CRASH_SLOW_MS ?? 0) : Number(process.env.CRASH_STEP_MS ?? 0);
  if (ms > 0) {
    const honour = process.env.CRASH_SLOW_IGNORE_SIGNAL !== '1' || process.env.CRASH_SLOW_STEP !== step;
    const finished = await sleep(ms, honour ? ctx.signal : undefined, process.env.CRASH_RELEASE_FILE || undefined);
    if (!finished) {
      line('aborted');
      throw new Error(`step ${step} of ${ctx.runId} aborted`);
    }
  }
  line('done');
  return { pid: process.pid, step, nonce };
}

@Workflow(CRASH_WORKFLOW)
export class CrashWorkflow {
  @Step()
  one(_input: unknown, ctx: StepContext): Promise<StepOutput> {
    return body('one', ctx);
  }

  @Step()
  two(_previous: StepOutput, ctx: StepContext): Promise<StepOutput> {
    return body('two', ctx);
  }

  @Step()
  three(_previous: StepOutput, ctx: StepContext): Promise<StepOutput> {
    return body('three', ctx);
  }
}
