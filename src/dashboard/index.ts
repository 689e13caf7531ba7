export { DurableExecutionDashboardModule } from './dashboard.module.js';
export type { DurableExecutionDashboardOptions, RedactionContext, RedactedField } from './dashboard-options.interface.js';
export type { ValueNode } from './value-tree.js';
