/**
 * Type tests of the client and the module options, compiled by `tsc --noEmit -p tsconfig.json` (the first half of
 * `npm test`) and by test/types/typed-client.spec.ts. Nothing here runs: every check is a type. `@ts-expect-error`
 * marks a use that must not compile (tsc fails when such a line compiles); `expectType<T>()(value)` checks exact type
 * equality, not mere assignability.
 */
import type { Type } from '@nestjs/common';
import type { DataSource as DataSource1, EntityManager as EntityManager1 } from 'typeorm';
import type { DataSource as DataSource03, EntityManager as EntityManager03 } from 'typeorm-0.3';
import type { Cluster as Cluster5, Redis as Redis5 } from 'ioredis';
import type { Cluster as Cluster6, Redis as Redis6 } from 'ioredis-6';
import {
  DurableExecutionModule,
  Flow,
  MemoryStore,
  Step,
  Workflow,
  WorkflowTypes,
  type CompensationContext,
  type DurableExecutionOptions,
  type StepContext,
  type StoreOptions,
  type WorkflowClient,
  type WorkflowHandle,
  type WorkflowInput,
  type WorkflowIO,
  type WorkflowOutput,
  type WorkflowStore,
} from '../../src/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** `expectType<Expected>()(value)` compiles only when the value's type is exactly `Expected`. */
const expectType =
  <Expected>() =>
  <Actual>(_value: Actual & (Equal<Actual, Expected> extends true ? unknown : { __wrongType: Actual })): void => undefined;
/** `assertType<Equal<A, B>>()`: compiles only for `true`. */
const assertType = <_T extends true>(): void => undefined;

interface Order {
  orderId: string;
  amount: number;
}
interface Shipment {
  shipped: string;
}

// The Quick start's workflow: several steps whose contexts say the input; the output cannot be inferred.
@Workflow('types-order')
class OrderWorkflow {
  @Step({ compensate: 'refund' })
  async charge(order: Order, _ctx: StepContext<Order>) {
    return { chargeId: `ch_${order.orderId}` };
  }

  async refund(_charge: { chargeId: string }, _ctx: CompensationContext<Order>) {}

  @Step()
  approve(charge: { chargeId: string }, ctx: StepContext<Order>) {
    return ctx.input.amount > 1000 ? Flow.waitForSignal('approve', { value: charge }) : charge;
  }

  @Step()
  ship(_prev: { chargeId: string } | { by: string }, ctx: StepContext<Order>): Shipment {
    return { shipped: ctx.input.orderId };
  }
}

// The same, with the marker: both types stated once on the class.
@Workflow('types-typed-order')
class TypedOrderWorkflow {
  declare readonly [WorkflowTypes]?: { input: Order; output: Shipment };

  @Step()
  async charge(order: Order) {
    return { chargeId: `ch_${order.orderId}` };
  }

  @Step()
  ship(charge: { chargeId: string }) {
    // a directive: the run's output is this value, which the return type does not tell
    return Flow.complete({ shipped: charge.chargeId });
  }
}

// The marker may state one type only; the other is inferred as usual.
@Workflow('types-output-only')
class OutputOnlyWorkflow {
  declare readonly [WorkflowTypes]?: { output: Shipment };

  @Step() first(order: Order, _ctx: StepContext<Order>) {
    return order.orderId;
  }

  @Step() second(id: string) {
    return Flow.complete({ shipped: id });
  }
}

// A one-step workflow: its only public method gives both types (awaited, directives left out).
@Workflow('types-echo')
class EchoWorkflow {
  constructor(private readonly suffix: string) {}

  @Step()
  async echo(text: string) {
    return text.length > 100 ? Flow.sleep('1s', `${text}${this.suffix}`) : { echoed: text, at: new Date() };
  }

  private helper(): void {}
}

// No types anywhere: input and output stay unknown (anything is accepted, nothing is promised).
@Workflow('types-untyped')
class UntypedWorkflow {
  @Step() a(x: number) {
    return x + 1;
  }

  @Step() b(x: number) {
    return String(x);
  }
}

