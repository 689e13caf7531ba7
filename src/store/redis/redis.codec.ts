import { InvalidArgumentError, type RunErrorInfo } from '../../errors/errors.js';
import { RUN_STATUS_SET } from '../run-state-machine.js';
import type {
  ChildrenState,
  ClaimedRun,
  ConcurrencySpec,
  RateLimitSpec,
  RunOutcome,
  RunStatus,
  StepStatus,
  StoredRun,
  StoredStep,
} from '../workflow-store.interface.js';

/**
 * A run's index record as the scripts return it: runId, exists, iv, workflow, status, createdAt, claimAt, finishedAt,
 * version (the run's `ver` field verbatim), priority (its `pri` field, '' for 0), flow entry ('' for a run without
 * limits; see `redis.keys.ts`). The last two are absent in a record built by hand (read as '').
 */
export type IndexRecord = [string, string, string, string, string, string, string, string, string, string?, string?];

/** A concurrency limit as the run hash keeps it (`cc`, see `redis.fields.ts`). */
export function encodeConcurrency(spec: ConcurrencySpec): string {
  return `${spec.scope}:${spec.limit}:${Buffer.from(spec.key, 'utf8').toString('base64url')}`;
}

/** A rate limit as the run hash keeps it (`rl`, see `redis.fields.ts`). */
export function encodeRateLimit(spec: RateLimitSpec): string {
  return `${spec.limit}:${spec.perMs}:${Buffer.from(spec.key, 'utf8').toString('base64url')}`;
}

const CONCURRENCY = /^(run|step):(\d{1,16}):([A-Za-z0-9_-]*)$/;
const RATE_LIMIT = /^(\d{1,16}):(\d{1,16}):([A-Za-z0-9_-]*)$/;

function decodeConcurrency(text: string, damage: Damage): ConcurrencySpec | undefined {
  const match = CONCURRENCY.exec(text);
  if (!match) {
    damage.field('cc', `not a concurrency limit: ${JSON.stringify(text.slice(0, 40))}`);
    return undefined;
  }
  return { key: Buffer.from(match[3], 'base64url').toString('utf8'), limit: Number(match[2]), scope: match[1] as ConcurrencySpec['scope'] };
}

function decodeRateLimit(text: string, damage: Damage): RateLimitSpec | undefined {
  const match = RATE_LIMIT.exec(text);
  if (!match) {
    damage.field('rl', `not a rate limit: ${JSON.stringify(text.slice(0, 40))}`);
    return undefined;
  }
  return { key: Buffer.from(match[3], 'base64url').toString('utf8'), limit: Number(match[1]), perMs: Number(match[2]) };
}

/** `[run hash fields (flat), step hash fields (flat)]` as the scripts return them. */
export type Snapshot = [string[], string[]];

/**
 * Status shown for a run whose `st` field is not a status: the run is parked (never claimed, see `claimAt` in
 * `lua/prelude.lua`) and indexed under this status until an operator repairs it.
 */
export const PARKED_STATUS: RunStatus = 'paused';

/** Placeholder name of a step record that cannot be read. */
export const UNREADABLE_STEP = '?';

interface StepJson {
  name: string;
  status: StepStatus;
  attempts: number;
  output?: string;
  startedAt?: number;
  finishedAt?: number;
  error?: string;
  /** The latest heartbeat: `at` in epoch ms, `details` verbatim (absent when none were given). */
  heartbeat?: { at: number; details?: string };
}

const STATUS_SET = RUN_STATUS_SET;
const STEP_STATUSES: ReadonlySet<string> = new Set(['running', 'completed', 'failed', 'compensated']);
/** A time field as the scripts write it: integer milliseconds (the same pattern as `num` in the scripts). */
const INTEGER = /^-?\d{1,16}$/;

function time(date: Date | undefined): number | undefined {
  if (date === undefined) return undefined;
  const ms = date instanceof Date ? date.getTime() : new Date(date).getTime();
  return Number.isFinite(ms) ? ms : undefined;
}

