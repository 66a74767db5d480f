// ContentStoreProxy against a real berthd process (the built packages/daemon/dist/main.js), over the real wire:
// the content-store conformance suite, one daemon for the file and a fresh namespace per test.
// Build first: cd /work/main && pnpm nx run @berth/daemon:build --output-style=static
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNotFound, type OpContext } from '@berth/core';
import { describeContentStoreConformance } from '@berth/core/testing';
import { BerthClient, ContentStoreProxy } from '@berth/client';
import { DAEMON_MAIN, NO_GC, startBerthd, type Berthd } from '../../daemon/test/harness.js';

describe.skipIf(!existsSync(DAEMON_MAIN))('ContentStoreProxy over berthd', () => {
  let daemon: Berthd | undefined;
  let client: BerthClient | undefined;

  beforeAll(async () => {
    daemon = await startBerthd({ config: NO_GC, logLevel: 'warn' });
    client = new BerthClient({ address: daemon.address });
  });

  afterAll(async () => {
    client?.close();
    await daemon?.stop();
  });

  /** Removes whatever a test left in its namespace, then the namespace itself. */
  async function dropNamespace(store: ContentStoreProxy, ctx: OpContext): Promise<void> {
    for (const status of await store.listStatuses(ctx)) await store.abort(ctx, status.ref);
    const digests: string[] = [];
    for await (const info of store.list(ctx)) digests.push(info.digest);
    for (const digest of digests) await store.delete(ctx, digest);
    // A namespace exists once something was written in it (as in containerd).
    await client!.namespaces.Delete({ name: ctx.namespace }).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }

  describeContentStoreConformance('proxy over berthd', async () => {
    const store = new ContentStoreProxy(client!);
    const ctx: OpContext = { namespace: `conformance-${randomBytes(6).toString('hex')}` };
    return { store, ctx, cleanup: () => dropNamespace(store, ctx) };
  });

  describe('namespaces and leases', () => {
    it('sends the namespace of the OpContext, not the client default', async () => {
      const store = new ContentStoreProxy(client!);
      const a: OpContext = { namespace: `proxy-a-${randomBytes(4).toString('hex')}` };
      const b: OpContext = { namespace: `proxy-b-${randomBytes(4).toString('hex')}` };
      const data = randomBytes(100);
      const w = await store.writer(a, { ref: 'ns-check' });
      await w.write(data);
      await w.commit(data.length, '');
      const digest = w.digest();
      expect((await store.info(a, digest)).size).toBe(100);
      await expect(store.info(b, digest)).rejects.toSatisfy(isNotFound);
      await dropNamespace(store, a);
    });

    it('adds what it writes to the lease of the OpContext', async () => {
      const store = new ContentStoreProxy(client!);
      const namespace = `proxy-lease-${randomBytes(4).toString('hex')}`;
      const { lease } = await client!.leases.Create({ id: 'proxy-lease' }, { namespace });
      expect(lease?.id).toBe('proxy-lease');
      const data = randomBytes(64);
      const w = await store.writer({ namespace, lease: 'proxy-lease' }, { ref: 'leased' });
      await w.write(data);
      await w.commit(data.length, '');
      const { resources } = await client!.leases.ListResources({ id: 'proxy-lease' }, { namespace });
      expect(resources).toContainEqual(expect.objectContaining({ id: w.digest(), type: 'content' }));
      await client!.leases.Delete({ id: 'proxy-lease' }, { namespace });
      await dropNamespace(store, { namespace });
    });

    it('cancels a read when the signal of the OpContext aborts', async () => {
      const store = new ContentStoreProxy(client!);
      const namespace = `proxy-signal-${randomBytes(4).toString('hex')}`;
      const data = randomBytes(3 << 20);
      const w = await store.writer({ namespace }, { ref: 'signal' });
      await w.write(data);
      await w.commit(data.length, '');
      const controller = new AbortController();
      const reader = await store.reader({ namespace, signal: controller.signal }, w.digest());
      const chunks = reader.stream()[Symbol.asyncIterator]();
      await chunks.next();
      controller.abort();
      await expect(chunks.next()).rejects.toThrow();
      await dropNamespace(store, { namespace });
    });
  });
});
