/** What each case of the snapshotter suite works with: the snapshotter, mounts into a work dir, tree checks. */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Labels, OpContext } from '../kinds/context.js';
import type { Mount, SnapshotScope, Snapshotter } from '../kinds/snapshots.js';
import { readTree, treeDifferences, type ConformanceSys, type ReadTreeOptions, type TreeOp } from './fstest.js';

/** What a snapshotter implementation hands the suite for each case. */
export interface SnapshotterFixture {
  /** A fresh snapshotter (or one whose other snapshots do not matter: the suite prefixes its keys). */
  readonly snapshotter: Snapshotter<SnapshotScope>;
  readonly ctx: OpContext;
  /** Releases the snapshotter and removes whatever the fixture created (also after `close()` was called). */
  cleanup(): Promise<void>;
}

/** Thrown by `env.skip` outside vitest (runSnapshotterCase), so a caller can tell a skip from a failure. */
export class CaseSkipped extends Error {}

export interface Mounted {
  readonly path: string;
  unmount(): Promise<void>;
}

export class CaseEnv {
  /** Mount points still mounted, unmounted by `dispose` if a case failed before its own `finally`. */
  private readonly mounted = new Set<string>();
  private readonly uid = randomBytes(3).toString('hex');

  private constructor(
    readonly sn: Snapshotter<SnapshotScope>,
    readonly ctx: OpContext,
    readonly sys: ConformanceSys,
    readonly work: string,
    public skip: (reason: string) => never,
  ) {}

  static async create(fixture: SnapshotterFixture, sys: ConformanceSys, skip: (reason: string) => never): Promise<CaseEnv> {
    const work = await mkdtemp(join(tmpdir(), 'berth-snapshotter-suite-'));
    return new CaseEnv(fixture.snapshotter, fixture.ctx, sys, work, skip);
  }

  /** A key or name unique to this case, so that a shared snapshotter's other snapshots never collide. */
  key(name: string): string {
    return `${this.uid}-${name}`;
  }

  /** Only the snapshots this case made, from a list of names. */
  mine(names: Iterable<string>): string[] {
    return [...names].filter((n) => n.startsWith(`${this.uid}-`)).sort();
  }

  /** Labels as containerd's suite puts on everything (a gc root, so that no collector takes the snapshots). */
  get opt(): { labels: Labels } {
    return { labels: { 'containerd.io/gc.root': new Date().toISOString() } };
  }

  /** A fresh empty directory under the work dir. */
  async dir(prefix: string): Promise<string> {
    return mkdtemp(join(this.work, `${prefix}-`));
  }

  /** Mounts `mounts` (with @berth/sys mountAll) on a fresh directory. */
  async mount(mounts: readonly Mount[]): Promise<Mounted> {
    expect(mounts.length, 'a snapshot has at least one mount').toBeGreaterThan(0);
    const path = await this.dir('mnt');
    await this.sys.mountAll(mounts, path);
    this.mounted.add(path);
    return {
      path,
      unmount: async () => {
        if (!this.mounted.delete(path)) return;
        await this.sys.unmountAll(path);
        await rmdir(path);
      },
    };
  }

  /** Runs `fn` on the mounted tree and unmounts it afterwards, also when `fn` fails. */
  async withMount<T>(mounts: readonly Mount[], fn: (dir: string) => Promise<T>): Promise<T> {
    const m = await this.mount(mounts);
    try {
      return await fn(m.path);
    } finally {
      await m.unmount();
    }
  }

  /** Applies operations to a mounted snapshot. */
  async apply(mounts: readonly Mount[], op: TreeOp): Promise<void> {
    await this.withMount(mounts, (dir) => op(dir, this.sys));
  }

  /** Expects the tree under `dir` to equal the one under `expected`, entry by entry. */
  async expectTree(dir: string, expected: string, options?: ReadTreeOptions): Promise<void> {
    const diff = treeDifferences(await readTree(dir, this.sys, options), await readTree(expected, this.sys, options));
    expect(diff, `tree of ${dir} against ${expected}`).toEqual([]);
  }

  /** Expects the committed snapshot `name`, seen through a view, to equal the tree under `expected`. */
  async expectSnapshot(name: string, expected: string, options?: ReadTreeOptions): Promise<void> {
    const view = `${name}-check-view`;
    const mounts = await this.sn.view(this.ctx, view, name, this.opt);
    try {
      await this.withMount(mounts, (dir) => this.expectTree(dir, expected, options));
    } finally {
      await this.sn.remove(this.ctx, view);
    }
  }

  /**
   * containerd's checkSnapshots: each operation becomes one committed layer on top of the previous one (applied
   * through the mounts that Mounts returns), and after each commit a view of it must equal a flat directory that
   * had all operations so far applied. Returns the names.
   */
  async checkLayers(layers: readonly TreeOp[], options?: ReadTreeOptions, prefix = 'layer'): Promise<string[]> {
    const flat = await this.dir('flat');
    const names: string[] = [];
    let parent = '';
    for (const [i, layer] of layers.entries()) {
      const name = this.key(`${prefix}-${i}`);
      const active = `${name}-active`;
      await this.sn.prepare(this.ctx, active, parent, this.opt);
      // What Mounts returns (the other cases mount what Prepare returned; 'mounts returns ...' checks they agree).
      await this.apply(await this.sn.mounts(this.ctx, active), layer);
      await this.sn.commit(this.ctx, name, active, this.opt);
      await layer(flat, this.sys);
      await this.expectSnapshot(name, flat, options);
      names.push(name);
      parent = name;
    }
    return names;
  }

  async readText(dir: string, path: string): Promise<string> {
    return readFile(join(dir, path), 'utf8');
  }

  /**
   * Unmounts what a failed case left mounted and removes the work dir. Whatever is still mounted under it (a case
   * that mounted on its own) is detached first; if something stays mounted, nothing is removed, since a recursive
   * remove would go through a bind mount into the snapshot itself.
   */
  async dispose(): Promise<void> {
    for (const path of [...this.mounted].reverse()) await this.sys.unmountAll(path).catch(() => undefined);
    this.mounted.clear();
    for (const path of await mountsUnder(this.work)) await this.sys.unmountAll(path, MNT_DETACH).catch(() => undefined);
    const left = await mountsUnder(this.work);
    if (left.length > 0) throw new Error(`still mounted after the case, so ${this.work} is left in place: ${left.join(', ')}`);
    await rm(this.work, { recursive: true, force: true });
  }
}

const MNT_DETACH = 2;

/** Mount points at or under `dir`, deepest first (from /proc/self/mountinfo, whose paths escape blanks as octal). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** One case of the suite. `timeout` in ms, when longer than vitest's default is needed. */
export interface SnapshotterCase {
  readonly name: string;
  readonly timeout?: number;
  run(env: CaseEnv): Promise<void>;
}
