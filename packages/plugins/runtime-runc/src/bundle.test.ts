import { lstat, mkdir, mkdtemp, readFile, readlink, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectFailure } from '@berth/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Bundle, EXIT_FILE } from './bundle.js';

describe('Bundle', () => {
  let dir: string;
  let state: string;
  let root: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-bundle-'));
    state = join(dir, 'state');
    root = join(dir, 'root');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lays out <state>/<ns>/<id> as containerd does', async () => {
    const spec = Buffer.from('{"ociVersion":"1.0.2"}');
    const b = await Bundle.create(state, root, 'ns1', 'c1', spec);
    expect(b.path).toBe(join(state, 'ns1', 'c1'));
    expect((await lstat(b.path)).mode & 0o7777).toBe(0o700);
    expect((await lstat(join(state, 'ns1'))).mode & 0o7777).toBe(0o711);
    expect((await lstat(b.rootfs)).mode & 0o7777).toBe(0o711);
    expect(await readlink(join(b.path, 'work'))).toBe(join(root, 'ns1', 'c1'));
    expect((await lstat(join(root, 'ns1', 'c1'))).isDirectory()).toBe(true);
    expect(await readFile(join(b.path, 'config.json'))).toEqual(spec);
    expect((await readdir(b.path)).sort()).toEqual(['config.json', 'rootfs', 'work']);
  });

  it('refuses a second bundle for the same id and leaves the first alone', async () => {
    const b = await Bundle.create(state, root, 'ns1', 'c1', Buffer.from('{}'));
    await writeFile(join(b.path, 'marker'), 'x');
    await expectFailure(Bundle.create(state, root, 'ns1', 'c1', Buffer.from('{}')), 'already-exists', 'ns1/c1');
    expect(await readFile(join(b.path, 'marker'), 'utf8')).toBe('x');
  });

  it('refuses ids and namespaces that are not identifiers (no path tricks)', async () => {
    await expectFailure(Bundle.create(state, root, 'ns1', '../evil', Buffer.from('{}')), 'invalid-argument');
    await expectFailure(Bundle.create(state, root, '..', 'c1', Buffer.from('{}')), 'invalid-argument');
    expect(await readdir(dir)).toEqual([]);
  });

  it('starts a fresh work dir when one was left behind', async () => {
    await mkdir(join(root, 'ns1', 'c1'), { recursive: true });
    await writeFile(join(root, 'ns1', 'c1', 'stale'), 'x');
    const b = await Bundle.create(state, root, 'ns1', 'c1', Buffer.from('{}'));
    expect(await readdir(b.workPath)).toEqual([]);
  });

  it('delete removes the bundle and the work dir, and is idempotent', async () => {
    const b = await Bundle.create(state, root, 'ns1', 'c1', Buffer.from('{}'));
    await writeFile(join(b.workPath, 'w'), 'x');
    await b.delete();
    expect(await readdir(join(state, 'ns1'))).toEqual([]);
    expect(await readdir(join(root, 'ns1'))).toEqual([]);
    await b.delete();
  });

  it('records the exit atomically, and a damaged record counts as none', async () => {
    const b = await Bundle.create(state, root, 'ns1', 'c1', Buffer.from('{}'));
    expect(await b.loadExit()).toBeUndefined();
    const exitedAt = new Date('2026-12-01T10:00:00.123Z');
    await b.saveExit({ pid: 42, status: 3, exitedAt });
    expect(await b.loadExit()).toEqual({ pid: 42, status: 3, exitedAt });
    expect((await readdir(b.path)).filter((n) => n.includes('tmp'))).toEqual([]);
    for (const damaged of ['{"pid":1', '{"pid":"1","status":0,"exitedAt":"2026-01-01T00:00:00Z"}', '{"pid":1,"status":0,"exitedAt":"never"}']) {
      await writeFile(join(b.path, EXIT_FILE), damaged);
      expect(await b.loadExit()).toBeUndefined();
    }
  });
});
