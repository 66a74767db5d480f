// The artifact library against real registries: Debian's docker-registry on loopback (no referrers API, so the
// `sha256-<hex>` tag fallback) and the project's own referrers-API test server (daemon/test/referrers-registry.ts).
// Push, resolve, pull back byte-identical and path-safe, list referrers both ways with the artifactType filter.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errdefOf, isInvalidArgument, isNotFound, sha256Digest } from '@berth/core';

const isPermissionDenied = (err: unknown) => errdefOf(err) === 'permission-denied';
import { createResolver, type HttpResolver } from '@berth/registry';
import {
  ANNOTATION_CREATED,
  ANNOTATION_TITLE,
  ArtifactMediaType,
  EMPTY_DESCRIPTOR,
  listReferrers,
  listReferrersVia,
  pullArtifact,
  pushArtifact,
  referrersTag,
  resolveArtifact,
} from '../src/artifacts/index.js';
import { startReferrersRegistry, type ReferrersRegistry } from '../../daemon/test/referrers-registry.js';
import { hasRegistry, MEDIA_TYPE_OCI_MANIFEST, startRegistry, type Registry } from '../../daemon/test/registry.js';

const TYPE = 'application/vnd.example.thing.v1';
const SIG = 'application/vnd.example.signature.v1';
const SBOM = 'application/vnd.example.sbom.v1';

