import { ModuleNotReadyError, UnknownWorkflowError, WorkflowDefinitionError } from '../errors/errors.js';
import * as messages from './definition.messages.js';
import type { WorkflowDefinition } from './workflow-definition.interface.js';

/**
 * The compiled workflows of this app, by name and version and by class. Several classes may share a name with
 * different versions: runs start on the highest (or a chosen) version and keep it; an instance executes only the
 * (name, version) pairs it registers.
 */
export class WorkflowRegistry {
  /** name → version → definition */
  private readonly byName = new Map<string, Map<number, WorkflowDefinition>>();
  private readonly byType = new Map<Function, WorkflowDefinition>();
  private refs: { workflow: string; version: number }[] = [];
  private ready = false;

  /** Every workflow of the app is registered (the module's `onModuleInit` ran). */
  markReady(): void {
    this.ready = true;
  }

  /** @throws WorkflowDefinitionError on a duplicate (name, version) pair */
  register(definition: WorkflowDefinition): void {
    let versions = this.byName.get(definition.name);
    if (!versions) this.byName.set(definition.name, (versions = new Map()));
    const existing = versions.get(definition.version);
    if (existing && existing.type !== definition.type) {
      throw new WorkflowDefinitionError(messages.DUPLICATE_WORKFLOW(definition.name, definition.version, existing.className, definition.className));
    }
    versions.set(definition.version, definition);
    this.byType.set(definition.type, definition);
    this.refs = [...this.byName].flatMap(([workflow, byVersion]) => [...byVersion.keys()].map((version) => ({ workflow, version })));
  }

  /** The definition of a version (default: the highest registered). */
  get(name: string, version?: number): WorkflowDefinition | undefined {
    const versions = this.byName.get(name);
    if (!versions) return undefined;
    if (version !== undefined) return versions.get(version);
    return versions.get(Math.max(...versions.keys()));
  }

  /**
   * The definition to start: a class's own, or by name the highest version (or `version` when given).
   * @throws UnknownWorkflowError | ModuleNotReadyError (before the app was initialised)
   */
  resolve(workflow: Function | string, version?: number): WorkflowDefinition {
    if (!this.ready) {
      throw new ModuleNotReadyError(
        'Workflows are registered when the app initialises, and it has not yet: call `await app.init()` (or ' +
          '`await moduleRef.init()` on a testing module compiled with Test.createTestingModule) before starting runs.',
      );
    }
    const byClass = typeof workflow === 'string' ? undefined : this.byType.get(workflow);
    const name = typeof workflow === 'string' ? workflow : byClass?.name;
    const definition =
      version === undefined ? (byClass ?? (name !== undefined ? this.get(name) : undefined)) : name !== undefined ? this.get(name, version) : undefined;
    if (!definition) {
      const label = typeof workflow === 'string' ? workflow : workflow?.name ?? String(workflow);
      throw new UnknownWorkflowError(version === undefined ? label : `${label}" version "${version}`, this.labels());
    }
    return definition;
  }

  /** Registered workflow names. */
  names(): string[] {
    return [...this.byName.keys()];
  }

  /** Registered (workflow, version) pairs: what this instance claims. */
  workflowRefs(): readonly { workflow: string; version: number }[] {
    return this.refs;
  }

  /** Every registered definition, every version. */
  all(): WorkflowDefinition[] {
    return [...this.byName.values()].flatMap((versions) => [...versions.values()]);
  }

  private labels(): string[] {
    return [...this.byName].flatMap(([name, versions]) => (versions.size === 1 && versions.has(1) ? [name] : [...versions.keys()].map((v) => `${name} v${v}`)));
  }
}
