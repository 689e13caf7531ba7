/**
 * A TCP proxy between the workers and the store that injects network faults:
 * - `latency(ms)`: every chunk, both ways, is delayed by `ms` (order kept);
 * - `dropAll(fraction)`: resets that fraction of the open connections, whatever is in flight (mid-statement);
 * - `blackhole(ms, then)`: nothing is forwarded for `ms` (new connections hang too), then the held bytes are either
 *   delivered (`then: 'flush'`, a long stall) or the connections are reset (`then: 'drop'`).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

interface Pipe {
  client: Socket;
  server: Socket;
  queues: [Chunk[], Chunk[]];
  timers: [NodeJS.Timeout | undefined, NodeJS.Timeout | undefined];
}
interface Chunk {
  due: number;
  data: Buffer;
}

export class FaultProxy {
  private server?: Server;
  private readonly pipes = new Set<Pipe>();
  private latencyMs = 0;
  private holding = false;
  private readonly waiting: Socket[] = [];
  port = 0;
  connections = 0;

  constructor(
    private readonly backendHost: string,
    private readonly backendPort: number,
  ) {}

  async start(): Promise<number> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    return this.port;
  }

  async stop(): Promise<void> {
    for (const p of this.pipes) this.destroy(p);
    for (const s of this.waiting.splice(0)) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  latency(ms: number): void {
    this.latencyMs = ms;
  }

  dropAll(fraction = 1): number {
    let n = 0;
    for (const p of [...this.pipes]) {
      if (Math.random() < fraction) {
        this.destroy(p);
        n++;
      }
    }
    return n;
  }

  blackhole(): void {
    this.holding = true;
  }

  release(then: 'flush' | 'drop'): void {
    this.holding = false;
    if (then === 'drop') this.dropAll(1);
    else {
      const now = Date.now();
      for (const p of this.pipes) {
        for (const dir of [0, 1] as const) {
          for (const c of p.queues[dir]) if (c.due === Infinity) c.due = now;
          this.pump(p, dir);
        }
      }
    }
    for (const s of this.waiting.splice(0)) this.connect(s);
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.holding) this.waiting.push(client);
    else this.connect(client);
  }

  private connect(client: Socket): void {
    if (client.destroyed) return;
    this.connections++;
    const server = createConnection({ host: this.backendHost, port: this.backendPort });
    server.setNoDelay(true);
    client.setNoDelay(true);
    const pipe: Pipe = { client, server, queues: [[], []], timers: [undefined, undefined] };
    this.pipes.add(pipe);
    server.on('error', () => this.destroy(pipe));
    client.on('error', () => this.destroy(pipe));
    server.on('close', () => this.destroy(pipe));
    client.on('close', () => this.destroy(pipe));
    client.on('data', (data) => this.enqueue(pipe, 0, data));
    server.on('data', (data) => this.enqueue(pipe, 1, data));
  }

  private enqueue(pipe: Pipe, dir: 0 | 1, data: Buffer): void {
    const q = pipe.queues[dir];
    const last = q.length > 0 ? q[q.length - 1].due : 0;
    const due = this.holding ? Infinity : Math.max(last, Date.now() + this.latencyMs);
    q.push({ due, data });
    this.pump(pipe, dir);
  }

  private pump(pipe: Pipe, dir: 0 | 1): void {
    if (!this.pipes.has(pipe)) return;
    const q = pipe.queues[dir];
    const target = dir === 0 ? pipe.server : pipe.client;
    const now = Date.now();
    while (q.length > 0 && q[0].due <= now) target.write(q.shift()!.data);
    if (pipe.timers[dir]) clearTimeout(pipe.timers[dir]);
    pipe.timers[dir] = undefined;
    if (q.length > 0 && q[0].due !== Infinity) pipe.timers[dir] = setTimeout(() => this.pump(pipe, dir), q[0].due - now);
  }

  private destroy(pipe: Pipe): void {
    if (!this.pipes.delete(pipe)) return;
    for (const t of pipe.timers) if (t) clearTimeout(t);
    for (const s of [pipe.client, pipe.server]) {
      if (typeof (s as Socket & { resetAndDestroy?: () => void }).resetAndDestroy === 'function' && !s.destroyed && s.readyState === 'open') {
        (s as Socket & { resetAndDestroy: () => void }).resetAndDestroy();
      } else s.destroy();
    }
  }
}
