import {
  commitArgs,
  commitParamNames,
  type CommitValues,
  type CommitVariant,
  commitVariant,
  fastBatchEntry,
  fastCommitArgs,
  type SpecialValues,
  specialCommitArgs,
} from './postgres.commit.sql.js';
import { type Row, type SqlClient, TypeOrmSqlClient } from './postgres.client.js';
import type { StepRow } from './postgres.sql-fragments.js';
import type { Statements } from './postgres.sql.js';

/** Most commits sent together in one group-commit statement. */
const MAX_COMMIT_BATCH = 64;

/** A `commit()` waiting for its turn in the group-commit queue. */
interface PendingCommit {
  runId: string;
  /** The checkpoint's parameters (`steps` is filled in when sent: JSON text alone, an array in a batch). */
  values: CommitValues;
  /** Step rows for the steps table (parameter `steps` before JSON encoding). */
  steps: StepRow[] | null;
  /** Whether it may go in a batch statement (the JSON form keeps every value as is). */
  batchable: boolean;
  /** A patch with `children` or `restart`: `commitSpecial`'s own parameters (it goes alone). */
  special?: SpecialValues;
  resolve(row: Row | undefined): void;
  reject(error: unknown): void;
}

/**
 * A start waiting for a slot: a plain one (`createRun` without flow control, debounce, replace or a caller's
 * transaction), or a keyed one that fits `createRunFlowBatch` (`flow`).
 */
interface PendingCreate {
  runId: string;
  /** Whether it goes in a `createRunFlowBatch` (else a `createRunBatch`). */
  flow: boolean;
  /** Its object in its batch statement (built only when it goes in one). */
  entry(): Record<string, unknown>;
  /** Sends it alone, by the store's own statement: the row of the run written, none when its id exists. */
  alone(): Promise<Row | undefined>;
  resolve(row: Row | undefined): void;
  reject(error: unknown): void;
}

/**
 * Whether a commit fits the fast path (`commitFast`): a checkpoint without a wait, with at most one row for the steps
 * table (the statement may still leave it to the full one).
 */
function fitsFastPath(item: PendingCommit): boolean {
  return item.values.wait === null && (item.steps?.length ?? 0) <= 1;
}

/** Whether a commit of a batch goes by `commitFastBatch…` (it fits the fast path, and the batch's JSON keeps its values). */
function isFast(item: PendingCommit): boolean {
  return item.batchable && fitsFastPath(item);
}

/** JSON object of one commit in a `commitBatch…` statement of `variant` (keys: its column definition list). */
function batchEntry(k: number, values: CommitValues, steps: StepRow[] | null, variant: CommitVariant): Record<string, unknown> {
  const entry: Record<string, unknown> = { k };
  for (const name of commitParamNames(variant)) entry[`p_${name}`] = name === 'steps' ? steps : values[name];
  return entry;
}

/** The statements GroupCommit sends. */
export type CommitStatements = Pick<
  Statements,
  | 'commit'
  | 'commitNoWait'
  | 'commitFast'
  | 'commitBatch'
  | 'commitBatchNoWait'
  | 'commitEvents'
  | 'commitNoWaitEvents'
  | 'commitFastEvents'
  | 'commitBatchEvents'
  | 'commitBatchNoWaitEvents'
  | 'commitFastBatch'
  | 'commitFastBatchEvents'
  | 'commitSpecial'
  | 'createRunBatch'
  | 'createRunFlowBatch'
>;

/**
 * An error the server answered with (an SQLSTATE outside connection/operator-intervention classes): the statement
 * was rolled back and nothing of it was written, so its commits may be sent again one by one.
 */
function isStatementError(error: unknown): boolean {
  const e = error as { code?: unknown; driverError?: { code?: unknown } } | undefined;
  const code = e?.code ?? e?.driverError?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^(08|57|53|58|XX)/.test(code);
}

/** Runs a hot statement (as a named prepared statement where the client supports it). */
export type SendStatement = (db: SqlClient, sql: string, params: unknown[]) => Promise<Row[]>;

