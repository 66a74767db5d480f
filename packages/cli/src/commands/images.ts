// `berth images …`: ls, tag, rm, check, inspect, label, mount, unmount, import and export, with ctr's semantics
// (cmd/ctr/commands/images). The work is in images-ops.ts over the kind interfaces; the image store comes from
// imagesToken (the CLI composition's Images proxy), the content store from contentStoreToken.
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import { applierToken, contentStoreToken, imagesToken, InvalidArgumentError, leasesToken, snapshottersToken, type Applier, type SnapshotterSet } from '@berth/core';
import { exportArchive, formatImageTree, importArchive, normalizePlatform, orderedMatcher, parsePlatform, unpackImage, type Platform } from '@berth/images';
import { labelUpdate, parseLabels } from '../args.js';
import { ReportedFailure, type CliContext } from '../context.js';
import { binarySize, formatLabels } from '../format.js';
import {
  checkImages,
  imageJson,
  inspectImage,
  labelImage,
  listImages,
  mountImage,
  removeImages,
  tagImage,
  unmountImage,
  type ImageCommandServices,
  type Mounter,
} from './images-ops.js';
import { DEFAULT_SNAPSHOTTER } from './snapshots.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The image commands' roles from the CLI composition: proxies of berthd's Images, Content, Leases, Snapshots and Diff. */
async function servicesOf(ctx: CliContext): Promise<ImageCommandServices & { snapshotters: SnapshotterSet; applier: Applier }> {
  const snapshotters = await ctx.resolve(snapshottersToken);
  return {
    images: await ctx.resolve(imagesToken),
    content: await ctx.resolve(contentStoreToken),
    leases: await ctx.resolve(leasesToken),
    snapshotters,
    applier: await ctx.resolve(applierToken),
    snapshotter: (name) => snapshotters.get(name || DEFAULT_SNAPSHOTTER),
  };
}

async function sysMounter(): Promise<Mounter> {
  const sys = await import('@berth/sys');
  return { mountAll: (mounts, target) => sys.mountAll(mounts, target), unmountAll: (target) => sys.unmountAll(target) };
}

function platformsOf(specs: readonly string[]): Platform[] {
  return specs.map(parsePlatform);
}

async function writeAll(out: Writable, chunks: AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of chunks) {
    if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
  }
}

interface ImportFlags {
  baseName?: string;
  digests?: boolean;
  skipDigestForNamed?: boolean;
  indexName?: string;
  allPlatforms?: boolean;
  platform: string[];
  label: string[];
  unpack: boolean;
  snapshotter: string;
}

