import { DurableExecutionError } from './durable-execution.error.js';

/**
 * Stored and logged error text (a step's error, the run's error message) is cut at this many characters, ending with
 * `… [truncated]`; NUL and unpaired surrogates are replaced by U+FFFD.
 */
export const DEFAULT_ERROR_TEXT_LIMIT = 8_192;

/** What ended a run, as stored and as shown by `describe()`. */
export interface RunErrorInfo {
  name: string;
  message: string;
  step?: string;
  phase?: 'step' | 'compensation';
}

/** A workflow class or step is declared wrongly. Thrown at bootstrap, or when a run reaches a step that no longer exists. */
export class WorkflowDefinitionError extends DurableExecutionError {
  readonly code = 'CAIRN_WORKFLOW_DEFINITION' as const;
}

/** `start()` named a workflow that no `@Workflow` class registers. */
export class UnknownWorkflowError extends DurableExecutionError {
  readonly code = 'CAIRN_UNKNOWN_WORKFLOW' as const;
  constructor(readonly workflow: string, known: string[]) {
    super(
      `Unknown workflow "${workflow}". Registered workflows: ${known.length ? known.map((k) => `"${k}"`).join(', ') : '(none)'}. ` +
        'Decorate the class with @Workflow() and list it in a module\'s providers.',
    );
  }
}

/** No run has this id. */
export class RunNotFoundError extends DurableExecutionError {
  readonly code = 'CAIRN_RUN_NOT_FOUND' as const;
  constructor(readonly runId: string) {
    super(`Run "${runId}" not found.`);
  }
}

/** `start()` with `conflictPolicy: 'fail'` and an id that already exists. */
export class RunAlreadyExistsError extends DurableExecutionError {
  readonly code = 'CAIRN_RUN_ALREADY_EXISTS' as const;
  constructor(readonly runId: string) {
    super(
      `Run "${runId}" already exists. Use conflictPolicy 'use-existing' to get its handle, or 'terminate-existing' to replace it.`,
    );
  }
}

/** A run ended `failed` or `compensated`; `cause` is the run's error. */
export class WorkflowFailedError extends DurableExecutionError {
  readonly code = 'CAIRN_WORKFLOW_FAILED' as const;
  readonly step?: string;
  override readonly cause: RunErrorInfo;
  constructor(readonly runId: string, error: RunErrorInfo, readonly status: 'failed' | 'compensated' = 'failed') {
    super(
      `Run "${runId}" ${status === 'compensated' ? 'failed and was compensated' : 'failed'}` +
        `${error.step ? ` at step "${error.step}"${error.phase === 'compensation' ? ' (compensation)' : ''}` : ''}: ${error.name}: ${error.message}`,
    );
    this.step = error.step;
    this.cause = error;
  }
}

/**
 * A child run started by `Flow.child`, `Flow.all` (or adopted by them) ended `failed`, `compensated` or `cancelled`:
 * the parent's step fails with this error, final (never retried). Under `Flow.all` the parent's other live children
 * are cancelled first. `cause` is the child's error (`{ name, message }`).
 */
export class ChildWorkflowFailedError extends DurableExecutionError {
  readonly code = 'CAIRN_CHILD_WORKFLOW_FAILED' as const;
  override readonly cause: { name: string; message: string };
  constructor(
    readonly childRunId: string,
    cause: { name: string; message: string },
    /** How the child ended. */
    readonly childStatus: 'failed' | 'compensated' | 'cancelled' | 'missing' = 'failed',
  ) {
    super(
      `Child run "${childRunId}" ${childStatus === 'missing' ? 'no longer exists (purged before its parent read it?)' : `ended ${childStatus}`}: ${cause.name}: ${cause.message}`,
    );
    this.cause = cause;
  }
}

/** A run was cancelled. */
export class WorkflowCancelledError extends DurableExecutionError {
  readonly code = 'CAIRN_WORKFLOW_CANCELLED' as const;
  constructor(readonly runId: string) {
    super(`Run "${runId}" was cancelled.`);
  }
}

/** An attempt of a step ran past the step's `timeout`. */
export class StepTimeoutError extends DurableExecutionError {
  readonly code = 'CAIRN_STEP_TIMEOUT' as const;
  constructor(
    readonly step: string,
    readonly timeoutMs: number,
    /** `heartbeat`: the attempt went `timeoutMs` without calling `ctx.heartbeat()` (`heartbeatTimeout`). */
    readonly kind: 'attempt' | 'heartbeat' = 'attempt',
  ) {
    super(
      kind === 'heartbeat'
        ? `Step "${step}" sent no heartbeat for ${timeoutMs} ms (heartbeatTimeout); call ctx.heartbeat() more often or raise the timeout.`
        : `Step "${step}" timed out after ${timeoutMs} ms.`,
    );
  }
}

/** A `Flow.waitForSignal` passed its timeout without the signal. */
export class SignalTimeoutError extends DurableExecutionError {
  readonly code = 'CAIRN_SIGNAL_TIMEOUT' as const;
  constructor(readonly step: string, readonly signal: string) {
    super(`Step "${step}" waited for signal "${signal}" past its timeout.`);
  }
}

