/** A workflow class (decorated with `@Workflow`), or its name. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type WorkflowRefLike = string | (abstract new (...args: any[]) => unknown);

/** What happens to a live child when its parent is cancelled or ends failed. */
export type OnParentEnd = 'cancel' | 'abandon';

/** One child run, created with {@link Flow.child}: returned by a step, or listed in `Flow.all` / `Flow.allSettled`. */
export interface ChildDirective {
  readonly kind: 'child';
  readonly workflow: WorkflowRefLike;
  readonly input: unknown;
  /** Run id of the child; default `${ctx.idempotencyKey}:${i}`. An existing run with this id is adopted. */
  readonly id?: string;
  /** Default `'cancel'`. */
  readonly onParentEnd?: OnParentEnd;
}

/** How a child run ended, as `Flow.allSettled` reports it. */
export type ChildResult<T = unknown> =
  | { runId: string; status: 'completed'; output: T }
  | { runId: string; status: 'failed' | 'compensated' | 'cancelled'; error: { name: string; message: string } };

/** A directive a step returns to steer its run. Create them with {@link Flow}. */
export type FlowDirective =
  | { readonly kind: 'goto'; readonly step: string; readonly value: unknown }
  | { readonly kind: 'sleep'; readonly duration: number | string | Date; readonly value: unknown }
  | { readonly kind: 'wait'; readonly signal: string; readonly timeout?: number | string; readonly value: unknown }
  | { readonly kind: 'waitAny'; readonly signals: readonly string[]; readonly timeout?: number | string; readonly value: unknown }
  | { readonly kind: 'complete'; readonly value: unknown }
  | ChildDirective
  | {
      readonly kind: 'children';
      readonly mode: 'all' | 'allSettled';
      readonly children: readonly ChildDirective[];
      readonly concurrency?: number;
    }
  | { readonly kind: 'continueAsNew'; readonly input: unknown };

const DIRECTIVES = new WeakSet<object>();

function directive<T extends FlowDirective>(d: T): T {
  DIRECTIVES.add(d);
  return Object.freeze(d);
}

/** Whether a step's return value is a flow directive. */
export function isFlowDirective(value: unknown): value is FlowDirective {
  return typeof value === 'object' && value !== null && DIRECTIVES.has(value);
}

/** Flow directives: what a step may return instead of a plain value. */
export const Flow = {
  /** Continue at another step (branch or loop); `value` is this step's output and the next step's input. */
  goto(step: string, value?: unknown): FlowDirective {
    return directive({ kind: 'goto', step, value });
  },
  /** Durable sleep (survives restarts), then continue with `value`. */
  sleep(duration: number | string | Date, value?: unknown): FlowDirective {
    return directive({ kind: 'sleep', duration, value });
  },
  /**
   * Suspend until `client.signal(runId, name, payload)`; the next step receives the payload. On timeout the run fails
   * with SignalTimeoutError. `value` is this step's recorded output.
   */
  waitForSignal(name: string, options: { timeout?: number | string; value?: unknown } = {}): FlowDirective {
    return directive({ kind: 'wait', signal: name, timeout: options.timeout, value: options.value });
  },
  /**
   * Suspend until the first of several signals (a queued one counts: the earliest sent wins). The next step receives
   * `{ signal: name, payload }`, or `{ signal: null, timedOut: true }` when `timeout` passes first (not a failure).
   * `value` is this step's recorded output.
   */
  waitForAny(signals: string[], options: { timeout?: number | string; value?: unknown } = {}): FlowDirective {
    return directive({ kind: 'waitAny', signals: Array.isArray(signals) ? [...signals] : signals, timeout: options.timeout, value: options.value });
  },
  /** Finish the run now with this output. */
  complete(value?: unknown): FlowDirective {
    return directive({ kind: 'complete', value });
  },
  /**
   * Start one child run of `workflow` and wait for it (the parent holds no lease meanwhile). This step's recorded
   * output is the child's output, and the next step receives it. A child that ends failed, compensated or cancelled
   * fails this step with ChildWorkflowFailedError (not retried).
   */
  child(workflow: WorkflowRefLike, input?: unknown, options: { id?: string; onParentEnd?: OnParentEnd } = {}): ChildDirective {
    return directive({ kind: 'child', workflow, input, id: options.id, onParentEnd: options.onParentEnd });
  },
  /**
   * Start several child runs (each made with `Flow.child`) and wait for all of them: this step's output is the array
   * of their outputs, in order. The first child to fail fails this step (ChildWorkflowFailedError) and cancels the
   * other live children. `concurrency` bounds how many are live at once; the rest start as earlier ones end.
   */
  all(children: ChildDirective[], options: { concurrency?: number } = {}): FlowDirective {
    return directive({ kind: 'children', mode: 'all', children: Array.isArray(children) ? [...children] : children, concurrency: options.concurrency });
  },
  /** Like {@link Flow.all}, but never fails: this step's output is the array of {@link ChildResult}, in order. */
  allSettled(children: ChildDirective[], options: { concurrency?: number } = {}): FlowDirective {
    return directive({ kind: 'children', mode: 'allSettled', children: Array.isArray(children) ? [...children] : children, concurrency: options.concurrency });
  },
  /**
   * End this generation of the run and start it again at the first step with `input`, under the same run id, with an
   * empty step history and `generation` + 1: an endless loop (a monthly billing cycle) keeps bounded state.
   */
  continueAsNew(input?: unknown): FlowDirective {
    return directive({ kind: 'continueAsNew', input });
  },
} as const;
