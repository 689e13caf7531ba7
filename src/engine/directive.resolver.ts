import { InvalidArgumentError, MaxTransitionsExceededError, WorkflowDefinitionError } from '../errors/errors.js';
import { parseDuration } from '../definition/duration.js';
import type { StepDefinition, WorkflowDefinition } from '../definition/workflow-definition.interface.js';
import type { DueSpec } from '../store/workflow-store.interface.js';
import { assertRunId, assertSignalName } from './argument-checks.js';
import { isFlowDirective, type ChildDirective } from './flow.js';

/** What a step's return value means for its run. */
export interface StepResolution {
  /** The step's recorded output (a directive's `value`, else the returned value). */
  value: unknown;
  /** `value` serialized. */
  output: string;
  /**
   * `next`: complete the step and start `next` (plain value, goto). `end`: the run completes with `output`.
   * `sleep` / `wait`: complete the step and suspend; `next` is the step after it (absent: the run then ends).
   * `children`: start child runs; the step completes with their outputs when they end (`value`/`output` unused).
   * `restart`: `Flow.continueAsNew`; `output` is the new generation's serialized input.
   */
  kind: 'next' | 'end' | 'sleep' | 'wait' | 'children' | 'restart';
  next?: StepDefinition;
  sleep?: { due: DueSpec; wakeInMs: number };
  /** `any`: `Flow.waitForAny` (the next step receives `{ signal, payload }`, and a timeout is not a failure). */
  wait?: { signals: string[]; timeoutMs?: number; any: boolean };
  children?: ChildrenRequest;
}

/** A validated `Flow.child` / `Flow.all` / `Flow.allSettled`. */
export interface ChildrenRequest {
  mode: 'child' | 'all' | 'allSettled';
  children: ChildDirective[];
  /** How many may be live at once (the number of children when unbounded). */
  concurrency: number;
}

/** What resolving needs besides the definition. */
export interface ResolveContext {
  runId: string;
  /** Step transitions of the run so far, and the bound. */
  transitions: number;
  maxTransitions: number;
  serialize(value: unknown): string;
  /** This worker's clock, only for the local wake-up timer of `Flow.sleep(date)`. */
  now(): number;
}

/**
 * Interprets what a step returned: a plain value or a flow directive. Pure apart from serializing; throws the error
 * that fails the step (SerializationError, PayloadTooLargeError, WorkflowDefinitionError for a goto to a missing step,
 * MaxTransitionsExceededError, InvalidArgumentError for a bad duration or signal name).
 */
export function resolveStepReturn(def: WorkflowDefinition, step: StepDefinition, returned: unknown, ctx: ResolveContext): StepResolution {
  const directive = isFlowDirective(returned) ? returned : undefined;
  if (directive?.kind === 'child' || directive?.kind === 'children') {
    const children = checkChildren(step.name, directive.kind === 'child' ? [directive] : directive.children);
    const mode = directive.kind === 'child' ? 'child' : directive.mode;
    const concurrency = directive.kind === 'children' && directive.concurrency !== undefined ? directive.concurrency : Math.max(1, children.length);
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new InvalidArgumentError(`Step "${step.name}" returned Flow.${mode} with concurrency ${String(concurrency)}: use a positive integer.`);
    }
    return { value: undefined, output: '', kind: 'children', next: def.steps[step.index + 1], children: { mode, children, concurrency } };
  }
  if (directive?.kind === 'continueAsNew') {
    return { value: directive.input, output: ctx.serialize(directive.input), kind: 'restart' };
  }
  const value = directive ? directive.value : returned;
  const output = ctx.serialize(value);
  let next: StepDefinition | undefined;
  if (!directive || directive.kind === 'wait' || directive.kind === 'waitAny' || directive.kind === 'sleep') next = def.steps[step.index + 1];
  if (directive?.kind === 'goto') {
    next = def.stepsByName.get(directive.step);
    if (!next) {
      throw new WorkflowDefinitionError(
        `Step "${step.name}" of workflow "${def.name}" returned Flow.goto("${directive.step}"), but there is no such step ` +
          `(steps: ${def.steps.map((s) => s.name).join(', ')}).`,
      );
    }
  }
  if (next && ctx.transitions + 1 > ctx.maxTransitions) {
    throw new MaxTransitionsExceededError(
      `Run "${ctx.runId}" exceeded ${ctx.maxTransitions} step transitions at step "${step.name}" (a Flow.goto loop that does not end?). ` +
        'Raise the maxTransitions option if the loop is intended.',
    );
  }
  if (directive?.kind === 'sleep') return { value, output, kind: 'sleep', next, sleep: sleepDue(directive.duration, step.name, ctx.now()) };
  if (directive?.kind === 'wait' || directive?.kind === 'waitAny') {
    const what = directive.kind === 'wait' ? 'Flow.waitForSignal' : 'Flow.waitForAny';
    let signals: string[];
    if (directive.kind === 'wait') signals = [directive.signal];
    else {
      if (!Array.isArray(directive.signals) || directive.signals.length === 0) {
        throw new InvalidArgumentError(`Step "${step.name}" returned Flow.waitForAny without signal names: pass a non-empty array of names.`);
      }
      signals = [...new Set(directive.signals)];
    }
    for (const name of signals) assertSignalName(name, `Step "${step.name}" returned ${what}: the signal name`);
    let timeoutMs: number | undefined;
    if (directive.timeout !== undefined) {
      timeoutMs = parseDuration(directive.timeout);
      if (timeoutMs === undefined) {
        throw new InvalidArgumentError(`Step "${step.name}" returned ${what} with an invalid timeout ${JSON.stringify(directive.timeout)}.`);
      }
    }
    return { value, output, kind: 'wait', next, wait: { signals, timeoutMs, any: directive.kind === 'waitAny' } };
  }
  if (!next || directive?.kind === 'complete') return { value, output, kind: 'end' };
  return { value, output, kind: 'next', next };
}

