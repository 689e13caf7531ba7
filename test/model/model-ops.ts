import fc from 'fast-check';
import { RUN_STATUSES, TERMINAL_STATUSES } from '../../src/store/run-state-machine.js';
import type { RunStatus, StepStatus } from '../../src/store/workflow-store.interface.js';

/**
 * The operations of the model-based differential test (store-model.spec.ts), as plain data so that fast-check prints a
 * failing sequence readably and can shrink it. Everything refers to small pools by index: run ids, workflow names,
 * lease owners, signal names. Values that depend on the state of the run (a lease token, the index of a step entry)
 * are symbolic and resolved when the op runs (see model-runner.ts).
 *
 * Not generated, on purpose: what the port leaves undefined or the engine never sends (a commit to status `pending`
 * or `paused`, `wait` together with a status, step indexes that leave a gap or repeat within one patch, negative
 * durations), caller transactions, concurrency, damaged data, events.
 */

/**
 * Run ids: few, so that operations keep meeting the same runs. One id and one workflow name carry characters that
 * key names, hash tags or SQL could mishandle.
 */
export const RUN_IDS = ['r1', 'r2', "r3 {x}:'é"] as const;
export const WORKFLOWS = ['wfA', 'wf:B {b}'] as const;
export const OWNERS = ['owner-a', 'owner-b'] as const;
export const SIGNALS = ['go', 'stop'] as const;

export const ALL_STATUSES: readonly RunStatus[] = RUN_STATUSES;
export const TERMINAL: readonly RunStatus[] = TERMINAL_STATUSES;

/**
 * A lease or timeout length. `short` is 1 ms: the runner leaves at least a few ms between operations, so such a lease
 * has expired (and such a timeout has passed) by the next operation, in every store. `long` is 60 s: never reached
 * during a sequence. Nothing is ever near a race window.
 */
export type Span = 'short' | 'long';

/**
 * A run: by index in {@link RUN_IDS}; `claimed`: the run of the latest claim; `same`: the run the previous op on a run
 * concerned (both r1 when there is none). They make pairs like pause/resume, fail/retry, wait/signal/take likely.
 */
export type RunRef = number | 'claimed' | 'same';

/** Which lease token an operation presents. */
export type TokenRef =
  | 'latest' // the token of the run's latest claim (createRun with a lease, claimRun, claimRuns)
  | 'stale' // the token of the claim before that one
  | 'bogus'; // a token no store ever issued

export interface StepSpec {
  name: number;
  status: StepStatus;
  attempts: number;
  output: boolean;
  error: boolean;
  /** Offsets (seconds) of fixed client-supplied instants, stored verbatim. */
  startedAt?: number;
  finishedAt?: number;
}

/** Where a step entry of a patch goes, resolved against the run's current steps. */
export type StepSlot = 'append' | 'last' | 'first';

export interface StepWrite {
  slot: StepSlot;
  step: StepSpec;
}

export type DueChoice = { delayMs: 0 | 60_000 } | { at: 'past' | 'future' };

export type PatchSpec =
  | {
      kind: 'checkpoint';
      steps: StepWrite[];
      state?: number;
      currentStep?: number | null;
      status?: 'running' | 'compensating';
    }
  | { kind: 'wait'; signal: number; timeout?: 0 | 60_000; steps: StepWrite[]; state?: number }
  | { kind: 'sleep'; due: DueChoice; state?: number }
  | { kind: 'park' }
  | {
      kind: 'terminal';
      status: 'completed' | 'failed' | 'cancelled' | 'compensated';
      output?: number | null;
      error?: number | null;
      clearCancel: boolean;
      steps: StepWrite[];
    }
  | { kind: 'release' }
  | { kind: 'clearCancel'; status?: 'compensating' | 'cancelled' }
  /** Any combination of the fields (no wait): the port's rules define them all, in the order they give. */
  | {
      kind: 'mixed';
      status?: 'running' | 'sleeping' | 'waiting' | 'compensating' | 'completed' | 'failed';
      due?: DueChoice | null;
      release?: boolean;
      clearCancel?: boolean;
      state?: number;
      currentStep?: number | null;
      output?: number | null;
      error?: number | null;
      steps: StepWrite[];
    };

