/**
 * The hostile-input catalogue of issue 19 on PGlite (see hostile-inputs.suite.ts), in a fresh data folder.
 * NOTE: 5,000 signals: PGlite runs every statement on one in-process connection (about 1 ms a send here), so
 * 5,000 keep the case within about 5 s. "Refuses connections" has no meaning for an embedded database: its startup
 * failure is a data folder another app holds (README, PGlite), which fails bootstrap with a StoreError naming it.
 */
import { afterAll } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostileInputSuite } from './hostile-inputs.suite.js';

const dataDir = mkdtempSync(join(tmpdir(), 'hostileI-pglite-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

hostileInputSuite('pglite', {
  store: () => ({ type: 'pglite', dataDir }),
  signals: { sent: 5_000, consumed: 200 },
  concurrentStarts: 2_000,
  controlCalls: 1_000,
  unreachable: async () => ({
    options: { store: { type: 'pglite', dataDir } },
    names: ['PGlite', dataDir],
  }),
});
