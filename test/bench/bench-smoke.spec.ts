import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const root = resolve(import.meta.dirname, '../..');

/** Keeps the benchmark harness from rotting: `npm run bench -- --smoke` runs a few runs per scenario. No timing asserted. */
describe('bench --smoke', () => {
  it('prints a line per store and scenario, with correct results', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', '@swc-node/register/esm-register', 'bench/run.ts', '--smoke', '--stores=memory,postgres,dbos,limit,redis'],
      { cwd: root, env: process.env, maxBuffer: 16 * 1024 * 1024, timeout: 170_000 },
    ).catch((error: Error & { stderr?: string }) => {
      // NOTE: the bench's own error is at the end of its stderr; without it a failure says only "Command failed".
      throw new Error(`${error.message}\n${error.stderr?.slice(-4000) ?? ''}`);
    });
    const lines = stdout.split('\n').filter((l) => l.startsWith('bench '));
    const keys = lines.map((l) => /store=(\S+) scenario=(\S+)/.exec(l)!.slice(1, 3).join('/'));
    for (const store of ['memory', 'postgres', 'redis']) {
      for (const scenario of ['seq3', 'conc64', 'roundtrips', 'promises', 'resume', 'steps20']) expect(keys).toContain(`${store}/${scenario}`);
    }
    expect(keys).toEqual(expect.arrayContaining(['dbos/seq3', 'dbos/conc64', 'limit/seq3', 'limit/conc64', 'postgres/seq3_ratios', 'postgres/conc64_ratios']));
    const trips = lines.find((l) => l.includes('store=postgres scenario=roundtrips'))!;
    // 4 statements per 3-step run; the worker's poll (one claim) may fall inside the few measured runs once (a CI run
    // saw 4.33 over 3 runs), a claim per run would not pass.
    const perRun = Number(/roundtrips=(\S+)/.exec(trips)![1]);
    const runs = Number(/ runs=(\d+)/.exec(trips)![1]);
    expect(perRun).toBeGreaterThanOrEqual(4);
    expect(Math.round(perRun * runs)).toBeLessThanOrEqual(4 * runs + 1);
    // The wire's share of a run: some time on the wire, never more than the run's own.
    for (const l of lines.filter((x) => /store=(postgres|redis) scenario=roundtrips /.test(x))) {
      const field = (k: string) => Number(new RegExp(` ${k}=(\\S+)`).exec(l)![1]);
      expect(field('wire_ms')).toBeGreaterThan(0);
      expect(field('wire_ms')).toBeLessThanOrEqual(field('run_ms'));
    }
    for (const l of lines.filter((x) => x.includes('scenario=promises '))) expect(Number(/promises_per_run=(\S+)/.exec(l)![1])).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/^bench store=\S+ scenario=\S+( \w+=\S+)+$/);
  }, 180_000);
});
