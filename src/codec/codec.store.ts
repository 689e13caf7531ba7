import { randomBytes } from 'node:crypto';
import { ConfigurationError, InvalidArgumentError, StoreError } from '../errors/errors.js';
import { errorMessage, safeText } from '../engine/error-text.js';
import { encodeEvent } from '../engine/run-history.js';
import {
  PUBLISH_MAX_BYTES,
  type ClaimedRun,
  type CommitResult,
  type ControlRequest,
  type ControlResult,
  type CreateRunOptions,
  type CreateRunResult,
  type ListEventsQuery,
  type NewChildRun,
  type NewRun,
  type QueuedSignal,
  type RenewResult,
  type RunOutcome,
  type RunPatch,
  type SendSignalOptions,
  type StoreEvent,
  type StoredRun,
  type StoredRunEvent,
  type StoredStep,
  type TakeSignalResult,
  type WorkflowStore,
} from '../store/workflow-store.interface.js';
import { ENCODED_MARK, readableEvent, readableState } from './engine-json.js';
import type { PayloadCodec } from './payload-codec.interface.js';

/**
 * Optional port methods, each defined on the wrapper only when the inner store has it. A new optional method of
 * `WorkflowStore` fails the type check below until it is handled here (and a new required one fails `implements`):
 * decide whether what it takes or returns is user data (encode/decode it) or not (pass it through).
 */
type OptionalPortMethod = { [K in keyof WorkflowStore]-?: object extends Pick<WorkflowStore, K> ? K : never }[keyof WorkflowStore];
type HandledOptional = 'claimOwnedRuns' | 'subscribe' | 'publish';
const everyOptionalMethodHandled: [Exclude<OptionalPortMethod, HandledOptional>] extends [never] ? true : false = true;
void everyOptionalMethodHandled;

/** Text put where a decoded error message should be, when it cannot be decoded. */
const undecodableText = (reason: string) => `(cannot be decoded: ${reason})`;

/**
 * Codec calls made for one store call, awaited together: when every call returned a string (a synchronous codec such
 * as `AesGcmCodec`), no promise is created at all.
 */
class Batch {
  private waits?: Promise<void>[];
  private finals?: (() => void)[];

  add(wait: Promise<void>): void {
    (this.waits ??= []).push(wait);
  }

  /** Runs after every codec call of the batch settled. */
  afterwards(fn: () => void): void {
    (this.finals ??= []).push(fn);
  }

  /** Undefined when nothing is pending (every final ran); else a promise that settles once they have. */
  done(): Promise<void> | undefined {
    const waits = this.waits;
    if (!waits) {
      this.runFinals();
      return undefined;
    }
    return (waits.length === 1 ? waits[0] : Promise.all(waits)).then(() => this.runFinals());
  }

  private runFinals(): void {
    if (this.finals) for (const fn of this.finals) fn();
  }
}

function isThenable(value: unknown): value is PromiseLike<string> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

const describeReason = (error: unknown) => safeText(errorMessage(error), 500);

