import { UnknownWorkflowError, WorkflowDefinitionError } from '../errors/errors.js';
import * as messages from './definition.messages.js';
import type { WorkflowDefinition } from './workflow-definition.interface.js';

/** The compiled workflows of this app, by name and by class. */
export class WorkflowRegistry {
  private readonly byName = new Map<string, WorkflowDefinition>();
  private readonly byType = new Map<Function, WorkflowDefinition>();

  /** @throws WorkflowDefinitionError on a duplicate name */
  register(definition: WorkflowDefinition): void {
    const existing = this.byName.get(definition.name);
    if (existing && existing.type !== definition.type) {
      throw new WorkflowDefinitionError(messages.DUPLICATE_WORKFLOW(definition.name, existing.className, definition.className));
    }
    this.byName.set(definition.name, definition);
    this.byType.set(definition.type, definition);
  }

  get(name: string): WorkflowDefinition | undefined {
    return this.byName.get(name);
  }

  /** @throws UnknownWorkflowError */
  resolve(workflow: Function | string): WorkflowDefinition {
    const definition = typeof workflow === 'string' ? this.byName.get(workflow) : this.byType.get(workflow);
    if (!definition) {
      const label = typeof workflow === 'string' ? workflow : workflow?.name ?? String(workflow);
      throw new UnknownWorkflowError(label, this.names());
    }
    return definition;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  all(): WorkflowDefinition[] {
    return [...this.byName.values()];
  }
}
