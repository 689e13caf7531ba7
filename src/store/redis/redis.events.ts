import { StoreError } from '../../errors/errors.js';
import type { StoreEvent } from '../workflow-store.interface.js';
import type { RedisClient } from './redis.connection.js';
import { errorMessage } from './redis.errors.js';
import type { RedisStoreLogger } from './redis-store-options.interface.js';

/** The kinds of store event about a run. */
type RunEventType = Exclude<StoreEvent, { type: 'message' }>['type'];
const RUN_EVENT_TYPES: ReadonlySet<string> = new Set<RunEventType>(['ready', 'control', 'finished']);

/**
 * The store event a channel message carries, or undefined for a message that is not one. Wire format (JSON): the
 * scripts publish `{type, runId}` (`ready`, `control`, `finished`); `publish()` sends `{type: 'message', body}`.
 */
export function decodeEventMessage(text: string): StoreEvent | undefined {
  let parsed: { type?: unknown; runId?: unknown; body?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  if (parsed.type === 'message') return typeof parsed.body === 'string' ? { type: 'message', body: parsed.body } : undefined;
  if (typeof parsed.runId !== 'string' || typeof parsed.type !== 'string' || !RUN_EVENT_TYPES.has(parsed.type)) return undefined;
  return { type: parsed.type as RunEventType, runId: parsed.runId };
}

/** The channel message of `publish(body)` (see {@link decodeEventMessage}). */
export function encodeMessageEvent(body: string): string {
  return JSON.stringify({ type: 'message', body });
}

/**
 * Store events over Redis pub/sub (regular PUBLISH/SUBSCRIBE, which a Cluster broadcasts to every node): the scripts
 * PUBLISH `{type, runId}` on the prefix's channel, `publish()` a `{type: 'message', body}`; one subscriber connection
 * (a duplicate of the store's client) is open while there are listeners.
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

  /** Broadcasts a `message` event to every subscriber of the channel (this store's included). */
  async publish(body: string): Promise<void> {
    await this.client().publish(this.channel, encodeMessageEvent(body));
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
      const event = decodeEventMessage(text);
      if (!event) return;
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