/**
 * Group commit: step checkpoints of different runs that queue up while every statement slot is busy go to the
 * database together, as one statement (one round trip, one transaction, one WAL flush). A lone checkpoint is never
 * delayed: it goes out at once, by the fast path when it can (`commitFast`), else by the full statement. Plain starts
 * take the same slots and queue the same way: those queued meanwhile go together in one `createRunBatch`; keyed starts
 * likewise in one `createRunFlowBatch`.
 */
export class GroupCommit {
  /** Commits waiting for a statement slot. */
  private readonly queue: PendingCommit[] = [];
  /** Starts waiting for a statement slot. */
  private readonly creates: PendingCreate[] = [];
  /** Whether the next free slot goes to the starts when both queues wait (they take turns). */
  private createsNext = false;
  /** Statements of commits and starts in flight. */
  private inFlight = 0;

  /**
   * `maxStatements`: the most write statements in flight at once (`PostgresGroupCommitOptions.maxStatements`);
   * Infinity sends every checkpoint and start as its own statement, at once (group commit off).
   */
  constructor(
    private readonly statements: CommitStatements,
    private readonly send: SendStatement,
    private readonly maxStatements: number,
  ) {}

  /**
   * How many write statements may be in flight at once: `maxStatements`, at most the pool size (one for PGlite's
   * single session). A write finding a free slot goes out at once, alone; writes arriving while all slots are busy
   * queue up and go together in the next statement (up to MAX_COMMIT_BATCH, one per run): one round trip, one
   * transaction, one WAL flush.
   */
  private slots(db: SqlClient): number {
    if (this.maxStatements === Number.POSITIVE_INFINITY) return this.maxStatements;
    if (db.kind === 'pglite') return 1;
    if (db instanceof TypeOrmSqlClient) {
      const size = Number((db.dataSource.options as { poolSize?: unknown }).poolSize ?? 10);
      return Math.min(this.maxStatements, Number.isFinite(size) && size >= 1 ? Math.floor(size) : 10);
    }
    return Math.min(this.maxStatements, 10);
  }

  /**
   * Sends a checkpoint (`values`, and its rows for the steps table) when a statement slot is free, alone or with the
   * checkpoints of other runs queued meanwhile. Resolves to the statement's row for it (none: fenced out).
   */
  commit(db: SqlClient, runId: string, values: CommitValues, steps: StepRow[] | null, special?: SpecialValues): Promise<Row | undefined> {
    return new Promise<Row | undefined>((resolve, reject) => {
      // Non-finite numbers have no JSON form: such a commit always goes alone (its error, if any, is its own).
      const batchable =
        special === undefined &&
        [values.due, values.due_at, values.wait_ms, values.lease_ms].every((v) => v === null || (typeof v === 'number' && Number.isFinite(v)));
      const item: PendingCommit = { runId, values, steps, batchable, special, resolve, reject };
      this.queue.push(item);
      this.pump(db);
    });
  }

  /**
   * Writes a new run when a statement slot is free: alone (`alone`, the store's own statement), or with the other
   * starts of its kind queued meanwhile in one `createRunBatch` (plain starts) or `createRunFlowBatch` (keyed starts,
   * `flow`). Resolves to the row of the run written; none when its id exists (a run a batch did not write goes again
   * alone, so the store's statement decides).
   */
  create(
    db: SqlClient,
    runId: string,
    entry: () => Record<string, unknown>,
    alone: () => Promise<Row | undefined>,
    flow = false,
  ): Promise<Row | undefined> {
    return new Promise<Row | undefined>((resolve, reject) => {
      this.creates.push({ runId, flow, entry, alone, resolve, reject });
      this.pump(db);
    });
  }

  /** Sends queued commits and starts while statement slots are free (the two queues take turns). */
  private pump(db: SqlClient): void {
    const slots = this.slots(db);
    while (this.inFlight < slots && (this.queue.length > 0 || this.creates.length > 0)) {
      const starts = this.creates.length > 0 && (this.queue.length === 0 || this.createsNext);
      this.createsNext = !starts;
      this.inFlight++;
      const sent = starts ? this.sendCreates(db, this.takeCreates()) : this.sendBatch(db, this.takeBatch());
      void sent.finally(() => {
        this.inFlight--;
        this.pump(db);
      });
    }
  }

