import fc from 'fast-check';
import { RUN_STATUSES, TERMINAL_STATUSES } from '../../src/store/run-state-machine.js';
import type { RunStatus, StepStatus } from '../../src/store/workflow-store.interface.js';
import { RUN_HISTORY_LIMIT } from '../../src/store/workflow-store.interface.js';

/**
 * The operations of the model-based differential test (store-model.spec.ts), as plain data so that fast-check prints a
 * failing sequence readably and can shrink it. Everything refers to small pools by index: run ids, workflow names,
 * (workflow, version) pairs of claim filters, lease owners, signal names. Values that depend on the state of the run
 * (a lease token, the index of a step entry) are symbolic and resolved when the op runs (see model-runner.ts).
 *
 * History: `createRun`, `commit`, `sendSignal` and `control` carry history events now and then (bodies name the op
 * and the event's place in it, see model-runner.ts); now and then a commit writes enough of them to take a run up to
 * {@link RUN_HISTORY_LIMIT} or past it, so trimming is compared too. `listEvents`, `listSignals`, `countRuns` and
 * `listRuns` by creation time are ops of their own, and the final state compares them for every run.
 *
 * Signal waits on one name or on both (`also`), signals with deduplication ids (a small pool, so ids repeat), child
 * runs (`children` commits spawning ids of the same pool, so new, linked, ended and foreign children all occur, held
 * ones and releases), `restart` (continue-as-new) and `getRunOutcomes` (an op of its own, and in the final state, with
 * `listRuns` by `parentRunId`).
 *
 * Not generated, on purpose: what the port leaves undefined or the engine never sends (a commit to status `pending`
 * or `paused`, `wait` together with a status, step indexes that leave a gap or repeat within one patch, negative
 * durations, an empty `events` array, a `listEvents` limit below 1), caller transactions, concurrency, damaged data,
 * store events (`subscribe`/`publish`).
 */

/**
 * Run ids: few, so that operations keep meeting the same runs. One id and one workflow name carry characters that
 * key names, hash tags or SQL could mishandle.
 */
export const RUN_IDS = ['r1', 'r2', "r3 {x}:'é"] as const;
export const WORKFLOWS = ['wfA', 'wf:B {b}'] as const;
export const OWNERS = ['owner-a', 'owner-b'] as const;
/** Versions of runs (`createRun`) and of claim filters. */
export const VERSIONS = [1, 2] as const;
/**
 * The (workflow, version) pairs a claim filter picks from, by index: every workflow of {@link WORKFLOWS} at every
 * version of {@link VERSIONS} (index = workflow index × versions + version index).
 */
export const WORKFLOW_REFS: readonly { workflow: string; version: number }[] = WORKFLOWS.flatMap((workflow) =>
  VERSIONS.map((version) => ({ workflow, version })),
);
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
  /** The step's latest heartbeat: its instant (an offset, as above) and, when given, which details text it carries. */
  heartbeat?: { at: number; details?: number };
}

