/** Injection token of the WorkflowStore in use. */
export const WORKFLOW_STORE = Symbol('cairn:workflow-store');
/** Injection token of the WorkflowEngine. */
export const WORKFLOW_ENGINE = Symbol('cairn:workflow-engine');
