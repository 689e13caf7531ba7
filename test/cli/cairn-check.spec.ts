import { expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { NestFactory } from '@nestjs/core';
import { WorkflowClient } from '../../src/index.js';
import { testPostgres } from '../setup/test-servers.js';

const root = resolve(import.meta.dirname, '../..');
const pg = testPostgres();

/** Runs the command as a CI job would (TypeScript sources through the repo's loader instead of a build). */
function check(env: Record<string, string>, ...args: string[]) {
  const res = spawnSync(
    process.execPath,
    ['--import', '@swc-node/register/esm-register', 'src/cli/cairn-check.ts', 'test/cli/check-app.fixture.ts', ...args],
    { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 },
  );
  return { code: res.status, out: `${res.stdout}${res.stderr}` };
}

pg.describe('cairn-check (the deploy-time gate)', () => {
  const schema = `check_${randomUUID().slice(0, 8)}`;
  let env: Record<string, string>;

  it('exits 0 when the runs in flight fit the module, 1 naming the runs that do not, 2 on a usage error', async () => {
    env = { DATABASE_URL: pg.url, CHECK_SCHEMA: schema, CHECK_VARIANT: 'today' };
    Object.assign(process.env, env);
    const { AppModule } = await import('./check-app.fixture.js');
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const client = app.get(WorkflowClient);
    await client.start('order', null, { id: 'waits-at-b' });
    for (let i = 0; i < 100 && (await client.describe('waits-at-b'))?.status !== 'waiting'; i++) await new Promise((r) => setTimeout(r, 50));
    await app.close();

    const ok = check(env);
    expect(ok.out).toContain('Compatibility of 1 run(s) in flight');
    expect(ok.code).toBe(0);

    const bad = check({ ...env, CHECK_VARIANT: 'without-b' }, 'AppModule', '--json');
    expect(bad.code).toBe(1);
    const report = JSON.parse(bad.out.slice(bad.out.indexOf('{'), bad.out.lastIndexOf('}') + 1));
    expect(report).toMatchObject({ ok: false, runsChecked: 1, incompatible: [{ runId: 'waits-at-b', workflow: 'order', version: 1 }] });

    const usage = check(env, 'NoSuchModule');
    expect(usage.code).toBe(2);
    expect(usage.out).toContain('exports no module named "NoSuchModule"');
  }, 120_000);
});
