/**
 * Helpers of the codec specs (not a spec file): codecs for tests, and damage to a codec-wrapped store's encoded values
 * for the conformance suite's `corruptions` hook.
 */
import { randomBytes } from 'node:crypto';
import { AesGcmCodec } from '../../src/codec/aes-gcm.codec.js';
import { CodecStore } from '../../src/codec/codec.store.js';
import type { PayloadCodec } from '../../src/codec/payload-codec.interface.js';
import type { NewRun, StoredRun, WorkflowStore } from '../../src/store/workflow-store.interface.js';
import type { ConformanceTarget } from '../conformance/store.conformance.js';

export const testKey = () => randomBytes(32);

/** An AES-GCM codec with one fresh key `k1`. */
export const aesCodec = () => new AesGcmCodec({ keys: { k1: testKey() }, currentKeyId: 'k1' });

/**
 * An asynchronous codec around `inner`: every call returns a promise that settles after a varying number of turns of
 * the event loop, so values of one batch settle out of order.
 */
export function asyncCodec(inner: PayloadCodec): PayloadCodec {
  let n = 0;
  const later = async <T>(fn: () => T | Promise<T>): Promise<T> => {
    const turns = n++ % 3;
    for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
    return fn();
  };
  return {
    encode: (data) => later(() => inner.encode(data)),
    decode: (data) => later(() => inner.decode(data)),
  };
}

/** One character of a value's ciphertext changed (the key id and prefix stay). */
export function flipCiphertext(value: string): string {
  const i = value.length - 3;
  return value.slice(0, i) + (value[i] === 'A' ? 'B' : 'A') + value.slice(i + 1);
}

/**
 * Damage to the encoded values of one run, written through the inner store's own port (so it works on every store):
 * the run is recreated (`replace`) with its stored, encoded fields and one of them damaged.
 */
export function codecCorruptions(): NonNullable<ConformanceTarget['corruptions']> {
  const retired = new AesGcmCodec({ keys: { retired: testKey() }, currentKeyId: 'retired' });
  const rewrite = (change: (run: StoredRun) => Partial<NewRun>) => async (store: WorkflowStore, runId: string) => {
    const inner = (store as CodecStore).inner;
    const run = (await inner.getRun(runId))!;
    const again = { ...run, runId, workflow: run.workflow, version: run.version, input: run.input, state: run.state, steps: run.steps, currentStep: run.currentStep };
    await inner.createRun({ ...(again as unknown as NewRun), ...change(run) }, { onConflict: 'replace' });
  };
  return {
    'codec: the input is under a key the codec lacks': rewrite(() => ({ input: retired.encode('{"n":1}') })),
    'codec: the state has a changed ciphertext character': rewrite((run) => ({ state: flipCiphertext(run.state) })),
    'codec: a step error is not a codec value': rewrite((run) => ({ steps: [{ ...run.steps[0], error: 'plain text' }] })),
    'codec: a step heartbeat is relabelled to another key id': rewrite((run) => ({
      steps: [{ ...run.steps[0], heartbeat: { at: new Date(), details: retired.encode('{"done":1}').replace(':retired:', ':k1:') } }],
    })),
  };
}

/** The inner store's own corruption hooks, applied through a codec wrapper. */
export function throughWrapper(corruptions: ConformanceTarget['corruptions']): NonNullable<ConformanceTarget['corruptions']> {
  return Object.fromEntries(
    Object.entries(corruptions ?? {}).map(([what, damage]) => [what, (store: WorkflowStore, runId: string) => damage((store as CodecStore).inner, runId)]),
  );
}
