import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgliteStore } from '../../src/store/postgres/pglite.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';

let dir: string | undefined;

describeStoreConformance('pglite', {
  create: async () => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-pglite-'));
    return createPgliteStore({ dataDir: dir });
  },
  destroy: async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
});