export type ControlRequestSpec = { action: 'pause' } | { action: 'resume' } | { action: 'cancel'; compensate: boolean } | { action: 'retry' };
/**
 * A control request, or `fitting`: one that fits the run's state in the reference (resume or cancel a paused run or
 * one with a pause request, retry a failed one, else pause or cancel: `pick` chooses), so that those paths are
 * reached often.
 */
export type ControlSpec = ControlRequestSpec | { action: 'fitting'; pick: number };

/** A signal name by index, or `waited`: the name the run waits for in the reference (else the first name). */
export type SignalRef = number | 'waited';

export type Op =
  | {
      op: 'create';
      run: number;
      wf: number;
      conflict: 'keep' | 'replace';
      lease?: { owner: number; span: Span };
      version: number;
      firstStep: boolean;
      input: number;
    }
  | { op: 'claimRuns'; owner: number; span: Span; limit: number; workflows?: number[] }
  | { op: 'claimRun'; run: RunRef; owner: number; span: Span; workflows?: number[] }
  /** `claimOwnedRuns` (optional in the port): the limit is 0 or above the pool, as the order among them is unspecified. */
  | { op: 'claimOwned'; owner: number; span: Span; limit: 0 | 10; workflows?: number[] }
  | { op: 'commit'; run: RunRef; token: TokenRef; span: Span; patch: PatchSpec }
  | { op: 'renew'; run: RunRef; token: TokenRef; span: Span }
  | { op: 'release'; run: RunRef; token: TokenRef }
  | { op: 'take'; run: RunRef; token: TokenRef; signal: SignalRef }
  | { op: 'send'; run: RunRef; signal: SignalRef; payload: number }
  | { op: 'control'; run: RunRef; request: ControlSpec }
  | { op: 'list'; wf?: number; statuses?: RunStatus[]; limit: number; after?: RunRef }
  | { op: 'purge'; statuses: RunStatus[]; olderThanMs: 0 | 60_000 }
  | { op: 'get'; run: RunRef };

// ---------------------------------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------------------------------

const runIndex = fc.integer({ min: 0, max: RUN_IDS.length - 1 });
/** Operations on a lease mostly go to the run just claimed, so that most of them are not simply fenced off. */
const leasedRun: fc.Arbitrary<RunRef> = fc.oneof(
  { arbitrary: fc.constant('claimed' as const), weight: 4 },
  { arbitrary: fc.constant('same' as const), weight: 2 },
  { arbitrary: runIndex, weight: 2 },
);
const anyRun: fc.Arbitrary<RunRef> = fc.oneof(
  { arbitrary: fc.constant('claimed' as const), weight: 2 },
  { arbitrary: fc.constant('same' as const), weight: 3 },
  { arbitrary: runIndex, weight: 3 },
);
const wfIndex = fc.integer({ min: 0, max: WORKFLOWS.length - 1 });
const ownerIndex = fc.integer({ min: 0, max: OWNERS.length - 1 });
const signalIndex = fc.integer({ min: 0, max: SIGNALS.length - 1 });
const signalRef: fc.Arbitrary<SignalRef> = fc.oneof(signalIndex, fc.constant('waited' as const));
const span: fc.Arbitrary<Span> = fc.oneof({ arbitrary: fc.constant('long' as const), weight: 3 }, { arbitrary: fc.constant('short' as const), weight: 1 });
const tokenRef: fc.Arbitrary<TokenRef> = fc.oneof(
  { arbitrary: fc.constant('latest' as const), weight: 8 },
  { arbitrary: fc.constant('stale' as const), weight: 1 },
  { arbitrary: fc.constant('bogus' as const), weight: 1 },
);
const workflowFilter = fc.option(
  fc.constantFrom<number[]>([], [0], [1], [0, 1]),
  { nil: undefined, freq: 2 },
);

