import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { expectFailure } from '@berth/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportArchive } from './export.js';
import { importArchive } from './import.js';
import { dockerFixture, HOST_ARCH, ociFixture, run, services, sha, workDir, type Services } from './testing-fixtures/archives.js';

const ns = { namespace: 'default' };
let s: Services;
let work: string;

beforeEach(async () => {
  s = await services();
  work = await workDir();
});

afterEach(async () => {
  await s.t.close();
  await rm(work, { recursive: true, force: true });
});

async function exportTo(sv: Services, file: string, names: string[], options?: Parameters<typeof exportArchive>[3]): Promise<string> {
  await pipeline(Readable.from(await exportArchive(sv, ns, names, options)), createWriteStream(file));
  return file;
}

/** What GNU tar lists and extracts of an archive. */
async function unpack(file: string): Promise<{ dir: string; names: string[] }> {
  const dir = join(work, `x-${Math.random().toString(36).slice(2)}`);
  await mkdir(dir);
  await run('tar', ['-xf', file, '-C', dir]);
  const { stdout } = await run('tar', ['-tf', file]);
  return { dir, names: stdout.trim().split('\n') };
}

describe('exportArchive', () => {
  it('writes an OCI layout with manifest.json for the host platform that GNU tar reads, every blob under its digest', async () => {
    const f = await ociFixture(work);
    await importArchive(s, ns, createReadStream(f.tar));
    const out = await exportTo(s, join(work, 'out.tar'), ['example.test/img:1']);
    const { dir, names } = await unpack(out);
    const host = HOST_ARCH === 'amd64' ? f.amd64 : f.arm64;
    const other = HOST_ARCH === 'amd64' ? f.arm64 : f.amd64;
    expect(names).toEqual([...names].sort());
    expect(names.slice(0, 2)).toEqual(['blobs/', 'blobs/sha256/']);
    expect(names).toEqual(expect.arrayContaining(['index.json', 'manifest.json', 'oci-layout']));
    const blobs = await readdir(join(dir, 'blobs', 'sha256'));
    expect(blobs.sort()).toEqual([f.index, host.manifest, host.config, host.layer].map((b) => b.digest.slice(7)).sort());
    for (const b of blobs) expect(sha(await readFile(join(dir, 'blobs', 'sha256', b)))).toBe(`sha256:${b}`);
    expect(blobs).not.toContain(other.layer.digest.slice(7));
    expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(index.manifests).toEqual([
      expect.objectContaining({ digest: f.index.digest, annotations: { 'io.containerd.image.name': 'example.test/img:1', 'org.opencontainers.image.ref.name': '1' } }),
    ]);
    expect(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'))).toEqual([
      { Config: `blobs/sha256/${host.config.digest.slice(7)}`, RepoTags: ['example.test/img:1'], Layers: [`blobs/sha256/${host.layer.digest.slice(7)}`] },
    ]);
  });

  it('with allPlatforms carries every manifest, and skipManifestJson leaves manifest.json out', async () => {
    const f = await ociFixture(work);
    await importArchive(s, ns, createReadStream(f.tar), { platforms: 'all' });
    const { dir, names } = await unpack(await exportTo(s, join(work, 'all.tar'), ['example.test/img:1'], { allPlatforms: true, skipManifestJson: true }));
    expect(names).not.toContain('manifest.json');
    const blobs = await readdir(join(dir, 'blobs', 'sha256'));
    for (const b of [f.amd64.layer, f.arm64.layer, f.arm64.config]) expect(blobs).toContain(b.digest.slice(7));
  });

  it('round-trips: what it exports imports into another store as the same images and digests', async () => {
    const d = await dockerFixture(work, ['busybox:latest']);
    const first = await importArchive(s, ns, createReadStream(d.tar));
    const out = await exportTo(s, join(work, 'rt.tar'), ['docker.io/library/busybox:latest']);
    const { dir } = await unpack(out);
    expect(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'))[0].RepoTags).toEqual(['busybox:latest']);
    const other = await services();
    try {
      const again = await importArchive(other, ns, createReadStream(out));
      expect(again.images.map((i) => [i.name, i.target.digest])).toEqual(first.images.map((i) => [i.name, i.target.digest]));
      expect((await other.content.info(ns, d.layer.digest)).size).toBe(d.layer.size);
    } finally {
      await other.t.close();
    }
  });

  it('fails before writing anything for an unknown image or a target that is no manifest', async () => {
    await expectFailure(exportArchive(s, ns, ['nope:1']), 'not-found');
    await s.images.create(ns, { name: 'cfg', target: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha('{}'), size: 2 } });
    await expectFailure(exportArchive(s, ns, ['cfg']), 'invalid-argument', /only manifests may be exported/);
    await expectFailure(exportArchive(s, ns, []), 'invalid-argument');
  });

  it('fails the stream with a clear error when a layer is missing from the content store', async () => {
    const f = await ociFixture(work);
    await importArchive(s, ns, createReadStream(f.tar));
    const host = HOST_ARCH === 'amd64' ? f.amd64 : f.arm64;
    await s.content.delete(ns, host.layer.digest);
    const stream = await exportArchive(s, ns, ['example.test/img:1']);
    let err: unknown;
    try {
      for await (const chunk of stream) void chunk;
    } catch (e) {
      err = e;
    }
    expect(String((err as Error)?.message)).toContain(host.layer.digest);
  });
});
