// The snapshotter conformance suite on the namespaced snapshotters: the metadata records over the real native and
// overlayfs snapshotters (test-only dependencies: plugins never import each other), each in a namespace of its own
// beside another namespace that holds snapshots of the same keys, so that names never leak between namespaces.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nullLogger, type RawSnapshotter } from '@berth/core';
import { casesLeftToTheNativeSuite, createMemoryContentStore, describeSnapshotterConformance, type SnapshotterFixture } from '@berth/core/testing';
import { NativeSnapshotter } from '@berth/plugin-snapshotter-native';
import { OverlaySnapshotter, probeOverlay } from '@berth/plugin-snapshotter-overlay';
import * as sys from '@berth/sys';
import { LmdbMetadataStore } from './metadata-store.js';

type Raw = RawSnapshotter & { close(): Promise<void> };

async function namespaced(name: string, open: (root: string) => Promise<Raw>): Promise<SnapshotterFixture> {
  const dir = await mkdtemp(join(tmpdir(), `berth-meta-${name}-`));
  const raw = await open(join(dir, name));
  const store = await LmdbMetadataStore.open({
    path: join(dir, 'meta', 'meta.lmdb'),
    content: createMemoryContentStore('raw'),
    snapshotters: new Map([[name, raw]]),
    log: nullLogger,
  });
  const snapshotter = store.snapshotters.get(name);
  // A neighbour with a snapshot under a key the suite's own keys never equal, and one the suite never sees.
  await snapshotter.prepare({ namespace: 'neighbour' }, 'neighbour-active', '', { labels: { 'containerd.io/gc.root': 'x' } });
  return {
    snapshotter,
    ctx: { namespace: 'conformance' },
    async cleanup() {
      try {
        // Whatever the case did in its own namespace, the neighbour's snapshot is still there and was never seen.
        const kept = await snapshotter.stat({ namespace: 'neighbour' }, 'neighbour-active');
        if (kept.kind !== 'active') throw new Error(`the neighbour's snapshot changed: ${JSON.stringify(kept)}`);
        const seen: string[] = [];
        for await (const info of snapshotter.walk({ namespace: 'conformance' })) seen.push(info.name);
        if (seen.includes('neighbour-active')) throw new Error('the neighbour namespace leaked into the conformance namespace');
      } finally {
        await store.close();
        await raw.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

describeSnapshotterConformance('namespaced over native', () => namespaced('native', (root) => NativeSnapshotter.open({ root })), {
  sys,
  skip: casesLeftToTheNativeSuite,
});

describeSnapshotterConformance(
  'namespaced over overlayfs',
  () =>
    namespaced('overlayfs', async (root) => {
      await mkdir(root, { recursive: true });
      const probe = await probeOverlay(root, [], nullLogger);
      if (!probe.ok) throw new Error(`overlayfs is not usable here: ${probe.reason}`);
      return OverlaySnapshotter.open({ root, log: nullLogger, mountOptions: probe.options });
    }),
  { sys },
);
