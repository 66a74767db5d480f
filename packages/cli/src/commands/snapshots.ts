import { Option, type Command } from 'commander';
import { callOptionsOf, SnapshotterProxy } from '@berth/client';
import { DataLossError, type Snapshotter, type SnapshotInfo } from '@berth/core';
import { labelUpdate, parseDuration, parseLabels } from '../args.js';
import { ReportedFailure, type CliContext } from '../context.js';
import { binarySize, formatDate, formatLabels, formatRfc3339 } from '../format.js';
import { writeBlobToStdout } from './content.js';
import { DEFAULT_LEASE_EXPIRY, generateLeaseId, leaseLabels } from './leases.js';
import { DEFAULT_DIFF_MEDIA_TYPE, GC_ROOT_LABEL, snapshotDiff, type SnapshotDiffDeps } from './snapshot-diff.js';
import { formatTree, goMountsJson, kindName, mountCommands, mountJson, snapshotJson, snapshotTree } from './snapshot-output.js';

/** The snapshotter of containerd's Linux default, which ctr uses when none is named. */
export const DEFAULT_SNAPSHOTTER = 'overlayfs';

/** What ctr's prepare and commit add so that the new snapshot outlives the garbage collector: the time, to the second. */
function gcRootLabels(): Record<string, string> {
  return { [GC_ROOT_LABEL]: formatRfc3339(new Date()) };
}

