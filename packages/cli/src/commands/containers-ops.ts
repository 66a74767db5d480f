// The work of `berth containers …` over the kind interfaces (ContainerStore, ImageStore, ContentStore, leases and
// snapshotters), with ctr's semantics (cmd/ctr/commands/containers and run.NewContainer): `create` from an image
// takes the image's config, unpacks it when needed and prepares a snapshot keyed by the container id under a lease,
// so that garbage collection cannot take the snapshot before the container record holds it.
import {
  FailedPreconditionError,
  InvalidArgumentError,
  isNotFound,
  isNotImplemented,
  LEASE_EXPIRE_LABEL,
  OCI_SPEC_TYPE_URL,
  parseFilters,
  validateIdentifier,
  type AnyValue,
  type Applier,
  type Container,
  type ContainerInput,
  type ContainerStore,
  type ContentStore,
  type ImageStore,
  type LeaseManager,
  type Mount,
  type OpContext,
  type SnapshotterSet,
} from '@berth/core';
import {
  generateSpec,
  MountedRootFs,
  parseImageRuntimeConfig,
  withDefaultUnixDevices,
  withEnv,
  withImageConfig,
  withProcessArgs,
  withProcessCwd,
  withTTY,
  type ImageRuntimeConfig,
  type RootFsMounter,
  type SpecOpt,
} from '@berth/client';
import { defaultMatcher, imageRootFs, onlyPlatform, parsePlatform, readDocument, uniquePart, unpackImage } from '@berth/images';
import { formatRfc3339 } from '../format.js';

/** ctr's default runtime (`--runtime`). */
export const DEFAULT_RUNTIME = 'io.containerd.runc.v2';
/** The label ctr sets from the image's StopSignal (containerd.StopSignalLabel). */
export const STOP_SIGNAL_LABEL = 'io.containerd.image.config.stop-signal';

export interface ContainerCommandServices {
  readonly containers: ContainerStore;
  readonly images: ImageStore;
  readonly content: ContentStore;
  readonly leases: LeaseManager;
  readonly snapshotters: SnapshotterSet;
  readonly applier: Applier;
  /** Mounts the new snapshot while the spec is made (users and groups are read from its /etc/passwd and /etc/group). */
  readonly mounter: RootFsMounter;
}

// ---------------------------------------------------------------------------------------------------------------
// Arguments

/** An extension's value as a command line gives it: `@file` (a file's contents), `-`/`@-` (stdin) or JSON text. */
export interface JsonSource {
  readFile(path: string): Promise<string>;
  readStdin(): Promise<string>;
}