  /**
   * The next batch of starts: queued starts of the first one's kind (plain or keyed), in order, at most one per run id.
   * A start left in the queue (a second one of a run id, one of the other kind) holds back the later starts of its run
   * id, so the starts of one id keep their order.
   */
  private takeCreates(): PendingCreate[] {
    const batch: PendingCreate[] = [];
    const seen = new Set<string>();
    const rest: PendingCreate[] = [];
    const flow = this.creates[0].flow;
    for (const item of this.creates) {
      if (batch.length < MAX_COMMIT_BATCH && item.flow === flow && !seen.has(item.runId)) batch.push(item);
      else rest.push(item);
      seen.add(item.runId);
    }
    this.creates.length = 0;
    this.creates.push(...rest);
    return batch;
  }

  private async sendCreates(db: SqlClient, batch: PendingCreate[]): Promise<void> {
    const alone = async (item: PendingCreate) => {
      try {
        item.resolve(await item.alone());
      } catch (error) {
        item.reject(error);
      }
    };
    if (batch.length === 1) return alone(batch[0]);
    const statement = batch[0].flow ? this.statements.createRunFlowBatch : this.statements.createRunBatch;
    const rows = await this.sendGroup(
      batch,
      () =>
        this.send(db, statement, [
          JSON.stringify(
            batch.map((item, k) => {
              const entry = item.entry();
              entry.k = k;
              return entry;
            }),
          ),
        ]),
      alone,
    );
    if (!rows) return;
    const byK = new Map<number, Row>();
    for (const row of rows) byK.set(Number(row.k), row);
    // NOTE: a run not written (its id exists; a keyed one also: no counter or no free slot for it) goes again alone:
    // the store's statement decides.
    await Promise.all(
      batch.map((item, k) => {
        const row = byK.get(k);
        if (!row) return alone(item);
        item.resolve(row);
        return undefined;
      }),
    );
  }

  /**
   * The next batch: queued commits in order, at most one per run. A commit left in the queue (a second one of a run
   * in the batch, or one that must go alone) holds back the later commits of its run, so each run's commits keep
   * their order.
   */
  private takeBatch(): PendingCommit[] {
    const first = this.queue.shift()!;
    if (!first.batchable) return [first];
    const batch = [first];
    const seen = new Set([first.runId]);
    const rest: PendingCommit[] = [];
    for (const item of this.queue) {
      if (batch.length < MAX_COMMIT_BATCH && item.batchable && !seen.has(item.runId)) batch.push(item);
      else rest.push(item);
      seen.add(item.runId);
    }
    this.queue.length = 0;
    this.queue.push(...rest);
    return batch;
  }

  private async sendBatch(db: SqlClient, batch: PendingCommit[]): Promise<void> {
    if (batch.length === 1) return this.sendOne(db, batch[0]);
    const fast = batch.filter(isFast);
    if (fast.length < 2) return this.sendFullBatch(db, batch);
    // The common checkpoints by the fast path first (in run id order: rows are locked in that order); the others, and
    // those it left, by the full statement, which decides.
    fast.sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
    const events = fast.some((item) => item.values.events !== null);
    const rows = await this.sendGroup(
      fast,
      () => {
        const json = JSON.stringify(fast.map((item, k) => fastBatchEntry(k, item.values, item.steps?.[0], events)));
        return this.send(db, events ? this.statements.commitFastBatchEvents : this.statements.commitFastBatch, [json]);
      },
      (item) => this.sendOne(db, item),
    );
    const rest = batch.filter((item) => !isFast(item));
    if (rows) {
      const done = new Set<number>();
      for (const row of rows) {
        const k = Number(row.k);
        done.add(k);
        fast[k].resolve(row);
      }
      fast.forEach((item, k) => {
        if (!done.has(k)) rest.push(item);
      });
    }
    // NOTE: a lone one left goes by the full statement at once: the fast path left it, or it does not fit it.
    if (rest.length === 1) return this.sendOne(db, rest[0], false);
    if (rest.length > 1) return this.sendFullBatch(db, rest);
  }

