/**
 * Poison runs of the chaos soak: a few runs whose stored state the soak damages while they sleep, by writing the
 * store's own fields directly (not through the fault proxy). The checker then requires that each ends `failed` with
 * `CorruptRunError` naming it, that no worker process crashed, and that every other run is unaffected.
 *
 * The damage is conditional (the run must still be sleeping and unleased), so a worker that claimed the run first
 * cannot overwrite it with a good state: a run not damaged in time is not counted as poisoned.
 */
import { Flow, Step, Workflow } from '../src/index.js';

export const POISON_WORKFLOW = 'chaos-poison';
/** How long a poison run sleeps before its second step: time enough to damage it first. */
export const POISON_SLEEP_MS = 8_000;

@Workflow(POISON_WORKFLOW)
export class ChaosPoison {
  @Step() first(input: { n: number }) {
    return Flow.sleep(POISON_SLEEP_MS, input);
  }
  @Step() second(input: { n: number }) {
    return { n: input.n, done: true };
  }
}

/** Damages a sleeping, unleased run's engine state; resolves whether it did. */
export async function poisonRun(kind: string, url: string, namespace: string, runId: string): Promise<boolean> {
  if (kind === 'postgres') {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
    await client.connect();
    try {
      const schema = `"${namespace.replace(/"/g, '""')}"`;
      const res = await client.query(
        `UPDATE ${schema}.cairn_runs SET state = '{"poisoned' WHERE run_id = $1 AND status = 'sleeping' AND (lease_expires_at IS NULL OR lease_expires_at <= now())`,
        [runId],
      );
      return res.rowCount === 1;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  if (kind === 'redis') {
    const { Redis } = await import('ioredis');
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    await redis.connect();
    try {
      const tag = Buffer.from(runId, 'utf8').toString('base64url');
      const key = `${namespace}{${tag}}:r`;
      const script = `if redis.call('HGET', KEYS[1], 'st') == 'sleeping' and not redis.call('HGET', KEYS[1], 'lt') then
        redis.call('HSET', KEYS[1], 'state', '{"poisoned') return 1 end return 0`;
      return (await redis.eval(script, 1, key)) === 1;
    } finally {
      redis.disconnect();
    }
  }
  throw new Error(`poisonRun: unsupported store ${kind} (PGlite: poisonInProcess, in the worker that holds the folder)`);
}

/**
 * PGlite: the same damage, made by the worker process that has the data folder open (the driver asks it over its IPC
 * channel), through its store's own SQL session. Reaches into the store's private fields: a test's hack, on purpose.
 */
export async function poisonInProcess(store: unknown, runId: string): Promise<boolean> {
  const s = store as { client?: { query(sql: string, params: unknown[]): Promise<unknown[]> }; names?: { runs: string } };
  if (!s.client || !s.names) throw new Error('poisonInProcess: not a PostgreSQL/PGlite store');
  const rows = await s.client.query(
    `UPDATE ${s.names.runs} SET state = '{"poisoned' WHERE run_id = $1 AND status = 'sleeping' AND (lease_expires_at IS NULL OR lease_expires_at <= now()) RETURNING run_id`,
    [runId],
  );
  return rows.length === 1;
}
