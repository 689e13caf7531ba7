import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { WorkflowRegistry } from '../definition/workflow.registry.js';
import { WorkflowEngine } from '../engine/workflow-engine.js';
import type { WorkflowStore } from '../store/workflow-store.interface.js';
import { WORKFLOW_ENGINE, WORKFLOW_STORE } from './durable-execution.constants.js';
import { WorkflowExplorer } from './workflow.explorer.js';

/**
 * Lifecycle: compiles workflows in `onModuleInit` (bad definitions fail bootstrap), starts the worker in
 * `onApplicationBootstrap`, drains and closes the store in `beforeApplicationShutdown`.
 */
@Injectable()
export class DurableExecutionOrchestrator implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('DurableExecution');

  constructor(
    private readonly explorer: WorkflowExplorer,
    private readonly registry: WorkflowRegistry,
    @Inject(WORKFLOW_ENGINE) private readonly engine: WorkflowEngine,
    @Inject(WORKFLOW_STORE) private readonly store: WorkflowStore,
  ) {}

  onModuleInit(): void {
    for (const definition of this.explorer.explore()) this.registry.register(definition);
    this.registry.markReady();
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.engine.start();
    const names = this.registry.names();
    this.logger.log(
      `Store "${this.store.name}", ${names.length} workflow(s)${names.length ? `: ${names.join(', ')}` : ''}; worker ${this.engine.isWorker ? 'enabled' : 'disabled'} (instance ${this.engine.instanceId})`,
    );
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.engine.stop();
    await this.store.close();
  }
}