async function createLease(ctx: CliContext): Promise<string> {
  const { lease } = await ctx.berth().leases.Create({ id: generateLeaseId(), labels: leaseLabels({}, parseDuration(DEFAULT_LEASE_EXPIRY)) });
  if (!lease) throw new DataLossError('the daemon returned no lease');
  return lease.id;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerSnapshots(program: Command, ctx: CliContext): void {
  const group = program
    .command('snapshots')
    .alias('snapshot')
    .description('manage snapshots (of the snapshotter named by --snapshotter)')
    .addOption(
      new Option('--snapshotter <name>', `snapshotter name; empty stands for the default (${DEFAULT_SNAPSHOTTER})`)
        .env('BERTH_SNAPSHOTTER')
        .default(DEFAULT_SNAPSHOTTER),
    );

  /** The --snapshotter (given before or after the subcommand), as a Snapshotter over berthd's Snapshots service. */
  const snapshotter = (): Snapshotter => new SnapshotterProxy(ctx.berth(), group.opts<{ snapshotter?: string }>().snapshotter || DEFAULT_SNAPSHOTTER);

  const list = async (filters: readonly string[] = []): Promise<SnapshotInfo[]> => {
    const infos: SnapshotInfo[] = [];
    for await (const info of snapshotter().walk(ctx.op, filters)) infos.push(info);
    return infos;
  };

  group
    .command('ls')
    .alias('list')
    .description('list snapshots (filters as in ctr, e.g. kind==committed, parent==c1, labels."k"==v)')
    .argument('[filters...]', 'filters, ORed together')
    .option('-q, --quiet', 'print only the keys')
    .action(async (filters: string[], opts: { quiet?: boolean }) => {
      const infos = await list(filters);
      if (ctx.json) ctx.printJson(infos.map(snapshotJson));
      else if (opts.quiet) for (const i of infos) ctx.line(i.name);
      else ctx.table([['KEY', 'PARENT', 'KIND'], ...infos.map((i) => [i.name, i.parent || '-', kindName(i.kind)])]);
    });

  group
    .command('tree')
    .description('show the snapshots as a tree of parents and children')
    .argument('[filters...]', 'filters, ORed together')
    .action(async (filters: string[]) => {
      const roots = snapshotTree(await list(filters));
      if (ctx.json) ctx.printJson(roots);
      else ctx.write(formatTree(roots));
    });

  group
    .command('info')
    .description('show the kind, parent, dates and labels of a snapshot')
    .argument('<key>')
    .action(async (key: string) => {
      const info = await snapshotter().stat(ctx.op, key);
      if (ctx.json) return ctx.printJson(snapshotJson(info));
      ctx.table(
        [
          ['Name:', info.name],
          ['Kind:', kindName(info.kind)],
          ['Parent:', info.parent || '-'],
          ['Created:', formatDate(info.createdAt) || '-'],
          ['Updated:', formatDate(info.updatedAt) || '-'],
          ['Labels:', formatLabels(info.labels)],
        ],
        { padding: 1 },
      );
    });

  group
    .command('usage')
    .description('show the disk usage of snapshots (all, or the keys given), parents excluded')
    .argument('[keys...]')
    .option('-b', 'print sizes in bytes')
    .action(async (keys: string[], opts: { b?: boolean }) => {
      const sn = snapshotter();
      const names = keys.length > 0 ? keys : (await list()).map((i) => i.name);
      const usages: { key: string; size: number; inodes: number }[] = [];
      for (const key of names) usages.push({ key, ...(await sn.usage(ctx.op, key)) });
      if (ctx.json) return ctx.printJson(usages);
      const size = (n: number) => (opts.b ? String(n) : binarySize(n));
      ctx.table([['KEY', 'SIZE', 'INODES'], ...usages.map((u) => [u.key, size(u.size), String(u.inodes)])]);
    });

  for (const kind of ['prepare', 'view'] as const) {
    group
      .command(kind)
      .description(
        kind === 'prepare'
          ? 'create an active (writable) snapshot on a committed parent (none: an empty one)'
          : 'create a read-only view of a committed snapshot',
      )
      .argument('<key>')
      .argument('[parent]', 'committed snapshot to start from', '')
      .option('-t, --target <path>', 'print the mount commands for this mount point')
      .option('--mounts', "print the mounts as JSON, in ctr's shape")
      .action(async (key: string, parent: string, opts: { target?: string; mounts?: boolean }) => {
        const sn = snapshotter();
        // As ctr: a prepared snapshot is a root of the garbage collector; a view is not (it lives in --lease, if any).
        const mounts = kind === 'prepare' ? await sn.prepare(ctx.op, key, parent, { labels: gcRootLabels() }) : await sn.view(ctx.op, key, parent);
        if (ctx.json) return ctx.printJson(mounts.map(mountJson));
        if (opts.target) ctx.write(mountCommands(opts.target, mounts));
        if (opts.mounts) ctx.line(goMountsJson(mounts));
      });
  }

  group
    .command('mounts')
    .aliases(['mount', 'm'])
    .description('print the mount commands that mount an active snapshot or a view at <target>')
    .argument('<target>', 'mount point')
    .argument('<key>')
    .action(async (target: string, key: string) => {
      const mounts = await snapshotter().mounts(ctx.op, key);
      if (ctx.json) ctx.printJson(mounts.map(mountJson));
      else ctx.write(mountCommands(target, mounts));
    });

  group
    .command('commit')
    .description('commit the active snapshot <key> under <name>')
    .argument('<name>')
    .argument('<key>', 'the active snapshot')
    .action(async (name: string, key: string) => {
      const sn = snapshotter();
      await sn.commit(ctx.op, name, key, { labels: gcRootLabels() });
      if (ctx.json) ctx.printJson(snapshotJson(await sn.stat(ctx.op, name)));
    });

  group
    .command('rm')
    .aliases(['remove', 'delete', 'del'])
    .description('remove snapshots; prints each key removed (one with children is refused)')
    .argument('<keys...>')
    .action(async (keys: string[]) => {
      const sn = snapshotter();
      const removed: string[] = [];
      let failed = 0;
      for (const key of keys) {
        try {
          await sn.remove(ctx.op, key);
        } catch (err) {
          failed++;
          ctx.error(`failed to remove ${JSON.stringify(key)}: ${ctx.describeError(err)}`);
          continue;
        }
        removed.push(key);
        if (!ctx.json) ctx.line(key);
      }
      if (ctx.json) ctx.printJson(removed);
      if (failed > 0) throw new ReportedFailure();
    });

  group
    .command('label')
    .description('set labels of a snapshot (k= removes k); prints the resulting labels')
    .argument('<key>')
    .argument('[labels...]', 'k=v labels')
    .action(async (key: string, labelArgs: string[]) => {
      const sn = snapshotter();
      const { labels, paths } = labelUpdate(parseLabels(labelArgs));
      const info = paths.length > 0 ? await sn.update(ctx.op, { name: key, labels }, paths) : await sn.stat(ctx.op, key);
      if (ctx.json) ctx.printJson({ key, labels: info.labels });
      else ctx.line(formatLabels(info.labels, ''));
    });

  group
    .command('diff')
    .description("write the layer from <a> to <b> (default: from a's parent to <a>) to stdout (Diff service)")
    .argument('<a>')
    .argument('[b]')
    .option('--media-type <type>', 'media type of the layer', DEFAULT_DIFF_MEDIA_TYPE)
    .option('--ref <ref>', 'ingest reference of the layer (default: the differ picks one)', '')
    .option('--keep', `keep the layer in the content store (label ${GC_ROOT_LABEL})`)
    .option('--label <k=v>', 'label of the layer (repeatable)', collect, [])
    .action(async (a: string, b: string | undefined, opts: { mediaType: string; ref: string; keep?: boolean; label: string[] }) => {
      const labels = parseLabels(opts.label);
      if (opts.keep) Object.assign(labels, gcRootLabels());
      const client = ctx.berth();
      const deps: SnapshotDiffDeps = {
        snapshotter: snapshotter(),
        diff: (request, op) => client.diff.Diff(request, callOptionsOf(op)),
        createLease: () => createLease(ctx),
        deleteLease: async (id) => void (await client.leases.Delete({ id })),
        warn: (message) => ctx.warn(message),
      };
      await snapshotDiff(deps, ctx.op, a, b, { mediaType: opts.mediaType, ref: opts.ref, labels }, async (desc, op) => {
        if (ctx.json) ctx.printJson({ media_type: desc.mediaType, digest: desc.digest, size: desc.size, annotations: desc.annotations });
        else await writeBlobToStdout(ctx, op, desc.digest);
      });
    });
}
