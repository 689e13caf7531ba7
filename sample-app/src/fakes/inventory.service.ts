import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { NonRetryableError } from '../cairn.js';
import { FakeStateStore, INITIAL_STOCK, type OrderItem, type Reservation } from './fake-state.store.js';

/** A fake warehouse: reserves and releases stock, idempotently per key. */
@Injectable()
export class InventoryService {
  constructor(private readonly state: FakeStateStore) {}

  /**
   * Holds stock for an order. Calling again with the same key returns the same reservation.
   * @throws NonRetryableError when a SKU has too few units (retrying will not help; restock, then retry the order)
   */
  reserve(idempotencyKey: string, orderId: string, items: OrderItem[]): Reservation {
    return this.state.update((s) => {
      const existing = s.reservations[idempotencyKey];
      if (existing) return existing;
      const wanted = new Map<string, number>();
      for (const item of items) wanted.set(item.sku, (wanted.get(item.sku) ?? 0) + item.qty);
      for (const [sku, qty] of wanted) {
        const available = s.stock[sku] ?? INITIAL_STOCK;
        if (available < qty) throw new NonRetryableError(`Out of stock: ${qty} × ${sku} wanted, ${available} available.`);
      }
      for (const [sku, qty] of wanted) s.stock[sku] = (s.stock[sku] ?? INITIAL_STOCK) - qty;
      const reservation: Reservation = {
        reservationId: `res_${randomUUID().slice(0, 8)}`,
        orderId,
        items,
        status: 'held',
        createdAt: new Date().toISOString(),
      };
      s.reservations[idempotencyKey] = reservation;
      return reservation;
    });
  }

  /** Puts a reservation's stock back (once; later calls change nothing). */
  release(reservationId: string): void {
    this.state.update((s) => {
      const reservation = Object.values(s.reservations).find((r) => r.reservationId === reservationId);
      if (!reservation || reservation.status === 'released') return;
      for (const item of reservation.items) s.stock[item.sku] = (s.stock[item.sku] ?? INITIAL_STOCK) + item.qty;
      reservation.status = 'released';
      reservation.releasedAt = new Date().toISOString();
    });
  }

  /** Adds units of a SKU. */
  restock(sku: string, qty: number): number {
    return this.state.update((s) => (s.stock[sku] = (s.stock[sku] ?? INITIAL_STOCK) + qty));
  }

  /** Units available per SKU seen so far, and every reservation. */
  overview(): { initialStock: number; stock: Record<string, number>; reservations: Reservation[] } {
    const s = this.state.snapshot();
    return { initialStock: INITIAL_STOCK, stock: s.stock, reservations: Object.values(s.reservations) };
  }
}
