/**
 * The run state machine of the store port, defined once. Every store takes its status lists from here: the memory store
 * uses these sets directly (it is the readable reference implementation of the port's rules), the Postgres store
 * renders them into its SQL, and the Redis store passes them to its Lua scripts. `test/unit/run-state-machine.spec.ts`
 * (memory), `test/store/postgres-state-machine.spec.ts` and `test/store/redis-state-machine.spec.ts` fail when a
 * store's copy diverges.
 *
 * To add a status: add it to {@link RUN_STATUSES} and to each class below it belongs to, then follow the checklist in
 * ARCHITECTURE.md.
 */

/** Every status a run can have, in the order of the status machine (DESIGN §2). */
export const RUN_STATUSES = [
  'pending',
  'running',
  'sleeping',
  'waiting',
  'paused',
  'compensating',
  'completed',
  'compensated',
  'failed',
  'cancelled',
] as const;

/** Status of a run. */
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Statuses a run never leaves, except `failed` through `retry` (failed → pending). */
export const TERMINAL_STATUSES: readonly RunStatus[] = ['completed', 'compensated', 'failed', 'cancelled'];

/** Statuses of a run that has not ended. */
export const LIVE_STATUSES: readonly RunStatus[] = ['pending', 'running', 'sleeping', 'waiting', 'paused', 'compensating'];

/** Statuses in which a run may be claimed (when it is due and has no live lease). `paused` never is. */
export const CLAIMABLE_STATUSES: readonly RunStatus[] = ['pending', 'running', 'sleeping', 'waiting', 'compensating'];

/** Statuses a claim turns into `running`; other claimable statuses are kept (waiting, compensating, running). */
export const STARTED_BY_CLAIM: readonly RunStatus[] = ['pending', 'sleeping'];

/**
 * Statuses in which a released lease makes the run due at once (`releaseLease`): a run that was executing. A waiting
 * or sleeping run keeps its wake-up time; a paused run stays paused until resumed.
 */
export const DUE_ON_RELEASE: readonly RunStatus[] = ['pending', 'running', 'compensating'];

/** The statuses a `list` filter accepts. */
export const RUN_STATUS_SET: ReadonlySet<string> = new Set(RUN_STATUSES);

const TERMINAL: ReadonlySet<string> = new Set(TERMINAL_STATUSES);
const CLAIMABLE: ReadonlySet<string> = new Set(CLAIMABLE_STATUSES);
const DUE_RELEASE: ReadonlySet<string> = new Set(DUE_ON_RELEASE);
const STARTED: ReadonlySet<string> = new Set(STARTED_BY_CLAIM);

/** Whether a status is terminal. */
export function isTerminal(status: RunStatus): boolean {
  return TERMINAL.has(status);
}

const LIVE: ReadonlySet<string> = new Set(LIVE_STATUSES);

/** Whether a run in this status has not ended. */
export function isLive(status: RunStatus): boolean {
  return LIVE.has(status);
}

/** Whether a run in this status may be claimed (due and unleased assumed). */
export function isClaimableStatus(status: RunStatus): boolean {
  return CLAIMABLE.has(status);
}

/** Whether releasing the lease of a run in this status makes it due at once. */
export function isDueOnRelease(status: RunStatus): boolean {
  return DUE_RELEASE.has(status);
}

/** The status a claim gives a run. */
export function statusAfterClaim(status: RunStatus): RunStatus {
  return STARTED.has(status) ? 'running' : status;
}
