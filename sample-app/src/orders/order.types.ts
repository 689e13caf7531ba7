import type { OrderItem } from '../fakes/fake-state.store.js';

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

/** The run's output once the order is fulfilled. */
export interface OrderResult {
  orderId: string;
  chargeId: string;
  trackingNumber: string;
  approvedBy: string;
}
