import type { RunErrorInfo } from '../../errors/errors.js';
import { InvalidArgumentError } from '../../errors/errors.js';
import { type RunStatus, RUN_STATUS_SET } from '../run-state-machine.js';
import type { ChildrenState, RunOutcome, StoredRun, StoredStep } from '../workflow-store.interface.js';
import type { Row } from './postgres.client.js';
import type { StepRow } from './postgres.sql-fragments.js';
import { storableText } from './postgres.storable-text.js';

/**
 * The store's rows and values in both directions: run rows (of `runColumns` + `steps`) decoded into `StoredRun`,
 * a patch's step entries encoded into step rows. Decoding never throws on damaged data (see `mapRun`).
 */

// ---------------------------------------------------------------------------------------------------------------
// Row mapping: the only place that knows how drivers hand values back (pg: strings for int8, PGlite: numbers or
// BigInt; booleans as booleans, or 't'/'f' from some drivers). Timestamps are read as epoch milliseconds.
// ---------------------------------------------------------------------------------------------------------------

/** A number from a driver value (string, number, BigInt, Date), or undefined. */
export function num(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Date) return value.getTime();
  const n = Number(value);
  return Number.isNaN(n) ? undefined : n;
}

/** A Date from epoch milliseconds as a driver returns them, or undefined. */
export function date(value: unknown): Date | undefined {
  const ms = num(value);
  return ms === undefined ? undefined : new Date(Math.floor(ms));
}

/** A string from a driver value, or undefined for null. */
export function str(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'string' ? value : String(value);
}

