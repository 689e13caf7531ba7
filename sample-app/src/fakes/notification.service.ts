import { Injectable } from '@nestjs/common';
import { FakeStateStore, type Notification } from './fake-state.store.js';

/** A fake e-mail sender: one message per idempotency key. */
@Injectable()
export class NotificationService {
  constructor(private readonly state: FakeStateStore) {}

  /** Sends a message to a customer (a repeated key sends nothing more). */
  send(idempotencyKey: string, orderId: string, customerId: string, message: string): Notification {
    return this.state.update((s) => {
      s.notifications[idempotencyKey] ??= { idempotencyKey, orderId, customerId, message, sentAt: new Date().toISOString() };
      return s.notifications[idempotencyKey];
    });
  }

  /** Every message sent, optionally for one order. */
  sent(orderId?: string): Notification[] {
    return Object.values(this.state.snapshot().notifications).filter((n) => orderId === undefined || n.orderId === orderId);
  }
}
