import type { RunErrorInfo } from '../errors/errors.js';
import type { RunEventType } from '../engine/run-history.js';
import type { RunStatus, StepStatus } from '../store/workflow-store.interface.js';
import type { ValueNode } from './value-tree.js';

/**
 * The shapes the dashboard's JSON API answers with (dates as ISO strings once serialized). The pages render the same
 * objects.
 */

/** A value after `redact`, as a tree; `ref` names it for the "show all" route when it was cut. */
export interface ShownValue {
  tree: ValueNode;
  truncated: boolean;
  /** Pass to `GET <path>/api/runs/:runId/value?ref=` for the whole value. */
  ref?: string;
}

/** The runs list's filter, validated. */
export interface RunsFilter {
  workflow?: string;
  statuses?: RunStatus[];
  createdFrom?: Date;
  createdTo?: Date;
  /** An exact run id. */
  runId?: string;
  /** Only the child runs of this run (`?parent=`). */
  parentRunId?: string;
  limit: number;
  cursor?: string;
  /** The browser's `getTimezoneOffset()` the time range was entered in (to show it back). */
  tzOffset?: number;
}

/** A run in the list: no values, the start of its error message. */
export interface RunSummary {
  runId: string;
  workflow: string;
  version: number;
  status: RunStatus;
  currentStep?: string;
  createdAt: Date;
  updatedAt: Date;
  finishedAt?: Date;
  /** The run whose step started this one. */
  parentRunId?: string;
  /** The run's error: its name and the start of its message (after `redact`). */
  error?: { name: string; message: string; step?: string };
}

/** A page of the runs list. */
export interface RunsPage {
  runs: RunSummary[];
  /** The next page's cursor. */
  cursor?: string;
  /** Runs per status, of the filter's workflow (every status listed, 0 included). */
  counts: Record<RunStatus, number>;
}

/** One attempt of a step or compensation, from the history. */
export interface AttemptView {
  kind: 'step' | 'compensation';
  step: string;
  attempt?: number;
  outcome: 'completed' | 'failed';
  startedAt?: Date;
  endedAt: Date;
  durationMs?: number;
  error?: { name: string; message: ShownValue };
  /** Position on the run's time axis, in percent. */
  left?: number;
  width?: number;
}

/** One step visit on the run page. */
export interface StepView {
  index: number;
  name: string;
  status: StepStatus;
  attempts: number;
  startedAt?: Date;
  finishedAt?: Date;
  durationMs?: number;
  output?: ShownValue;
  error?: ShownValue;
  heartbeat?: { at: Date; details?: ShownValue };
  /** The attempts of this visit (and compensations of it) found in the history. */
  tries: AttemptView[];
}

/** A history event, its error message redacted. */
export interface HistoryEventView {
  seq: number;
  at: Date;
  type: RunEventType;
  step?: string;
  attempt?: number;
  durationMs?: number;
  error?: { name: string; message: ShownValue };
  instanceId?: string;
  detail?: unknown;
}

/** The operator actions a run allows in its status. */
export type OperatorAction = 'cancel' | 'pause' | 'resume' | 'retry' | 'signal' | 'skip' | 'fork';

/** Everything the run page shows. */
export interface RunDetail {
  runId: string;
  workflow: string;
  version: number;
  status: RunStatus;
  currentStep?: string;
  createdAt: Date;
  updatedAt: Date;
  finishedAt?: Date;
  input: ShownValue;
  output?: ShownValue;
  error?: Omit<RunErrorInfo, 'message'> & { message: ShownValue };
  steps: StepView[];
  history: HistoryEventView[];
  /** True when older events were dropped (a run keeps its newest 1,000). */
  historyTrimmed: boolean;
  signals: { name: string; payload: ShownValue }[];
  /** The signal the run waits for, when it waits for signals (the first name of a `Flow.waitForAny`). */
  waitingFor?: string;
  /** Every signal name the run waits for (one, or each name of a `Flow.waitForAny`). */
  waitingForSignals?: string[];
  /** How many child runs the run's current step started and waits for (`Flow.child`, `all`, `allSettled`). */
  waitingForChildren?: number;
  /** The run whose step started this one. */
  parentRunId?: string;
  /** How many runs have held this run id, from 1 (`Flow.continueAsNew` and `terminate-existing` add one). */
  generation: number;
  /** Flow control (see the README): claim order, the concurrency key, when the live run is due, what holds it back. */
  priority: number;
  concurrencyKey?: string;
  dueAt?: Date;
  blockedBy?: 'concurrency' | 'rate-limit';
  /** The run's child runs, newest first. */
  children: ChildrenView;
  /** Actions the run allows now (none in read-only mode). */
  actions: OperatorAction[];
  /** Steps a fork may start from. */
  forkSteps: string[];
}

/** The first child runs of a run (newest first), and whether it has more. */
export interface ChildrenView {
  /** At most 20 children (`CHILDREN_SHOWN`). */
  runs: RunSummary[];
  /** The run has more children than `runs` lists: see the runs list with `?parent=<runId>`. */
  more: boolean;
  /**
   * How many children the run's history says its steps started (`child.started` events), when it is known and at least
   * as many as are listed; absent when older events were dropped.
   */
  total?: number;
}

/** A step of a registered workflow, as the workflows page shows it. */
export interface StepDefinitionView {
  name: string;
  method: string;
  retry: { maxAttempts: number; backoff: 'fixed' | 'exponential'; delayMs: number; multiplier: number; maxDelayMs: number; jitter: boolean; retryIf: boolean };
  timeoutMs?: number;
  heartbeatTimeoutMs?: number;
  compensate?: string;
}

/** A registered workflow (one version) and the runs of its name per status. */
export interface WorkflowView {
  name: string;
  version: number;
  className: string;
  steps: StepDefinitionView[];
  counts: Record<RunStatus, number>;
}

/** What a bulk action would touch. */
export interface BulkPreview {
  action: 'cancel' | 'retry';
  count: number;
  /** More runs match than one bulk action takes ({@link BULK_LIMIT}). */
  capped: boolean;
}

/** What a bulk action did. */
export interface BulkResult {
  action: 'cancel' | 'retry';
  matched: number;
  done: number;
  /** Runs that changed meanwhile (ended, retried by someone else…). */
  skipped: number;
  failed: { runId: string; message: string }[];
}
