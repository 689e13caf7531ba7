import { CodecStore } from '../../src/codec/codec.store.js';
import { MemoryStore } from '../../src/store/memory/memory.store.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';
import { aesCodec, asyncCodec, codecCorruptions } from './codec-test-helpers.js';

// The store contract, unchanged, through the codec wrapper: a synchronous codec (AES-GCM), then an asynchronous one
// whose calls settle out of order.
describeStoreConformance('memory + AesGcmCodec', {
  create: async () => new CodecStore(new MemoryStore(), aesCodec()),
  corruptions: codecCorruptions(),
});

describeStoreConformance('memory + an asynchronous codec', {
  create: async () => new CodecStore(new MemoryStore(), asyncCodec(aesCodec())),
  corruptions: codecCorruptions(),
});