/** A duration or instant in ms as a script argument: an integer the scripts can read (see `num` in `lua/prelude.lua`). */
export function integerArg(what: string, value: number): string {
  const rounded = Math.round(value);
  if (!Number.isSafeInteger(rounded)) throw new InvalidArgumentError(`${what} must be a finite number of milliseconds, got ${value}.`);
  return String(rounded);
}

/** Serializes a step visit for the steps hash. */
export function encodeStep(step: StoredStep): string {
  const json: StepJson = { name: step.name, status: step.status, attempts: step.attempts };
  if (step.output !== undefined) json.output = step.output;
  const startedAt = time(step.startedAt);
  if (startedAt !== undefined) json.startedAt = startedAt;
  const finishedAt = time(step.finishedAt);
  if (finishedAt !== undefined) json.finishedAt = finishedAt;
  if (step.error !== undefined) json.error = step.error;
  if (step.heartbeat !== undefined) {
    // NOTE: like the other times of a step, a heartbeat whose time is not one is left out.
    const at = time(step.heartbeat.at);
    if (at !== undefined) json.heartbeat = step.heartbeat.details !== undefined ? { at, details: step.heartbeat.details } : { at };
  }
  return JSON.stringify(json);
}

/** Serializes a run error for the hash. */
export function encodeError(error: RunErrorInfo): string {
  const json: RunErrorInfo = { name: error.name, message: error.message };
  if (error.step !== undefined) json.step = error.step;
  if (error.phase !== undefined) json.phase = error.phase;
  return JSON.stringify(json);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Collects what could not be read while decoding one run. */
class Damage {
  readonly fields = new Set<string>();
  readonly notes: string[] = [];
  constructor(private readonly runId: string) {}

  field(name: string, detail: string): void {
    this.fields.add(name);
    this.notes.push(`field ${name} of run ${JSON.stringify(this.runId)}: ${detail}`);
  }

  step(index: string, detail: string): void {
    this.fields.add('steps');
    this.notes.push(`step ${index} of run ${JSON.stringify(this.runId)}: ${detail}`);
  }
}

/** A decoded step record; damaged parts are replaced by placeholders and reported. */
function decodeStep(text: string, index: string, damage: Damage): StoredStep {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    damage.step(index, message(error));
    return { name: UNREADABLE_STEP, status: 'failed', attempts: 0 };
  }
  if (!isObject(json)) {
    damage.step(index, 'not a JSON object');
    return { name: UNREADABLE_STEP, status: 'failed', attempts: 0 };
  }
  const bad: string[] = [];
  const step: StoredStep = { name: UNREADABLE_STEP, status: 'failed', attempts: 0 };
  if (typeof json.name === 'string') step.name = json.name;
  else bad.push('name');
  if (typeof json.status === 'string' && STEP_STATUSES.has(json.status)) step.status = json.status as StepStatus;
  else bad.push('status');
  if (typeof json.attempts === 'number' && Number.isSafeInteger(json.attempts) && json.attempts >= 0) step.attempts = json.attempts;
  else bad.push('attempts');
  if (typeof json.output === 'string') step.output = json.output;
  else if (json.output !== undefined) bad.push('output');
  for (const key of ['startedAt', 'finishedAt'] as const) {
    const value = json[key];
    if (typeof value === 'number' && Number.isFinite(value)) step[key] = new Date(value);
    else if (value !== undefined) bad.push(key);
  }
  if (typeof json.error === 'string') step.error = json.error;
  else if (json.error !== undefined) bad.push('error');
  const heartbeat = json.heartbeat;
  if (heartbeat !== undefined) {
    if (
      isObject(heartbeat) &&
      typeof heartbeat.at === 'number' &&
      Number.isFinite(heartbeat.at) &&
      (heartbeat.details === undefined || typeof heartbeat.details === 'string')
    ) {
      step.heartbeat = { at: new Date(heartbeat.at) };
      if (heartbeat.details !== undefined) step.heartbeat.details = heartbeat.details as string;
    } else {
      bad.push('heartbeat');
    }
  }
  if (bad.length > 0) damage.step(index, `unreadable ${bad.join(', ')}`);
  return step;
}

