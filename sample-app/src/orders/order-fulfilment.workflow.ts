import { Inject } from '@nestjs/common';
import { Flow, RetryPolicy, Step, Workflow, type CompensationContext, type StepContext } from '../cairn.js';
import { SAMPLE_APP_CONFIG } from '../app.constants.js';
import type { SampleAppConfig } from '../app.config.js';
import type { Charge, Reservation } from '../fakes/fake-state.store.js';
import { InventoryService } from '../fakes/inventory.service.js';
import { NotificationService } from '../fakes/notification.service.js';
import { PaymentService } from '../fakes/payment.service.js';
import type { Approval, OrderInput, OrderResult, ShippedParcel } from './order.types.js';
import { ShipParcelWorkflow } from './ship-parcel.workflow.js';

/** The workflow's name, as runs record it. */
export const ORDER_FULFILMENT = 'order-fulfilment';

type Ctx = StepContext<OrderInput>;

/**
 * Fulfils an order: reserve stock → charge payment → (large orders) wait for approval → ship → confirm. Shipping
 * starts one child run per parcel ({@link ShipParcelWorkflow}) and waits for all of them.
 *
 * Every step's output is checkpointed, so a crash at any point resumes at the step that was running. If a step fails
 * for good, or the order is cancelled, the completed steps are undone in reverse order: the charge is refunded, then
 * the stock released.
 */
@Workflow(ORDER_FULFILMENT)
export class OrderFulfilmentWorkflow {
  constructor(
    private readonly inventory: InventoryService,
    private readonly payments: PaymentService,
    private readonly notifications: NotificationService,
    @Inject(SAMPLE_APP_CONFIG) private readonly config: SampleAppConfig,
  ) {}

  @Step({ compensate: 'releaseStock' })
  reserveStock(order: OrderInput, ctx: Ctx): Reservation {
    return this.inventory.reserve(ctx.idempotencyKey, ctx.runId, order.items);
  }

  releaseStock(reservation: Reservation, ctx: CompensationContext<OrderInput>): void {
    ctx.logger.log(`Order ${ctx.runId}: releasing stock of ${reservation.reservationId}`);
    this.inventory.release(reservation.reservationId);
  }

  // NOTE: the idempotency key is the same for every attempt and every recovery of this step, so a retry after a lost
  // response (or after a crash) finds the charge already taken instead of charging again.
  @Step({
    retry: { maxAttempts: 5, backoff: 'exponential', delay: '200ms', multiplier: 2, maxDelay: '5s' },
    compensate: 'refund',
  })
  chargePayment(_reservation: Reservation, ctx: Ctx): Charge {
    const { customerId, amount } = ctx.input;
    if (ctx.attempt > 1) ctx.logger.log(`Order ${ctx.runId}: charging, attempt ${ctx.attempt}`);
    return this.payments.charge({ idempotencyKey: ctx.idempotencyKey, orderId: ctx.runId, customerId, amount });
  }

  refund(charge: Charge, ctx: CompensationContext<OrderInput>): void {
    ctx.logger.log(`Order ${ctx.runId}: refunding ${charge.chargeId}`);
    this.payments.refund(charge.chargeId);
  }

  @Step()
  awaitApproval(charge: Charge, ctx: Ctx) {
    if (ctx.input.amount <= this.config.approvalThreshold) {
      return { approvedBy: 'auto', approvedAt: new Date().toISOString() } satisfies Approval;
    }
    ctx.logger.log(`Order ${ctx.runId}: ${charge.amount} is above ${this.config.approvalThreshold}, waiting for approval`);
    // The run is suspended (status 'waiting', no process resources held) until POST /orders/:id/approve; the next
    // step receives the signal's payload. Past the timeout the run fails and is compensated.
    return Flow.waitForSignal('approve', { timeout: this.config.approvalTimeout, value: { approvalRequired: true } });
  }

  // One child run per parcel (here, one per line of the order), all shipping at once. The parent waits ('waiting', no
  // lease held) until every parcel has shipped; this step's output is the array of the children's outputs, in order.
  // Their ids are deterministic (`<orderId>:ship:0`, `:1`, …), so after a crash the step finds its children again
  // instead of shipping twice. A parcel that fails for good fails this step (ChildWorkflowFailedError), cancels the
  // parcels still shipping, and the order is compensated: refund, then stock release. Cancelling the order cancels the
  // parcels still shipping.
  @Step()
  ship(approval: Approval, ctx: Ctx) {
    // NOTE: the approval signal's payload reaches only this step (a step that waits records its `value`, not the
    // payload), so it travels with the parcels and comes back in their outputs for the confirmation.
    return Flow.all(
      ctx.input.items.map((item, i) =>
        Flow.child(ShipParcelWorkflow, { orderId: ctx.runId, parcel: i + 1, items: [item], approvedBy: approval.approvedBy }),
      ),
    );
  }

  @Step({ retry: RetryPolicy.exponential(3, '100ms') })
  sendConfirmation(parcels: ShippedParcel[], ctx: Ctx): OrderResult {
    const charge = ctx.results.chargePayment as Charge;
    const trackingNumbers = parcels.map((p) => p.trackingNumber);
    this.notifications.send(
      ctx.idempotencyKey,
      ctx.runId,
      ctx.input.customerId,
      `Your order ${ctx.runId} is on its way in ${parcels.length} parcel(s): tracking ${trackingNumbers.join(', ')}.`,
    );
    return { orderId: ctx.runId, chargeId: charge.chargeId, trackingNumbers, approvedBy: parcels[0].approvedBy };
  }
}
