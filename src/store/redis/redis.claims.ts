import { randomUUID } from 'node:crypto';
import type { ClaimedRun, LeaseRequest, WorkflowRef } from '../workflow-store.interface.js';
import { decodeClaimed, integerArg, type IndexRecord, type Snapshot } from './redis.codec.js';
import type { RedisClient } from './redis.connection.js';
import { errorMessage } from './redis.errors.js';
import { dropGoneRuns } from './redis.expiry.js';
import type { DuePair, RedisIndexWriter } from './redis.index-writer.js';
import type { RedisKeys } from './redis.keys.js';
import type { RedisStoreLogger } from './redis-store-options.interface.js';
import { runIdOfKick, type RedisScriptRunner, type ScriptCall } from './redis.script-runner.js';
import { CLAIM_CANDIDATES, CLAIM_OWNED_RUN, CLAIM_RUN, OWNED_CANDIDATES, READ_RUN, type LuaScript } from './redis.scripts.js';

/** A kick (write-ahead mark of an index update) left this long after it was first seen is repaired by claimers. */
const KICK_GRACE_MS = 5_000;
/** Abandoned kicks repaired per claim. */
const KICK_BATCH = 100;

/** Due-index entries read per page by `claimOwnedRuns`. */
const OWNED_PAGE = 1_000;

/** A claim script's reply: `{1, snapshot, record, recovered, previousOwner, orphanedMs}` or `{0, record}`. */
type ClaimReply = [1, Snapshot, IndexRecord, number, string | null, number] | [0, IndexRecord];

/** The claimed run of a claim script's reply (with what it reports of the lease it took over). */
function claimedOf(reply: [1, Snapshot, IndexRecord, number, string | null, number], runId: string): ClaimedRun {
  const [, snapshot, , recovered, previousOwner, orphanedMs] = reply;
  const claimed = decodeClaimed(snapshot, recovered === 1, runId);
  if (claimed.recovered) {
    claimed.previousOwner = previousOwner ?? undefined;
    claimed.orphanedMs = Math.max(0, Number(orphanedMs) || 0);
  }
  return claimed;
}

/** The due index pair of a claim filter entry (the store writes a run's version as `String(version)`). */
function duePair(ref: WorkflowRef): DuePair {
  return { workflow: ref.workflow, version: String(ref.version) };
}

/**
 * Claims of the Redis store: candidates come from the due index (one script in the index slot, which also reports
 * abandoned kicks to repair), then each candidate is claimed by its own fenced script, which re-checks it. A claim
 * restricted to (workflow, version) pairs reads the due index of each pair (`RedisKeys.dueByVersion`), so due runs of
 * other pairs never take a place in its candidates.
 */
export class RedisClaims {
  constructor(
    private readonly runner: RedisScriptRunner,
    private readonly keys: RedisKeys,
    private readonly index: RedisIndexWriter,
    private readonly logger: RedisStoreLogger,
    private readonly kickGraceMs = KICK_GRACE_MS,
    /** The client, to drop the index entries of runs found gone (expired); without it they are repaired as before. */
    private readonly client?: () => RedisClient,
  ) {}

  /**
   * Drops the index entries of candidates whose run is gone (e.g. expired with the store's `ttl`); `found` gives the
   * due index pair a candidate was read from, if any.
   */
  private async dropGone(records: IndexRecord[], refs: readonly WorkflowRef[] | undefined, found?: Map<string, DuePair>): Promise<void> {
    if (records.length === 0) return;
    if (!this.client) {
      for (const record of records) this.index.enqueue(record, { repair: true, extraDue: found?.get(record[0]) });
      return;
    }
    const fallback = refs && new Set(refs.map((ref) => ref.workflow)).size === 1 ? refs[0].workflow : '';
    await dropGoneRuns(this.client(), this.keys, this.index, records, fallback, (record) => found?.get(record[0]));
  }

  /** `claimRuns` of the port (after its argument checks). */
  async claimRuns(lease: LeaseRequest, limit: number, refs: readonly WorkflowRef[] | undefined): Promise<ClaimedRun[]> {
    await this.index.flush();
    const pairs = refs?.map(duePair);
    const dueKeys = pairs ? pairs.map((p) => this.keys.dueByVersion(p.workflow, p.version)) : [this.keys.due];
    const claimed: ClaimedRun[] = [];
    const tried = new Set<string>();
    let failure: unknown;
    for (let round = 0; round < 8 && claimed.length < limit; round++) {
      const want = (limit - claimed.length) * 2 + 8;
      const [candidates, orphans, from] = await this.runner.run<[string[], string[], number[]]>({
        script: CLAIM_CANDIDATES,
        keys: [this.keys.kicks, ...dueKeys],
        args: [want, this.kickGraceMs, KICK_BATCH],
      });
      if (round === 0 && orphans.length > 0) await this.repairKicks(orphans);
      // the due index pair each candidate was read from: a refused candidate of another pair leaves that index
      const found = new Map<string, DuePair>();
      if (pairs) candidates.forEach((id, i) => found.set(id, pairs[Number(from?.[i]) - 1]));
      const fresh = candidates.filter((id) => !tried.has(id));
      const gone: IndexRecord[] = [];
      const error = await this.claimEach(fresh, limit, claimed, tried, (id) => this.claimCall(id, lease, refs), (record) => {
        if (record[1] !== '1') gone.push(record);
        else this.index.enqueue(record, { repair: true, extraDue: found.get(record[0]) }); // not claimable: correct its due entries
      });
      failure ??= error;
      await this.dropGone(gone, refs, found);
      await this.index.flush();
      if (candidates.length < want || fresh.length === 0) break;
    }
    if (failure !== undefined) {
      // NOTE: the runs claimed are returned (they are leased to this caller); the failed claim is only reported.
      if (claimed.length === 0) throw failure;
      this.logger.warn(`Redis store: claiming a run failed (${errorMessage(failure)}); the ${claimed.length} other run(s) were claimed.`);
    }
    return claimed;
  }