// An optional input (a step that takes nothing, or `void`): `start(Workflow)` needs no input.
@Workflow('types-no-input')
class NoInputWorkflow {
  @Step() tick() {
    return 1;
  }
}

declare const client: WorkflowClient;
declare const order: Order;

export async function inference(): Promise<void> {
  // --- types of a class
  assertType<Equal<WorkflowInput<typeof OrderWorkflow>, Order>>();
  assertType<Equal<WorkflowOutput<typeof OrderWorkflow>, unknown>>();
  assertType<Equal<WorkflowIO<typeof TypedOrderWorkflow>, { input: Order; output: Shipment }>>();
  assertType<Equal<WorkflowInput<TypedOrderWorkflow>, Order>>(); // the instance type works too
  assertType<Equal<WorkflowIO<typeof OutputOnlyWorkflow>, { input: Order; output: Shipment }>>();
  assertType<Equal<WorkflowIO<typeof EchoWorkflow>, { input: string; output: { echoed: string; at: Date } }>>();
  assertType<Equal<WorkflowIO<typeof UntypedWorkflow>, { input: unknown; output: unknown }>>();
  assertType<Equal<WorkflowIO<'by-name'>, { input: unknown; output: unknown }>>();

  // --- start: the input is checked against the workflow's input type
  const handle = await client.start(OrderWorkflow, order, { id: 'o-1' });
  expectType<WorkflowHandle<unknown>>()(handle);
  // @ts-expect-error the input is an Order
  await client.start(OrderWorkflow, 42);
  // @ts-expect-error a field is missing
  await client.start(OrderWorkflow, { orderId: 'o-1' });
  // @ts-expect-error an Order is required
  await client.start(OrderWorkflow);
  // @ts-expect-error a misspelt option
  await client.start(OrderWorkflow, order, { idd: 'o-1' });

  // --- result() and execute(): the output type
  const typed = await client.start(TypedOrderWorkflow, order);
  const shipment: Shipment = await typed.result();
  void shipment;
  expectType<Shipment>()(await typed.result({ timeout: '5s' }));
  expectType<Shipment>()(await client.execute(TypedOrderWorkflow, order, { timeout: '10s' }));
  expectType<Shipment>()(await client.execute(OutputOnlyWorkflow, order));
  expectType<{ echoed: string; at: Date }>()(await client.execute(EchoWorkflow, 'hi'));
  // @ts-expect-error the output is a Shipment
  const wrong: number = await typed.result();
  void wrong;
  // @ts-expect-error the input is an Order
  await client.execute(TypedOrderWorkflow, 'order');
  // @ts-expect-error the input is a string
  await client.execute(EchoWorkflow, 1);
  // @ts-expect-error execute's options are checked too
  await client.execute(EchoWorkflow, 'hi', { timeout: true });

  // --- explicit type arguments win (a directive made the return type wrong, or no types could be inferred)
  expectType<Shipment>()(await client.execute<Order, Shipment>(OrderWorkflow, order));
  expectType<WorkflowHandle<Shipment>>()(await client.start<Order, Shipment>(OrderWorkflow, order));
  expectType<string>()(await client.execute<number, string>(UntypedWorkflow, 1));
  // @ts-expect-error the stated input type is checked (never inferred from the argument)
  await client.execute<Order, Shipment>(OrderWorkflow, 42);
  // @ts-expect-error also by name
  await client.start<Order, Shipment>('order', { orderId: 1 });
  expectType<Shipment>()(await client.execute<Order, Shipment>('types-order', order));

  // --- by name: untyped, anything goes, the output is unknown
  expectType<WorkflowHandle<unknown>>()(await client.start('types-order', 42));
  expectType<WorkflowHandle<unknown>>()(await client.start('types-order'));
  expectType<unknown>()(await client.execute('types-order', { anything: true }, { timeout: 1000 }));
  // @ts-expect-error the options are still checked
  await client.start('types-order', 1, { conflictPolicy: 'replace' });

  // --- untyped classes accept anything, as before
  expectType<unknown>()(await client.execute(UntypedWorkflow, 'not a number'));
  expectType<number>()(await client.execute(NoInputWorkflow));
  await client.start(NoInputWorkflow, undefined, { id: 'tick' });
  const anyType: Type = OrderWorkflow; // a `Type<any>` (e.g. from a registry of classes) stays untyped
  expectType<WorkflowHandle<unknown>>()(await client.start(anyType, 'anything'));

  // --- getHandle: by class or by output type
  expectType<WorkflowHandle<Shipment>>()(client.getHandle<typeof TypedOrderWorkflow>('o-1'));
  expectType<WorkflowHandle<Shipment>>()(client.getHandle<Shipment>('o-1'));
  expectType<WorkflowHandle<unknown>>()(client.getHandle('o-1'));
  // @ts-expect-error getHandle takes a run id
  client.getHandle(42);
}