  /** Sends a batch by the full statement (every rule of a checkpoint; see `commitStatement`). */
  private async sendFullBatch(db: SqlClient, batch: PendingCommit[]): Promise<void> {
    const rows = await this.sendGroup(batch, () => {
      // NOTE: one statement for the batch: the variant of its most demanding commit (a commit without a wait or
      // without events is the same in it as alone: its `p_wait` / `p_events` are null).
      const variant: CommitVariant = {
        wait: batch.some((item) => item.values.wait !== null),
        events: batch.some((item) => item.values.events !== null),
      };
      const json = JSON.stringify(batch.map((item, k) => batchEntry(k, item.values, item.steps, variant)));
      const s = this.statements;
      const statement = variant.events
        ? variant.wait
          ? s.commitBatchEvents
          : s.commitBatchNoWaitEvents
        : variant.wait
          ? s.commitBatch
          : s.commitBatchNoWait;
      return this.send(db, statement, [json]);
    }, (item) => this.sendOne(db, item));
    if (!rows) return;
    const byK = new Map<number, Row>();
    const deferred = new Set<number>();
    for (const row of rows) {
      if (row.deferred === true || row.deferred === 't') deferred.add(Number(row.k));
      else byK.set(Number(row.k), row);
    }
    // NOTE: a run's terminal commit whose parent's commit was in the same statement was left out (see
    // commitStatement): it goes again alone.
    const again: Promise<void>[] = [];
    batch.forEach((item, k) => {
      const row = byK.get(k);
      if (row || !deferred.has(k)) item.resolve(row);
      else again.push(this.sendOne(db, item));
    });
    await Promise.all(again);
  }

  /**
   * Sends one batch statement (`send`) for the items of `batch`: its rows, or undefined when it failed and the items
   * were dealt with. An error the server answered with means nothing of the batch was written: each item goes again
   * alone (`alone`), so that a bad one fails only itself. Any other error (the connection) fails them all.
   */
  private async sendGroup<T extends { reject(error: unknown): void }>(
    batch: readonly T[],
    send: () => Promise<Row[]>,
    alone: (item: T) => Promise<void>,
  ): Promise<Row[] | undefined> {
    try {
      return await send();
    } catch (error) {
      if (!isStatementError(error)) {
        for (const item of batch) item.reject(error);
        return undefined;
      }
      await Promise.all(batch.map(alone));
      return undefined;
    }
  }

  /** Sends one commit: `commitSpecial`, or the fast path first (`tryFast`, when it fits), else the full statement. */
  private async sendOne(db: SqlClient, item: PendingCommit, tryFast = true): Promise<void> {
    try {
      const variant = commitVariant(item.values);
      const s = this.statements;
      if (item.special) {
        const [row] = await this.send(db, s.commitSpecial, specialCommitArgs(item.values, item.steps ? JSON.stringify(item.steps) : null, item.special));
        return item.resolve(row);
      }
      if (tryFast && fitsFastPath(item)) {
        // NOTE: no row: fenced, a pause/cancel request to apply, or another live step; the full statement decides
        // (see commitFast).
        const fastStatement = variant.events ? s.commitFastEvents : s.commitFast;
        const [fast] = await this.send(db, fastStatement, fastCommitArgs(item.values, item.steps?.[0]));
        if (fast) return item.resolve(fast);
      }
      const args = commitArgs(item.values, variant, item.steps ? JSON.stringify(item.steps) : null);
      const statement = variant.events
        ? variant.wait
          ? s.commitEvents
          : s.commitNoWaitEvents
        : variant.wait
          ? s.commit
          : s.commitNoWait;
      const [row] = await this.send(db, statement, args);
      item.resolve(row);
    } catch (error) {
      item.reject(error);
    }
  }
}
