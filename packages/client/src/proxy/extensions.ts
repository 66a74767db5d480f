// Clients of berthd's own extension services (berth.services.extensions.v1): the schema registry (global) and the
// per-container extension reads and writes with revisions (namespaced). Values are JSON; the proxies take and give
// parsed JSON so that callers never handle the Any bytes, and keep the raw Any for values that are not JSON.
import { fromTimestamp, type berth } from '@berth/api';
import { DataLossError, type AnyValue, type ExtensionSchema, type OpContext } from '@berth/core';
import type { BerthClient } from '../client.js';
import { callOptionsOf } from './content-store.js';

type WireSchema = berth.services.extensions.v1.Schema;
type WireExtension = berth.services.extensions.v1.Extension;

const EPOCH = new Date(0);

export function toExtensionSchema(s: WireSchema): ExtensionSchema {
  let schema: Record<string, unknown>;
  try {
    schema = JSON.parse(s.schema) as Record<string, unknown>;
  } catch (err) {
    throw new DataLossError(`schema ${s.name}: the daemon sent text that is not JSON`, { cause: err });
  }
  return {
    name: s.name,
    schema,
    version: s.version,
    indexedPaths: [...s.indexed_paths],
    source: s.source === 'config' ? 'config' : 'api',
    createdAt: fromTimestamp(s.created_at) ?? EPOCH,
    updatedAt: fromTimestamp(s.updated_at) ?? EPOCH,
  };
}

/** One extension of one container as the service returns it. */
export interface ContainerExtension {
  readonly containerId: string;
  readonly name: string;
  readonly value: AnyValue;
  readonly revision: number;
}

/** A committed change, as Watch streams it and `/containers/extensions/update` events carry it. */
export interface ExtensionUpdate {
  readonly containerId: string;
  readonly name: string;
  readonly revision: number;
  readonly deleted: boolean;
}

/** Optimistic concurrency: the write applies only when the current revision is this (0: absent). */
export interface RevisionOptions {
  readonly expectedRevision?: number;
}

export function toContainerExtension(e: WireExtension | null | undefined, what: string): ContainerExtension {
  if (!e) throw new DataLossError(`no extension returned for ${what}`);
  return {
    containerId: e.container_id,
    name: e.name,
    value: { typeUrl: e.value?.type_url ?? '', value: Buffer.from(e.value?.value ?? new Uint8Array(0)) },
    revision: e.revision,
  };
}

const expected = (o: RevisionOptions) => (o.expectedRevision !== undefined ? { expected_revision: { value: o.expectedRevision } } : {});

/** The schema registry of berthd (Schemas service). Schemas are global: the namespace of a call does not matter. */
export class ExtensionSchemasProxy {
  constructor(private readonly client: BerthClient) {}

  private get service() {
    return this.client.extensionSchemas;
  }

  async register(
    input: { readonly name: string; readonly schema: Readonly<Record<string, unknown>> | string; readonly indexedPaths?: readonly string[] },
    options: { readonly force?: boolean } = {},
  ): Promise<ExtensionSchema> {
    const res = await this.service.Register({
      name: input.name,
      schema: typeof input.schema === 'string' ? input.schema : JSON.stringify(input.schema),
      indexed_paths: [...(input.indexedPaths ?? [])],
      force: options.force === true,
    });
    if (!res.schema) throw new DataLossError(`no schema returned for ${input.name}`);
    return toExtensionSchema(res.schema);
  }

  async get(name: string): Promise<ExtensionSchema> {
    const res = await this.service.Get({ name });
    if (!res.schema) throw new DataLossError(`no schema returned for ${name}`);
    return toExtensionSchema(res.schema);
  }

  async list(): Promise<ExtensionSchema[]> {
    return (await this.service.List({})).schemas.map(toExtensionSchema);
  }

  async delete(name: string): Promise<void> {
    await this.service.Delete({ name });
  }
}

/** Extensions of the context's namespace (Extensions service): each write returns the new revision. */
export class ExtensionsProxy {
  constructor(private readonly client: BerthClient) {}

  private get service() {
    return this.client.extensions;
  }

  async get(ctx: OpContext, containerId: string, name: string): Promise<ContainerExtension> {
    const res = await this.service.Get({ container_id: containerId, name }, callOptionsOf(ctx));
    return toContainerExtension(res.extension, `${containerId} ${name}`);
  }

  /** Sets the value (an Any; its type URL defaults to the name on the daemon's side when empty). */
  async set(ctx: OpContext, containerId: string, name: string, value: AnyValue, options: RevisionOptions = {}): Promise<ContainerExtension> {
    const res = await this.service.Set(
      { container_id: containerId, name, value: { type_url: value.typeUrl, value: Buffer.from(value.value) }, ...expected(options) },
      callOptionsOf(ctx),
    );
    return toContainerExtension(res.extension, `${containerId} ${name}`);
  }

  /** Applies a JSON Merge Patch (RFC 7396), given as JSON text. */
  async patch(ctx: OpContext, containerId: string, name: string, patch: string, options: RevisionOptions = {}): Promise<ContainerExtension> {
    const res = await this.service.Patch({ container_id: containerId, name, patch, ...expected(options) }, callOptionsOf(ctx));
    return toContainerExtension(res.extension, `${containerId} ${name}`);
  }

  /** Deletes the extension; returns the revision of the value deleted. */
  async delete(ctx: OpContext, containerId: string, name: string, options: RevisionOptions = {}): Promise<number> {
    return (await this.service.Delete({ container_id: containerId, name, ...expected(options) }, callOptionsOf(ctx))).revision;
  }

  /** Every committed change from now on (of these containers / names; none: all), until `ctx.signal` aborts. */
  async *watch(ctx: OpContext, filter: { readonly containerIds?: readonly string[]; readonly names?: readonly string[] } = {}): AsyncIterable<ExtensionUpdate> {
    const stream = this.service.Watch({ container_ids: [...(filter.containerIds ?? [])], names: [...(filter.names ?? [])] }, callOptionsOf(ctx));
    for await (const u of stream) yield { containerId: u.container_id, name: u.name, revision: u.revision, deleted: u.deleted };
  }
}
