import { containerToWire, fromAnyValue, implementService, messageCodec, publishEvent, ServiceNames, toAnyValue, toTimestamp, type berth, type google } from '@berth/api';
import {
  ContainerTopics,
  InvalidArgumentError,
  NotFoundError,
  NotImplementedError,
  opContextOf,
  type AnyValue,
  type ContainerStore,
  type EventPublisher,
  type EventSubscriber,
  type ExtensionSchema,
  type ExtensionSchemaRegistry,
  type ExtensionValue,
  type ExtensionWriteOptions,
  type Logger,
  type OpContext,
  type RpcServiceImplementation,
  type RpcServices,
} from '@berth/core';
import { applyMergePatch } from './merge-patch.js';
import { whereToFilters } from './where.js';

type WireExtension = berth.services.extensions.v1.ExtensionInput;
type WireSchema = berth.services.extensions.v1.SchemaInput;
type UpdateEvent = berth.services.extensions.v1.ContainerExtensionUpdateInput;

const UPDATE_TYPE = 'berth.services.extensions.v1.ContainerExtensionUpdate';
const updateCodec = messageCodec(UPDATE_TYPE);
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * berth.services.extensions.v1.Schemas over the schema registry, and .Extensions over the containers store: one
 * extension of one container read and written with revisions (a Patch reads, merges and writes in one store
 * transaction), each committed change published as `/containers/extensions/update` in the request's namespace,
 * Watch as a filtered subscription to those events, and Query as the store's indexed `extensions.` filters.
 */
export class ExtensionsService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(
    private readonly containers: ContainerStore,
    private readonly schemas: ExtensionSchemaRegistry,
    private readonly events: EventPublisher,
    private readonly subscriber?: EventSubscriber,
    private readonly log?: Logger,
  ) {
    this.services = [
      implementService(ServiceNames.ExtensionSchemas, {
        Register: async (req) => {
          const name = required('name', req.name);
          const schema = parseSchema(name, req.schema);
          const registered = await this.schemas.register(
            { name, schema, indexedPaths: req.indexed_paths },
            { force: req.force, existing: this.containers.scanExtension(name) },
          );
          return { schema: toWireSchema(registered) };
        },
        Get: async (req) => ({ schema: toWireSchema(this.schemas.get(required('name', req.name))) }),
        List: async () => ({ schemas: this.schemas.list().map(toWireSchema) }),
        Delete: async (req) => {
          await this.schemas.delete(required('name', req.name));
        },
      }),
      implementService(ServiceNames.Extensions, {
        Get: async (req, ctx) => {
          const { id, name } = target(req);
          const found = await this.containers.getExtension(opContextOf(ctx), id, name);
          return { extension: toWireExtension(id, name, found) };
        },
        Set: async (req, ctx) => {
          const op = opContextOf(ctx);
          const { id, name } = target(req);
          if (!req.value) throw new InvalidArgumentError('value is required');
          const value = toAnyValue({ type_url: req.value.type_url || name, value: req.value.value });
          let before: number | undefined;
          const written = await this.containers.modifyExtension(
            op,
            id,
            name,
            (current) => {
              before = current?.revision;
              return value;
            },
            writeOptions(req.expected_revision),
          );
          if (!written) throw new NotFoundError(`extension "${name}" of container "${id}": not found`); // the change never deletes
          if (written.revision !== before) await this.publish(op, { container_id: id, name, revision: written.revision });
          return { extension: toWireExtension(id, name, written) };
        },
        Patch: async (req, ctx) => {
          const op = opContextOf(ctx);
          const { id, name } = target(req);
          const patch = parseJson('patch', req.patch);
          let before: number | undefined;
          const written = await this.containers.modifyExtension(
            op,
            id,
            name,
            (current) => {
              before = current?.revision;
              return patched(name, current, patch);
            },
            writeOptions(req.expected_revision),
          );
          if (!written) throw new NotFoundError(`extension "${name}" of container "${id}": not found`); // the change never deletes
          // The store keeps the revision when the value did not change: no change, no event.
          if (written.revision !== before) await this.publish(op, { container_id: id, name, revision: written.revision });
          return { extension: toWireExtension(id, name, written) };
        },
        Delete: async (req, ctx) => {
          const op = opContextOf(ctx);
          const { id, name } = target(req);
          let revision = 0;
          await this.containers.modifyExtension(
            op,
            id,
            name,
            (current) => {
              if (!current) throw new NotFoundError(`extension "${name}" of container "${id}": not found`);
              revision = current.revision;
              return undefined;
            },
            writeOptions(req.expected_revision),
          );
          await this.publish(op, { container_id: id, name, revision, deleted: true });
          return { revision };
        },
        Watch: (req, ctx) => this.watch(opContextOf(ctx), req, ctx.signal),
        Query: async (req, ctx) => {
          const found = await this.containers.list(opContextOf(ctx), whereToFilters(req.where));
          return { containers: found.map(containerToWire) };
        },
      }),
    ];
  }

  /** After the change committed: a failed publish is logged, never returned as an error the client would retry. */
  private async publish(op: OpContext, event: UpdateEvent): Promise<void> {
    try {
      await publishEvent(this.events, op.namespace, ContainerTopics.extensionUpdate, UPDATE_TYPE, event);
    } catch (err) {
      this.log?.warn('publishing an extension update failed', { namespace: op.namespace, ...event, error: err });
    }
  }

  private async *watch(op: OpContext, req: berth.services.extensions.v1.WatchExtensionsRequest, signal: AbortSignal): AsyncIterable<UpdateEvent> {
    if (!this.subscriber) throw new NotImplementedError('Watch needs the event exchange, which this daemon does not load');
    const ids = new Set(req.container_ids);
    const names = new Set(req.names);
    const filter = `topic==${JSON.stringify(ContainerTopics.extensionUpdate)},namespace==${JSON.stringify(op.namespace)}`;
    for await (const envelope of this.subscriber.subscribe([filter], signal)) {
      if (envelope.event.typeUrl !== UPDATE_TYPE) continue;
      let update: berth.services.extensions.v1.ContainerExtensionUpdate;
      try {
        update = updateCodec.decode(envelope.event.value);
      } catch {
        continue; // someone published something else on the topic
      }
      if (ids.size > 0 && !ids.has(update.container_id)) continue;
      if (names.size > 0 && !names.has(update.name)) continue;
      yield update;
    }
  }
}

