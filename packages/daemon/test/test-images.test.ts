// The test images themselves (tools/images): built deterministically, valid OCI layouts by independent readers
// (GNU tar, umoci, skopeo), pushed to the loopback registry as a client would, and the `layers` image unpacks with
// umoci to the tree its description promises; the tree comparator finds each kind of difference.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, chown, cp, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gunzipSync } from 'node:zlib';
import {
  buildImage,
  cachedImage,
  compareTrees,
  formatDifferences,
  hasUmoci,
  hostPlatform,
  LAYERS_EXPECTED,
  MEDIA_TYPES,
  pushLayout as pushLayoutTo,
  registryClient,
  snapshotTree,
  umociUnpack,
  writeTar,
  type BuiltImage,
} from '../../../tools/images/index.mjs';
import { hasRoot } from './harness.js';
import { hasRegistry, pushLayout, startRegistry, type Registry } from './registry.js';

const FAST_IMAGES = ['tiny', 'layers', 'layers-plain', 'layers-zstd', 'layers-mixed', 'multi', 'docker', 'schema1'] as const;
const hasSkopeo = existsSync('/usr/bin/skopeo');

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'berth-test-images-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** path -> sha256 of every file under dir */
function fileHashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

interface Doc {
  mediaType: string;
  manifests?: { digest: string; mediaType: string; platform?: { architecture: string; variant?: string } }[];
  config?: { digest: string; mediaType: string };
  layers?: { digest: string; mediaType: string; size: number }[];
  rootfs?: { diff_ids: string[] };
}
const blob = (dir: string, digest: string) => readFileSync(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
const doc = (dir: string, digest: string) => JSON.parse(blob(dir, digest).toString('utf8')) as Doc;

describe('tools/images', () => {
  const built = new Map<string, BuiltImage>();

  it.each(FAST_IMAGES)('%s builds to the same bytes twice, and every blob is named by its digest', async (name) => {
    const first = await buildImage(name, join(scratch, `${name}-1`));
    const second = await buildImage(name, join(scratch, `${name}-2`));
    built.set(name, first);
    const a = fileHashes(first.dir);
    expect(Object.keys(a).length).toBeGreaterThan(3);
    expect(fileHashes(second.dir)).toEqual(a);
    for (const [path, hash] of Object.entries(a)) {
      if (path.startsWith('blobs/sha256/')) expect(path.slice('blobs/sha256/'.length)).toBe(hash);
    }
    expect(JSON.parse(readFileSync(join(first.dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    // every descriptor reachable from index.json points at a blob of that size, and configs list the diff IDs
    const index = JSON.parse(readFileSync(join(first.dir, 'index.json'), 'utf8')) as Doc;
    expect(index.manifests).toHaveLength(1);
    const seen: string[] = [];
    const visit = (digest: string) => {
      const d = doc(first.dir, digest);
      seen.push(d.mediaType);
      for (const m of d.manifests ?? []) visit(m.digest);
      if (d.config) {
        const config = doc(first.dir, d.config.digest);
        expect(config.rootfs?.diff_ids).toHaveLength(d.layers?.length ?? -1);
        for (const layer of d.layers ?? []) expect(blob(first.dir, layer.digest).length).toBe(layer.size);
      }
    };
    visit(first.target.digest);
    expect(first.target.annotations?.['org.opencontainers.image.ref.name']).toBe('latest');
    if (name === 'multi') expect(seen).toEqual([MEDIA_TYPES.ociIndex, ...Array<string>(first.manifests.length).fill(MEDIA_TYPES.ociManifest)]);
    if (name === 'docker') expect(seen).toEqual([MEDIA_TYPES.dockerManifestList, MEDIA_TYPES.dockerManifest]);
  });

  it('gives each layer the media type of its compression, and the variants of `layers` the same diff IDs', () => {
    const types = (name: string) => built.get(name)!.manifests[0]!.layers.map((l) => l.descriptor.mediaType);
    const diffIds = (name: string) => built.get(name)!.manifests[0]!.layers.map((l) => l.diffId);
    expect(types('layers')).toEqual(Array<string>(4).fill(MEDIA_TYPES.ociLayerGzip));
    expect(types('layers-plain')).toEqual([MEDIA_TYPES.ociLayerGzip, ...Array<string>(3).fill(MEDIA_TYPES.ociLayer)]);
    expect(types('layers-zstd')).toEqual([MEDIA_TYPES.ociLayerGzip, ...Array<string>(3).fill(MEDIA_TYPES.ociLayerZstd)]);
    expect(types('layers-mixed')).toEqual([MEDIA_TYPES.ociLayerGzip, MEDIA_TYPES.ociLayerGzip, MEDIA_TYPES.ociLayer, MEDIA_TYPES.ociLayerZstd]);
    for (const variant of ['layers-plain', 'layers-zstd', 'layers-mixed']) expect(diffIds(variant)).toEqual(diffIds('layers'));
    // the busybox layer is one blob, shared by every image that has it
    expect(built.get('tiny')!.manifests[0]!.layers[0]!.descriptor.digest).toBe(built.get('layers')!.manifests[0]!.layers[0]!.descriptor.digest);
    expect(built.get('docker')!.manifests[0]!.layers[0]!.descriptor.mediaType).toBe(MEDIA_TYPES.dockerLayerGzip);
    // zstd frames really are zstd, and decompress to the tar whose digest is the diff ID
    const zstdLayer = built.get('layers-zstd')!.manifests[0]!.layers[3]!;
    const tar = execFileSync('zstd', ['-dc'], { input: blob(built.get('layers-zstd')!.dir, zstdLayer.descriptor.digest) });
    expect(`sha256:${createHash('sha256').update(tar).digest('hex')}`).toBe(zstdLayer.diffId);
  });

  it('multi indexes linux/amd64, linux/arm64/v8 and linux/arm/v7, the host manifest with busybox in it', () => {
    const multi = built.get('multi')!;
    const index = doc(multi.dir, multi.target.digest);
    const platforms = (index.manifests ?? []).map((m) => [m.platform?.architecture, m.platform?.variant ?? ''].join('/'));
    expect(platforms).toEqual(expect.arrayContaining(['amd64/', 'arm64/v8', 'arm/v7']));
    const host = multi.manifests[0]!;
    expect(host.platform.architecture).toBe(hostPlatform().architecture);
    expect(host.layers[0]!.descriptor.digest).toBe(built.get('tiny')!.manifests[0]!.layers[0]!.descriptor.digest);
    for (const other of multi.manifests.slice(1)) {
      const config = doc(multi.dir, other.config.digest) as Doc & { architecture: string; variant?: string };
      expect(config.architecture).toBe(other.platform.architecture);
      expect(config.variant).toBe(other.platform.variant);
    }
  });

  it('writes tars GNU tar reads back: long names, big ids, links, a fifo, binary xattrs', async () => {
    const dir = join(scratch, 'tar');
    const long = `d/${'n'.repeat(140)}`;
    const tar = writeTar([
      { path: 'd', type: 'dir', mode: 0o1777 },
      { path: long, type: 'file', data: 'long\n', uid: 3000000, gid: 7 },
      { path: 'd/hard', type: 'hardlink', target: long },
      { path: 'd/sym', type: 'symlink', target: `/${'s'.repeat(120)}` },
      { path: 'd/fifo', type: 'fifo', mode: 0o600 },
      { path: 'd/x', type: 'file', data: '', xattrs: { 'user.bin': Buffer.from([0, 0xff, 0x80]) } },
    ]);
    await writeFile(`${dir}.tar`, tar);
    const listing = execFileSync('tar', ['--numeric-owner', '-tvf', `${dir}.tar`], { encoding: 'utf8' });
    expect(listing).toContain(`3000000/7`);
    expect(listing).toContain(long);
    expect(listing).toMatch(/^drwxrwxrwt/m);
    expect(listing).toMatch(/^p/m);
    expect(listing).toContain(`-> /${'s'.repeat(120)}`);
    expect(listing).toContain(`d/hard link to ${long}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    execFileSync('tar', ['--xattrs', "--xattrs-include=*", '-xf', `${dir}.tar`, '-C', dir]);
    expect(execFileSync('getfattr', ['--only-values', '-n', 'user.bin', join(dir, 'd/x')])).toEqual(Buffer.from([0, 0xff, 0x80]));
    expect((await lstat(join(dir, 'd/hard'))).ino).toBe((await lstat(join(dir, long))).ino);
    expect(await readlink(join(dir, 'd/sym'))).toBe(`/${'s'.repeat(120)}`);
  });

  it('many and big (small variants here) are cached by content: the second call builds nothing', async () => {
    const previous = process.env.BERTH_IMAGE_CACHE;
    process.env.BERTH_IMAGE_CACHE = join(scratch, 'cache');
    try {
      const many = await cachedImage('many', { many: { files: 250, layers: 3 } });
      const layers = many.manifests[0]!.layers;
      expect(layers).toHaveLength(3);
      const listing = execFileSync('tar', ['-tzf', join(many.dir, 'blobs', 'sha256', layers[0]!.descriptor.digest.slice(7))], { encoding: 'utf8' });
      expect(listing.split('\n').filter((l) => /\/f\d{5}$/.test(l))).toHaveLength(84);
      const blobDir = join(many.dir, 'blobs', 'sha256');
      const mtime = statSync(join(blobDir, readdirSync(blobDir)[0]!)).mtimeMs;
      const again = await cachedImage('many', { many: { files: 250, layers: 3 } });
      expect(again).toEqual(many);
      expect(statSync(join(blobDir, readdirSync(blobDir)[0]!)).mtimeMs).toBe(mtime);
      // another size is another cache entry
      expect((await cachedImage('many', { many: { files: 10, layers: 1 } })).dir).not.toBe(many.dir);
      const big = await cachedImage('big', { big: { mib: 3 } });
      expect(big.manifests[0]!.layers).toHaveLength(3);
      let tarBytes = 0;
      let blobBytes = 0;
      for (const layer of big.manifests[0]!.layers) {
        const gz = blob(big.dir, layer.descriptor.digest);
        blobBytes += gz.length;
        tarBytes += gunzipSync(gz).length;
      }
      // incompressible: gzip saves nothing on the file contents (only tar headers and padding)
      expect(blobBytes).toBeGreaterThan(3 * 1024 * 1024);
      expect(blobBytes / tarBytes).toBeGreaterThan(0.99);
      expect((await buildImage('big', join(scratch, 'big-again'), { big: { mib: 3 } })).manifests[0]!.descriptor.digest).toBe(big.manifests[0]!.descriptor.digest);
    } finally {
      if (previous === undefined) delete process.env.BERTH_IMAGE_CACHE;
      else process.env.BERTH_IMAGE_CACHE = previous;
    }
  });

  it.skipIf(!hasSkopeo || !hasUmoci())('the OCI layouts pass umoci stat and skopeo inspect', () => {
    for (const name of ['tiny', 'layers', 'layers-plain', 'multi']) {
      const image = built.get(name)!;
      const inspected = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${image.dir}:latest`], { encoding: 'utf8' })) as { Digest: string; Layers: string[] };
      // skopeo reports the digest of what the ref names (multi: the index) and the layers of the host's manifest
      expect(inspected.Digest).toBe(image.target.digest);
      expect(inspected.Layers).toEqual(image.manifests[0]!.layers.map((l) => l.descriptor.digest));
      if (name !== 'multi') {
        const stat = spawnSync('umoci', ['stat', '--image', `${image.dir}:latest`], { encoding: 'utf8' });
        expect(stat.status, stat.stderr).toBe(0);
        expect(stat.stdout).toContain('berth tools/images');
      }
    }
  });
});

describe.skipIf(!hasRoot() || !hasUmoci())('the layers image unpacked by umoci (the reference tree)', () => {
  let rootfs: string;
  beforeAll(async () => {
    const image = await buildImage('layers', join(scratch, 'ref-layers'));
    rootfs = umociUnpack(image.dir, 'latest', join(scratch, 'ref-bundle'));
  });

  it('has what LAYERS_EXPECTED says: whiteouts, opaque dirs, replaced entries, links, modes, owners, xattrs', async () => {
    for (const path of LAYERS_EXPECTED.absent) expect(existsSync(join(rootfs, path)), `${path} should be gone`).toBe(false);
    for (const [path, text] of Object.entries(LAYERS_EXPECTED.files)) expect(await readFile(join(rootfs, path), 'utf8'), path).toBe(text);
    expect((await readdir(join(rootfs, LAYERS_EXPECTED.opaqueDir.path))).sort()).toEqual(LAYERS_EXPECTED.opaqueDir.entries);
    const [first, ...others] = LAYERS_EXPECTED.hardLinks;
    for (const other of others) expect((await lstat(join(rootfs, other))).ino).toBe((await lstat(join(rootfs, first!))).ino);
    for (const [path, target] of Object.entries(LAYERS_EXPECTED.symlinks)) expect(await readlink(join(rootfs, path))).toBe(target);
    for (const [path, mode] of Object.entries(LAYERS_EXPECTED.modes)) expect(((await lstat(join(rootfs, path))).mode & 0o7777).toString(8), path).toBe(mode.toString(8));
    for (const [path, [uid, gid]] of Object.entries(LAYERS_EXPECTED.owners)) {
      const st = await lstat(join(rootfs, path));
      expect([st.uid, st.gid], path).toEqual([uid, gid]);
    }
    expect((await lstat(join(rootfs, LAYERS_EXPECTED.fifo))).isFIFO()).toBe(true);
    expect(existsSync(join(rootfs, LAYERS_EXPECTED.longName))).toBe(true);
    const tree = await snapshotTree(rootfs);
    for (const [path, xattrs] of Object.entries(LAYERS_EXPECTED.xattrs)) {
      for (const [name, value] of Object.entries(xattrs)) expect(tree.get(path)?.xattrs[name], `${path} ${name}`).toBe(value.toString('hex'));
    }
    expect([...tree.keys()].filter((p) => p.split('/').pop()!.startsWith('.wh.'))).toEqual([]);
    expect(tree.get('bin/sh')).toMatchObject({ type: 'symlink', target: 'busybox' });
    expect(execFileSync(join(rootfs, 'bin/busybox'), ['echo', 'runs'], { encoding: 'utf8' })).toBe('runs\n');
  });

  it('the comparator finds no difference with itself and each kind of difference with a changed copy', async () => {
    // a second unpack is the identical tree (a copy with cp would lose owners, hard links and xattrs)
    const again = umociUnpack(join(scratch, 'ref-layers'), 'latest', join(scratch, 'ref-bundle-2'));
    expect(formatDifferences(await compareTrees(rootfs, again))).toBe('');
    await writeFile(join(again, 'data/keep.txt'), 'kept from layer X\n'); // same size, other content
    await chmod(join(again, 'data/setuid'), 0o755);
    await chown(join(again, 'data/owned-1000'), 1000, 0);
    await rm(join(again, 'data/symlink-rel'));
    await symlink('elsewhere', join(again, 'data/symlink-rel'));
    execFileSync('setfattr', ['-x', 'user.berth.bin', join(again, 'data/xattr-user')]);
    await rm(join(again, 'data/nested/hardlink-other'));
    await cp(join(again, 'data/hardlink-src.txt'), join(again, 'data/nested/hardlink-other'));
    await rm(join(again, 'data/empty'));
    await writeFile(join(again, 'data/extra'), '');
    const fields = (await compareTrees(rootfs, again)).map((d) => `${d.path} ${d.field}`);
    expect(fields).toEqual(
      expect.arrayContaining([
        'data/keep.txt content',
        'data/setuid mode',
        'data/owned-1000 gid',
        'data/symlink-rel target',
        'data/xattr-user xattr user.berth.bin',
        'data/hardlink-src.txt hard links',
        'data/nested/hardlink-other hard links',
        'data/empty presence',
        'data/extra presence',
      ]),
    );
    expect(formatDifferences(await compareTrees(rootfs, again), { a: 'umoci', b: 'copy' })).toContain('data/setuid: mode 4755 (umoci) != 0755 (copy)');
    // ignore leaves a subtree out; xattrs: false stops reading them
    expect(await compareTrees(rootfs, again, { ignore: (p) => p === 'data' })).toEqual([]);
    expect((await compareTrees(rootfs, again, { xattrs: false })).map((d) => d.field)).not.toContain('xattr user.berth.bin');
  });
});

describe.skipIf(!hasRegistry())('pushLayout into the loopback registry', () => {
  let registry: Registry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  const ACCEPT = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifestList, MEDIA_TYPES.dockerManifest].join(', ');

  it.each(['tiny', 'layers-mixed', 'multi', 'docker'] as const)('%s: the tag resolves to the layout digest and every blob is there', async (name) => {
    const image = await buildImage(name, join(scratch, `push-${name}`));
    const pushed = await pushLayout(registry, image.dir, `test/${name}:latest`);
    expect(pushed.reference).toBe(`${registry.host}/test/${name}:latest`);
    expect(pushed.digest).toBe(image.target.digest);
    const res = await fetch(`${registry.url}/v2/test/${name}/manifests/latest`, { headers: { accept: ACCEPT } });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(image.target.digest);
    expect(res.headers.get('content-type')).toBe(image.target.mediaType);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(blob(image.dir, image.target.digest));
    const blobs = image.manifests.flatMap((m) => [m.config.digest, ...m.layers.map((l) => l.descriptor.digest)]);
    expect([...pushed.blobs].sort()).toEqual([...new Set(blobs)].sort());
    for (const digest of blobs) {
      const head = await fetch(`${registry.url}/v2/test/${name}/blobs/${digest}`, { method: 'HEAD' });
      expect(head.status, digest).toBe(200);
    }
    expect(pushed.manifests.at(-1)).toBe(image.target.digest);
  });

  it('registryClient (for scripts with their own registry) pushes the same layout to the same digests', async () => {
    const image = await buildImage('multi', join(scratch, 'push-client'));
    const viaHarness = await pushLayout(registry, image.dir, 'test/harness:v1');
    const viaClient = await pushLayoutTo(registryClient(registry.url), image.dir, 'test/client:v1');
    expect(viaClient).toEqual({ ...viaHarness, reference: `${registry.host}/test/client:v1`, repo: 'test/client' });
    const res = await fetch(`${registry.url}/v2/test/client/manifests/v1`, { method: 'HEAD', headers: { accept: ACCEPT } });
    expect(res.headers.get('docker-content-digest')).toBe(image.target.digest);
  });

  it('refuses a layout whose blob does not match its digest, naming it', async () => {
    const image = await buildImage('tiny', join(scratch, 'push-bad'));
    const config = image.manifests[0]!.config.digest;
    const path = join(image.dir, 'blobs', 'sha256', config.slice('sha256:'.length));
    await writeFile(path, Buffer.concat([await readFile(path), Buffer.from(' ')]));
    await expect(pushLayout(registry, image.dir, 'test/bad:latest')).rejects.toThrow(config);
    await expect(pushLayout(registry, image.dir, 'no-tag')).rejects.toThrow(/<repo>:<tag>/);
  });
});
