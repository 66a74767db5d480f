// The ContainerStore interface of @berth/core over berthd's Containers service (containerd's remote container store),
// with the extension operations over berth's Extensions service: a command written against containersToken works
// the same in-process and against a remote daemon.
import { fromAnyValue, fromTimestamp, ServiceNames, toAnyValue, type berth, type containerd } from '@berth/api';
import {
  DataLossError,
  FailedPreconditionError,
  isFailedPrecondition,
  isNotFound,
  isNotImplemented,
  NotImplementedError,
  type AnyValue,
  type Container,
  type ContainerInput,
  type ContainerStore,
  type ExtensionValue,
  type ExtensionWriteOptions,
  type OpContext,
} from '@berth/core';
import type { BerthClient } from '../client.js';
import { callOptionsOf } from './content-store.js';

type WireContainer = containerd.services.containers.v1.Container;

const EPOCH = new Date(0);

/** How often modifyExtension re-reads and retries when another writer moved the revision in between. */
const MODIFY_ATTEMPTS = 16;

/**
 * A wire container as core's. containerd's wire has no extension revisions: `extensionRevisions` is empty here
 * (getExtension reads one extension's revision).
 */
export function toContainer(c: WireContainer): Container {
  const options = c.runtime?.options;
  return {
    id: c.id,
    labels: { ...c.labels },
    image: c.image,
    runtime: { name: c.runtime?.name ?? '', ...(options ? { options: toAnyValue(options) } : {}) },
    ...(c.spec ? { spec: toAnyValue(c.spec) } : {}),
    snapshotter: c.snapshotter,
    snapshotKey: c.snapshot_key,
    extensions: Object.fromEntries(Object.entries(c.extensions ?? {}).map(([name, value]) => [name, toAnyValue(value)])),
    extensionRevisions: {},
    createdAt: fromTimestamp(c.created_at) ?? EPOCH,
    updatedAt: fromTimestamp(c.updated_at) ?? EPOCH,
  };
}

export function toWireContainer(c: ContainerInput): containerd.services.containers.v1.ContainerInput {
  return {
    id: c.id,
    labels: { ...c.labels },
    image: c.image ?? '',
    ...(c.runtime ? { runtime: { name: c.runtime.name, ...(c.runtime.options ? { options: fromAnyValue(c.runtime.options) } : {}) } } : {}),
    ...(c.spec ? { spec: fromAnyValue(c.spec) } : {}),
    snapshotter: c.snapshotter ?? '',
    snapshot_key: c.snapshotKey ?? '',
    extensions: Object.fromEntries(Object.entries(c.extensions ?? {}).map(([name, value]) => [name, fromAnyValue(value)])),
  };
}

function required(c: WireContainer | null | undefined, id: string): Container {
  if (!c) throw new DataLossError(`no container returned for ${id}`);
  return toContainer(c);
}

function extensionOf(e: berth.services.extensions.v1.Extension | null | undefined, id: string, name: string): ExtensionValue {
  if (!e?.value) throw new DataLossError(`no extension returned for ${name} of ${id}`);
  return { value: toAnyValue(e.value), revision: Number(e.revision) };
}

const expected = (options?: ExtensionWriteOptions) =>
  options?.expectedRevision === undefined ? {} : { expected_revision: { value: options.expectedRevision } };

/** berthd's containers of the context's namespace, every operation a Containers (or Extensions) call. */
export class ContainersProxy implements ContainerStore {
  constructor(private readonly client: BerthClient) {}

  private get extensions() {
    return this.client.service(ServiceNames.Extensions);
  }

  async get(ctx: OpContext, id: string): Promise<Container> {
    return required((await this.client.containers.Get({ id }, callOptionsOf(ctx))).container, id);
  }

  /** Over ListStream, falling back to List where the daemon does not implement it (as containerd's client). */
  async list(ctx: OpContext, filters: readonly string[] = []): Promise<Container[]> {
    const out: Container[] = [];
    try {
      for await (const message of this.client.containers.ListStream({ filters: [...filters] }, callOptionsOf(ctx))) {
        if (message.container) out.push(toContainer(message.container));
      }
      return out;
    } catch (err) {
      if (!isNotImplemented(err) || out.length > 0) throw err;
    }
    return (await this.client.containers.List({ filters: [...filters] }, callOptionsOf(ctx))).containers.map(toContainer);
  }

  async create(ctx: OpContext, container: ContainerInput): Promise<Container> {
    return required((await this.client.containers.Create({ container: toWireContainer(container) }, callOptionsOf(ctx))).container, container.id);
  }

  async update(ctx: OpContext, container: ContainerInput, fieldpaths?: readonly string[]): Promise<Container> {
    const res = await this.client.containers.Update(
      { container: toWireContainer(container), update_mask: { paths: [...(fieldpaths ?? [])] } },
      callOptionsOf(ctx),
    );
    return required(res.container, container.id);
  }

  async delete(ctx: OpContext, id: string): Promise<void> {
    await this.client.containers.Delete({ id }, callOptionsOf(ctx));
  }

  async getExtension(ctx: OpContext, id: string, name: string): Promise<ExtensionValue> {
    const res = await this.extensions.Get({ container_id: id, name }, callOptionsOf(ctx));
    return extensionOf(res.extension, id, name);
  }

  async putExtension(ctx: OpContext, id: string, name: string, value: AnyValue, options?: ExtensionWriteOptions): Promise<ExtensionValue> {
    const res = await this.extensions.Set({ container_id: id, name, value: fromAnyValue(value), ...expected(options) }, callOptionsOf(ctx));
    return extensionOf(res.extension, id, name);
  }

  /**
   * The change runs here, not in the daemon's transaction: read, change, then write with the revision read as the
   * expected one, again from the read when another writer came in between (a caller's expectedRevision is checked
   * once, against the first read, and a mismatch is FailedPrecondition as in the store).
   */
  async modifyExtension(
    ctx: OpContext,
    id: string,
    name: string,
    change: (current: ExtensionValue | undefined) => AnyValue | undefined,
    options?: ExtensionWriteOptions,
  ): Promise<ExtensionValue | undefined> {
    for (let attempt = 1; ; attempt++) {
      // Absent (or no container: the write below then says NotFound for it).
      const current = await this.getExtension(ctx, id, name).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      const revision = current?.revision ?? 0;
      const pinned = options?.expectedRevision;
      if (pinned !== undefined && pinned !== revision) {
        throw new FailedPreconditionError(`extension ${JSON.stringify(name)} of container ${JSON.stringify(id)} is at revision ${revision}, not ${pinned}`);
      }
      try {
        const next = change(current);
        if (next === undefined) {
          if (current) await this.deleteExtension(ctx, id, name, { expectedRevision: revision });
          return undefined;
        }
        return await this.putExtension(ctx, id, name, next, { expectedRevision: revision });
      } catch (err) {
        if (pinned !== undefined || !isFailedPrecondition(err) || attempt >= MODIFY_ATTEMPTS) throw err;
      }
    }
  }

  async deleteExtension(ctx: OpContext, id: string, name: string, options?: ExtensionWriteOptions): Promise<void> {
    await this.extensions.Delete({ container_id: id, name, ...expected(options) }, callOptionsOf(ctx));
  }

  /** Every namespace's values of one name: a daemon-side scan (schema compatibility) with no wire call. */
  // eslint-disable-next-line require-yield
  async *scanExtension(name: string): AsyncIterable<{ readonly namespace: string; readonly id: string; readonly value: AnyValue }> {
    throw new NotImplementedError(`scanning extension ${JSON.stringify(name)} across namespaces is not offered over the wire`);
  }
}
