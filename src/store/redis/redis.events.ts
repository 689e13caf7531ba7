import { StoreError } from '../../errors/errors.js';
import type { StoreEvent } from '../workflow-store.interface.js';
import type { RedisClient } from './redis.connection.js';
import { errorMessage } from './redis.errors.js';
import type { RedisStoreLogger } from './redis-store-options.interface.js';

const EVENT_TYPES = new Set(['ready', 'control', 'finished']);

/**
 * Store events over Redis pub/sub: the scripts PUBLISH `{type, runId}` on the prefix's channel; one subscriber
 * connection (a duplicate of the store's client) is open while there are listeners.
 */
export class RedisEvents {
  private subscriber?: RedisClient;
  private subscribing?: Promise<void>;
  private readonly listeners = new Set<(event: StoreEvent) => void>();

  constructor(
    private readonly client: () => RedisClient,
    private readonly channel: string,
    private readonly logger: RedisStoreLogger,
    private readonly isClosed: () => boolean,
  ) {}

  /**
   * Adds a listener; resolves once subscribed, with a function that removes it.
   * @throws StoreError when the subscription fails
   */
  async subscribe(listener: (event: StoreEvent) => void): Promise<() => Promise<void>> {
    this.listeners.add(listener);
    try {
      await this.ensureSubscriber();
    } catch (error) {
      this.listeners.delete(listener);
      throw new StoreError(`Redis store: cannot subscribe to events: ${errorMessage(error)}`, { cause: error });
    }
    return async () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) await this.closeSubscriber();
    };
  }

  /** Drops every listener and closes the subscriber connection. */
  async close(): Promise<void> {
    this.listeners.clear();
    await this.closeSubscriber();
  }

  private ensureSubscriber(): Promise<void> {
    if (this.subscribing) return this.subscribing;
    const subscriber = this.client().duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', (error: unknown) => {
      if (!this.isClosed()) this.logger.warn(`Redis store: event subscription: ${errorMessage(error)}`);
    });
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      let event: StoreEvent;
      try {
        const parsed = JSON.parse(text) as { type?: unknown; runId?: unknown };
        if (typeof parsed.runId !== 'string' || !EVENT_TYPES.has(parsed.type as string)) return;
        event = { type: parsed.type as StoreEvent['type'], runId: parsed.runId };
      } catch {
        return;
      }
      for (const l of [...this.listeners]) {
        try {
          l(event);
        } catch (error) {
          this.logger.error(`Redis store: an event listener threw: ${errorMessage(error)}`);
        }
      }
    });
    this.subscribing = (async () => {
      if ((subscriber.status as string) === 'wait') await subscriber.connect();
      await subscriber.subscribe(this.channel);
    })().catch(async (error: unknown) => {
      await this.closeSubscriber();
      throw error;
    });
    return this.subscribing;
  }

  private async closeSubscriber(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.subscribing = undefined;
    if (!subscriber) return;
    try {
      await subscriber.quit();
    } catch {
      subscriber.disconnect();
    }
  }
}
