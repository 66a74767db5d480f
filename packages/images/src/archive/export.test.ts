import { createReadStream, createWriteStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { expectFailure } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { exportArchive } from './export.js';
import { importArchive } from './import.js';
import { dockerFixture, HOST_ARCH, ociFixture, run, services, sha, useServices, type Services } from './testing-fixtures/archives.js';

const ns = { namespace: 'default' };
let s: Services;
let work: string;

useServices((services, dir) => {
  s = services;
  work = dir;
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

describe('streaming', () => {
  it('imports and exports a 128 MiB blob without holding it in memory', async () => {
    // An OCI layout whose single "layer" is a 128 MiB file: held whole, it would show in arrayBuffers.
    const size = 128 * 1024 * 1024;
    const dir = join(work, 'big');
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(1 << 20, 7);
    const tmp = join(dir, 'layer');
    const fh = await open(tmp, 'w');
    for (let i = 0; i < size / chunk.length; i++) {
      await fh.write(chunk);
      hash.update(chunk);
    }
    await fh.close();
    const layerDigest = `sha256:${hash.digest('hex')}`;
    await run('mv', [tmp, join(dir, 'blobs', 'sha256', layerDigest.slice(7))]);
    const config = Buffer.from(JSON.stringify({ architecture: HOST_ARCH, os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] } }));
    await writeFile(join(dir, 'blobs', 'sha256', sha(config).slice(7)), config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size }],
      }),
    );
    await writeFile(join(dir, 'blobs', 'sha256', sha(manifest).slice(7)), manifest);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(
      join(dir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: { 'io.containerd.image.name': 'big.test/x:1' } }] }),
    );
    const tar = join(work, 'big.tar');
    await run('tar', ['-cf', tar, '-C', dir, 'oci-layout', 'index.json', 'blobs']);
    await rm(dir, { recursive: true });

    let peak = 0;
    const base = process.memoryUsage().arrayBuffers;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - base)), 5);
    try {
      await importArchive(s, ns, createReadStream(tar, { highWaterMark: 1 << 20 }));
      expect((await s.content.info(ns, layerDigest)).size).toBe(size);
      const out = await exportTo(s, join(work, 'big-out.tar'), ['big.test/x:1']);
      expect((await run('tar', ['-tvf', out])).stdout).toContain(layerDigest.slice(7));
    } finally {
      clearInterval(sampler);
    }
    // Generous: what is in flight plus garbage not yet collected has stayed near 32 MiB; the whole blob is 128.
    expect(peak).toBeLessThan(size / 2);
  }, 120_000);
});
