// The conformance suite against wrappers of the native snapshotter: a trivial prefixing wrapper (a toy of what the
// metadata plugin does: its own key space over the raw store) must pass every case; wrappers that each break one
// promise must make the case about that promise fail, which shows that the suite's cases can fail.
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FailedPreconditionError,
  adaptSnapshot,
  isInvalidArgument,
  isFailedPrecondition,
  parseFilters,
  type Mount,
  type OpContext,
  type SnapshotInfo,
  type SnapshotOptions,
  type SnapshotScope,
  type Snapshotter,
} from '@berth/core';
import {
  CaseSkipped,
  casesLeftToTheNativeSuite,
  describeSnapshotterConformance,
  runSnapshotterCase,
  snapshotterCase,
  snapshotterSuiteUnavailable,
  type SnapshotterFixture,
} from '@berth/core/testing';
import * as sys from '@berth/sys';
import { describe, expect, it } from 'vitest';
import { NativeSnapshotter } from './native-snapshotter.js';

type Info = Pick<SnapshotInfo, 'name'> & Partial<Pick<SnapshotInfo, 'labels'>>;

/** Keys of its own (`<prefix>/<key>` in the raw store), translated both ways; filters apply to its own names. */
class PrefixedSnapshotter implements Snapshotter<SnapshotScope> {
  readonly scope = 'namespaced' as const;
  constructor(
    protected readonly inner: NativeSnapshotter,
    private readonly prefix: string,
  ) {}
  private to = (key: string) => (key === '' ? '' : `${this.prefix}/${key}`);
  private from = (info: SnapshotInfo): SnapshotInfo => ({ ...info, name: info.name.slice(this.prefix.length + 1), parent: info.parent === '' ? '' : info.parent.slice(this.prefix.length + 1) });
  stat = async (ctx: OpContext, key: string) => this.from(await this.inner.stat(ctx, this.to(key)));
  update = async (ctx: OpContext, info: Info, fieldpaths?: readonly string[]) => this.from(await this.inner.update(ctx, { ...info, name: this.to(info.name) }, fieldpaths));
  usage = (ctx: OpContext, key: string) => this.inner.usage(ctx, this.to(key));
  mounts = (ctx: OpContext, key: string) => this.inner.mounts(ctx, this.to(key));
  prepare = (ctx: OpContext, key: string, parent: string, o?: SnapshotOptions): Promise<Mount[]> => this.inner.prepare(ctx, this.to(key), this.to(parent), o);
  view = (ctx: OpContext, key: string, parent: string, o?: SnapshotOptions): Promise<Mount[]> => this.inner.view(ctx, this.to(key), this.to(parent), o);
  commit = (ctx: OpContext, name: string, key: string, o?: SnapshotOptions) => this.inner.commit(ctx, this.to(name), this.to(key), o);
  remove = (ctx: OpContext, key: string) => this.inner.remove(ctx, this.to(key));
  async *walk(ctx: OpContext, filters?: readonly string[]): AsyncIterable<SnapshotInfo> {
    const filter = parseFilters(filters ?? []);
    for await (const info of this.inner.walk(ctx, [`name~=^${this.prefix}/`])) {
      const mine = this.from(info);
      if (await filter.match(adaptSnapshot(mine))) yield mine;
    }
  }
  cleanup = (ctx: OpContext) => this.inner.cleanup(ctx);
  close = () => this.inner.close();
}

