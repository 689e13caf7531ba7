import { WorkflowDefinitionError } from '../errors/errors.js';
import { getScheduleSpecs } from './schedule-metadata.accessor.js';
import { resolveScheduleSpec, scheduleIdProblem, type ResolvedScheduleSpec } from './schedule-spec.js';
import type { WorkflowDefinition } from './workflow-definition.interface.js';
import type { WorkflowRegistry } from './workflow.registry.js';

const declaredByRegistry = new WeakMap<WorkflowRegistry, ReadonlyMap<string, DeclaredSchedule>>();

/** Records the validated `@Schedule`s of an app (by its registry), at bootstrap. */
export function rememberDeclaredSchedules(registry: WorkflowRegistry, declared: readonly DeclaredSchedule[]): ReadonlyMap<string, DeclaredSchedule> {
  const byId = new Map(declared.map((d) => [d.id, d]));
  declaredByRegistry.set(registry, byId);
  return byId;
}

/** The app's `@Schedule` with this id, if its code declares one. */
export function declaredScheduleOf(registry: WorkflowRegistry, id: string): DeclaredSchedule | undefined {
  return declaredByRegistry.get(registry)?.get(id);
}

/** A `@Schedule` of this app's code, validated. */
export interface DeclaredSchedule {
  id: string;
  workflow: string;
  className: string;
  resolved: ResolvedScheduleSpec;
  /** JSON of `resolved.storable`: what the store keeps as `spec`. */
  specText: string;
}

/**
 * The `@Schedule`s of the registered workflows, validated. Read from the highest registered version of each workflow
 * name (older versions kept to drain their runs need not repeat them). Ids default to the workflow name, then
 * `<name>#2`, `<name>#3` for the following ones of the same class.
 * @throws WorkflowDefinitionError naming the class and the schedule for a bad spec or a duplicate id
 */
export function declaredSchedules(definitions: readonly WorkflowDefinition[], serializeInput: (value: unknown, what: string) => string): DeclaredSchedule[] {
  const latest = new Map<string, WorkflowDefinition>();
  for (const def of definitions) {
    const seen = latest.get(def.name);
    if (!seen || seen.version < def.version) latest.set(def.name, def);
  }
  const declared: DeclaredSchedule[] = [];
  const owners = new Map<string, string>();
  for (const def of latest.values()) {
    getScheduleSpecs(def.type).forEach((spec, index) => {
      const id = spec?.id ?? (index === 0 ? def.name : `${def.name}#${index + 1}`);
      const where = `@Schedule ${JSON.stringify(id)} of ${def.className}`;
      const idProblem = scheduleIdProblem(id);
      if (idProblem) throw new WorkflowDefinitionError(`${where}: ${idProblem}.`);
      const other = owners.get(id);
      if (other !== undefined) {
        throw new WorkflowDefinitionError(`${where}: the id is used by another @Schedule (of ${other}); give each schedule its own id.`);
      }
      owners.set(id, def.className);
      const resolved = resolveScheduleSpec(
        spec,
        where,
        { allowInputFunction: true, serializeInput: (value) => serializeInput(value, `input of ${where}`) },
        (message) => new WorkflowDefinitionError(message),
      );
      declared.push({ id, workflow: def.name, className: def.className, resolved, specText: JSON.stringify(resolved.storable) });
    });
  }
  return declared;
}