/** Throw from a step to fail it at once, without the remaining retry attempts. */
export class NonRetryableError extends DurableExecutionError {
  readonly code = 'CAIRN_NON_RETRYABLE' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The run has ended; it cannot be signalled, paused, resumed or cancelled. */
export class RunNotActiveError extends DurableExecutionError {
  readonly code = 'CAIRN_RUN_NOT_ACTIVE' as const;
  constructor(readonly runId: string, readonly status: string, action: string) {
    super(`Cannot ${action} run "${runId}": it has ended (status "${status}").`);
  }
}

/** The run is not in a state that allows the request (e.g. `retry` of a run that is not `failed`). */
export class InvalidRunStateError extends DurableExecutionError {
  readonly code = 'CAIRN_INVALID_RUN_STATE' as const;
  constructor(readonly runId: string, readonly status: string, message: string) {
    super(message);
  }
}

/**
 * `signal()` to a run that already holds `maxQueuedSignals` queued (unconsumed) signals: nothing was queued. The run
 * takes more once it consumes some.
 */
export class SignalQueueFullError extends DurableExecutionError {
  readonly code = 'CAIRN_SIGNAL_QUEUE_FULL' as const;
  constructor(
    readonly runId: string,
    readonly limit: number,
  ) {
    super(
      `Run "${runId}" already holds ${limit} queued signals (maxQueuedSignals), so this one was not queued. The run takes more once it consumes some; raise maxQueuedSignals if it is meant to buffer more.`,
    );
  }
}

/** An argument is malformed (run id, list limit, cursor, duration …). */
export class InvalidArgumentError extends DurableExecutionError {
  readonly code = 'CAIRN_INVALID_ARGUMENT' as const;
}

/** `handle.result({ timeout })` passed its timeout; the run goes on. */
export class ResultTimeoutError extends DurableExecutionError {
  readonly code = 'CAIRN_RESULT_TIMEOUT' as const;
  constructor(readonly runId: string, readonly timeoutMs: number) {
    super(`Run "${runId}" did not finish within ${timeoutMs} ms (it goes on).`);
  }
}

/** A value could not be stored: it holds something that cannot be serialized and restored. */
export class SerializationError extends DurableExecutionError {
  readonly code = 'CAIRN_SERIALIZATION' as const;
  constructor(message: string, readonly step?: string) {
    super(message);
  }
}

/** A serialized input, output or signal payload is larger than `maxPayloadBytes`. */
export class PayloadTooLargeError extends DurableExecutionError {
  readonly code = 'CAIRN_PAYLOAD_TOO_LARGE' as const;
  constructor(readonly what: string, readonly bytes: number, readonly maxBytes: number) {
    super(`${what} is ${bytes} bytes serialized, over maxPayloadBytes (${maxBytes}). Store large data elsewhere and pass a reference.`);
  }
}

/** A run made more step transitions (e.g. through a `Flow.goto` loop) than `maxTransitions` allows. */
export class MaxTransitionsExceededError extends DurableExecutionError {
  readonly code = 'CAIRN_MAX_TRANSITIONS' as const;
}

/** A run kept being recovered after crashes without making progress. */
export class RecoveryLimitError extends DurableExecutionError {
  readonly code = 'CAIRN_RECOVERY_LIMIT' as const;
}

/**
 * Stored data of a run cannot be decoded (a damaged state, input, output, step record or index field, e.g. after a
 * manual edit of the database). The run ends `failed` with this error, naming the run and the field; other runs are not
 * affected. Repair or delete the stored value, then `retry` the run, or leave it failed.
 */
export class CorruptRunError extends DurableExecutionError {
  readonly code = 'CAIRN_CORRUPT_RUN' as const;
  constructor(readonly runId: string, readonly detail: string) {
    super(
      `Run "${runId}" has stored data that cannot be decoded: ${detail}. ` +
        `The run was failed so it cannot hold up other runs; repair or delete the stored value, then call retry("${runId}").`,
    );
  }
}

/**
 * The module is used before it is ready: a workflow was started before the app was initialised (`app.init()`,
 * `moduleRef.init()` or `NestFactory.create…`), or a result was awaited before the worker started (during
 * `onModuleInit`, it would wait forever: the worker starts in `onApplicationBootstrap`).
 */
export class ModuleNotReadyError extends DurableExecutionError {
  readonly code = 'CAIRN_NOT_READY' as const;
}

/** This instance lost the lease of a run (another instance took it over); its writes are rejected. */
export class LeaseLostError extends DurableExecutionError {
  readonly code = 'CAIRN_LEASE_LOST' as const;
  constructor(readonly runId: string) {
    super(`Lease of run "${runId}" was lost: another instance owns it now.`);
  }
}

/** A store cannot be reached or refused an operation. */
export class StoreError extends DurableExecutionError {
  readonly code = 'CAIRN_STORE' as const;
}

/** The module's options are invalid. */
export class ConfigurationError extends DurableExecutionError {
  readonly code = 'CAIRN_CONFIGURATION' as const;
}

/** No schedule has this id (`client.schedules.update/pause/resume/delete/trigger`). */
export class ScheduleNotFoundError extends DurableExecutionError {
  readonly code = 'CAIRN_SCHEDULE_NOT_FOUND' as const;
  constructor(readonly scheduleId: string) {
    super(`Schedule "${scheduleId}" not found. client.schedules.list() shows the schedules that exist.`);
  }
}