async function nativeFixture(wrap: (inner: NativeSnapshotter) => Snapshotter<SnapshotScope>): Promise<SnapshotterFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-native-wrapped-'));
  const inner = await NativeSnapshotter.open({ root: join(dir, 'native') });
  return {
    snapshotter: wrap(inner),
    ctx: { namespace: 'conformance' },
    async cleanup() {
      await inner.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describeSnapshotterConformance('native behind a prefixing wrapper', () => nativeFixture((inner) => new PrefixedSnapshotter(inner, 'ns-1')), {
  sys,
  skip: casesLeftToTheNativeSuite,
});

/** A prefixing wrapper with one method replaced. */
function broken(patch: (w: PrefixedSnapshotter, inner: NativeSnapshotter) => Partial<Snapshotter<SnapshotScope> & { close(): Promise<void> }>) {
  return () =>
    nativeFixture((inner) => {
      const w = new PrefixedSnapshotter(inner, 'ns-b');
      return Object.assign(w, patch(w, inner));
    });
}

const ctxOf = (ctx: OpContext) => ctx;

const mutations: [string, ReturnType<typeof broken>][] = [
  [
    'a view cannot be written (EROFS)',
    broken((w) => {
      const view = w.view;
      return { view: async (ctx, key, parent, o) => (await view(ctx, key, parent, o)).map((m) => ({ ...m, options: m.options.map((x) => (x === 'ro' ? 'rw' : x)) })) };
    }),
  ],
  [
    'removing an intermediate snapshot is refused while it has children',
    broken((w) => {
      const remove = w.remove;
      return { remove: (ctx, key) => remove(ctx, key).catch((err: unknown) => (isFailedPrecondition(err) ? undefined : Promise.reject(err))) };
    }),
  ],
  [
    'walk with filters (name, parent, kind, labels)',
    broken((w) => {
      const walk = w.walk.bind(w);
      return { walk: (ctx) => walk(ctx) };
    }),
  ],
  [
    'basic prepare, commit and view chain',
    broken((w) => {
      const prepare = w.prepare;
      // Ignores the parent: a fresh empty snapshot.
      return { prepare: (ctx, key, _parent, o) => prepare(ctx, key, '', o) };
    }),
  ],
  [
    'renames over lower layers',
    broken((w) => {
      const prepare = w.prepare;
      // Copies the parent's tree but leaves out what sits in subdirectories (a shallow copy).
      return {
        prepare: async (ctx, key, parent, o) => {
          const mounts = await prepare(ctx, key, parent, o);
          for (const entry of await readdir(mounts[0]!.source, { withFileTypes: true })) {
            if (entry.isDirectory()) for (const inner of await readdir(join(mounts[0]!.source, entry.name))) await rm(join(mounts[0]!.source, entry.name, inner), { recursive: true });
          }
          return mounts;
        },
      };
    }),
  ],
  [
    'update of labels (field paths)',
    broken((w) => {
      const update = w.update;
      return { update: (ctx, info) => update(ctx, info) };
    }),
  ],
  [
    'labels given at prepare, view and commit',
    broken((w) => {
      const commit = w.commit;
      return {
        commit: async (ctx, name, key, o) => {
          const labels = (await w.stat(ctx, key)).labels;
          await commit(ctx, name, key, { labels: { ...labels, ...o?.labels } });
        },
      };
    }),
  ],
  ['usage of active and committed snapshots', broken(() => ({ usage: async () => ({ size: 0, inodes: 0 }) }))],
  [
    'cleanup leaves existing snapshots intact',
    broken((w) => ({
      cleanup: async (ctx) => {
        for await (const info of w.walk(ctxOf(ctx), ['kind==view'])) await w.remove(ctx, info.name);
      },
    })),
  ],
  [
    'errors (NotFound, FailedPrecondition, InvalidArgument) change nothing',
    broken((w) => {
      const prepare = w.prepare;
      return {
        prepare: (ctx, key, parent, o) =>
          prepare(ctx, key, parent, o).catch((err: unknown) => Promise.reject(isInvalidArgument(err) && key !== '' ? new FailedPreconditionError('parent not committed') : err)),
      };
    }),
  ],
  [
    'stat in walk',
    broken((w) => {
      const walk = w.walk.bind(w);
      return {
        walk: async function* (ctx, filters) {
          for await (const info of walk(ctx, filters)) yield { ...info, updatedAt: new Date(info.updatedAt.getTime() + 1) };
        },
      };
    }),
  ],
  [
    'root permissions',
    broken((w) => {
      const prepare = w.prepare;
      return {
        prepare: async (ctx, key, parent, o) => {
          const mounts = await prepare(ctx, key, parent, o);
          await chmod(mounts[0]!.source, 0o700);
          return mounts;
        },
      };
    }),
  ],
  [
    'mounts returns what prepare and view returned',
    broken((w) => {
      const mounts = w.mounts;
      return { mounts: async (ctx, key) => (await mounts(ctx, key)).map((m) => ({ ...m, options: [...m.options].reverse() })) };
    }),
  ],
  [
    'close twice',
    broken((_w, inner) => {
      let closed = false;
      return {
        close: async () => {
          if (closed) throw new Error('closed already');
          closed = true;
          await inner.close();
        },
      };
    }),
  ],
  [
    'special files, owners, xattrs and times reach children',
    broken((w) => {
      const prepare = w.prepare;
      // A copy that keeps content and modes but not owners, times or xattrs (`cp -R` instead of `cp -a`).
      return {
        prepare: async (ctx, key, parent, o) => {
          const mounts = await prepare(ctx, key, parent, o);
          if (parent !== '') {
            const from = (await w.view(ctx, `${key}-src`, parent))[0]!.source;
            await rm(mounts[0]!.source, { recursive: true });
            execFileSync('cp', ['-R', '--preserve=mode', from, mounts[0]!.source]);
            await w.remove(ctx, `${key}-src`);
          }
          return mounts;
        },
      };
    }),
  ],
  [
    'keys of any shape',
    broken((w) => {
      const stat = w.stat;
      return { stat: async (ctx, key) => ({ ...(await stat(ctx, key)), name: key.slice(0, 255) }) };
    }),
  ],
];

describe.skipIf(snapshotterSuiteUnavailable() !== undefined)('the suite fails a snapshotter that breaks a promise', () => {
  for (const [name, factory] of mutations) {
    it(`"${name}" fails`, async () => {
      const outcome = await runSnapshotterCase(snapshotterCase(name), factory, sys).then(
        () => 'passed',
        (err: unknown) => (err instanceof CaseSkipped ? 'skipped' : 'failed'),
      );
      expect(outcome).toBe('failed');
    });
  }

  it('and passes the same cases without the breakage', async () => {
    for (const [name] of mutations) await runSnapshotterCase(snapshotterCase(name), () => nativeFixture((inner) => new PrefixedSnapshotter(inner, 'ns-ok')), sys);
  }, 120_000);
});
