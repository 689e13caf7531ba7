import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import type { RunInfo } from '../../src/index.js';
import { createApp, type SampleAppConfig } from '../../sample-app/src/create-app.js';
import type { Charge, Reservation, Shipment } from '../../sample-app/src/fakes/fake-state.store.js';
import { cleanUp, e2eConfig, e2eStores, orderBody, waitForOrder, waitForStatus, type E2eStore } from './sample-app.support.js';

/** The sample app over HTTP, on every store: payments fail every other call (rate 0.5), approval times out after 2 s. */
describe.each(e2eStores())('sample app on the %s store', (store: E2eStore) => {
  let config: SampleAppConfig | undefined;
  let app: INestApplication | undefined;
  let server: Parameters<typeof request>[0];

  beforeAll(async () => {
    config = e2eConfig(store);
    app = await createApp(config);
    server = app.getHttpServer();
  }, 90_000); // PGlite's first open of a folder: ~5 s idle, much longer on a busy machine

  afterAll(async () => {
    await app?.close();
    if (config) await cleanUp(config);
  });

  const place = async (body: object = orderBody(), key?: string): Promise<string> => {
    const req = request(server).post('/orders').send(body);
    const res = await (key === undefined ? req : req.set('Idempotency-Key', key));
    expect(res.status).toBe(201);
    return (res.body as { orderId: string }).orderId;
  };
  const chargesOf = async (orderId: string): Promise<Charge[]> =>
    ((await request(server).get('/payments/charges').query({ orderId })).body as { charges: Charge[] }).charges;
  const inventory = async () =>
    (await request(server).get('/inventory')).body as { initialStock: number; stock: Record<string, number>; reservations: Reservation[] };
  const allOrders = async (): Promise<RunInfo[]> => ((await request(server).get('/orders?limit=1000')).body as { orders: RunInfo[] }).orders;
  const step = (order: RunInfo, name: string) => order.steps.find((s) => s.name === name)!;

  it('happy path: a small order completes, charged once, shipped and confirmed', async () => {
    const orderId = await place(orderBody(25, [{ sku: 'book', qty: 2 }]));
    const order = await waitForStatus(server, orderId, 'completed');
    expect(order.workflow).toBe('order-fulfilment');
    expect(order.steps.map((s) => [s.name, s.status])).toEqual([
      ['reserveStock', 'completed'],
      ['chargePayment', 'completed'],
      ['awaitApproval', 'completed'],
      ['ship', 'completed'],
      ['sendConfirmation', 'completed'],
    ]);
    expect(step(order, 'awaitApproval').output).toMatchObject({ approvedBy: 'auto' });
    const charges = await chargesOf(orderId);
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ orderId, amount: 25, status: 'captured', idempotencyKey: `${orderId}:chargePayment` });
    const shipments = (await request(server).get('/shipments').query({ orderId })).body.shipments as Shipment[];
    expect(shipments).toHaveLength(1);
    expect(order.output).toEqual({ orderId, chargeId: charges[0].chargeId, trackingNumbers: [shipments[0].trackingNumber], approvedBy: 'auto' });
    // The parcel shipped as a child run, listed under the order, with a deterministic id.
    const parcels = (await request(server).get(`/orders/${orderId}/parcels`)).body.parcels as RunInfo[];
    expect(parcels.map((p) => [p.runId, p.workflow, p.status, p.parentRunId])).toEqual([[`${orderId}:ship:0`, 'ship-parcel', 'completed', orderId]]);
    expect(step(order, 'ship').output).toEqual([{ ...shipments[0], parcel: 1, approvedBy: 'auto' }]);
    expect((await request(server).get('/notifications').query({ orderId })).body.notifications).toHaveLength(1);
    const reservation = (await inventory()).reservations.find((r) => r.orderId === orderId);
    expect(reservation).toMatchObject({ status: 'held', items: [{ sku: 'book', qty: 2 }] });
  });

  it('transient payment failures are retried with the same idempotency key: exactly one charge per order', async () => {
    // Rate 0.5 fails every other payment call, and every other failure loses the response after taking the money:
    // three concurrent orders need three successes, so at least two failures happen, one of them after a charge.
    const ids = await Promise.all([1, 2, 3].map((n) => place(orderBody(10 * n, [{ sku: 'pen', qty: n }], `cust-retry-${n}`))));
    const orders = await Promise.all(ids.map((id) => waitForStatus(server, id, 'completed')));
    const attempts = orders.map((o) => step(o, 'chargePayment').attempts);
    expect(attempts.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5);
    const charges = await Promise.all(ids.map((id) => chargesOf(id)));
    for (const [i, list] of charges.entries()) {
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({ orderId: ids[i], amount: 10 * (i + 1), status: 'captured', idempotencyKey: `${ids[i]}:chargePayment` });
      expect((step(orders[i], 'chargePayment').output as Charge).chargeId).toBe(list[0].chargeId);
    }
    // A charge whose response was lost was asked for again with the same key and returned, not taken twice.
    expect(charges.some(([c]) => c.requests >= 2)).toBe(true);
  });

  it('an order of several items ships one parcel per item, each a child run, and lists them', async () => {
    const items = [
      { sku: 'cup', qty: 2 },
      { sku: 'plate', qty: 4 },
      { sku: 'bowl', qty: 1 },
    ];
    const orderId = await place(orderBody(60, items), `parcels-${store}`);
    const order = await waitForStatus(server, orderId, 'completed');
    const res = await request(server).get(`/orders/${orderId}/parcels`);
    expect(res.status).toBe(200);
    const parcels = res.body.parcels as RunInfo[];
    expect(parcels.map((p) => [p.runId, p.status, p.parentRunId, (p.input as { items: unknown }).items])).toEqual(
      items.map((item, i) => [`${orderId}:ship:${i}`, 'completed', orderId, [item]]),
    );
    const shipments = (await request(server).get('/shipments').query({ orderId })).body.shipments as Shipment[];
    expect(shipments).toHaveLength(3);
    const byParcel = parcels.map((p) => (p.output as Shipment).trackingNumber);
    expect(new Set(byParcel).size).toBe(3);
    expect(order.output).toMatchObject({ orderId, trackingNumbers: byParcel, approvedBy: 'auto' });
    // A parcel's run is a run like any other: describe it by its id.
    const first = (await request(server).get(`/orders/${encodeURIComponent(`${orderId}:ship:0`)}`)).body as RunInfo;
    expect(first).toMatchObject({ workflow: 'ship-parcel', status: 'completed', parentRunId: orderId });
    // Children are not orders: the order list shows only order-fulfilment runs.
    expect((await allOrders()).every((o) => o.workflow === 'order-fulfilment')).toBe(true);
    expect((await request(server).get('/orders/no-such-order/parcels')).status).toBe(404);
  });

  it('a large order waits for the approve signal, then completes', async () => {
    const orderId = await place(orderBody(2500, [{ sku: 'piano', qty: 1 }]), `large-${store}`);
    const waiting = await waitForStatus(server, orderId, 'waiting');
    expect(waiting.currentStep).toBe('awaitApproval');
    const listed = (await request(server).get('/orders').query({ status: 'waiting' })).body as { orders: RunInfo[] };
    expect(listed.orders.map((o) => o.runId)).toContain(orderId);

    const approve = await request(server).post(`/orders/${orderId}/approve`).send({ approvedBy: 'alice' });
    expect(approve.status).toBe(202);
    const order = await waitForStatus(server, orderId, 'completed');
    expect(order.output).toMatchObject({ orderId, approvedBy: 'alice' });
    expect(await chargesOf(orderId)).toHaveLength(1);

    // The order has ended: signals, cancel and retry are refused with 409.
    const again = await request(server).post(`/orders/${orderId}/approve`).send({ approvedBy: 'bob' });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'CAIRN_RUN_NOT_ACTIVE' });
    expect((await request(server).post(`/orders/${orderId}/cancel`)).status).toBe(409);
    const retry = await request(server).post(`/orders/${orderId}/retry`);
    expect(retry.status).toBe(409);
    expect(retry.body).toMatchObject({ code: 'CAIRN_INVALID_RUN_STATE' });
    // A small order does not take approvals at all.
    const small = await place(orderBody(5));
    expect((await request(server).post(`/orders/${small}/approve`)).status).toBe(409);
    await waitForStatus(server, small, 'completed');
  });

  it('cancelling an order refunds the charge and releases the stock', async () => {
    const before = (await inventory()).stock.drum ?? (await inventory()).initialStock;
    const orderId = await place(orderBody(1800, [{ sku: 'drum', qty: 3 }]));
    await waitForStatus(server, orderId, 'waiting');
    expect((await inventory()).stock.drum).toBe(before - 3);

    expect((await request(server).post(`/orders/${orderId}/cancel`)).status).toBe(202);
    const order = await waitForStatus(server, orderId, 'cancelled');
    expect(step(order, 'chargePayment').status).toBe('compensated');
    expect(step(order, 'reserveStock').status).toBe('compensated');
    expect(order.steps.map((s) => s.name)).not.toContain('ship');
    const charges = await chargesOf(orderId);
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ status: 'refunded' });
    const stock = await inventory();
    expect(stock.stock.drum).toBe(before);
    expect(stock.reservations.find((r) => r.orderId === orderId)).toMatchObject({ status: 'released' });
    // Cancelling a cancelled order changes nothing.
    expect((await request(server).post(`/orders/${orderId}/cancel`)).status).toBe(202);
    expect((await request(server).get(`/orders/${orderId}`)).body).toMatchObject({ status: 'cancelled' });
  });

  it('a large order not approved in time is compensated (signal timeout)', async () => {
    const orderId = await place(orderBody(1200, [{ sku: 'harp', qty: 1 }]));
    const order = await waitForStatus(server, orderId, 'compensated', 15_000);
    expect(order.error).toMatchObject({ name: 'SignalTimeoutError', step: 'awaitApproval', phase: 'step' });
    const [charge] = await chargesOf(orderId);
    expect(charge).toMatchObject({ status: 'refunded' });
    expect((await inventory()).reservations.find((r) => r.orderId === orderId)).toMatchObject({ status: 'released' });
  });

  it('an order that failed out of stock can be retried after restocking', async () => {
    const orderId = await place(orderBody(40, [{ sku: 'rare-vinyl', qty: 150 }]));
    const failed = await waitForStatus(server, orderId, 'failed');
    expect(failed.error).toMatchObject({ name: 'NonRetryableError', step: 'reserveStock' });
    expect(failed.error?.message).toContain('Out of stock');
    expect(await chargesOf(orderId)).toHaveLength(0);

    const restock = await request(server).post('/inventory/rare-vinyl/restock').send({ qty: 100 });
    expect(restock.body).toEqual({ sku: 'rare-vinyl', available: 200 });
    expect((await request(server).post(`/orders/${orderId}/retry`)).status).toBe(202);
    const order = await waitForStatus(server, orderId, 'completed');
    expect(step(order, 'reserveStock').attempts).toBe(2);
    expect(await chargesOf(orderId)).toHaveLength(1);
    expect((await inventory()).stock['rare-vinyl']).toBe(50);
  });

  it('an Idempotency-Key makes placing an order safe to repeat', async () => {
    const key = `idem-${store}`;
    const first = await place(orderBody(30), key);
    expect(first).toBe(key);
    expect(await place(orderBody(30), key)).toBe(key);
    const reused = await request(server).post('/orders').set('Idempotency-Key', key).send(orderBody(31));
    expect(reused.status).toBe(409);
    await waitForStatus(server, key, 'completed');
    expect(await chargesOf(key)).toHaveLength(1);
    expect((await allOrders()).filter((o) => o.runId === key)).toHaveLength(1);
  });

  it('rejects bad input with 400 and a message, storing nothing', async () => {
    const count = (await allOrders()).length;
    const bad: [object | string, string?][] = [
      [{}],
      ['not json'],
      [[orderBody()]],
      [{ ...orderBody(), customerId: '' }],
      [{ ...orderBody(), items: [] }],
      [{ ...orderBody(), items: [{ sku: 'book', qty: 0 }] }],
      [{ ...orderBody(), items: [{ sku: 'book', qty: 1.5 }] }],
      [{ ...orderBody(), items: [{ qty: 1 }] }],
      [{ ...orderBody(), amount: 0 }],
      [{ ...orderBody(), amount: '10' }],
      [orderBody(), ''],
      [orderBody(), 'k'.repeat(256)],
    ];
    for (const [body, key] of bad) {
      let req = request(server).post('/orders').set('Content-Type', 'application/json');
      if (key !== undefined) req = req.set('Idempotency-Key', key);
      const res = await req.send(typeof body === 'string' ? body : JSON.stringify(body));
      expect([res.status, JSON.stringify(body)]).toEqual([400, JSON.stringify(body)]);
      expect(res.body.message).toBeTruthy();
    }
    const res = await request(server).post('/orders').send({ customerId: 'c', items: [{ sku: 'x', qty: -1 }] });
    expect(res.body.message).toEqual(['items[0].qty must be a positive integer', 'amount must be a number greater than 0']);

    for (const query of ['limit=0', 'limit=1001', 'limit=abc', 'cursor=not-a-cursor', 'status=shipped']) {
      const list = await request(server).get(`/orders?${query}`);
      expect([query, list.status]).toEqual([query, 400]);
    }
    expect((await request(server).post(`/orders/x/approve`).send({ approvedBy: 42 })).status).toBe(400);
    expect((await allOrders()).length).toBe(count);
  });

  it('answers 404 for an unknown order', async () => {
    for (const [method, path] of [
      ['get', '/orders/no-such-order'],
      ['post', '/orders/no-such-order/approve'],
      ['post', '/orders/no-such-order/cancel'],
      ['post', '/orders/no-such-order/retry'],
    ] as const) {
      const res = await request(server)[method](path);
      expect([path, res.status, res.body.code]).toEqual([path, 404, 'CAIRN_RUN_NOT_FOUND']);
    }
  });

  it('lists orders newest first, by status, a page at a time', async () => {
    const all = await allOrders();
    expect(all.length).toBeGreaterThanOrEqual(5);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await request(server).get('/orders').query({ limit: 2, ...(cursor ? { cursor } : {}) });
      expect(res.status).toBe(200);
      const page = res.body as { orders: RunInfo[]; cursor?: string };
      expect(page.orders.length).toBeLessThanOrEqual(2);
      seen.push(...page.orders.map((o) => o.runId));
      cursor = page.cursor;
    } while (cursor);
    expect(seen).toEqual(all.map((o) => o.runId));
    const createdAt = all.map((o) => Date.parse(o.createdAt as unknown as string));
    expect([...createdAt].sort((a, b) => b - a)).toEqual(createdAt);

    const ended = (await request(server).get('/orders').query({ status: 'cancelled,compensated' })).body as { orders: RunInfo[] };
    expect(ended.orders.length).toBeGreaterThanOrEqual(2);
    expect(new Set(ended.orders.map((o) => o.status))).toEqual(new Set(['cancelled', 'compensated']));
    const one = await waitForOrder(server, all[0].runId, () => true);
    expect(one.runId).toBe(all[0].runId);
  });
});
