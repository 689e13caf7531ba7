import { randomUUID } from 'node:crypto';
import type { ClaimedRun, LeaseRequest, WorkflowRef } from '../workflow-store.interface.js';
import { decodeClaimed, integerArg, type IndexRecord, type Snapshot } from './redis.codec.js';
import type { RedisClient } from './redis.connection.js';
import { errorMessage } from './redis.errors.js';
import { dropGoneRuns } from './redis.expiry.js';
import type { DuePair, RedisIndexWriter } from './redis.index-writer.js';
import type { RedisKeys } from './redis.keys.js';
import type { RedisStoreLogger } from './redis-store-options.interface.js';
import { runIdOfKick, type RedisScriptRunner, type ScriptCall, type Settled } from './redis.script-runner.js';
import { CLAIM_CANDIDATES, CLAIM_OWNED_RUN, CLAIM_RUN, FLOW_INDEX, OWNED_CANDIDATES, READ_RUN, type LuaScript } from './redis.scripts.js';

/** A kick (write-ahead mark of an index update) left this long after it was first seen is repaired by claimers. */
const KICK_GRACE_MS = 5_000;
/** Abandoned kicks repaired per claim. */
const KICK_BATCH = 100;

/** Due-index entries read per page by `claimOwnedRuns`. */
const OWNED_PAGE = 1_000;

/**
 * What a run's limits need from an admission (a claim script's `2` reply): slot epoch, cc, rl, needs a slot (1/0), needs
 * a begin (1/0); {@link FLOW_INDEX} `admit` takes them as they are.
 */
type FlowNeeds = [string, string, string, string, string];

/**
 * A claim script's reply: `{1, snapshot, record, recovered, previousOwner, orphanedMs}`, `{0, record}`, or
 * `{2, record, needs}` (the run's limits need an admission first: nothing written).
 */
