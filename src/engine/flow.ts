
/** A directive a step returns to steer its run. Create them with {@link Flow}. */
export type FlowDirective =
  | { readonly kind: 'goto'; readonly step: string; readonly value: unknown }
  | { readonly kind: 'sleep'; readonly duration: number | string | Date; readonly value: unknown }
  | { readonly kind: 'wait'; readonly signal: string; readonly timeout?: number | string; readonly value: unknown }
  | { readonly kind: 'complete'; readonly value: unknown };

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
  /** Finish the run now with this output. */
  complete(value?: unknown): FlowDirective {
    return directive({ kind: 'complete', value });
  },
} as const;

