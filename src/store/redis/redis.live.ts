import { LIVE_STATUSES, RUN_STATUS_SET, isLive } from '../run-state-machine.js';
import type { LiveRunGroup, RunStatus } from '../workflow-store.interface.js';
import { LIVE_GROUP_SAMPLE } from '../workflow-store.interface.js';
import { PARKED_STATUS } from './redis.codec.js';
import { isCluster, scorePairs, type RedisClient } from './redis.connection.js';
import { RUN_FIELDS } from './redis.fields.js';
import { keySlot, type RedisKeys } from './redis.keys.js';

/** Index entries asked for per `ZSCAN` of a live status index. */
const SCAN_COUNT = 1_000;

/** Run hashes read per pipeline (per node on a Cluster). */
const READ_BATCH = 1_000;

/** The run hash fields a summary reads, in the order of the `HMGET` reply. */
const SUMMARY_FIELDS = [RUN_FIELDS.workflow, RUN_FIELDS.version, RUN_FIELDS.status, RUN_FIELDS.pipeline, RUN_FIELDS.currentStep] as const;

/**
 * `summarizeLiveRuns` of the Redis store. It never reads an ended run:
 * 1. the run ids come from the per-status list indexes of the live statuses (`s:<status>` for each of `LIVE_STATUSES`,
 *    the keys `countRuns` reads), scanned with `ZSCAN` (a run live through the whole call is seen at least once; an id
 *    seen twice, in two indexes while its entry moves, is read once);
 * 2. each page's runs are read with one `HMGET` of the few fields a group needs, pipelined by batches: on a Cluster,
 *    one pipeline per batch of runs whose slots one node serves (each run's hash is in its own slot).
 * A run whose hash is gone (expired with the store's `ttl`, deleted) is skipped, and so is one whose status is no
 * longer live (an index entry that lags its run); a run whose `st` is not a status is parked, shown `paused` (live), as
 * the decoder shows it. A version that is not a number is shown 0, as the decoder does.
 */
export async function summarizeLiveRuns(client: RedisClient, keys: RedisKeys): Promise<LiveRunGroup[]> {
  const groups = new Map<string, LiveRunGroup>();
  const seen = new Set<string>();
  const add = (runId: string, fields: (string | null)[]): void => {
    const [workflow, ver, st, pipeline, currentStep] = fields;
    if (st === null || st === undefined) return; // gone (or a hash without a status: a deleted run's leftovers)
    const status: RunStatus = RUN_STATUS_SET.has(st) ? (st as RunStatus) : PARKED_STATUS;
    if (!isLive(status)) return;
    const version = ver !== null && ver.trim() !== '' && Number.isFinite(Number(ver)) ? Number(ver) : 0;
    const name = workflow ?? '';
    const key = JSON.stringify([name, version, pipeline, currentStep]);
    let group = groups.get(key);
    if (!group) {
      group = { workflow: name, version, count: 0, runIds: [] };
      if (pipeline !== null) group.pipeline = pipeline;
      if (currentStep !== null) group.currentStep = currentStep;
      groups.set(key, group);
    }
    group.count++;
    if (group.runIds.length < LIVE_GROUP_SAMPLE) group.runIds.push(runId);
  };
  await Promise.all(
    LIVE_STATUSES.map(async (status) => {
      const index = keys.byStatus(status);
      let cursor = '0';
      do {
        const [next, flat] = (await client.zscan(index, cursor, 'COUNT', SCAN_COUNT)) as [string, unknown];
        cursor = String(next);
        const fresh: string[] = [];
        for (const [runId] of scorePairs(flat)) {
          if (seen.has(runId)) continue;
          seen.add(runId);
          fresh.push(runId);
        }
        const replies = await readRuns(client, keys, fresh);
        fresh.forEach((runId, i) => {
          const fields = replies[i];
          if (fields) add(runId, fields);
        });
      } while (cursor !== '0');
    }),
  );
  return [...groups.values()];
}

/**
 * The {@link SUMMARY_FIELDS} of each run (undefined when the read failed: a run id that is not one, a hash of another
 * type), in the order of `runIds`: pipelines of {@link READ_BATCH} `HMGET`s, grouped by the node that serves each run's
 * slot on a Cluster.
 */
async function readRuns(client: RedisClient, keys: RedisKeys, runIds: readonly string[]): Promise<((string | null)[] | undefined)[]> {
  const out: ((string | null)[] | undefined)[] = new Array(runIds.length);
  const batches = new Map<string, { at: number; key: string }[]>();
  runIds.forEach((runId, at) => {
    let key: string;
    try {
      key = keys.run(runId).run;
    } catch {
      return; // not a run id (an entry written by hand): nothing to read
    }
    // NOTE: ioredis sends a Cluster pipeline to one node: the runs of a batch are those whose slots it serves (a slot
    // whose node is not known yet gets a batch of its own)
    let group = '';
    if (isCluster(client)) {
      const slot = keySlot(key);
      group = client.slots[slot]?.join(';') ?? `?${slot}`;
    }
    let batch = batches.get(group);
    if (!batch) batches.set(group, (batch = []));
    batch.push({ at, key });
  });
  const chunks: { at: number; key: string }[][] = [];
  for (const batch of batches.values()) {
    for (let i = 0; i < batch.length; i += READ_BATCH) chunks.push(batch.slice(i, i + READ_BATCH));
  }
  await Promise.all(
    chunks.map(async (chunk) => {
      const pipeline = client.pipeline();
      for (const { key } of chunk) pipeline.hmget(key, ...SUMMARY_FIELDS);
      const results = (await pipeline.exec()) ?? [];
      chunk.forEach(({ at }, i) => {
        const [error, fields] = results[i] ?? [];
        if (!error && Array.isArray(fields)) out[at] = fields as (string | null)[];
      });
    }),
  );
  return out;
}
