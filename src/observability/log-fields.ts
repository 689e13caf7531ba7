import { errorMessage, errorName } from '../engine/error-text.js';
import type { StoredRun } from '../store/workflow-store.interface.js';

/**
 * The structured fields of a log line about a run, passed as the logger call's last argument (before Nest's context):
 * `logger.warn(message, fields)`. Nest's ConsoleLogger with structured params (Nest 12, and the Nest 11 releases that
 * have its `structuredParams` option) prints them after the message in text mode (`… retrying in 200 ms { event:
 * 'step.retrying', runId: … }`) and as `params` in JSON mode (at the top level with `flattenParams: true`); older Nest 11
 * releases print them on a line of their own. nestjs-pino hands them to pino as format arguments, which pino drops:
 * the README ("Logs") shows the pino hook that indexes them. The message text names the run, workflow, step and
 * attempt too, so a logger that drops the object loses nothing a reader needs.
 */
export interface RunLogFields {
  /** What happened: `step.retrying`, `step.failed`, `lease.takeover`, `lease.lost`, `compensation.failed`, … */
  event: string;
  runId: string;
  workflow?: string;
  step?: string;
  /** 1-based attempt number of the step (or compensation) the line is about. */
  attempt?: number;
  /** The error's name and message (its text is in the message too). */
  error?: { name: string; message: string };
  [key: string]: unknown;
}

/** The fields of a log line: `fields` without its undefined values, as a plain object (what loggers look for). */
export function runLogFields(fields: RunLogFields): RunLogFields {
  const out: RunLogFields = { event: fields.event, runId: fields.runId };
  for (const key of Object.keys(fields)) if (fields[key] !== undefined) out[key] = fields[key];
  return out;
}

/**
 * The step a claimed run was in and the attempt that was interrupted there (for a takeover line): the latest entry of
 * its current step, when that entry is still running (its `attempts` counts the attempts that ended, so the one under
 * way is the next; a crash does not use up an attempt).
 */
export function interruptedStep(run: Pick<StoredRun, 'currentStep' | 'steps'>): { step?: string; attempt?: number } {
  const step = run.currentStep;
  if (step === undefined) return {};
  for (let i = run.steps.length - 1; i >= 0; i--) {
    const entry = run.steps[i];
    if (entry.name !== step) continue;
    return entry.status === 'running' ? { step, attempt: entry.attempts + 1 } : { step };
  }
  return { step };
}

/** The `error` field of a log line: the thrown value's name and message, read without ever throwing. */
export function errorFields(error: unknown): { name: string; message: string } {
  return { name: errorName(error), message: errorMessage(error) };
}
