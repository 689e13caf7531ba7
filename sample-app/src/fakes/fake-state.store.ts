import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { SAMPLE_APP_CONFIG } from '../app.constants.js';
import type { SampleAppConfig } from '../app.config.js';

/** A line of an order. */
export interface OrderItem {
  sku: string;
  qty: number;
}

/** Stock held for an order, keyed by the idempotency key of the step that reserved it. */
export interface Reservation {
  reservationId: string;
  orderId: string;
  items: OrderItem[];
  status: 'held' | 'released';
  createdAt: string;
  releasedAt?: string;
}

/** A payment taken by the fake provider, keyed by the caller's idempotency key. */
export interface Charge {
  chargeId: string;
  idempotencyKey: string;
  orderId: string;
  customerId: string;
  amount: number;
  status: 'captured' | 'refunded';
  /** Requests that reached this charge: the one that created it, then idempotent replays. */
  requests: number;
  createdAt: string;
  refundedAt?: string;
}

/** A parcel handed to the carrier. */
export interface Shipment {
  shipmentId: string;
  idempotencyKey: string;
  orderId: string;
  trackingNumber: string;
  items: OrderItem[];
  shippedAt: string;
}

/** A confirmation sent to a customer. */
export interface Notification {
  idempotencyKey: string;
  orderId: string;
  customerId: string;
  message: string;
  sentAt: string;
}

/** Everything the fake external systems remember. */
export interface FakeState {
  /** Units available per SKU; a SKU not listed has {@link INITIAL_STOCK}. */
  stock: Record<string, number>;
  reservations: Record<string, Reservation>;
  charges: Record<string, Charge>;
  shipments: Record<string, Shipment>;
  notifications: Record<string, Notification>;
}

/** Units of a SKU the warehouse starts with. */
export const INITIAL_STOCK = 100;

const emptyState = (): FakeState => ({ stock: {}, reservations: {}, charges: {}, shipments: {}, notifications: {} });

/**
 * The state of the fake inventory, payment, shipping and notification systems. They stand for external services, so
 * their state must outlive the app process like a real provider's would: it is kept in one small JSON file, rewritten
 * synchronously (write + rename) on every change, so even `kill -9` loses nothing that a call reported as done.
 */
@Injectable()
export class FakeStateStore {
  private readonly state: FakeState;
  private readonly file?: string;

  constructor(@Inject(SAMPLE_APP_CONFIG) config: SampleAppConfig) {
    this.file = config.stateFile;
    this.state = this.file && existsSync(this.file) ? { ...emptyState(), ...(JSON.parse(readFileSync(this.file, 'utf8')) as FakeState) } : emptyState();
  }

  /** A copy of the state, for reading. */
  snapshot(): FakeState {
    return copy(this.state);
  }

  /** Changes the state and persists it before returning. */
  update<T>(change: (state: FakeState) => T): T {
    const result = change(this.state);
    if (this.file) {
      mkdirSync(dirname(this.file), { recursive: true });
      const tmp = `${this.file}.tmp`;
      writeFileSync(tmp, JSON.stringify(this.state, null, 2));
      renameSync(tmp, this.file);
    }
    return copy(result);
  }
}

// NOTE: not structuredClone: under Jest it makes objects of another realm, which nestjs-cairn's serializer currently
// rejects as step outputs ("instance of class Object"; reported as a library bug). A JSON copy suits JSON state anyway.
function copy<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}
