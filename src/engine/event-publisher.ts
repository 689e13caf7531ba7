import { PUBLISH_MAX_BYTES, type WorkflowStore } from '../store/workflow-store.interface.js';
import { describeError } from './error-text.js';
import { decodeEvent, encodeEvent, type RunEvent, type WorkflowRunEvent } from './run-history.js';
import type { StepLogger } from './step-context.interface.js';

export type WorkflowEventListener = (event: WorkflowRunEvent) => void;

/** Wire format of a published batch: `[runId, workflow, seq, event body]` per event. */
interface Batch {
  v: 1;
  e: [string, string, number, string][];
}

/** Longest error message in a published event (the stored history keeps the longer text). */
const PUBLISHED_ERROR_CHARS = 300;

/**
 * The history events this instance writes, handed to local listeners at once, and (when `publish` is on) broadcast
 * through the store in batches, one store call per event-loop turn, so every instance's cluster listeners see them.
 */
export class EventPublisher {
  private readonly local = new Set<WorkflowEventListener>();
  private readonly cluster = new Set<WorkflowEventListener>();
  private queue: Batch['e'] = [];
  private scheduled = false;
  private sending: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: WorkflowStore,
    private readonly logger: StepLogger,
    /** Broadcast through the store (needs `publish` and `subscribe`). */
    readonly publishes: boolean,
  ) {
    if (publishes && (!store.publish || !store.subscribe)) this.publishes = false;
  }

  /** Whether an event written now reaches anyone (else callers may skip work to build it). */
  get listening(): boolean {
    return this.local.size > 0 || this.publishes;
  }

  /** Events written on this instance. The listener must not throw (errors are logged). */
  onLocal(listener: WorkflowEventListener): () => void {
    this.local.add(listener);
    return () => this.local.delete(listener);
  }

  /** Events broadcast by every instance (this one included), when publishing is on. */
  onCluster(listener: WorkflowEventListener): () => void {
    this.cluster.add(listener);
    return () => this.cluster.delete(listener);
  }

  emit(runId: string, workflow: string, events: readonly RunEvent[]): void {
    for (const event of events) {
      const full: WorkflowRunEvent = { ...event, runId, workflow };
      for (const listener of this.local) {
        try {
          listener(full);
        } catch (error) {
          this.logger.error(`A workflow event listener threw on ${event.type} of run "${runId}": ${describeError(error)}`);
        }
      }
      if (this.publishes) this.queue.push([runId, workflow, event.seq, publishedBody(event)]);
    }
    if (this.publishes && this.queue.length > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.sending = this.sending.then(() => this.send());
      });
    }
  }

  /** A `message` from the store: a batch some instance published. Other messages are ignored. */
  received(body: string): void {
    if (this.cluster.size === 0) return;
    let batch: Batch;
    try {
      batch = JSON.parse(body) as Batch;
    } catch {
      return;
    }
    if (!batch || batch.v !== 1 || !Array.isArray(batch.e)) return;
    for (const [runId, workflow, seq, text] of batch.e) {
      const event: WorkflowRunEvent = { ...decodeEvent({ seq, body: text }), runId, workflow };
      for (const listener of this.cluster) {
        try {
          listener(event);
        } catch (error) {
          this.logger.error(`A workflow event listener threw on ${event.type} of run "${runId}": ${describeError(error)}`);
        }
      }
    }
  }

  /** Sends what is queued (on shutdown). */
  async flush(): Promise<void> {
    this.sending = this.sending.then(() => this.send());
    await this.sending;
  }

  private async send(): Promise<void> {
    const items = this.queue;
    this.queue = [];
    let chunk: Batch['e'] = [];
    let size = 16;
    const sendChunk = async () => {
      if (chunk.length === 0) return;
      const message = JSON.stringify({ v: 1, e: chunk } satisfies Batch);
      chunk = [];
      size = 16;
      try {
        await this.store.publish!(message);
      } catch (error) {
        this.logger.warn(`Broadcasting workflow events through the ${this.store.name} store failed: ${describeError(error)}`);
      }
    };
    for (const item of items) {
      const bytes = Buffer.byteLength(JSON.stringify(item), 'utf8') + 1;
      if (bytes + 16 > PUBLISH_MAX_BYTES) continue; // NOTE: cannot happen with publishedBody's caps; never send an oversize message
      if (size + bytes > PUBLISH_MAX_BYTES) await sendChunk();
      chunk.push(item);
      size += bytes;
    }
    await sendChunk();
  }
}

/** An event's body for broadcasting: the detail and long errors cut so that one event always fits a message. */
function publishedBody(event: RunEvent): string {
  const { seq: _seq, ...rest } = event;
  const body = encodeEvent(rest);
  if (Buffer.byteLength(body, 'utf8') <= 2_000) return body;
  const error = event.error && { name: event.error.name.slice(0, 100), message: event.error.message.slice(0, PUBLISHED_ERROR_CHARS) };
  return encodeEvent({ type: event.type, at: event.at, step: event.step?.slice(0, 200), attempt: event.attempt, durationMs: event.durationMs, error, instanceId: event.instanceId?.slice(0, 200) });
}
