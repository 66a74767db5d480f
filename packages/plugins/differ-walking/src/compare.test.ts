// Diff round trip: compare a lower and an upper tree into a gzip layer in the content store, apply that layer onto a
// copy of the lower tree (and into an overlay upper dir above it), and get the upper tree back, entry by entry
// (mtimes to the second: containerd's diff writer truncates them, and so does ours).
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { lsetxattr, makedev, mkfifo, mknod, mount, S_IFCHR, unmountAll } from '@berth/sys';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UNCOMPRESSED_LABEL } from './walking-differ.js';
import { digestOf, hasRoot, openTestDiffer, removeDir, tempDir, treeOf, type EntryInfo } from './testing-fixtures/layers.js';
import { TarReader } from './tar/reader.js';


const seconds = (tree: Map<string, EntryInfo>) =>
  new Map([...tree].map(([rel, info]) => [rel, { ...info, mtime: String(BigInt(info.mtime) / 1_000_000_000n) }]));

const copyTree = (from: string, to: string) => {
  const r = spawnSync('cp', ['-a', `${from}/.`, to]);
  if (r.status !== 0) throw new Error(`cp -a: ${r.stderr.toString()}`);
};

describe.skipIf(!hasRoot())('Diff', () => {
  let work: string;
  let lower: string;
  let upper: string;
  let t: Awaited<ReturnType<typeof openTestDiffer>>;
  const mounted: string[] = [];

  beforeEach(async () => {
    work = tempDir();
    lower = join(work, 'lower');
    upper = join(work, 'upper');
    const p = (n: string) => join(lower, n);
    mkdirSync(lower);
    writeFileSync(p('same.txt'), 'unchanged');
    writeFileSync(p('del.txt'), 'deleted in upper');
    writeFileSync(p('mod.txt'), 'before');
    mkdirSync(p('gone/deep'), { recursive: true });
    writeFileSync(p('gone/deep/f'), 'f');
    mkdirSync(p('keepdir'));
    writeFileSync(p('keepdir/a'), 'a');
    mkdirSync(upper);
    copyTree(lower, upper);
    const q = (n: string) => join(upper, n);
    rmSync(q('del.txt'));
    rmSync(q('gone'), { recursive: true });
    writeFileSync(q('mod.txt'), 'after, and longer');
    chmodSync(q('keepdir'), 0o711);
    writeFileSync(q('keepdir/new'), 'new');
    writeFileSync(q('hl1'), 'linked');
    linkSync(q('hl1'), q('hl2'));
    symlinkSync('../somewhere', q('sym'));
    await mkfifo(q('fifo'), 0o600);
    mknod(q('null'), S_IFCHR | 0o666, makedev(1, 3));
    writeFileSync(q('suid'), 'x');
    chownSync(q('suid'), 1000, 1001);
    chmodSync(q('suid'), 0o4750);
    writeFileSync(q('caps'), 'c');
    lsetxattr(q('caps'), 'security.capability', Buffer.from('01000002c0000000000000000000000000000000', 'hex'));
    lsetxattr(q('caps'), 'user.bin', Buffer.from([0, 0xff, 0x80]));
    writeFileSync(q('owned'), 'o');
    chownSync(q('owned'), 3_000_000, 3_000_001);
    mkdirSync(q(`long-${'x'.repeat(120)}`));
    writeFileSync(q(`long-${'x'.repeat(120)}/${'y'.repeat(110)}`), 'long name');
    t = await openTestDiffer();
  });
  afterEach(async () => {
    for (const m of mounted.splice(0)) await unmountAll(m);
    await t.close();
    removeDir(work);
  });

  it('writes a gzip layer with whiteouts to the content store, which applies back to the upper tree', async () => {
    const bind = (dir: string) => [{ type: 'bind', source: dir, options: ['rbind', 'ro'] }];
    const desc = await t.differ.compare(t.ctx, bind(lower), bind(upper), { labels: { 'test.label': 'yes' } });
    expect(desc.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const chunks: Buffer[] = [];
    const blobReader = await t.store.reader(t.ctx, desc.digest);
    for await (const chunk of blobReader.stream()) chunks.push(Buffer.from(chunk));
    await blobReader.close();
    const blob = Buffer.concat(chunks);
    expect(digestOf(blob)).toBe(desc.digest);
    const tar = gunzipSync(blob);
    const info = await t.store.info(t.ctx, desc.digest);
    expect(info.labels).toMatchObject({ [UNCOMPRESSED_LABEL]: digestOf(tar), 'test.label': 'yes' });

    // The layer holds the changes only: whiteouts for what went, nothing for what stayed the same.
    const names: string[] = [];
    const reader = new TarReader({ entry: (e) => names.push(e.name), data: () => undefined, end: () => undefined });
    reader.push(tar);
    reader.finish();
    expect(names).toEqual(expect.arrayContaining(['.wh.del.txt', '.wh.gone', 'mod.txt', 'keepdir/', 'keepdir/new', 'hl1', 'hl2']));
    expect(names).not.toContain('same.txt');
    expect(names).not.toContain('keepdir/a');
    expect(names.filter((n) => n.startsWith('gone/'))).toEqual([]);

    // Onto a copy of the lower tree.
    const target = join(work, 'target');
    mkdirSync(target);
    copyTree(lower, target);
    const applied = await t.differ.apply(t.ctx, desc, [{ type: 'bind', source: target, options: ['rbind'] }]);
    expect(applied.digest).toBe(digestOf(tar));
    expect(seconds(treeOf(target))).toEqual(seconds(treeOf(upper)));

    // Into an overlay upper dir above the lower tree: the merged view is the upper tree too.
    const up2 = join(work, 'up2');
    const wd = join(work, 'wd');
    const merged = join(work, 'merged');
    for (const d of [up2, wd, merged]) mkdirSync(d);
    const options = [`workdir=${wd}`, `upperdir=${up2}`, `lowerdir=${lower}`];
    await t.differ.apply(t.ctx, desc, [{ type: 'overlay', source: 'overlay', options }]);
    await mount('overlay', merged, 'overlay', 0, options.join(','));
    mounted.push(merged);
    expect(seconds(treeOf(merged))).toEqual(seconds(treeOf(upper)));
  });

  it('puts the labels of a repeated diff onto the blob that is there already', async () => {
    const bind = (dir: string) => [{ type: 'bind', source: dir, options: ['rbind', 'ro'] }];
    // Trees without deletions: no whiteout times, so the same diff is the same blob.
    const a = join(work, 'a');
    const b = join(work, 'b');
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(join(b, 'f'), 'x');
    utimesSync(join(b, 'f'), 1_000_000, 1_000_000);
    utimesSync(b, 1_000_000, 1_000_000);
    utimesSync(a, 1_000_000, 1_000_000);
    const first = await t.differ.compare(t.ctx, bind(a), bind(b), { labels: { 'test.label': 'first' } });
    const again = await t.differ.compare(t.ctx, bind(a), bind(b), { labels: { 'test.label': 'again', 'containerd.io/gc.root': 'now' } });
    expect(again.digest).toBe(first.digest);
    const info = await t.store.info(t.ctx, first.digest);
    expect(info.labels).toMatchObject({ 'test.label': 'again', 'containerd.io/gc.root': 'now' });
    expect(info.labels[UNCOMPRESSED_LABEL]).toMatch(/^sha256:/);
  });

  it('writes a plain tar on request, and an empty diff for equal trees', async () => {
    const bind = (dir: string) => [{ type: 'bind', source: dir, options: ['rbind', 'ro'] }];
    const same = await t.differ.compare(t.ctx, bind(lower), bind(lower), { mediaType: 'application/vnd.oci.image.layer.v1.tar' });
    expect(same.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(same.size).toBe(1024); // the end-of-archive blocks alone
    await expect(t.differ.compare(t.ctx, bind(lower), bind(upper), { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' })).rejects.toThrow(/unsupported diff media type/);
  });
});
