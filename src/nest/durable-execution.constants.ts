/** Injection token of the WorkflowStore in use. */
export const WORKFLOW_STORE = Symbol('cairn:workflow-store');
/** Injection token of the WorkflowEngine. */
export const WORKFLOW_ENGINE = Symbol('cairn:workflow-engine');
/** Injection token of the engine's clock (provided by `DurableExecutionTestingModule`; the system clock otherwise). */
export const ENGINE_CLOCK = Symbol('cairn:engine-clock');
