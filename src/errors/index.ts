export * from './durable-execution.error.js';
export * from './errors.js';
