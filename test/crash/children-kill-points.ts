/**
 * Exact kill points of the child-run crash tests (children.crash.spec.ts): `CRASH_KILL_AT` makes the worker process
 * SIGKILL itself at one point of a store write, so the test does not race a ledger poll against a write of a few ms.
 * Installed by worker-app.ts on the store instance (the module's `WORKFLOW_STORE`) before `READY` is printed.
 *
 * - `spawn-before-commit`: the parent's step returned `Flow.all` and the engine calls `commit` with `children.spawn`:
 *   killed before anything is written.
 * - `spawn-after-commit`: killed as soon as that commit resolved (the children and the parent's wait are written).
 * - `spawn-held` (Redis): killed once the children were created held, before the parent's own commit script.
 * - `spawn-unreleased` (Redis): killed after the parent's commit script, before the children are released.
 * - `child-end-after:K`: killed as soon as the K-th commit that completes a child run (id ending `:<digits>`) resolved.
 * - `child-end-unnotified:K` (Redis): killed after the K-th child's own end was written, before its parent is told
 *   (`CHILD_ENDED`): a lost wake-up that only the parent's recheck repairs. Its kill line carries the parent's status
 *   and count of ended children, read just before the kill.
 *
 * Before dying, a line `{"wf":"kill","point":…,"pid":…,"at":…}` is appended to the ledger (synchronously).
 */
import { appendFileSync } from 'node:fs';
import type { CommitResult, RunPatch, WorkflowStore } from '../../src/index.js';

const CHILD_ID = /:\d+$/;

function die(point: string, detail: Record<string, unknown> = {}): never {
  const ledger = process.env.CRASH_LEDGER;
  if (ledger) appendFileSync(ledger, `${JSON.stringify({ wf: 'kill', point, pid: process.pid, at: Date.now(), ...detail })}\n`);
  process.kill(process.pid, 'SIGKILL');
  // NOTE: SIGKILL of oneself is delivered before kill() returns on Linux; this is never reached.
  throw new Error('unreachable');
}

type Patchable = Record<string, (...args: unknown[]) => Promise<unknown>>;

/** Wraps a method of the store instance (private ones of RedisStore included); fails loudly when it does not exist. */
function wrap(store: WorkflowStore, name: string, around: (original: (...args: unknown[]) => Promise<unknown>, args: unknown[]) => Promise<unknown>): void {
  const target = store as unknown as Patchable;
  const original = target[name];
  if (typeof original !== 'function') throw new Error(`CRASH_KILL_AT: the store (${store.constructor.name}) has no method ${name}`);
  const bound = original.bind(store);
  target[name] = (...args: unknown[]) => around(bound, args);
}

export function installKillPoint(store: WorkflowStore, spec: string | undefined): void {
  if (!spec) return;
  const [point, countText] = spec.split(':');
  const count = Number(countText ?? 1);
  if (!Number.isInteger(count) || count < 1) throw new Error(`CRASH_KILL_AT: bad count in ${spec}`);
  const spawns = (patch: RunPatch | undefined) => (patch?.children?.spawn?.length ?? 0) > 0;
  let seen = 0;
  switch (point) {
    case 'spawn-before-commit':
      wrap(store, 'commit', async (original, args) => {
        if (spawns(args[2] as RunPatch)) die(point, { runId: args[0], children: (args[2] as RunPatch).children?.spawn?.length });
        return original(...args);
      });
      return;
    case 'spawn-after-commit':
      wrap(store, 'commit', async (original, args) => {
        const result = (await original(...args)) as CommitResult;
        if (spawns(args[2] as RunPatch)) die(point, { runId: args[0], result });
        return result;
      });
      return;
    case 'spawn-held':
      wrap(store, 'spawnChildren', async (original, args) => {
        const result = await original(...args);
        die(point, { runId: args[0] });
        return result;
      });
      return;
    case 'spawn-unreleased':
      wrap(store, 'releaseChildren', async (original, args) => {
        if ((args[1] as unknown[]).length > 0) die(point, { runId: args[0], release: (args[1] as unknown[]).length });
        return original(...args);
      });
      return;
    case 'child-end-after':
      wrap(store, 'commit', async (original, args) => {
        const result = (await original(...args)) as CommitResult;
        const patch = args[2] as RunPatch;
        if (result.ok && patch?.status === 'completed' && CHILD_ID.test(String(args[0])) && ++seen === count) die(point, { runId: args[0], n: seen });
        return result;
      });
      return;
    case 'child-end-unnotified':
      wrap(store, 'notifyParent', async (original, args) => {
        if (++seen === count) {
          // The parent as it is at the kill, read by the dying worker itself: a read by the test after it saw the exit
          // can come after the survivor's recheck (every childRecheckMs) repaired the lost wake-up.
          const parent = await store.getRun(String(args[0]));
          die(point, { parentRunId: args[0], runId: args[1], n: seen, parent: { status: parent?.status, ended: parent?.children?.ended } });
        }
        return original(...args);
      });
      return;
    default:
      throw new Error(`CRASH_KILL_AT: unknown kill point ${spec}`);
  }
}
