import { Logger, type Provider } from '@nestjs/common';
import { WorkflowClient } from '../client/workflow-client.js';
import { WorkflowRegistry } from '../definition/workflow.registry.js';
import { WorkflowEngine } from '../engine/workflow-engine.js';
import { createStore } from '../store/create-store.js';
import { scheduleStoreOf } from '../store/schedules/schedule-store.factory.js';
import type { WorkflowStore } from '../store/workflow-store.interface.js';
import type { DurableExecutionOptions } from './durable-execution-options.interface.js';
import { resolveEngineOptions } from './durable-execution.options.js';
import { ENGINE_CLOCK, WORKFLOW_ENGINE, WORKFLOW_STORE } from './durable-execution.constants.js';
import type { EngineClock } from '../engine/clock.js';
import { DURABLE_EXECUTION_OPTIONS } from './durable-execution.module-definition.js';
import { createInstrumentation } from '../observability/instrumentation.js';

/** The store, connected and with its schema in place before anything can use it. */
export const storeProvider: Provider = {
  provide: WORKFLOW_STORE,
  inject: [DURABLE_EXECUTION_OPTIONS],
  useFactory: async (options: DurableExecutionOptions): Promise<WorkflowStore> => {
    resolveEngineOptions(options);
    const logger = new Logger('DurableExecution');
    const created = await createStore(options.store as never, logger);
    // The codec sits at the engine↔store boundary: everything the engine writes is encoded, everything read decoded.
    const store = options.codec === undefined ? created : new (await import('../codec/codec.store.js')).CodecStore(created, options.codec);
    await store.init();
    await scheduleStoreOf(store)?.init();
    return store;
  },
};

export const engineProvider: Provider = {
  provide: WORKFLOW_ENGINE,
  inject: [WORKFLOW_STORE, WorkflowRegistry, DURABLE_EXECUTION_OPTIONS, { token: ENGINE_CLOCK, optional: true }],
  useFactory: async (store: WorkflowStore, registry: WorkflowRegistry, options: DurableExecutionOptions, clock?: EngineClock) => {
    const logger = new Logger('DurableExecution');
    const instrumentation = await createInstrumentation({ ...options.telemetry, logger });
    return new WorkflowEngine(store, registry, { ...resolveEngineOptions(options), instrumentation, clock }, logger);
  },
};

export const clientProvider: Provider = {
  provide: WorkflowClient,
  inject: [WORKFLOW_ENGINE, WorkflowRegistry],
  useFactory: (engine: WorkflowEngine, registry: WorkflowRegistry) => new WorkflowClient(engine, registry),
};
