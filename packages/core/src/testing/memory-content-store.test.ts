import { describe, expect, it } from 'vitest';
import { describeContentStoreConformance } from './content-conformance.js';
import { expectFailure, rpcContext } from './helpers.js';
import { createMemoryContentStore } from './memory-content-store.js';

describeContentStoreConformance('memory (raw)', async () => ({ store: createMemoryContentStore('raw'), ctx: { namespace: 'default' }, cleanup: async () => undefined }));
describeContentStoreConformance('memory (namespaced)', async () => ({ store: createMemoryContentStore(), ctx: { namespace: 'default' }, cleanup: async () => undefined }));

describe('test helpers', () => {
  it('builds the RpcContext berthd hands handlers', () => {
    const ctx = rpcContext({ namespace: 'ns', lease: 'l1', metadata: { 'x-y': 'z' } });
    expect(ctx.metadata).toEqual({ 'containerd-namespace': 'ns', 'containerd-lease': 'l1', 'x-y': 'z' });
    expect(ctx.signal.aborted).toBe(false);
  });

  it('expectFailure checks the class and the message, and fails on success or another class', async () => {
    const store = createMemoryContentStore();
    const missing = `sha256:${'0'.repeat(64)}`;
    const err = await expectFailure(store.info({ namespace: 'x' }, missing), 'not-found', 'content digest');
    expect(err.message).toContain(missing);
    await expect(expectFailure(Promise.resolve(1), 'not-found')).rejects.toThrow('expected a not-found failure');
    await expect(expectFailure(store.info({ namespace: 'x' }, missing), 'invalid-argument')).rejects.toThrow();
  });
});
