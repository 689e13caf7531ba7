import type { RunErrorInfo } from '../../errors/errors.js';
import { InvalidArgumentError } from '../../errors/errors.js';
import type { RunPatch, RunStatus } from '../workflow-store.interface.js';
import { encodeError, encodeStep, integerArg } from './redis.codec.js';

/**
 * The operations of the commit script (`lua/commit.lua`): each op's wire code and how many arguments follow it. The
 * table is rendered into every script as `OP` (name → code) and `ARITY` (code → count), see `redis.lua-definitions.ts`,
 * so the script's parser and the encoders below read the same definition.
 */
export const COMMIT_OPS = {
  /**
   * `RunPatch.restart` (continue-as-new), first of the ops: deletes the step visits, sets `in`, deletes `ni`, `nis` and
   * the children fields, and raises `gen` by one. Argument: the new input.
   */
  restart: { code: 'rst', arity: 1 },
  /** Sets `st`. Argument: the status. */
  setStatus: { code: 'st', arity: 1 },
  /** Sets `state`. Argument: the engine's state (JSON). */
  setState: { code: 'state', arity: 1 },
  /** Sets `cur`. Argument: the step name. */
  setCurrentStep: { code: 'cur', arity: 1 },
  /** Deletes `cur`. */
  clearCurrentStep: { code: 'cur-', arity: 0 },
  /** Sets `out`. Argument: the serialized output. */
  setOutput: { code: 'out', arity: 1 },
  /** Deletes `out`. */
  clearOutput: { code: 'out-', arity: 0 },
  /** Sets `err`. Argument: the error record (JSON). */
  setError: { code: 'err', arity: 1 },
  /** Deletes `err`. */
  clearError: { code: 'err-', arity: 0 },
  /** Writes one step visit. Arguments: the step index (integer), the step (JSON). */
  putStep: { code: 'step', arity: 2 },
  /** Sets `due` to the store clock plus a delay. Argument: the delay in ms (integer). */
  dueIn: { code: 'due', arity: 1 },
  /** Sets `due` to an instant. Argument: epoch ms (integer). */
  dueAt: { code: 'dueat', arity: 1 },
  /** Deletes `due` (not due). */
  clearDue: { code: 'due-', arity: 0 },
  /** Waits for signals. Arguments: the names (JSON array, stored as `wn`), the timeout in ms (integer, `''` for none). */
  wait: { code: 'wait', arity: 2 },
  /**
   * `RunPatch.children` (rule 8 c-e). Arguments: how many spawn entries step 1 found ended (added to `ce`, the
   * monotonic count of ended children), `endedAtLeast` (stored as `cwe` while waiting), `failFast` (`1`/`0`), the
   * recheck interval in ms (the waiting parent's `due`).
   */
  children: { code: 'ch', arity: 4 },
  /** Adds a child to the run's children list (`ListRunsQuery.parentRunId`). Arguments: the child id, its createdAt (ms). */
  childLink: { code: 'chl', arity: 2 },
  /** Releases the lease. */
  release: { code: 'rel', arity: 0 },
  /** Clears the cancel request. */
  clearCancel: { code: 'cc', arity: 0 },
  /** Leaves `ni` (the next input) and `nis` (its signal's name) as they are; every other commit deletes them. */
  keepInput: { code: 'ki', arity: 0 },
  /** A write while a step runs (`RunPatch.midStep`): a pending pause is left for the step's end (rule 5). */
  midStep: { code: 'mid', arity: 0 },
  /**
   * Appends one event to the run's history (`redis.keys.ts`), after those of the ops before it. Argument: the body
   * (stored verbatim).
   */
  appendEvent: { code: 'ev', arity: 1 },
  /**
   * When this commit leaves the run in a terminal status, sets every key of the run to expire (`PEXPIRE`) after the
   * store's `ttl`. Argument: the ttl in ms (positive integer). Ignored when the run does not end.
   */
  expireOnEnd: { code: 'ttl', arity: 1 },
} as const;

/** Name of a commit operation. */
export type CommitOpName = keyof typeof COMMIT_OPS;

/** Wire code of a commit operation. */
export type CommitOpCode = (typeof COMMIT_OPS)[CommitOpName]['code'];

type Args<N extends number> = N extends 0
  ? []
  : N extends 1
    ? [string]
    : N extends 2
      ? [string, string]
      : N extends 4
        ? [string, string, string, string]
        : never;

/** One encoded operation: its code, then exactly as many arguments as the table says. */
export type EncodedCommitOp<K extends CommitOpName = CommitOpName> = K extends CommitOpName
  ? readonly [(typeof COMMIT_OPS)[K]['code'], ...Args<(typeof COMMIT_OPS)[K]['arity']>]
  : never;

function op<K extends CommitOpName>(name: K, ...args: Args<(typeof COMMIT_OPS)[K]['arity']>): EncodedCommitOp<K> {
  return [COMMIT_OPS[name].code, ...args] as unknown as EncodedCommitOp<K>;
}