/** A child run of a `children` commit: its id by index in {@link RUN_IDS}, its workflow, held or due, with an event. */
export interface ChildSpec {
  run: number;
  wf: number;
  held: boolean;
  events?: true;
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
  /** `also`: wait on both names (this one first, then the other). */
  | { kind: 'wait'; signal: number; also?: true; timeout?: 0 | 60_000; steps: StepWrite[]; state?: number }
  /**
   * Rule 8: spawn children (ids of the run pool, so existing ids occur), release held ones, wait or go on.
   * `endedAtLeast` is the run's `children.ended` in the reference just before the commit (0 when it has none) plus
   * `more` (as the engine asks: k more ends than the counter it read), or, with `stale`, `more` alone (a counter read
   * long ago, or a first wait).
   */
  | { kind: 'children'; spawn: ChildSpec[]; release: number[]; more: 0 | 1 | 2; stale?: true; failFast: boolean }
  /** `restart` (continue-as-new) with a new input, and the first step entry of the new round. */
  | { kind: 'restart'; input: number; steps: StepWrite[]; state?: number }
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
  /**
   * The engine's heartbeat write while a step runs: the last step entry (entry 0 when there is none) as `running`
   * with a heartbeat, `keepInput` and `midStep` (a pending pause waits for the step's end).
   */
  | { kind: 'heartbeat'; name: number; attempts: number; at: number; details?: number }
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

/** `retry` with `nextInput`: the payload of a skip (the request's `nextInput`), by number. */
export type ControlRequestSpec =
  | { action: 'pause' }
  | { action: 'resume' }
  | { action: 'cancel'; compensate: boolean }
  | { action: 'retry'; nextInput?: number };
/**
 * A control request, or `fitting`: one that fits the run's state in the reference (resume or cancel a paused run or
 * one with a pause request, retry a failed one, else pause or cancel: `pick` chooses), so that those paths are
 * reached often.
 */
export type ControlSpec = ControlRequestSpec | { action: 'fitting'; pick: number };

/**
 * A signal name by index, or `waited`: the names the run waits for in the reference (else the first name); a signal
 * sent to `waited` goes to the last of them.
 */
export type SignalRef = number | 'waited';
/** The names `takeSignal` asks for: one, the run's (`waited`), or `both`. */
export type TakeRef = SignalRef | 'both';

/**
 * How many history events an op writes: a few, or `near` ({@link RUN_HISTORY_LIMIT} − 2) and `over` (the limit + 3),
 * so that a run reaches the limit and crosses it (the oldest events are then trimmed, `seq` numbers on).
 */
export type EventCount = 1 | 2 | 3 | 'near' | 'over';

export function eventCount(n: EventCount): number {
  return n === 'near' ? RUN_HISTORY_LIMIT - 2 : n === 'over' ? RUN_HISTORY_LIMIT + 3 : n;
}

/**
 * A `createdFrom` / `createdTo` bound of `listRuns`, from a run's `createdAt` as each store stamped it with its own
 * clock: `exact` is that `createdAt` itself (the bound's inclusive/exclusive edge); `before` / `after` lie in the gap
 * between the op that created the run and the op before / after it, so they split the runs the same way in every
 * store. A run the reference does not have stands for the next id of the pool it has (none: a far future bound). The
 * run is looked up without becoming the `same` run.
 */
export interface CreatedBound {
  run: RunRef;
  at: 'before' | 'exact' | 'after';
}

/**
 * `afterSeq` of `listEvents`, resolved against the run's history in the reference: `zero` + offset, the first kept
 * `seq` − 1 + offset (after a trim, below it), or the last `seq` − offset (never below 0).
 */
export interface AfterSeqSpec {
  from: 'zero' | 'first' | 'last';
  offset: 0 | 1 | 2 | 3;
}

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
      /** `NewRun.events`. */
      events?: 1 | 2;
    }
  /** `workflows`: a claim filter, as indexes in {@link WORKFLOW_REFS}. */
  | { op: 'claimRuns'; owner: number; span: Span; limit: number; workflows?: number[] }
  | { op: 'claimRun'; run: RunRef; owner: number; span: Span; workflows?: number[] }
  /** `claimOwnedRuns` (optional in the port): the limit is 0 or above the pool, as the order among them is unspecified. */
  | { op: 'claimOwned'; owner: number; span: Span; limit: 0 | 10; workflows?: number[] }
  /** `events`, `keepInput`, `midStep`: the patch's fields of those names, on top of what `patch` builds. */
  | { op: 'commit'; run: RunRef; token: TokenRef; span: Span; patch: PatchSpec; events?: EventCount; keepInput?: true; midStep?: true }
  | { op: 'renew'; run: RunRef; token: TokenRef; span: Span }
  | { op: 'release'; run: RunRef; token: TokenRef }
  | { op: 'take'; run: RunRef; token: TokenRef; signal: TakeRef }
  /** `event`: with a history event (appended only when the outcome is `ok`). */
  /** `id`: a deduplication id from a small pool (`sendSignal`'s `options.id`). */
  | { op: 'send'; run: RunRef; signal: SignalRef; payload: number; event?: true; id?: number }
  /** `getRunOutcomes` of some ids of the pool (no repeats), and an unknown id when `missing`. */
  | { op: 'outcomes'; runs: number[]; missing: boolean }
  | { op: 'control'; run: RunRef; request: ControlSpec; event?: true }
  | { op: 'list'; wf?: number; statuses?: RunStatus[]; limit: number; after?: RunRef; from?: CreatedBound; to?: CreatedBound; parent?: number }
  /** `listEvents`; `limit: 'all'` reads the whole history (more than the limit). */
  | { op: 'events'; run: RunRef; after?: AfterSeqSpec; limit: 1 | 2 | 3 | 'all' }
  | { op: 'count'; wf?: number }
  | { op: 'signals'; run: RunRef }
  | { op: 'purge'; statuses: RunStatus[]; olderThanMs: 0 | 60_000 }
  | { op: 'get'; run: RunRef };

