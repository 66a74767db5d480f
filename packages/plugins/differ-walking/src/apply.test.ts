// Apply of a layer made by GNU tar, checked entry by entry against the tree the OCI layer rules give: the lower tree,
// minus what the whiteouts and opaque markers remove, plus every entry of the layer with the metadata GNU tar read
// from the directory it was made from. Onto a bind mount (the whole tree: real deletions) and into an overlay upper
// dir (overlay-form whiteouts), whose merged view the kernel then shows.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectFailure } from '@berth/core/testing';
import { lgetxattr, lsetxattr, makedev, mkfifo, mknod, mount, S_IFCHR, splitDev, unmountAll } from '@berth/sys';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  compress,
  digestOf,
  gnuTar,
  hasRoot,
  mediaTypeOf,
  openTestDiffer,
  putBlob,
  removeDir,
  tempDir,
  treeOf,
  type Codec,
  type EntryInfo,
} from './testing-fixtures/layers.js';

const CAPABILITY = Buffer.from('01000002c0000000000000000000000000000000', 'hex');
const IGNORE = '(not compared)';

/** The lower tree: what the layer deletes, replaces, makes opaque, and a directory a missing parent lies in. */
function makeLower(dir: string): void {
  const p = (n: string) => join(dir, n);
  writeFileSync(p('del.txt'), 'to be deleted');
  writeFileSync(p('keep.txt'), 'kept');
  mkdirSync(p('repdir'));
  writeFileSync(p('repdir/old.txt'), 'old');
  mkdirSync(p('repdir/sub'));
  writeFileSync(p('repdir/sub/x'), 'x');
  mkdirSync(p('dir2file'));
  writeFileSync(p('dir2file/a'), 'a');
  mkdirSync(p('opq'));
  writeFileSync(p('opq/old1'), '1');
  writeFileSync(p('opq/old2'), '2');
  mkdirSync(p('lowdir'), 0o750);
  chmodSync(p('lowdir'), 0o750);
  writeFileSync(p('lowdir/existing'), 'e');
  chownSync(p('lowdir'), 1000, 1000);
  lsetxattr(p('lowdir'), 'user.origin', Buffer.from('lower'));
  mkdirSync(p('gonedir'), 0o700);
  writeFileSync(p('gonedir/old'), 'hidden by the whiteout');
}

/** The layer's source directory, and the names GNU tar puts in it, in order. */
async function makeLayerSource(dir: string): Promise<string[]> {
  const p = (n: string) => join(dir, n);
  writeFileSync(p('.wh.del.txt'), '');
  writeFileSync(p('.wh.repdir'), '');
  mkdirSync(p('repdir'), 0o700);
  writeFileSync(p('repdir/new.txt'), 'new');
  chownSync(p('repdir'), 7, 7);
  writeFileSync(p('dir2file'), 'now a file');
  mkdirSync(p('opq'));
  writeFileSync(p('opq/.wh..wh..opq'), '');
  writeFileSync(p('opq/new'), 'new in opq');
  mkdirSync(p('hl'));
  writeFileSync(p('hl/one'), 'linked twice');
  linkSync(p('hl/one'), p('hl/two'));
  symlinkSync('../target/elsewhere', p('sym'));
  symlinkSync('/etc/hostname', p('abs'));
  await mkfifo(p('fifo'), 0o620);
  chmodSync(p('fifo'), 0o620);
  mknod(p('null'), S_IFCHR | 0o640, makedev(1, 3));
  chmodSync(p('null'), 0o640);
  chownSync(p('null'), 5, 5);
  writeFileSync(p('suid'), '#!/bin/sh\n');
  chownSync(p('suid'), 1000, 1001);
  chmodSync(p('suid'), 0o4755);
  writeFileSync(p('caps'), 'capable');
  lsetxattr(p('caps'), 'security.capability', CAPABILITY);
  lsetxattr(p('caps'), 'user.bin', Buffer.from([0x00, 0xff, 0x80, 0xfe]));
  writeFileSync(p('owned'), 'owned');
  chownSync(p('owned'), 3_000_000, 3_000_001);
  mkdirSync(p('lowdir/newsub'), { recursive: true });
  writeFileSync(p('lowdir/newsub/file'), 'under a missing parent');
  writeFileSync(p('.wh.gonedir'), '');
  mkdirSync(p('gonedir/sub'), { recursive: true });
  writeFileSync(p('gonedir/sub/new'), 'under a whited-out directory');
  mkdirSync(p('a/b'), { recursive: true });
  writeFileSync(p('a/b/c.txt'), 'deep');
  return [
    '.wh.del.txt',
    '.wh.repdir',
    'repdir',
    'repdir/new.txt',
    'dir2file',
    'opq',
    'opq/.wh..wh..opq',
    'opq/new',
    'hl',
    'hl/one',
    'hl/two',
    'sym',
    'abs',
    'fifo',
    'null',
    'suid',
    'caps',
    'owned',
    'lowdir/newsub/file', // neither lowdir/ nor lowdir/newsub/ is in the layer
    'a/b/c.txt', // a/ and a/b/ are nowhere
    '.wh.gonedir',
    'gonedir/sub/new', // a parent this layer deleted: a new directory, without the lower one's content
  ];
}

