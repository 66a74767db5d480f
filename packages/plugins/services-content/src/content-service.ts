import { implementService, ServiceNames, toTimestamp, type containerd } from '@berth/api';
import {
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
/** A List response carries at most this many blobs (as containerd) ... */
export const LIST_BATCH_COUNT = 100;
/** ... and stops growing past roughly this many bytes, so that many large label sets stay far below 16 MiB. */
export const LIST_BATCH_BYTES = 1 << 20;

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
    let batch: WireInfo[] = [];
    let bytes = 0;
    for await (const info of this.store.list(op, filters)) {
      batch.push(toWireInfo(info));
      bytes += approximateSize(info);
      if (batch.length >= LIST_BATCH_COUNT || bytes >= LIST_BATCH_BYTES) {
        yield { info: batch };
        batch = [];
        bytes = 0;
      }
    }
    if (batch.length > 0) yield { info: batch };
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
  let size = 48 + info.digest.length;
  for (const [key, value] of Object.entries(info.labels)) size += 8 + key.length + value.length;
  return size;
}
