import { implementService, ServiceNames, toTimestamp, type containerd } from '@berth/api';
import {
  batches,
  labelsWireSize,
  LIST_BATCH_LIMITS,
  DataLossError,
  InvalidArgumentError,
  opContextOf,
  OutOfRangeError,
  validateDigest,
  type ContentInfo,
  type ContentStore,
  type IngestStatus,
  type RpcContext,
  type RpcServiceImplementation,
  type RpcServices,
} from '@berth/core';
import { writeSession } from './write-session.js';

type WireInfo = containerd.services.content.v1.InfoInput;
type WireStatus = containerd.services.content.v1.StatusInput;

/** Bytes per Read response (containerd copies through a 1 MiB buffer). */
export const READ_CHUNK_SIZE = 1 << 20;
/** A List response carries at most this many blobs (as containerd), and stops growing past about LIST_BATCH_BYTES. */
export const LIST_BATCH_COUNT = LIST_BATCH_LIMITS.count;
export const LIST_BATCH_BYTES = LIST_BATCH_LIMITS.bytes;

/**
 * containerd.services.content.v1.Content over the namespaced content store of the metadata plugin. Digests are
 * checked here before they reach the store; the store itself publishes `/content/delete`.
 */
export class ContentService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(private readonly store: ContentStore) {
    this.services = [
      implementService(ServiceNames.Content, {
        Info: async (req, ctx) => ({ info: toWireInfo(await store.info(opContextOf(ctx), validateDigest(req.digest))) }),
        Update: async (req, ctx) => {
          const op = opContextOf(ctx);
          const digest = validateDigest(req.info?.digest ?? '');
          const paths = req.update_mask?.paths ?? [];
          for (const path of paths) {
            if (path !== 'labels' && !path.startsWith('labels.')) {
              throw new InvalidArgumentError(`cannot update ${JSON.stringify(path)} field on content info ${JSON.stringify(digest)}`);
            }
          }
          const labels = { ...req.info?.labels };
          const info = await store.update(op, { digest, labels }, paths.length > 0 ? paths : undefined);
          return { info: toWireInfo(info) };
        },
        List: (req, ctx) => this.list(req.filters, ctx),
        Delete: async (req, ctx) => {
          await store.delete(opContextOf(ctx), validateDigest(req.digest));
        },
        Read: (req, ctx) => this.read(req, ctx),
        Status: async (req, ctx) => ({ status: toWireStatus(await store.status(opContextOf(ctx), req.ref)) }),
        ListStatuses: async (req, ctx) => ({
          statuses: (await store.listStatuses(opContextOf(ctx), req.filters)).map(toWireStatus),
        }),
        Write: (requests, ctx) => writeSession(store, requests, ctx),
        Abort: async (req, ctx) => {
          await store.abort(opContextOf(ctx), req.ref);
        },
      }),
    ];
  }

  private async *list(filters: readonly string[], ctx: RpcContext): AsyncIterable<containerd.services.content.v1.ListContentResponseInput> {
    const op = opContextOf(ctx);
    for await (const info of batches(this.store.list(op, filters), toWireInfo, approximateSize)) yield { info };
  }

  /**
   * Streams `size` bytes (0: to the end; past the end: up to it) from `offset` in READ_CHUNK_SIZE pieces, each read
   * only when the previous one was taken by the transport.
   */
  private async *read(
    req: containerd.services.content.v1.ReadContentRequest,
    ctx: RpcContext,
  ): AsyncIterable<containerd.services.content.v1.ReadContentResponseInput> {
    const op = opContextOf(ctx);
    const digest = validateDigest(req.digest);
    const reader = await this.store.reader(op, digest);
    let closed = false;
    try {
      let offset = Math.max(0, req.offset);
      if (offset > reader.size) throw new OutOfRangeError(`read past object length ${reader.size} bytes`);
      const end = req.size <= 0 || offset + req.size > reader.size ? reader.size : offset + req.size;
      while (offset < end && !ctx.signal.aborted) {
        const data = await reader.read(offset, Math.min(READ_CHUNK_SIZE, end - offset));
        if (data.length === 0) throw new DataLossError(`content ${digest}: unexpected end of data at ${offset}`);
        const at = offset;
        offset += data.length;
        // Release the reader before handing out the last chunk, so that the call ends right after it is sent.
        if (offset >= end) {
          closed = true;
          await reader.close();
        }
        yield { offset: at, data };
      }
    } finally {
      if (!closed) await reader.close();
    }
  }
}

function toWireInfo(info: ContentInfo): WireInfo {
  return {
    digest: info.digest,
    size: info.size,
    created_at: toTimestamp(info.createdAt),
    updated_at: toTimestamp(info.updatedAt),
    labels: info.labels,
  };
}

function toWireStatus(status: IngestStatus): WireStatus {
  return {
    ref: status.ref,
    offset: status.offset,
    total: status.total,
    expected: status.expected,
    started_at: toTimestamp(status.startedAt),
    updated_at: toTimestamp(status.updatedAt),
  };
}

/** Roughly what an Info costs on the wire. */
function approximateSize(info: ContentInfo): number {
  return 48 + info.digest.length + labelsWireSize(info.labels);
}
