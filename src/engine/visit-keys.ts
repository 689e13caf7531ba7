import type { StoredStep } from '../store/workflow-store.interface.js';

/**
 * The idempotency key of the n-th visit of a step: `runId:step`, then `#n` from the 2nd visit on, then `~generation`
 * from the 2nd incarnation of the run id on (`terminate-existing`), so a replacement never reuses a key.
 */
export function idempotencyKey(runId: string, step: string, visit: number, generation: number): string {
  const key = visit <= 1 ? `${runId}:${step}` : `${runId}:${step}#${visit}`;
  return generation > 1 ? `${key}~${generation}` : key;
}

/** The visit number of the step entry at `index` (how many entries up to it name the same step). */
export function visitNumberAt(steps: readonly StoredStep[], index: number): number {
  const name = steps[index]?.name;
  let n = 0;
  for (let i = 0; i <= index; i++) if (steps[i]?.name === name) n++;
  return n;
}
