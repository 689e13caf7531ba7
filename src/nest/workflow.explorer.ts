import { Injectable } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { ON_WORKFLOW_EVENT_METADATA, type OnWorkflowEventMetadata } from '../decorators/on-workflow-event.decorator.js';
import { WorkflowDefinitionError } from '../errors/errors.js';
import { REQUEST_SCOPED } from '../definition/definition.messages.js';
import { compileWorkflow } from '../definition/workflow.compiler.js';
import type { WorkflowDefinition } from '../definition/workflow-definition.interface.js';
import { Workflow } from '../decorators/workflow.decorator.js';

/** A provider method decorated with `@OnWorkflowEvent`. */
export interface EventHandlerBinding {
  instance: object;
  methodName: string;
  className: string;
  metadata: OnWorkflowEventMetadata;
}

/** Finds `@Workflow` providers and compiles them, and `@OnWorkflowEvent` methods. Returns plain data. */
@Injectable()
export class WorkflowExplorer {
  private readonly scanner = new MetadataScanner();

  constructor(private readonly discovery: DiscoveryService) {}

  /** Methods of singleton providers and controllers decorated with `@OnWorkflowEvent`. */
  exploreEventHandlers(): EventHandlerBinding[] {
    const bindings: EventHandlerBinding[] = [];
    const seen = new Set<object>();
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const instance = wrapper.instance as object | undefined;
      if (!instance || typeof instance !== 'object' || seen.has(instance) || !wrapper.isDependencyTreeStatic()) continue;
      seen.add(instance);
      const proto = Object.getPrototypeOf(instance) as object | null;
      if (!proto) continue;
      for (const methodName of this.scanner.getAllMethodNames(proto)) {
        const method = (proto as Record<string, unknown>)[methodName];
        const metadata = typeof method === 'function' ? (Reflect.getMetadata(ON_WORKFLOW_EVENT_METADATA, method) as OnWorkflowEventMetadata | undefined) : undefined;
        if (metadata) bindings.push({ instance, methodName, className: instance.constructor.name, metadata });
      }
    }
    return bindings;
  }

  /** @throws WorkflowDefinitionError for a bad definition or a non-singleton workflow */
  explore(): WorkflowDefinition[] {
    const seen = new Set<Function>();
    const definitions: WorkflowDefinition[] = [];
    for (const wrapper of this.discovery.getProviders({ metadataKey: Workflow.KEY })) {
      const type = wrapper.metatype as Function | undefined;
      if (!type || seen.has(type)) continue;
      seen.add(type);
      if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient) {
        throw new WorkflowDefinitionError(REQUEST_SCOPED(type.name));
      }
      const instance = wrapper.instance as object | undefined;
      if (!instance) continue;
      definitions.push(compileWorkflow(type, instance));
    }
    return definitions;
  }
}
