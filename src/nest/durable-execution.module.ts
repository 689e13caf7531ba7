import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { WorkflowClient } from '../client/workflow-client.js';
import { WorkflowRegistry } from '../definition/workflow.registry.js';
import { DurableExecutionConfigurableModule } from './durable-execution.module-definition.js';
import { DurableExecutionOrchestrator } from './durable-execution.orchestrator.js';
import { clientProvider, engineProvider, storeProvider } from './durable-execution.providers.js';
import { WORKFLOW_ENGINE, WORKFLOW_STORE } from './durable-execution.constants.js';
import { WorkflowExplorer } from './workflow.explorer.js';
import { WorkflowEvents } from './workflow-events.js';
import { DurableExecutionHealthIndicator } from './durable-execution.health.js';

/**
 * Durable workflow execution. Import once, in the root module:
 *
 * ```ts
 * DurableExecutionModule.forRoot({ store: { type: 'postgres', url: process.env.DATABASE_URL } })
 * ```
 * or `forRootAsync({ imports, inject, useFactory })`. Global by default (`isGlobal: false` to opt out).
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    { provide: WorkflowRegistry, useFactory: () => new WorkflowRegistry() },
    storeProvider,
    engineProvider,
    clientProvider,
    WorkflowExplorer,
    WorkflowEvents,
    DurableExecutionHealthIndicator,
    DurableExecutionOrchestrator,
  ],
  exports: [WorkflowClient, WorkflowEvents, DurableExecutionHealthIndicator, WorkflowRegistry, WORKFLOW_STORE, WORKFLOW_ENGINE],
})
export class DurableExecutionModule extends DurableExecutionConfigurableModule {}
