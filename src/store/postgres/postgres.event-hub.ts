import type { StoreEvent } from '../workflow-store.interface.js';
import { type SqlClient, type StoreLogger, TypeOrmSqlClient } from './postgres.client.js';

/**
 * Wire format of the notifications on the store's channel: a run event is a JSON object (`{"type":"ready","runId":…}`,
 * see `notifyExpr`); a published message is this prefix and the body as is (no escaping, so a body of
 * PUBLISH_MAX_BYTES always fits in NOTIFY's 8000 bytes, whatever it holds).
 */
const MESSAGE_PREFIX = 'message:';

/** The NOTIFY payload of a published message. */
export function messagePayload(body: string): string {
  return MESSAGE_PREFIX + body;
}

/**
 * The store's events: LISTEN on the store's channel while there are listeners (the statements NOTIFY in the same
 * transaction as the change), or, when the connection cannot LISTEN, events published in-process only
 * (`emitLocal`, `emitLocalMessage`; other instances' work is then found by polling, and their messages are not seen).
 */
export class PostgresEventHub {
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  /** Serializes starting/stopping the LISTEN connection. */
  private listenChain: Promise<void> = Promise.resolve();
  private unlisten?: () => Promise<void>;
  /** True when events are published in-process only (no LISTEN available). */
  private localEvents = false;
  private closed = false;

  /** `name`: the store's name, for logs. */
  constructor(
    private readonly channel: string,
    private readonly name: string,
    private readonly logger: StoreLogger,
  ) {}

  /** Drops every listener and stops listening. */
  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    await this.stopListening();
  }

  /** Adds a listener on the connection `db` (LISTEN starts with the first one); returns its unsubscribe. */
  async subscribe(db: SqlClient, listener: (event: StoreEvent) => void): Promise<() => Promise<void>> {
    this.listeners.add(listener);
    await this.serialize(() => this.startListening(db));
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      this.listeners.delete(listener);
      if (this.listeners.size === 0) await this.stopListening();
    };
  }

  private serialize(fn: () => Promise<void>): Promise<void> {
    const next = this.listenChain.then(fn);
    this.listenChain = next.catch(() => undefined);
    return next;
  }

  private async startListening(db: SqlClient): Promise<void> {
    if (this.closed || this.unlisten || this.localEvents || this.listeners.size === 0) return;
    const canListen = db.listen !== undefined && (!(db instanceof TypeOrmSqlClient) || db.canListen);
    if (!canListen) {
      this.localEvents = true;
      this.logger.warn(`${this.name} store: this connection cannot LISTEN; events are published to this instance only.`);
      return;
    }
    try {
      this.unlisten = await db.listen!(this.channel, (payload) => this.onNotification(payload));
    } catch (error) {
      this.localEvents = true;
      this.logger.warn(
        `${this.name} store: cannot LISTEN (${message(error)}); events are published to this instance only, other instances' work is found by polling.`,
      );
    }
  }

  private stopListening(): Promise<void> {
    return this.serialize(async () => {
      if (this.listeners.size > 0) return;
      this.localEvents = false;
      const unlisten = this.unlisten;
      this.unlisten = undefined;
      await unlisten?.().catch(() => undefined);
    });
  }

  private onNotification(payload: string): void {
    if (payload.startsWith(MESSAGE_PREFIX)) {
      this.dispatch({ type: 'message', body: payload.slice(MESSAGE_PREFIX.length) });
      return;
    }
    let event: StoreEvent;
    try {
      const parsed = JSON.parse(payload) as { type?: unknown; runId?: unknown };
      if ((parsed.type !== 'ready' && parsed.type !== 'control' && parsed.type !== 'finished') || typeof parsed.runId !== 'string') return;
      event = { type: parsed.type, runId: parsed.runId };
    } catch {
      return;
    }
    this.dispatch(event);
  }

  /**
   * Publishes an event a statement returned (`evt`) to this instance's listeners when events do not come by
   * LISTEN/NOTIFY (the statement's NOTIFY reaches them otherwise).
   */
  emitLocal(type: unknown, runId: string): void {
    if (!this.localEvents || (type !== 'ready' && type !== 'control' && type !== 'finished')) return;
    const event: StoreEvent = { type, runId };
    queueMicrotask(() => this.dispatch(event));
  }

  /**
   * Delivers a message this instance published to its own listeners when events do not come by LISTEN/NOTIFY (the
   * NOTIFY reaches them otherwise).
   */
  emitLocalMessage(body: string): void {
    if (!this.localEvents) return;
    const event: StoreEvent = { type: 'message', body };
    queueMicrotask(() => this.dispatch(event));
  }

  private dispatch(event: StoreEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error(`${this.name} store: an event listener threw: ${message(error)}`);
      }
    }
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
