import { MemoryStore } from '../../src/store/memory/memory.store.js';
import { describeStoreConformance } from '../conformance/store.conformance.js';

describeStoreConformance('memory', { create: async () => new MemoryStore() });
