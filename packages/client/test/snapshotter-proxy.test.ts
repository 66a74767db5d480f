// SnapshotterProxy against a real berthd process (the built packages/daemon/dist/main.js), over the real wire: the
// snapshotter conformance suite through the Snapshots service on each snapshotter berthd composes, one daemon for
// the file and a fresh namespace per test. The suite mounts what comes back over the wire, so it needs root.
// Build first: pnpm nx run @berth/daemon:build --output-style=static
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isInvalidArgument, isNotFound, type OpContext, type SnapshotInfo } from '@berth/core';
import { casesLeftToTheNativeSuite, describeSnapshotterConformance, snapshotterSuiteUnavailable } from '@berth/core/testing';
import * as sys from '@berth/sys';
import { BerthClient, SnapshotterProxy } from '@berth/client';
import { DAEMON_MAIN, NO_GC, startBerthd, type Berthd } from '../../daemon/test/harness.js';

describe.skipIf(!existsSync(DAEMON_MAIN) || snapshotterSuiteUnavailable() !== undefined)('SnapshotterProxy over berthd', () => {
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

  /** Removes whatever a test left in its namespace (children before parents), then the namespace itself. */
  async function dropNamespace(proxy: SnapshotterProxy, ctx: OpContext): Promise<void> {
    for (;;) {
      const infos: SnapshotInfo[] = [];
      for await (const info of proxy.walk(ctx)) infos.push(info);
      if (infos.length === 0) break;
      const parents = new Set(infos.map((i) => i.parent));
      const leaves = infos.filter((i) => !parents.has(i.name));
      if (leaves.length === 0) throw new Error(`snapshots in ${ctx.namespace} form a cycle: ${infos.map((i) => i.name).join(', ')}`);
      for (const leaf of leaves) await proxy.remove(ctx, leaf.name);
    }
    // A namespace that still held snapshots could not be deleted: this also checks the removals above.
    await client!.namespaces.Delete({ name: ctx.namespace }).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }

  for (const name of ['overlayfs', 'native']) {
    describeSnapshotterConformance(
      `proxy over berthd (${name})`,
      async () => {
        const snapshotter = new SnapshotterProxy(client!, name);
        const ctx: OpContext = { namespace: `conformance-${randomBytes(6).toString('hex')}` };
        return { snapshotter, ctx, cleanup: () => dropNamespace(snapshotter, ctx) };
      },
      { sys, skip: name === 'native' ? casesLeftToTheNativeSuite : undefined },
    );
  }

  describe('namespaces, leases and errors', () => {
    it('sends the namespace of the OpContext, not the client default', async () => {
      const proxy = new SnapshotterProxy(client!, 'native');
      const a: OpContext = { namespace: `proxy-a-${randomBytes(4).toString('hex')}` };
      const b: OpContext = { namespace: `proxy-b-${randomBytes(4).toString('hex')}` };
      await proxy.prepare(a, 'only-in-a', '');
      expect((await proxy.stat(a, 'only-in-a')).kind).toBe('active');
      await expect(proxy.stat(b, 'only-in-a')).rejects.toSatisfy(isNotFound);
      await dropNamespace(proxy, a);
    });

    it('adds what it prepares to the lease of the OpContext', async () => {
      const proxy = new SnapshotterProxy(client!, 'native');
      const namespace = `proxy-lease-${randomBytes(4).toString('hex')}`;
      await client!.leases.Create({ id: 'proxy-lease' }, { namespace });
      await proxy.prepare({ namespace, lease: 'proxy-lease' }, 'leased', '');
      const { resources } = await client!.leases.ListResources({ id: 'proxy-lease' }, { namespace });
      expect(resources).toEqual([expect.objectContaining({ id: 'leased', type: 'snapshots/native' })]);
      await client!.leases.Delete({ id: 'proxy-lease' }, { namespace });
      await dropNamespace(proxy, { namespace });
    });

    it('names a snapshotter berthd does not have as an invalid argument', async () => {
      const proxy = new SnapshotterProxy(client!, 'no-such-snapshotter');
      const err = await proxy.prepare({ namespace: 'default' }, 'k', '').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toSatisfy(isInvalidArgument);
      expect(String(err)).toContain('snapshotter not loaded: no-such-snapshotter');
    });
  });
});
