import { parseDuration } from '../../definition/duration.js';
import { ConfigurationError } from '../../errors/errors.js';
import { TERMINAL_STATUSES } from '../run-state-machine.js';
import type { IndexRecord, Snapshot } from './redis.codec.js';
import { scorePairs, type RedisClient } from './redis.connection.js';
import type { DuePair, RedisIndexWriter } from './redis.index-writer.js';
import type { RedisKeys } from './redis.keys.js';
import type { RedisScriptRunner } from './redis.script-runner.js';
import { READ_RUN } from './redis.scripts.js';

/**
 * Expiry of ended runs (`RedisStoreOptions.ttl`).
 *
 * The commit that ends a run sets its keys (`:r`, `:s`, the history `:e`; `:q` is deleted then) to expire `ttl` ms
 * later, in the same script (`expireOnEnd` commit op); `retry` of a failed run removes the expiry of them all
 * (`PERSIST`, control script), and a replace writes new keys, which have none. The global index entries (list, purge:
 * another slot) cannot expire with the run; they go when the run is seen to be gone:
 * - `listRuns` skips an entry whose run is gone and drops it (the index writer, right after the call);
 * - `purge` (and so the `retention` option) first sweeps the finished indexes for runs that ended more than `ttl`
 *   ago and drops the entries of those that are gone, whatever statuses and age it was asked to purge;
 * - `reindex()` drops the entries of every run that is gone.
 * Claims never see them: an ended run has no due entry. `countRuns` (index cardinalities) counts them under their
 * terminal status until then: a small overcount, at most the runs that expired since the last sweep.
 */

/** Entries of one finished index read per round of a sweep. */
const SWEEP_BATCH = 500;

/**
 * The store's ttl in ms, from a number of ms or an `ms` string ('30d').
 * @throws ConfigurationError for anything but a positive duration
 */
export function parseTtl(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const parsed = typeof value === 'number' || typeof value === 'string' ? parseDuration(value) : undefined;
  const ms = parsed === undefined ? undefined : Math.ceil(parsed);
  if (ms === undefined || !(ms > 0) || !Number.isSafeInteger(ms)) {
    throw new ConfigurationError(
      `Redis store: ttl must be a positive number of milliseconds or a duration string such as '1h' or '30d' (got ${
        typeof value === 'string' ? JSON.stringify(value) : String(value)
      }).`,
    );
  }
  return ms;
}

/** The workflow of a meta entry (`<index version>|<status>|<workflow>`), or '' when it has none or cannot be read. */
function metaWorkflow(meta: string | null): string {
  if (!meta) return '';
  const a = meta.indexOf('|');
  const b = a === -1 ? -1 : meta.indexOf('|', a + 1);
  return b === -1 ? '' : meta.slice(b + 1);
}

/**
 * Drops the index entries of runs that are gone (records with `exists` '0'), including their workflow's list entries:
 * the workflow is read from the index meta, since the run that named it is gone. Returns how many records it queued
 * (applied at the index writer's next flush).
 */
export async function dropGoneRuns(
  client: RedisClient,
  keys: RedisKeys,
  index: RedisIndexWriter,
  records: readonly IndexRecord[],
  /** The workflow whose list entries to drop when the meta names none (a list by workflow). */
  fallbackWorkflow = '',
  /** The due index (workflow, version) a record's run was found in, if any: its entry there is dropped too. */
  dueOf?: (record: IndexRecord) => DuePair | undefined,
): Promise<number> {
  const gone = records.filter((record) => record[1] !== '1');
  if (gone.length === 0) return 0;
  const metas = (await client.hmget(keys.meta, ...gone.map((record) => record[0]))) as (string | null)[];
  gone.forEach((record, i) =>
    index.enqueue(record, { extra: metaWorkflow(metas[i]) || fallbackWorkflow, extraDue: dueOf?.(record), repair: true }),
  );
  return gone.length;
}

/** What a sweep reads and writes with. */
export interface SweepDeps {
  client: RedisClient;
  runner: RedisScriptRunner;
  keys: RedisKeys;
  index: RedisIndexWriter;
}

/**
 * One pass over the finished indexes: every run that ended more than `ttlMs` ago is read, and the index entries of
 * those that are gone (expired) are dropped. Runs still there (ended before the ttl was set) are left alone. Returns
 * the number of runs whose entries were dropped.
 */
export async function sweepExpired({ client, runner, keys, index }: SweepDeps, ttlMs: number): Promise<number> {
  await index.flush();
  const [seconds, micros] = (await client.time()) as [string | number, string | number];
  const cutoff = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - ttlMs;
  let dropped = 0;
  for (const status of TERMINAL_STATUSES) {
    const key = keys.finished(status);
    const seen = new Set<string>();
    let from = '-inf';
    for (let round = 0; round < 100_000; round++) {
      const page = scorePairs(await client.call('ZRANGE', key, from, `(${cutoff}`, 'BYSCORE', 'LIMIT', 0, SWEEP_BATCH, 'WITHSCORES'));
      const ids: string[] = [];
      for (const [id] of page) if (!seen.has(id)) ids.push(id);
      if (ids.length === 0) break;
      ids.forEach((id) => seen.add(id));
      const reads = await runner.runMany<[Snapshot, IndexRecord]>(
        ids.map((id) => {
          const runKeys = keys.run(id);
          return { script: READ_RUN, keys: [runKeys.run, runKeys.steps], args: [id] };
        }),
      );
      dropped += await dropGoneRuns(
        client,
        keys,
        index,
        reads.map(([, record]) => record),
      );
      await index.flush();
      if (page.length < SWEEP_BATCH) break;
      // the next page starts at the last score read (entries of that score already seen are skipped)
      from = page[page.length - 1][1];
    }
  }
  return dropped;
}
