import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeSnapshotterConformance } from '@berth/core/testing';
import * as sys from '@berth/sys';
import { NativeSnapshotter } from './native-snapshotter.js';

describeSnapshotterConformance(
  'native',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-native-'));
    const snapshotter = await NativeSnapshotter.open({ root: join(dir, 'io.containerd.snapshotter.v1.native') });
    return {
      snapshotter,
      ctx: { namespace: 'conformance' },
      async cleanup() {
        await snapshotter.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  { sys },
);