/** A boolean from a driver value (`true`, `'t'`, `'true'`, 1). */
export function bool(value: unknown): boolean {
  return value === true || value === 't' || value === 'true' || value === 1 || value === '1';
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding what the store itself encodes (a run's step entries, `live_step`, `error`, `resume_status`). A damaged
// field never makes a read throw: the run is returned with a placeholder (or without the field) and `corrupt` says
// what was damaged, so one bad row never breaks a call about other runs (nor a claim that already leased them).
// ---------------------------------------------------------------------------------------------------------------

const STEP_STATUSES: ReadonlySet<string> = new Set<StoredStep['status']>(['running', 'completed', 'failed', 'compensated']);

/** Stands for a step entry that could not be decoded (keeps the later entries at their indexes). */
function undecodableStep(): StoredStep {
  return { name: '?', status: 'failed', attempts: 0, error: '<undecodable>' };
}

/** What could not be decoded in one run row, for `StoredRun.corrupt`. */
class Damage {
  private readonly found: string[] = [];
  constructor(private readonly runId: string) {}

  add(field: string, reason: string): void {
    this.found.push(`${field} of run ${JSON.stringify(this.runId)}: ${reason}`);
  }

  get text(): string | undefined {
    return this.found.length > 0 ? this.found.join('; ') : undefined;
  }
}

/** JSON text (or a value a driver already parsed): `{ value }`, or `{ error }` with why it cannot be parsed. */
function parseJson(value: unknown): { value?: unknown; error?: string } {
  if (typeof value !== 'string') return { value };
  try {
    return { value: JSON.parse(value) as unknown };
  } catch (error) {
    return { error: message(error) };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const optionalString = (value: unknown) => value === null || value === undefined || typeof value === 'string';
const optionalTime = (value: unknown) =>
  value === null || value === undefined || (num(value) !== undefined && Number.isFinite(num(value)));

/**
 * The fields of a step entry whose keys differ between its two stored forms: a row of `steps` (as `stepsOf` builds
 * it) and `runs.live_step` (a {@link StepRow}).
 */
interface StepFields {
  startedAt: unknown;
  finishedAt: unknown;
  heartbeatAt: unknown;
  heartbeat: unknown;
}

/** The keyed fields of a step entry from `steps` (`stepsOf`). */
const rowFields = (s: Record<string, unknown>): StepFields => ({
  startedAt: s.startedAt,
  finishedAt: s.finishedAt,
  heartbeatAt: s.heartbeatAt,
  heartbeat: s.heartbeat,
});

/** The keyed fields of a step entry from `runs.live_step` (a {@link StepRow}). */
const liveFields = (s: Record<string, unknown>): StepFields => ({ startedAt: s.st, finishedAt: s.ft, heartbeatAt: s.hb, heartbeat: s.hd });

/** A step entry from its stored form (times in epoch ms), or why it is not one. */
function decodeStep(s: unknown, fields: StepFields): StoredStep | string {
  if (!isRecord(s)) return `not a step record (${JSON.stringify(s) ?? String(s)})`;
  if (typeof s.name !== 'string') return 'the step has no name';
  if (typeof s.status !== 'string' || !STEP_STATUSES.has(s.status)) return `unknown step status ${JSON.stringify(s.status)}`;
  const attempts = num(s.attempts);
  if (attempts === undefined || !Number.isInteger(attempts) || attempts < 0) return `bad attempts ${JSON.stringify(s.attempts)}`;
  if (!optionalString(s.output) || !optionalString(s.error)) return 'output or error is not a string';
  if (!optionalTime(fields.startedAt) || !optionalTime(fields.finishedAt)) return 'a time is not a number';
  if (!optionalTime(fields.heartbeatAt)) return `the heartbeat time is not a number (${JSON.stringify(fields.heartbeatAt)})`;
  if (!optionalString(fields.heartbeat)) return 'the heartbeat details are not a string';
  const heartbeatAt = date(fields.heartbeatAt);
  if (!heartbeatAt && typeof fields.heartbeat === 'string') return 'heartbeat details without a heartbeat time';
  const step: StoredStep = { name: s.name, status: s.status as StoredStep['status'], attempts };
  if (typeof s.output === 'string') step.output = s.output;
  const startedAt = date(fields.startedAt);
  if (startedAt) step.startedAt = startedAt;
  const finishedAt = date(fields.finishedAt);
  if (finishedAt) step.finishedAt = finishedAt;
  if (typeof s.error === 'string') step.error = s.error;
  if (heartbeatAt) {
    step.heartbeat = { at: heartbeatAt };
    if (typeof fields.heartbeat === 'string') step.heartbeat.details = fields.heartbeat;
  }
  return step;
}

/** The run's error (`error` column, jsonb), or why it is not one. */
function decodeError(value: unknown): RunErrorInfo | string {
  if (!isRecord(value)) return `not an error record (${JSON.stringify(value) ?? String(value)})`;
  if (typeof value.name !== 'string' || typeof value.message !== 'string') return 'the error has no name or message';
  if (!optionalString(value.step)) return 'the error\'s step is not a string';
  if (value.phase !== undefined && value.phase !== null && value.phase !== 'step' && value.phase !== 'compensation') {
    return `unknown error phase ${JSON.stringify(value.phase)}`;
  }
  const error: RunErrorInfo = { name: value.name, message: value.message };
  if (typeof value.step === 'string') error.step = value.step;
  if (value.phase === 'step' || value.phase === 'compensation') error.phase = value.phase;
  return error;
}

/** The steps of a run row: the rows of `steps` (by index), with the live step (`live_step`) over its index. */
function readSteps(row: Row, damage: Damage): StoredStep[] {
  const steps: StoredStep[] = [];
  /** Why the entry at an index could not be decoded (reported unless the live step covers it). */
  const damaged = new Map<number, string>();
  if (row.steps !== null && row.steps !== undefined) {
    const parsed = parseJson(row.steps);
    if (parsed.error !== undefined || !Array.isArray(parsed.value)) {
      damage.add('the steps', parsed.error ?? 'not an array');
    } else {
      parsed.value.forEach((s: unknown, i) => {
        const step = decodeStep(s, isRecord(s) ? rowFields(s) : { startedAt: null, finishedAt: null, heartbeatAt: null, heartbeat: null });
        if (typeof step === 'string') {
          damaged.set(i, step);
          steps.push(undecodableStep());
        } else steps.push(step);
      });
    }
  }
  if (row.live_step !== null && row.live_step !== undefined) {
    const parsed = parseJson(row.live_step);
    const live = parsed.value;
    let step: StoredStep | string = parsed.error ?? 'not a step record';
    let index = num(row.live_index);
    if (parsed.error === undefined && isRecord(live)) {
      if (typeof live.i === 'number' && Number.isInteger(live.i) && live.i >= 0) {
        index = live.i;
        step = decodeStep(live, liveFields(live));
      } else step = `the live step has no valid index (${JSON.stringify(live.i) ?? 'none'})`;
    } else if (parsed.error === undefined) step = `not a step record (${JSON.stringify(live) ?? String(live)})`;
    if (typeof step === 'string') damage.add('column live_step', step);
    const entry = typeof step === 'string' ? undecodableStep() : step;
    // NOTE: the rows of `steps` are contiguous from 0 (entries are appended at steps.length).
    if (index !== undefined && Number.isInteger(index) && index >= 0 && index < steps.length) {
      steps[index] = entry;
      damaged.delete(index);
    } else steps.push(entry);
  }
  for (const [i, reason] of damaged) damage.add(`step ${i}`, reason);
  return steps;
}

/** `StoredRun.children` from the `children_*` columns (absent when `children_ended` is null). */
function childrenOf(row: Row): ChildrenState | undefined {
  const ended = num(row.children_ended);
  if (ended === undefined) return undefined;
  const children: ChildrenState = { ended, failed: bool(row.children_failed) };
  const atLeast = num(row.children_wait_ended_at_least);
  if (atLeast !== undefined) children.wait = { endedAtLeast: atLeast, failFast: bool(row.children_fail_fast) };
  return children;
}

/** `StoredRun.concurrency` from the `conc_*` columns (absent when `conc_key` is null). */
function concurrencyOf(row: Row): StoredRun['concurrency'] {
  const key = str(row.conc_key);
  if (key === undefined) return undefined;
  return { key, limit: num(row.conc_limit) ?? 0, scope: row.conc_scope === 'step' ? 'step' : 'run' };
}

/** `StoredRun.rateLimit` from the `rate_*` columns (absent when `rate_key` is null). */
function rateLimitOf(row: Row): StoredRun['rateLimit'] {
  const key = str(row.rate_key);
  if (key === undefined) return undefined;
  return { key, limit: num(row.rate_limit) ?? 0, perMs: num(row.rate_per_ms) ?? 0 };
}

/**
 * A run's outcome (`getRunOutcomes`) from a row of `run_id, status, output, error, parent_run_id, held,
 * children_ended`.
 */
export function mapOutcome(row: Row): RunOutcome {
  const outcome: RunOutcome = { runId: String(row.run_id), status: row.status as RunStatus, held: bool(row.held) };
  const output = str(row.output);
  if (output !== undefined) outcome.output = output;
  if (row.error !== null && row.error !== undefined) {
    const parsed = parseJson(row.error);
    const decoded = parsed.error ?? decodeError(parsed.value);
    // NOTE: a damaged error still says the run failed: a placeholder, as getRun's `corrupt` would name it.
    outcome.error = typeof decoded === 'string' ? { name: 'Error', message: `<undecodable: ${decoded}>` } : decoded;
  }
  const parent = str(row.parent_run_id);
  if (parent !== undefined) outcome.parentRunId = parent;
  const childrenEnded = num(row.children_ended);
  if (childrenEnded !== undefined) outcome.childrenEnded = childrenEnded;
  return outcome;
}

/**
 * A stored run from a row of `runColumns` (+ `steps`). Optional fields are left out when null. Never throws: what
 * cannot be decoded is replaced by a placeholder (a step) or left out (the error), and named in `corrupt`.
 */
export function mapRun(row: Row): StoredRun {
  const runId = String(row.run_id);
  const damage = new Damage(runId);
  const run: StoredRun = {
    runId,
    workflow: String(row.workflow),
    version: num(row.version) ?? 1,
    status: row.status as RunStatus,
    input: String(row.input),
    steps: [],
    priority: num(row.priority) ?? 0,
    state: String(row.state),
    pauseRequested: bool(row.pause_requested),
    createdAt: date(row.created_at) ?? new Date(0),
    updatedAt: date(row.updated_at) ?? new Date(0),
    generation: num(row.generation) ?? 1,
  };
  try {
    run.steps = readSteps(row, damage);
  } catch (error) {
    damage.add('the steps', message(error));
  }
  let error: RunErrorInfo | undefined;
  if (row.error !== null && row.error !== undefined) {
    const parsed = parseJson(row.error);
    const decoded = parsed.error ?? decodeError(parsed.value);
    if (typeof decoded === 'string') damage.add('column error', decoded);
    else error = decoded;
  }
  let resumeStatus = str(row.resume_status) as RunStatus | undefined;
  if (resumeStatus !== undefined && !RUN_STATUS_SET.has(resumeStatus)) {
    damage.add('column resume_status', `unknown status ${JSON.stringify(resumeStatus)}`);
    resumeStatus = undefined;
  }
  let waitSignals: string[] | undefined;
  if (row.wait_signals !== null && row.wait_signals !== undefined) {
    const parsed = parseJson(row.wait_signals);
    if (parsed.error === undefined && Array.isArray(parsed.value) && parsed.value.every((v) => typeof v === 'string')) {
      waitSignals = parsed.value as string[];
    } else damage.add('column wait_signals', parsed.error ?? 'not an array of names');
  }
  const optional: Partial<StoredRun> = {
    output: str(row.output),
    error,
    currentStep: str(row.current_step),
    nextInput: str(row.next_input),
    nextInputSignal: str(row.next_input_signal),
    waitSignals,
    waitUntil: date(row.wait_until),
    resumeStatus,
    cancelRequested:
      row.cancel_compensate === null || row.cancel_compensate === undefined
        ? undefined
        : { compensate: bool(row.cancel_compensate) },
    dueAt: date(row.due_at),
    leaseOwner: str(row.lease_owner),
    leaseToken: str(row.lease_token),
    leaseExpiresAt: date(row.lease_expires_at),
    finishedAt: date(row.finished_at),
    pipeline: str(row.pipeline),
    parentRunId: str(row.parent_run_id),
    children: childrenOf(row),
    concurrency: concurrencyOf(row),
    rateLimit: rateLimitOf(row),
    slotHeld: bool(row.slot_held) ? true : undefined,
    blockedBy: row.blocked_by === 'concurrency' || row.blocked_by === 'rate-limit' ? row.blocked_by : undefined,
    corrupt: damage.text,
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (run as unknown as Record<string, unknown>)[key] = value;
  }
  return run;
}

/**
 * The step rows of a patch's entries, split into the rows for the steps table and the live step: the entry with
 * the highest index when it is `running` goes to `runs.live_step` instead (see the schema). `live` is its JSON,
 * `table` the other rows (null when none).
 */
export function stepRows(entries: { index: number; step: StoredStep }[] | undefined): {
  table: StepRow[] | null;
  live: string | null;
  liveIndex: number | null;
} {
  if (!entries || entries.length === 0) return { table: null, live: null, liveIndex: null };
  // Last write wins per index (one row may be upserted only once per statement).
  const byIndex = new Map<number, StoredStep>();
  let last = -1;
  for (const { index, step } of entries) {
    if (!Number.isInteger(index) || index < 0) throw new InvalidArgumentError(`Step index must be a non-negative integer (got ${index}).`);
    byIndex.set(index, step);
    if (index > last) last = index;
  }
  const table: StepRow[] = [];
  let live: string | null = null;
  let liveIndex: number | null = null;
  for (const [i, s] of byIndex) {
    let hb: number | null = null;
    if (s.heartbeat) {
      hb = s.heartbeat.at instanceof Date ? s.heartbeat.at.getTime() : Number.NaN;
      if (!Number.isFinite(hb)) throw new InvalidArgumentError(`The heartbeat time of step ${i} is not a valid Date.`);
    }
    const row: StepRow = {
      i,
      name: s.name,
      status: s.status,
      attempts: s.attempts,
      output: s.output ?? null,
      st: s.startedAt ? s.startedAt.getTime() : null,
      ft: s.finishedAt ? s.finishedAt.getTime() : null,
      error: s.error === undefined ? null : storableText(s.error),
      hb,
      hd: s.heartbeat?.details ?? null,
    };
    if (i === last && s.status === 'running') {
      live = JSON.stringify(row);
      liveIndex = i;
    } else table.push(row);
  }
  return { table: table.length > 0 ? table : null, live, liveIndex };
}

/** A copy of a step entry as the store keeps it (see {@link storableText}). */
export function stepAsStored(step: StoredStep): StoredStep {
  const copy = { ...step };
  if (copy.error !== undefined) copy.error = storableText(copy.error);
  if (copy.heartbeat) copy.heartbeat = { ...copy.heartbeat };
  return copy;
}

/** A run's error as the store keeps it: its texts made storable (see {@link storableText}). */
export function errorAsStored(error: RunErrorInfo): RunErrorInfo {
  const copy: Record<string, unknown> = { ...error };
  for (const [key, value] of Object.entries(copy)) if (typeof value === 'string') copy[key] = storableText(value);
  return copy as unknown as RunErrorInfo;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