const under = (rel: string, prefix: string) => rel === prefix || rel.startsWith(`${prefix}/`);

/** The OCI rules, applied to trees read from disk (not to what the applier did). */
function expectedTree(lower: Map<string, EntryInfo>, source: Map<string, EntryInfo>, names: readonly string[]): Map<string, EntryInfo> {
  const out = new Map(lower);
  const drop = (prefix: string, keepSelf = false) => {
    for (const rel of [...out.keys()]) if (under(rel, prefix) && !(keepSelf && rel === prefix)) out.delete(rel);
  };
  for (const name of names) {
    const slash = name.lastIndexOf('/');
    const dir = slash < 0 ? '' : name.slice(0, slash);
    const base = name.slice(slash + 1);
    if (base === '.wh..wh..opq') {
      for (const rel of [...out.keys()]) if (rel.startsWith(`${dir}/`) && lower.has(rel)) out.delete(rel);
    } else if (base.startsWith('.wh.')) {
      drop(dir ? `${dir}/${base.slice(4)}` : base.slice(4));
    }
  }
  for (const name of names) {
    if (name.split('/').pop()!.startsWith('.wh.')) continue;
    const parts = name.split('/');
    for (let n = 1; n < parts.length; n++) {
      const parent = parts.slice(0, n).join('/');
      if (names.includes(parent)) continue;
      // A parent the layer does not list: the lower one's metadata, or a new 0755 root directory; its mtime is
      // the applier's business (the bind target's changes when an entry is made in it).
      const base = out.get(parent) ?? { type: 'dir', mode: '755', uid: 0, gid: 0, xattrs: {}, mtime: '' };
      out.set(parent, { ...base, mtime: IGNORE });
    }
    const entry = source.get(name)!;
    if (entry.type !== 'dir') drop(name);
    out.set(name, entry);
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function withIgnored(actual: Map<string, EntryInfo>, expected: Map<string, EntryInfo>): Map<string, EntryInfo> {
  const out = new Map<string, EntryInfo>();
  for (const [rel, info] of actual) out.set(rel, expected.get(rel)?.mtime === IGNORE ? { ...info, mtime: IGNORE } : info);
  return out;
}

const copyTree = (from: string, to: string) => {
  const r = spawnSync('cp', ['-a', `${from}/.`, to]);
  if (r.status !== 0) throw new Error(`cp -a: ${r.stderr.toString()}`);
};

describe.skipIf(!hasRoot())('Apply: a layer gives the tree of the OCI rules', () => {
  let work: string;
  let lower: string;
  let source: string;
  let names: string[];
  let t: Awaited<ReturnType<typeof openTestDiffer>>;
  const mounted: string[] = [];

  beforeEach(async () => {
    work = tempDir();
    lower = join(work, 'lower');
    source = join(work, 'source');
    mkdirSync(lower);
    mkdirSync(source);
    makeLower(lower);
    names = await makeLayerSource(source);
    t = await openTestDiffer();
  });
  afterEach(async () => {
    for (const m of mounted.splice(0)) await unmountAll(m);
    await t.close();
    removeDir(work);
  });

  const layer = async (codec: Codec) => {
    const tar = gnuTar(source, names);
    const desc = await putBlob(t.store, t.ctx, compress(tar, codec), mediaTypeOf[codec]);
    return { tar, desc };
  };

  const expected = () => expectedTree(treeOf(lower), treeOf(source), names);

  for (const codec of ['none', 'gzip', 'zstd'] as const) {
    it(`onto a bind mount (real deletions), ${codec}`, async () => {
      const target = join(work, 'target');
      mkdirSync(target);
      copyTree(lower, target);
      const { tar, desc } = await layer(codec);
      const applied = await t.differ.apply(t.ctx, desc, [{ type: 'bind', source: target, options: ['rbind', 'rw'] }]);
      expect(applied).toEqual({ mediaType: mediaTypeOf.none, digest: digestOf(tar), size: tar.length });
      const want = expected();
      expect(withIgnored(treeOf(target), want)).toEqual(want);
      expect(lstatSync(join(target, 'hl/one')).ino).toBe(lstatSync(join(target, 'hl/two')).ino);
    });

    it(`into an overlay upper dir (0/0 whiteouts, opaque xattr), merged view, ${codec}`, async () => {
      const upper = join(work, 'upper');
      const wd = join(work, 'work');
      const merged = join(work, 'merged');
      for (const d of [upper, wd, merged]) mkdirSync(d);
      const { tar, desc } = await layer(codec);
      const options = [`workdir=${wd}`, `upperdir=${upper}`, `lowerdir=${lower}`];
      const applied = await t.differ.apply(t.ctx, desc, [{ type: 'overlay', source: 'overlay', options }]);
      expect(applied.digest).toBe(digestOf(tar));

      // The upper dir holds the layer in overlay form, and nothing of the lower tree.
      const del = lstatSync(join(upper, 'del.txt'), { bigint: true });
      expect(del.isCharacterDevice() && splitDev(del.rdev)).toEqual({ major: 0, minor: 0 });
      expect(lgetxattr(join(upper, 'opq'), 'trusted.overlay.opaque').toString()).toBe('y');
      expect(lgetxattr(join(upper, 'repdir'), 'trusted.overlay.opaque').toString()).toBe('y');
      expect(lstatSync(join(upper, 'keep.txt'), { throwIfNoEntry: false })).toBeUndefined();
      // The missing parent got the lower directory's owner, mode and xattrs, so the merged view still shows them.
      const lowdir = treeOf(upper).get('lowdir')!;
      expect(lowdir).toMatchObject({ mode: '750', uid: 1000, gid: 1000, xattrs: { 'user.origin': Buffer.from('lower').toString('hex') } });

      await mount('overlay', merged, 'overlay', 0, options.join(','));
      mounted.push(merged);
      const want = expected();
      expect(withIgnored(treeOf(merged), want)).toEqual(want);
    });
  }

  it('refuses a layer whose bytes are not its digest (data-loss), and a size the store contradicts', async () => {
    const { desc } = await layer('gzip');
    const target = join(work, 'target');
    mkdirSync(target);
    const mounts = [{ type: 'bind', source: target, options: ['rbind'] }];
    // A store that hands out another blob's bytes for every digest.
    let otherDigest = '';
    const lying = await openTestDiffer({ workers: 1 }, (store) => ({ scope: store.scope, info: (ctx, d) => store.info(ctx, d), reader: (ctx) => store.reader(ctx, otherDigest) }));
    try {
      otherDigest = (await putBlob(lying.store, lying.ctx, compress(gnuTar(source, ['sym']), 'gzip'), mediaTypeOf.gzip)).digest;
      await expectFailure(lying.differ.apply(lying.ctx, { ...desc, size: 0 }, mounts), 'data-loss', `layer ${desc.digest} is corrupt`);
    } finally {
      await lying.close();
    }
    await expectFailure(t.differ.apply(t.ctx, { ...desc, size: desc.size + 1 }, mounts), 'invalid-argument', 'the descriptor says');
    await expectFailure(t.differ.apply(t.ctx, { ...desc, mediaType: 'application/vnd.oci.image.layer.v1.tar+lz4' }, mounts), 'not-implemented');
  });
});
