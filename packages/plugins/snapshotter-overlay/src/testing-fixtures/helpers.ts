// What the tests of this package share: a snapshotter on a fresh temp root, and mounting what it returns.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Mount, type OpContext } from '@berth/core';
import { MNT_DETACH, mountAll, unmountAll } from '@berth/sys';
import { OverlaySnapshotter, type OverlaySnapshotterOptions } from '../overlay-snapshotter.js';
import { probeOverlay } from '../probe.js';

export const ctx: OpContext = { namespace: 'overlay-test' };
export const quietLog = createLogger({ level: 'error' });

/** Why these tests cannot mount here, or undefined. */
export function mountsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'overlay mounts need Linux';
  if (process.getuid?.() !== 0) return 'overlay and bind mounts need root';
  return undefined;
}

export interface Fixture {
  readonly dir: string;
  readonly root: string;
  snapshotter: OverlaySnapshotter;
  /** Closes and opens the snapshotter again on the same root. */
  reopen(): Promise<OverlaySnapshotter>;
  /** Mounts `mounts` on a fresh directory; unmounted by dispose(). */
  mount(mounts: readonly Mount[]): Promise<string>;
  unmount(target: string): Promise<void>;
  dispose(): Promise<void>;
}

/** A snapshotter on a fresh temp root, with the mount options the probe finds (the probe needs root). */
export async function createFixture(options: Partial<OverlaySnapshotterOptions> = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-overlay-'));
  const root = join(dir, 'root');
  const targets: string[] = [];
  let mountOptions = options.mountOptions;
  const open = async () => {
    if (mountOptions === undefined && mountsUnavailable() === undefined) {
      await mkdir(root, { recursive: true });
      const probe = await probeOverlay(root, [], quietLog);
      if (!probe.ok) throw new Error(`overlay probe failed: ${probe.reason}`);
      mountOptions = probe.options;
    }
    return OverlaySnapshotter.open({ root, log: quietLog, ...options, mountOptions: mountOptions ?? [] });
  };
  const fixture: Fixture = {
    dir,
    root,
    snapshotter: await open(),
    async reopen() {
      await fixture.snapshotter.close();
      fixture.snapshotter = await open();
      return fixture.snapshotter;
    },
    async mount(mounts) {
      const target = await mkdtemp(join(dir, 'mnt-'));
      targets.push(target);
      await mountAll(mounts, target);
      return target;
    },
    async unmount(target) {
      await unmountAll(target, 0);
    },
    async dispose() {
      let stuck: unknown;
      for (const target of targets.reverse()) await unmountAll(target, MNT_DETACH).catch((err: unknown) => (stuck = err));
      await fixture.snapshotter.close();
      // Never remove a tree through a mount that is still there.
      if (stuck) throw new Error(`could not unmount under ${dir}; left in place`, { cause: stuck });
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fixture;
}
