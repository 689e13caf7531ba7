import { Injectable } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { WorkflowDefinitionError } from '../errors/errors.js';
import { REQUEST_SCOPED } from '../definition/definition.messages.js';
import { compileWorkflow } from '../definition/workflow.compiler.js';
import type { WorkflowDefinition } from '../definition/workflow-definition.interface.js';
import { Workflow } from '../decorators/workflow.decorator.js';

/** Finds `@Workflow` providers and compiles them. Returns plain data; the orchestrator registers it. */
@Injectable()
export class WorkflowExplorer {
  constructor(private readonly discovery: DiscoveryService) {}

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
