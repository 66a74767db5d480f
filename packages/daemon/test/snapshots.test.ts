// Snapshots acceptance: Debian's real ctr against a berthd process, on both snapshotters berthd composes. Every
// `ctr snapshots` command of issue 8's list, with the mount command ctr prints really run (and the tree checked
// through it), the /snapshot/* events `ctr events` sees, and snapshots joined to garbage collection through
// leases and `containerd.io/gc.ref.snapshot.<snapshotter>` labels (ctr's snapshot commands take no lease, so
// leased snapshots are prepared over raw gRPC with the lease header, as containerd's client sends it).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MNT_DETACH, umount2 } from '@berth/sys';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { unaryCall } from './grpc-raw.js';
import { hasCtr, hasRoot, QUIET_GC, run, startBerthd, watchCtrEvents, type Berthd, type RunResult } from './harness.js';

const SNAPSHOTS = 'containerd.services.snapshots.v1.Snapshots';

/** The rows of a ctr table, as records by header; columns are found from the header (cells may be empty). */
function table(stdout: string): Record<string, string>[] {
  const [header, ...lines] = stdout.replace(/\n$/, '').split('\n');
  const names = header!.trim().split(/\s+/);
  const starts = names.map((n) => header!.indexOf(n));
  return lines.map((line) =>
    Object.fromEntries(names.map((n, i) => [n, line.slice(starts[i], i + 1 < starts.length ? starts[i + 1] : undefined).trim()])),
  );
}

/** The fs type of the mount at `target` in this process's mount table, or undefined. */
function mountedType(target: string): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (pre?.split(' ')[4] === target) return post?.split(' ')[0];
  }
  return undefined;
}

const ok = (r: RunResult): RunResult => {
  expect(r.code, `ctr failed: ${r.stderr}`).toBe(0);
  return r;
};

