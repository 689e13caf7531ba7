/** The logger a step receives (Nest's `LoggerService` fits). */
export interface StepLogger {
  log(message: unknown, ...optionalParams: unknown[]): unknown;
  error(message: unknown, ...optionalParams: unknown[]): unknown;
  warn(message: unknown, ...optionalParams: unknown[]): unknown;
  debug?(message: unknown, ...optionalParams: unknown[]): unknown;
  verbose?(message: unknown, ...optionalParams: unknown[]): unknown;
}

/** What a step method receives as its second argument. */
export interface StepContext<Input = unknown> {
  runId: string;
  workflow: string;
  step: string;
  /** 1-based attempt number. */
  attempt: number;
  /** The run's input. */
  input: Input;
  /** Outputs of the steps completed so far, by step name (the latest visit wins). */
  results: Record<string, unknown>;
  /** Aborted on timeout, cancel, lease loss or shutdown. */
  signal: AbortSignal;
  /**
   * `${runId}:${step}` on the step's first visit, `${runId}:${step}#${n}` on its n-th visit through Flow.goto; from the
   * 2nd generation of the run id on (`terminate-existing`) `~${generation}` is appended, so a replacement never reuses a
   * key. The same across retries and recoveries of a visit. Pass it to external systems to make side effects idempotent.
   */
  idempotencyKey: string;
  logger: StepLogger;
  /**
   * Records progress: restarts the `heartbeatTimeout` and stores `details` (any serializable value) with the step, so
   * `describe()` shows it and the next attempt after a crash, timeout or retry receives it as `lastHeartbeat`. Cheap to
   * call in a tight loop: at most one store write per second per run (the latest details are always written at the end
   * of that second, and with the step's checkpoint). Rejects `SerializationError` / `PayloadTooLargeError` for
   * details that cannot be stored.
   */
  heartbeat(details?: unknown): Promise<void>;
  /** The details of this step visit's latest heartbeat, from an earlier attempt (undefined on a first attempt). */
  lastHeartbeat?: unknown;
}

/** What a compensation method receives as its second argument. */
export interface CompensationContext<Input = unknown> extends StepContext<Input> {
  /** The failure being undone (a `WorkflowCancelledError` when the run is cancelled). */
  error: unknown;
}