declare const dataSource1: DataSource1;
declare const dataSource03: DataSource03;
declare const manager1: EntityManager1;
declare const manager03: EntityManager03;
declare const redis5: Redis5;
declare const cluster5: Cluster5;
declare const redis6: Redis6;
declare const cluster6: Cluster6;
declare const customStore: WorkflowStore;

export async function driverTypes(): Promise<void> {
  // --- transaction: a TypeORM EntityManager of either major, nothing else
  await client.start(OrderWorkflow, order, { transaction: manager1 });
  await client.start(OrderWorkflow, order, { transaction: manager03 });
  await client.start('types-order', order, { transaction: manager03 });
  await dataSource03.transaction((manager) => client.start(TypedOrderWorkflow, order, { transaction: manager }));
  await dataSource1.transaction((manager) => client.execute(TypedOrderWorkflow, order, { transaction: manager }));
  // @ts-expect-error not an EntityManager
  await client.start(OrderWorkflow, order, { transaction: 'oops' });
  // @ts-expect-error a DataSource is not a transaction
  await client.start(OrderWorkflow, order, { transaction: dataSource1 });
  // @ts-expect-error not an EntityManager
  await client.execute('types-order', order, { transaction: {} });
}

export function storeOptions(): DurableExecutionOptions[] {
  const ok: DurableExecutionOptions[] = [
    { store: { type: 'postgres', dataSource: dataSource1 } },
    { store: { type: 'postgres', dataSource: dataSource03, schema: 'wf' } },
    { store: { type: 'postgres', url: 'postgres://localhost/db', tablePrefix: 'x_' } },
    { store: { type: 'redis', client: redis5 } },
    { store: { type: 'redis', client: cluster5 } },
    { store: { type: 'redis', client: redis6, ttl: '30d' } },
    { store: { type: 'redis', client: cluster6 } },
    { store: { type: 'pglite', dataDir: './.cairn' } },
    { store: { type: 'memory' } },
    // a custom store instance, bare (DESIGN §1)
    { store: customStore },
    { store: new MemoryStore() },
  ];
  // @ts-expect-error not a DataSource
  const badDataSource: StoreOptions = { type: 'postgres', dataSource: 'not a datasource' };
  // @ts-expect-error an EntityManager is not a DataSource
  const managerAsDataSource: StoreOptions = { type: 'postgres', dataSource: manager03 };
  // @ts-expect-error not an ioredis client
  const badClient: StoreOptions = { type: 'redis', client: 12 };
  // @ts-expect-error a DataSource is not an ioredis client
  const dataSourceAsClient: StoreOptions = { type: 'redis', client: dataSource1 };
  // @ts-expect-error an option of another store type
  const mixed: StoreOptions = { type: 'postgres', keyPrefix: 'x' };
  // @ts-expect-error an unknown store type
  const unknownType: StoreOptions = { type: 'mongo' };
  DurableExecutionModule.forRoot({ store: { type: 'postgres', dataSource: dataSource03 } });
  DurableExecutionModule.forRootAsync({ useFactory: () => ({ store: { type: 'redis' as const, client: redis6 } }) });
  // @ts-expect-error checked in forRoot too
  DurableExecutionModule.forRoot({ store: { type: 'redis', client: 'redis://x' } });
  void [badDataSource, managerAsDataSource, badClient, dataSourceAsClient, mixed, unknownType];
  return ok;
}
