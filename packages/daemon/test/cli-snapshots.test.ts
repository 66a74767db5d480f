// `berth snapshots …` (the built CLI) against a real berthd, for overlayfs and native, cross-checked with Debian's
// ctr on the same daemon: the same listings, tree, usage and mounts, and mount commands that really mount.
// Build first (the daemon, the CLI and the snapshotter plugins).
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN, DAEMON_MAIN, hasCtr, hasRoot, run, startBerthd, type Berthd, type RunResult } from './harness.js';

const ready = hasRoot() && hasCtr() && existsSync(DAEMON_MAIN) && existsSync(CLI_MAIN);

const daemonDeps = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> }).dependencies;
const pluginDir = (name: string) => fileURLToPath(new URL(`../../plugins/${name}`, import.meta.url));

/**
 * The snapshotter plugins berthd does not compose yet, loaded through plugin_packages (the test keeps working once
 * packages/daemon composes them: then nothing is added).
 */
const extraPlugins = ['snapshotter-overlay', 'snapshotter-native'].filter((name) => !(`@berth/plugin-${name}` in daemonDeps)).map(pluginDir);
/** Whether berthd serves containerd.services.diff.v1.Diff (another branch builds it). */
const hasDiffService = '@berth/plugin-services-diff' in daemonDeps;

/** Data lines of a table (header dropped) as whitespace-separated words: ctr pads with one space, berth with three. */
const words = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/));

