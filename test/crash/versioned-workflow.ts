/**
 * Two versions of one workflow for the rolling-deploy test (not a spec): each returns the pid of the process that ran
 * it, so the test sees which process executed each run. Worker processes register the versions listed in
 * `CRASH_VERSIONS` (e.g. `1`, `2`, `1,2`; none by default).
 */
import { Step, Workflow } from '../../src/index.js';

export const VERSIONED_WORKFLOW = 'versioned';

@Workflow({ name: VERSIONED_WORKFLOW, version: 1 })
export class VersionedV1 {
  @Step() run(input: { i: number }) {
    return { version: 1, i: input.i, pid: process.pid };
  }
}

@Workflow({ name: VERSIONED_WORKFLOW, version: 2 })
export class VersionedV2 {
  @Step() prepare(input: { i: number }) {
    return input;
  }
  @Step() run(input: { i: number }) {
    return { version: 2, i: input.i, pid: process.pid };
  }
}

/** The versioned classes a worker registers, from `CRASH_VERSIONS`. */
export function versionedFromEnv(value = process.env.CRASH_VERSIONS ?? ''): Function[] {
  const wanted = new Set(value.split(',').map((v) => v.trim()).filter(Boolean));
  return [...(wanted.has('1') ? [VersionedV1] : []), ...(wanted.has('2') ? [VersionedV2] : [])];
}
