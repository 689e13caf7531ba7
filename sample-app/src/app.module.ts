import { Inject, Logger, Module, type BeforeApplicationShutdown, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { DurableExecutionDashboardModule, DurableExecutionExceptionFilter, DurableExecutionModule, type StoreOptions } from './cairn.js';
import { SAMPLE_APP_CONFIG } from './app.constants.js';
import type { SampleAppConfig } from './app.config.js';
import { FakeStateStore } from './fakes/fake-state.store.js';
import { FakesController } from './fakes/fakes.controller.js';
import { InventoryService } from './fakes/inventory.service.js';
import { NotificationService } from './fakes/notification.service.js';
import { PaymentService } from './fakes/payment.service.js';
import { ShippingService } from './fakes/shipping.service.js';
import { OrderFulfilmentWorkflow } from './orders/order-fulfilment.workflow.js';
import { OrdersController } from './orders/orders.controller.js';
import { ShipParcelWorkflow } from './orders/ship-parcel.workflow.js';

/** The module's store options for the configured store. */
export function storeOptions(config: SampleAppConfig): StoreOptions {
  switch (config.store) {
    case 'pglite':
      return { type: 'pglite', dataDir: config.dataDir };
    case 'postgres':
      return { type: 'postgres', url: config.databaseUrl, schema: config.postgresSchema };
    case 'redis':
      return { type: 'redis', url: config.redisUrl, keyPrefix: config.redisKeyPrefix };
    case 'memory':
      return { type: 'memory' };
  }
}

/** Says what happens on Ctrl-C, so nobody kills the process while it drains. */
class ShutdownNotice implements BeforeApplicationShutdown {
  private readonly logger = new Logger('OrderService');
  constructor(@Inject(SAMPLE_APP_CONFIG) private readonly config: SampleAppConfig) {}
  beforeApplicationShutdown(signal?: string): void {
    if (signal && this.config.logger !== false) this.logger.log(`${signal}: finishing in-flight steps, then exiting (runs resume on restart)`);
  }
}

/** The order service. */
@Module({})
export class AppModule {
  static forRoot(config: SampleAppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        DurableExecutionModule.forRoot({
          store: storeOptions(config),
          worker: { leaseMs: config.leaseMs, pollIntervalMs: config.pollIntervalMs },
          // Live dashboard updates from every instance sharing a Postgres or Redis store (PGlite and memory: one process).
          events: { cluster: config.store === 'postgres' || config.store === 'redis' },
        }),
        // The dashboard at http://localhost:3000/workflows. NOTE: unguarded, so it refuses to start with
        // NODE_ENV=production; a real app passes `guard: AdminGuard` (see the README's Dashboard section).
        DurableExecutionDashboardModule.forRoot({ path: '/workflows' }),
      ],
      controllers: [OrdersController, FakesController],
      providers: [
        { provide: SAMPLE_APP_CONFIG, useValue: config },
        { provide: APP_FILTER, useClass: DurableExecutionExceptionFilter },
        ShutdownNotice,
        FakeStateStore,
        InventoryService,
        PaymentService,
        ShippingService,
        NotificationService,
        OrderFulfilmentWorkflow,
        ShipParcelWorkflow,
      ],
    };
  }
}