// ---------------------------------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------------------------------

/** `fc.record` making plain objects only (fast-check makes some with a null prototype, printed `__proto__:null`). */
const record = ((model: Record<string, fc.Arbitrary<unknown>>, constraints?: object) =>
  fc.record(model, { ...constraints, noNullPrototype: true })) as typeof fc.record;

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
const takeRef: fc.Arbitrary<TakeRef> = fc.oneof(signalIndex, fc.constant('waited' as const), fc.constant('both' as const));
/** Deduplication ids of `sendSignal`: few, so that they repeat. */
export const SIGNAL_IDS = ['id-0', 'id-1', "id {2}:'"] as const;
const signalId = fc.integer({ min: 0, max: SIGNAL_IDS.length - 1 });
const span: fc.Arbitrary<Span> = fc.oneof({ arbitrary: fc.constant('long' as const), weight: 3 }, { arbitrary: fc.constant('short' as const), weight: 1 });
const tokenRef: fc.Arbitrary<TokenRef> = fc.oneof(
  { arbitrary: fc.constant('latest' as const), weight: 8 },
  { arbitrary: fc.constant('stale' as const), weight: 1 },
  { arbitrary: fc.constant('bogus' as const), weight: 1 },
);
/** A claim filter: none, or some (workflow, version) pairs (the empty list too), by index in WORKFLOW_REFS. */
const workflowFilter = fc.option(fc.subarray(WORKFLOW_REFS.map((_, i) => i)), { nil: undefined, freq: 2 });

/** `arb`'s value with probability `p`, else undefined (what it shrinks to). */
const sometimes = <T>(arb: fc.Arbitrary<T>, p: number): fc.Arbitrary<T | undefined> =>
  fc.oneof(
    { withCrossShrink: true },
    { arbitrary: fc.constant(undefined), weight: Math.round((1 - p) * 100) },
    { arbitrary: arb, weight: Math.round(p * 100) },
  );

const heartbeatSpec = record(
  { at: fc.integer({ min: 0, max: 19 }), details: fc.integer({ min: 0, max: 9 }) },
  { requiredKeys: ['at'] },
);

const stepSpec: fc.Arbitrary<StepSpec> = record(
  {
    name: fc.integer({ min: 0, max: 2 }),
    status: fc.constantFrom<StepStatus>('running', 'running', 'completed', 'failed', 'compensated'),
    attempts: fc.integer({ min: 0, max: 3 }),
    output: fc.boolean(),
    error: fc.boolean(),
    startedAt: fc.integer({ min: 0, max: 9 }),
    finishedAt: fc.integer({ min: 10, max: 19 }),
    heartbeat: sometimes(heartbeatSpec, 0.3),
  },
  { requiredKeys: ['name', 'status', 'attempts', 'output', 'error', 'heartbeat'] },
);
const stepWrite: fc.Arbitrary<StepWrite> = record({
  slot: fc.constantFrom<StepSlot>('append', 'append', 'last', 'first'),
  step: stepSpec,
});
const stepWrites = (min: number, max: number) => fc.array(stepWrite, { minLength: min, maxLength: max });

const heartbeatPatch = record(
  {
    kind: fc.constant('heartbeat' as const),
    name: fc.integer({ min: 0, max: 2 }),
    attempts: fc.integer({ min: 0, max: 3 }),
    at: fc.integer({ min: 0, max: 19 }),
    details: fc.integer({ min: 0, max: 9 }),
  },
  { requiredKeys: ['kind', 'name', 'attempts', 'at'] },
);

/** History events of a commit: mostly none, a few, rarely enough to reach or cross the limit. */
const commitEvents: fc.Arbitrary<EventCount | undefined> = fc.oneof(
  { withCrossShrink: true },
  { arbitrary: fc.constant(undefined), weight: 45 },
  { arbitrary: fc.constantFrom<EventCount>(1, 1, 2, 3), weight: 50 },
  { arbitrary: fc.constantFrom<EventCount>('near', 'over'), weight: 5 },
);
const flag = (p: number) => sometimes(fc.constant(true as const), p);