describe.skipIf(!hasRegistry())('artifacts against docker-registry (tag fallback)', () => {
  let registry: Registry;
  let resolver: HttpResolver;
  let scratch: string;
  const big = randomBytes(2 * 1024 * 1024 + 5);
  const small = Buffer.from('hello artifact\n');

  beforeAll(async () => {
    registry = await startRegistry();
    resolver = createResolver({ credentials: async () => undefined });
    scratch = await mkdtemp(join(tmpdir(), 'berth-artifacts-'));
    await writeFile(join(scratch, 'big.bin'), big);
  });
  afterAll(async () => {
    resolver?.close();
    await registry?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('pushes the manifest oras writes and pulls the files back byte-identical', async () => {
    const ref = `${registry.host}/test/thing:v1`;
    const desc = await pushArtifact(ref, {
      artifactType: TYPE,
      files: [
        { title: 'notes/hello.txt', mediaType: 'text/plain', data: small },
        { title: 'big.bin', path: join(scratch, 'big.bin') },
      ],
      annotations: { 'com.example.k': 'v' },
    }, { resolver });
    expect(desc.mediaType).toBe(ArtifactMediaType.Manifest);
    expect(desc.artifactType).toBe(TYPE);

    // what the registry holds, byte for byte
    const res = await registry.fetch(`${registry.url}/v2/test/thing/manifests/v1`, { headers: { accept: MEDIA_TYPE_OCI_MANIFEST } });
    const raw = Buffer.from(await res.arrayBuffer());
    expect(sha256Digest(raw)).toBe(desc.digest);
    const manifest = JSON.parse(raw.toString()) as Record<string, unknown> & { layers: { mediaType: string; digest: string; size: number; annotations: Record<string, string> }[]; annotations: Record<string, string> };
    expect(Object.keys(manifest)).toEqual(['schemaVersion', 'mediaType', 'artifactType', 'config', 'layers', 'annotations']);
    expect(manifest.config).toEqual(EMPTY_DESCRIPTOR);
    expect(manifest.layers).toEqual([
      { mediaType: 'text/plain', digest: sha256Digest(small), size: small.length, annotations: { [ANNOTATION_TITLE]: 'notes/hello.txt' } },
      { mediaType: ArtifactMediaType.DefaultLayer, digest: sha256Digest(big), size: big.length, annotations: { [ANNOTATION_TITLE]: 'big.bin' } },
    ]);
    expect(manifest.annotations['com.example.k']).toBe('v');
    expect(manifest.annotations[ANNOTATION_CREATED]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // the empty config blob is really there
    const config = await registry.fetch(`${registry.url}/v2/test/thing/blobs/${EMPTY_DESCRIPTOR.digest}`);
    expect(await config.text()).toBe('{}');

    const resolved = await resolveArtifact(ref, { resolver });
    expect(resolved.descriptor.digest).toBe(desc.digest);
    expect(resolved.manifest.layers.map((l) => l.annotations?.[ANNOTATION_TITLE])).toEqual(['notes/hello.txt', 'big.bin']);

    const out = join(scratch, 'out');
    await mkdir(out);
    const pulled = await pullArtifact(ref, out, { resolver });
    expect(pulled.files.map((f) => f.title)).toEqual(['notes/hello.txt', 'big.bin']);
    expect((await readFile(join(out, 'notes/hello.txt'))).equals(small)).toBe(true);
    expect((await readFile(join(out, 'big.bin'))).equals(big)).toBe(true);
    // no temporary file left behind
    expect((await readdir(out)).sort()).toEqual(['big.bin', 'notes']);
  });

  it('refuses an artifact without a type and config, and unsafe or duplicate titles, before sending anything', async () => {
    const ref = `${registry.host}/test/refused:v1`;
    const attempts = [
      pushArtifact(ref, { files: [{ title: 'a', data: 'x' }] }, { resolver }),
      pushArtifact(ref, { artifactType: TYPE, files: [{ title: '../a', data: 'x' }] }, { resolver }),
      pushArtifact(ref, { artifactType: TYPE, files: [{ title: '/etc/passwd', data: 'x' }] }, { resolver }),
      pushArtifact(ref, { artifactType: TYPE, files: [{ title: 'a', data: 'x' }, { title: 'a', data: 'y' }] }, { resolver }),
      pushArtifact(ref, { artifactType: 'not a type', files: [] }, { resolver }),
    ];
    for (const attempt of attempts) await expect(attempt).rejects.toSatisfy(isInvalidArgument);
    await expect(resolveArtifact(ref, { resolver })).rejects.toSatisfy(isNotFound);
  });

  it('lists attachments through the sha256-<hex> tag, keeps one index, and filters by artifact type', async () => {
    const subjectRef = `${registry.host}/test/subject:v1`;
    const subject = await pushArtifact(subjectRef, { artifactType: TYPE, files: [{ title: 'a.txt', data: 'subject' }] }, { resolver });
    expect(await listReferrers(subjectRef, {}, { resolver })).toEqual([]);
    const sig = await pushArtifact(`${registry.host}/test/subject`, { artifactType: SIG, files: [{ title: 'sig', data: 'signature' }], subject }, { resolver });
    const tagRef = `${registry.host}/test/subject:${referrersTag(subject.digest)}`;
    const firstIndex = (await resolver.resolve(tagRef)).descriptor;
    expect(firstIndex.mediaType).toBe(ArtifactMediaType.Index);
    const sbom = await pushArtifact(`${registry.host}/test/subject`, { artifactType: SBOM, files: [{ title: 'sbom.json', data: '{}' }], subject }, { resolver });

    const listed = await listReferrersVia(subjectRef, {}, { resolver });
    expect(listed.via).toBe('tag');
    expect(listed.referrers.map((r) => [r.digest, r.artifactType])).toEqual([
      [sig.digest, SIG],
      [sbom.digest, SBOM],
    ]);
    expect(listed.referrers[0]!.annotations?.[ANNOTATION_CREATED]).toBeDefined();
    expect((await listReferrers(subjectRef, { artifactType: SBOM }, { resolver })).map((r) => r.digest)).toEqual([sbom.digest]);
    // the index the second push replaced is deleted, as oras-go does
    await expect(resolver.resolve(`${registry.host}/test/subject@${firstIndex.digest}`)).rejects.toSatisfy(isNotFound);
    // the attachment itself is there by digest, untagged
    expect((await resolveArtifact(`${registry.host}/test/subject@${sig.digest}`, { resolver })).manifest.subject?.digest).toBe(subject.digest);
    // pushing the same attachment again adds nothing
    await pushArtifact(`${registry.host}/test/subject`, { artifactType: SIG, files: [{ title: 'sig', data: 'signature' }], subject, annotations: { [ANNOTATION_CREATED]: sig.annotations![ANNOTATION_CREATED]! } }, { resolver });
    expect(await listReferrers(subjectRef, {}, { resolver })).toHaveLength(2);
  });

  describe('pull is path-safe', () => {
    /** Pushes a hand-made manifest whose one layer has `title`, returns its reference. */
    async function hostile(tag: string, titles: string[]): Promise<string> {
      const layers = [];
      for (const title of titles) {
        const blob = await registry.pushBlob('test/hostile', Buffer.from(`content of ${title}`));
        layers.push({ mediaType: 'text/plain', digest: blob.digest, size: blob.size, annotations: { [ANNOTATION_TITLE]: title } });
      }
      await registry.pushBlob('test/hostile', Buffer.from('{}'));
      const { data: _data, ...config } = EMPTY_DESCRIPTOR;
      await registry.pushManifest('test/hostile', tag, { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, artifactType: TYPE, config, layers }, MEDIA_TYPE_OCI_MANIFEST);
      return `${registry.host}/test/hostile:${tag}`;
    }

    it('refuses .., absolute titles and duplicates, writing nothing', async () => {
      const parent = await mkdtemp(join(scratch, 'safe-'));
      const out = join(parent, 'out');
      await mkdir(out);
      for (const [tag, titles] of [
        ['dotdot', ['ok.txt', '../escaped.txt']],
        ['absolute', ['ok.txt', join(parent, 'abs.txt')]],
        ['dup', ['ok.txt', 'ok.txt']],
      ] as const) {
        await expect(pullArtifact(await hostile(tag, [...titles]), out, { resolver }), tag).rejects.toSatisfy(isInvalidArgument);
      }
      expect(await readdir(out)).toEqual([]);
      expect((await readdir(parent)).sort()).toEqual(['out']);
    });

    it('refuses a title through a symlink that leads out of the directory', async () => {
      const parent = await mkdtemp(join(scratch, 'link-'));
      const out = join(parent, 'out');
      const outside = join(parent, 'outside');
      await mkdir(out);
      await mkdir(outside);
      await symlink(outside, join(out, 'sub'));
      await expect(pullArtifact(await hostile('symlink', ['sub/x.txt']), out, { resolver })).rejects.toSatisfy(isPermissionDenied);
      expect(await readdir(outside)).toEqual([]);
    });

    it('replaces a symlink at the target itself instead of writing through it', async () => {
      const parent = await mkdtemp(join(scratch, 'final-'));
      const out = join(parent, 'out');
      await mkdir(out);
      const victim = join(parent, 'victim.txt');
      await writeFile(victim, 'keep me');
      await symlink(victim, join(out, 'x.txt'));
      await pullArtifact(await hostile('final', ['x.txt']), out, { resolver });
      expect(await readFile(victim, 'utf8')).toBe('keep me');
      expect(await readFile(join(out, 'x.txt'), 'utf8')).toBe('content of x.txt');
    });
  });
});

describe('artifacts against a registry with the referrers API', () => {
  let server: ReferrersRegistry;
  let resolver: HttpResolver;

  beforeAll(async () => {
    server = await startReferrersRegistry();
    resolver = createResolver({ credentials: async () => undefined });
  });
  afterAll(async () => {
    resolver?.close();
    await server?.stop();
  });

  it('lists referrers through the API with its artifactType filter and never writes the fallback tag', async () => {
    const subjectRef = `${server.host}/test/app:v1`;
    const subject = await pushArtifact(subjectRef, { artifactType: TYPE, files: [{ title: 'app', data: 'app' }] }, { resolver });
    const sig = await pushArtifact(`${server.host}/test/app`, { artifactType: SIG, files: [{ title: 'sig', data: 's' }], subject }, { resolver });
    const sbom = await pushArtifact(`${server.host}/test/app`, { artifactType: SBOM, files: [{ title: 'sbom', data: 'b' }], subject }, { resolver });
    const all = await listReferrersVia(subjectRef, {}, { resolver });
    expect(all.via).toBe('api');
    expect(all.referrers.map((r) => r.digest).sort()).toEqual([sig.digest, sbom.digest].sort());
    server.requests.length = 0;
    const sboms = await listReferrersVia(subjectRef, { artifactType: SBOM }, { resolver });
    expect(sboms.referrers.map((r) => r.digest)).toEqual([sbom.digest]);
    expect(server.requests.some((r) => r.method === 'GET' && r.path === `/v2/test/app/referrers/${subject.digest}?artifactType=${encodeURIComponent(SBOM)}`)).toBe(true);
    // nothing read or written under the fallback tag
    const tag = referrersTag(subject.digest);
    expect(server.requests.filter((r) => r.path.includes(tag))).toEqual([]);
    await expect(resolver.resolve(`${server.host}/test/app:${tag}`)).rejects.toSatisfy(isNotFound);
  });

  it('follows Link pages', async () => {
    const subjectRef = `${server.host}/test/paged:v1`;
    const subject = await pushArtifact(subjectRef, { artifactType: TYPE, files: [] }, { resolver });
    const pushed = [];
    for (let i = 0; i < 3; i++) pushed.push((await pushArtifact(`${server.host}/test/paged`, { artifactType: SIG, files: [{ title: `s${i}`, data: String(i) }], subject }, { resolver })).digest);
    server.pageSize = 1;
    try {
      server.requests.length = 0;
      expect((await listReferrers(subjectRef, {}, { resolver })).map((r) => r.digest).sort()).toEqual(pushed.sort());
      expect(server.requests.filter((r) => r.path.startsWith('/v2/test/paged/referrers/')).length).toBe(3);
    } finally {
      server.pageSize = undefined;
    }
  });
});

