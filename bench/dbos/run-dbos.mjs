/**
 * The bench/run.ts workloads on DBOS Transact TS (@dbos-inc/dbos-sdk 5.3.x), for comparison.
 *
 *   npm install --prefix bench/dbos --no-audit --no-fund   # once (bench/dbos/node_modules)
 *   node bench/dbos/run-dbos.mjs --url=<postgres url> [--smoke] [--scenarios=seq3,conc64,roundtrips] [--trace]
 *
 * DBOS runs with its default configuration (system database pool of 10, LISTEN/NOTIFY on, default
 * serializer) on a fresh system database `dbos_bench_<random>` that DBOS creates on the server of
 * --url; it is dropped at the end. Only the log level is set (warn), so that nothing but the result
 * lines reaches stdout:
 *   bench store=dbos scenario=seq3 wf_per_s=… p50_ms=… p99_ms=… runs=500
 *   bench store=dbos scenario=conc64 wf_per_s=… p50_ms=… p99_ms=… runs=2000
 *   bench store=dbos scenario=roundtrips roundtrips=… commits=… runs=50
 * and, only when asked for with --scenarios=…,steps20 (a 20-step workflow, as bench/run.ts's bench20):
 *   bench store=dbos scenario=steps20 wf_per_s=… p50_ms=… p99_ms=… step_ms=… runs=100
 * --smoke: 5 / 10 / 3 / 2 runs. --trace: prints the SQL of one bench3 run to stderr.
 *
 * --serve: for measurements interleaved with cairn's (bench/run.ts). After launch and warm-up it prints `ready`,
 * then reads commands from stdin, one per line:
 *   `seq3 <runs>` / `conc64 <runs>`  → runs them and prints `chunk <elapsed ms> <latencies ms, comma-separated>`
 *   `done`                            → runs the other --scenarios (not seq3/conc64) as above, shuts down, exits.
 *
 * Round trips are counted by wrapping pg.Client.prototype.query (every statement DBOS sends, through
 * its pool or a checked-out client, is one call there); commits are explicit COMMITs plus writes
 * sent outside a transaction (autocommit).
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';

const args = process.argv.slice(2);
const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const smoke = args.includes('--smoke');
const trace = args.includes('--trace');
const serve = args.includes('--serve');
const url = flag('url') ?? process.env.DATABASE_URL;
const scenariosWanted = (flag('scenarios') ?? 'seq3,conc64,roundtrips').split(',');
if (!url) {
  console.error('usage: node bench/dbos/run-dbos.mjs --url=<postgres url> [--smoke]');
  process.exit(2);
}

// ---- round-trip counter: installed before DBOS loads (DBOS resolves the same `pg` module) ----
let queries = 0;
let commits = 0;
let traced = null;
const inTx = new WeakMap();
const origQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function (config, values, callback) {
  queries++;
  const text = (typeof config === 'string' ? config : config?.text ?? '').trim();
  const head = text.slice(0, 16).toUpperCase();
  if (/^(BEGIN|START TRANSACTION)/.test(head)) inTx.set(this, true);
  else if (/^(COMMIT|END)/.test(head)) {
    inTx.set(this, false);
    commits++;
  } else if (/^ROLLBACK/.test(head)) inTx.set(this, false);
  else if (!inTx.get(this) && /^(INSERT|UPDATE|DELETE|WITH)/.test(head)) commits++;
  if (traced) traced.push(text.replace(/\s+/g, ' ').slice(0, 160));
  return origQuery.call(this, config, values, callback);
};

const { DBOS } = await import('@dbos-inc/dbos-sdk');

function pct(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function line(scenario, fields) {
  const rest = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(2)) : v}`)
    .join(' ');
  console.log(`bench store=dbos scenario=${scenario} ${rest}`);
}

// ---- the bench3 workflow: three steps returning small objects, as in bench/run.ts ----
const a = DBOS.registerStep(async (input) => ({ n: input.n, a: 1 }), { name: 'a' });
const b = DBOS.registerStep(async (prev) => ({ ...prev, b: 2 }), { name: 'b' });
const c = DBOS.registerStep(async (prev) => ({ ...prev, c: 3 }), { name: 'c' });
const bench3 = DBOS.registerWorkflow(
  async (input) => {
    const x = await a(input);
    const y = await b(x);
    return c(y);
  },
  { name: 'bench3' },
);

// ---- bench20: twenty steps, each { n } -> { n: n + 1 } ----
const steps20 = Array.from({ length: 20 }, (_, i) =>
  DBOS.registerStep(async (prev) => ({ n: prev.n + 1 }), { name: `s${String(i).padStart(2, '0')}` }),
);
const bench20 = DBOS.registerWorkflow(
  async (input) => {
    let x = input;
    for (const step of steps20) x = await step(x);
    return x;
  },
  { name: 'bench20' },
);

/** Start a run and wait for its result (what cairn's client.execute does: start + handle.result()). */
async function execute(n) {
  const handle = await DBOS.startWorkflow(bench3)({ n });
  const out = await handle.getResult();
  if (out?.c !== 3 || out.n !== n) throw new Error(`wrong result for n=${n}: ${JSON.stringify(out)}`);
  return out;
}