const childSpec: fc.Arbitrary<ChildSpec> = record(
  { run: runIndex, wf: wfIndex, held: fc.boolean(), events: fc.constant(true as const) },
  { requiredKeys: ['run', 'wf', 'held'] },
);

/** A `children` commit: a few spawns (often none), releases of pool ids, a wait for a few more ends (or none). */
function childrenPatch(): fc.Arbitrary<Extract<PatchSpec, { kind: 'children' }>> {
  return record({
    kind: fc.constant('children' as const),
    spawn: fc.array(childSpec, { maxLength: 2 }),
    release: fc.subarray(RUN_IDS.map((_, i) => i), { maxLength: 2 }),
    more: fc.constantFrom(0 as const, 1 as const, 1 as const, 2 as const),
    stale: flag(0.2),
    failFast: fc.boolean(),
  });
}

const outcomesOp: fc.Arbitrary<Op> = record({
  op: fc.constant('outcomes' as const),
  runs: fc.subarray(RUN_IDS.map((_, i) => i)),
  missing: fc.boolean(),
});

const patchSpec: fc.Arbitrary<PatchSpec> = fc.oneof(
  {
    weight: 5,
    arbitrary: record(
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
    arbitrary: record(
      {
        kind: fc.constant('wait' as const),
        signal: signalIndex,
        also: fc.constant(true as const),
        timeout: fc.constantFrom(0 as const, 60_000 as const),
        steps: stepWrites(0, 1),
        state: fc.integer({ min: 0, max: 9 }),
      },
      { requiredKeys: ['kind', 'signal', 'steps'] },
    ),
  },
  { weight: 3, arbitrary: childrenPatch() },
  {
    weight: 1,
    arbitrary: record(
      { kind: fc.constant('restart' as const), input: fc.integer({ min: 0, max: 9 }), steps: stepWrites(0, 1), state: fc.integer({ min: 0, max: 9 }) },
      { requiredKeys: ['kind', 'input', 'steps'] },
    ),
  },
  {
    weight: 3,
    arbitrary: record(
      {
        kind: fc.constant('sleep' as const),
        due: fc.oneof(
          record({ delayMs: fc.constantFrom(0 as const, 60_000 as const) }),
          record({ at: fc.constantFrom('past' as const, 'future' as const) }),
        ),
        state: fc.integer({ min: 0, max: 9 }),
      },
      { requiredKeys: ['kind', 'due'] },
    ),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'park' as const }) },
  {
    weight: 4,
    arbitrary: record(
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
    arbitrary: record(
      {
        kind: fc.constant('mixed' as const),
        status: fc.constantFrom('running' as const, 'sleeping' as const, 'waiting' as const, 'compensating' as const, 'completed' as const, 'failed' as const),
        due: fc.oneof(
          fc.constant(null),
          record({ delayMs: fc.constantFrom(0 as const, 60_000 as const) }),
          record({ at: fc.constantFrom('past' as const, 'future' as const) }),
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
    arbitrary: record(
      { kind: fc.constant('clearCancel' as const), status: fc.constantFrom('compensating' as const, 'cancelled' as const) },
      { requiredKeys: ['kind'] },
    ),
  },
  { weight: 2, arbitrary: heartbeatPatch },
);

const controlSpec: fc.Arbitrary<ControlSpec> = fc.oneof(
  fc.constant({ action: 'pause' as const }),
  fc.constant({ action: 'resume' as const }),
  record({ action: fc.constant('cancel' as const), compensate: fc.boolean() }),
  record({ action: fc.constant('retry' as const), nextInput: fc.integer({ min: 0, max: 9 }) }, { requiredKeys: ['action'] }),
  { arbitrary: record({ action: fc.constant('fitting' as const), pick: fc.integer({ min: 0, max: 5 }) }), weight: 4 },
);

const createOp: fc.Arbitrary<Op> = record({
  op: fc.constant('create' as const),
  run: runIndex,
  wf: wfIndex,
  conflict: fc.constantFrom('keep' as const, 'keep' as const, 'replace' as const),
  lease: sometimes(record({ owner: ownerIndex, span }), 0.6),
  version: fc.constantFrom(...VERSIONS),
  firstStep: fc.boolean(),
  input: fc.integer({ min: 0, max: 9 }),
  events: sometimes(fc.constantFrom(1 as const, 2 as const), 0.6),
});

const createdBound: fc.Arbitrary<CreatedBound> = record({
  run: fc.oneof(runIndex, fc.constant('same' as const), fc.constant('claimed' as const)),
  at: fc.constantFrom('before' as const, 'exact' as const, 'after' as const),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 7, arbitrary: createOp },
  {
    weight: 4,
    arbitrary: record({
      op: fc.constant('claimRuns' as const),
      owner: ownerIndex,
      span,
      limit: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 4 }), weight: 9 }, { arbitrary: fc.constant(0), weight: 1 }),
      workflows: workflowFilter,
    }),
  },
  {
    weight: 3,
    arbitrary: record({ op: fc.constant('claimRun' as const), run: anyRun, owner: ownerIndex, span, workflows: workflowFilter }),
  },
  {
    weight: 2,
    arbitrary: record({
      op: fc.constant('claimOwned' as const),
      owner: ownerIndex,
      span,
      limit: fc.constantFrom(10 as const, 10 as const, 10 as const, 0 as const),
      workflows: workflowFilter,
    }),
  },
  {
    weight: 12,
    arbitrary: record({
      op: fc.constant('commit' as const),
      run: leasedRun,
      token: tokenRef,
      span,
      patch: patchSpec,
      events: commitEvents,
      keepInput: flag(0.2),
      midStep: flag(0.1),
    }),
  },
  { weight: 2, arbitrary: record({ op: fc.constant('renew' as const), run: leasedRun, token: tokenRef, span }) },
  { weight: 2, arbitrary: record({ op: fc.constant('release' as const), run: leasedRun, token: tokenRef }) },
  { weight: 3, arbitrary: record({ op: fc.constant('take' as const), run: leasedRun, token: tokenRef, signal: takeRef }) },
  {
    weight: 3,
    arbitrary: record({
      op: fc.constant('send' as const),
      run: anyRun,
      signal: signalRef,
      payload: fc.integer({ min: 0, max: 99 }),
      event: flag(0.6),
      id: sometimes(signalId, 0.4),
    }),
  },
  { weight: 2, arbitrary: outcomesOp },
  { weight: 5, arbitrary: record({ op: fc.constant('control' as const), run: anyRun, request: controlSpec, event: flag(0.6) }) },
  {
    weight: 3,
    arbitrary: record({
      op: fc.constant('list' as const),
      wf: sometimes(wfIndex, 0.4),
      statuses: sometimes(fc.subarray([...ALL_STATUSES], { minLength: 0, maxLength: 4 }), 0.4),
      limit: fc.integer({ min: 1, max: 4 }),
      after: sometimes(anyRun, 0.3),
      from: sometimes(createdBound, 0.3),
      to: sometimes(createdBound, 0.3),
      parent: sometimes(runIndex, 0.3),
    }),
  },
  {
    weight: 2,
    arbitrary: record({
      op: fc.constant('events' as const),
      run: anyRun,
      after: sometimes(
        record({ from: fc.constantFrom('zero' as const, 'first' as const, 'last' as const), offset: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const) }),
        0.6,
      ),
      limit: fc.constantFrom(1 as const, 2 as const, 3 as const, 'all' as const, 'all' as const),
    }),
  },
  { weight: 1, arbitrary: record({ op: fc.constant('count' as const), wf: sometimes(wfIndex, 0.5) }) },
  { weight: 1, arbitrary: record({ op: fc.constant('signals' as const), run: anyRun }) },
  {
    weight: 2,
    arbitrary: record({
      op: fc.constant('purge' as const),
      statuses: fc.subarray([...TERMINAL, 'running' as RunStatus], { minLength: 1 }),
      olderThanMs: fc.constantFrom(0 as const, 60_000 as const),
    }),
  },
  { weight: 1, arbitrary: record({ op: fc.constant('get' as const), run: anyRun }) },
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
  record({ signal: signalIndex, payload: fc.integer({ min: 0, max: 99 }), owner: ownerIndex }).map(({ signal, payload, owner }): Op[] => [
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
  record({ signal: signalIndex, payload: fc.integer({ min: 0, max: 99 }) }).map(({ signal, payload }): Op[] => [
    { op: 'send', run: 'claimed', signal, payload },
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'wait', signal, steps: [] } },
  ]),
  // pause a leased run, which pauses at its next commit; resume it; claim it again
  record({ steps: stepWrites(1, 1), owner: ownerIndex }).map(({ steps, owner }): Op[] => [
    { op: 'control', run: 'claimed', request: { action: 'pause' } },
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'checkpoint', steps } },
    { op: 'control', run: 'same', request: { action: 'resume' } },
    { op: 'claimRun', run: 'same', owner, span: 'long' },
  ]),
  // fail, retry (or skip the failed step: retry with nextInput), claim again
  fc
    .record({ error: fc.integer({ min: 0, max: 9 }), owner: ownerIndex, nextInput: sometimes(fc.integer({ min: 0, max: 9 }), 0.5), event: flag(0.5) })
    .map(({ error, owner, nextInput, event }): Op[] => [
      { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'terminal', status: 'failed', error, clearCancel: false, steps: [] } },
      { op: 'control', run: 'same', request: { action: 'retry', nextInput }, event },
      { op: 'claimRun', run: 'same', owner, span: 'long' },
    ]),
  // a pause requested while a step runs waits for the step's end: a heartbeat (midStep) leaves it pending, the next
  // checkpoint applies it
  {
    weight: 2,
    arbitrary: record({ beat: heartbeatPatch, steps: stepWrites(1, 1), events: commitEvents }).map(({ beat, steps, events }): Op[] => [
      { op: 'control', run: 'claimed', request: { action: 'pause' }, event: true },
      { op: 'commit', ...latestClaimed, span: 'long', patch: beat, events },
      { op: 'get', run: 'same' },
      { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'checkpoint', steps }, events: 1 },
    ]),
  },
  // a signal's payload handed to a step survives a released retry (keepInput): the next claimer gets it
  fc
    .record({ signal: signalIndex, payload: fc.integer({ min: 0, max: 99 }), owner: ownerIndex, steps: stepWrites(0, 1), beat: fc.boolean() })
    .map(({ signal, payload, owner, steps, beat }): Op[] => [
      { op: 'send', run: 'claimed', signal, payload, event: true },
      { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'wait', signal, steps: [] }, events: 1 },
      ...(beat ? [{ op: 'commit' as const, ...latestClaimed, span: 'long' as const, patch: { kind: 'heartbeat' as const, name: 0, attempts: 1, at: 5, details: 1 } }] : []),
      { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'mixed', due: { delayMs: 0 }, release: true, steps }, keepInput: true, events: 1 },
      { op: 'claimRun', run: 'same', owner, span: 'long' },
    ]),
  // a history reaching the limit and crossing it, read in pages
  {
    weight: 2,
    arbitrary: record({
      big: fc.constantFrom<EventCount>('near', 'over'),
      more: fc.constantFrom<EventCount>(1, 2, 3),
      steps: stepWrites(1, 1),
      offset: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const),
      limit: fc.constantFrom(1 as const, 2 as const, 3 as const),
    }).map(({ big, more, steps, offset, limit }): Op[] => [
      { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'checkpoint', steps }, events: big },
      { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'checkpoint', steps }, events: more },
      { op: 'events', run: 'same', after: { from: 'zero', offset }, limit },
      { op: 'events', run: 'same', after: { from: 'first', offset }, limit },
    ]),
  },
  // runs listed by creation time
  {
    weight: 2,
    arbitrary: record({
      first: createOp,
      second: createOp,
      from: sometimes(createdBound, 0.6),
      to: sometimes(createdBound, 0.6),
      wf: sometimes(wfIndex, 0.3),
    }).map(({ first, second, from, to, wf }): Op[] => [first, second, { op: 'list', limit: 4, wf, from, to }]),
  },
  // signals of both names queued and listed, one consumed by a wait, listed again
  record({
    sends: fc.array(record({ signal: signalIndex, payload: fc.integer({ min: 0, max: 99 }) }), { minLength: 2, maxLength: 4 }),
    wait: signalIndex,
    event: flag(0.5),
  }).map(({ sends, wait, event }): Op[] => [
    ...sends.map(({ signal, payload }): Op => ({ op: 'send', run: 'claimed', signal, payload, event })),
    { op: 'signals', run: 'same' },
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'wait', signal: wait, steps: [] } },
    { op: 'signals', run: 'same' },
  ]),
  // cancel a leased run: the holder sees it, compensates or ends it
  record({ compensate: fc.boolean(), end: fc.constantFrom('compensating' as const, 'cancelled' as const) }).map(({ compensate, end }): Op[] => [
    { op: 'control', run: 'claimed', request: { action: 'cancel', compensate } },
    { op: 'renew', ...latestClaimed, span: 'long' },
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'clearCancel', status: end } },
  ]),
  // wait on both names; a signal of the last one wakes it; claimed, it takes whichever was sent first
  record({ signal: signalIndex, payload: fc.integer({ min: 0, max: 99 }), owner: ownerIndex, first: fc.boolean() }).map(({ signal, payload, owner, first }): Op[] => [
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'wait', signal, also: true, steps: [] } },
    ...(first ? [{ op: 'send' as const, run: 'same' as const, signal, payload: payload + 1 }] : []),
    { op: 'send', run: 'same', signal: 'waited', payload },
    { op: 'claimRun', run: 'same', owner, span: 'long' },
    { op: 'take', ...latestClaimed, signal: 'waited' },
  ]),
  // signals with ids: a repeat is a noop, also once the first was consumed
  record({ signal: signalIndex, id: signalId, payload: fc.integer({ min: 0, max: 99 }), event: flag(0.5) }).map(({ signal, id, payload, event }): Op[] => [
    { op: 'send', run: 'claimed', signal, payload, id, event },
    { op: 'send', run: 'same', signal, payload: payload + 1, id, event },
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'wait', signal, steps: [] } },
    { op: 'send', run: 'same', signal, payload: payload + 2, id, event },
    { op: 'signals', run: 'same' },
  ]),
  // a parent spawns children and waits; they are claimed, one ends; the parent's view of them; whoever is due runs
  {
    weight: 3,
    arbitrary: record({
      children: childrenPatch(),
      owner: ownerIndex,
      end: fc.constantFrom('completed' as const, 'failed' as const, 'cancelled' as const),
      output: fc.integer({ min: 0, max: 9 }),
    }).map(({ children, owner, end, output }): Op[] => [
      { op: 'commit', ...latestClaimed, span: 'long', patch: children },
      { op: 'outcomes', runs: [0, 1, 2], missing: false },
      { op: 'claimRuns', owner, span: 'long', limit: 4 },
      { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'terminal', status: end, output, clearCancel: false, steps: [] } },
      { op: 'outcomes', runs: [0, 1, 2], missing: true },
      { op: 'claimRuns', owner, span: 'long', limit: 4 },
    ]),
  },
  // continue-as-new, with queued signals and used ids kept
  record({ input: fc.integer({ min: 0, max: 9 }), steps: stepWrites(0, 1), id: signalId, signal: signalIndex }).map(({ input, steps, id, signal }): Op[] => [
    { op: 'send', run: 'claimed', signal, payload: 1, id },
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'restart', input, steps }, events: 1 },
    { op: 'send', run: 'same', signal, payload: 2, id },
    { op: 'get', run: 'same' },
  ]),
  // sleep, wake, be claimed by whoever polls
  record({ due: fc.constantFrom<DueChoice>({ delayMs: 0 }, { at: 'past' }, { delayMs: 60_000 }), owner: ownerIndex }).map(({ due, owner }): Op[] => [
    { op: 'commit', ...latestClaimed, span: 'long', patch: { kind: 'sleep', due } },
    { op: 'claimRuns', owner, span: 'long', limit: 2 },
  ]),
);

/**
 * A sequence of up to `maxLength` operations: one to three createRun first (so that the rest has runs to work on),
 * then single ops and the odd motif.
 *
 * Longer sequences are filtered out rather than cut: a cut sequence does not shrink (removing an op shifts the next op
 * past the cut into view, so the length stays at `maxLength` while fast-check tries thousands of candidates).
 */
export function opSequence(maxLength: number): fc.Arbitrary<Op[]> {
  const chunk = fc.oneof({ arbitrary: opArb.map((op) => [op]), weight: 6 }, { arbitrary: motif, weight: 1 });
  return fc
    .tuple(fc.array(createOp, { minLength: 1, maxLength: 3 }), fc.array(chunk, { maxLength: maxLength - 3, size: 'max' }))
    .map(([creates, rest]) => [...creates, ...rest.flat()])
    .filter((ops) => ops.length <= maxLength);
}
