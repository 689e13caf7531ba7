/**
 * npm run chaos -- --store=postgres|redis|pglite --runs=N --workers=W --duration=60s --seed=S
 *                  [--lease=2s] [--poll=200ms] [--drain=90s] [--slack=1500ms] [--dir=/tmp/…]
 *
 * Prints one line:
 *   chaos store=<s> runs=N faults=F lost=0 duplicated=0 stuck=0 wrong_status=0 max_resume_ms=… poisoned=P crashed=C
 *         over_limit=0 over_rate=0 bad_debounce=0 early=0 dup_ticks=0 missed_ticks=0
 * and exits 1 on any violation, after printing the seed, the offending run ids and the evidence (stderr).
 * See docs/chaos.md.
 */
import ms from 'ms';
import { runSoak, type SoakOptions } from './soak.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const duration = (name: string, fallback: number): number => {
  const raw = flag(name);
  if (raw === undefined) return fallback;
  const n = /^\d+$/.test(raw) ? Number(raw) : (ms as unknown as (s: string) => number | undefined)(raw);
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new Error(`--${name}: not a duration: ${raw}`);
  return n;
};

const store = (flag('store') ?? 'postgres') as SoakOptions['store'];
if (!['postgres', 'redis', 'pglite'].includes(store)) throw new Error(`--store must be postgres, redis or pglite (got ${store})`);
const durationMs = duration('duration', 60_000);
const opts: SoakOptions = {
  store,
  durationMs,
  runs: Number(flag('runs') ?? Math.round(durationMs / 100)),
  // NOTE: PGlite runs one worker process (one process per data folder); --workers=W>1 with it is refused by the soak.
  workers: Number(flag('workers') ?? (store === 'pglite' ? 1 : 3)),
  seed: Number(flag('seed') ?? Math.floor(Math.random() * 2 ** 31)),
  leaseMs: duration('lease', 2_000),
  pollMs: duration('poll', 200),
  drainMs: duration('drain', 90_000),
  slackMs: duration('slack', 1_500),
  dir: flag('dir'),
  log: (line) => process.stderr.write(`${line}\n`),
};

try {
  const res = await runSoak(opts);
  const flowBad = res.overLimit + res.overRate + res.badDebounce + res.early + res.dupTicks + res.missedTicks;
  const bad = res.lost + res.duplicated + res.stuck + res.wrongStatus + res.crashed + flowBad;
  process.stdout.write(
    `chaos store=${store} runs=${res.runs} faults=${res.faults} lost=${res.lost} duplicated=${res.duplicated} stuck=${res.stuck} wrong_status=${res.wrongStatus} max_resume_ms=${res.maxResumeMs} poisoned=${res.poisoned} crashed=${res.crashed}` +
      ` over_limit=${res.overLimit} over_rate=${res.overRate} bad_debounce=${res.badDebounce} early=${res.early} dup_ticks=${res.dupTicks} missed_ticks=${res.missedTicks}\n`,
  );
  process.stderr.write(`chaos: child runs checked ${res.childRuns}, step re-executions ${res.reExecutions} (${res.staleAfterStop} by a worker just resumed from SIGSTOP, fenced), max resume at ${res.maxResumeAt ?? '-'}; ledger, faults and worker logs in ${res.dir}\n`);
  process.stderr.write(`chaos: ${res.flowStats}\n`);
  if (bad > 0) {
    const ids = [...new Set(res.violations.map((v) => v.run))];
    process.stderr.write(`chaos: VIOLATIONS with --seed=${opts.seed}; runs: ${ids.join(' ')}\n`);
    for (const v of res.violations.slice(0, 200)) process.stderr.write(`  ${v.kind} ${v.run}: ${v.detail}\n`);
    process.exit(1);
  }
  process.exit(0);
} catch (error) {
  process.stderr.write(`chaos: failed (seed ${opts.seed}): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(2);
}
