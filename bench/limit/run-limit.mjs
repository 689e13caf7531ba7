/**
 * The physical floor of a durable write on a Postgres server: a single-row INSERT loop in autocommit
 * (one statement = one round trip = one commit, with the server's own settings: synchronous_commit on),
 * with `pg` at 1 connection and at 64 connections.
 *
 *   node bench/limit/run-limit.mjs --url=<postgres url> [--smoke] [--scenarios=seq3,conc64]
 *
 * Creates a table bench_limit_<random>(id bigserial primary key, run_id text, payload text), warms up,
 * prints one line per measurement and drops the table:
 *   bench store=limit scenario=seq3 inserts_per_s=… p50_ms=… p99_ms=… conns=1 inserts=2000
 *   bench store=limit scenario=conc64 inserts_per_s=… p50_ms=… p99_ms=… conns=64 inserts=20000
 * --smoke: 20 and 200 inserts.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';

const args = process.argv.slice(2);
const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const smoke = args.includes('--smoke');
const url = flag('url') ?? process.env.DATABASE_URL;
const scenariosWanted = (flag('scenarios') ?? 'seq3,conc64').split(',');
if (!url) {
  console.error('usage: node bench/limit/run-limit.mjs --url=<postgres url> [--smoke]');
  process.exit(2);
}

const table = `bench_limit_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const insertSql = `INSERT INTO ${table} (run_id, payload) VALUES ($1, $2)`;

function pct(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function line(scenario, fields) {
  const rest = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(2)) : v}`)
    .join(' ');
  console.log(`bench store=limit scenario=${scenario} ${rest}`);
}

async function connect() {
  const client = new pg.Client({ connectionString: url });
  client.on('error', (e) => console.error(`pg client error: ${e.message}`));
  await client.connect();
  return client;
}

/** `total` inserts spread over the given clients, each client one statement at a time. */
async function insertLoop(clients, total) {
  const lat = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (client) => {
      while (next < total) {
        const i = next++;
        const s = performance.now();
        const res = await client.query(insertSql, [randomUUID(), JSON.stringify({ n: i, a: 1, b: 2, c: 3 })]);
        lat.push(performance.now() - s);
        if (res.rowCount !== 1) throw new Error('insert did not insert');
      }
    }),
  );
  return { perSec: total / ((performance.now() - t0) / 1000), lat: lat.sort((x, y) => x - y) };
}

async function main() {
  const admin = await connect();
  const clients = [];
  try {
    await admin.query(`CREATE TABLE ${table} (id bigserial primary key, run_id text, payload text)`);
    for (let i = 0; i < 64; i++) clients.push(await connect());

    const n1 = smoke ? 20 : 2_000;
    const n64 = smoke ? 200 : 20_000;
    let expected = 0;
    if (scenariosWanted.includes('seq3')) {
      const warm = smoke ? 5 : 100;
      await insertLoop(clients.slice(0, 1), warm); // warm-up
      const r1 = await insertLoop(clients.slice(0, 1), n1);
      line('seq3', { inserts_per_s: r1.perSec, p50_ms: pct(r1.lat, 50), p99_ms: pct(r1.lat, 99), conns: 1, inserts: n1 });
      expected += warm + n1;
    }
    if (scenariosWanted.includes('conc64')) {
      const warm = smoke ? 64 : 640;
      await insertLoop(clients, warm); // warm-up
      const r64 = await insertLoop(clients, n64);
      line('conc64', { inserts_per_s: r64.perSec, p50_ms: pct(r64.lat, 50), p99_ms: pct(r64.lat, 99), conns: 64, inserts: n64 });
      expected += warm + n64;
    }

    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${table}`);
    if (rows[0].n !== expected) throw new Error(`expected ${expected} rows, found ${rows[0].n}`);
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await admin.query(`DROP TABLE IF EXISTS ${table}`).catch((e) => console.error(`could not drop ${table}: ${e.message}`));
    await admin.end();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
