/**
 * Where the engine and the memory store read the time and set timers that stand for durable time (retry delays, step
 * and heartbeat timeouts, wake-ups). The system clock in production; `WorkflowTestClock` (manual) in tests.
 */
export interface EngineClock {
  /** Epoch ms. */
  now(): number;
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle | undefined): void;
  /** True for a manual clock: time moves only when a test advances it. */
  readonly manual: boolean;
}

export type TimerHandle = { readonly __timer: true } | NodeJS.Timeout;

export const SYSTEM_CLOCK: EngineClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => {
    if (handle) clearTimeout(handle as NodeJS.Timeout);
  },
  manual: false,
};
