import 'reflect-metadata';
import { STEP_METADATA, STEPS_METADATA } from './cairn.constants.js';
import type { RetryOptions, RetryPolicy } from '../definition/retry-policy.js';

/** Options of `@Step`. */
export interface StepOptions {
  /** Step name, unique in its workflow. @default the method name */
  name?: string;
  /** Retry policy. @default no retry (1 attempt) */
  retry?: RetryPolicy | RetryOptions;
  /** Timeout of each attempt: ms, or '500ms' | '5s' | '2m' | '1h'. */
  timeout?: number | string;
  /** Name of a method of the same class that undoes this step; it receives this step's output. */
  compensate?: string;
  /**
   * Abort an attempt that goes this long without calling `ctx.heartbeat()` (from its start, then from each call), with
   * `StepTimeoutError`; retried per `retry`. ms, or a duration string such as '30s'. @default none
   */
  heartbeatTimeout?: number | string;
}

/**
 * Marks a method of a `@Workflow` class as a step. Steps run in declaration order; each receives the previous step's
 * output (the first, the run's input) and a `StepContext`.
 */
export function Step(options: StepOptions = {}): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    Reflect.defineMetadata(STEP_METADATA, { ...options }, descriptor.value as object);
    const ctor = target.constructor;
    const own: string[] = Reflect.hasOwnMetadata(STEPS_METADATA, ctor) ? Reflect.getOwnMetadata(STEPS_METADATA, ctor) : [];
    Reflect.defineMetadata(STEPS_METADATA, [...own, String(propertyKey)], ctor);
    return descriptor;
  };
}
