/** Who owns a schedule: `decorator` schedules are reconciled with the code at bootstrap, `api` ones never are. */
export type ScheduleSource = 'decorator' | 'api';

/** A schedule as stored. */
export interface StoredSchedule {
  id: string;
  /** The workflow name. */
  workflow: string;
  /** JSON text of the storable spec (`StorableScheduleSpec`); the store keeps it verbatim. */
  spec: string;
  paused: boolean;
  /** The next tick to fire; absent when none (a cron that never fires again). */
  nextFireAt?: Date;
  /** The tick of the last run started. */
  lastFireAt?: Date;
  lastRunId?: string;
  source: ScheduleSource;
  /** Compare-and-set counter: 1 when created, one more with each `advance`. */
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

/** A schedule to create. */
export interface NewSchedule {
  id: string;
  workflow: string;
  spec: string;
  paused: boolean;
  nextFireAt?: Date;
  source: ScheduleSource;
}

/** Fields `advance` changes; absent ones are kept, `nextFireAt: null` clears it. */
export interface SchedulePatch {
  workflow?: string;
  spec?: string;
  paused?: boolean;
  nextFireAt?: Date | null;
  lastFireAt?: Date;
  lastRunId?: string;
}

/**
 * The schedules port: an optional companion of a `WorkflowStore` (see `scheduleStoreOf`), one atomic operation per
 * method. Rules:
 *
 * 1. A schedule is *due by* a time when it is not paused and has a `nextFireAt` at or before that time. `due` returns
 *    such schedules, earliest `nextFireAt` first (ties by id), from an index on `nextFireAt`: it never scans the
 *    schedules that are not due.
 * 2. `advance` is a compare-and-set: it applies the patch, adds one to `version` and sets `updatedAt` only when the
 *    stored version equals `expectedVersion`; otherwise (or when the id is absent) it changes nothing and returns
 *    undefined. Of concurrent calls with the same expected version, exactly one succeeds.
 * 3. `create` never replaces: an existing id is left as it is and undefined is returned.
 * 4. `delete` with `expectedVersion` deletes only that version; without it, whatever is stored. Returns whether a
 *    schedule was deleted.
 * 5. Times are kept to the millisecond; `spec` and the ids are kept verbatim (any Unicode text without NUL).
 */
export interface ScheduleStore {
  /** Creates what the store needs (tables, indexes), idempotently; safe to call concurrently from several instances. */
  init(): Promise<void>;
  create(schedule: NewSchedule): Promise<StoredSchedule | undefined>;
  get(id: string): Promise<StoredSchedule | undefined>;
  /** Every schedule, by id. */
  list(): Promise<StoredSchedule[]>;
  delete(id: string, expectedVersion?: number): Promise<boolean>;
  /** At most `limit` schedules due by `until` (rule 1), of these workflows only when `workflows` is given. */
  due(until: Date, limit: number, workflows?: readonly string[]): Promise<StoredSchedule[]>;
  advance(id: string, expectedVersion: number, patch: SchedulePatch): Promise<StoredSchedule | undefined>;
}

/** A `WorkflowStore` that keeps schedules too. */
export interface SchedulingStore {
  readonly schedules: ScheduleStore;
}