/** The JSON text of a value argument (`@file`, `-` or inline), checked to parse; `what` names it in errors. */
export async function readJsonArgument(arg: string, source: JsonSource, what: string): Promise<{ text: string; value: unknown }> {
  let text: string;
  if (arg === '-' || arg === '@-') text = await source.readStdin();
  else if (arg.startsWith('@')) {
    try {
      text = await source.readFile(arg.slice(1));
    } catch (err) {
      throw new InvalidArgumentError(`${what}: cannot read ${arg.slice(1)}: ${(err as Error).message}`, { cause: err });
    }
  } else text = arg;
  try {
    return { text, value: JSON.parse(text) as unknown };
  } catch (err) {
    throw new InvalidArgumentError(`${what}: not JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** The bytes stored for a JSON value: compact JSON, as containerd's typeurl marshals a non-proto value. */
export function jsonBytes(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/**
 * `--extension NAME=@file.json` (or `NAME=<json>`) arguments into extensions keyed by type URL; each value must be
 * JSON. A name given twice is an error (which one would win is not obvious on a command line).
 */
export async function parseExtensionArgs(args: readonly string[], source: JsonSource): Promise<Record<string, AnyValue>> {
  const out: Record<string, AnyValue> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`--extension ${JSON.stringify(arg)}: expected NAME=@FILE or NAME=JSON`);
    const name = arg.slice(0, eq);
    if (name in out) throw new InvalidArgumentError(`--extension ${name}: given more than once`);
    const { value } = await readJsonArgument(arg.slice(eq + 1), source, `--extension ${name}`);
    out[name] = { typeUrl: name, value: jsonBytes(value) };
  }
  return out;
}

/**
 * One `--where` expression as a filter of the containers store: comma-separated conditions (ANDed) on extension
 * fields, each written `ext."<type url>".<json path> OP value` (`extensions.` and no prefix at all are accepted
 * too). Returned with the store's `extensions.` prefix on every condition; a syntax error names the expression.
 */
export function whereFilter(where: string): string {
  // The conditions, split at the commas outside quoted names and values (a `~=` value may be quoted with / or |).
  const conditions: string[] = [];
  let quote: string | undefined;
  let from = 0;
  for (let i = 0; i < where.length; i++) {
    const ch = where[i] as string;
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = undefined;
    } else if (ch === '"') quote = '"';
    else if ((ch === '/' || ch === '|') && where.slice(i - 2, i) === '~=') quote = ch;
    else if (ch === ',') {
      conditions.push(where.slice(from, i));
      from = i + 1;
    }
  }
  conditions.push(where.slice(from));
  if (conditions.every((c) => c.trim() === '')) throw new InvalidArgumentError('--where: empty expression');
  const prefixed = conditions.map((condition) => {
    const lead = /^\s*/.exec(condition)?.[0] ?? '';
    const rest = condition.slice(lead.length);
    const body = rest.startsWith('extensions.') ? rest.slice('extensions.'.length) : rest.startsWith('ext.') ? rest.slice('ext.'.length) : rest;
    // `extensions.<name>` alone (no JSON path) is not a query on a field.
    if (rest !== '' && !/^("([^"\\]|\\.)*"|[A-Za-z0-9_]+)\./.test(body)) {
      throw new InvalidArgumentError(`--where ${JSON.stringify(where)}: ${JSON.stringify(rest)} names no field of an extension (expected ext."<type url>".<field>)`);
    }
    return rest === '' ? condition : `${lead}extensions.${body}`;
  });
  const out = prefixed.join(',');
  try {
    parseFilters([out]);
  } catch (err) {
    throw new InvalidArgumentError(`--where ${JSON.stringify(where)}: ${(err as Error).message}`, { cause: err });
  }
  return out;
}

/** The filters of `containers ls`: filters are ORed; every `--where` expression is ANDed to each of them. */
export function listFilters(filters: readonly string[], wheres: readonly string[]): string[] {
  const conditions = wheres.map(whereFilter);
  if (conditions.length === 0) return [...filters];
  const and = conditions.join(',');
  const base = filters.filter((f) => f.trim() !== '');
  return base.length === 0 ? [and] : base.map((f) => `${f},${and}`);
}


// ---------------------------------------------------------------------------------------------------------------
// Output

function decodeAny(any: AnyValue | undefined): Record<string, unknown> | undefined {
  if (!any) return undefined;
  const bytes = Buffer.from(any.value.buffer, any.value.byteOffset, any.value.byteLength);
  try {
    return { typeUrl: any.typeUrl, json: JSON.parse(bytes.toString('utf8')) as unknown };
  } catch {
    return { typeUrl: any.typeUrl, base64: bytes.toString('base64') };
  }
}

/**
 * A container as `--format json` and `info` print it: JSON values decoded (the spec, and each extension with its
 * revision where it is known: containerd's wire has none, `info` asks berth's Extensions service), other values as
 * base64; times in RFC 3339.
 */
export function containerJson(c: Container, options: { spec?: boolean } = {}): Record<string, unknown> {
  const extensions = Object.fromEntries(
    Object.entries(c.extensions)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, any]) => [name, { ...decodeAny(any), ...(name in c.extensionRevisions ? { revision: c.extensionRevisions[name] } : {}) }]),
  );
  return {
    id: c.id,
    labels: c.labels,
    image: c.image,
    runtime: { name: c.runtime.name, ...(c.runtime.options ? { options: decodeAny(c.runtime.options) } : {}) },
    ...(options.spec === false ? {} : { spec: decodeAny(c.spec) ?? null }),
    snapshotter: c.snapshotter,
    snapshotKey: c.snapshotKey,
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
    extensions,
  };
}

/** The rows of `containers ls` (ctr's columns). */
export function containerRows(containers: readonly Container[]): string[][] {
  return [['CONTAINER', 'IMAGE', 'RUNTIME'], ...containers.map((c) => [c.id, c.image || '-', c.runtime.name])];
}

// ---------------------------------------------------------------------------------------------------------------
// Operations

export interface CreateOptions {
  readonly id: string;
  /** The command and its arguments (replace the image's entrypoint and cmd, as ctr). */
  readonly args?: readonly string[];
  /** `K=V` entries over the image's. */
  readonly env?: readonly string[];
  readonly cwd?: string;
  readonly tty?: boolean;
  /** The image to make the container from; none: `spec` must be given (ctr's --config). */
  readonly image?: string;
  /** An OCI runtime spec (JSON) instead of one made from the image. */
  readonly spec?: unknown;
  readonly labels?: Readonly<Record<string, string>>;
  readonly runtime?: string;
  readonly runtimeOptions?: AnyValue;
  readonly snapshotter: string;
  /** Platform of the image to take (`os/arch[/variant]`); default: this host. */
  readonly platform?: string;
  readonly extensions?: Readonly<Record<string, AnyValue>>;
  /**
   * Makes the spec once the snapshot exists (berth run: @berth/client's builder, which resolves user names in the
   * snapshot mounted read-only, as containerd's WithUser does); wins over `spec` and the default one (imageSpec).
   */
  readonly buildSpec?: (input: { readonly image: ImageRuntimeConfig; readonly mounts: readonly Mount[]; readonly ctx: OpContext }) => Promise<unknown>;
}

async function isUnpacked(svc: ContainerCommandServices, ctx: OpContext, snapshotter: string, chainId: string): Promise<boolean> {
  try {
    await svc.snapshotters.get(snapshotter).stat(ctx, chainId);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/**
 * `containers create`: as ctr, the container gets the image's config labels, the command line's labels and the
 * image's stop signal; from an image it gets a new snapshot `id` on the image's chain (unpacked first when it is
 * not), all under a lease that ends once the container holds the snapshot. A failure removes what it made.
 */
export async function createContainer(svc: ContainerCommandServices, ctx: OpContext, options: CreateOptions): Promise<Container> {
  validateIdentifier(options.id);
  const runtime = { name: options.runtime || DEFAULT_RUNTIME, ...(options.runtimeOptions ? { options: options.runtimeOptions } : {}) };
  const extensions = options.extensions ?? {};
  if (!options.image) {
    if (options.spec === undefined) throw new InvalidArgumentError('image ref must be provided (or a spec with --config)');
    return svc.containers.create(ctx, {
      id: options.id,
      labels: { ...options.labels },
      runtime,
      spec: { typeUrl: OCI_SPEC_TYPE_URL, value: jsonBytes(options.spec) },
      extensions,
    });
  }
  const image = await svc.images.get(ctx, options.image);
  const matcher = options.platform ? onlyPlatform(parsePlatform(options.platform)) : defaultMatcher();
  const { chainId, manifest } = await imageRootFs(svc.content, ctx, image.target, matcher);
  const imageConfig = parseImageRuntimeConfig(await readDocument(svc.content, ctx, manifest.config, 'image config'));
  if (!(await isUnpacked(svc, ctx, options.snapshotter, chainId))) {
    await unpackImage(svc, ctx, image.target, { snapshotter: options.snapshotter, matcher });
  }
  const leaseId = ctx.lease ?? `containers-create-${uniquePart()}`;
  const ownLease = ctx.lease === undefined;
  if (ownLease) await svc.leases.create(ctx, { id: leaseId, labels: { [LEASE_EXPIRE_LABEL]: formatRfc3339(new Date(Date.now() + 24 * 3600_000)) } });
  const lctx = { ...ctx, lease: leaseId };
  const snapshotter = svc.snapshotters.get(options.snapshotter);
  try {
    const mounts = await snapshotter.prepare(lctx, options.id, chainId);
    try {
      const spec = options.buildSpec
        ? await options.buildSpec({ image: imageConfig, mounts, ctx: lctx })
        : (options.spec ?? (await imageSpec(svc.mounter, mounts, ctx.namespace, options, imageConfig)));
      return await svc.containers.create(lctx, {
        id: options.id,
        labels: { ...imageConfig.labels, ...image.labels, ...options.labels, [STOP_SIGNAL_LABEL]: imageConfig.stopSignal || 'SIGTERM' },
        image: image.name,
        runtime,
        spec: { typeUrl: OCI_SPEC_TYPE_URL, value: jsonBytes(spec) },
        snapshotter: options.snapshotter,
        snapshotKey: options.id,
        extensions,
      });
    } catch (err) {
      await snapshotter.remove(lctx, options.id).catch(() => undefined);
      throw err;
    }
  } finally {
    if (ownLease) await svc.leases.delete(ctx, leaseId).catch(() => undefined);
  }
}

/**
 * ctr's spec for a container from an image: containerd's default spec with the default devices, the command line's
 * env, the image config (its user and groups resolved in the snapshot, mounted read-only meanwhile), then the
 * command line's args, cwd and tty.
 */
async function imageSpec(
  mounter: RootFsMounter,
  mounts: readonly Mount[],
  namespace: string,
  options: CreateOptions,
  imageConfig: ImageRuntimeConfig,
): Promise<unknown> {
  const opts: SpecOpt[] = [withDefaultUnixDevices, withEnv(options.env ?? []), withImageConfig(imageConfig)];
  if (options.args && options.args.length > 0) opts.push(withProcessArgs(...options.args));
  if (options.cwd) opts.push(withProcessCwd(options.cwd));
  if (options.tty) opts.push(withTTY);
  const rootfs = new MountedRootFs(mounts, mounter);
  try {
    return await generateSpec({ namespace, id: options.id, rootfs }, ...opts);
  } finally {
    await rootfs.close();
  }
}

/** What `containers rm` needs to know of a container's task (berthd's Tasks service, when it has one). */
export interface TaskProbe {
  /** undefined when the container has no task (or the daemon runs none); else its status and a delete. */
  status(ctx: OpContext, id: string): Promise<{ readonly status: string; delete(): Promise<void> } | undefined>;
}

export interface RemoveResult {
  readonly removed: string[];
  readonly failed: { readonly id: string; readonly error: unknown }[];
}

/**
 * `containers rm`: as ctr, a container whose task runs is refused; a stopped or created task is deleted first;
 * the container's snapshot is removed (unless `keepSnapshot`) before its record. Each id on its own.
 */
export async function removeContainers(
  svc: ContainerCommandServices,
  tasks: TaskProbe,
  ctx: OpContext,
  ids: readonly string[],
  options: { keepSnapshot: boolean },
): Promise<RemoveResult> {
  const result: RemoveResult = { removed: [], failed: [] };
  for (const id of ids) {
    try {
      const c = await svc.containers.get(ctx, id);
      const task = await tasks.status(ctx, id);
      if (task) {
        if (task.status !== 'stopped' && task.status !== 'created') throw new FailedPreconditionError(`cannot delete a non stopped container: ${task.status}`);
        await task.delete();
      }
      if (!options.keepSnapshot && c.snapshotKey !== '') {
        if (c.snapshotter === '') throw new InvalidArgumentError('container.Snapshotter must be set to cleanup rootfs snapshot');
        await svc.snapshotters
          .get(c.snapshotter)
          .remove(ctx, c.snapshotKey)
          .catch((err: unknown) => {
            if (!isNotFound(err)) throw err;
          });
      }
      await svc.containers.delete(ctx, id);
      result.removed.push(id);
    } catch (error) {
      result.failed.push({ id, error });
    }
  }
  return result;
}

export interface UpdateOptions {
  readonly image?: string;
  /** `k=v` sets k, `k=` removes it. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly spec?: unknown;
  readonly snapshotKey?: string;
  readonly extensions?: Readonly<Record<string, AnyValue>>;
  readonly removeExtensions?: readonly string[];
}

/** `containers update`: only the fields given change, each through its own field path (containerd's Update). */
export async function updateContainer(svc: ContainerCommandServices, ctx: OpContext, id: string, options: UpdateOptions): Promise<Container> {
  const paths: string[] = [];
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.labels ?? {})) {
    paths.push(`labels.${k}`);
    if (v !== '') labels[k] = v;
  }
  const extensions: Record<string, AnyValue> = {};
  for (const [name, value] of Object.entries(options.extensions ?? {})) {
    paths.push(`extensions.${name}`);
    extensions[name] = value;
  }
  for (const name of options.removeExtensions ?? []) {
    if (name in extensions) throw new InvalidArgumentError(`extension ${name}: both set and removed`);
    paths.push(`extensions.${name}`);
  }
  if (options.image !== undefined) paths.push('image');
  if (options.spec !== undefined) paths.push('spec');
  if (options.snapshotKey !== undefined) paths.push('snapshotkey');
  if (paths.length === 0) throw new InvalidArgumentError('nothing to update (give --label, --image, --spec, --snapshot-key, --extension or --remove-extension)');
  const current = await svc.containers.get(ctx, id);
  return svc.containers.update(
    ctx,
    {
      id,
      labels,
      image: options.image ?? current.image,
      runtime: current.runtime,
      spec: options.spec !== undefined ? { typeUrl: OCI_SPEC_TYPE_URL, value: jsonBytes(options.spec) } : current.spec,
      snapshotter: current.snapshotter,
      snapshotKey: options.snapshotKey ?? current.snapshotKey,
      extensions,
    },
    paths,
  );
}

/** `containers label`: sets (k=v) and clears (k=) labels; returns the labels after the update. */
export async function labelContainer(svc: ContainerCommandServices, ctx: OpContext, id: string, labels: Readonly<Record<string, string>>): Promise<Container> {
  if (Object.keys(labels).length === 0) return svc.containers.get(ctx, id);
  return updateContainer(svc, ctx, id, { labels });
}

/**
 * The container with the revision of each extension, from `revisionOf` (berth's Extensions service); a daemon
 * without that service (NotImplemented) leaves them out.
 */
export async function withRevisions(c: Container, revisionOf: (name: string) => Promise<number>): Promise<Container> {
  const revisions: Record<string, number> = { ...c.extensionRevisions };
  for (const name of Object.keys(c.extensions)) {
    if (name in revisions) continue;
    try {
      revisions[name] = await revisionOf(name);
    } catch (err) {
      if (isNotImplemented(err)) return c;
      if (!isNotFound(err)) throw err;
    }
  }
  return { ...c, extensionRevisions: revisions };
}
