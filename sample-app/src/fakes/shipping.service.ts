import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import { SAMPLE_APP_CONFIG } from '../app.constants.js';
import type { SampleAppConfig } from '../app.config.js';
import { FakeStateStore, type OrderItem, type Shipment } from './fake-state.store.js';

/** A fake carrier: shipping takes `CAIRN_SHIP_DELAY_MS`; one shipment per idempotency key. */
@Injectable()
export class ShippingService {
  private readonly delayMs: number;

  constructor(
    private readonly state: FakeStateStore,
    @Inject(SAMPLE_APP_CONFIG) config: SampleAppConfig,
  ) {
    this.delayMs = config.shipDelayMs;
  }

  /** Hands the parcel to the carrier; stops waiting when `signal` aborts (step timeout, cancel, shutdown). */
  async ship(idempotencyKey: string, orderId: string, items: OrderItem[], signal?: AbortSignal): Promise<Shipment> {
    const existing = this.state.snapshot().shipments[idempotencyKey];
    if (existing) return existing;
    if (this.delayMs > 0) await delay(this.delayMs, undefined, { signal });
    return this.state.update((s) => {
      const shipmentId = randomUUID().slice(0, 8);
      s.shipments[idempotencyKey] ??= {
        shipmentId: `shp_${shipmentId}`,
        idempotencyKey,
        orderId,
        // NOTE: parcels of one order ship in the same millisecond: the time alone would repeat.
        trackingNumber: `TRK${Date.now().toString(36).toUpperCase()}${shipmentId.slice(0, 4).toUpperCase()}`,
        items,
        shippedAt: new Date().toISOString(),
      };
      return s.shipments[idempotencyKey];
    });
  }

  /** Every shipment, optionally of one order. */
  shipments(orderId?: string): Shipment[] {
    return Object.values(this.state.snapshot().shipments).filter((s) => orderId === undefined || s.orderId === orderId);
  }
}
