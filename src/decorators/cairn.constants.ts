/** Metadata key of `@Step` options on a method. */
export const STEP_METADATA = 'cairn:step';
/** Metadata key of the ordered list of `@Step` method names on a class. */
export const STEPS_METADATA = 'cairn:steps';
/** Metadata key of `@Workflow` options on a class. */
export const WORKFLOW_METADATA = 'cairn:workflow';
