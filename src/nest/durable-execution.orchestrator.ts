import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { WorkflowRegistry } from '../definition/workflow.registry.js';
import { WorkflowEngine } from '../engine/workflow-engine.js';
import type { WorkflowStore } from '../store/workflow-store.interface.js';
import { WORKFLOW_ENGINE, WORKFLOW_STORE } from './durable-execution.constants.js';
import { WorkflowExplorer, type EventHandlerBinding } from './workflow.explorer.js';
import { describeError, errorStack } from '../engine/error-text.js';
import type { WorkflowRunEvent } from '../engine/run-history.js';

/**
 * Lifecycle: compiles workflows in `onModuleInit` (bad definitions fail bootstrap), starts the worker in
 * `onApplicationBootstrap`, drains and closes the store in `beforeApplicationShutdown`.
 */
@Injectable()
export class DurableExecutionOrchestrator implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('DurableExecution');
  private readonly unbind: (() => void)[] = [];

  constructor(
    private readonly explorer: WorkflowExplorer,
    private readonly registry: WorkflowRegistry,
    @Inject(WORKFLOW_ENGINE) private readonly engine: WorkflowEngine,
    @Inject(WORKFLOW_STORE) private readonly store: WorkflowStore,
  ) {}

  onModuleInit(): void {
    for (const definition of this.explorer.explore()) this.registry.register(definition);
    this.registry.markReady();
    for (const binding of this.explorer.exploreEventHandlers()) this.unbind.push(this.bind(binding));
  }

  /** Calls an `@OnWorkflowEvent` method with each matching local event; its errors are logged, never thrown. */
  private bind({ instance, methodName, className, metadata }: EventHandlerBinding): () => void {
    const types = new Set<string>(metadata.types);
    const method = (instance as Record<string, (event: WorkflowRunEvent) => unknown>)[methodName];
    const failed = (event: WorkflowRunEvent, error: unknown) =>
      this.logger.error(`@OnWorkflowEvent ${className}.${methodName} failed on ${event.type} of run "${event.runId}": ${describeError(error)}`, errorStack(error));
    return this.engine.events.onLocal((event) => {
      if (!types.has(event.type) || (metadata.workflow !== undefined && metadata.workflow !== event.workflow)) return;
      try {
        const result = method.call(instance, event);
        if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(undefined, (error: unknown) => failed(event, error));
      } catch (error) {
        failed(event, error);
      }
    });
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
    for (const unbind of this.unbind.splice(0)) unbind();
    await this.store.close();
  }
}
