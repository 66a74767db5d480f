// Import and export between Debian's real ctr and the berth CLI, both against one berthd: `berth images import` of
// what `ctr images export` wrote and `ctr images import` of what `berth images export` wrote give the same images
// and digests; both write the same archive for the same image; a `docker save` archive imports to the same
// manifest and index digests through either; and the other `berth images` commands end to end. The images are the
// project's own (tools/images, from busybox-static); ctr's import unpacks into overlayfs, so this needs root.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { MNT_DETACH, umount2 } from '@berth/sys';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type BuiltImage } from '../../../tools/images/index.mjs';
import { ctrTable, expectOk, hasCtr, hasRoot, isMounted, QUIET_GC, run, startBerthd, type Berthd } from './harness.js';

describe.skipIf(!hasRoot() || !hasCtr() || !existsSync('/bin/busybox'))('berth images import/export against ctr', () => {
  let daemon: Berthd;
  let work: string;
  let tiny: BuiltImage;
  let multi: BuiltImage;
  const mounted: string[] = [];

  const ctr = (args: string[], namespace: string) => daemon.ctr(args, { namespace, timeoutMs: 120_000 });
  const berth = (args: string[], namespace: string) => daemon.berth(['-n', namespace, ...args], { timeoutMs: 120_000 });
  const ctrImages = async (ns: string) => ctrTable(expectOk(await ctr(['images', 'ls'], ns), 'ctr images ls').stdout).map((r) => [r.REF, r.DIGEST]);
  const contentOf = async (ns: string) => expectOk(await ctr(['content', 'ls', '--quiet'], ns)).stdout.split('\n').filter(Boolean);

  /** A layout dir as a tarball, GNU tar's way. */
  const tarLayout = async (dir: string, out: string) => {
    expectOk(await run('tar', ['-cf', out, '-C', dir, 'oci-layout', 'index.json', 'blobs']), 'tar');
    return out;
  };
  /** An archive extracted by GNU tar, with its entry names. */
  const extract = async (file: string) => {
    const dir = await mkdtemp(join(work, 'x-'));
    expectOk(await run('tar', ['-xf', file, '-C', dir]), 'tar -x');
    return { dir, names: expectOk(await run('tar', ['-tf', file])).stdout.split('\n').filter(Boolean) };
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-archive-it-'));
    tiny = await buildImage('tiny', join(work, 'tiny'));
    multi = await buildImage('multi', join(work, 'multi'));
    daemon = await startBerthd({ config: QUIET_GC });
  }, 120_000);

  afterEach(async () => {
    for (const target of mounted.splice(0)) if (isMounted(target)) await umount2(target, MNT_DETACH);
  });

  afterAll(async () => {
    await daemon?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('berth imports an OCI layout tarball; ctr exports it; berth imports that into another namespace: same digests', async () => {
    const layoutTar = await tarLayout(tiny.dir, join(work, 'tiny.tar'));
    const imported = expectOk(await berth(['images', 'import', '--no-unpack', '--base-name', 'test/tiny', layoutTar], 'a1'), 'berth images import');
    expect(imported.stdout).toBe(`test/tiny:latest ${tiny.target.digest}\n`);
    expect(await ctrImages('a1')).toEqual([['test/tiny:latest', tiny.target.digest]]);
    // ctr sees it complete (berth imports every blob and labels them for the garbage collector).
    expect(ctrTable(expectOk(await ctr(['images', 'check'], 'a1')).stdout)[0]).toMatchObject({ STATUS: 'complete (2/2)', UNPACKED: 'false' });

    const fromCtr = join(work, 'ctr-tiny.tar');
    expectOk(await ctr(['images', 'export', fromCtr, 'test/tiny:latest'], 'a1'), 'ctr images export');
    // This time unpacked, as ctr's import does: the chain is in overlayfs and ctr sees it.
    const again = expectOk(await berth(['images', 'import', fromCtr], 'a2'), 'berth images import of ctr export');
    expect(again.stdout).toBe(`unpacking test/tiny:latest (${tiny.target.digest})...done\n`);
    expect(await ctrImages('a2')).toEqual([['test/tiny:latest', tiny.target.digest]]);
    expect(ctrTable(expectOk(await ctr(['images', 'check'], 'a2')).stdout)[0]).toMatchObject({ STATUS: 'complete (2/2)', UNPACKED: 'true' });
    const chain = tiny.manifests[0]!.layers.map((l) => l.diffId);
    expect(ctrTable(expectOk(await ctr(['snapshots', 'ls'], 'a2')).stdout).map((r) => r.KEY)).toEqual(expect.arrayContaining([chain[0]]));
    // Every blob of the image arrived (each archive's index.json is a blob too, unreferenced once the lease is gone).
    expect(await contentOf('a2')).toEqual(expect.arrayContaining(await contentOf('a1')));
  }, 180_000);

  it('ctr imports (and unpacks) what berth exports, and both write the same archive for the same image', async () => {
    const layoutTar = await tarLayout(tiny.dir, join(work, 'tiny-b.tar'));
    expectOk(await berth(['images', 'import', '--no-unpack', '--base-name', 'test/tiny', layoutTar], 'b1'));
    const fromBerth = join(work, 'berth-tiny.tar');
    const fromCtr = join(work, 'ctr-tiny-b.tar');
    expectOk(await berth(['images', 'export', fromBerth, 'test/tiny:latest'], 'b1'), 'berth images export');
    expectOk(await ctr(['images', 'export', fromCtr, 'test/tiny:latest'], 'b1'));

    const b = await extract(fromBerth);
    const c = await extract(fromCtr);
    expect(b.names).toEqual(c.names);
    for (const file of ['index.json', 'manifest.json', 'oci-layout']) {
      expect(await readFile(join(b.dir, file), 'utf8'), file).toBe(await readFile(join(c.dir, file), 'utf8'));
    }
    expect((await readdir(join(b.dir, 'blobs', 'sha256'))).sort()).toEqual((await readdir(join(c.dir, 'blobs', 'sha256'))).sort());

    const imported = expectOk(await ctr(['images', 'import', fromBerth], 'b2'), 'ctr images import of berth export');
    expect(imported.stdout).toContain('test/tiny:latest');
    expect(await ctrImages('b2')).toEqual([['test/tiny:latest', tiny.target.digest]]);
    expect(ctrTable(expectOk(await ctr(['images', 'check'], 'b2')).stdout)[0]).toMatchObject({ STATUS: 'complete (2/2)', UNPACKED: 'true' });
  }, 180_000);

  it('exports the host platform of an index by default and every platform with --all-platforms, as ctr does', async () => {
    const layoutTar = await tarLayout(multi.dir, join(work, 'multi.tar'));
    expectOk(await berth(['images', 'import', '--no-unpack', '--base-name', 'test/multi', '--all-platforms', layoutTar], 'm1'));
    for (const all of [false, true]) {
      const flags = all ? ['--all-platforms'] : [];
      const fromBerth = join(work, `berth-multi-${all}.tar`);
      const fromCtr = join(work, `ctr-multi-${all}.tar`);
      expectOk(await berth(['images', 'export', ...flags, fromBerth, 'test/multi:latest'], 'm1'));
      expectOk(await ctr(['images', 'export', ...flags, fromCtr, 'test/multi:latest'], 'm1'));
      const b = await extract(fromBerth);
      const c = await extract(fromCtr);
      expect(b.names).toEqual(c.names);
      const blobs = await readdir(join(b.dir, 'blobs', 'sha256'));
      const other = multi.manifests[1]!;
      expect(blobs.includes(other.layers.at(-1)!.descriptor.digest.slice(7)), `other platform's layer, all=${all}`).toBe(all);
      expect(await readFile(join(b.dir, 'manifest.json'), 'utf8')).toBe(await readFile(join(c.dir, 'manifest.json'), 'utf8'));
    }
  }, 180_000);

  it('imports a docker save archive to the same manifest and index digests as ctr does', async () => {
    // docker save's layout of tiny: <hex>.json config, <id>/layer.tar uncompressed, manifest.json, repositories.
    const m = tiny.manifests[0]!;
    const dir = await mkdtemp(join(work, 'docker-save-'));
    const blob = (d: { digest: string }) => readFile(join(tiny.dir, 'blobs', 'sha256', d.digest.slice(7)));
    const cfgName = `${m.config.digest.slice(7)}.json`;
    await writeFile(join(dir, cfgName), await blob(m.config));
    const layers: string[] = [];
    for (const l of m.layers) {
      const id = l.diffId.slice(7);
      await mkdir(join(dir, id));
      await writeFile(join(dir, id, 'layer.tar'), gunzipSync(await blob(l.descriptor)));
      await writeFile(join(dir, id, 'VERSION'), '1.0');
      layers.push(`${id}/layer.tar`);
    }
    await writeFile(join(dir, 'manifest.json'), JSON.stringify([{ Config: cfgName, RepoTags: ['berth-tiny:1'], Layers: layers }]));
    await writeFile(join(dir, 'repositories'), JSON.stringify({ 'berth-tiny': { '1': layers[0]!.split('/')[0] } }));
    const archive = join(work, 'docker-save.tar');
    expectOk(await run('tar', ['-cf', archive, '-C', dir, '.']));

    expectOk(await berth(['images', 'import', '--no-unpack', '--index-name', 'kept/index:1', archive], 'd1'), 'berth import of docker save');
    expectOk(await ctr(['images', 'import', '--no-unpack', '--index-name', 'kept/index:1', archive], 'd2'), 'ctr import of docker save');
    const berthImages = await ctrImages('d1');
    expect(berthImages).toEqual(await ctrImages('d2'));
    expect(berthImages.map(([name]) => name).sort()).toEqual(['docker.io/library/berth-tiny:1', 'kept/index:1']);
    const json = JSON.parse(expectOk(await berth(['--format', 'json', 'images', 'ls', 'name==docker.io/library/berth-tiny:1'], 'd1')).stdout);
    expect(json[0]).toMatchObject({ target: { mediaType: 'application/vnd.docker.distribution.manifest.v2+json' }, platforms: [expect.stringMatching(/^linux\//)] });
  }, 180_000);

  it('berth images ls, check, inspect, tag, label, mount, unmount and rm --sync on an image ctr imported and unpacked', async () => {
    const ns = 'cli';
    const layoutTar = await tarLayout(tiny.dir, join(work, 'tiny-cli.tar'));
    expectOk(await ctr(['images', 'import', '--base-name', 'test/tiny', layoutTar], ns), 'ctr import');
    const name = 'test/tiny:latest';

    const ls = JSON.parse(expectOk(await berth(['--format', 'json', 'images', 'ls'], ns)).stdout);
    expect(ls).toEqual([expect.objectContaining({ name, target: expect.objectContaining({ digest: tiny.target.digest }) })]);
    expect(expectOk(await berth(['images', 'ls', '-q'], ns)).stdout).toBe(`${name}\n`);
    const lsTable = ctrTable(expectOk(await berth(['images', 'ls'], ns)).stdout);
    expect(lsTable[0]).toMatchObject({ REF: name, DIGEST: tiny.target.digest });
    expect(lsTable[0]?.SIZE).toBe(ctrTable(expectOk(await ctr(['images', 'ls'], ns)).stdout)[0]?.SIZE);

    const check = JSON.parse(expectOk(await berth(['--format', 'json', 'images', 'check'], ns)).stdout);
    expect(check).toEqual([expect.objectContaining({ name, status: 'complete (2/2)', complete: true, unpacked: true, snapshotter: 'overlayfs' })]);

    const inspect = expectOk(await berth(['images', 'inspect', name], ns)).stdout;
    expect(inspect).toContain(tiny.target.digest);
    for (const l of tiny.manifests[0]!.layers) expect(inspect).toContain(l.descriptor.digest);
    expect(inspect).not.toContain('(missing)');

    expect(expectOk(await berth(['images', 'tag', name, 'copy/tiny:2'], ns)).stdout).toBe('copy/tiny:2\n');
    expect(expectOk(await berth(['images', 'label', 'copy/tiny:2', 'a=b'], ns)).stdout).toBe('a=b\n');
    const listed = ctrTable(expectOk(await ctr(['images', 'ls'], ns)).stdout);
    expect(listed.find((r) => r.REF === 'copy/tiny:2')).toMatchObject({ DIGEST: tiny.target.digest, LABELS: 'a=b' });

    const target = await mkdtemp(join(work, 'mnt-'));
    mounted.push(target);
    const mount = expectOk(await berth(['images', 'mount', name, target], ns), 'berth images mount');
    expect(mount.stdout.split('\n')[1]).toBe(target);
    expect(isMounted(target)).toBe(true);
    expect(existsSync(join(target, 'bin', 'busybox'))).toBe(true);
    expectOk(await berth(['images', 'unmount', '--rm', target], ns), 'berth images unmount');
    expect(isMounted(target)).toBe(false);
    expect(ctrTable(expectOk(await ctr(['snapshots', 'ls'], ns)).stdout).map((r) => r.KEY)).not.toContain(target);

    const missing = await berth(['images', 'rm', 'nope:1'], ns);
    expect(missing.code).toBe(0);
    expect(missing.stderr).toContain('nope:1: image not found');
    expectOk(await berth(['images', 'rm', name, '--sync', 'copy/tiny:2'], ns));
    expect(await ctrImages(ns)).toEqual([]);
    expect(await contentOf(ns)).toEqual([]);
  }, 180_000);

  it('refuses a damaged archive with a clear error and keeps serving', async () => {
    const bad = join(work, 'bad.tar');
    await writeFile(bad, Buffer.alloc(4096, 0x41));
    const r = await berth(['images', 'import', bad], 'bad');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^berth: .*(not a valid tar|unrecognized image format)/);
    expect(expectOk(await ctr(['version'], 'bad')).stdout).toContain('Server:');
    expect(await ctrImages('bad')).toEqual([]);
  }, 60_000);
});
