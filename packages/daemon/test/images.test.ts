// Images acceptance: Debian's real ctr against a berthd process and Debian's docker-registry on loopback. ctr pulls
// client-side (it talks HTTP to the registry itself and drives berthd's Content, Leases, Images, Diff and Snapshots
// services), so every `ctr images` command of issue 9's list exercises the Images service and the services a pull
// needs. The images are built here from files and GNU tar (no downloads): a two-layer image with a whiteout, and a
// two-platform index.
import { createHash } from 'node:crypto';
import { copyFile, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { MNT_DETACH, umount2 } from '@berth/sys';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { unaryCall } from './grpc-raw.js';
import { ctrTable, expectOk, hasCtr, hasRoot, isMounted, QUIET_GC, run, startBerthd, watchCtrEvents, type Berthd } from './harness.js';
import {
  hasRegistry,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_MANIFEST,
  startRegistry,
  type Registry,
} from './registry.js';

const IMAGES = 'containerd.services.images.v1.Images';
const GOARCH = process.arch === 'x64' ? 'amd64' : process.arch;
const OTHER_ARCH = GOARCH === 'amd64' ? 'arm64' : 'amd64';

const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

interface Layer {
  readonly blob: Buffer;
  readonly digest: string;
  readonly diffId: string;
}

/** A gzipped layer of a directory tree, made with GNU tar (numeric root ownership, as image builders write). */
async function tarLayer(dir: string): Promise<Layer> {
  const r = await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '--sort=name', '-C', dir, '-cf', '-', '.']);
  if (r.code !== 0) throw new Error(`tar failed: ${r.stderr}`);
  const blob = gzipSync(r.stdoutBuffer);
  return { blob, digest: sha256(blob), diffId: sha256(r.stdoutBuffer) };
}

interface Built {
  readonly manifest: Buffer;
  readonly manifestDigest: string;
  readonly config: Buffer;
  readonly layers: readonly Layer[];
  /** Chain IDs of the layers, bottom first (containerd's identity.ChainIDs). */
  readonly chain: readonly string[];
}

/** Pushes the config and layers, then the manifest by digest (and by tag when given). */
async function pushImage(registry: Registry, repo: string, arch: string, layers: readonly Layer[], tag?: string): Promise<Built> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: arch,
      os: 'linux',
      config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const cfg = await registry.pushBlob(repo, config);
  for (const layer of layers) await registry.pushBlob(repo, layer.blob);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: cfg.digest, size: cfg.size },
      layers: layers.map((l) => ({ mediaType: MEDIA_TYPE_OCI_LAYER_GZIP, digest: l.digest, size: l.blob.length })),
    }),
  );
  const manifestDigest = await registry.pushManifest(repo, tag ?? sha256(manifest), manifest, MEDIA_TYPE_OCI_MANIFEST);
  const chain: string[] = [];
  for (const l of layers) chain.push(chain.length === 0 ? l.diffId : sha256(`${chain[chain.length - 1]} ${l.diffId}`));
  return { manifest, manifestDigest, config, layers, chain };
}

async function pushIndex(registry: Registry, repo: string, tag: string, manifests: ReadonlyArray<{ built: Built; arch: string }>): Promise<{ digest: string; size: number }> {
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_INDEX,
      manifests: manifests.map(({ built, arch }) => ({
        mediaType: MEDIA_TYPE_OCI_MANIFEST,
        digest: built.manifestDigest,
        size: built.manifest.length,
        platform: { architecture: arch, os: 'linux' },
      })),
    }),
  );
  return { digest: await registry.pushManifest(repo, tag, index, MEDIA_TYPE_OCI_INDEX), size: index.length };
}

const MEDIA_TYPE_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
const b64url = (s: string): string => Buffer.from(s).toString('base64url');

/**
 * A Docker schema1 manifest, JWS-signed the way registries serve them: the payload without its closing brace, then
 * the signatures, then the tail the protected header names (formatLength/formatTail). containerd's converter strips
 * the signatures by that header and never checks the signature itself, so a dummy one will do.
 */
