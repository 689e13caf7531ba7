import { randomUUID } from 'node:crypto';
import type { NewRun } from '../../src/store/workflow-store.interface.js';

/** A new run of workflow `wf` with a fresh id, for store tests; `over` replaces any field. */
export const newRun = (over: Partial<NewRun> = {}): NewRun => ({
  runId: `run-${randomUUID()}`,
  workflow: 'wf',
  version: 1,
  input: '{"n":1}',
  state: '{}',
  ...over,
});