// Some 40 CLI and ctr processes per test: generous bounds for a loaded machine, only to catch a stall.
describe.skipIf(!ready)('berth snapshots against berthd', { timeout: 300_000 }, () => {
  let daemon: Berthd;
  let snapshotters: string[] = [];
  const mounted = new Set<string>();

  beforeAll(async () => {
    daemon = await startBerthd({
      config: extraPlugins.length > 0 ? `plugin_packages = [${extraPlugins.map((p) => JSON.stringify(p)).join(', ')}]` : '',
    });
    const plugins = await daemon.ctr(['plugins', 'ls', 'type==io.containerd.snapshotter.v1']);
    snapshotters = words(plugins.stdout)
      .filter((w) => w[w.length - 1] === 'ok')
      .map((w) => w[1] as string);
  });
  afterAll(async () => {
    for (const dir of mounted) await run('umount', [dir]);
    await daemon?.stop();
  });

  const berth = (args: readonly string[], env?: NodeJS.ProcessEnv) => daemon.berth(args, { env });
  const ok = async (args: readonly string[], env?: NodeJS.ProcessEnv): Promise<RunResult> => {
    const r = await berth(args, env);
    expect(r.code, `berth ${args.join(' ')}: ${r.stderr}`).toBe(0);
    expect(r.stderr).toBe('');
    return r;
  };
  const ctrOk = async (namespace: string, args: readonly string[]): Promise<RunResult> => {
    const r = await daemon.ctr(args, { namespace });
    expect(r.code, `ctr ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };
  /** Runs each printed `mount …` line (it must be nothing else) with the shell, as a user pasting it would. */
  const mountPrinted = async (stdout: string, target: string) => {
    const lines = stdout.trimEnd().split('\n');
    for (const line of lines) {
      expect(line).toMatch(new RegExp(`^mount -t \\S+ \\S+ ${target} -o \\S*$`));
      const r = await run('sh', ['-c', line]);
      expect(r.code, `${line}: ${r.stderr}`).toBe(0);
      mounted.add(target);
    }
  };
  const unmount = async (target: string) => {
    const r = await run('umount', [target]);
    expect(r.code, r.stderr).toBe(0);
    mounted.delete(target);
  };

  for (const name of ['overlayfs', 'native']) {
    it(`${name}: prepare, mounts, commit, view, ls, tree, usage, info, label and rm agree with ctr`, async (t) => {
      if (!snapshotters.includes(name)) return t.skip(`berthd has no ${name} snapshotter here (ctr plugins ls: ${snapshotters.join(',')})`);
      const ns = `cli-snap-${name}`;
      const sn = (...args: string[]) => ['-n', ns, 'snapshots', '--snapshotter', name, ...args];
      const mnt = join(daemon.dir, `mnt-${name}`);
      await mkdir(mnt);

      // An empty snapshot: the printed command mounts it writable; what is written there is in the commit.
      expect((await ok(sn('prepare', 'k1'))).stdout).toBe('');
      const printed = (await ok(sn('mounts', mnt, 'k1'))).stdout;
      expect(printed).toBe((await ctrOk(ns, ['snapshots', '--snapshotter', name, 'mounts', mnt, 'k1'])).stdout);
      await mountPrinted(printed, mnt);
      await writeFile(join(mnt, 'hello.txt'), 'from k1\n');
      await unmount(mnt);
      expect((await ok(sn('commit', 'c1', 'k1'))).stdout).toBe('');

      // A child of c1 sees the file; -t prints the commands for a target, --mounts ctr's JSON.
      const k2 = (await ok(sn('prepare', 'k2', 'c1', '-t', mnt))).stdout;
      await mountPrinted(k2, mnt);
      expect(await readFile(join(mnt, 'hello.txt'), 'utf8')).toBe('from k1\n');
      await writeFile(join(mnt, 'k2.txt'), 'k2\n');
      await unmount(mnt);
      // A view is no root of the garbage collector (as with ctr): keep it in a lease.
      await ok(['-n', ns, 'leases', 'create', '--id', `${ns}-lease`, '--expires', '1h']);
      const view = JSON.parse((await ok(['--lease', `${ns}-lease`, ...sn('view', 'v1', 'c1', '--mounts')])).stdout) as { Type: string; Options: string[] }[];
      expect(view.length).toBeGreaterThan(0);
      const ctrView = (await ctrOk(ns, ['snapshots', '--snapshotter', name, 'mounts', '/x', 'v1'])).stdout;
      expect(ctrView).toBe(view.map((m) => `mount -t ${m.Type} ${(m as { Source?: string }).Source} /x -o ${m.Options.join(',')}\n`).join(''));
      expect(view.flatMap((m) => m.Options)).toContain('ro');

      // Listings: ctr's columns and kinds; berth prints '-' where there is no parent.
      // Independent reads run side by side: each process start costs a second on a loaded machine.
      const [lsOut, ctrLsOut, treeOut, ctrTreeOut, usageOut, ctrUsageOut] = await Promise.all([
        ok(sn('ls')),
        ctrOk(ns, ['snapshots', '--snapshotter', name, 'ls']),
        ok(sn('tree')),
        ctrOk(ns, ['snapshots', '--snapshotter', name, 'tree']),
        ok(sn('usage')),
        ctrOk(ns, ['snapshots', '--snapshotter', name, 'usage']),
      ]);
      const mine = words(lsOut.stdout);
      const theirs = words(ctrLsOut.stdout).map((w) => (w.length === 2 ? [w[0], '-', w[1]] : w));
      expect(mine).toEqual(theirs);
      expect(mine.sort()).toEqual([
        ['c1', '-', 'Committed'],
        ['k2', 'c1', 'Active'],
        ['v1', 'c1', 'View'],
      ]);
      expect((await ok(sn('ls', '-q', 'kind==active'))).stdout).toBe('k2\n');
      const lsJson = JSON.parse((await ok(['--format', 'json', ...sn('ls')])).stdout) as { name: string; parent: string; kind: string; labels: Record<string, string> }[];
      expect(lsJson.map((s) => [s.name, s.parent, s.kind]).sort()).toEqual([
        ['c1', '', 'committed'],
        ['k2', 'c1', 'active'],
        ['v1', 'c1', 'view'],
      ]);
      expect(lsJson.find((s) => s.name === 'c1')?.labels['containerd.io/gc.root']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

      const tree = treeOut.stdout;
      expect(tree).toBe(ctrTreeOut.stdout);
      expect(tree).toMatch(/^ c1\n {2}\\_ (k2|v1)\n {2}\\_ (k2|v1)\n$/);
      expect(JSON.parse((await ok(['--format', 'json', ...sn('tree')])).stdout)).toEqual([
        { name: 'c1', kind: 'committed', children: expect.arrayContaining([{ name: 'k2', kind: 'active', children: [] }, { name: 'v1', kind: 'view', children: [] }]) },
      ]);

      // Usage: the same figures and units as ctr's, in bytes with -b, and in JSON.
      expect(words(usageOut.stdout)).toEqual(words(ctrUsageOut.stdout));
      expect(words((await ok(sn('usage', '-b', 'c1', 'k2'))).stdout)).toEqual(words((await ctrOk(ns, ['snapshots', '--snapshotter', name, 'usage', '-b', 'c1', 'k2'])).stdout));
      const usageJson = JSON.parse((await ok(['--format', 'json', ...sn('usage', 'k2')])).stdout) as { key: string; size: number; inodes: number }[];
      const k2Bytes = words((await ok(sn('usage', '-b', 'k2'))).stdout)[0];
      expect(usageJson).toEqual([{ key: 'k2', size: Number(k2Bytes?.[1]), inodes: Number(k2Bytes?.[2]) }]);
      expect(usageJson[0]?.inodes).toBeGreaterThanOrEqual(1);

      // Info and labels, against ctr's JSON of the same snapshot.
      expect((await ok(sn('label', 'c1', 'b=2', 'a=1'))).stdout).toMatch(/^a=1,b=2,containerd\.io\/gc\.root=\S+\n$/);
      expect((await ok(sn('label', 'c1', 'b='))).stdout).toMatch(/^a=1,containerd\.io\/gc\.root=\S+\n$/);
      const ctrInfo = JSON.parse((await ctrOk(ns, ['snapshots', '--snapshotter', name, 'info', 'c1'])).stdout) as {
        Kind: string;
        Name: string;
        Labels: Record<string, string>;
        Created: string;
        Updated: string;
      };
      const info = JSON.parse((await ok(['--format', 'json', ...sn('info', 'c1')])).stdout) as { kind: string; labels: Record<string, string>; created_at: string; updated_at: string };
      expect(info.labels).toEqual(ctrInfo.Labels);
      expect(info.kind).toBe(ctrInfo.Kind.toLowerCase());
      expect(Date.parse(info.created_at)).toBe(Date.parse(ctrInfo.Created));
      expect(Date.parse(info.updated_at)).toBe(Date.parse(ctrInfo.Updated));
      expect((await ok(sn('info', 'k2'))).stdout).toMatch(/^Name: +k2\nKind: +Active\nParent: +c1\nCreated: +\d{4}-.*Z\nUpdated: +.*Z\nLabels: +containerd\.io\/gc\.root=/);

      // The other snapshotter does not see these snapshots.
      const other = name === 'native' ? 'overlayfs' : 'native';
      if (snapshotters.includes(other)) expect((await ok(['-n', ns, 'snapshots', '--snapshotter', other, 'ls', '-q'])).stdout).toBe('');

      // rm: one with children is refused (and the others still go), then the rest in order.
      const refused = await berth(sn('rm', 'c1', 'v1'));
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('v1\n');
      expect(refused.stderr).toMatch(/^berth: failed to remove "c1": .*child.*: failed precondition\n$/);
      expect((await ok(sn('rm', 'k2', 'c1'))).stdout).toBe('k2\nc1\n');
      expect((await ctrOk(ns, ['snapshots', '--snapshotter', name, 'ls'])).stdout.trim().split('\n')).toHaveLength(1);
      const missing = await berth(sn('info', 'c1'));
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/^berth: .*c1.*: not found\n$/);
    });
  }

  it('takes --snapshotter before or after the subcommand, or from BERTH_SNAPSHOTTER; the default is overlayfs', async (t) => {
    if (!snapshotters.includes('native') || !snapshotters.includes('overlayfs')) return t.skip('needs both overlayfs and native');
    const ns = ['-n', 'cli-snap-select'];
    await ok([...ns, 'snapshots', 'prepare', 'on-overlay']);
    await ok([...ns, 'snapshots', '--snapshotter', 'native', 'prepare', 'on-native-1']);
    await ok([...ns, 'snapshots', 'prepare', 'on-native-2', '--snapshotter', 'native']);
    await ok([...ns, 'snapshots', 'prepare', 'on-native-3'], { BERTH_SNAPSHOTTER: 'native' });
    await ok([...ns, 'snapshots', '--snapshotter', '', 'prepare', 'on-overlay-2'], { BERTH_SNAPSHOTTER: '' });
    const ctrList = async (snapshotter: string) =>
      (await ctrOk('cli-snap-select', ['snapshots', '--snapshotter', snapshotter, 'ls'])).stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/)[0])
        .sort();
    expect(await ctrList('native')).toEqual(['on-native-1', 'on-native-2', 'on-native-3']);
    expect(await ctrList('overlayfs')).toEqual(['on-overlay', 'on-overlay-2']);

    const unknown = await berth([...ns, 'snapshots', '--snapshotter', 'zfs', 'ls']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^berth: .*zfs.*\n$/);
  });

  it('refuses what the daemon refuses, with its message, and loses nothing', async (t) => {
    if (!snapshotters.includes('native')) return t.skip('needs native');
    const sn = ['-n', 'cli-snap-bad', 'snapshots', '--snapshotter', 'native'];
    await ok([...sn, 'prepare', 'a1']);
    const dup = await berth([...sn, 'prepare', 'a1']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/^berth: .*a1.*: already exists\n$/);
    const activeParent = await berth([...sn, 'prepare', 'a2', 'a1']);
    expect(activeParent.code).toBe(1);
    expect(activeParent.stderr).toMatch(/^berth: .*: invalid argument\n$/);
    const commitMissing = await berth([...sn, 'commit', 'c', 'nope']);
    expect(commitMissing.stderr).toMatch(/^berth: .*nope.*: not found\n$/);
    expect((await ok([...sn, 'ls', '-q'])).stdout).toBe('a1\n');
    await ok([...sn, 'rm', 'a1']);
  });

  it(`diff without a Diff service fails cleanly and leaves no view or lease behind${hasDiffService ? ' (skipped: berthd has one)' : ''}`, async (t) => {
    if (hasDiffService) return t.skip('berthd composes a Diff service');
    if (!snapshotters.includes('native')) return t.skip('needs native');
    const ns = 'cli-snap-nodiff';
    const sn = ['-n', ns, 'snapshots', '--snapshotter', 'native'];
    await ok([...sn, 'prepare', 'd1']);
    await ok([...sn, 'commit', 'dc1', 'd1']);
    await ok([...sn, 'prepare', 'd2', 'dc1']);
    for (const args of [['d2', 'dc1'], ['d2'], ['dc1']]) {
      const r = await berth([...sn, 'diff', ...args]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^berth: .*Diff.*: not implemented\n$/);
    }
    expect((await ok([...sn, 'ls', '-q'])).stdout.trim().split('\n').sort()).toEqual(['d2', 'dc1']);
    expect((await ctrOk(ns, ['leases', 'ls', '-q'])).stdout).toBe('');
  });

  // The end-to-end diff needs the Diff service (branch h8-differ); until berthd composes it this stays skipped.
  it.skipIf(!hasDiffService)('diff writes the layer ctr writes: from a parent to a child, and between two snapshots', async () => {
    const ns = 'cli-snap-diff';
    const sn = ['-n', ns, 'snapshots', '--snapshotter', 'native'];
    const mnt = join(daemon.dir, 'mnt-diff');
    await mkdir(mnt);
    await ok([...sn, 'prepare', 'l1']);
    await mountPrinted((await ok([...sn, 'mounts', mnt, 'l1'])).stdout, mnt);
    await writeFile(join(mnt, 'base.txt'), 'base\n');
    await unmount(mnt);
    await ok([...sn, 'commit', 'lc1', 'l1']);
    await mountPrinted((await ok([...sn, 'prepare', 'l2', 'lc1', '-t', mnt])).stdout, mnt);
    await writeFile(join(mnt, 'added.txt'), 'added\n');
    await unmount(mnt);

    const listing = async (layer: Buffer) => {
      const r = await run('tar', ['-tz'], { input: layer });
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.split('\n').filter((l) => l !== '').sort();
    };
    const fromParent = await daemon.berth([...sn, 'diff', 'l2']);
    expect(fromParent.code, fromParent.stderr).toBe(0);
    expect(await listing(fromParent.stdoutBuffer)).toEqual(['added.txt']);
    const ctrDiff = await daemon.ctr(['snapshots', '--snapshotter', 'native', 'diff', 'l2'], { namespace: ns });
    expect(await listing(fromParent.stdoutBuffer)).toEqual(await listing(ctrDiff.stdoutBuffer));

    const between = await daemon.berth([...sn, 'diff', 'l2', 'lc1']);
    expect(between.code, between.stderr).toBe(0);
    expect(await listing(between.stdoutBuffer)).toEqual(['.wh.added.txt']);
    const kept = JSON.parse((await ok(['--format', 'json', ...sn, 'diff', '--keep', 'l2'])).stdout) as { digest: string };
    expect((await ctrOk(ns, ['content', 'ls', '-q'])).stdout).toContain(kept.digest);
    expect((await ctrOk(ns, ['leases', 'ls', '-q'])).stdout).toBe('');
  });
});