describe.skipIf(!hasRoot() || !hasCtr())('snapshots through ctr', () => {
  let daemon: Berthd;
  let work: string;
  const mounted: string[] = [];

  beforeAll(async () => {
    daemon = await startBerthd({ config: QUIET_GC, logLevel: 'info' });
    work = await mkdtemp(join(tmpdir(), 'berth-snapshots-it-'));
  });
  afterEach(async () => {
    // A failed test may leave its mounts: detach them so nothing outlives the test.
    for (const target of mounted.splice(0)) if (mountedType(target) !== undefined) await umount2(target, MNT_DETACH);
  });
  afterAll(async () => {
    await daemon?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Runs the mount command ctr printed (with its own target) through the shell and checks that it mounted. */
  async function runPrinted(command: string, target: string): Promise<void> {
    expect(command).toMatch(new RegExp(`^mount -t (bind|overlay) \\S+ ${target} -o \\S+$`));
    mounted.push(target);
    const r = await run('sh', ['-c', command]);
    expect(r.code, `${command}: ${r.stderr}`).toBe(0);
    expect(mountedType(target)).toBeDefined();
  }

  async function unmount(target: string): Promise<void> {
    await umount2(target, 0);
    expect(mountedType(target)).toBeUndefined();
  }

  /** Collects garbage now: a synchronous lease removal runs a collection before ctr returns. */
  async function collect(namespace: string): Promise<void> {
    ok(await daemon.ctr(['leases', 'create', '--id', 'gc-trigger'], { namespace }));
    ok(await daemon.ctr(['leases', 'rm', '--sync', 'gc-trigger'], { namespace }));
  }

  const keys = async (namespace: string, snapshotter: string) =>
    table(ok(await daemon.ctr(['snapshots', '--snapshotter', snapshotter, 'ls'], { namespace })).stdout).map((r) => r.KEY);

  /** The snapshot directories the raw snapshotter holds (containerd's layout: `<root>/<uri>/snapshots/<n>`). */
  const snapshotDirs = (snapshotter: string) => {
    const dir = join(daemon.root, `io.containerd.snapshotter.v1.${snapshotter}`, 'snapshots');
    return existsSync(dir) ? readdirSync(dir) : [];
  };

  /** Prepares over raw gRPC (no gc.root label); returns the mounts' first source (the directory, for a bind). */
  async function prepareOverGrpc(namespace: string, snapshotter: string, key: string, parent: string, lease?: string): Promise<string> {
    const md: Record<string, string> = { 'containerd-namespace': namespace, ...(lease ? { 'containerd-lease': lease } : {}) };
    const r = await unaryCall<{ mounts: { source: string }[] }>(daemon.address, SNAPSHOTS, 'Prepare', { snapshotter, key, parent, labels: {} }, md);
    expect(r.error).toBeUndefined();
    return r.response!.mounts[0]!.source;
  }

  async function commitOverGrpc(namespace: string, snapshotter: string, name: string, key: string, lease?: string): Promise<void> {
    const md: Record<string, string> = { 'containerd-namespace': namespace, ...(lease ? { 'containerd-lease': lease } : {}) };
    const r = await unaryCall(daemon.address, SNAPSHOTS, 'Commit', { snapshotter, name, key, labels: {} }, md);
    expect(r.error).toBeUndefined();
  }

  // overlayfs is ctr's default snapshotter: its run passes no --snapshotter at all.
  for (const snapshotter of ['overlayfs', 'native']) {
    const flag = snapshotter === 'overlayfs' ? [] : ['--snapshotter', snapshotter];
    const namespace = `it-${snapshotter}`;
    const ctr = (args: readonly string[]) => daemon.ctr(['snapshots', ...flag, ...args], { namespace });

    it(`runs every ctr snapshots command on ${snapshotter}`, async () => {
      // prepare k1 and mount it the way ctr prints: a bind mount of the snapshot's directory.
      expect(ok(await ctr(['prepare', 'k1'])).stdout).toBe('');
      const t1 = await mkdtemp(join(work, 'k1-'));
      const m1 = ok(await ctr(['mounts', t1, 'k1'])).stdout.trim();
      await runPrinted(m1, t1);
      await writeFile(join(t1, 'hello'), 'from k1');
      await unmount(t1);
      // What was written through the mount is in the snapshot's directory.
      const source = m1.split(' ')[3]!;
      expect(await readFile(join(source, 'hello'), 'utf8')).toBe('from k1');

      ok(await ctr(['commit', 'c1', 'k1']));
      ok(await ctr(['prepare', 'k2', 'c1']));
      const t2 = await mkdtemp(join(work, 'k2-'));
      const m2 = ok(await ctr(['mounts', t2, 'k2'])).stdout.trim();
      if (snapshotter === 'overlayfs') expect(m2).toMatch(/^mount -t overlay overlay .* -o .*upperdir=.*lowerdir=/);
      await runPrinted(m2, t2);
      if (snapshotter === 'overlayfs') expect(mountedType(t2)).toBe('overlay');
      else expect(mountedType(t2)).not.toBe('overlay');
      expect(await readFile(join(t2, 'hello'), 'utf8')).toBe('from k1');
      await writeFile(join(t2, 'world'), 'from k2');
      await rm(join(t2, 'hello'));
      await unmount(t2);

      ok(await ctr(['view', 'v1', 'c1']));
      const t3 = await mkdtemp(join(work, 'v1-'));
      await runPrinted(ok(await ctr(['mounts', t3, 'v1'])).stdout.trim(), t3);
      // The view shows c1 (not k2's changes) and cannot be written.
      expect(readdirSync(t3)).toEqual(['hello']);
      await expect(writeFile(join(t3, 'nope'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
      await unmount(t3);

      const ls = table(ok(await ctr(['ls'])).stdout).sort((a, b) => a.KEY!.localeCompare(b.KEY!));
      expect(ls).toEqual([
        { KEY: 'c1', PARENT: '', KIND: 'Committed' },
        { KEY: 'k2', PARENT: 'c1', KIND: 'Active' },
        { KEY: 'v1', PARENT: 'c1', KIND: 'View' },
      ]);

      const tree = ok(await ctr(['tree'])).stdout.split('\n').filter(Boolean);
      expect(tree[0]).toBe(' c1');
      expect(tree.slice(1).sort()).toEqual(['  \\_ k2', '  \\_ v1']);

      const usage = table(ok(await ctr(['usage', '-b'])).stdout);
      expect(usage.map((r) => r.KEY).sort()).toEqual(['c1', 'k2', 'v1']);
      const c1Usage = usage.find((r) => r.KEY === 'c1')!;
      // c1 holds its root directory and `hello`.
      expect(Number(c1Usage.INODES)).toBe(2);
      expect(Number(c1Usage.SIZE)).toBeGreaterThanOrEqual('from k1'.length);
      expect(table(ok(await ctr(['usage', 'c1'])).stdout).map((r) => r.KEY)).toEqual(['c1']);

      const info = JSON.parse(ok(await ctr(['info', 'c1'])).stdout) as { Kind: string; Name: string; Parent?: string; Labels: Record<string, string> };
      expect(info).toMatchObject({ Kind: 'Committed', Name: 'c1' });
      expect(Object.keys(info.Labels)).toEqual(['containerd.io/gc.root']);
      const k2Info = JSON.parse(ok(await ctr(['info', 'k2'])).stdout) as { Kind: string; Parent?: string };
      expect(k2Info).toMatchObject({ Kind: 'Active', Parent: 'c1' });

      expect(ok(await ctr(['label', 'c1', 'a=b'])).stdout).toContain('a=b');
      expect((JSON.parse(ok(await ctr(['info', 'c1'])).stdout) as typeof info).Labels.a).toBe('b');
      ok(await ctr(['label', 'c1', 'a=']));
      expect((JSON.parse(ok(await ctr(['info', 'c1'])).stdout) as typeof info).Labels).not.toHaveProperty('a');

      // ctr diff mounts k2, views c1 under a lease of its own, and asks the Diff service to compare.
      const plugins = ok(await daemon.ctr(['plugins', 'ls'])).stdout;
      const diff = await ctr(['diff', 'k2', 'c1']);
      if (/^io\.containerd\.grpc\.v1\s+diff\s/m.test(plugins)) {
        // ctr writes the layer itself to stdout. Compare(lower = k2, upper = c1): c1 has `hello` that k2 deleted,
        // and lacks k2's `world`, so the layer adds one and whites out the other.
        expect(diff.code, diff.stderr).toBe(0);
        expect([...diff.stdoutBuffer.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
        const list = await run('tar', ['-tz'], { input: diff.stdoutBuffer });
        expect(list.code, list.stderr).toBe(0);
        const entries = list.stdout.split('\n').filter(Boolean).map((e) => e.replace(/^\.\//, ''));
        expect(entries).toContain('hello');
        expect(entries).toContain('.wh.world');
        expect(entries).not.toContain('world');
      } else {
        // No Diff service in this build: a clear error, and ctr's view and lease are gone again.
        expect(diff.code).toBe(1);
        expect(diff.stderr).toContain('/containerd.services.diff.v1.Diff/Diff: not implemented');
      }
      expect(await keys(namespace, snapshotter)).not.toContain('c1-view-key');
      expect(ok(await daemon.ctr(['leases', 'ls', '-q'], { namespace })).stdout.trim()).toBe('');
      // ctr labels what it prepares and commits as a GC root, not what it views: a collection takes v1, as
      // containerd's would (the end of ctr diff's lease may already have started one).
      await collect(namespace);
      expect((await keys(namespace, snapshotter)).sort()).toEqual(['c1', 'k2']);

      // rm: refused while c1 has children, then child and parent in one call; GC then removes their directories.
      const refused = await ctr(['rm', 'c1']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('cannot remove snapshot with child: failed precondition');
      expect(await keys(namespace, snapshotter)).toContain('c1');
      ok(await ctr(['rm', 'k2', 'c1']));
      expect(await keys(namespace, snapshotter)).toEqual([]);
      await collect(namespace);
      expect(snapshotDirs(snapshotter)).toEqual([]);
      expect(existsSync(source)).toBe(false);
    }, 60_000);
  }

  it('publishes /snapshot/prepare, commit and remove, which ctr events shows (a view publishes nothing)', async () => {
    const namespace = 'it-events';
    const events = await watchCtrEvents(daemon);
    try {
      const sn = (args: string[]) => daemon.ctr(['snapshots', '--snapshotter', 'native', ...args], { namespace });
      ok(await sn(['prepare', 'ek']));
      ok(await sn(['commit', 'ec', 'ek']));
      ok(await sn(['view', 'ev', 'ec']));
      ok(await sn(['prepare', 'ek2', 'ec']));
      ok(await sn(['rm', 'ek2', 'ev', 'ec']));
      const expected = [
        '/snapshot/prepare {"key":"ek"}',
        '/snapshot/commit {"key":"ek","name":"ec"}',
        '/snapshot/prepare {"key":"ek2","parent":"ec"}',
        '/snapshot/remove {"key":"ek2"}',
        '/snapshot/remove {"key":"ev"}',
        '/snapshot/remove {"key":"ec"}',
      ];
      const mine = () =>
        events.output()
          .split('\n')
          .map((line) => line.split(' '))
          .filter((f) => f[4] === namespace)
          .map((f) => f.slice(5).join(' '));
      const until = Date.now() + 10_000;
      while (mine().length < expected.length && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(mine()).toEqual(expected);
    } finally {
      events.stop();
    }
  });

  it('keeps a snapshot prepared under a ctr lease through GC until ctr leases rm --sync', async () => {
    const namespace = 'it-leases';
    ok(await daemon.ctr(['leases', 'create', '--id', 'unpack'], { namespace }));
    const leased = await prepareOverGrpc(namespace, 'overlayfs', 'leased', '', 'unpack');
    // The control: the same snapshot without a lease (and without ctr's gc.root label) is collected.
    const unleased = await prepareOverGrpc(namespace, 'overlayfs', 'unleased', '');
    expect(existsSync(leased) && existsSync(unleased)).toBe(true);
    await collect(namespace);
    expect(await keys(namespace, 'overlayfs')).toEqual(['leased']);
    expect(existsSync(leased)).toBe(true);
    expect(existsSync(unleased)).toBe(false);

    const rmLease = ok(await daemon.ctr(['leases', 'rm', '--sync', 'unpack'], { namespace }));
    expect(rmLease.stdout.trim()).toBe('unpack');
    expect(await keys(namespace, 'overlayfs')).toEqual([]);
    expect(existsSync(leased)).toBe(false);
  });

  it('keeps a snapshot that a gc.ref.snapshot label names, and its parents, until the label goes', async () => {
    const namespace = 'it-gc-refs';
    const sn = (args: string[]) => daemon.ctr(['snapshots', ...args], { namespace });
    ok(await sn(['prepare', 'holder']));
    // A chain base <- top committed under a lease, as an unpack makes it.
    ok(await daemon.ctr(['leases', 'create', '--id', 'unpack'], { namespace }));
    await prepareOverGrpc(namespace, 'overlayfs', 'base-key', '', 'unpack');
    await commitOverGrpc(namespace, 'overlayfs', 'base', 'base-key', 'unpack');
    await prepareOverGrpc(namespace, 'overlayfs', 'top-key', 'base', 'unpack');
    await commitOverGrpc(namespace, 'overlayfs', 'top', 'top-key', 'unpack');
    // A reference under another snapshotter's name does not hold overlayfs' snapshots.
    ok(await sn(['label', 'holder', 'containerd.io/gc.ref.snapshot.native=top']));
    ok(await sn(['label', 'holder', 'containerd.io/gc.ref.snapshot.overlayfs=top']));
    ok(await daemon.ctr(['leases', 'rm', '--sync', 'unpack'], { namespace }));
    expect((await keys(namespace, 'overlayfs')).sort()).toEqual(['base', 'holder', 'top']);

    ok(await sn(['label', 'holder', 'containerd.io/gc.ref.snapshot.overlayfs=']));
    await collect(namespace);
    expect(await keys(namespace, 'overlayfs')).toEqual(['holder']);
    ok(await sn(['rm', 'holder']));
    await collect(namespace);
  });
});