export function registerImages(program: Command, ctx: CliContext): void {
  const group = program
    .command('images')
    .aliases(['image', 'i'])
    .description('manage images');

  const snapshotterOption = () =>
    new Option('--snapshotter <name>', `snapshotter name (default ${DEFAULT_SNAPSHOTTER})`).env('BERTH_SNAPSHOTTER').default(DEFAULT_SNAPSHOTTER);

  group
    .command('ls')
    .alias('list')
    .description('list images (filters as in ctr: name==x, labels."k"==v, target.mediatype~=index)')
    .argument('[filters...]', 'filters, ORed together')
    .option('-q, --quiet', 'print only the image names')
    .action(async (filters: string[], opts: { quiet?: boolean }) => {
      const svc = await servicesOf(ctx);
      if (opts.quiet && !ctx.json) {
        for (const img of await svc.images.list(ctx.op, filters)) ctx.line(img.name);
        return;
      }
      const rows = await listImages(svc, ctx.op, filters);
      for (const r of rows) for (const p of r.problems) ctx.warn(p);
      if (ctx.json) return ctx.printJson(rows.map((r) => ({ ...imageJson(r.image), size: r.size ?? null, platforms: r.platforms })));
      ctx.table([
        ['REF', 'TYPE', 'DIGEST', 'SIZE', 'PLATFORMS', 'LABELS'],
        ...rows.map((r) => [r.image.name, r.image.target.mediaType, r.image.target.digest, binarySize(r.size ?? 0), r.platforms.join(',') || '-', formatLabels(r.image.labels)]),
      ]);
    });

  group
    .command('check')
    .description('check that the content of each image is present for this platform, and whether it is unpacked')
    .argument('[filters...]', 'filters, ORed together')
    .option('-q, --quiet', 'print only the names of complete images')
    .addOption(snapshotterOption())
    .action(async (filters: string[], opts: { quiet?: boolean; snapshotter: string }) => {
      const rows = await checkImages(await servicesOf(ctx), ctx.op, filters, opts.snapshotter);
      for (const r of rows) for (const p of r.problems) ctx.error(p);
      if (ctx.json) {
        ctx.printJson(
          rows.map((r) => ({ name: r.image.name, target: r.image.target, status: r.status, complete: r.complete, required: r.required, present: r.present, missing: r.missing, unpacked: r.unpacked, snapshotter: opts.snapshotter })),
        );
      } else if (opts.quiet) {
        for (const r of rows) if (r.complete) ctx.line(r.image.name);
      } else {
        ctx.table([
          ['REF', 'TYPE', 'DIGEST', 'STATUS', 'SIZE', 'UNPACKED'],
          ...rows.map((r) => [r.image.name, r.image.target.mediaType, r.image.target.digest, r.status, r.size, String(r.unpacked)]),
        ]);
      }
      if (rows.some((r) => r.problems.length > 0)) throw new ReportedFailure();
    });

  group
    .command('inspect')
    .description('show an image: its record, and the index/manifest/config/layer tree (missing blobs marked)')
    .argument('<name>')
    .action(async (name: string) => {
      const { image, tree } = await inspectImage(await servicesOf(ctx), ctx.op, name);
      if (ctx.json) return ctx.printJson({ ...imageJson(image), tree });
      ctx.table(
        [
          ['Name:', image.name],
          ['Created:', image.createdAt.toISOString()],
          ['Updated:', image.updatedAt.toISOString()],
          ['Labels:', formatLabels(image.labels)],
        ],
        { padding: 1 },
      );
      ctx.line('Tree:');
      ctx.write(formatImageTree(tree, '  '));
    });

  group
    .command('tag')
    .description('give the target of <source> one or more new names; prints each')
    .argument('<source>')
    .argument('<targets...>')
    .option('--force', 'replace a name that exists')
    .action(async (source: string, targets: string[], opts: { force?: boolean }) => {
      const made = await tagImage(await servicesOf(ctx), ctx.op, source, targets, opts.force === true);
      if (ctx.json) ctx.printJson(made.map(imageJson));
      else for (const img of made) ctx.line(img.name);
    });

  group
    .command('rm')
    .aliases(['remove', 'delete', 'del'])
    .description('remove images by name; prints each removed (an unknown name is a warning)')
    .argument('<names...>')
    .option('--sync', 'return after garbage collection has removed what the images held')
    .action(async (names: string[], opts: { sync?: boolean }) => {
      const r = await removeImages(await servicesOf(ctx), ctx.op, names, opts.sync === true);
      for (const n of r.notFound) ctx.warn(`${n}: image not found`);
      for (const f of r.failed) ctx.error(`unable to delete ${f.name}: ${ctx.describeError(f.error)}`);
      if (ctx.json) ctx.printJson(r.removed);
      else for (const n of r.removed) ctx.line(n);
      if (r.failed.length > 0) throw new ReportedFailure();
    });

  group
    .command('label')
    .description('set labels of an image (k= removes k); prints the resulting labels')
    .argument('<name>')
    .argument('[labels...]', 'k=v labels')
    .action(async (name: string, labelArgs: string[]) => {
      const { labels, paths } = labelUpdate(parseLabels(labelArgs));
      const img = await labelImage(await servicesOf(ctx), ctx.op, name, labels, paths);
      if (ctx.json) ctx.printJson({ name, labels: img.labels });
      else ctx.line(formatLabels(img.labels, ''));
    });

  group
    .command('mount')
    .description("mount an unpacked image's root filesystem at <target> (a view; --rw: a writable snapshot), as ctr")
    .argument('<ref>')
    .argument('<target>')
    .option('--rw', 'mount a writable snapshot')
    .option('--platform <platform>', 'the platform whose chain to mount (default: this host)')
    .addOption(snapshotterOption())
    .action(async (ref: string, target: string, opts: { rw?: boolean; platform?: string; snapshotter: string }) => {
      const chainId = await mountImage(await servicesOf(ctx), await sysMounter(), ctx.op, ref, target, {
        rw: opts.rw === true,
        snapshotter: opts.snapshotter,
        ...(opts.platform ? { platform: opts.platform } : {}),
      });
      if (ctx.json) return ctx.printJson({ chainId, target });
      ctx.line(chainId);
      ctx.line(target);
    });

  group
    .command('unmount')
    .description('unmount what images mount mounted at <target>; --rm also removes its snapshot and lease')
    .argument('<target>')
    .option('--rm', 'remove the snapshot and lease of the mount')
    .addOption(snapshotterOption())
    .action(async (target: string, opts: { rm?: boolean; snapshotter: string }) => {
      await unmountImage(await servicesOf(ctx), await sysMounter(), ctx.op, target, { rm: opts.rm === true, snapshotter: opts.snapshotter });
      if (ctx.json) ctx.printJson({ target });
      else ctx.line(target);
    });

  group
    .command('import')
    .description('import images from an OCI image layout or docker save tarball (- for stdin); prints the images')
    .argument('<file>', 'the tarball, or - for stdin')
    .option('--base-name <name>', 'name for bare OCI tags; only references under it are imported')
    .option('--digests', 'also name each manifest <base>@<digest>')
    .option('--skip-digest-for-named', 'with --digests: only for manifests without a name')
    .option('--index-name <name>', 'keep the archive index as an image of this name')
    .option('--all-platforms', 'reference the content of every platform (default: this host)')
    .option('--platform <platform>', 'reference the content of this platform only (repeatable)', collect, [])
    .option('--label <k=v>', 'label of the imported images (repeatable)', collect, [])
    .option('--no-unpack', 'do not unpack the images')
    .addOption(snapshotterOption())
    .action(async (file: string, opts: ImportFlags) => {
      if (opts.skipDigestForNamed && !opts.digests) throw new InvalidArgumentError('--skip-digest-for-named must be specified with --digests option');
      const svc = await servicesOf(ctx);
      const input = file === '-' ? ctx.io.stdin : createReadStream(file);
      const labels = parseLabels(opts.label);
      const result = await importArchive(svc, ctx.op, input, {
        ...(opts.allPlatforms ? { platforms: 'all' as const } : opts.platform.length ? { platforms: platformsOf(opts.platform) } : {}),
        ...(opts.baseName ? { baseName: opts.baseName } : {}),
        ...(opts.indexName ? { indexName: opts.indexName } : {}),
        digests: opts.digests === true,
        skipDigestForNamed: opts.skipDigestForNamed === true,
        ...(Object.keys(labels).length ? { labels } : {}),
      });
      // As ctr: each image unpacked afterwards, for --platform (exactly) or the host's platform.
      const unpacked: Record<string, string> = {};
      for (const img of result.images) {
        if (!ctx.json) ctx.write(opts.unpack ? `unpacking ${img.name} (${img.target.digest})...` : `${img.name} ${img.target.digest}\n`);
        if (!opts.unpack) continue;
        const platforms = platformsOf(opts.platform).map(normalizePlatform);
        const r = await unpackImage(svc, ctx.op, img.target, { snapshotter: opts.snapshotter, ...(platforms.length ? { matcher: orderedMatcher(platforms) } : {}) });
        unpacked[img.name] = r.chainId;
        if (!ctx.json) ctx.line('done');
      }
      if (ctx.json) ctx.printJson(result.images.map((img) => ({ ...imageJson(img), ...(unpacked[img.name] ? { unpacked: { snapshotter: opts.snapshotter, chainId: unpacked[img.name] } } : {}) })));
    });

  group
    .command('export')
    .description('export images to an OCI image layout tarball with a Docker manifest.json (- for stdout)')
    .argument('<file>', 'the tarball to write, or - for stdout')
    .argument('<names...>', 'images to export')
    .option('--platform <platform>', 'platform to export, in order of preference (repeatable; default: this host)', collect, [])
    .option('--all-platforms', 'export every platform of an index (all of its content must be present)')
    .option('--skip-manifest-json', "leave out Docker's manifest.json")
    .option('--skip-non-distributable', 'leave out non-distributable (foreign) layers')
    .action(async (file: string, names: string[], opts: { platform: string[]; allPlatforms?: boolean; skipManifestJson?: boolean; skipNonDistributable?: boolean }) => {
      const svc = await servicesOf(ctx);
      const stream = await exportArchive(svc, ctx.op, names, {
        platforms: platformsOf(opts.platform),
        allPlatforms: opts.allPlatforms === true,
        skipManifestJson: opts.skipManifestJson === true,
        skipNonDistributable: opts.skipNonDistributable === true,
      });
      if (file === '-') return writeAll(ctx.io.stdout, stream);
      // A failure halfway leaves no half archive behind.
      const partial = `${file}.partial-${process.pid}`;
      try {
        await pipeline(Readable.from(stream), createWriteStream(partial, { flags: 'wx' }));
        await rename(partial, file);
      } catch (err) {
        await rm(partial, { force: true });
        throw err;
      }
    });
}
