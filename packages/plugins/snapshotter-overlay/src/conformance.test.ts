// containerd's snapshotter suite, as @berth/core/testing has it, on the overlay snapshotter (each case on a fresh
// root, mounting what the snapshotter returns with @berth/sys, 128 layers included).
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as sys from '@berth/sys';
import { describeSnapshotterConformance } from '@berth/core/testing';
import { OverlaySnapshotter } from './overlay-snapshotter.js';
import { probeOverlay } from './probe.js';
import { ctx, mountsUnavailable, quietLog } from './testing-fixtures/helpers.js';

let options: readonly string[] | undefined;

describeSnapshotterConformance(
  'overlayfs',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-overlay-suite-'));
    const root = join(dir, 'root');
    await mkdir(root);
    if (options === undefined && mountsUnavailable() === undefined) {
      const probe = await probeOverlay(root, [], quietLog);
      if (!probe.ok) throw new Error(`overlay probe failed: ${probe.reason}`);
      options = probe.options;
    }
    const snapshotter = await OverlaySnapshotter.open({ root, log: quietLog, mountOptions: options ?? [] });
    return {
      snapshotter,
      ctx,
      async cleanup() {
        await snapshotter.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  { sys },
);
