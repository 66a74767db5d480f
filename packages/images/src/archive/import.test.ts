import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readBlob } from '@berth/core';
import { expectFailure } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { importArchive } from './import.js';
import { readDocument } from './documents.js';
import { dockerFixture, HOST_ARCH, ociFixture, run, sha, useServices, type Services } from './testing-fixtures/archives.js';

const ns = { namespace: 'default' };
let s: Services;
let work: string;

useServices((services, dir) => {
  s = services;
  work = dir;
});

async function readAll(sv: Services, digest: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of readBlob(sv.content, ns, digest)) parts.push(c);
  return Buffer.concat(parts);
}

const labelsOf = async (digest: string) => (await s.content.info(ns, digest)).labels;

describe('importArchive of an OCI image layout', () => {
  it('stores every blob, names images from both annotations and labels the host platform for GC', async () => {
    const f = await ociFixture(work);
    const { index, images } = await importArchive(s, ns, createReadStream(f.tar), { baseName: 'example.test/base' });
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.digest).toBe(sha(await readFile(join(f.dir, 'index.json'))));
    expect(images.map((i) => i.name)).toEqual(['example.test/img:1', 'example.test/base:latest']);
    expect(images[0]?.target.digest).toBe(f.index.digest);
    const host = HOST_ARCH === 'amd64' ? f.amd64 : f.arm64;
    const other = HOST_ARCH === 'amd64' ? f.arm64 : f.amd64;
    expect(images[1]?.target.digest).toBe(host.manifest.digest);
    // All content arrives (containerd imports every file of the tar); only the chosen platform is referenced.
    for (const b of [host.layer, host.config, other.layer, other.manifest]) expect((await s.content.info(ns, b.digest)).size).toBe(b.size);
    expect(await labelsOf(f.index.digest)).toEqual({ 'containerd.io/gc.ref.content.m.0': host.manifest.digest });
    expect(await labelsOf(host.manifest.digest)).toEqual({
      'containerd.io/gc.ref.content.config': host.config.digest,
      'containerd.io/gc.ref.content.l.0': host.layer.digest,
    });
    expect(await labelsOf(other.manifest.digest)).toEqual({});
    // The lease import made is gone once the images hold the content.
    expect(await s.leases.list(ns)).toEqual([]);
  });

  it('labels every platform with all, keeps the index with indexName, and prefixes bare tags by date by default', async () => {
    const f = await ociFixture(work);
    const { images } = await importArchive(s, ns, createReadStream(f.tar), { platforms: 'all', indexName: 'kept/index:1', digests: true });
    const names = images.map((i) => i.name);
    expect(names[0]).toBe('kept/index:1');
    expect(names).toContain('example.test/img:1');
    expect(names.find((n) => /^import-\d{4}-\d\d-\d\d:latest$/.test(n))).toBeDefined();
    expect(names.filter((n) => n.includes('@sha256:'))).toHaveLength(2);
    expect(Object.values(await labelsOf(f.index.digest)).sort()).toEqual([f.amd64.manifest.digest, f.arm64.manifest.digest].sort());
    expect(await labelsOf(f.arm64.manifest.digest)).toHaveProperty(['containerd.io/gc.ref.content.l.0'], f.arm64.layer.digest);
  });

  it('updates the target of an image that exists instead of failing', async () => {
    const f = await ociFixture(work);
    await s.images.create(ns, { name: 'example.test/img:1', target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha('x'), size: 1 } });
    const { images } = await importArchive(s, ns, createReadStream(f.tar), { labels: { a: 'b' } });
    expect(images[0]).toMatchObject({ name: 'example.test/img:1', labels: { a: 'b' }, target: { digest: f.index.digest } });
  });

  it('refuses a blob whose bytes do not match its path, naming it, and leaves no ingest behind', async () => {
    const f = await ociFixture(work);
    const victim = f.amd64.config.digest.slice(7);
    await writeFile(join(f.dir, 'blobs', 'sha256', victim), '{"tampered":true}');
    const tar = join(work, 'bad.tar');
    await run('tar', ['-cf', tar, '-C', f.dir, 'oci-layout', 'index.json', 'blobs']);
    const err = await expectFailure(importArchive(s, ns, createReadStream(tar)), 'invalid-argument');
    expect(err.message).toContain(victim);
    expect(await s.content.listStatuses(ns)).toEqual([]);
    await expectFailure(s.content.info(ns, f.amd64.config.digest), 'not-found');
    expect(await s.images.list(ns)).toEqual([]);
  });

  it('says what is wrong with input that is no image archive, and keeps working afterwards', async () => {
    await expectFailure(importArchive(s, ns, (async function* () {
      yield Buffer.from('not a tar at all, just text\n'.repeat(40));
    })()), 'invalid-argument');
    const empty = join(work, 'empty.tar');
    await writeFile(join(work, 'file'), 'x');
    await run('tar', ['-cf', empty, '-C', work, 'file']);
    await expectFailure(importArchive(s, ns, createReadStream(empty)), 'invalid-argument', /unrecognized image format/);
    const f = await ociFixture(work);
    await writeFile(join(f.dir, 'oci-layout'), '{"imageLayoutVersion":"9.9.9"}');
    const v9 = join(work, 'v9.tar');
    await run('tar', ['-cf', v9, '-C', f.dir, 'oci-layout', 'index.json', 'blobs']);
    await expectFailure(importArchive(s, ns, createReadStream(v9)), 'invalid-argument', /unsupported OCI version 9\.9\.9/);
    expect((await importArchive(s, ns, createReadStream(f.tar))).images.length).toBe(2);
  });

  it('fails with not-found when no manifest matches the platform asked for', async () => {
    // index.json lists the platform manifests themselves (an entry without a platform would match any, as in containerd).
    const f = await ociFixture(work, (host) => [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: host.manifest.digest, size: host.manifest.size, platform: { architecture: host.architecture, os: 'linux' }, annotations: { 'io.containerd.image.name': 'x.test/y:1' } }]);
    await expectFailure(importArchive(s, ns, createReadStream(f.tar), { platforms: [{ os: 'linux', architecture: 's390x' }] }), 'not-found');
    expect(await s.images.list(ns)).toEqual([]);
    expect((await importArchive(s, ns, createReadStream(f.tar))).images.map((i) => i.name)).toEqual(['x.test/y:1']);
  });
});

