import { SCHEDULES_METADATA } from '../decorators/cairn.schedule.constants.js';
import type { ScheduleSpec } from './schedule-spec.js';

/** The only reader of `@Schedule` metadata: the specs declared on a class itself (not inherited), in declaration order. */
export function getScheduleSpecs(type: Function): ScheduleSpec[] {
  const specs = Reflect.getOwnMetadata(SCHEDULES_METADATA, type) as ScheduleSpec[] | undefined;
  return specs ? specs.map((spec) => ({ ...spec })) : [];
}