/**
 * A {@link WorkflowStore} that encodes, with a {@link PayloadCodec}, every value the port treats as opaque user data
 * on its way into the store it wraps, and decodes it on the way out; the module wraps its store in one when the
 * `codec` option is set.
 *
 * Encoded: a run's `input`, `output`, `nextInput` (and a retry's `nextInput`), `error.message`; each step's `output`,
 * `error` and heartbeat `details`; signal payloads; `publish` messages (split into several when the encoded text would
 * be over {@link PUBLISH_MAX_BYTES}, reassembled by `subscribe`); and the engine's own JSON (`state`, history event
 * bodies) whenever it holds more than an allowlist of shapes without user data (see `engine-json.ts`: an event with an
 * error, a state with a compensation in progress, trace baggage, anything unknown). Left as they are: ids, workflow and
 * step names, versions, statuses, `error.name`/`step`/`phase`, times, leases, signal names, wait fields, pipeline
 * fingerprints and bodies (workflow and step names), the engine JSON of that allowlist, and everything else the store
 * itself reads.
 *
 * A value that cannot be decoded never makes a read throw: the run is returned with a placeholder (`''`, or a text
 * saying why for error messages) and `corrupt` naming the run, the field and the codec's reason (e.g. the key id), as
 * stores do for their own damaged fields; the engine then fails that run with `CorruptRunError` and nothing stored is
 * rewritten by a read. A history event that cannot be decoded reads as an `operator.action` event with a
 * `CorruptRunError`; a queued signal's payload as `''`; a broadcast message that cannot be decoded is dropped. A signal
 * payload handed to the lease holder (`takeSignal`, `commit` with `wait`) that cannot be decoded releases the lease and
 * throws: the payload is then the run's `nextInput`, and the next claim returns the run with `corrupt` set. The commit
 * that fails a run with `CorruptRunError` keeps its `nextInput`, so that `retry` after the repair still delivers it.
 *
 * Cost: one batch of codec calls per store call, awaited once (with a synchronous codec such as `AesGcmCodec`, none:
 * no promise is created). Encoding happens before the store call and decoding after it, never while the store holds a
 * lock or a transaction.
 */
export class CodecStore implements WorkflowStore {
  readonly name: string;
  readonly claimOwnedRuns?: WorkflowStore['claimOwnedRuns'];
  readonly subscribe?: WorkflowStore['subscribe'];
  readonly publish?: WorkflowStore['publish'];

  constructor(
    /** The store that holds the encoded values. */
    readonly inner: WorkflowStore,
    readonly codec: PayloadCodec,
  ) {
    if (!codec || typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
      throw new ConfigurationError('codec must be a PayloadCodec: an object with encode(data: string) and decode(data: string) methods, e.g. new AesGcmCodec({ keys, currentKeyId }).');
    }
    this.name = inner.name;
    if (typeof inner.claimOwnedRuns === 'function') {
      const claimOwned = inner.claimOwnedRuns.bind(inner);
      this.claimOwnedRuns = async (...args) => this.decodeRuns(await claimOwned(...args));
    }
    if (typeof inner.subscribe === 'function') {
      const subscribe = inner.subscribe.bind(inner);
      this.subscribe = (listener) => subscribe(this.receiver(listener));
    }
    if (typeof inner.publish === 'function') {
      const publish = inner.publish.bind(inner);
      this.publish = (body) => this.publishEncoded(body, publish);
    }
  }