async function execute20(n) {
  const handle = await DBOS.startWorkflow(bench20)({ n });
  const out = await handle.getResult();
  if (out?.n !== n + 20) throw new Error(`wrong result for n=${n}: ${JSON.stringify(out)}`);
  return out;
}

async function seq(runs, run = execute) {
  const lat = [];
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    await run(i);
    lat.push(performance.now() - s);
  }
  return { wf: runs / ((performance.now() - t0) / 1000), lat: lat.sort((x, y) => x - y) };
}

async function conc(runs, inFlight) {
  const lat = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < runs) {
        const i = next++;
        const s = performance.now();
        await execute(i);
        lat.push(performance.now() - s);
      }
    }),
  );
  return { wf: runs / ((performance.now() - t0) / 1000), lat: lat.sort((x, y) => x - y) };
}

const dbName = `dbos_bench_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const sysUrl = new URL(url);
sysUrl.pathname = `/${dbName}`;

async function dropDatabase() {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    // DBOS.shutdown() lets its LISTEN connection go without waiting for it to close: give it a moment,
    // so that FORCE does not have to cut it (which DBOS would log as a pool error).
    for (let i = 0; i < 40; i++) {
      const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [dbName]);
      if (rows[0].n === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** --serve: runs chunks of seq3/conc64 on command until `done` (see the header). */
async function serveChunks() {
  const { createInterface } = await import('node:readline');
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  console.log('ready');
  for (;;) {
    const { value, done } = await lines.next();
    if (done || value.trim() === 'done') return;
    const [scenario, count] = value.trim().split(' ');
    const n = Number(count);
    if (!Number.isInteger(n) || n < 1 || (scenario !== 'seq3' && scenario !== 'conc64')) throw new Error(`bad command: ${value}`);
    const t0 = performance.now();
    const r = scenario === 'seq3' ? await seq(n) : await conc(n, 64);
    console.log(`chunk ${performance.now() - t0} ${r.lat.join(',')}`);
  }
}

async function main() {
  DBOS.setConfig({ name: 'cairn-bench', systemDatabaseUrl: sysUrl.toString(), logLevel: 'warn' });
  await DBOS.launch();
  try {
    // warm-up: WARMUP_RUNS then WARMUP_CONC_RUNS, as in bench/run.ts
    await seq(smoke ? 2 : 1_500);
    await conc(smoke ? 2 : 1_000, 64);
    if (trace) {
      traced = [];
      await execute(-1);
      const lines = traced;
      traced = null;
      console.error(`-- SQL of one bench3 run (${lines.length} statements):`);
      for (const l of lines) console.error(`   ${l}`);
    }
    if (serve) await serveChunks();
    if (!serve && scenariosWanted.includes('seq3')) {
      const n = smoke ? 5 : 500;
      const r = await seq(n);
      line('seq3', { wf_per_s: r.wf, p50_ms: pct(r.lat, 50), p99_ms: pct(r.lat, 99), runs: n });
    }
    if (!serve && scenariosWanted.includes('conc64')) {
      const n = smoke ? 10 : 2_000;
      const r = await conc(n, 64);
      line('conc64', { wf_per_s: r.wf, p50_ms: pct(r.lat, 50), p99_ms: pct(r.lat, 99), runs: n });
    }
    if (scenariosWanted.includes('roundtrips')) {
      const runs = smoke ? 3 : 50;
      queries = 0;
      commits = 0;
      for (let i = 0; i < runs; i++) await execute(i);
      line('roundtrips', { roundtrips: queries / runs, commits: commits / runs, runs });
    }
    if (scenariosWanted.includes('steps20')) {
      const runs = smoke ? 2 : 100;
      const r = await seq(runs, execute20);
      line('steps20', { wf_per_s: r.wf, p50_ms: pct(r.lat, 50), p99_ms: pct(r.lat, 99), step_ms: pct(r.lat, 50) / 20, runs });
    }
  } finally {
    await DBOS.shutdown();
    await dropDatabase().catch((e) => console.error(`could not drop ${dbName}: ${e.message}`));
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
