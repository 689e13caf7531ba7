import { Injectable, type MessageEvent, type OnModuleDestroy } from '@nestjs/common';
import type { Socket } from 'node:net';
import { Subject, interval, map, merge, of, takeUntil, type Observable } from 'rxjs';
import { InvalidArgumentError } from '../errors/errors.js';
import { WorkflowEvents } from '../nest/workflow-events.js';
import { SSE_KEEPALIVE_MS } from './dashboard.constants.js';

/** Which events reach the pages: every instance's (`cluster`) or only this instance's (`local`). */
export type LiveScope = 'cluster' | 'local';

/**
 * The live stream behind the pages (server-sent events). It carries which run changed, never values: the page then
 * reloads what it shows through the guarded, redacting routes.
 */
@Injectable()
export class DashboardLiveEvents implements OnModuleDestroy {
  private readonly closing = new Subject<void>();
  private readonly sockets = new Set<Socket>();
  private scopeChecked?: LiveScope;

  constructor(private readonly events: WorkflowEvents) {}

  /** `cluster` when the durable module broadcasts events (`events: { cluster: true }`), else `local`. */
  get scope(): LiveScope {
    if (!this.scopeChecked) {
      try {
        this.events.stream({ scope: 'cluster' });
        this.scopeChecked = 'cluster';
      } catch (error) {
        if (!(error instanceof InvalidArgumentError)) throw error;
        this.scopeChecked = 'local';
      }
    }
    return this.scopeChecked;
  }

  /**
   * A `hello` naming the scope, then one message per history event of the filter, and a keep-alive comment.
   * `socket`: the connection it goes out on, closed when the app shuts down.
   */
  stream(filter: { runId?: string; workflow?: string }, socket?: Socket): Observable<MessageEvent> {
    const scope = this.scope;
    if (socket && !socket.destroyed) {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    }
    const events = this.events.stream({ ...filter, scope }).pipe(
      map((e): MessageEvent => ({ data: { runId: e.runId, workflow: e.workflow, type: e.type, seq: e.seq, ...(e.step !== undefined ? { step: e.step } : {}) } })),
    );
    const keepAlive = interval(SSE_KEEPALIVE_MS).pipe(map((): MessageEvent => ({ type: 'ping', data: '' })));
    return merge(of<MessageEvent>({ type: 'hello', data: { scope } }), events, keepAlive).pipe(takeUntil(this.closing));
  }

  /**
   * Ends open streams and closes their connections, so that closing the app does not wait for browsers to hang up.
   * NOTE: ending the responses is not enough: a keep-alive connection that turns idle after the server began closing
   * would hold it open for its whole keep-alive timeout.
   */
  onModuleDestroy(): void {
    this.closing.next();
    this.closing.complete();
    const sockets = [...this.sockets];
    this.sockets.clear();
    setImmediate(() => {
      for (const socket of sockets) socket.end();
    });
  }
}
