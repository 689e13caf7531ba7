/**
 * The workflow of the heartbeat crash test (not a spec file), registered by the worker program and by the test
 * process's worker-less client, like crash-workflow.ts.
 *
 * Its one step is a batch that resumes from its last heartbeat: with no `ctx.lastHeartbeat` it heartbeats
 * `{ done: 1 }` … `{ done: 5 }` in a tight loop (the throttle writes the first at once and the latest at the end of
 * its second), appends `heartbeated` to the ledger (`CRASH_LEDGER`), then hangs until its process is killed. With a
 * `lastHeartbeat`, it returns at once where it resumed from. Every execution first appends a `start` line with the
 * `lastHeartbeat` it received.
 */
import { appendFileSync } from 'node:fs';
import { Step, Workflow, type StepContext } from '../../src/index.js';

export const HEARTBEAT_WORKFLOW = 'crash-heartbeat';

/** One line of the ledger written by this workflow. */
export interface HeartbeatLedgerEntry {
  kind: 'heartbeat';
  phase: 'start' | 'heartbeated' | 'done';
  pid: number;
  runId: string;
  attempt: number;
  lastHeartbeat?: unknown;
}

function note(entry: Omit<HeartbeatLedgerEntry, 'kind' | 'pid'>): void {
  const ledger = process.env.CRASH_LEDGER;
  if (!ledger) throw new Error('CRASH_LEDGER is not set');
  appendFileSync(ledger, `${JSON.stringify({ kind: 'heartbeat', pid: process.pid, ...entry })}\n`);
}

@Workflow(HEARTBEAT_WORKFLOW)
export class HeartbeatWorkflow {
  @Step() async batch(_input: unknown, ctx: StepContext): Promise<{ resumedFrom: number; pid: number }> {
    note({ phase: 'start', runId: ctx.runId, attempt: ctx.attempt, lastHeartbeat: ctx.lastHeartbeat });
    const resumedFrom = (ctx.lastHeartbeat as { done?: number } | undefined)?.done ?? 0;
    if (resumedFrom === 0) {
      for (let done = 1; done <= 5; done++) await ctx.heartbeat({ done });
      note({ phase: 'heartbeated', runId: ctx.runId, attempt: ctx.attempt });
      await new Promise<never>(() => undefined); // until the process is killed
    }
    note({ phase: 'done', runId: ctx.runId, attempt: ctx.attempt });
    return { resumedFrom, pid: process.pid };
  }
}