describe('importArchive of a docker save archive', () => {
  it('writes a Docker v2 manifest and an index the way containerd does, with normalized names', async () => {
    const f = await dockerFixture(work, ['busybox:latest', 'example.test/me/app:2']);
    const { index, images } = await importArchive(s, ns, createReadStream(f.tar));
    expect(images.map((i) => i.name)).toEqual(['docker.io/library/busybox:latest', 'example.test/me/app:2']);
    const idx = JSON.parse((await readDocument(s.content, ns, index, 'index')).toString()) as { manifests: { digest: string; size: number; annotations: object; platform: object }[] };
    expect(idx.manifests.map((m) => m.annotations)).toEqual([
      { 'io.containerd.image.name': 'docker.io/library/busybox:latest', 'org.opencontainers.image.ref.name': 'latest' },
      { 'io.containerd.image.name': 'example.test/me/app:2', 'org.opencontainers.image.ref.name': '2' },
    ]);
    expect(idx.manifests[0]?.platform).toEqual({ architecture: HOST_ARCH, os: 'linux' });
    const target = images[0]!.target;
    expect(target.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    const raw = await readAll(s, target.digest);
    expect(sha(raw)).toBe(target.digest);
    // Go's field order: schemaVersion, mediaType, config, layers; an uncompressed layer keeps the plain tar type.
    expect(raw.toString()).toBe(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: f.config.digest, size: f.config.size },
        layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar', digest: f.layer.digest, size: f.layer.size }],
      }),
    );
    expect(await labelsOf(target.digest)).toEqual({ 'containerd.io/gc.ref.content.config': f.config.digest, 'containerd.io/gc.ref.content.l.0': f.layer.digest });
  });

  it('refuses a manifest.json that names a layer the archive lacks', async () => {
    const dir = join(work, 'd');
    await run('mkdir', ['-p', dir]);
    await writeFile(join(dir, 'c.json'), '{"os":"linux","architecture":"amd64"}');
    await writeFile(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'c.json', RepoTags: ['x:1'], Layers: ['missing/layer.tar'] }]));
    const tar = join(work, 'd.tar');
    await run('tar', ['-cf', tar, '-C', dir, '.']);
    await expectFailure(importArchive(s, ns, createReadStream(tar)), 'invalid-argument', /missing\/layer\.tar/);
  });
});
