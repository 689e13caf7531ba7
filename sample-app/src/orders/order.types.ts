import type { OrderItem, Shipment } from '../fakes/fake-state.store.js';

export type { OrderItem };

/** The input of an order-fulfilment run (the validated body of `POST /orders`). */
export interface OrderInput {
  customerId: string;
  items: OrderItem[];
  amount: number;
}

/** The `approve` signal's payload: who approved a large order. */
export interface Approval {
  approvedBy: string;
  approvedAt: string;
}

/** The input of a ship-parcel child run: one parcel of an order (one line of the order per parcel). */
export interface ParcelInput {
  orderId: string;
  /** 1-based number of the parcel in the order. */
  parcel: number;
  items: OrderItem[];
  /** Who approved the order ('auto' for small orders), handed back in the output for the confirmation. */
  approvedBy: string;
}

/** The output of a ship-parcel child run. */
export type ShippedParcel = Shipment & { parcel: number; approvedBy: string };

/** The run's output once the order is fulfilled. */
export interface OrderResult {
  orderId: string;
  chargeId: string;
  /** One per parcel, in the order's item order. */
  trackingNumbers: string[];
  approvedBy: string;
}