function decodeError(text: string, damage: Damage): RunErrorInfo | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    damage.field('err', message(error));
    return undefined;
  }
  if (!isObject(json) || typeof json.name !== 'string' || typeof json.message !== 'string') {
    damage.field('err', 'not an error record ({ name, message })');
    return undefined;
  }
  const error: RunErrorInfo = { name: json.name, message: json.message };
  if (typeof json.step === 'string') error.step = json.step;
  else if (json.step !== undefined) damage.field('err', 'unreadable step');
  if (json.phase === 'step' || json.phase === 'compensation') error.phase = json.phase;
  else if (json.phase !== undefined) damage.field('err', 'unreadable phase');
  return error;
}

function toMap(flat: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(flat[i], flat[i + 1]);
  return map;
}

/** A run of which nothing could be read. */
function placeholderRun(runId: string): StoredRun {
  return {
    runId,
    workflow: '',
    version: 0,
    priority: 0,
    status: PARKED_STATUS,
    input: '',
    steps: [],
    state: '',
    pauseRequested: false,
    createdAt: new Date(0),
    updatedAt: new Date(0),
    generation: 1,
  };
}

/** A run decoded from a snapshot, with the names of the fields that could not be read (`steps` for step records). */
export interface DecodedRun {
  run: StoredRun;
  damaged: ReadonlySet<string>;
}

/**
 * Builds a StoredRun from a script snapshot; undefined when the run hash is empty. Never throws: a field the store
 * encodes that cannot be read gets a safe placeholder, and `corrupt` names the run and the field. `input`, `output`
 * and `state` are opaque and returned verbatim.
 */
export function decodeSnapshot(snapshot: Snapshot, runId: string): DecodedRun | undefined {
  const [runFlat, stepsFlat] = snapshot ?? [];
  if (!Array.isArray(runFlat) || runFlat.length === 0) return undefined;
  const damage = new Damage(runId);
  let run: StoredRun;
  try {
    run = decodeFields(toMap(runFlat), Array.isArray(stepsFlat) ? stepsFlat : [], runId, damage);
  } catch (error) {
    // NOTE: the decoder checks every field it reads; this is the last line for what it did not foresee.
    run = placeholderRun(runId);
    damage.fields.add('run');
    damage.notes.push(`run ${JSON.stringify(runId)}: ${message(error)}`);
  }
  if (damage.notes.length > 0) run.corrupt = damage.notes.join('; ');
  return { run, damaged: damage.fields };
}

/** {@link decodeSnapshot} without the field names. */
export function decodeRun(snapshot: Snapshot, runId: string): StoredRun | undefined {
  return decodeSnapshot(snapshot, runId)?.run;
}

/** A claimed run from a claim script's snapshot (never throws; see {@link decodeSnapshot}). */
export function decodeClaimed(snapshot: Snapshot, recovered: boolean, runId: string): ClaimedRun {
  const decoded = decodeSnapshot(snapshot, runId);
  if (!decoded) {
    // NOTE: a claim script returns the snapshot of the run it just leased; an empty one means a server-side bug.
    const run = placeholderRun(runId);
    run.corrupt = `run ${JSON.stringify(runId)}: the claim returned no fields`;
    return { ...run, leaseToken: '', recovered };
  }
  return { ...decoded.run, leaseToken: decoded.run.leaseToken ?? '', recovered };
}

