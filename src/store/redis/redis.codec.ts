import type { RunErrorInfo } from '../../errors/errors.js';
import type { ClaimedRun, RunStatus, StepStatus, StoredRun, StoredStep } from '../workflow-store.interface.js';

/** A run's index record as the scripts return it: runId, exists, iv, workflow, status, createdAt, claimAt, finishedAt. */
export type IndexRecord = [string, string, string, string, string, string, string, string];

/** `[run hash fields (flat), step hash fields (flat)]` as the scripts return them. */
export type Snapshot = [string[], string[]];

interface StepJson {
  name: string;
  status: StepStatus;
  attempts: number;
  output?: string;
  startedAt?: number;
  finishedAt?: number;
  error?: string;
}

function time(date: Date | undefined): number | undefined {
  if (date === undefined) return undefined;
  const ms = date instanceof Date ? date.getTime() : new Date(date).getTime();
  return Number.isFinite(ms) ? ms : undefined;
}

export function encodeStep(step: StoredStep): string {
  const json: StepJson = { name: step.name, status: step.status, attempts: step.attempts };
  if (step.output !== undefined) json.output = step.output;
  const startedAt = time(step.startedAt);
  if (startedAt !== undefined) json.startedAt = startedAt;
  const finishedAt = time(step.finishedAt);
  if (finishedAt !== undefined) json.finishedAt = finishedAt;
  if (step.error !== undefined) json.error = step.error;
  return JSON.stringify(json);
}

function decodeStep(text: string): StoredStep {
  const json = JSON.parse(text) as StepJson;
  const step: StoredStep = { name: json.name, status: json.status, attempts: json.attempts };
  if (json.output !== undefined) step.output = json.output;
  if (json.startedAt !== undefined) step.startedAt = new Date(json.startedAt);
  if (json.finishedAt !== undefined) step.finishedAt = new Date(json.finishedAt);
  if (json.error !== undefined) step.error = json.error;
  return step;
}

function toMap(flat: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(flat[i], flat[i + 1]);
  return map;
}

function date(value: string | undefined): Date | undefined {
  return value === undefined ? undefined : new Date(Number(value));
}

/** Builds a StoredRun from a script snapshot; undefined when the run hash is empty. */
export function decodeRun(snapshot: Snapshot): StoredRun | undefined {
  const [runFlat, stepsFlat] = snapshot;
  if (!runFlat || runFlat.length === 0) return undefined;
  const h = toMap(runFlat);
  const steps = [...toMap(stepsFlat ?? []).entries()]
    .map(([index, text]) => ({ index: Number(index), step: decodeStep(text) }))
    .sort((a, b) => a.index - b.index)
    .map((entry) => entry.step);
  const run: StoredRun = {
    runId: h.get('id')!,
    workflow: h.get('wf')!,
    version: Number(h.get('ver')),
    status: h.get('st') as RunStatus,
    input: h.get('in')!,
    steps,
    state: h.get('state')!,
    pauseRequested: h.get('pr') === '1',
    createdAt: new Date(Number(h.get('ca'))),
    updatedAt: new Date(Number(h.get('ua'))),
  };
  const output = h.get('out');
  if (output !== undefined) run.output = output;
  const error = h.get('err');
  if (error !== undefined) run.error = JSON.parse(error) as RunErrorInfo;
  const currentStep = h.get('cur');
  if (currentStep !== undefined) run.currentStep = currentStep;
  const nextInput = h.get('ni');
  if (nextInput !== undefined) run.nextInput = nextInput;
  const waitSignal = h.get('ws');
  if (waitSignal !== undefined) run.waitSignal = waitSignal;
  const waitUntil = date(h.get('wu'));
  if (waitUntil) run.waitUntil = waitUntil;
  const resumeStatus = h.get('rs');
  if (resumeStatus !== undefined) run.resumeStatus = resumeStatus as RunStatus;
  const cancel = h.get('cr');
  if (cancel !== undefined) run.cancelRequested = { compensate: cancel === '1' };
  const dueAt = date(h.get('due'));
  if (dueAt) run.dueAt = dueAt;
  const leaseOwner = h.get('lo');
  if (leaseOwner !== undefined) run.leaseOwner = leaseOwner;
  const leaseToken = h.get('lt');
  if (leaseToken !== undefined) run.leaseToken = leaseToken;
  const leaseExpiresAt = date(h.get('le'));
  if (leaseExpiresAt) run.leaseExpiresAt = leaseExpiresAt;
  const finishedAt = date(h.get('fa'));
  if (finishedAt) run.finishedAt = finishedAt;
  return run;
}

export function decodeClaimed(snapshot: Snapshot, recovered: boolean): ClaimedRun {
  const run = decodeRun(snapshot)!;
  return { ...run, leaseToken: run.leaseToken!, recovered };
}

/** Serializes a run error for the hash. */
export function encodeError(error: RunErrorInfo): string {
  const json: RunErrorInfo = { name: error.name, message: error.message };
  if (error.step !== undefined) json.step = error.step;
  if (error.phase !== undefined) json.phase = error.phase;
  return JSON.stringify(json);
}