/**
 * When a `Flow.sleep` ends. A Date is stored as that instant (the store compares it with its own clock), never
 * converted through this worker's clock; a duration counts from the store's clock. `wakeInMs` is only for the local
 * timer, which merely wakes the run sooner than the next poll.
 */
export function sleepDue(duration: number | string | Date, stepName: string, now: number): { due: DueSpec; wakeInMs: number } {
  if (duration instanceof Date) {
    const t = duration.getTime();
    if (Number.isNaN(t)) throw new InvalidArgumentError(`Step "${stepName}" returned Flow.sleep with an invalid Date.`);
    return { due: { at: new Date(t) }, wakeInMs: Math.max(0, t - now) };
  }
  const ms = parseDuration(duration);
  if (ms === undefined) {
    throw new InvalidArgumentError(`Step "${stepName}" returned Flow.sleep with an invalid duration ${JSON.stringify(duration)} (use ms, '5s', '2m', '1h' or a Date).`);
  }
  return { due: { delayMs: ms }, wakeInMs: ms };
}

/** Checks the children of `Flow.all` / `Flow.allSettled` / `Flow.child`: each made by `Flow.child`, ids valid and distinct. */
/**
 * Most children one step visit may start (`Flow.all`/`allSettled`): a parent's join reads every child's outcome in one
 * store call, so an unbounded list would make that call unbounded. Larger fan-outs nest (children that fan out).
 */
export const MAX_CHILDREN_PER_STEP = 10_000;

function checkChildren(stepName: string, children: readonly unknown[]): ChildDirective[] {
  if (!Array.isArray(children)) {
    throw new InvalidArgumentError(`Step "${stepName}" returned Flow.all/allSettled without an array of Flow.child(...) directives.`);
  }
  if (children.length > MAX_CHILDREN_PER_STEP) {
    throw new InvalidArgumentError(
      `Step "${stepName}" returned ${children.length} children; a step may start at most ${MAX_CHILDREN_PER_STEP}. Nest the fan-out (children that start children) or split it across steps.`,
    );
  }
  const ids = new Set<string>();
  return children.map((child, i) => {
    if (!isFlowDirective(child) || child.kind !== 'child') {
      throw new InvalidArgumentError(`Step "${stepName}": element ${i} of Flow.all/allSettled is not a Flow.child(...) directive.`);
    }
    const wf = child.workflow;
    if (typeof wf !== 'function' && (typeof wf !== 'string' || wf.length === 0)) {
      throw new InvalidArgumentError(`Step "${stepName}": Flow.child needs a @Workflow class or a workflow name (child ${i}).`);
    }
    if (child.onParentEnd !== undefined && child.onParentEnd !== 'cancel' && child.onParentEnd !== 'abandon') {
      throw new InvalidArgumentError(`Step "${stepName}": Flow.child onParentEnd must be 'cancel' or 'abandon' (got ${JSON.stringify(child.onParentEnd)}).`);
    }
    if (child.id !== undefined) {
      assertRunId(child.id);
      if (ids.has(child.id)) throw new InvalidArgumentError(`Step "${stepName}": two children have the id "${child.id}".`);
      ids.add(child.id);
    }
    return child;
  });
}
