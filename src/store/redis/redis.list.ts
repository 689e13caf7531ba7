import { compareRunIds } from '../run-id-order.js';
import { RUN_STATUSES, RUN_STATUS_SET } from '../run-state-machine.js';
import type { CountRunsQuery, ListRunsQuery, RunStatus, StoredRun } from '../workflow-store.interface.js';
import { decodeSnapshot, type IndexRecord, type Snapshot } from './redis.codec.js';
import { scorePairs, type RedisClient } from './redis.connection.js';
import { dropGoneRuns } from './redis.expiry.js';
import type { RedisIndexWriter } from './redis.index-writer.js';
import { isRunId, type RedisKeys } from './redis.keys.js';
import type { RedisScriptRunner } from './redis.script-runner.js';
import { READ_RUN } from './redis.scripts.js';

/** Entries of a parent's children list read per round when other filters apply too. */
const CHILD_PAGE = 100;

/** An entry of a list index: a run id and its score (creation time). */
interface IndexEntry {
  id: string;
  score: number;
}

/** Creation-time bounds of a list query, in ms (index scores): `from` inclusive, `to` exclusive. */
interface ScoreBounds {
  from?: number;
  to?: number;
}

/** A bound's score, or undefined for none (an invalid Date filters nothing, as in the memory store). */
function boundScore(date: Date | undefined): number | undefined {
  if (date === undefined) return undefined;
  const ms = date.getTime();
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * `listRuns` of the Redis store: pages through the list indexes (newest first), reads each run with its own script and
 * keeps the runs that still match; an entry that no longer matches its run is repaired, not listed. The creation-time
 * filter (`createdFrom`, `createdTo`) is a score range of the index reads (the list indexes are scored by creation
 * time), so entries outside it are never read.
 */
export class RedisRunList {
  constructor(
    private readonly client: () => RedisClient,
    private readonly runner: RedisScriptRunner,
    private readonly keys: RedisKeys,
    private readonly index: RedisIndexWriter,
  ) {}

  /**
   * The runs of a query, in the order (createdAt desc, runId desc). `onListed` is given each run listed with the
   * snapshot it was decoded from.
   */
  async list(query: ListRunsQuery, onListed?: (run: StoredRun, snapshot: Snapshot) => void): Promise<StoredRun[]> {
    const limit = Math.floor(query.limit);
    if (!(limit > 0)) return [];
    const statuses = query.statuses ? [...new Set(query.statuses)].filter((s) => RUN_STATUS_SET.has(s)) : undefined;
    if (statuses && statuses.length === 0) return [];
    await this.index.flush();
    const workflow = query.workflow;
    const parent = query.parentRunId;
    if (parent !== undefined && !isRunId(parent)) return [];
    // NOTE: the children of a parent are read from its children list (its slot), the other filters from each run
    const keys =
      parent !== undefined
        ? [this.keys.run(parent).children]
        : workflow !== undefined && statuses
          ? statuses.map((s) => this.keys.byWorkflowStatus(workflow, s))
          : workflow !== undefined
            ? [this.keys.byWorkflow(workflow)]
            : statuses
              ? statuses.map((s) => this.keys.byStatus(s))
              : [this.keys.created];
    const wanted = statuses ? new Set<RunStatus>(statuses) : undefined;
    const bounds: ScoreBounds = { from: boundScore(query.createdFrom), to: boundScore(query.createdTo) };
    if (bounds.from !== undefined && bounds.to !== undefined && bounds.from >= bounds.to) return [];
    const out: StoredRun[] = [];
    let cursor = query.after ? { score: query.after.createdAt.getTime(), id: query.after.runId } : undefined;
    for (let round = 0; round < 100 && out.length < limit; round++) {
      // a children list holds runs of every workflow and status: read larger pages when filtering them here
      const need = parent !== undefined && (workflow !== undefined || wanted) ? Math.max(limit - out.length, CHILD_PAGE) : limit - out.length;
      const entries = await this.indexPage(keys, bounds, cursor, need);
      if (entries.length === 0) break;
      const reads = await this.runner.runMany<[Snapshot, IndexRecord]>(
        entries.map((entry) => {
          const runKeys = this.keys.run(entry.id);
          return { script: READ_RUN, keys: [runKeys.run, runKeys.steps], args: [entry.id] };
        }),
      );
      const gone: IndexRecord[] = [];
      const stale: string[] = [];
      entries.forEach((entry, i) => {
        const [snapshot, record] = reads[i];
        const decoded = decodeSnapshot(snapshot, entry.id);
        const run = decoded?.run;
        // NOTE: a run whose creation time cannot be read keeps its index score (see APPLY_INDEX), and is listed
        // with it, so that pages stay in order.
        const createdAtDamaged = decoded?.damaged.has('ca') === true;
        const indexed =
          run !== undefined &&
          (createdAtDamaged || run.createdAt.getTime() === entry.score) &&
          (parent === undefined || run.parentRunId === parent);
        const matches = indexed && (workflow === undefined || run.workflow === workflow) && (!wanted || wanted.has(run.status));
        if (matches) {
          if (createdAtDamaged) run.createdAt = new Date(entry.score);
          if (out.length < limit) {
            out.push(run);
            onListed?.(run, snapshot);
          }
        } else if (record[1] !== '1') {
          gone.push(record); // the run is gone (expired, or deleted by hand): drop its entries
        } else if (parent !== undefined) {
          // a child of another workflow or status is skipped; the entry of a run that is no longer this parent's
          // (replaced) is dropped from the list
          if (run && run.parentRunId !== parent) stale.push(entry.id);
        } else {
          this.index.enqueue(record, { extra: workflow ?? '', repair: true }); // a stale index entry: repair it
        }
      });
      if (gone.length > 0) await dropGoneRuns(this.client(), this.keys, this.index, gone, workflow ?? '');
      if (parent !== undefined) {
        for (const record of gone) stale.push(record[0]);
        if (stale.length > 0) await this.client().zrem(this.keys.run(parent).children, ...stale);
      }
      const last = entries[entries.length - 1];
      cursor = { score: last.score, id: last.id };
      if (entries.length < need) break;
    }
    return out;
  }

  /**
   * `countRuns`: the cardinalities of the per-status list indexes (`s:<status>`, or `ws:<workflow>:<status>` for one
   * workflow), one pipelined `ZCARD` per status, all in the index slot: one round trip whatever the number of runs.
   * Statuses with no run are left out. This instance's queued index records are applied first.
   *
   * NOTE: the counts are those of the indexes, which may lag the runs slightly: with the store's `ttl`, an ended run
   * whose keys expired is still counted under its terminal status until its entries are dropped (by `purge` / the
   * `retention` option, `sweepExpired()`, a `listRuns` that meets it, or `reindex()`); and an index update in flight in
   * another instance (or lost with a crashed one, until its write-ahead mark is repaired) is counted once applied.
   */
  async count(query: CountRunsQuery): Promise<Partial<Record<RunStatus, number>>> {
    await this.index.flush();
    const workflow = query.workflow;
    const pipeline = this.client().pipeline();
    for (const status of RUN_STATUSES) {
      pipeline.zcard(workflow !== undefined ? this.keys.byWorkflowStatus(workflow, status) : this.keys.byStatus(status));
    }
    const results = (await pipeline.exec()) ?? [];
    const counts: Partial<Record<RunStatus, number>> = {};
    RUN_STATUSES.forEach((status, i) => {
      const [error, n] = results[i] ?? [];
      if (error) throw error;
      if (Number(n) > 0) counts[status] = Number(n);
    });
    return counts;
  }

  /**
   * The next `n` index entries after `cursor` in the order (createdAt desc, runId desc), over the union of `keys`, with
   * scores in `bounds`. Sorted sets order equal scores by member bytes (encoded ids); the store orders ties by the ids'
   * code points, so tie groups at the edges of a page are read whole and sorted here.
   */
  private async indexPage(keys: string[], bounds: ScoreBounds, cursor: IndexEntry | undefined, n: number): Promise<IndexEntry[]> {
    const client = this.client();
    const min = bounds.from !== undefined ? String(bounds.from) : '-inf';
    let max = bounds.to !== undefined ? `(${bounds.to}` : '+inf';
    // the cursor's own score: its tie group is read whole (ids after the cursor's are kept), when inside the bounds
    let tie = false;
    if (cursor && (bounds.to === undefined || cursor.score < bounds.to)) {
      max = `(${cursor.score}`;
      tie = bounds.from === undefined || cursor.score >= bounds.from;
    }
    const pipeline = client.pipeline();
    for (const key of keys) {
      if (tie) pipeline.call('ZRANGE', key, String(cursor!.score), String(cursor!.score), 'BYSCORE');
      pipeline.call('ZRANGE', key, max, min, 'BYSCORE', 'REV', 'LIMIT', 0, n, 'WITHSCORES');
    }
    const results = (await pipeline.exec()) ?? [];
    for (const [error] of results) if (error) throw error;
    const entries = new Map<string, number>();
    const complete: { key: string; score: string }[] = [];
    let r = 0;
    for (const key of keys) {
      if (tie) {
        for (const id of results[r++][1] as string[]) entries.set(id, cursor!.score);
      }
      // NOTE: scorePairs: the reply's shape depends on the client's protocol (RESP3 with ioredis 6).
      const page = scorePairs(results[r++][1]);
      for (const [id, score] of page) entries.set(id, Number(score));
      if (page.length >= n && page.length > 0) complete.push({ key, score: page[page.length - 1][1] });
    }
    if (complete.length > 0) {
      const more = client.pipeline();
      for (const { key, score } of complete) more.call('ZRANGE', key, score, score, 'BYSCORE');
      const groups = (await more.exec()) ?? [];
      groups.forEach(([error, ids], i) => {
        if (error) throw error;
        for (const id of ids as string[]) entries.set(id, Number(complete[i].score));
      });
    }
    return [...entries.entries()]
      .map(([id, score]) => ({ id, score }))
      .filter((e) => !cursor || e.score < cursor.score || (e.score === cursor.score && compareRunIds(e.id, cursor.id) < 0))
      .sort((a, b) => b.score - a.score || compareRunIds(b.id, a.id))
      .slice(0, n);
  }
}
