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
  /** Applied even when as old as the last applied one: the index was seen to disagree with the run. */
  repair: boolean;
}

/** Options of one queued index record. */
export interface EnqueueOptions {
  /** The kick (write-ahead mark) to remove with it. */
  kick?: string;
  /** Another workflow whose group may hold the run (a replaced run's previous workflow, a stale list entry's). */
  extra?: string;
  /** Apply even when as old as the last applied record: the index was seen to disagree with the run. */
  repair?: boolean;
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
    this.pending.push({ record, kick: options.kick ?? '', extra: options.extra ?? '', repair: options.repair ?? false });
    if (!this.flushTimer) {
      this.flushTimer = setImmediate(() => {
        this.flushTimer = undefined;
        void this.flush();
      });
    }
  }

  /** Sends the queued index records now; resolves when they are applied (failures are logged, not thrown). */
  flush(): Promise<void> {
    if (this.flushTimer) {
      clearImmediate(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.pending.length === 0 || !this.connected()) return Promise.resolve();
    const batch = this.pending.splice(0);
    const calls: ScriptCall[] = [];
    for (let i = 0; i < batch.length; i += APPLY_BATCH) calls.push(this.applyCall(batch.slice(i, i + APPLY_BATCH)));
    const promise: Promise<void> = this.runner
      .runMany<[number, number, string]>(calls)
      .then((results) => {
        const skipped = results.reduce((sum, result) => sum + (Array.isArray(result) ? Number(result[1]) || 0 : 0), 0);
        if (skipped > 0) {
          const first = results.find((result) => Array.isArray(result) && result[2])?.[2];
          this.logger.warn(`Redis store: ${skipped} index record(s) could not be applied and were skipped (${first}); the other runs were indexed.`);
        }
      })
      .catch((error: unknown) => {
        this.logger.warn(
          `Redis store: updating the run indexes failed (${errorMessage(error)}); they are repaired when the runs are next seen.`,
        );
      })
      .finally(() => this.inflight.delete(promise));
    this.inflight.add(promise);
    return promise;
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
    for (const { record, extra } of batch) {
      if (record[1] === '1' || record[3] !== '') addGroup(record[3]);
      if (extra !== '') addGroup(extra);
    }
    const keys = [...this.keys.applyBase()];
    for (const workflow of groups) keys.push(...this.keys.workflowGroup(workflow));
    const args: string[] = [String(groups.length), ...groups];
    for (const { record, kick, extra, repair } of batch) args.push(...record, kick, extra, repair ? '1' : '0');
    return { script: APPLY_INDEX, keys, args };
  }
}
