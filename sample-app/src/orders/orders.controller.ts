import { isDeepStrictEqual } from 'node:util';
import { Body, ConflictException, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query } from '@nestjs/common';
import { WorkflowClient, type RunInfo } from '../cairn.js';
import { SAMPLE_APP_CONFIG } from '../app.constants.js';
import type { SampleAppConfig } from '../app.config.js';
import { ORDER_FULFILMENT, OrderFulfilmentWorkflow } from './order-fulfilment.workflow.js';
import type { Approval, OrderInput, ParcelInput } from './order.types.js';
import { parseApprover, parseListQuery, parseOrderInput } from './order.validation.js';

/**
 * Orders are workflow runs: the order id is the run id. Errors of the workflow client (unknown run, ended run, bad
 * argument) become HTTP statuses in the library's `DurableExecutionExceptionFilter`.
 */
@Controller('orders')
export class OrdersController {
  constructor(
    private readonly workflows: WorkflowClient,
    @Inject(SAMPLE_APP_CONFIG) private readonly config: SampleAppConfig,
  ) {}

  /** Places an order. With an `Idempotency-Key` header, that key is the order id and repeating the request is safe. */
  @Post()
  async place(@Body() body: unknown, @Headers('idempotency-key') idempotencyKey?: string): Promise<{ orderId: string }> {
    const input = parseOrderInput(body);
    const handle = await this.workflows.start(OrderFulfilmentWorkflow, input, idempotencyKey === undefined ? {} : { id: idempotencyKey });
    if (idempotencyKey !== undefined) {
      const existing = await handle.describe();
      if (!isDeepStrictEqual(existing.input, input)) {
        throw new ConflictException(`Idempotency-Key "${idempotencyKey}" was already used for a different order.`);
      }
    }
    return { orderId: handle.runId };
  }

  /** Orders, newest first: `?status=waiting,failed&limit=20&cursor=…` (the response's `cursor` fetches the next page). */
  @Get()
  async list(@Query() query: Record<string, unknown>): Promise<{ orders: RunInfo[]; cursor?: string }> {
    const { runs, cursor } = await this.workflows.list({ workflow: ORDER_FULFILMENT, ...parseListQuery(query) });
    return { orders: runs, cursor };
  }

  /** The order's run: status, current step, each step's attempts and output, the error that ended it. */
  @Get(':id')
  get(@Param('id') id: string): Promise<RunInfo> {
    return this.workflows.getHandle(id).describe();
  }

  /** The order's parcels: the ship-parcel child runs its `ship` step started, with their status and shipment. */
  @Get(':id/parcels')
  async parcels(@Param('id') id: string): Promise<{ parcels: RunInfo[] }> {
    await this.workflows.getHandle(id).describe(); // 404 for an unknown order
    const { runs } = await this.workflows.list({ parentRunId: id, limit: 1000 });
    return { parcels: runs.sort((a, b) => (a.input as ParcelInput).parcel - (b.input as ParcelInput).parcel) };
  }

  /** Approves a large order waiting in `awaitApproval` (body: optional `{ approvedBy }`). */
  @Post(':id/approve')
  @HttpCode(202)
  async approve(@Param('id') id: string, @Body() body: unknown): Promise<{ orderId: string }> {
    const approvedBy = parseApprover(body);
    const order = await this.workflows.getHandle(id).describe();
    if ((order.input as OrderInput).amount <= this.config.approvalThreshold) {
      throw new ConflictException(`Order "${id}" does not need approval (amount up to ${this.config.approvalThreshold}).`);
    }
    await this.workflows.signal(id, 'approve', { approvedBy, approvedAt: new Date().toISOString() } satisfies Approval);
    return { orderId: id };
  }

  /** Cancels an order: the running step is aborted, the charge refunded and the stock released. */
  @Post(':id/cancel')
  @HttpCode(202)
  async cancel(@Param('id') id: string): Promise<{ orderId: string }> {
    await this.workflows.cancel(id);
    return { orderId: id };
  }

  /** Retries a failed order from the step that failed (e.g. after restocking). */
  @Post(':id/retry')
  @HttpCode(202)
  async retry(@Param('id') id: string): Promise<{ orderId: string }> {
    await this.workflows.retry(id);
    return { orderId: id };
  }
}