const stepSpec: fc.Arbitrary<StepSpec> = fc.record(
  {
    name: fc.integer({ min: 0, max: 2 }),
    status: fc.constantFrom<StepStatus>('running', 'running', 'completed', 'failed', 'compensated'),
    attempts: fc.integer({ min: 0, max: 3 }),
    output: fc.boolean(),
    error: fc.boolean(),
    startedAt: fc.integer({ min: 0, max: 9 }),
    finishedAt: fc.integer({ min: 10, max: 19 }),
  },
  { requiredKeys: ['name', 'status', 'attempts', 'output', 'error'] },
);
const stepWrite: fc.Arbitrary<StepWrite> = fc.record({
  slot: fc.constantFrom<StepSlot>('append', 'append', 'last', 'first'),
  step: stepSpec,
});
const stepWrites = (min: number, max: number) => fc.array(stepWrite, { minLength: min, maxLength: max });

const patchSpec: fc.Arbitrary<PatchSpec> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record(
      {
        kind: fc.constant('checkpoint' as const),
        steps: stepWrites(1, 2),
        state: fc.integer({ min: 0, max: 9 }),
        currentStep: fc.option(fc.integer({ min: 0, max: 2 }), { nil: null }),
        status: fc.constantFrom('running' as const, 'compensating' as const),
      },
      { requiredKeys: ['kind', 'steps'] },
    ),
  },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        kind: fc.constant('wait' as const),
        signal: signalIndex,
        timeout: fc.constantFrom(0 as const, 60_000 as const),
        steps: stepWrites(0, 1),
        state: fc.integer({ min: 0, max: 9 }),
      },
      { requiredKeys: ['kind', 'signal', 'steps'] },
    ),
  },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        kind: fc.constant('sleep' as const),
        due: fc.oneof(
          fc.record({ delayMs: fc.constantFrom(0 as const, 60_000 as const) }),
          fc.record({ at: fc.constantFrom('past' as const, 'future' as const) }),
        ),
        state: fc.integer({ min: 0, max: 9 }),
      },
      { requiredKeys: ['kind', 'due'] },
    ),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'park' as const }) },
  {
    weight: 4,
    arbitrary: fc.record(
      {
        kind: fc.constant('terminal' as const),
        status: fc.constantFrom('completed' as const, 'failed' as const, 'cancelled' as const, 'compensated' as const),
        output: fc.option(fc.integer({ min: 0, max: 9 }), { nil: null }),
        error: fc.option(fc.integer({ min: 0, max: 9 }), { nil: null }),
        clearCancel: fc.boolean(),
        steps: stepWrites(0, 1),
      },
      { requiredKeys: ['kind', 'status', 'clearCancel', 'steps'] },
    ),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'release' as const }) },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        kind: fc.constant('mixed' as const),
        status: fc.constantFrom('running' as const, 'sleeping' as const, 'waiting' as const, 'compensating' as const, 'completed' as const, 'failed' as const),
        due: fc.oneof(
          fc.constant(null),
          fc.record({ delayMs: fc.constantFrom(0 as const, 60_000 as const) }),
          fc.record({ at: fc.constantFrom('past' as const, 'future' as const) }),
        ),
        release: fc.boolean(),
        clearCancel: fc.boolean(),
        state: fc.integer({ min: 0, max: 9 }),
        currentStep: fc.option(fc.integer({ min: 0, max: 2 }), { nil: null }),
        output: fc.option(fc.integer({ min: 0, max: 9 }), { nil: null }),
        error: fc.option(fc.integer({ min: 0, max: 9 }), { nil: null }),
        steps: stepWrites(0, 2),
      },
      { requiredKeys: ['kind', 'steps'] },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record(
      { kind: fc.constant('clearCancel' as const), status: fc.constantFrom('compensating' as const, 'cancelled' as const) },
      { requiredKeys: ['kind'] },
    ),
  },
);