function decodeFields(h: Map<string, string>, stepsFlat: string[], runId: string, damage: Damage): StoredRun {
  const timeField = (name: string): Date | undefined => {
    const value = h.get(name);
    if (value === undefined) return undefined;
    const date = INTEGER.test(value) ? new Date(Number(value)) : undefined;
    if (date && Number.isFinite(date.getTime())) return date;
    damage.field(name, `not a time in ms: ${JSON.stringify(value.slice(0, 40))}`);
    return undefined;
  };
  const stringField = (name: string): string => {
    const value = h.get(name);
    if (value !== undefined) return value;
    damage.field(name, 'missing');
    return '';
  };

  const id = h.get('id');
  if (id !== runId) damage.field('id', id === undefined ? 'missing' : `names another run: ${JSON.stringify(id.slice(0, 80))}`);
  const workflow = stringField('wf');
  const input = stringField('in');
  const state = stringField('state');

  let version = 0;
  const ver = h.get('ver');
  if (ver !== undefined && ver.trim() !== '' && Number.isFinite(Number(ver))) version = Number(ver);
  else damage.field('ver', ver === undefined ? 'missing' : `not a number: ${JSON.stringify(ver.slice(0, 40))}`);

  let status = PARKED_STATUS;
  const st = h.get('st');
  if (st !== undefined && STATUS_SET.has(st)) status = st as RunStatus;
  else damage.field('st', st === undefined ? 'missing' : `not a status: ${JSON.stringify(st.slice(0, 40))} (the run is parked)`);

  let pauseRequested = false;
  const pr = h.get('pr');
  if (pr === '1') pauseRequested = true;
  else if (pr !== undefined && pr !== '0') damage.field('pr', `not 0 or 1: ${JSON.stringify(pr.slice(0, 40))}`);

  let generation = 1;
  const gen = h.get('gen');
  if (gen !== undefined) {
    if (INTEGER.test(gen) && Number(gen) >= 1) generation = Number(gen);
    else damage.field('gen', `not a generation: ${JSON.stringify(gen.slice(0, 40))}`);
  }

  const createdAt = timeField('ca');
  const updatedAt = timeField('ua');
  if (!h.has('ca')) damage.field('ca', 'missing');
  if (!h.has('ua')) damage.field('ua', 'missing');

  const steps: { index: number; step: StoredStep }[] = [];
  const stepMap = toMap(stepsFlat);
  for (const [index, text] of stepMap) {
    if (!/^\d{1,9}$/.test(index)) {
      damage.step(JSON.stringify(index.slice(0, 40)), 'not a step index (left out)');
      continue;
    }
    steps.push({ index: Number(index), step: decodeStep(text, index, damage) });
  }
  steps.sort((a, b) => a.index - b.index);

  let priority = 0;
  const pri = h.get('pri');
  if (pri !== undefined) {
    if (INTEGER.test(pri) && Number.isSafeInteger(Number(pri))) priority = Number(pri);
    else damage.field('pri', `not a priority: ${JSON.stringify(pri.slice(0, 40))}`);
  }

  const run: StoredRun = {
    runId,
    workflow,
    version,
    priority,
    status,
    input,
    steps: steps.map((entry) => entry.step),
    state,
    pauseRequested,
    // NOTE: a damaged creation or update time falls back on the other one (then on the epoch), so the run still sorts.
    createdAt: createdAt ?? updatedAt ?? new Date(0),
    updatedAt: updatedAt ?? createdAt ?? new Date(0),
    generation,
  };
  const output = h.get('out');
  if (output !== undefined) run.output = output;
  const error = h.get('err');
  if (error !== undefined) {
    const decoded = decodeError(error, damage);
    if (decoded) run.error = decoded;
  }
  const currentStep = h.get('cur');
  if (currentStep !== undefined) run.currentStep = currentStep;
  const pipeline = h.get('pl');
  if (pipeline !== undefined) run.pipeline = pipeline;
  const nextInput = h.get('ni');
  if (nextInput !== undefined) run.nextInput = nextInput;
  const nextInputSignal = h.get('nis');
  if (nextInputSignal !== undefined) run.nextInputSignal = nextInputSignal;
  const waitSignals = decodeWaitSignals(h.get('wn'), h.get('ws'), damage);
  if (waitSignals !== undefined) run.waitSignals = waitSignals;
  const waitUntil = timeField('wu');
  if (waitUntil) run.waitUntil = waitUntil;
  const resumeStatus = h.get('rs');
  if (resumeStatus !== undefined) {
    if (STATUS_SET.has(resumeStatus)) run.resumeStatus = resumeStatus as RunStatus;
    else damage.field('rs', `not a status: ${JSON.stringify(resumeStatus.slice(0, 40))}`);
  }
  const cancel = h.get('cr');
  if (cancel !== undefined) {
    // NOTE: the scripts take any value but `0` as a cancel with compensation; so does the decoder.
    run.cancelRequested = { compensate: cancel !== '0' };
    if (cancel !== '0' && cancel !== '1') damage.field('cr', `not 0 or 1: ${JSON.stringify(cancel.slice(0, 40))}`);
  }
  const dueAt = timeField('due');
  if (dueAt) run.dueAt = dueAt;
  const leaseOwner = h.get('lo');
  if (leaseOwner !== undefined) run.leaseOwner = leaseOwner;
  const leaseToken = h.get('lt');
  if (leaseToken !== undefined) run.leaseToken = leaseToken;
  const leaseExpiresAt = timeField('le');
  if (leaseExpiresAt) run.leaseExpiresAt = leaseExpiresAt;
  const finishedAt = timeField('fa');
  if (finishedAt) run.finishedAt = finishedAt;
  const parentRunId = h.get('par');
  if (parentRunId !== undefined) run.parentRunId = parentRunId;
  const children = decodeChildren(h, damage);
  if (children) run.children = children;
  const concurrency = h.get('cc');
  if (concurrency !== undefined) {
    const spec = decodeConcurrency(concurrency, damage);
    if (spec) run.concurrency = spec;
  }
  const rateLimit = h.get('rl');
  if (rateLimit !== undefined) {
    const spec = decodeRateLimit(rateLimit, damage);
    if (spec) run.rateLimit = spec;
  }
  const slotHeld = h.get('sh');
  if (slotHeld === '1') run.slotHeld = true;
  else if (slotHeld !== undefined) damage.field('sh', `not 1: ${JSON.stringify(slotHeld.slice(0, 40))}`);
  return run;
}