function required(field: string, value: string): string {
  if (!value) throw new InvalidArgumentError(`${field} is required`);
  return value;
}

function target(req: { container_id: string; name: string }): { id: string; name: string } {
  return { id: required('container_id', req.container_id), name: required('name', req.name) };
}

function writeOptions(expected: google.protobuf.UInt64Value | null): ExtensionWriteOptions {
  return expected ? { expectedRevision: Number(expected.value) } : {};
}

function parseJson(what: string, text: string): unknown {
  if (!text) throw new InvalidArgumentError(`${what} is required (JSON text)`);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidArgumentError(`${what} is not JSON: ${(err as Error).message}`);
  }
}

function parseSchema(name: string, text: string): Record<string, unknown> {
  const schema = parseJson(`schema "${name}"`, text);
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) throw new InvalidArgumentError(`schema "${name}": a schema must be a JSON object`);
  return schema as Record<string, unknown>;
}

/** The merge of `patch` into the current value (`{}`-like when absent), as the JSON bytes to store. */
function patched(name: string, current: ExtensionValue | undefined, patch: unknown): AnyValue {
  let doc: unknown;
  if (current) {
    try {
      doc = JSON.parse(utf8.decode(current.value.value)) as unknown;
    } catch {
      throw new InvalidArgumentError(`extension "${name}": the stored value is not JSON, so it cannot be merge-patched (Set replaces it)`);
    }
  }
  return { typeUrl: current?.value.typeUrl || name, value: Buffer.from(JSON.stringify(applyMergePatch(doc, patch))) };
}

function toWireExtension(id: string, name: string, ext: ExtensionValue): WireExtension {
  return { container_id: id, name, value: fromAnyValue(ext.value), revision: ext.revision };
}

export function toWireSchema(schema: ExtensionSchema): WireSchema {
  return {
    name: schema.name,
    schema: JSON.stringify(schema.schema),
    indexed_paths: [...schema.indexedPaths],
    version: schema.version,
    source: schema.source,
    created_at: toTimestamp(schema.createdAt),
    updated_at: toTimestamp(schema.updatedAt),
  };
}

