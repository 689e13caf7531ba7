/**
 * A rolling deploy, with real processes, on PostgreSQL and on Redis: runs of version 1 and version 2 of one workflow
 * are started (by the test process, which registers both and runs no worker); a worker process that still has only
 * version 1 and one that already has only version 2 share the store. Each version's runs complete on the process that
 * registers it, and neither process ever claims the other's.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { killAllWorkers, startWorker, waitAllCompleted, type StoreKind } from './harness.js';
import { report, withScenario } from './scenarios.js';
import { VERSIONED_WORKFLOW } from './versioned-workflow.js';
import { testPostgres, testRedis } from '../setup/test-servers.js';

afterAll(() => killAllWorkers());

const servers: [StoreKind, ReturnType<typeof testPostgres>][] = [
  ['postgres', testPostgres()],
  ['redis', testRedis()],
];

describe.each(servers)('rolling deploy: %s store', (kind, server) => {
  server.describe(`(${kind})`, () => {
    it('drains version 1 on the old process while version 2 runs on the new one', async () => {
      await withScenario(kind, server.url, async (s) => {
        const v1 = Array.from({ length: 10 }, (_, i) => `v1-${i}`);
        const v2 = Array.from({ length: 10 }, (_, i) => `v2-${i}`);
        // started before any worker is up: every run waits for a process that registers its version
        for (const [i, id] of v1.entries()) await s.client.client.start(VERSIONED_WORKFLOW, { i }, { id, version: 1 });
        for (const [i, id] of v2.entries()) await s.client.client.start(VERSIONED_WORKFLOW, { i }, { id });
        const old = await startWorker(s.store, s.ledger, { versions: '1' });
        const fresh = await startWorker(s.store, s.ledger, { versions: '2' });
        const infos = await waitAllCompleted(s.client.client, [...v1, ...v2], 30_000);
        for (const id of v1) expect(infos.get(id)).toMatchObject({ version: 1, output: { version: 1, pid: old.pid } });
        for (const id of v2) expect(infos.get(id)).toMatchObject({ version: 2, output: { version: 2, pid: fresh.pid } });
        report(`${kind} rolling-deploy`, { v1: v1.length, v2: v2.length, oldPid: old.pid, newPid: fresh.pid });
      });
    }, 60_000);
  });
});
