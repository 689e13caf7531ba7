import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { SAMPLE_APP_CONFIG } from '../app.constants.js';
import type { SampleAppConfig } from '../app.config.js';
import { FakeStateStore, type Charge } from './fake-state.store.js';

/** The fake provider had a transient problem; the call may be retried with the same idempotency key. */
export class PaymentGatewayError extends Error {
  override readonly name = 'PaymentGatewayError';
}

/** What to charge. */
export interface ChargeRequest {
  idempotencyKey: string;
  orderId: string;
  customerId: string;
  amount: number;
}

/**
 * A fake payment provider that fails transiently a configurable share of the calls (`CAIRN_PAYMENT_FAILURE_RATE`).
 *
 * Like real providers it deduplicates by idempotency key: a request with a key it has seen returns that charge instead
 * of charging again. Half of its failures happen *after* the money was taken (the response is lost), which is exactly
 * when a caller that retried without the same key would charge the customer twice: every charge is kept, so such a
 * double charge would show in `GET /payments/charges`.
 *
 * Failures are spread evenly and deterministically (no randomness): with rate r, the n-th call fails when the running
 * sum of r crosses an integer, starting with the first call. A rate of 0.5 fails every other call.
 */
@Injectable()
export class PaymentService {
  private readonly failureRate: number;
  private credit: number;
  private failures = 0;

  constructor(
    private readonly state: FakeStateStore,
    @Inject(SAMPLE_APP_CONFIG) config: SampleAppConfig,
  ) {
    this.failureRate = config.paymentFailureRate;
    this.credit = 1 - this.failureRate;
  }

  /**
   * Charges a customer, once per idempotency key.
   * @throws PaymentGatewayError on a transient failure (sometimes after the charge was taken)
   */
  charge(request: ChargeRequest): Charge {
    const fails = this.nextCallFails();
    const lostResponse = fails && this.failures++ % 2 === 0;
    if (fails && !lostResponse) throw new PaymentGatewayError('Payment gateway unavailable (503), nothing was charged.');
    const charge = this.state.update((s) => {
      const existing = s.charges[request.idempotencyKey];
      if (existing) {
        existing.requests += 1;
        return existing;
      }
      const created: Charge = {
        chargeId: `ch_${randomUUID().slice(0, 8)}`,
        ...request,
        status: 'captured',
        requests: 1,
        createdAt: new Date().toISOString(),
      };
      s.charges[request.idempotencyKey] = created;
      return created;
    });
    if (lostResponse) throw new PaymentGatewayError('Payment gateway timed out after taking the charge (response lost).');
    return charge;
  }

  /** Refunds a charge (once; later calls change nothing). */
  refund(chargeId: string): void {
    this.state.update((s) => {
      const charge = Object.values(s.charges).find((c) => c.chargeId === chargeId);
      if (!charge || charge.status === 'refunded') return;
      charge.status = 'refunded';
      charge.refundedAt = new Date().toISOString();
    });
  }

  /** Every charge taken, oldest first, optionally of one order. */
  charges(orderId?: string): Charge[] {
    return Object.values(this.state.snapshot().charges)
      .filter((c) => orderId === undefined || c.orderId === orderId)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  private nextCallFails(): boolean {
    this.credit += this.failureRate;
    if (this.credit < 1 - 1e-9) return false;
    this.credit -= 1;
    return true;
  }
}
