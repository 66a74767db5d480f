// `berth containers …`: create, ls, info, rm, label and update, with ctr's semantics (cmd/ctr/commands/containers)
// plus berth's extensions: `create --extension NAME=@file.json`, `ls --where 'ext."<type url>".field==v'` (served
// from the extensions index), `update --extension/--remove-extension`. The work is in containers-ops.ts over the
// kind interfaces: the containers store comes from containersToken (the CLI composition's Containers proxy).
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { Option, type Command } from 'commander';
import { ExtensionsProxy, removeFifos } from '@berth/client';
import {
  applierToken,
  containersToken,
  contentStoreToken,
  imagesToken,
  InvalidArgumentError,
  isNotFound,
  isNotImplemented,
  leasesToken,
  snapshottersToken,
  type Container,
  type OpContext,
} from '@berth/core';
import { parseLabels } from '../args.js';
import { ReportedFailure, type CliContext } from '../context.js';
import { formatLabels } from '../format.js';
import {
  containerJson,
  containerRows,
  createContainer,
  DEFAULT_RUNTIME,
  labelContainer,
  listFilters,
  parseExtensionArgs,
  readJsonArgument,
  removeContainers,
  updateContainer,
  withRevisions,
  type ContainerCommandServices,
  type JsonSource,
  type TaskProbe,
} from './containers-ops.js';
import { DEFAULT_SNAPSHOTTER } from './snapshots.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The kind interfaces the containers commands (and `berth run`) work over, from the CLI's composition. */
export async function containerServicesOf(ctx: CliContext): Promise<ContainerCommandServices> {
  return {
    containers: await ctx.resolve(containersToken),
    images: await ctx.resolve(imagesToken),
    content: await ctx.resolve(contentStoreToken),
    leases: await ctx.resolve(leasesToken),
    snapshotters: await ctx.resolve(snapshottersToken),
    applier: await ctx.resolve(applierToken),
    mounter: {
      mountAll: async (mounts, target) => (await import('@berth/sys')).mountAll(mounts, target),
      unmountAll: async (target) => (await import('@berth/sys')).unmountAll(target),
    },
  };
}

/** `@file`, `-` (stdin) and inline JSON for the commands of this file and extensions.ts. */
export function jsonSource(ctx: CliContext): JsonSource {
  return { readFile: (path) => readFile(path, 'utf8'), readStdin: () => text(ctx.io.stdin) };
}

/** A container's task through berthd's Tasks service; a daemon without one (Unimplemented) has no tasks. */
function taskProbe(ctx: CliContext): TaskProbe {
  return {
    async status(op: OpContext, id: string) {
      const client = ctx.berth();
      const opts = { namespace: op.namespace, ...(op.lease ? { lease: op.lease } : {}) };
      try {
        const { process } = await client.tasks.Get({ container_id: id }, opts);
        return {
          status: (process?.status ?? 'UNKNOWN').toLowerCase(),
          delete: async () => {
            await client.tasks.Delete({ container_id: id }, opts);
            // The task's FIFOs (berth run -d left them for attach), as ctr's loadFifos closer removes them.
            if (process) await removeFifos([process.stdin, process.stdout, process.stderr]);
          },
        };
      } catch (err) {
        if (isNotFound(err) || isNotImplemented(err)) return undefined;
        throw err;
      }
    },
  };
}

/** The container with its extensions' revisions (berth's Extensions service; containerd's wire carries none). */
function revisionsOf(ctx: CliContext, c: Container): Promise<Container> {
  const extensions = new ExtensionsProxy(ctx.berth());
  return withRevisions(c, async (name) => (await extensions.get(ctx.op, c.id, name)).revision);
}

interface CreateFlags {
  label: string[];
  extension: string[];
  runtime: string;
  snapshotter: string;
  config?: string;
  platform?: string;
  env: string[];
  cwd?: string;
  tty?: boolean;
}

interface UpdateFlags {
  label: string[];
  extension: string[];
  removeExtension: string[];
  image?: string;
  spec?: string;
  snapshotKey?: string;
}

