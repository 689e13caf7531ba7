/**
 * Compile-time types of workflow runs (what `WorkflowClient.start`/`execute`/`getHandle` check and return), and the
 * structural types of the drivers the options accept. Nothing here does anything at run time except the
 * `WorkflowTypes` marker key.
 *
 * How a run's types come from a workflow class (TypeScript cannot see decorators, nor the order of a class's methods,
 * so "the first step" and "the last step" are out of its reach; these rules never depend on that order):
 *
 * 1. The class declares them with the type-only marker (emits nothing):
 *    `declare readonly [WorkflowTypes]?: { input: Order; output: Shipment };` (either member may be left out).
 * 2. Otherwise, a class with a single public method (a one-step workflow): its first parameter is the input, its
 *    awaited return value (flow directives left out) the output.
 * 3. Otherwise, the input is the `Input` of the `StepContext<Input>` (or `CompensationContext<Input>`) its methods
 *    take as their second parameter; the output is `unknown`.
 *
 * Anything not found is `unknown` (accepts anything), so a class without types behaves as before. Explicit type
 * arguments (`client.start<Order, Shipment>(OrderWorkflow, order)`) take precedence over all of this.
 */
import type { FlowDirective } from '../engine/flow.js';
import type { StepContext } from '../engine/step-context.interface.js';

/**
 * Key of the type-only marker by which a workflow class states its run's input and output types:
 *
 * ```ts
 * @Workflow('order')
 * class OrderWorkflow {
 *   declare readonly [WorkflowTypes]?: { input: Order; output: Shipment };
 * }
 * ```
 *
 * `declare` emits nothing: the marker exists for the compiler only.
 */
export const WorkflowTypes: unique symbol = Symbol('nestjs-cairn.WorkflowTypes');

/** The marker's shape: `{ input?, output? }`. */
export interface WorkflowTypesMarker<Input = unknown, Output = unknown> {
  input?: Input;
  output?: Output;
}

/** A workflow class (what `start`/`execute` accept besides a workflow name). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type WorkflowClass<T = any> = new (...args: any[]) => T;

// NOTE: `0 extends 1 & T` holds only for `any`: an `any` workflow (e.g. a `Type<any>` variable) stays untyped.
type IsAny<T> = 0 extends 1 & T ? true : false;
type IsUnion<T, U = T> = T extends unknown ? ([U] extends [T] ? false : true) : never;

/** A step's output as the next step (or the run) sees it: its awaited return value, flow directives left out. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StepOutput<M> = M extends (...args: any[]) => infer R ? Exclude<Awaited<R>, FlowDirective> : unknown;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type MethodKeys<T> = { [K in keyof T]-?: T[K] extends (...args: any[]) => any ? K : never }[keyof T];
type Instance<W> = W extends WorkflowClass<infer T> ? T : W;
type Marker<T> = typeof WorkflowTypes extends keyof T ? NonNullable<T[typeof WorkflowTypes]> : never;
type MarkerField<T, K extends 'input' | 'output'> = K extends keyof Marker<T> ? Marker<T>[K] : never;
/** The class's only public method, if it has exactly one. */
type SingleMethod<T> = [MethodKeys<T>] extends [never] ? never : IsUnion<MethodKeys<T>> extends true ? never : T[MethodKeys<T>];
/** The `Input` of the `StepContext<Input>` the methods take as their second parameter (`never` if none does). */
type ContextInput<T> = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [K in MethodKeys<T>]: T[K] extends (previous: any, ctx: infer C, ...rest: any[]) => any ? (C extends StepContext<infer I> ? I : never) : never;
}[MethodKeys<T>];
/** `A`, or `B` when `A` is `never`. */
type Or<A, B> = [A] extends [never] ? B : A;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type FirstParameter<M> = M extends (input: infer I, ...rest: any[]) => any ? I : never;

type InstanceInput<T> =
  IsAny<T> extends true ? unknown : Or<MarkerField<T, 'input'>, Or<FirstParameter<SingleMethod<T>>, Or<ContextInput<T>, unknown>>>;
type InstanceOutput<T> = IsAny<T> extends true ? unknown : Or<MarkerField<T, 'output'>, Or<StepOutput<SingleMethod<T>>, unknown>>;

/** The input of a run of workflow `W` (a workflow class or its instance type); `unknown` for a workflow name. */
export type WorkflowInput<W> = W extends string ? unknown : InstanceInput<Instance<W>>;
/** The output of a run of workflow `W` (a workflow class or its instance type); `unknown` for a workflow name. */
export type WorkflowOutput<W> = W extends string ? unknown : InstanceOutput<Instance<W>>;
/** Both types of a run of workflow `W`: `{ input, output }`. */
export interface WorkflowIO<W> {
  input: WorkflowInput<W>;
  output: WorkflowOutput<W>;
}

declare const inferred: unique symbol;
/** Default of the explicit type arguments of `start`/`execute`: "infer it from the workflow class". */
export type Inferred = typeof inferred;

/** The run input a call checks: the explicit type argument, else the workflow's. */
export type RunInput<Input, W> = [Input] extends [Inferred] ? WorkflowInput<W> : NoInfer<Input>;
/** The run output a call returns: the explicit type argument, else the workflow's. */
export type RunOutput<Output, W> = [Output] extends [Inferred] ? WorkflowOutput<W> : Output;
/** `start`'s arguments after the workflow: the input may be left out when it accepts `undefined`. */
export type RunArgs<Input, Options> = undefined extends Input ? [input?: Input, options?: Options] : [input: Input, options?: Options];
/** `getHandle<T>`: a workflow class gives its output type; any other type is the output type itself. */
export type HandleOutput<T> = IsAny<T> extends true ? T : T extends WorkflowClass ? WorkflowOutput<T> : T;

/**
 * What `store: { type: 'postgres', dataSource }` accepts: a TypeORM `DataSource` (0.3.20+ or 1.x), by its shape, so
 * that `typeorm` need not be installed for the types to compile.
 */
export interface DataSourceLike {
  readonly isInitialized: boolean;
  readonly options: object;
  readonly driver: object;
  initialize(): Promise<unknown>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  query(query: string, parameters?: any[]): Promise<any>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  createQueryRunner(...args: any[]): object;
  destroy(): Promise<unknown>;
}

/** What `start(…, { transaction })` accepts: a TypeORM `EntityManager` (0.3.20+ or 1.x), by its shape. */
export interface EntityManagerLike {
  readonly connection: object;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  query(query: string, parameters?: any[]): Promise<any>;
}

/**
 * What `store: { type: 'redis', client }` accepts: an ioredis (5 or 6) `Redis` or `Cluster`, by its shape, so that
 * `ioredis` need not be installed for the types to compile.
 */
export interface RedisClientLike {
  readonly status: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  evalsha(...args: any[]): Promise<unknown>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call(...args: any[]): Promise<unknown>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  pipeline(...args: any[]): object;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  duplicate(...args: any[]): object;
}