function schema1Manifest(repo: string, tag: string, arch: string, layers: readonly Layer[]): Buffer {
  // Top layer first, as schema1 lists them; each history entry is the v1 image JSON of that layer.
  const top = [...layers].reverse();
  const payload = JSON.stringify(
    {
      schemaVersion: 1,
      name: repo,
      tag,
      architecture: arch,
      fsLayers: top.map((l) => ({ blobSum: l.digest })),
      history: top.map((_, i) => ({
        v1Compatibility: JSON.stringify({
          id: createHash('sha256').update(`layer ${i}`).digest('hex'),
          created: '2020-01-01T00:00:00Z',
          container_config: { Cmd: ['/bin/sh', '-c', `#(nop) layer ${i}`] },
          ...(i === 0 ? { architecture: arch, os: 'linux', config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] } } : {}),
          throwaway: false,
        }),
      })),
    },
    null,
    3,
  );
  const formatLength = payload.length - 2; // up to the newline before the final brace
  const protectedHeader = b64url(JSON.stringify({ formatLength, formatTail: b64url(payload.slice(formatLength)), time: '2020-01-01T00:00:00Z' }));
  const signatures = `,\n   "signatures": [{"header": {"alg": "ES256"}, "signature": "${b64url('not checked')}", "protected": "${protectedHeader}"}]`;
  return Buffer.from(payload.slice(0, formatLength) + signatures + payload.slice(formatLength));
}

