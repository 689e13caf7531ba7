import { RetryPolicy, Step, Workflow, type StepContext } from '../cairn.js';
import { ShippingService } from '../fakes/shipping.service.js';
import type { ParcelInput, ShippedParcel } from './order.types.js';

/** The workflow's name, as runs record it. */
export const SHIP_PARCEL = 'ship-parcel';

/**
 * Ships one parcel of an order: a child run started by the order's `ship` step (`Flow.all`, one child per parcel). Its
 * run id is `<orderId>:ship:<i>`, so `GET /orders/<orderId>:ship:0` describes the first parcel's run, and
 * `GET /orders/<orderId>/parcels` lists them all.
 */
@Workflow(SHIP_PARCEL)
export class ShipParcelWorkflow {
  constructor(private readonly shipping: ShippingService) {}

  // NOTE: the carrier deduplicates by the idempotency key (`<orderId>:ship:<i>:handOver`), so an attempt repeated after
  // a timeout or a crash returns the parcel already handed over instead of shipping it twice.
  @Step({ timeout: '5s', retry: RetryPolicy.fixed(3, '500ms') })
  async handOver(parcel: ParcelInput, ctx: StepContext<ParcelInput>): Promise<ShippedParcel> {
    const shipment = await this.shipping.ship(ctx.idempotencyKey, parcel.orderId, parcel.items, ctx.signal);
    return { ...shipment, parcel: parcel.parcel, approvedBy: parcel.approvedBy };
  }
}
