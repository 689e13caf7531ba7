/**
 * Workflows and app boot of the dashboard tests (not a spec file).
 */
import { Injectable, Module, type CanActivate, type ExecutionContext, type INestApplication, type Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import {
  DurableExecutionDashboardModule,
  DurableExecutionModule,
  Flow,
  RetryPolicy,
  Step,
  Workflow,
  WorkflowClient,
  type DurableExecutionDashboardOptions,
  type StepContext,
  type DurableExecutionOptions,
} from '../../src/index.js';
import { gate, silentLogger, testOptions, type Gate } from '../nest/helpers.js';

/** What the test workflows do; tests change it between runs. */
export const behaviour: { failCharge: boolean; chargeGate?: Gate; released: unknown[] } = { failCharge: true, released: [] };

export function resetBehaviour(): void {
  behaviour.failCharge = true;
  behaviour.chargeGate = undefined;
  behaviour.released = [];
}

export { gate };

/** reserve → charge (fails while `failCharge`; waits for `chargeGate`) → ship. No compensation: a failed charge ends `failed`. */
@Workflow('dash-order')
export class DashOrder {
  @Step() reserve(order: { id: string; total: number }) {
    return { reserved: order.id, at: new Date(0), big: 12n, tags: new Set(['a']), meta: new Map([['k', 1]]) };
  }
  @Step({ retry: RetryPolicy.none(), timeout: '5s' }) async charge(prev: { reserved: string }) {
    if (behaviour.chargeGate) await behaviour.chargeGate.promise;
    if (behaviour.failCharge) throw new Error('card declined');
    return { charged: prev.reserved };
  }
  @Step() ship(prev: unknown) {
    return { shipped: prev };
  }
}

/** Waits for an `approve` signal, then ends with its payload. */
@Workflow('dash-approval')
export class DashApproval {
  @Step() request(input: unknown) {
    return Flow.waitForSignal('approve', { value: input });
  }
  @Step() done(payload: unknown) {
    return { approvedBy: payload };
  }
}

/** book (compensated by `release`) → waits for `confirm` → finish. */
@Workflow('dash-booking')
export class DashBooking {
  @Step({ compensate: 'release' }) book(input: { room: string }) {
    return { booked: input.room };
  }
  @Step() confirm() {
    return Flow.waitForSignal('confirm');
  }
  @Step() finish(payload: unknown) {
    return payload;
  }
  release(booking: unknown) {
    behaviour.released.push(booking);
  }
}

export const WORKFLOWS = [DashOrder, DashApproval, DashBooking];

/** A child run: waits for `go`, then ends with its input and the payload. */
@Workflow('dash-item')
export class DashItem {
  @Step() hold(input: { n: number }) {
    return Flow.waitForSignal('go', { value: input });
  }
  @Step() done(payload: unknown) {
    return { done: payload };
  }
}

/** Starts `count` `dash-item` children (ids `<parent>:item:<i>`) and waits for all of them; then sums them up. */
@Workflow('dash-fan-out')
export class DashFanOut {
  @Step() spread(input: { count: number }, ctx: StepContext) {
    return Flow.all(Array.from({ length: input.count }, (_, n) => Flow.child(DashItem, { n }, { id: `${ctx.runId}:item:${String(n).padStart(2, '0')}` })));
  }
  @Step() total(outputs: unknown[]) {
    return { children: outputs.length };
  }
}

/** Waits for the first of `approve` and `reject` (Flow.waitForAny). */
@Workflow('dash-any')
export class DashAny {
  @Step() decide() {
    return Flow.waitForAny(['approve', 'reject']);
  }
  @Step() done(got: unknown) {
    return got;
  }
}

/** The child-run workflows, for the suites that boot with them (the others keep their counts). */
export const CHILD_WORKFLOWS = [DashItem, DashFanOut, DashAny];

/** A guard that lets requests with `x-user` in, as that user. */
@Injectable()
export class HeaderUserGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined>; user?: unknown }>();
    const name = request.headers['x-user'];
    if (!name) return false;
    request.user = { id: name, email: `${name}@example.com` };
    return true;
  }
}

export type AdapterKind = 'express' | 'fastify';

/** Boots an HTTP app with the durable module (memory store, test worker settings) and the dashboard. */
export async function bootDashboard(
  kind: AdapterKind,
  dashboard: DurableExecutionDashboardOptions = {},
  durable: DurableExecutionOptions = {},
  providers: Type[] = WORKFLOWS,
): Promise<{ app: INestApplication; client: WorkflowClient }> {
  @Module({
    imports: [DurableExecutionModule.forRoot(testOptions(durable)), DurableExecutionDashboardModule.forRoot(dashboard)],
    providers,
  })
  class DashboardTestModule {}
  const module = await Test.createTestingModule({ imports: [DashboardTestModule] }).setLogger(silentLogger).compile();
  const app =
    kind === 'express'
      ? module.createNestApplication({ logger: false })
      : module.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
  await app.init();
  if (kind === 'fastify') await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  return { app, client: app.get(WorkflowClient) };
}