  init(): Promise<void> {
    return this.inner.init();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Runs

  async createRun(run: NewRun, options: CreateRunOptions): Promise<CreateRunResult> {
    const batch = new Batch();
    const encoded: NewRun = { ...run };
    this.enc(batch, run.input, (v) => (encoded.input = v));
    this.encEngine(batch, run.state, readableState, (v) => (encoded.state = v));
    if (run.steps) encoded.steps = run.steps.map((step) => this.encodeStep(step, batch));
    if (run.events) encoded.events = this.encodeEvents(run.events, batch);
    const wait = batch.done();
    if (wait) await wait;
    const res = await this.inner.createRun(encoded, options);
    // NOTE: a created run holds what was just written: hand back the caller's own values instead of decoding them.
    const steps = run.steps ?? [];
    if (res.created && res.run.steps.length === steps.length) {
      return { ...res, run: { ...res.run, input: run.input, state: run.state, steps: res.run.steps.map((step, i) => withValuesOf(step, steps[i])) } };
    }
    return { ...res, run: await this.decodeRun(res.run) };
  }

  // NOTE: methods that only pass their arguments on take them as the port declares them (`Parameters<…>`).

  async getRun(...args: Parameters<WorkflowStore['getRun']>): Promise<StoredRun | undefined> {
    const run = await this.inner.getRun(...args);
    return run && this.decodeRun(run);
  }

  async listRuns(...args: Parameters<WorkflowStore['listRuns']>): Promise<StoredRun[]> {
    return this.decodeRuns(await this.inner.listRuns(...args));
  }

  async claimRuns(...args: Parameters<WorkflowStore['claimRuns']>): Promise<ClaimedRun[]> {
    return this.decodeRuns(await this.inner.claimRuns(...args));
  }

  async claimRun(...args: Parameters<WorkflowStore['claimRun']>): Promise<ClaimedRun | undefined> {
    const run = await this.inner.claimRun(...args);
    return run && this.decodeRun(run);
  }

  renewLease(...args: Parameters<WorkflowStore['renewLease']>): Promise<RenewResult> {
    return this.inner.renewLease(...args);
  }

  releaseLease(...args: Parameters<WorkflowStore['releaseLease']>): Promise<void> {
    return this.inner.releaseLease(...args);
  }

  async commit(runId: string, token: string, patch: RunPatch): Promise<CommitResult> {
    const batch = new Batch();
    const encoded: RunPatch = { ...patch };
    if (typeof patch.state === 'string') this.encEngine(batch, patch.state, readableState, (v) => (encoded.state = v));
    if (typeof patch.output === 'string') this.enc(batch, patch.output, (v) => (encoded.output = v));
    if (patch.error) encoded.error = this.encodeError(patch.error, batch);
    if (patch.steps) encoded.steps = patch.steps.map(({ index, step }) => ({ index, step: this.encodeStep(step, batch) }));
    if (patch.events) encoded.events = this.encodeEvents(patch.events, batch);
    if (patch.restart) {
      const restart = { ...patch.restart };
      encoded.restart = restart;
      this.enc(batch, patch.restart.input, (v) => (restart.input = v));
    }
    if (patch.children?.spawn) {
      encoded.children = {
        ...patch.children,
        spawn: patch.children.spawn.map((child) => {
          const copy: NewChildRun = { ...child };
          this.enc(batch, child.input, (v) => (copy.input = v));
          this.encEngine(batch, child.state, readableState, (v) => (copy.state = v));
          if (child.events) copy.events = this.encodeEvents(child.events, batch);
          return copy;
        }),
      };
    }
    // NOTE: the commit that fails a run whose stored data cannot be decoded keeps its nextInput: it may be the very
    // value that could not be decoded (a signal payload under a removed key), and `retry` after the repair needs it.
    if (patch.status === 'failed' && patch.error?.name === 'CorruptRunError') encoded.keepInput = true;
    const wait = batch.done();
    if (wait) await wait;
    const res = await this.inner.commit(runId, token, encoded);
    if (!res.ok || res.consumedSignal === undefined) return res;
    const payload = await this.decodeHanded(runId, token, res.consumedSignal.payload);
    return { ...res, consumedSignal: { name: res.consumedSignal.name, payload } };
  }

  async takeSignal(runId: string, token: string, names: readonly string[]): Promise<TakeSignalResult> {
    const res = await this.inner.takeSignal(runId, token, names);
    if (!res.ok || res.payload === undefined) return res;
    return { ...res, payload: await this.decodeHanded(runId, token, res.payload) };
  }

  async sendSignal(runId: string, name: string, payload: string, event?: string, options?: SendSignalOptions): Promise<ControlResult> {
    const batch = new Batch();
    let encodedPayload = payload;
    let encodedEvent = event;
    this.enc(batch, payload, (v) => (encodedPayload = v));
    if (event !== undefined) this.encEngine(batch, event, readableEvent, (v) => (encodedEvent = v));
    const wait = batch.done();
    if (wait) await wait;
    if (options !== undefined) return this.inner.sendSignal(runId, name, encodedPayload, encodedEvent, options);
    return event === undefined ? this.inner.sendSignal(runId, name, encodedPayload) : this.inner.sendSignal(runId, name, encodedPayload, encodedEvent);
  }

  /** Outputs and error messages decoded; one that cannot be decoded reads as `''` / a text saying why. */
  async getRunOutcomes(runIds: readonly string[]): Promise<RunOutcome[]> {
    const outcomes = await this.inner.getRunOutcomes(runIds);
    const batch = new Batch();
    const out = outcomes.map((outcome) => {
      const copy: RunOutcome = { ...outcome };
      if (typeof outcome.output === 'string') this.dec(batch, outcome.output, (v) => (copy.output = v), () => (copy.output = ''));
      if (outcome.error) {
        const error = { ...outcome.error };
        copy.error = error;
        this.dec(batch, outcome.error.message, (v) => (error.message = v), (reason) => (error.message = undecodableText(reason)));
      }
      return copy;
    });
    const wait = batch.done();
    if (wait) await wait;
    return out;
  }

  async control(runId: string, request: ControlRequest, event?: string): Promise<ControlResult> {
    const batch = new Batch();
    let encodedRequest = request;
    let encodedEvent = event;
    if (request.action === 'retry' && typeof request.nextInput === 'string') {
      const retry = { ...request };
      encodedRequest = retry;
      this.enc(batch, request.nextInput, (v) => (retry.nextInput = v));
    }
    if (event !== undefined) this.encEngine(batch, event, readableEvent, (v) => (encodedEvent = v));
    const wait = batch.done();
    if (wait) await wait;
    return event === undefined ? this.inner.control(runId, encodedRequest) : this.inner.control(runId, encodedRequest, encodedEvent);
  }

  async listEvents(runId: string, query: ListEventsQuery): Promise<StoredRunEvent[]> {
    const events = await this.inner.listEvents(runId, query);
    const batch = new Batch();
    const out = events.map((event) => {
      const decoded: StoredRunEvent = { ...event };
      this.decEngine(
        batch,
        event.body,
        (v) => (decoded.body = v),
        (reason) =>
          (decoded.body = encodeEvent({
            type: 'operator.action',
            at: new Date(0),
            error: { name: 'CorruptRunError', message: `History event ${event.seq} of run ${JSON.stringify(runId)} cannot be decoded: ${reason}` },
          })),
      );
      return decoded;
    });
    const wait = batch.done();
    if (wait) await wait;
    return out;
  }

  countRuns(...args: Parameters<WorkflowStore['countRuns']>): ReturnType<WorkflowStore['countRuns']> {
    return this.inner.countRuns(...args);
  }

  async listSignals(runId: string): Promise<QueuedSignal[]> {
    const signals = await this.inner.listSignals(runId);
    const batch = new Batch();
    const out = signals.map((signal) => {
      const decoded: QueuedSignal = { ...signal };
      this.dec(batch, signal.payload, (v) => (decoded.payload = v), () => (decoded.payload = ''));
      return decoded;
    });
    const wait = batch.done();
    if (wait) await wait;
    return out;
  }

  purge(...args: Parameters<WorkflowStore['purge']>): Promise<number> {
    return this.inner.purge(...args);
  }

  // NOTE: pipelines hold workflow and step names only (no user data): passed through.

  summarizeLiveRuns(...args: Parameters<WorkflowStore['summarizeLiveRuns']>): ReturnType<WorkflowStore['summarizeLiveRuns']> {
    return this.inner.summarizeLiveRuns(...args);
  }

  savePipeline(...args: Parameters<WorkflowStore['savePipeline']>): ReturnType<WorkflowStore['savePipeline']> {
    return this.inner.savePipeline(...args);
  }

  getPipelines(...args: Parameters<WorkflowStore['getPipelines']>): ReturnType<WorkflowStore['getPipelines']> {
    return this.inner.getPipelines(...args);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Encoding

  /** Encodes `data` now (a synchronous codec) or as part of the batch; `set` receives the encoded text. */
  private enc(batch: Batch, data: string, set: (encoded: string) => void): void {
    const out = this.codec.encode(data);
    if (typeof out === 'string') return set(out);
    if (!isThenable(out)) throw notAString('encode', out);
    batch.add(
      Promise.resolve(out).then((value) => {
        if (typeof value !== 'string') throw notAString('encode', value);
        set(value);
      }),
    );
  }

  /** The engine's own JSON: stored as is when it matches the allowlist of `engine-json.ts`, else marked and encoded. */
  private encEngine(batch: Batch, text: string, readable: (text: string) => boolean, set: (stored: string) => void): void {
    if (readable(text)) return set(text);
    this.enc(batch, text, (v) => set(ENCODED_MARK + v));
  }

  private encodeEvents(bodies: readonly string[], batch: Batch): string[] {
    const out = bodies.slice();
    bodies.forEach((body, i) => this.encEngine(batch, body, readableEvent, (v) => (out[i] = v)));
    return out;
  }

  private encodeStep(step: StoredStep, batch: Batch): StoredStep {
    const out: StoredStep = { ...step };
    if (typeof step.output === 'string') this.enc(batch, step.output, (v) => (out.output = v));
    if (typeof step.error === 'string') this.enc(batch, step.error, (v) => (out.error = v));
    if (step.heartbeat) {
      const beat = { ...step.heartbeat };
      out.heartbeat = beat;
      if (typeof beat.details === 'string') this.enc(batch, beat.details, (v) => (beat.details = v));
    }
    return out;
  }

  private encodeError<E extends { message: string }>(error: E, batch: Batch): E {
    const out = { ...error };
    if (typeof error.message === 'string') this.enc(batch, error.message, (v) => (out.message = v));
    return out;
  }

  /** One value, encoded (off the checkpoint path: broadcasts). */
  private async encodeText(data: string): Promise<string> {
    const value = await this.codec.encode(data);
    if (typeof value !== 'string') throw notAString('encode', value);
    return value;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Decoding

  /** Decodes `data` now or as part of the batch: `set` receives the text, or `fail` why it cannot be decoded. */
  private dec(batch: Batch, data: string, set: (decoded: string) => void, fail: (reason: string) => void): void {
    let out: string | Promise<string>;
    try {
      out = this.codec.decode(data);
    } catch (error) {
      return fail(describeReason(error));
    }
    if (typeof out === 'string') return set(out);
    if (!isThenable(out)) return fail(notAString('decode', out).message);
    batch.add(
      Promise.resolve(out).then(
        (value) => (typeof value === 'string' ? set(value) : fail(notAString('decode', value).message)),
        (error: unknown) => fail(describeReason(error)),
      ),
    );
  }

  /** The engine's own JSON as stored by {@link encEngine}. */
  private decEngine(batch: Batch, stored: string, set: (decoded: string) => void, fail: (reason: string) => void): void {
    if (stored.startsWith(ENCODED_MARK)) this.dec(batch, stored.slice(ENCODED_MARK.length), set, fail);
    else set(stored);
  }

  private decodeRun<R extends StoredRun>(run: R): R | Promise<R> {
    const batch = new Batch();
    const out = this.decodeRunInto(run, batch);
    const wait = batch.done();
    return wait ? wait.then(() => out) : out;
  }

  private decodeRuns<R extends StoredRun>(runs: R[]): R[] | Promise<R[]> {
    const batch = new Batch();
    const out = runs.map((run) => this.decodeRunInto(run, batch));
    const wait = batch.done();
    return wait ? wait.then(() => out) : out;
  }

  /**
   * A copy of `run` whose encoded fields are filled in once `batch` is done. What cannot be decoded gets a placeholder
   * and is named in `corrupt` (after any damage the inner store reported), in field order.
   */
  private decodeRunInto<R extends StoredRun>(run: R, batch: Batch): R {
    const out: R = { ...run };
    const notes: (string | undefined)[] = [];
    const runName = JSON.stringify(run.runId);
    /** `placeholder`: '' for serialized values (never parsed as a value by mistake), else a text saying why. */
    const field = (value: unknown, what: string, placeholder: 'empty' | 'reason', set: (decoded: string) => void) => {
      if (typeof value !== 'string') return;
      const slot = notes.push(undefined) - 1;
      this.dec(batch, value, set, (reason) => {
        notes[slot] = `${what} of run ${runName}: ${reason}`;
        set(placeholder === 'empty' ? '' : undecodableText(reason));
      });
    };
    field(run.input, 'input', 'empty', (v) => (out.input = v));
    if (typeof run.state === 'string') {
      const slot = notes.push(undefined) - 1;
      this.decEngine(batch, run.state, (v) => (out.state = v), (reason) => {
        notes[slot] = `state of run ${runName}: ${reason}`;
        out.state = '';
      });
    }
    field(run.output, 'output', 'empty', (v) => (out.output = v));
    field(run.nextInput, 'nextInput', 'empty', (v) => (out.nextInput = v));
    if (run.error) {
      const error = { ...run.error };
      out.error = error;
      field(run.error.message, 'the error message', 'reason', (v) => (error.message = v));
    }
    if (Array.isArray(run.steps)) {
      out.steps = run.steps.map((step, i) => {
        const copy: StoredStep = { ...step };
        const which = `step ${i} (${JSON.stringify(step.name)})`;
        field(step.output, `the output of ${which}`, 'empty', (v) => (copy.output = v));
        field(step.error, `the error of ${which}`, 'reason', (v) => (copy.error = v));
        if (step.heartbeat) {
          const beat = { ...step.heartbeat };
          copy.heartbeat = beat;
          field(step.heartbeat.details, `the heartbeat details of ${which}`, 'empty', (v) => (beat.details = v));
        }
        return copy;
      });
    }
    batch.afterwards(() => {
      const found = notes.filter((note): note is string => note !== undefined);
      if (found.length === 0) return;
      out.corrupt = [...(run.corrupt ? [run.corrupt] : []), ...found].join('; ');
    });
    return out;
  }

  /**
   * A signal payload the store handed to the lease holder (it is now the run's `nextInput`). When it cannot be
   * decoded, the lease is released (the run is due at once) and this throws: the next claim returns the run with
   * `corrupt` naming its `nextInput` and the codec's reason, and the engine fails it then.
   */
  private async decodeHanded(runId: string, token: string, payload: string): Promise<string> {
    let reason: string | undefined;
    let decoded = '';
    const batch = new Batch();
    this.dec(batch, payload, (v) => (decoded = v), (r) => (reason = r));
    const wait = batch.done();
    if (wait) await wait;
    if (reason === undefined) return decoded;
    await this.inner.releaseLease(runId, token).catch(() => undefined);
    throw new StoreError(
      `Run ${JSON.stringify(runId)}: the payload of the signal handed to it cannot be decoded (${reason}). Its lease was released; ` +
        'the next claim fails the run with CorruptRunError (the payload stays stored as its nextInput).',
    );
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Broadcasts: `m:<encoded>`, or when that is too large, fragments `f:<id>:<i>:<n>:<encoded piece>`.

  private async publishEncoded(body: string, publish: (body: string) => Promise<void>): Promise<void> {
    if (typeof body !== 'string') throw new InvalidArgumentError(`A published message must be a string (got ${typeof body}).`);
    const bytes = Buffer.byteLength(body, 'utf8');
    if (bytes > PUBLISH_MAX_BYTES) throw new InvalidArgumentError(`A published message is at most ${PUBLISH_MAX_BYTES} bytes (got ${bytes}).`);
    const whole = `m:${await this.encodeText(body)}`;
    if (Buffer.byteLength(whole, 'utf8') <= PUBLISH_MAX_BYTES) return publish(whole);
    const id = randomBytes(6).toString('base64url');
    for (let n = 2; n <= 64; n *= 2) {
      const pieces = splitText(body, n);
      const encoded = await Promise.all(pieces.map((piece) => this.encodeText(piece)));
      const wire = encoded.map((text, i) => `f:${id}:${i}:${pieces.length}:${text}`);
      if (wire.some((w) => Buffer.byteLength(w, 'utf8') > PUBLISH_MAX_BYTES)) continue;
      for (const message of wire) await publish(message);
      return;
    }
    throw new InvalidArgumentError(`The codec's output for a published message of ${bytes} bytes does not fit in 64 messages of ${PUBLISH_MAX_BYTES} bytes.`);
  }

  /** The inner store's listener: decodes `message` events (in the order they came), reassembling fragments. */
  private receiver(listener: (event: StoreEvent) => void): (event: StoreEvent) => void {
    const partial = new Map<string, { parts: (string | undefined)[]; left: number; since: number }>();
    let queue: Promise<void> | undefined;
    let queued = 0;
    const deliver = (body: string) => {
      try {
        listener({ type: 'message', body });
      } catch {
        // NOTE: the inner store reports a throwing listener; the engine's never throws.
      }
    };
    const onDecoded = (wire: string, text: string) => {
      if (wire.startsWith('m:')) return deliver(text);
      const [, id, index, count] = wire.split(':', 4);
      const i = Number(index);
      const n = Number(count);
      if (!(Number.isInteger(n) && n > 1 && n <= 64 && Number.isInteger(i) && i >= 0 && i < n)) return;
      const now = Date.now();
      for (const [key, entry] of partial) if (now - entry.since > 30_000) partial.delete(key);
      let entry = partial.get(id);
      if (!entry) {
        if (partial.size >= 256) partial.delete(partial.keys().next().value as string);
        entry = { parts: new Array<string | undefined>(n).fill(undefined), left: n, since: now };
        partial.set(id, entry);
      }
      if (entry.parts.length !== n || entry.parts[i] !== undefined) return;
      entry.parts[i] = text;
      if (--entry.left > 0) return;
      partial.delete(id);
      deliver(entry.parts.join(''));
    };
    return (event) => {
      if (event.type !== 'message') return listener(event);
      const wire = event.body;
      let encoded: string;
      if (wire.startsWith('m:')) encoded = wire.slice(2);
      else if (wire.startsWith('f:')) {
        const header = wire.split(':', 4).join(':').length + 1;
        if (wire.charAt(header - 1) !== ':') return;
        encoded = wire.slice(header);
      } else return; // not from a wrapper with a codec: dropped
      let out: string | Promise<string>;
      try {
        out = this.codec.decode(encoded);
      } catch {
        return; // NOTE: a message that cannot be decoded is dropped (broadcasts are best effort)
      }
      if (typeof out === 'string' && queued === 0) return onDecoded(wire, out);
      queued++;
      const decoding = Promise.resolve(out);
      queue = (queue ?? Promise.resolve())
        .then(() => decoding)
        .then(
          (text) => {
            if (typeof text === 'string') onDecoded(wire, text);
          },
          () => undefined,
        )
        .finally(() => queued--);
    };
  }
}

function notAString(method: 'encode' | 'decode', value: unknown): ConfigurationError {
  return new ConfigurationError(`The payload codec's ${method}() must return a string or a promise of one (got ${value === null ? 'null' : typeof value}).`);
}

/** `text` cut into `n` pieces of about equal length, never between the two halves of a surrogate pair. */
function splitText(text: string, n: number): string[] {
  const pieces: string[] = [];
  let start = 0;
  for (let k = 1; k <= n; k++) {
    let end = k === n ? text.length : Math.max(start, Math.round((text.length * k) / n));
    const code = text.charCodeAt(end - 1);
    if (end < text.length && code >= 0xd800 && code <= 0xdbff) end++;
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces.filter((piece, i) => piece.length > 0 || i === 0);
}

/** A step as the store returned it, with the (decoded) values of the step that was written. */
function withValuesOf(stored: StoredStep, written: StoredStep): StoredStep {
  const out: StoredStep = { ...stored };
  if (written.output !== undefined) out.output = written.output;
  if (written.error !== undefined) out.error = written.error;
  if (stored.heartbeat) out.heartbeat = { ...stored.heartbeat, ...(written.heartbeat?.details !== undefined ? { details: written.heartbeat.details } : {}) };
  return out;
}
