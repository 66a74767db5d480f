import { createReadStream } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importArchive } from './archive/import.js';
import { HOST_ARCH, ociFixture, useServices, type Services } from './archive/testing-fixtures/archives.js';
import { chainIds } from './identity.js';
import { checkImage, formatImageTree, imagePlatforms, imageRootFs, imageSize, imageTree, resolveManifest } from './inspect.js';
import { defaultMatcher, onlyPlatform } from './platforms.js';

const ns = { namespace: 'default' };
let s: Services;
let work: string;

useServices((services, dir) => {
  s = services;
  work = dir;
});

describe('image inspection over the content store', () => {
  it('resolves the platform manifest, size, platforms, completeness, chain ID and tree of an imported index', async () => {
    const f = await ociFixture(work);
    const { images } = await importArchive(s, ns, createReadStream(f.tar));
    const target = images[0]!.target;
    const host = HOST_ARCH === 'amd64' ? f.amd64 : f.arm64;
    const other = HOST_ARCH === 'amd64' ? f.arm64 : f.amd64;
    expect((await resolveManifest(s.content, ns, target, defaultMatcher())).descriptor.digest).toBe(host.manifest.digest);
    expect((await resolveManifest(s.content, ns, target, onlyPlatform({ os: 'linux', architecture: other.architecture }))).descriptor.digest).toBe(other.manifest.digest);
    expect(await imageSize(s.content, ns, target, defaultMatcher())).toBe(f.index.size + host.manifest.size + host.config.size + host.layer.size);
    expect((await imagePlatforms(s.content, ns, target)).map((p) => p.architecture).sort()).toEqual(['amd64', 'arm64']);
    expect(await checkImage(s.content, ns, target, defaultMatcher())).toMatchObject({ available: true, missing: [] });
    expect((await imageRootFs(s.content, ns, target, defaultMatcher())).chainId).toBe(chainIds([host.diffId]).at(-1));

    await s.content.delete(ns, host.layer.digest);
    const check = await checkImage(s.content, ns, target, defaultMatcher());
    expect(check.missing.map((d) => d.digest)).toEqual([host.layer.digest]);
    expect(check.present).toHaveLength(1);
    const tree = formatImageTree(await imageTree(s.content, ns, target));
    expect(tree.split('\n')[0]).toContain(f.index.digest);
    expect(tree).toContain(`${host.layer.digest} ${host.layer.size} (missing)`);
    expect(tree).toMatch(new RegExp(`  application/vnd.oci.image.manifest.v1\\+json ${other.manifest.digest} \\d+ linux/${other.architecture}`));
  });

  it('reports an image whose manifest is gone as unavailable', async () => {
    const f = await ociFixture(work);
    const { images } = await importArchive(s, ns, createReadStream(f.tar));
    const host = HOST_ARCH === 'amd64' ? f.amd64 : f.arm64;
    await s.content.delete(ns, host.manifest.digest);
    expect(await checkImage(s.content, ns, images[1]!.target, defaultMatcher())).toMatchObject({ available: false, present: [] });
  });
});
