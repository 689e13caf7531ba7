import 'reflect-metadata';
import { SCHEDULES_METADATA } from './cairn.schedule.constants.js';
import type { ScheduleSpec } from '../definition/schedule-spec.js';

/**
 * Starts runs of this `@Workflow` class on a schedule: a cron expression or a fixed period. Repeatable (each needs its
 * own `id` or gets `<workflow>#2`, `#3` …). The schedule is stored and reconciled with the code at bootstrap; each tick
 * starts exactly one run across all instances, with the id `<schedule id>@<ISO time of the tick>`.
 *
 * ```ts
 * @Schedule({ cron: '0 3 * * *', timezone: 'Europe/Berlin' })
 * @Schedule({ id: 'sync', every: '5m', input: (fireAt) => ({ since: fireAt }) })
 * @Workflow('report')
 * export class ReportWorkflow { … }
 * ```
 */
export function Schedule(spec: ScheduleSpec): ClassDecorator {
  return (target) => {
    const own: ScheduleSpec[] = Reflect.getOwnMetadata(SCHEDULES_METADATA, target) ?? [];
    // NOTE: decorators apply bottom-up; prepending keeps the declaration order (top first) for the `#2`, `#3` ids.
    Reflect.defineMetadata(SCHEDULES_METADATA, [{ ...spec }, ...own], target);
  };
}
