// The native snapshotter's own promises beyond the conformance suite: its disk layout and mounts (containerd's),
// records that survive a reopen, Cleanup of what interrupted operations leave, a failed record write that changes
// nothing, an aborted copy, a parent that cannot go while a child is being copied from it.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OpContext } from '@berth/core';
import { expectFailure } from '@berth/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NativeSnapshotter } from './native-snapshotter.js';
import { RECORDS_FILE } from './records.js';

const ctx: OpContext = { namespace: 'native-test' };

/** Polls `cond` every millisecond (for at most 10 s). */
async function until(cond: () => Promise<boolean>): Promise<void> {
  for (const t0 = Date.now(); !(await cond()); ) {
    if (Date.now() - t0 > 10_000) throw new Error('condition not reached in 10 s');
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe('native snapshotter store', () => {
  let dir: string;
  let root: string;
  let sn: NativeSnapshotter | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-native-store-'));
    root = join(dir, 'io.containerd.snapshotter.v1.native');
  });

  afterEach(async () => {
    await sn?.close();
    sn = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const open = async () => (sn = await NativeSnapshotter.open({ root }));
  const snapshots = () => join(root, 'snapshots');
  const files = async () => (await readdir(snapshots())).sort();

  it('lays snapshots out as containerd does and binds them (rw, ro views of the parent itself)', async () => {
    const s = await open();
    expect(await s.prepare(ctx, 'a', '')).toEqual([{ type: 'bind', source: join(snapshots(), '1'), options: ['rbind', 'rw'] }]);
    await writeFile(join(snapshots(), '1', 'file'), 'in a');
    await s.commit(ctx, 'c', 'a');
    expect(await s.view(ctx, 'v', '')).toEqual([{ type: 'bind', source: join(snapshots(), '2'), options: ['rbind', 'ro'] }]);
    expect(await s.prepare(ctx, 'b', 'c')).toEqual([{ type: 'bind', source: join(snapshots(), '3'), options: ['rbind', 'rw'] }]);
    // A view of a committed snapshot binds that snapshot's directory: no copy.
    expect(await s.view(ctx, 'w', 'c')).toEqual([{ type: 'bind', source: join(snapshots(), '1'), options: ['rbind', 'ro'] }]);
    expect(await files()).toEqual(['1', '2', '3']);
    expect(await readFile(join(snapshots(), '3', 'file'), 'utf8')).toBe('in a');
    const doc = JSON.parse(await readFile(join(root, RECORDS_FILE), 'utf8')) as { version: number; nextId: number; snapshots: { key: string; id: string; kind: string }[] };
    expect(doc.version).toBe(1);
    expect(doc.nextId).toBe(5);
    expect(doc.snapshots.map(({ key, id, kind }) => [key, id, kind]).sort()).toEqual([
      ['b', '3', 'active'],
      ['c', '1', 'committed'],
      ['v', '2', 'view'],
      ['w', '4', 'view'],
    ]);
    await s.remove(ctx, 'w');
    await s.remove(ctx, 'b');
    expect(await files()).toEqual(['1', '2']);
  });

  it('keeps records across a reopen, and never reuses an id', async () => {
    let s = await open();
    await s.prepare(ctx, 'a', '', { labels: { x: '1' } });
    await s.commit(ctx, 'c', 'a', { labels: { y: '2' } });
    await s.prepare(ctx, 'b', 'c');
    await s.update(ctx, { name: 'b', labels: { z: '3' } });
    await s.remove(ctx, 'b');
    await s.prepare(ctx, 'b2', 'c');
    const before = [];
    for await (const i of s.walk(ctx)) before.push(i);
    await s.close();
    s = await open();
    const after = [];
    for await (const i of s.walk(ctx)) after.push(i);
    expect(after).toEqual(before);
    expect(await s.usage(ctx, 'c')).toEqual((JSON.parse(await readFile(join(root, RECORDS_FILE), 'utf8')) as { snapshots: { key: string; size: number; inodes: number }[] }).snapshots.filter((r) => r.key === 'c').map(({ size, inodes }) => ({ size, inodes }))[0]);
    // Ids 1 (c), 2 (removed b), 3 (b2): the next is 4 even though 2 is free again.
    expect(await s.prepare(ctx, 'd', '')).toEqual([expect.objectContaining({ source: join(snapshots(), '4') })]);
  });

  it('cleanup removes what interrupted prepares and removes left, and nothing else', async () => {
    let s = await open();
    await s.prepare(ctx, 'a', '');
    await s.commit(ctx, 'c', 'a');
    await s.prepare(ctx, 'b', 'c');
    await s.view(ctx, 'v', 'c');
    await s.close();
    // What a SIGKILL can leave: a half-copied prepare, a renamed but unrecorded one, a half-deleted remove, an
    // unrecorded id whose record a remove had already dropped, a temporary records file.
    for (const debris of ['new-8', '9', 'rm-5', '40']) {
      await mkdir(join(snapshots(), debris, 'deep', 'er'), { recursive: true });
      await writeFile(join(snapshots(), debris, 'deep', 'er', 'file'), 'x');
    }
    await writeFile(join(root, `${RECORDS_FILE}.123-abcd.tmp`), '{"half');
    s = await open();
    await s.cleanup(ctx);
    expect(await files()).toEqual(['1', '2']);
    expect((await readdir(root)).sort()).toEqual([RECORDS_FILE, 'snapshots']);
    expect((await s.stat(ctx, 'b')).parent).toBe('c');
    // Ids go on above every directory that was found at open.
    expect(await s.prepare(ctx, 'after', '')).toEqual([expect.objectContaining({ source: join(snapshots(), '41') })]);
  });

  it('refuses a records file that does not parse, naming it', async () => {
    await mkdir(root, { recursive: true });
    await writeFile(join(root, RECORDS_FILE), '{"version":1,');
    await expectFailure(NativeSnapshotter.open({ root }), 'data-loss', join(root, RECORDS_FILE));
    await writeFile(join(root, RECORDS_FILE), JSON.stringify({ version: 1, nextId: 2, snapshots: [{ key: 'k', id: '../1', kind: 'active', parent: '', labels: {}, createdAt: '', updatedAt: '' }] }));
    await expectFailure(NativeSnapshotter.open({ root }), 'data-loss', 'malformed record');
  });

  it('a record write that fails changes nothing, in memory or on disk', async () => {
    const s = await open();
    await s.prepare(ctx, 'a', '');
    await s.commit(ctx, 'c', 'a', { labels: { keep: 'me' } });
    // A directory where the records file goes: the rename of the rewritten file onto it fails.
    const saved = await readFile(join(root, RECORDS_FILE), 'utf8');
    await rm(join(root, RECORDS_FILE));
    await mkdir(join(root, RECORDS_FILE, 'blocker'), { recursive: true });
    await expect(s.prepare(ctx, 'b', 'c')).rejects.toThrow(RECORDS_FILE);
    await expect(s.update(ctx, { name: 'c', labels: {} })).rejects.toThrow(RECORDS_FILE);
    await expect(s.remove(ctx, 'c')).rejects.toThrow(RECORDS_FILE);
    await expectFailure(s.stat(ctx, 'b'), 'not-found');
    expect((await s.stat(ctx, 'c')).labels).toEqual({ keep: 'me' });
    expect(await files()).toEqual(['1']);
    await rm(join(root, RECORDS_FILE), { recursive: true });
    await writeFile(join(root, RECORDS_FILE), saved);
    await s.prepare(ctx, 'b', 'c');
    expect((await s.stat(ctx, 'b')).parent).toBe('c');
  });

  it('an aborted prepare leaves neither a record nor a directory', async () => {
    const s = await open();
    const a = (await s.prepare(ctx, 'a', ''))[0]!.source;
    for (let i = 0; i < 5000; i++) await writeFile(join(a, `f${i}`), 'x'.repeat(512));
    await s.commit(ctx, 'c', 'a');
    const ac = new AbortController();
    const p = s.prepare({ ...ctx, signal: ac.signal }, 'b', 'c');
    // Abort once the copy has begun (its directory has entries).
    await until(async () => (await readdir(join(snapshots(), 'new-2')).catch(() => [])).length > 0);
    ac.abort();
    await expect(p).rejects.toThrow();
    await expectFailure(s.stat(ctx, 'b'), 'not-found');
    expect(await files()).toEqual(['1']);
    await s.prepare(ctx, 'b', 'c');
  });

  it('a parent cannot be removed while a child is being copied from it', async () => {
    const s = await open();
    await s.prepare(ctx, 'a', '');
    await s.commit(ctx, 'c', 'a');
    const child = s.prepare(ctx, 'b', 'c');
    await expectFailure(s.remove(ctx, 'c'), 'failed-precondition');
    await child;
    await expectFailure(s.remove(ctx, 'c'), 'failed-precondition');
  });

  it('refuses every call once closed, and closes twice', async () => {
    const s = await open();
    await s.prepare(ctx, 'a', '');
    await s.close();
    await s.close();
    await expectFailure(s.stat(ctx, 'a'), 'unavailable');
    await expectFailure(s.prepare(ctx, 'b', ''), 'unavailable');
    sn = undefined;
  });
});