/** A loopback registry of one repository serving a schema1 manifest (Debian's registry refuses to store them). */
async function startSchema1Registry(repo: string, tag: string, manifest: Buffer, blobs: readonly Buffer[]): Promise<{ host: string; requests: string[]; server: Server }> {
  const manifestDigest = sha256(manifest);
  const byDigest = new Map(blobs.map((b) => [sha256(b), b]));
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(`${req.method} ${path}`);
    const send = (status: number, body: Buffer, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Length': String(body.length), 'Docker-Distribution-Api-Version': 'registry/2.0', ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (path === '/v2/') return send(200, Buffer.from('{}'), { 'Content-Type': 'application/json' });
    if (path === `/v2/${repo}/manifests/${tag}` || path === `/v2/${repo}/manifests/${manifestDigest}`) {
      return send(200, manifest, { 'Content-Type': MEDIA_TYPE_SCHEMA1_SIGNED, 'Docker-Content-Digest': manifestDigest });
    }
    const blob = path.startsWith(`/v2/${repo}/blobs/`) ? byDigest.get(path.slice(`/v2/${repo}/blobs/`.length)) : undefined;
    if (blob) return send(200, blob, { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': sha256(blob) });
    return send(404, Buffer.from(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'not found' }] })), { 'Content-Type': 'application/json' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

describe.skipIf(!hasRoot() || !hasCtr() || !hasRegistry())('images through ctr and a loopback registry', () => {
  let daemon: Berthd;
  let registry: Registry;
  let work: string;
  let busybox: Built;
  let busyboxIndex: { digest: string; size: number };
  let multi: { host: Built; other: Built; index: { digest: string; size: number } };
  let ref: string;

  const ctr = (args: string[], namespace = 'default', timeoutMs = 60_000) => daemon.ctr(args, { namespace, timeoutMs });
  const images = async (namespace = 'default') => ctrTable(expectOk(await ctr(['images', 'ls'], namespace)).stdout);
  const snapshots = async (namespace = 'default') => ctrTable(expectOk(await ctr(['snapshots', 'ls'], namespace)).stdout);
  const contentDigests = async (namespace = 'default') =>
    expectOk(await ctr(['content', 'ls', '--quiet'], namespace)).stdout.split('\n').filter((l) => l !== '');

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-images-it-'));
    registry = await startRegistry();
    daemon = await startBerthd({ config: QUIET_GC, logLevel: 'info' });

    // busybox: layer 1 is busybox-static with a shell link and two files, layer 2 whites one out and adds one.
    const l1 = join(work, 'l1');
    await mkdir(join(l1, 'bin'), { recursive: true });
    await mkdir(join(l1, 'etc'));
    await copyFile('/bin/busybox', join(l1, 'bin', 'busybox'));
    await symlink('busybox', join(l1, 'bin', 'sh'));
    await writeFile(join(l1, 'etc', 'hostname'), 'berth\n');
    await writeFile(join(l1, 'etc', 'motd'), 'hello\n');
    const l2 = join(work, 'l2');
    await mkdir(join(l2, 'etc'), { recursive: true });
    await writeFile(join(l2, 'etc', '.wh.motd'), '');
    await writeFile(join(l2, 'etc', 'greeting'), 'hi\n');
    busybox = await pushImage(registry, 'test/busybox', GOARCH, [await tarLayer(l1), await tarLayer(l2)]);
    busyboxIndex = await pushIndex(registry, 'test/busybox', 'latest', [{ built: busybox, arch: GOARCH }]);
    ref = `${registry.host}/test/busybox:latest`;

    // multi: one small layer per platform, under one index.
    const layerOf = async (name: string, text: string) => {
      const dir = join(work, name);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'arch'), text);
      return tarLayer(dir);
    };
    const host = await pushImage(registry, 'test/multi', GOARCH, [await layerOf('m-host', `${GOARCH}\n`)]);
    const other = await pushImage(registry, 'test/multi', OTHER_ARCH, [await layerOf('m-other', `${OTHER_ARCH}\n`)]);
    const index = await pushIndex(registry, 'test/multi', 'latest', [
      { built: host, arch: GOARCH },
      { built: other, arch: OTHER_ARCH },
    ]);
    multi = { host, other, index };
  }, 120_000);

  const mounted: string[] = [];
  afterEach(async () => {
    // A failed test may leave its mount: detach it so nothing outlives the test.
    for (const target of mounted.splice(0)) if (isMounted(target)) await umount2(target, MNT_DETACH);
  });
  afterAll(async () => {
    await daemon?.stop();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('ctr images pull --plain-http fetches and unpacks the chain; ls, check and snapshots ls show it', async () => {
    const pulled = expectOk(await ctr(['images', 'pull', '--plain-http', ref]));
    expect(pulled.stdout).toContain(`unpacking linux/${GOARCH} ${busyboxIndex.digest}...\ndone: `);

    const [row, ...others] = await images();
    expect(others).toEqual([]);
    expect(row).toMatchObject({ REF: ref, TYPE: MEDIA_TYPE_OCI_INDEX, DIGEST: busyboxIndex.digest, PLATFORMS: `linux/${GOARCH}` });

    const check = ctrTable(expectOk(await ctr(['images', 'check'])).stdout);
    expect(check).toEqual([
      expect.objectContaining({ REF: ref, DIGEST: busyboxIndex.digest, STATUS: 'complete (3/3)', UNPACKED: 'true' }),
    ]);

    // A collection now keeps all of it: the image is the root, its gc.ref labels reach the blobs and the snapshots.
    expectOk(await ctr(['leases', 'create', '--id', 'gc-trigger']));
    expectOk(await ctr(['leases', 'rm', '--sync', 'gc-trigger']));

    // The chain: the bottom layer's snapshot is its diff ID, the top one's parent is it; both committed.
    const chain = (await snapshots()).map((s) => [s.KEY, s.PARENT, s.KIND]).sort();
    expect(chain).toEqual([
      [busybox.chain[0], '', 'Committed'],
      [busybox.chain[1], busybox.chain[0], 'Committed'],
    ].sort());

    // Every blob is in the content store, with the labels ctr set on the way (gc refs, uncompressed, source);
    // ctr content ls shortens digests to 8 hex digits.
    const blobs = [busyboxIndex.digest, busybox.manifestDigest, sha256(busybox.config), ...busybox.layers.map((l) => l.digest)];
    expect((await contentDigests()).sort()).toEqual([...blobs].sort());
    const content = ctrTable(expectOk(await ctr(['content', 'ls'])).stdout);
    const labelsOf = (digest: string) => content.find((r) => r.DIGEST === digest.slice(0, 15))?.LABELS;
    expect(labelsOf(busybox.layers[0]!.digest)).toContain(`containerd.io/uncompressed=${busybox.layers[0]!.diffId}`);
    expect(labelsOf(sha256(busybox.config))).toContain(`containerd.io/gc.ref.snapshot.overlayfs=${busybox.chain[1]}`);
    expect(labelsOf(busyboxIndex.digest)).toContain('containerd.io/distribution.source.127.0.0.1=test/busybox');

    // ctr images mount shows the unpacked tree: layer 2's whiteout removed motd, its file is there, links kept.
    const target = join(work, 'mnt');
    await mkdir(target);
    mounted.push(target);
    expectOk(await ctr(['images', 'mount', ref, target]));
    expect(isMounted(target)).toBe(true);
    expect(await readFile(join(target, 'etc', 'hostname'), 'utf8')).toBe('berth\n');
    expect(await readFile(join(target, 'etc', 'greeting'), 'utf8')).toBe('hi\n');
    await expect(lstat(join(target, 'etc', 'motd'))).rejects.toThrow(/ENOENT/);
    await expect(lstat(join(target, 'etc', '.wh.motd'))).rejects.toThrow(/ENOENT/);
    expect(await readlink(join(target, 'bin', 'sh'))).toBe('busybox');
    expect(expectOk(await run(join(target, 'bin', 'busybox'), ['echo', 'from the image'])).stdout).toBe('from the image\n');
    expectOk(await ctr(['images', 'unmount', '--rm', target]));
    expect(isMounted(target)).toBe(false);

    // Pulling again finds everything there and succeeds.
    expectOk(await ctr(['images', 'pull', '--plain-http', ref]));
    expect((await images()).map((r) => r.REF)).toEqual([ref]);
  }, 120_000);

  it('ctr images tag and label update the image, and ctr events sees /images/* with their payloads', async () => {
    const events = await watchCtrEvents(daemon);
    try {
      const tagged = `${registry.host}/test/busybox:tagged`;
      expectOk(await ctr(['images', 'tag', ref, tagged]));
      expectOk(await ctr(['images', 'label', tagged, 'team=berth', 'tier=test']));
      expectOk(await ctr(['images', 'label', tagged, 'tier=']));
      const rows = await images();
      expect(rows.map((r) => [r.REF, r.DIGEST, r.LABELS]).sort()).toEqual(
        [
          [ref, busyboxIndex.digest, '-'],
          [tagged, busyboxIndex.digest, 'team=berth'],
        ].sort(),
      );
      // Tagging a name in use fails unless --force.
      expect((await ctr(['images', 'tag', ref, tagged])).code).not.toBe(0);
      expectOk(await ctr(['images', 'tag', '--force', ref, tagged]));
      expectOk(await ctr(['images', 'rm', tagged]));
      expect((await images()).map((r) => r.REF)).toEqual([ref]);

      const expected = [
        `/images/create {"name":"${tagged}"}`,
        `/images/update {"name":"${tagged}","labels":{"team":"berth","tier":"test"}}`,
        `/images/update {"name":"${tagged}","labels":{"team":"berth"}}`,
        // tag --force of a name in use: ctr deletes it and creates it again.
        `/images/delete {"name":"${tagged}"}`,
        `/images/create {"name":"${tagged}"}`,
        `/images/delete {"name":"${tagged}"}`,
      ];
      const mine = () =>
        events.output()
          .split('\n')
          .map((line) => line.split(' '))
          .filter((f) => f[4] === 'default' && f[5]?.startsWith('/images/'))
          .map((f) => f.slice(5).join(' '));
      const until = Date.now() + 10_000;
      while (mine().length < expected.length && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(mine()).toEqual(expected);
    } finally {
      events.stop();
    }
  }, 60_000);

  it('ctr images export writes an OCI archive that ctr images import brings back, unpacked', async () => {
    const archive = join(work, 'busybox.tar');
    expectOk(await ctr(['images', 'export', archive, ref]));
    const listing = expectOk(await run('tar', ['-tf', archive])).stdout.split('\n');
    expect(listing).toEqual(expect.arrayContaining(['index.json', 'oci-layout', `blobs/sha256/${busybox.layers[0]!.digest.slice(7)}`]));

    // Into another namespace: nothing of it is there before.
    const ns = 'imported';
    expect(await contentDigests(ns)).toEqual([]);
    const imported = expectOk(await ctr(['images', 'import', archive], ns));
    expect(imported.stdout).toContain(ref);
    expect((await images(ns)).map((r) => [r.REF, r.DIGEST])).toEqual([[ref, busyboxIndex.digest]]);
    expect(ctrTable(expectOk(await ctr(['images', 'check'], ns)).stdout)).toEqual([
      expect.objectContaining({ REF: ref, STATUS: 'complete (3/3)', UNPACKED: 'true' }),
    ]);
    expect((await snapshots(ns)).map((s) => s.KEY).sort()).toEqual([...busybox.chain].sort());

    // rm --sync collects what only the image held: content and snapshots of the namespace are empty afterwards.
    expectOk(await ctr(['images', 'rm', '--sync', ref], ns));
    expect(await images(ns)).toEqual([]);
    expect(await contentDigests(ns)).toEqual([]);
    expect(await snapshots(ns)).toEqual([]);
  }, 120_000);

  it('ctr images pull --all-platforms fetches and unpacks every platform of an index', async () => {
    const ns = 'multi';
    const multiRef = `${registry.host}/test/multi:latest`;
    const pulled = expectOk(await ctr(['images', 'pull', '--plain-http', '--all-platforms', multiRef], ns));
    expect(pulled.stdout).toContain(`unpacking linux/${GOARCH} ${multi.index.digest}...\n`);
    expect(pulled.stdout).toContain(`unpacking linux/${OTHER_ARCH} ${multi.index.digest}...\n`);
    expect(pulled.stdout).toContain('done: ');
    const [row] = await images(ns);
    expect(row?.PLATFORMS.split(',').sort()).toEqual([`linux/${GOARCH}`, `linux/${OTHER_ARCH}`].sort());
    const digests = await contentDigests(ns);
    for (const built of [multi.host, multi.other]) {
      expect(digests).toEqual(expect.arrayContaining([built.manifestDigest, sha256(built.config), built.layers[0]!.digest]));
    }
    expect((await snapshots(ns)).map((s) => s.KEY).sort()).toEqual([multi.host.chain[0], multi.other.chain[0]].sort());

    // Without --all-platforms only the host's manifest is fetched.
    const single = 'multi-single';
    expectOk(await ctr(['images', 'pull', '--plain-http', multiRef], single));
    const some = await contentDigests(single);
    expect(some).toEqual(expect.arrayContaining([multi.index.digest, multi.host.manifestDigest, multi.host.layers[0]!.digest]));
    expect(some).not.toContain(multi.other.layers[0]!.digest);
    expect((await snapshots(single)).map((s) => s.KEY)).toEqual([multi.host.chain[0]]);

    for (const n of [ns, single]) expectOk(await ctr(['images', 'rm', '--sync', multiRef], n));
    expect(await contentDigests(ns)).toEqual([]);
    expect(await snapshots(single)).toEqual([]);
  }, 120_000);

  it('ctr content fetch stores the blobs and the image without unpacking', async () => {
    const ns = 'fetched';
    expectOk(await ctr(['content', 'fetch', '--plain-http', ref], ns));
    expect((await images(ns)).map((r) => [r.REF, r.DIGEST])).toEqual([[ref, busyboxIndex.digest]]);
    const digests = await contentDigests(ns);
    expect(digests.sort()).toEqual(
      [busyboxIndex.digest, busybox.manifestDigest, sha256(busybox.config), ...busybox.layers.map((l) => l.digest)].sort(),
    );
    expect(await snapshots(ns)).toEqual([]);
    expect(ctrTable(expectOk(await ctr(['images', 'check'], ns)).stdout)).toEqual([
      expect.objectContaining({ REF: ref, STATUS: 'complete (3/3)', UNPACKED: 'false' }),
    ]);
    expectOk(await ctr(['images', 'rm', '--sync', ref], ns));
    expect(await contentDigests(ns)).toEqual([]);
  }, 120_000);

  it('ctr images pull of a Docker schema1 image converts it to an OCI manifest and unpacks it', async () => {
    const ns = 'schema1';
    const manifest = schema1Manifest('test/old', 'v1', GOARCH, busybox.layers);
    const old = await startSchema1Registry('test/old', 'v1', manifest, busybox.layers.map((l) => l.blob));
    try {
      const oldRef = `${old.host}/test/old:v1`;
      expectOk(await ctr(['images', 'pull', '--plain-http', oldRef], ns));
      // The image names the converted manifest, not the schema1 document.
      const [row, ...others] = await images(ns);
      expect(others).toEqual([]);
      expect(row).toMatchObject({ REF: oldRef, TYPE: MEDIA_TYPE_OCI_MANIFEST, PLATFORMS: `linux/${GOARCH}` });
      expect(row!.DIGEST).not.toBe(sha256(manifest));
      // Same layers, so the same diff IDs and the same chain as the OCI image.
      expect((await snapshots(ns)).map((s) => s.KEY).sort()).toEqual([...busybox.chain].sort());
      expect(ctrTable(expectOk(await ctr(['images', 'check'], ns)).stdout)).toEqual([
        expect.objectContaining({ REF: oldRef, STATUS: 'complete (3/3)', UNPACKED: 'true' }),
      ]);
      expect(old.requests).toEqual(expect.arrayContaining([`GET /v2/test/old/blobs/${busybox.layers[0]!.digest}`]));
      expectOk(await ctr(['images', 'rm', '--sync', oldRef], ns));
      expect(await contentDigests(ns)).toEqual([]);
      expect(await snapshots(ns)).toEqual([]);
    } finally {
      await new Promise((resolve) => old.server.close(resolve));
    }
  }, 120_000);

  it('ctr images rm --sync of the last name collects the content and the unpacked snapshots', async () => {
    expect((await snapshots()).length).toBe(2);
    expectOk(await ctr(['images', 'rm', '--sync', ref]));
    expect(await images()).toEqual([]);
    expect(await contentDigests()).toEqual([]);
    expect(await snapshots()).toEqual([]);
    // A name that is not there: ctr reports it and fails.
    const missing = await ctr(['images', 'rm', ref]);
    expect(missing.stderr).toContain('not found');
  }, 60_000);

  it('refuses bad Images requests over gRPC with containerd codes, and keeps serving', async () => {
    const md = { 'containerd-namespace': 'grpc-refusals' };
    const target = { media_type: MEDIA_TYPE_OCI_MANIFEST, digest: sha256('x'), size: 1, annotations: {} };
    const cases: Array<[string, unknown, number, string]> = [
      ['Create', { image: { name: '', target } }, 3, 'Image.Name required'],
      ['Create', { image: { name: 'a' } }, 3, 'Target.Digest "" invalid'],
      ['Create', { image: { name: 'a', target: { ...target, size: 0 } } }, 3, 'Target.Size must be greater than zero'],
      ['Create', { image: { name: 'a', target: { ...target, media_type: '' } } }, 3, 'Target.MediaType must be set'],
      ['Create', { image: { name: 'a', target: { ...target, digest: 'sha256:zz' } } }, 3, 'invalid checksum digest'],
      ['Update', { image: { name: 'missing', target }, update_mask: { paths: ['labels'] } }, 5, 'image "missing": not found'],
      ['Get', { name: 'missing' }, 5, 'image "missing": not found'],
      ['Delete', { name: 'missing', sync: true }, 5, 'image "missing": not found'],
      ['List', { filters: ['labels.a=='] }, 3, ''],
    ];
    for (const [method, request, code, message] of cases) {
      const r = await unaryCall(daemon.address, IMAGES, method, request, md);
      expect(r.error?.code, `${method} ${JSON.stringify(request)}`).toBe(code);
      expect(r.error?.details).toContain(message);
    }
    const created = await unaryCall(daemon.address, IMAGES, 'Create', { image: { name: 'a', target } }, md);
    expect(created.error).toBeUndefined();
    const again = await unaryCall(daemon.address, IMAGES, 'Create', { image: { name: 'a', target } }, md);
    expect(again.error?.code).toBe(6);
    expect(again.error?.details).toMatch(/^image "a": already exists/);
    const badPath = await unaryCall(daemon.address, IMAGES, 'Update', { image: { name: 'a', target }, update_mask: { paths: ['target.size'] } }, md);
    expect(badPath.error?.code).toBe(3);
    expect(badPath.error?.details).toMatch(/^cannot update "target.size" field on image "a"/);
    const noNamespace = await unaryCall(daemon.address, IMAGES, 'List', { filters: [] }, {});
    expect(noNamespace.error?.code).toBe(9);
    const listed = await unaryCall<{ images: Array<{ name: string }> }>(daemon.address, IMAGES, 'List', { filters: [] }, md);
    expect(listed.response?.images.map((i) => i.name)).toEqual(['a']);
    expect(daemon.alive).toBe(true);
    expect((await unaryCall(daemon.address, IMAGES, 'Delete', { name: 'a', sync: true }, md)).error).toBeUndefined();
  }, 60_000);
});
