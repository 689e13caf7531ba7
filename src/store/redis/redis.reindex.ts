import type { Redis } from 'ioredis';
import type { IndexRecord, Snapshot } from './redis.codec.js';
import { isCluster, type RedisClient } from './redis.connection.js';
import { dropGoneRuns } from './redis.expiry.js';
import type { RedisIndexWriter } from './redis.index-writer.js';
import type { RedisKeys } from './redis.keys.js';
import { deleteLegacyDueIndexes, markIndexLayout, scanIndexKeys } from './redis.layout.js';
import type { RedisScriptRunner } from './redis.script-runner.js';
import { RUN_FIELDS } from './redis.fields.js';
import { READ_RUN } from './redis.scripts.js';

/** What a reindex reads and writes with. */
export interface ReindexDeps {
  client: RedisClient;
  runner: RedisScriptRunner;
  keys: RedisKeys;
  index: RedisIndexWriter;
}

/**
 * Rebuilds the global index entries (list, claims, purge) from the runs themselves: every run hash of the prefix is
 * read (SCAN, on every master of a Cluster) and its index record applied, and index entries of runs that no longer
 * exist are dropped, as are entries of a (workflow, version) due index whose run is of another pair (or gone) and the
 * due indexes of layout 1 (see `redis.layout.ts`); the key layout is then marked current. Returns the number of runs
 * indexed.
 */
export async function reindexRuns({ client, runner, keys, index }: ReindexDeps): Promise<number> {
  await index.flush();
  const masters: Redis[] = isCluster(client) ? client.nodes('master') : [client];
  const pattern = `${keys.prefix.replace(/[*?[\]\\]/g, '\\$&')}{*}:r`;
  let count = 0;
  const read = (ids: string[]) =>
    runner.runMany<[Snapshot, IndexRecord]>(
      ids.map((id) => {
        const runKeys = keys.run(id);
        return { script: READ_RUN, keys: [runKeys.run, runKeys.steps], args: [id] };
      }),
    );
  for (const node of masters) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      const runKeys = found.filter((key) => key.startsWith(keys.prefix) && !key.startsWith(keys.index));
      if (runKeys.length === 0) continue;
      const pipeline = node.pipeline();
      for (const key of runKeys) pipeline.hget(key, RUN_FIELDS.runId);
      const ids = ((await pipeline.exec()) ?? []).map(([, id]) => id).filter((id): id is string => typeof id === 'string');
      const reads = await read(ids);
      reads.forEach(([, record]) => {
        if (record[1] === '1') count++;
        index.enqueue(record, { repair: true });
      });
      await index.flush();
    } while (cursor !== '0');
  }
  // index entries whose run is gone
  let cursor = '0';
  const seen = new Set<string>();
  do {
    const [next, flat] = await client.zscan(keys.created, cursor, 'COUNT', 500);
    cursor = next;
    const ids = flat.filter((_, i) => i % 2 === 0).filter((id) => !seen.has(id));
    ids.forEach((id) => seen.add(id));
    if (ids.length === 0) continue;
    const reads = await read(ids);
    await dropGoneRuns(
      client,
      keys,
      index,
      reads.map(([, record]) => record),
    );
    await index.flush();
  } while (cursor !== '0');
  // entries of priority levels (see redis.keys.ts) whose run is gone or of another level or pair: the runs' records
  // above wrote the entries they have; these are left over
  const levelKeys = [...(await scanIndexKeys(client, keys.dueByVersionPattern)), ...(await scanIndexKeys(client, keys.dueLevelPattern))];
  for (const key of levelKeys) {
    const level = keys.parseDueLevel(key);
    if (!level) continue;
    const pair = level.dueKey === keys.due ? undefined : keys.parseDueByVersion(level.dueKey);
    let zcursor = '0';
    do {
      const [next, flat] = await client.zscan(key, zcursor, 'COUNT', 500);
      zcursor = next;
      const ids = [...new Set(flat.filter((_, i) => i % 2 === 0))];
      if (ids.length === 0) continue;
      const reads = await read(ids);
      const stale = ids.filter((_, i) => {
        const record = reads[i][1];
        if (record[1] !== '1' || Number(record[9] || 0) !== level.priority) return true;
        return pair !== undefined && (record[3] !== pair.workflow || record[8] !== pair.version);
      });
      if (stale.length > 0) await client.zrem(key, ...stale);
    } while (zcursor !== '0');
    if ((await client.zcard(key)) === 0) await client.zrem(keys.dueLevels(level.dueKey), String(level.priority));
  }
  // entries of (workflow, version) due indexes whose run is of another pair, or gone
  for (const key of await scanIndexKeys(client, keys.dueByVersionPattern)) {
    const pair = keys.parseDueByVersion(key);
    if (!pair) continue;
    let zcursor = '0';
    do {
      const [next, flat] = await client.zscan(key, zcursor, 'COUNT', 500);
      zcursor = next;
      const ids = [...new Set(flat.filter((_, i) => i % 2 === 0))];
      if (ids.length === 0) continue;
      const reads = await read(ids);
      const gone: IndexRecord[] = [];
      for (const [, record] of reads) {
        if (record[1] !== '1') gone.push(record);
        else if (record[3] !== pair.workflow || record[8] !== pair.version) index.enqueue(record, { repair: true, extraDue: pair });
      }
      await dropGoneRuns(client, keys, index, gone, '', () => pair);
      await index.flush();
    } while (zcursor !== '0');
  }
  await deleteLegacyDueIndexes(client, keys);
  await markIndexLayout(runner, keys);
  return count;
}