const controlSpec: fc.Arbitrary<ControlSpec> = fc.oneof(
  fc.constant({ action: 'pause' as const }),
  fc.constant({ action: 'resume' as const }),
  fc.record({ action: fc.constant('cancel' as const), compensate: fc.boolean() }),
  fc.constant({ action: 'retry' as const }),
  { arbitrary: fc.record({ action: fc.constant('fitting' as const), pick: fc.integer({ min: 0, max: 5 }) }), weight: 4 },
);

/** `arb`'s value with probability `p`, else undefined. */
const sometimes = <T>(arb: fc.Arbitrary<T>, p: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: arb, weight: Math.round(p * 100) }, { arbitrary: fc.constant(undefined), weight: Math.round((1 - p) * 100) });

const createOp: fc.Arbitrary<Op> = fc.record({
  op: fc.constant('create' as const),
  run: runIndex,
  wf: wfIndex,
  conflict: fc.constantFrom('keep' as const, 'keep' as const, 'replace' as const),
  lease: sometimes(fc.record({ owner: ownerIndex, span }), 0.6),
  version: fc.integer({ min: 1, max: 2 }),
  firstStep: fc.boolean(),
  input: fc.integer({ min: 0, max: 9 }),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 7, arbitrary: createOp },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('claimRuns' as const),
      owner: ownerIndex,
      span,
      limit: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 4 }), weight: 9 }, { arbitrary: fc.constant(0), weight: 1 }),
      workflows: workflowFilter,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('claimRun' as const), run: anyRun, owner: ownerIndex, span, workflows: workflowFilter }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('claimOwned' as const),
      owner: ownerIndex,
      span,
      limit: fc.constantFrom(10 as const, 10 as const, 10 as const, 0 as const),
      workflows: workflowFilter,
    }),
  },
  { weight: 12, arbitrary: fc.record({ op: fc.constant('commit' as const), run: leasedRun, token: tokenRef, span, patch: patchSpec }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('renew' as const), run: leasedRun, token: tokenRef, span }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('release' as const), run: leasedRun, token: tokenRef }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('take' as const), run: leasedRun, token: tokenRef, signal: signalRef }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('send' as const), run: anyRun, signal: signalRef, payload: fc.integer({ min: 0, max: 99 }) }),
  },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('control' as const), run: anyRun, request: controlSpec }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('list' as const),
      wf: sometimes(wfIndex, 0.4),
      statuses: sometimes(fc.subarray([...ALL_STATUSES], { minLength: 0, maxLength: 4 }), 0.4),
      limit: fc.integer({ min: 1, max: 4 }),
      after: sometimes(anyRun, 0.3),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('purge' as const),
      statuses: fc.subarray([...TERMINAL, 'running' as RunStatus], { minLength: 1 }),
      olderThanMs: fc.constantFrom(0 as const, 60_000 as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('get' as const), run: anyRun }) },
);

/**
 * Short runs of ops that follow the engine's common paths, so that a bounded budget reaches them often: each is a
 * few ordinary ops (the sequence is still any interleaving of ops; these only make some orders likely).
 */
