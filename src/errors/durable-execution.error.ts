/**
 * Stable error codes carried by every error this package throws (`error.code`).
 * Codes never change between versions; messages may be improved.
 */
export type DurableExecutionErrorCode =
  | 'CAIRN_WORKFLOW_DEFINITION'
  | 'CAIRN_UNKNOWN_WORKFLOW'
  | 'CAIRN_RUN_NOT_FOUND'
  | 'CAIRN_RUN_ALREADY_EXISTS'
  | 'CAIRN_WORKFLOW_FAILED'
  | 'CAIRN_WORKFLOW_CANCELLED'
  | 'CAIRN_STEP_TIMEOUT'
  | 'CAIRN_SIGNAL_TIMEOUT'
  | 'CAIRN_NON_RETRYABLE'
  | 'CAIRN_RUN_NOT_ACTIVE'
  | 'CAIRN_INVALID_RUN_STATE'
  | 'CAIRN_INVALID_ARGUMENT'
  | 'CAIRN_SIGNAL_QUEUE_FULL'
  | 'CAIRN_RESULT_TIMEOUT'
  | 'CAIRN_SERIALIZATION'
  | 'CAIRN_PAYLOAD_TOO_LARGE'
  | 'CAIRN_MAX_TRANSITIONS'
  | 'CAIRN_RECOVERY_LIMIT'
  | 'CAIRN_CORRUPT_RUN'
  | 'CAIRN_NOT_READY'
  | 'CAIRN_LEASE_LOST'
  | 'CAIRN_STORE'
  | 'CAIRN_CONFIGURATION'
  | 'CAIRN_CHILD_WORKFLOW_FAILED'
  | 'CAIRN_SCHEDULE_NOT_FOUND';

/** Base class of every error thrown by nestjs-cairn. */
export abstract class DurableExecutionError extends Error {
  /** Stable machine-readable code, e.g. `CAIRN_RUN_NOT_FOUND`. */
  abstract readonly code: DurableExecutionErrorCode;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
