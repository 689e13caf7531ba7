import { WorkflowDefinitionError } from '../errors/errors.js';
import type { DeclaredSchedule } from '../definition/schedule-declarations.js';
import { nextTickAfter, type StorableScheduleSpec } from '../definition/schedule-spec.js';
import type { ScheduleStore, StoredSchedule } from '../store/schedule-store.interface.js';
import type { StepLogger } from '../engine/step-context.interface.js';

/** Compare-and-set attempts per schedule (only concurrent bootstraps make one fail). */
const ATTEMPTS = 10;

/** What a reconciliation changed. */
export interface ReconcileReport {
  created: string[];
  updated: string[];
  deleted: string[];
}

/**
 * Makes the stored decorator schedules match the code, at bootstrap:
 * - a declared schedule missing from the store is created (paused if the code says so);
 * - one whose stored spec differs from the code's (timing, input, overlap, catchUp, the declared `paused`) or whose
 *   workflow differs is updated: its next tick is computed again when the timing or the declared `paused` changed;
 *   its last run is kept. A schedule paused or resumed through the client keeps that state while the code is unchanged;
 * - a decorator schedule of a workflow this app registers that the code no longer declares is deleted. Decorator
 *   schedules of workflows this app does not register (another app sharing the store) are left alone;
 * - `api` schedules are never touched. A declared id that an `api` schedule holds fails bootstrap.
 *
 * Each write is a compare-and-set, so instances booting together converge on one stored schedule per id.
 * @throws WorkflowDefinitionError when an `api` schedule holds a declared id
 */
export async function reconcileSchedules(
  store: ScheduleStore,
  declared: readonly DeclaredSchedule[],
  registeredWorkflows: readonly string[],
  now: number,
  logger: StepLogger,
): Promise<ReconcileReport> {
  const report: ReconcileReport = { created: [], updated: [], deleted: [] };
  const wanted = new Map(declared.map((d) => [d.id, d]));
  for (const schedule of declared) await reconcileOne(store, schedule, now, report);
  const registered = new Set(registeredWorkflows);
  for (const stored of await store.list()) {
    if (stored.source !== 'decorator' || wanted.has(stored.id) || !registered.has(stored.workflow)) continue;
    if (await store.delete(stored.id, stored.version)) report.deleted.push(stored.id);
  }
  if (report.created.length + report.updated.length + report.deleted.length > 0) {
    const parts = (['created', 'updated', 'deleted'] as const).filter((k) => report[k].length > 0).map((k) => `${k} ${report[k].map((id) => `"${id}"`).join(', ')}`);
    logger.log(`Schedules reconciled with the code: ${parts.join('; ')}`);
  }
  return report;
}

function firstTick(spec: DeclaredSchedule, now: number): Date | undefined {
  if (spec.resolved.storable.paused) return undefined;
  const next = nextTickAfter(spec.resolved.timing, now);
  return next === undefined ? undefined : new Date(next);
}

function sameTiming(a: StorableScheduleSpec, b: StorableScheduleSpec): boolean {
  return a.cron === b.cron && a.every === b.every && a.timezone === b.timezone && a.paused === b.paused;
}

async function reconcileOne(store: ScheduleStore, declared: DeclaredSchedule, now: number, report: ReconcileReport): Promise<void> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const stored: StoredSchedule | undefined = await store.get(declared.id);
    if (!stored) {
      const created = await store.create({
        id: declared.id,
        workflow: declared.workflow,
        spec: declared.specText,
        paused: declared.resolved.storable.paused,
        nextFireAt: firstTick(declared, now),
        source: 'decorator',
      });
      if (created) {
        report.created.push(declared.id);
        return;
      }
      continue;
    }
    if (stored.source !== 'decorator') {
      throw new WorkflowDefinitionError(
        `@Schedule "${declared.id}" of ${declared.className}: a schedule with this id was created through client.schedules (source 'api'), ` +
          'and bootstrap never changes those. Give the @Schedule another id, or delete that schedule (client.schedules.delete).',
      );
    }
    if (stored.spec === declared.specText && stored.workflow === declared.workflow) return;
    let previous: StorableScheduleSpec | undefined;
    try {
      previous = JSON.parse(stored.spec) as StorableScheduleSpec;
    } catch {
      previous = undefined;
    }
    const retime = !previous || !sameTiming(previous, declared.resolved.storable);
    const advanced = await store.advance(stored.id, stored.version, {
      workflow: declared.workflow,
      spec: declared.specText,
      ...(retime ? { paused: declared.resolved.storable.paused, nextFireAt: firstTick(declared, now) ?? null } : {}),
    });
    if (advanced) {
      report.updated.push(declared.id);
      return;
    }
  }
  throw new WorkflowDefinitionError(`@Schedule "${declared.id}" of ${declared.className}: the stored schedule kept changing during bootstrap; start again.`);
}