  /** `claimRun` of the port (after its argument checks). */
  async claimRun(runId: string, lease: LeaseRequest, refs: readonly WorkflowRef[] | undefined): Promise<ClaimedRun | undefined> {
    const result = await this.runner.run<ClaimReply>(this.claimCall(runId, lease, refs));
    if (result[0] !== 1) {
      if (result[1][1] !== '1') await this.dropGone([result[1]], refs);
      else this.index.enqueue(result[1]);
      return undefined;
    }
    this.index.enqueue(result[2]);
    return claimedOf(result, runId);
  }

  /**
   * `claimOwnedRuns` of the port (after its argument checks). No index knows lease owners, so the candidates are the
   * due indexes (every run with a claimable status and a due time, leased or not), read a page at a time in one slot;
   * each candidate is then checked and claimed by its own fenced script in its run's slot. Runs once at worker start.
   * NOTE: pages are by rank, so entries that leave the index meanwhile can make a page skip a run: that run is then
   * recovered when its lease expires, as without this call.
   */
  async claimOwnedRuns(lease: LeaseRequest, limit: number, refs: readonly WorkflowRef[] | undefined): Promise<ClaimedRun[]> {
    await this.index.flush();
    const dueKeys = refs ? refs.map((ref) => this.keys.dueByVersion(ref.workflow, ref.version)) : [this.keys.due];
    const claimed: ClaimedRun[] = [];
    const tried = new Set<string>();
    let failure: unknown;
    for (let start = 0; claimed.length < limit; start += OWNED_PAGE) {
      const [candidates, more] = await this.runner.run<[string[], number]>({
        script: OWNED_CANDIDATES,
        keys: dueKeys,
        args: [start, OWNED_PAGE],
      });
      const fresh = candidates.filter((id) => !tried.has(id));
      failure ??= await this.claimEach(fresh, limit, claimed, tried, (id) => this.claimCall(id, lease, refs, CLAIM_OWNED_RUN));
      await this.index.flush();
      if (more !== 1) break;
    }
    if (failure !== undefined) {
      if (claimed.length === 0) throw failure;
      this.logger.warn(`Redis store: reclaiming a run failed (${errorMessage(failure)}); the ${claimed.length} other run(s) were claimed.`);
    }
    return claimed;
  }

  /**
   * Claims each of `ids` with its own fenced script until `claimed` holds `limit` runs, never sending more calls at once
   * than runs still wanted (so a batch cannot claim past `limit`). Every id sent is added to `tried`; a refused claim's
   * index record goes to `onRefused`. Returns the first failed call's error (the other runs are still claimed).
   */
  private async claimEach(
    ids: string[],
    limit: number,
    claimed: ClaimedRun[],
    tried: Set<string>,
    call: (runId: string) => ScriptCall,
    onRefused?: (record: IndexRecord) => void,
  ): Promise<unknown> {
    let failure: unknown;
    let next = 0;
    while (next < ids.length && claimed.length < limit) {
      const batch = ids.slice(next, next + (limit - claimed.length));
      next += batch.length;
      const results = await this.runner.runSettled<ClaimReply>(batch.map(call));
      results.forEach((settled, i) => {
        tried.add(batch[i]);
        if (!settled.ok) {
          failure ??= settled.error;
          return;
        }
        const result = settled.value;
        if (result[0] === 1) {
          claimed.push(claimedOf(result, batch[i]));
          this.index.enqueue(result[2]);
        } else onRefused?.(result[1]);
      });
    }
    return failure;
  }

  private claimCall(runId: string, lease: LeaseRequest, refs: readonly WorkflowRef[] | undefined, script: LuaScript = CLAIM_RUN): ScriptCall {
    const keys = this.keys.run(runId);
    const filter = refs ? [String(refs.length), ...refs.flatMap((ref) => [ref.workflow, String(ref.version)])] : ['-1'];
    return {
      script,
      keys: [keys.run, keys.steps],
      args: [runId, lease.owner, integerArg('The lease', lease.leaseMs), randomUUID(), ...filter],
    };
  }

  /** Re-derives the index entries of runs whose kick was left behind (the writer died before applying them). */
  private async repairKicks(members: string[]): Promise<void> {
    const reads = await this.runner.runMany<[Snapshot, IndexRecord]>(
      members.map((member) => {
        const runId = runIdOfKick(member);
        const keys = this.keys.run(runId);
        return { script: READ_RUN, keys: [keys.run, keys.steps], args: [runId] };
      }),
    );
    reads.forEach(([, record], i) => this.index.enqueue(record, { kick: members[i], repair: true }));
    await this.index.flush();
  }
}