export function registerContainers(program: Command, ctx: CliContext): void {
  const group = program.command('containers').aliases(['container', 'c']).description('manage containers (and their extensions)');

  group
    .command('create')
    .description('create a container from an image (its config, and a new snapshot keyed by the id), or from a spec with --config')
    .argument('[image]', 'the image (or, with --config, the container id)')
    .argument('[id]', 'the container id')
    .argument('[command...]', 'command and arguments (default: the image entrypoint and cmd)')
    .option('--label <k=v>', 'label of the container (repeatable)', collect, [])
    .option('--extension <name=@file.json>', 'extension to store, by type URL: NAME=@FILE or NAME=JSON (repeatable)', collect, [])
    .option('--runtime <name>', 'runtime name', DEFAULT_RUNTIME)
    .addOption(new Option('--snapshotter <name>', `snapshotter name (default ${DEFAULT_SNAPSHOTTER})`).env('BERTH_SNAPSHOTTER').default(DEFAULT_SNAPSHOTTER))
    .option('--config <file>', 'OCI runtime spec (JSON) to store instead of making one from an image; then the only argument is the id')
    .option('--platform <platform>', 'platform of the image to use (default: this host)')
    .option('--env <K=V>', 'environment variable of the process (repeatable)', collect, [])
    .option('--cwd <dir>', 'working directory of the process')
    .option('-t, --tty', 'the process gets a terminal')
    .action(async (first: string | undefined, second: string | undefined, command: string[], opts: CreateFlags) => {
      const source = jsonSource(ctx);
      let id: string | undefined;
      let image: string | undefined;
      let spec: unknown;
      if (opts.config !== undefined) {
        id = first;
        if (second !== undefined) throw new InvalidArgumentError('with spec config file, only container id should be provided');
        spec = (await readJsonArgument(`@${opts.config}`, source, '--config')).value;
      } else {
        image = first;
        id = second;
        if (!image) throw new InvalidArgumentError('image ref must be provided');
      }
      if (!id) throw new InvalidArgumentError('container id must be provided');
      const extensions = await parseExtensionArgs(opts.extension, source);
      const c = await createContainer(await containerServicesOf(ctx), ctx.op, {
        id,
        ...(image ? { image } : {}),
        ...(spec !== undefined ? { spec } : {}),
        labels: parseLabels(opts.label),
        runtime: opts.runtime,
        snapshotter: opts.snapshotter,
        extensions,
        args: command,
        env: opts.env,
        ...(opts.platform ? { platform: opts.platform } : {}),
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
        ...(opts.tty ? { tty: true } : {}),
      });
      if (ctx.json) ctx.printJson(containerJson(c, { spec: false }));
    });

  group
    .command('ls')
    .alias('list')
    .description('list containers (filters as in ctr: id==x, image==y, labels."k"==v, runtime.name==z; --where for extension fields)')
    .argument('[filters...]', 'filters, ORed together')
    .option('--filter <filter>', 'a filter (repeatable; ORed with the others)', collect, [])
    .option('--where <expr>', 'conditions on extension fields, ANDed: ext."<type url>".<field>==v (also !=, ~=; repeatable)', collect, [])
    .option('-q, --quiet', 'print only the container ids')
    .action(async (filters: string[], opts: { filter: string[]; where: string[]; quiet?: boolean }) => {
      const { containers } = await containerServicesOf(ctx);
      const list = await containers.list(ctx.op, listFilters([...filters, ...opts.filter], opts.where));
      if (ctx.json) return ctx.printJson(list.map((c) => containerJson(c, { spec: false })));
      if (opts.quiet) {
        for (const c of list) ctx.line(c.id);
        return;
      }
      ctx.table(containerRows(list), { padding: 4 });
    });

  group
    .command('info')
    .description('show a container as JSON: its record, decoded spec and extensions with their revisions')
    .argument('<id>')
    .option('--spec', 'print only the spec')
    .action(async (id: string, opts: { spec?: boolean }) => {
      const { containers } = await containerServicesOf(ctx);
      const json = containerJson(await revisionsOf(ctx, await containers.get(ctx.op, id)));
      if (opts.spec) {
        const spec = json['spec'] as { json?: unknown } | null;
        if (!spec || !('json' in spec)) throw new InvalidArgumentError(`container ${id} has no JSON spec`);
        return ctx.printJson(spec.json);
      }
      ctx.printJson(json);
    });

  group
    .command('rm')
    .aliases(['delete', 'del', 'remove'])
    .description('delete containers (and their snapshots); one whose task runs is refused')
    .argument('<ids...>')
    .option('--keep-snapshot', 'do not remove the container snapshot')
    .action(async (ids: string[], opts: { keepSnapshot?: boolean }) => {
      const r = await removeContainers(await containerServicesOf(ctx), taskProbe(ctx), ctx.op, ids, { keepSnapshot: opts.keepSnapshot === true });
      for (const f of r.failed) ctx.error(`failed to delete container ${JSON.stringify(f.id)}: ${ctx.describeError(f.error)}`);
      if (ctx.json) ctx.printJson(r.removed);
      else for (const id of r.removed) ctx.line(id);
      if (r.failed.length > 0) throw new ReportedFailure();
    });

  group
    .command('label')
    .description('set and clear labels of a container (k=v sets, k= clears); prints the resulting labels')
    .argument('<id>')
    .argument('[labels...]', 'k=v labels')
    .action(async (id: string, labelArgs: string[]) => {
      const c = await labelContainer(await containerServicesOf(ctx), ctx.op, id, parseLabels(labelArgs));
      if (ctx.json) ctx.printJson({ id, labels: c.labels });
      else ctx.line(formatLabels(c.labels, ''));
    });

  group
    .command('update')
    .description('change fields of a container (only those given, each by its field path); prints it as info does')
    .argument('<id>')
    .option('--label <k=v>', 'set a label; k= clears it (repeatable)', collect, [])
    .option('--extension <name=@file.json>', 'set an extension: NAME=@FILE or NAME=JSON (repeatable)', collect, [])
    .option('--remove-extension <name>', 'remove an extension (repeatable)', collect, [])
    .option('--image <name>', 'the image name')
    .option('--spec <file>', 'replace the OCI runtime spec (JSON file, - for stdin)')
    .option('--snapshot-key <key>', 'the snapshot key (in the same snapshotter)')
    .action(async (id: string, opts: UpdateFlags) => {
      const source = jsonSource(ctx);
      const spec = opts.spec !== undefined ? (await readJsonArgument(opts.spec === '-' ? '-' : `@${opts.spec}`, source, '--spec')).value : undefined;
      const c = await updateContainer(await containerServicesOf(ctx), ctx.op, id, {
        labels: parseLabels(opts.label),
        extensions: await parseExtensionArgs(opts.extension, source),
        removeExtensions: opts.removeExtension,
        ...(opts.image !== undefined ? { image: opts.image } : {}),
        ...(spec !== undefined ? { spec } : {}),
        ...(opts.snapshotKey !== undefined ? { snapshotKey: opts.snapshotKey } : {}),
      });
      ctx.printJson(containerJson(await revisionsOf(ctx, c)));
    });
}