/** One encoder per commit operation: the only way the store builds the commit script's arguments. */
export const encodeCommitOp = {
  setStatus: (status: RunStatus) => op('setStatus', status),
  setState: (state: string) => op('setState', state),
  setCurrentStep: (step: string) => op('setCurrentStep', step),
  clearCurrentStep: () => op('clearCurrentStep'),
  setOutput: (output: string) => op('setOutput', output),
  clearOutput: () => op('clearOutput'),
  setError: (error: RunErrorInfo) => op('setError', encodeError(error)),
  clearError: () => op('clearError'),
  putStep: (index: number, step: Parameters<typeof encodeStep>[0]) => op('putStep', String(index), encodeStep(step)),
  dueIn: (delayMs: number) => op('dueIn', integerArg('A delay', delayMs)),
  dueAt: (at: Date) => op('dueAt', integerArg('A wake-up time', new Date(at).getTime())),
  clearDue: () => op('clearDue'),
  wait: (signals: readonly string[], timeoutMs: number | undefined) =>
    op('wait', JSON.stringify(signals.map(String)), timeoutMs === undefined ? '' : integerArg('A signal timeout', timeoutMs)),
  restart: (input: string) => op('restart', input),
  children: (endedNow: number, endedAtLeast: number, failFast: boolean, recheckMs: number) =>
    op(
      'children',
      integerArg('The ended spawn entries', endedNow),
      integerArg('children.endedAtLeast', endedAtLeast),
      failFast ? '1' : '0',
      integerArg('The child recheck interval', recheckMs),
    ),
  childLink: (childId: string, createdAt: string) => op('childLink', childId, createdAt),
  release: () => op('release'),
  clearCancel: () => op('clearCancel'),
  keepInput: () => op('keepInput'),
  midStep: () => op('midStep'),
  appendEvent: (body: string) => op('appendEvent', body),
  expireOnEnd: (ttlMs: number) => op('expireOnEnd', integerArg('The ttl', ttlMs)),
} satisfies { [K in CommitOpName]: (...args: never[]) => EncodedCommitOp<K> };

/**
 * The commit script's operations for a patch, in the order the script applies them (a restart first, then fields,
 * steps, due, wait, then the lease, cancel, input and mid-step flags, then the history events in order). `leaseMs` is
 * not an op: it is a fixed argument of the script. A patch without events has no event op, so its commit does no
 * history work at all. `children` is not encoded here: the store adds its ops (`children`, `childLink`) once the
 * children are created (see `RedisStore.commit`).
 * @throws InvalidArgumentError for a step index that is not a non-negative integer, or a time that is not finite
 */
export function encodePatch(patch: RunPatch): string[] {
  const ops: EncodedCommitOp[] = [];
  if (patch.restart !== undefined) {
    if (typeof patch.restart?.input !== 'string') throw new InvalidArgumentError('restart.input must be a string.');
    ops.push(encodeCommitOp.restart(patch.restart.input));
  }
  if (patch.status !== undefined) ops.push(encodeCommitOp.setStatus(patch.status));
  if (patch.state !== undefined) ops.push(encodeCommitOp.setState(patch.state));
  if (patch.currentStep !== undefined) {
    ops.push(patch.currentStep === null ? encodeCommitOp.clearCurrentStep() : encodeCommitOp.setCurrentStep(patch.currentStep));
  }
  if (patch.output !== undefined) ops.push(patch.output === null ? encodeCommitOp.clearOutput() : encodeCommitOp.setOutput(patch.output));
  if (patch.error !== undefined) ops.push(patch.error === null ? encodeCommitOp.clearError() : encodeCommitOp.setError(patch.error));
  for (const { index, step } of patch.steps ?? []) {
    if (!Number.isInteger(index) || index < 0) throw new InvalidArgumentError(`Step index must be a non-negative integer, got ${index}.`);
    ops.push(encodeCommitOp.putStep(index, step));
  }
  if (patch.due !== undefined) {
    if (patch.due === null) ops.push(encodeCommitOp.clearDue());
    else if ('at' in patch.due) ops.push(encodeCommitOp.dueAt(patch.due.at));
    else ops.push(encodeCommitOp.dueIn(patch.due.delayMs));
  }
  if (patch.wait) {
    const signals = patch.wait.signals;
    if (!Array.isArray(signals) || !signals.every((name) => typeof name === 'string')) {
      throw new InvalidArgumentError('wait.signals must be an array of signal names.');
    }
    ops.push(encodeCommitOp.wait(signals, patch.wait.timeoutMs));
  }
  if (patch.release) ops.push(encodeCommitOp.release());
  if (patch.clearCancel) ops.push(encodeCommitOp.clearCancel());
  if (patch.keepInput) ops.push(encodeCommitOp.keepInput());
  if (patch.midStep) ops.push(encodeCommitOp.midStep());
  for (const body of patch.events ?? []) {
    if (typeof body !== 'string') throw new InvalidArgumentError(`A history event must be a string, got ${typeof body}.`);
    ops.push(encodeCommitOp.appendEvent(body));
  }
  return ops.flat();
}
