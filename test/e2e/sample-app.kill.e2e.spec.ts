import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { defaultStateFile } from '../../sample-app/src/create-app.js';
import type { FakeState } from '../../sample-app/src/fakes/fake-state.store.js';
import { orderBody, waitForOrder, waitForStatus } from './sample-app.support.js';
import { freePort } from '../setup/postgres-server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface SampleProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}


/** Starts the sample app the way `npm start` does, on PGlite in `dataDir`, and waits until it listens. */
async function startSampleApp(dataDir: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<SampleProcess> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CAIRN_STORE: 'pglite',
    CAIRN_DATA_DIR: dataDir,
    PORT: String(port),
    CAIRN_SHIP_DELAY_MS: '2500',
    CAIRN_PAYMENT_FAILURE_RATE: '0.5',
    CAIRN_POLL_MS: '100',
    NO_COLOR: '1',
    ...extraEnv,
  };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--import', '@swc-node/register/esm-register', 'sample-app/src/main.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  );
  const started = Date.now();
  for (;;) {
    if (output.includes('Listening on')) break;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the sample app exited at start:\n${output}`);
    // NOTE: about 2 s when idle (5 s on the first open of a folder), but PGlite's first initdb is CPU-bound WASM and
    // takes far longer when the test run shares the machine with other suites.
    if (Date.now() - started > 90_000) {
      child.kill('SIGKILL');
      throw new Error(`the sample app did not listen within 90 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, url: `http://127.0.0.1:${port}`, output: () => output, exited };
}

/** Everything the fake external systems did for an order, read from their state file (works while the app is down). */
function sideEffects(dataDir: string, orderId: string) {
  const state = JSON.parse(readFileSync(defaultStateFile(dataDir), 'utf8')) as FakeState;
  const of = <T extends { orderId: string }>(records: Record<string, T>) => Object.values(records).filter((r) => r.orderId === orderId);
  return { charges: of(state.charges), shipments: of(state.shipments), notifications: of(state.notifications) };
}

describe('sample app process on PGlite: crash and restart', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cairn-e2e-kill-'));
  const processes: SampleProcess[] = [];
  const start = async (extraEnv?: NodeJS.ProcessEnv) => {
    const p = await startSampleApp(dataDir, extraEnv);
    processes.push(p);
    return p;
  };

  afterAll(async () => {
    for (const p of processes) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('an order in flight when the process is killed with SIGKILL completes after a restart, charged once', async () => {
    const first = await start();
    expect(first.output()).toContain(`Store: embedded PGlite, data in ${dataDir}`);
    const placed = await request(first.url).post('/orders').set('Idempotency-Key', 'order-killed').send(orderBody(25, [{ sku: 'lamp', qty: 1 }]));
    expect(placed.status).toBe(201);
    const orderId = placed.body.orderId as string;
    // The order waits in `ship` (no lease held) while its parcel's child run is shipping.
    await waitForOrder(first.url, orderId, (o) => o.status === 'waiting' && o.currentStep === 'ship', 30_000);
    await waitForOrder(first.url, `${orderId}:ship:0`, (o) => o.status === 'running', 30_000);

    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const atCrash = sideEffects(dataDir, orderId);
    expect(atCrash.charges).toHaveLength(1);
    expect(atCrash.shipments).toHaveLength(0); // killed while shipping

    // The dead process's lease (the sample's default, 5 s) must expire before the new one takes the order over.
    const second = await start();
    const order = await waitForStatus(second.url, orderId, 'completed', 60_000);
    const after = sideEffects(dataDir, orderId);
    expect(after.charges).toHaveLength(1);
    expect(after.charges[0]).toMatchObject({ status: 'captured', idempotencyKey: `${orderId}:chargePayment` });
    expect(after.shipments).toHaveLength(1);
    expect(after.notifications).toHaveLength(1);
    expect(order.steps.map((s) => [s.name, s.status])).toEqual([
      ['reserveStock', 'completed'],
      ['chargePayment', 'completed'],
      ['awaitApproval', 'completed'],
      ['ship', 'completed'],
      ['sendConfirmation', 'completed'],
    ]);
    // The execution cut off by the crash recorded no outcome, so it is not counted (DESIGN §1, RunInfo.steps).
    expect(order.steps.find((s) => s.name === 'ship')?.attempts).toBe(1);
    expect(order.output).toMatchObject({ orderId, chargeId: after.charges[0].chargeId, trackingNumbers: [after.shipments[0].trackingNumber] });
    // The parcel's run was cut off in its step too: it recorded one attempt, and shipped once.
    const parcel = await waitForStatus(second.url, `${orderId}:ship:0`, 'completed');
    expect(parcel.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([['handOver', 'completed', 1]]);

    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: null, signal: 'SIGTERM' }); // Nest closes the app, then re-raises the signal
  }, 150_000);

  it('Ctrl-C (SIGINT) lets the running step finish and hands the order over at once on restart', async () => {
    // A lease far longer than the test allows: the order can only go on if the stopping app released it.
    const longLease = { CAIRN_LEASE_MS: '120000' };
    const first = await start(longLease);
    const placed = await request(first.url).post('/orders').send(orderBody(30, [{ sku: 'chair', qty: 2 }]));
    const orderId = placed.body.orderId as string;
    await waitForOrder(first.url, `${orderId}:ship:0`, (o) => o.status === 'running', 30_000);

    const interrupted = Date.now();
    first.child.kill('SIGINT');
    await first.exited;
    expect(Date.now() - interrupted).toBeLessThan(20_000); // ship has up to 2.5 s to go; the grace period is 10 s
    expect(first.output()).toContain('SIGINT: finishing in-flight steps');
    const atExit = sideEffects(dataDir, orderId);
    expect(atExit.shipments).toHaveLength(1); // the running step was let finish, not cut off…
    expect(atExit.notifications).toHaveLength(0); // …and no further step was started

    const second = await start(longLease);
    const order = await waitForStatus(second.url, orderId, 'completed', 45_000);
    expect(order.steps.find((s) => s.name === 'ship')?.attempts).toBe(1);
    const after = sideEffects(dataDir, orderId);
    expect([after.charges.length, after.shipments.length, after.notifications.length]).toEqual([1, 1, 1]);

    second.child.kill('SIGTERM');
    await second.exited;
  }, 150_000);
});
