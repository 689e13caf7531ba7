import type { IndexRecord } from './redis.codec.js';
import { errorMessage } from './redis.errors.js';
import type { RedisKeys } from './redis.keys.js';
import type { RedisStoreLogger } from './redis-store-options.interface.js';
import type { RedisScriptRunner, ScriptCall } from './redis.script-runner.js';
import { APPLY_INDEX } from './redis.scripts.js';

/** Index records applied by one call of the apply script. */
const APPLY_BATCH = 200;

interface PendingRecord {
  record: IndexRecord;
  kick: string;
  extra: string;
  extraDue?: DuePair;
  /** Applied even when as old as the last applied one: the index was seen to disagree with the run. */
  repair: boolean;
}

/** A (workflow, version) pair of a due index: the workflow name and the run's `ver` field as stored. */
export interface DuePair {
  workflow: string;
  version: string;
}

/** Options of one queued index record. */
export interface EnqueueOptions {
  /** The kick (write-ahead mark) to remove with it. */
  kick?: string;
  /** Another workflow whose group may hold the run (a replaced run's previous workflow, a stale list entry's). */
  extra?: string;
  /**
   * Another (workflow, version) whose due index may hold the run: a replaced run's previous pair, or the pair of the
   * due index a claimer found the run in when the run turned out to be of another pair.
   */
  extraDue?: DuePair;
  /** Apply even when as old as the last applied record: the index was seen to disagree with the run. */
  repair?: boolean;
}

function pendingOf(record: IndexRecord, options: EnqueueOptions): PendingRecord {
  return { record, kick: options.kick ?? '', extra: options.extra ?? '', extraDue: options.extraDue, repair: options.repair ?? false };
}

/**
 * Writes the global indexes (list, due, purge) from the index records the per-run scripts return: records are queued
 * and applied in batches with `APPLY_INDEX`, right after the current I/O callbacks. Failures are logged, never thrown:
 * the indexes repair themselves when the runs are next seen.
 */
export class RedisIndexWriter {
  private pending: PendingRecord[] = [];
  private flushTimer?: NodeJS.Immediate;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly runner: RedisScriptRunner,
    private readonly keys: RedisKeys,
    private readonly logger: RedisStoreLogger,
    /** Whether the store has a client (no flush before `init()` or after `close()`). */
    private readonly connected: () => boolean,
  ) {}

  /** Queues an index record; it is applied in a batch right after the current I/O callbacks. */
  enqueue(record: IndexRecord, options: EnqueueOptions = {}): void {
    this.pending.push(pendingOf(record, options));
    if (!this.flushTimer) {
      this.flushTimer = setImmediate(() => {
        this.flushTimer = undefined;
        void this.flush();
      });
    }
  }

  /**
   * Sends the queued index records now; resolves when they are applied, and so are the batches already in flight
   * (failures are logged, not thrown). So a read that follows sees every index record this store queued before it: a
   * batch sent a moment earlier may still be on its way (on a Cluster each script is a call of its own, and one that
   * the node does not know yet goes again as EVAL, after the read if the read did not wait).
   */
  flush(): Promise<void> {
    if (this.flushTimer) {
      clearImmediate(this.flushTimer);
      this.flushTimer = undefined;
    }
    const earlier = [...this.inflight];
    if (this.pending.length === 0 || !this.connected()) return earlier.length === 0 ? Promise.resolve() : Promise.all(earlier).then(() => undefined);
    const batch = this.pending.splice(0);
    const calls: ScriptCall[] = [];
    for (let i = 0; i < batch.length; i += APPLY_BATCH) calls.push(this.applyCall(batch.slice(i, i + APPLY_BATCH)));
    const promise: Promise<void> = this.runner
      .runMany<[number, number, string]>(calls)
      .then((results) => this.reportSkipped(results))
      .catch((error: unknown) => {
        this.logger.warn(
          `Redis store: updating the run indexes failed (${errorMessage(error)}); they are repaired when the runs are next seen.`,
        );
      })
      .finally(() => this.inflight.delete(promise));
    this.inflight.add(promise);
    return earlier.length === 0 ? promise : Promise.all([promise, ...earlier]).then(() => undefined);
  }

  /**
   * Applies index records at once, apart from the queue, and throws when a batch cannot be applied (the key layout
   * migration must not go on without them). Records of damaged runs that are skipped are logged, as by `flush`.
   */
  async applyNow(records: readonly { record: IndexRecord; options?: EnqueueOptions }[]): Promise<void> {
    const batch = records.map(({ record, options }) => pendingOf(record, options ?? {}));
    const calls: ScriptCall[] = [];
    for (let i = 0; i < batch.length; i += APPLY_BATCH) calls.push(this.applyCall(batch.slice(i, i + APPLY_BATCH)));
    this.reportSkipped(await this.runner.runMany<[number, number, string]>(calls));
  }

  private reportSkipped(results: [number, number, string][]): void {
    const skipped = results.reduce((sum, result) => sum + (Array.isArray(result) ? Number(result[1]) || 0 : 0), 0);
    if (skipped > 0) {
      const first = results.find((result) => Array.isArray(result) && result[2])?.[2];
      this.logger.warn(`Redis store: ${skipped} index record(s) could not be applied and were skipped (${first}); the other runs were indexed.`);
    }
  }

  /** Flushes, then waits for every index update in flight (on close). */
  async drain(): Promise<void> {
    await this.flush();
    await Promise.allSettled([...this.inflight]);
  }

  private applyCall(batch: PendingRecord[]): ScriptCall {
    const groups: string[] = [];
    const seen = new Set<string>();
    const addGroup = (workflow: string) => {
      if (!seen.has(workflow)) {
        seen.add(workflow);
        groups.push(workflow);
      }
    };
    const dues: DuePair[] = [];
    const duePositions = new Map<string, number>();
    const addDue = (workflow: string, version: string): number => {
      const id = JSON.stringify([workflow, version]);
      let position = duePositions.get(id);
      if (position === undefined) {
        dues.push({ workflow, version });
        duePositions.set(id, (position = dues.length));
      }
      return position;
    };
    const extraDue: number[] = [];
    for (const { record, extra, extraDue: previous } of batch) {
      if (record[1] === '1' || record[3] !== '') {
        addGroup(record[3]);
        addDue(record[3], record[8] ?? '');
      }
      if (extra !== '') addGroup(extra);
      extraDue.push(previous ? addDue(previous.workflow, previous.version) : 0);
    }
    const keys = [...this.keys.applyBase()];
    for (const workflow of groups) keys.push(...this.keys.workflowGroup(workflow));
    for (const { workflow, version } of dues) keys.push(this.keys.dueByVersion(workflow, version));
    const args: string[] = [String(groups.length), ...groups, String(dues.length)];
    for (const { workflow, version } of dues) args.push(workflow, version);
    batch.forEach(({ record, kick, extra, repair }, i) => {
      // a run with a priority or limits adds them (see APPLY_INDEX); other runs' records are sent as before
      const priority = record[9] ?? '';
      const flow = record[10] ?? '';
      const extended = (priority !== '' && priority !== '0') || flow !== '';
      args.push(...(record.slice(0, 9) as string[]), kick, extra, String(extraDue[i]), (repair ? '1' : '0') + (extended ? '+' : ''));
      if (extended) args.push(priority, flow);
    });
    return { script: APPLY_INDEX, keys, args };
  }
}
