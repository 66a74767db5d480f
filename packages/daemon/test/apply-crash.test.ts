// SIGKILL of berthd while Diff.Apply unpacks a layer into an active snapshot (issue 8): after a restart on the same
// root, the half-applied snapshot can be removed with ctr, and after Cleanup no snapshot directory is left that no
// record names. On both snapshotters berthd composes.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceNames } from '@berth/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unaryCall } from './grpc-raw.js';
import { hasCtr, hasRoot, QUIET_GC, startBerthd, type Berthd } from './harness.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface WireMount {
  readonly type: string;
  readonly source: string;
  readonly options: readonly string[];
}

describe.skipIf(!hasRoot() || !hasCtr())('SIGKILL during a layer apply', () => {
  let work: string;
  let layer: Buffer;
  const daemons: Berthd[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-apply-crash-'));
    // 6,000 small files in 30 directories: long enough to unpack that the kill lands in the middle.
    const src = join(work, 'src');
    const names: string[] = [];
    for (let d = 0; d < 30; d++) {
      await mkdir(join(src, `d${d}`), { recursive: true });
      names.push(`d${d}`);
      for (let f = 0; f < 200; f++) {
        await writeFile(join(src, `d${d}/f${f}`), randomBytes(512));
        names.push(`d${d}/f${f}`);
      }
    }
    const tar = spawnSync('tar', ['-c', '--format=posix', '--numeric-owner', '--no-recursion', '-C', src, '-f', '-', '--', ...names], { maxBuffer: 1 << 30 });
    expect(tar.status, tar.stderr?.toString()).toBe(0);
    layer = spawnSync('gzip', ['-1', '-n', '-c'], { input: tar.stdout, maxBuffer: 1 << 30 }).stdout;
  }, 120_000);
  afterAll(async () => {
    for (const d of daemons) await d.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const snapshotter of ['overlayfs', 'native']) {
    it(`leaves a removable snapshot and, after Cleanup, no directory without a record (${snapshotter})`, async () => {
      const first = await startBerthd({ config: QUIET_GC, logLevel: 'info' });
      daemons.push(first);
      const ctr = (d: Berthd, args: readonly string[], input?: Buffer) => d.ctr(args, { input, timeoutMs: 120_000 });
      const digest = sha256(layer);
      const ingested = await ctr(first, ['content', 'ingest', '--expected-digest', digest, `layer-${snapshotter}`], layer);
      expect(ingested.code, ingested.stderr).toBe(0);
      const prepared = await ctr(first, ['snapshots', '--snapshotter', snapshotter, 'prepare', 'k1']);
      expect(prepared.code, prepared.stderr).toBe(0);
      // A second, committed snapshot that must survive all of it.
      expect((await ctr(first, ['snapshots', '--snapshotter', snapshotter, 'prepare', 'keep-active'])).code).toBe(0);
      expect((await ctr(first, ['snapshots', '--snapshotter', snapshotter, 'commit', 'keep', 'keep-active'])).code).toBe(0);
      const mounts = await unaryCall<{ mounts: WireMount[] }>(first.address, ServiceNames.Snapshots, 'Mounts', { snapshotter, key: 'k1' }, { 'containerd-namespace': 'default' });
      expect(mounts.error).toBeUndefined();
      const target = mounts.response!.mounts[0]!;
      expect(target.type).toBe('bind');

      const applying = unaryCall(first.address, ServiceNames.Diff, 'Apply', {
        diff: { media_type: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: layer.length },
        mounts: mounts.response!.mounts,
      }, { 'containerd-namespace': 'default' });
      // Kill once the layer is partly there (some of its directories exist, not all).
      const deadline = Date.now() + 60_000;
      let seen = 0;
      while (Date.now() < deadline) {
        seen = (await readdir(target.source)).length;
        if (seen >= 2) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(seen, 'the apply started writing').toBeGreaterThanOrEqual(2);
      await first.kill('SIGKILL');
      const outcome = await applying;
      expect(outcome.error, 'the apply was cut short, not finished').toBeDefined();
      expect((await readdir(target.source)).length).toBeLessThan(30);

      const second = await startBerthd({ dir: first.dir, config: QUIET_GC, logLevel: 'info' });
      daemons.push(second);
      const removed = await ctr(second, ['snapshots', '--snapshotter', snapshotter, 'rm', 'k1']);
      expect(removed.code, removed.stderr).toBe(0);
      // Collect (the namespaced record is gone; the backend snapshot goes with the sweep), then Cleanup.
      const collected = await ctr(second, ['leases', 'create', '--id', 'gc-trigger']);
      expect(collected.code, collected.stderr).toBe(0);
      expect((await ctr(second, ['leases', 'rm', '--sync', 'gc-trigger'])).code).toBe(0);
      const cleanup = await unaryCall(second.address, ServiceNames.Snapshots, 'Cleanup', { snapshotter }, { 'containerd-namespace': 'default' });
      expect(cleanup.error).toBeUndefined();

      const ls = await ctr(second, ['snapshots', '--snapshotter', snapshotter, 'ls']);
      expect(ls.stdout.split('\n').slice(1).filter(Boolean).map((l) => l.split(/\s+/)[0])).toEqual(['keep']);
      const snapshotsDir = join(second.root, `io.containerd.snapshotter.v1.${snapshotter}`, 'snapshots');
      const left = await readdir(snapshotsDir);
      // One directory: the committed snapshot's. Nothing half-applied, nothing staged, nothing being removed.
      expect(left).toHaveLength(1);
      const kept = await ctr(second, ['snapshots', '--snapshotter', snapshotter, 'info', 'keep']);
      expect(kept.code, kept.stderr).toBe(0);
    }, 300_000);
  }
});
