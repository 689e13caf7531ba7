/** A snapshot of an engine's worker, for health checks. */
export interface EngineHealth {
  /** Whether this instance executes runs (`worker.enabled`). */
  workerEnabled: boolean;
  /** Started and not draining. */
  running: boolean;
  /** When the worker's last poll for due runs ended (successfully or not); undefined before the first. */
  lastPollAt?: Date;
  /** Runs executing on this instance now. */
  inFlight: number;
  /** Largest number of runs executed at once (`worker.concurrency`). */
  concurrency: number;
  /** Due → claimed, in ms, of this instance's latest claim; undefined when it has claimed nothing recently. */
  claimLagMs?: number;
}

/** What can report an {@link EngineHealth} (the `WorkflowEngine`). */
export interface EngineHealthSource {
  health(): EngineHealth;
}