const latestClaimed = { run: 'claimed' as const, token: 'latest' as const };
const motif: fc.Arbitrary<Op[]> = fc.oneof(
  // wait for a signal (or the timeout), get it, be claimed again, take it (or time out)
  fc
    .record({
      signal: signalIndex,
      timeout: fc.constantFrom(undefined, 0 as const, 0 as const, 60_000 as const),
      send: fc.boolean(),
      payload: fc.integer({ min: 0, max: 99 }),
      owner: ownerIndex,
      span,
    })
    .map(({ signal, timeout, send, payload, owner, span: s }): Op[] => [
      { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'wait', signal, ...(timeout === undefined ? {} : { timeout }), steps: [] } },
      ...(send ? [{ op: 'send' as const, run: 'same' as const, signal: 'waited' as const, payload }] : []),
      { op: 'claimRun', run: 'same', owner, span: s },
      { op: 'take', ...latestClaimed, signal: 'waited' },
    ]),
  // a waiting run paused, signalled while paused, resumed: it is due, and gets the signal
  fc.record({ signal: signalIndex, payload: fc.integer({ min: 0, max: 99 }), owner: ownerIndex }).map(({ signal, payload, owner }): Op[] => [
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'wait', signal, steps: [] } },
    { op: 'control', run: 'same', request: { action: 'pause' } },
    { op: 'send', run: 'same', signal: 'waited', payload },
    { op: 'control', run: 'same', request: { action: 'resume' } },
    { op: 'claimRun', run: 'same', owner, span: 'long' },
    { op: 'take', ...latestClaimed, signal: 'waited' },
  ]),
  // end a run, purge what has ended
  fc
    .record({
      status: fc.constantFrom('completed' as const, 'failed' as const, 'cancelled' as const, 'compensated' as const),
      output: fc.integer({ min: 0, max: 9 }),
      statuses: fc.oneof(fc.constant<RunStatus[]>([...TERMINAL]), fc.subarray<RunStatus>([...TERMINAL], { minLength: 1 })),
      olderThanMs: fc.constantFrom(0 as const, 60_000 as const),
    })
    .map(({ status, output, statuses, olderThanMs }): Op[] => [
      { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'terminal', status, output, clearCancel: false, steps: [] } },
      { op: 'purge', statuses, olderThanMs },
    ]),
  // a signal queued before the wait is consumed by the wait itself
  fc.record({ signal: signalIndex, payload: fc.integer({ min: 0, max: 99 }) }).map(({ signal, payload }): Op[] => [
    { op: 'send', run: 'claimed', signal, payload },
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'wait', signal, steps: [] } },
  ]),
  // pause a leased run, which pauses at its next commit; resume it; claim it again
  fc.record({ steps: stepWrites(1, 1), owner: ownerIndex }).map(({ steps, owner }): Op[] => [
    { op: 'control', run: 'claimed', request: { action: 'pause' } },
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'checkpoint', steps } },
    { op: 'control', run: 'same', request: { action: 'resume' } },
    { op: 'claimRun', run: 'same', owner, span: 'long' },
  ]),
  // fail, retry, claim again
  fc.record({ error: fc.integer({ min: 0, max: 9 }), owner: ownerIndex }).map(({ error, owner }): Op[] => [
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'terminal', status: 'failed', error, clearCancel: false, steps: [] } },
    { op: 'control', run: 'same', request: { action: 'retry' } },
    { op: 'claimRun', run: 'same', owner, span: 'long' },
  ]),
  // cancel a leased run: the holder sees it, compensates or ends it
  fc.record({ compensate: fc.boolean(), end: fc.constantFrom('compensating' as const, 'cancelled' as const) }).map(({ compensate, end }): Op[] => [
    { op: 'control', run: 'claimed', request: { action: 'cancel', compensate } },
    { op: 'renew', ...latestClaimed, span: 'long' },
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'clearCancel', status: end } },
  ]),
  // sleep, wake, be claimed by whoever polls
  fc.record({ due: fc.constantFrom<DueChoice>({ delayMs: 0 }, { at: 'past' }, { delayMs: 60_000 }), owner: ownerIndex }).map(({ due, owner }): Op[] => [
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'sleep', due } },
    { op: 'claimRuns', owner, span: 'long', limit: 2 },
  ]),
);

/**
 * A sequence of up to `maxLength` operations: one to three createRun first (so that the rest has runs to work on),
 * then single ops and the odd motif.
 */
export function opSequence(maxLength: number): fc.Arbitrary<Op[]> {
  const chunk = fc.oneof({ arbitrary: opArb.map((op) => [op]), weight: 6 }, { arbitrary: motif, weight: 1 });
  return fc
    .tuple(fc.array(createOp, { minLength: 1, maxLength: 3 }), fc.array(chunk, { maxLength: maxLength - 3, size: 'max' }))
    .map(([creates, rest]) => [...creates, ...rest.flat()].slice(0, maxLength));
}
