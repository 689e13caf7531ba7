import { BadRequestException, Body, Controller, Get, Param, Post, Query } from '@nestjs/common';
import type { Charge, Notification, Reservation, Shipment } from './fake-state.store.js';
import { InventoryService } from './inventory.service.js';
import { NotificationService } from './notification.service.js';
import { PaymentService } from './payment.service.js';
import { ShippingService } from './shipping.service.js';

/** Debug views of the fake external systems, to see what the workflow did to them. */
@Controller()
export class FakesController {
  constructor(
    private readonly inventory: InventoryService,
    private readonly payments: PaymentService,
    private readonly shipping: ShippingService,
    private readonly notifications: NotificationService,
  ) {}

  /** Every charge the payment provider took (`?orderId=`): more than one for an order would be a double charge. */
  @Get('payments/charges')
  charges(@Query('orderId') orderId?: string): { charges: Charge[] } {
    return { charges: this.payments.charges(orderId) };
  }

  /** Units available per SKU and every reservation. */
  @Get('inventory')
  stock(): { initialStock: number; stock: Record<string, number>; reservations: Reservation[] } {
    return this.inventory.overview();
  }

  /** Adds units of a SKU (body `{ qty }`), e.g. before retrying an order that failed out of stock. */
  @Post('inventory/:sku/restock')
  restock(@Param('sku') sku: string, @Body() body: unknown): { sku: string; available: number } {
    const qty = (body as { qty?: unknown } | undefined)?.qty;
    if (typeof qty !== 'number' || !Number.isSafeInteger(qty) || qty <= 0) throw new BadRequestException('qty must be a positive integer.');
    return { sku, available: this.inventory.restock(sku, qty) };
  }

  /** Parcels handed to the carrier (`?orderId=`). */
  @Get('shipments')
  shipments(@Query('orderId') orderId?: string): { shipments: Shipment[] } {
    return { shipments: this.shipping.shipments(orderId) };
  }

  /** Confirmations sent (`?orderId=`). */
  @Get('notifications')
  sent(@Query('orderId') orderId?: string): { notifications: Notification[] } {
    return { notifications: this.notifications.sent(orderId) };
  }
}