/** `waitSignals` from `wn` (JSON array of names) or, as written by earlier releases, `ws` (one name). */
function decodeWaitSignals(wn: string | undefined, ws: string | undefined, damage: Damage): string[] | undefined {
  if (wn === undefined) return ws === undefined ? undefined : [ws];
  try {
    const names: unknown = JSON.parse(wn);
    if (Array.isArray(names) && names.every((name) => typeof name === 'string')) return names as string[];
  } catch {
    // reported below
  }
  damage.field('wn', `not a JSON array of names: ${JSON.stringify(wn.slice(0, 40))}`);
  return [];
}

/** A count field of the children state (`ce`, `cwe`): an integer. */
function countField(h: Map<string, string>, name: string, damage: Damage): number | undefined {
  const value = h.get(name);
  if (value === undefined) return undefined;
  if (INTEGER.test(value)) return Number(value);
  damage.field(name, `not a count: ${JSON.stringify(value.slice(0, 40))}`);
  return 0;
}

/** `children` from `ce`, `cf`, `cwe`, `cwf` (absent without `ce`). */
function decodeChildren(h: Map<string, string>, damage: Damage): ChildrenState | undefined {
  const ended = countField(h, 'ce', damage);
  if (ended === undefined) return undefined;
  const children: ChildrenState = { ended, failed: h.get('cf') === '1' };
  const endedAtLeast = countField(h, 'cwe', damage);
  if (endedAtLeast !== undefined) children.wait = { endedAtLeast, failFast: h.get('cwf') === '1' };
  return children;
}

/**
 * A {@link RunOutcome} from the fields `getRunOutcomes` reads (`HMGET st out err par due ce`), or undefined for a run
 * that does not exist. A damaged status is read as {@link PARKED_STATUS}, a damaged error or count is left out.
 */
export function decodeOutcome(runId: string, fields: readonly (string | null)[]): RunOutcome | undefined {
  const [st, out, err, par, due, ce] = fields;
  if (typeof st !== 'string') return undefined;
  const status = STATUS_SET.has(st) ? (st as RunStatus) : PARKED_STATUS;
  const outcome: RunOutcome = { runId, status, held: status === 'pending' && typeof due !== 'string' };
  if (typeof out === 'string') outcome.output = out;
  if (typeof err === 'string') {
    const error = decodeError(err, new Damage(runId));
    if (error) outcome.error = error;
  }
  if (typeof par === 'string') outcome.parentRunId = par;
  if (typeof ce === 'string' && INTEGER.test(ce)) outcome.childrenEnded = Number(ce);
  return outcome;
}
