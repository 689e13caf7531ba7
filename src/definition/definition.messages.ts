/** Message factories of definition errors: each names the class, the method and the fix. */
export const NO_STEPS = (cls: string) =>
  `Workflow class "${cls}" has no steps. Decorate at least one method with @Step().`;
export const DUPLICATE_STEP = (cls: string, step: string, methods: string[]) =>
  `Workflow class "${cls}" has two steps named "${step}" (methods ${methods.map((m) => `"${m}"`).join(' and ')}). Give each @Step a unique name.`;
export const MISSING_COMPENSATION = (cls: string, method: string, compensate: string) =>
  `@Step on ${cls}.${method}() names compensate: "${compensate}", but ${cls} has no method "${compensate}". Add the method or fix the name.`;
export const INVALID_STEP_OPTION = (cls: string, method: string, problem: string) =>
  `@Step on ${cls}.${method}(): ${problem}.`;
export const INVALID_WORKFLOW_OPTION = (cls: string, problem: string) => `@Workflow on class "${cls}": ${problem}.`;
export const DUPLICATE_WORKFLOW = (name: string, version: number, a: string, b: string) =>
  `Two workflows are named "${name}" with version ${version} (classes "${a}" and "${b}"). Give one a different name ` +
  `(@Workflow('other-name')) or version (@Workflow({ name: '${name}', version: ${version + 1} }): versions of one name run side by side).`;
export const REQUEST_SCOPED = (cls: string) =>
  `Workflow class "${cls}" is request- or transient-scoped (or depends on a request-scoped provider). Workflows run outside any request: make it a singleton (the default scope) and inject request data through the run's input.`;
