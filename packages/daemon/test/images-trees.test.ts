// The project's test images (tools/images) pulled by Debian's ctr (client-side) into berthd from the loopback
// registry: every layer media type (gzip, plain, zstd, mixed), Docker media types and platform selection; each
// unpacked image, mounted with `ctr images mount`, must be the same tree (types, modes, owners, sizes, contents,
// symlinks, hard links, xattrs) as `umoci unpack` of the same layout.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MNT_DETACH, umount2 } from '@berth/sys';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, compareTrees, formatDifferences, hasUmoci, snapshotTree, umociUnpack, type BuiltImage } from '../../../tools/images/index.mjs';
import { expectOk, hasCtr, hasRoot, isMounted, QUIET_GC, startBerthd, type Berthd } from './harness.js';
import { hasRegistry, pushLayout, startRegistry, type Registry } from './registry.js';

const GOARCH = process.arch === 'x64' ? 'amd64' : process.arch;

describe.skipIf(!hasRoot() || !hasCtr() || !hasRegistry() || !hasUmoci())('test images pulled by ctr unpack as umoci unpacks them', () => {
  let daemon: Berthd;
  let registry: Registry;
  let work: string;
  const built = new Map<string, BuiltImage>();
  const mounted: string[] = [];

  const ctr = (args: string[], namespace: string) => daemon.ctr(args, { namespace, timeoutMs: 120_000 });
  const contentDigests = async (namespace: string) =>
    expectOk(await ctr(['content', 'ls', '--quiet'], namespace)).stdout.split('\n').filter((l) => l !== '');

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-images-trees-'));
    registry = await startRegistry();
    daemon = await startBerthd({ config: QUIET_GC, logLevel: 'info' });
    for (const name of ['layers', 'layers-plain', 'layers-zstd', 'layers-mixed', 'docker', 'tiny', 'multi']) {
      const image = await buildImage(name, join(work, 'layouts', name));
      await pushLayout(registry, image.dir, `test/${name}:latest`);
      built.set(name, image);
    }
  }, 300_000);

  afterEach(async () => {
    for (const target of mounted.splice(0)) if (isMounted(target)) await umount2(target, MNT_DETACH);
  });

  afterAll(async () => {
    await daemon?.stop();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Pulls `test/<name>:latest` into its own namespace, mounts it and compares it with umoci's tree of `reference`. */
  async function pullAndCompare(name: string, reference: string, snapshotter?: string): Promise<void> {
    const ns = `trees-${name}${snapshotter ? `-${snapshotter}` : ''}`;
    const pullArgs = snapshotter ? ['--snapshotter', snapshotter] : [];
    const ref = `${registry.host}/test/${name}:latest`;
    expectOk(await ctr(['images', 'pull', '--plain-http', ...pullArgs, ref], ns));
    const target = join(work, 'mnt', ns);
    await mkdir(target, { recursive: true });
    mounted.push(target);
    expectOk(await ctr(['images', 'mount', ...pullArgs, ref, target], ns));
    try {
      const umoci = umociUnpack(built.get(reference)!.dir, 'latest', join(work, 'umoci', `${ns}-${reference}`));
      // The root directory itself is the mount point (umoci makes its own): compare what is below it.
      const differences = (await compareTrees(umoci, target)).filter((d) => d.path !== '.');
      expect(formatDifferences(differences, { a: 'umoci', b: 'berthd' })).toBe('');
      // The control: the mount really shows the image (busybox and its applet links at least).
      const tree = await snapshotTree(target);
      expect(tree.get('bin/busybox')?.type).toBe('file');
      expect(tree.size).toBeGreaterThan(100);
    } finally {
      expectOk(await ctr(['images', 'unmount', ...pullArgs, '--rm', target], ns));
    }
    expect(isMounted(target)).toBe(false);
    expectOk(await ctr(['images', 'rm', '--sync', ref], ns));
    expect(await contentDigests(ns)).toEqual([]);
  }

  for (const name of ['layers', 'layers-plain', 'tiny']) {
    it(`${name}: ctr images pull, then ctr images mount shows umoci's tree`, () => pullAndCompare(name, name), 180_000);
  }

  it('layers on the native snapshotter: ctr images pull/mount --snapshotter native shows umoci\'s tree', () => pullAndCompare('layers', 'layers', 'native'), 180_000);

  // umoci cannot unpack zstd layers nor read Docker media types: compare with the image of the same diff IDs.
  it('layers-zstd: zstd layers unpack to the tree of layers', () => pullAndCompare('layers-zstd', 'layers'), 180_000);
  it('layers-mixed: gzip, plain and zstd layers in one manifest unpack to the tree of layers', () => pullAndCompare('layers-mixed', 'layers'), 180_000);
  it('docker: a Docker manifest list, v2 manifest and config unpack to the tree of tiny', () => pullAndCompare('docker', 'tiny'), 180_000);

  it('multi: --platform picks one manifest of the index and unpacks only it', async () => {
    const ns = 'trees-multi';
    const image = built.get('multi')!;
    const ref = `${registry.host}/test/multi:latest`;
    const arm = image.manifests.find((m) => m.platform?.architecture === 'arm' && m.platform.variant === 'v7');
    const host = image.manifests.find((m) => m.platform?.architecture === GOARCH);
    expect(arm && host).toBeTruthy();
    expectOk(await ctr(['images', 'pull', '--plain-http', '--platform', 'linux/arm/v7', ref], ns));
    const digests = await contentDigests(ns);
    expect(digests).toEqual(expect.arrayContaining([image.target.digest, arm!.descriptor.digest, ...arm!.layers.map((l) => l.descriptor.digest)]));
    expect(digests).not.toContain(host!.descriptor.digest);
    const keys = expectOk(await ctr(['snapshots', 'ls'], ns)).stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]);
    expect(keys).toEqual([arm!.layers[0]!.diffId]);
    expectOk(await ctr(['images', 'rm', '--sync', ref], ns));
    expect(await contentDigests(ns)).toEqual([]);
  }, 180_000);
});
