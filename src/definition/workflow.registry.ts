import { ModuleNotReadyError, UnknownWorkflowError, WorkflowDefinitionError } from '../errors/errors.js';
import * as messages from './definition.messages.js';
import type { WorkflowDefinition } from './workflow-definition.interface.js';

/** The compiled workflows of this app, by name and by class. */
export class WorkflowRegistry {
  private readonly byName = new Map<string, WorkflowDefinition>();
  private readonly byType = new Map<Function, WorkflowDefinition>();
  private ready = false;

  /** Every workflow of the app is registered (the module's `onModuleInit` ran). */
  markReady(): void {
    this.ready = true;
  }

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

  /** @throws UnknownWorkflowError | ModuleNotReadyError (before the app was initialised) */
  resolve(workflow: Function | string): WorkflowDefinition {
    if (!this.ready) {
      throw new ModuleNotReadyError(
        'Workflows are registered when the app initialises, and it has not yet: call `await app.init()` (or ' +
          '`await moduleRef.init()` on a testing module compiled with Test.createTestingModule) before starting runs.',
      );
    }
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
