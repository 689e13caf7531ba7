/**
 * The throwaway PostgreSQL server of the bench (when DATABASE_URL is not set), prepared like a server that has been
 * running for a while.
 *
 * A fresh cluster has no WAL segments to reuse: each 16 MB segment is created and zero-filled on first use, during
 * which every commit waits. On this bench's VM that stalled all commits for about 250 ms once per ~2,000 `conc64` runs
 * (every store call of the 64 runs in flight took 250–280 ms at once, while no statement took over 100 ms to execute
 * and the Node event loop never blocked over 40 ms): about a tenth of the time at `conc64`, more for the store that
 * writes faster. A server in production recycles its old segments at each checkpoint and never pays this. So the
 * bench writes about 500 MB of WAL once (a table it drops) and checkpoints, with `min_wal_size` large enough that those
 * segments are kept for reuse. Cairn and DBOS share this server.
 */
import pg from 'pg';
import { startPostgres, type PostgresServer } from '../test/setup/postgres-server.js';

/** WAL written before measuring (rows of ~500 bytes): about 35 segments, recycled from then on. */
const PREFILL_ROWS = 1_000_000;

export async function startBenchPostgres(log: (line: string) => void = () => undefined): Promise<PostgresServer> {
  const server = await startPostgres({ settings: { min_wal_size: '1GB', max_wal_size: '2GB' } });
  const t0 = performance.now();
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    await client.query(`CREATE TABLE bench_wal_prefill AS SELECT g, repeat('x', 500) AS x FROM generate_series(1, ${PREFILL_ROWS}) g`);
    await client.query('DROP TABLE bench_wal_prefill');
    // NOTE: the first checkpoint ends the segments' use; after the switch the second one recycles them.
    await client.query('CHECKPOINT');
    await client.query('SELECT pg_switch_wal()');
    await client.query('CHECKPOINT');
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM pg_ls_waldir()');
    log(`# postgres: ${rows[0].n} WAL segments ready for reuse (${Math.round(performance.now() - t0)} ms)`);
  } finally {
    await client.end();
  }
  return server;
}
