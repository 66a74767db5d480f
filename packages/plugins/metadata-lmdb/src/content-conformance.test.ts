import { describeContentStoreConformance } from '@berth/core/testing';
import { createHarness, type Backend } from './testing-fixtures/harness.js';

// The namespaced store must keep every promise of a ContentStore, over either raw store.
for (const backend of ['local', 'memory'] as const satisfies readonly Backend[]) {
  describeContentStoreConformance(`lmdb metadata content over ${backend} raw store`, async () => {
    const h = await createHarness({ backend });
    return { store: h.store.content, ctx: { namespace: 'conformance' }, cleanup: () => h.cleanup() };
  });
}