type ClaimReply = [1, Snapshot, IndexRecord, number, string | null, number] | [0, IndexRecord] | [2, IndexRecord, FlowNeeds];

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
 * other pairs never take a place in its candidates. Higher priorities come first (the due indexes' priority levels).
 *
 * Flow control (rules F1–F4, see `redis.keys.ts`): the candidates script admits the runs with limits (their slot and
 * begin are taken in the index slot) and passes over the others, moving them out of the due range it reads (a run
 * blocked by its concurrency limit is parked until its key gives a slot back; one blocked by its rate limit is pushed
 * to when its window frees), and reads again when its budget ran out; each claim script then takes the admission. A
 * claim script that finds a run's limits not covered (`claimRun`, `claimOwnedRuns`, a candidate admitted for an older
 * slot epoch, or after the candidates reserved for) replies `2`: the run is admitted by `FLOW_INDEX` and claimed again.
 * On a Redis that is not a Cluster the claim script is given the flow entries and takes the admission itself (one
 * script, no `2` reply). Runs without limits never take that path: their claims are the round trips they always were.
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
    /**
     * Whether the claim scripts take a run's admission themselves (rules F2, F3: {@link FLOW_INDEX} `admit` in the same
     * script, one round trip): when one node holds every key (standalone, Sentinel; checked by the store's `init()`).
     * On a Cluster the index slot is another slot (most often another node): the admission is a write of its own.
     */
    private readonly admitsInClaim: () => boolean = () => false,
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
      const [candidates, orphans, from, tokens, more] = await this.runner.run<[string[], string[], number[], string[], number?]>({
        script: CLAIM_CANDIDATES,
        keys: [this.keys.kicks, this.keys.flow, ...dueKeys],
        args: [want, this.kickGraceMs, KICK_BATCH, limit - claimed.length],
      });
      const admissions = new Map<string, string>();
      candidates.forEach((id, i) => {
        if (tokens?.[i]) admissions.set(id, tokens[i]);
      });
      if (round === 0 && orphans.length > 0) await this.repairKicks(orphans);
      // the due index pair each candidate was read from: a refused candidate of another pair leaves that index
      const found = new Map<string, DuePair>();
      if (pairs) candidates.forEach((id, i) => found.set(id, pairs[Number(from?.[i]) - 1]));
      const fresh = candidates.filter((id) => !tried.has(id));
      const gone: IndexRecord[] = [];
      const error = await this.claimEach(fresh, limit, claimed, tried, (id, admission) => this.claimCall(id, lease, refs, CLAIM_RUN, admission ?? admissions.get(id)), (record) => {
        if (record[1] !== '1') gone.push(record);
        else this.index.enqueue(record, { repair: true, extraDue: found.get(record[0]) }); // not claimable: correct its due entries
      });
      failure ??= error;
      await this.dropGone(gone, refs, found);
      await this.index.flush();
      // `more`: the read stopped at its budget after moving runs passed over out of the due range (parked by their
      // concurrency limit, pushed by their rate limit), so the next read reaches the runs behind them. Read again for
      // that only while nothing was claimed: a claim that has runs returns them (the next one goes on from there).
      const further = Number(more) === 1 && claimed.length === 0;
      if (!further && (candidates.length < want || fresh.length === 0)) break;
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
    // NOTE: this instance's queued index records first (sent now, ahead of the claim on the same connection): a slot
    // a run that ended here gave back a moment ago is then free for the admission the claim script may take
    if (this.admitsInClaim()) void this.index.flush();
    let result = await this.runner.run<ClaimReply>(this.claimCall(runId, lease, refs));
    if (result[0] === 2) {
      // the run's limits: admitted in the index slot first (rules F2, F3), then claimed with that admission
      const [admission] = await this.admit([result[2]], [runId]);
      result = admission ? await this.runner.run<ClaimReply>(this.claimCall(runId, lease, refs, CLAIM_RUN, admission)) : [0, result[1]];
    }
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
      failure ??= await this.claimEach(fresh, limit, claimed, tried, (id, admission) => this.claimCall(id, lease, refs, CLAIM_OWNED_RUN, admission));
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
    call: (runId: string, admission?: string) => ScriptCall,
    onRefused?: (record: IndexRecord) => void,
  ): Promise<unknown> {
    let failure: unknown;
    let next = 0;
    /** Runs whose limits need an admission first (`2` replies), claimed again once admitted. */
    let admit: { runId: string; needs: FlowNeeds; record: IndexRecord }[] = [];
    const settle = (batch: string[], results: Settled<ClaimReply>[], again: boolean) => {
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
        } else if (result[0] === 2 && !again) {
          admit.push({ runId: batch[i], needs: result[2], record: result[1] });
        } else onRefused?.(result[1]);
      });
    };
    while (next < ids.length && claimed.length < limit) {
      const batch = ids.slice(next, next + (limit - claimed.length));
      next += batch.length;
      settle(batch, await this.runner.runSettled<ClaimReply>(batch.map((id) => call(id))), false);
      if (admit.length > 0 && claimed.length < limit) {
        const waiting = admit.slice(0, limit - claimed.length);
        admit = [];
        try {
          const admissions = await this.admit(
            waiting.map((run) => run.needs),
            waiting.map((run) => run.runId),
          );
          const admitted = waiting.filter((_, i) => admissions[i]);
          waiting.forEach((run, i) => {
            if (!admissions[i]) onRefused?.(run.record); // passed over by its limits
          });
          const again = admitted.map((run) => run.runId);
          settle(again, await this.runner.runSettled<ClaimReply>(admitted.map((run) => call(run.runId, admissions[waiting.indexOf(run)]))), true);
        } catch (error) {
          failure ??= error;
        }
      }
    }
    return failure;
  }

  /**
   * Admissions of runs whose limits need one (rules F2, F3), from their claim scripts' `2` replies: one `FLOW_INDEX`
   * call in the index slot, after this instance's queued index records. Returns each run's admission ('' passed over).
   */
  private async admit(needs: FlowNeeds[], runIds: string[]): Promise<string[]> {
    await this.index.flush();
    return this.runner.run<string[]>({
      script: FLOW_INDEX,
      keys: [this.keys.flow, this.keys.meta, this.keys.debounces],
      args: ['admit', ...needs.flatMap((need, i) => [runIds[i], ...need])],
    });
  }

  private claimCall(
    runId: string,
    lease: LeaseRequest,
    refs: readonly WorkflowRef[] | undefined,
    script: LuaScript = CLAIM_RUN,
    admission?: string,
  ): ScriptCall {
    const keys = this.keys.run(runId);
    const filter = refs ? [String(refs.length), ...refs.flatMap((ref) => [ref.workflow, String(ref.version)])] : ['-1'];
    const args = [runId, lease.owner, integerArg('The lease', lease.leaseMs), randomUUID(), ...filter];
    if (admission) args.push(admission);
    return { script, keys: this.admitsInClaim() ? [keys.run, keys.steps, this.keys.flow] : [keys.run, keys.steps], args };
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
