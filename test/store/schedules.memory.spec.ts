import { MemoryStore } from '../../src/store/memory/memory.store.js';
import { scheduleStoreOf } from '../../src/store/schedules/schedule-store.factory.js';
import { describeScheduleStoreConformance } from './schedules.conformance.js';

describeScheduleStoreConformance('memory', {
  create: async () => ({ schedules: scheduleStoreOf(new MemoryStore())!, close: async () => {} }),
});
