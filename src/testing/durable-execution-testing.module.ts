import { Module, type DynamicModule } from '@nestjs/common';
import { DurableExecutionModule } from '../nest/durable-execution.module.js';
import type { DurableExecutionOptions } from '../nest/durable-execution-options.interface.js';
import { ENGINE_CLOCK, WORKFLOW_ENGINE } from '../nest/durable-execution.constants.js';
import { MemoryStore } from '../store/memory/memory.store.js';
import type { WorkflowEngine } from '../engine/workflow-engine.js';
import { WorkflowTestClock } from './workflow-test-clock.js';

/**
 * `DurableExecutionModule` for tests: the memory store and a manual {@link WorkflowTestClock}, so time-driven
 * behaviour (sleeps, retry delays, signal and heartbeat timeouts) is tested without waiting.
 *
 * ```ts
 * const moduleRef = await Test.createTestingModule({
 *   imports: [DurableExecutionTestingModule.forRoot()],
 *   providers: [ApprovalWorkflow],
 * }).compile();
 * await moduleRef.init();
 * const clock = moduleRef.get(WorkflowTestClock);
 * ```
 *
 * The clock drives the memory store's time: a `store` given in `options` is used as is, and only the engine's timers
 * follow the clock (the store keeps its own clock).
 */
@Module({})
export class DurableExecutionTestingModule {
  static forRoot(options: DurableExecutionOptions = {}): DynamicModule {
    const clock = new WorkflowTestClock();
    return {
      module: DurableExecutionTestingModule,
      global: true,
      imports: [
        DurableExecutionModule.forRoot({
          ...options,
          store: options.store ?? new MemoryStore(clock.source),
          worker: { pollIntervalMs: 20, shutdownGraceMs: 0, ...options.worker },
        }),
      ],
      providers: [
        { provide: ENGINE_CLOCK, useValue: clock.source },
        { provide: WorkflowTestClock, inject: [WORKFLOW_ENGINE], useFactory: (engine: WorkflowEngine) => clock.attach(engine) },
      ],
      exports: [ENGINE_CLOCK, WorkflowTestClock],
    };
  }
}
