import { toTimestamp, type containerd } from '@berth/api';
import {
  AlreadyExistsError,
  CancelledError,
  InvalidArgumentError,
  OutOfRangeError,
  opContextOf,
  validateDigest,
  type ContentStore,
  type ContentWriter,
  type OpContext,
  type RpcContext,
} from '@berth/core';

type WriteRequest = containerd.services.content.v1.WriteContentRequest;
type WriteResponse = containerd.services.content.v1.WriteContentResponseInput;

/**
 * One Content.Write call (containerd's contentserver Write): the first request names the ref and opens its
 * writer (which holds the ref's lock until the call ends); then every request gets exactly one response.
 *
 * - STAT answers the writer's status with the running digest and the total known so far.
 * - WRITE appends `data`; a non-zero `offset` must be the current offset (OutOfRange otherwise), while offset 0
 *   on an ingest that already has bytes restarts it from empty. `total` and `expected` may come with any request.
 * - COMMIT writes any data it carries, then verifies and commits with `labels`; the call ends after it.
 *
 * Data goes to the writer one request at a time: the next request is only read once the previous write has
 * reached the store, so a fast client is held back by the transport instead of filling memory. When the client
 * goes away the writer is closed and the ingest stays resumable under its ref.
 */
export async function* writeSession(
  store: ContentStore,
  requests: AsyncIterable<WriteRequest>,
  call: RpcContext,
): AsyncGenerator<WriteResponse, void, undefined> {
  const ctx = opContextOf(call);
  const incoming = requests[Symbol.asyncIterator]();
  let req = await receive(incoming, call.signal);
  if (!req) return;
  const ref = req.ref;
  if (!ref) throw new InvalidArgumentError('first message must have a reference');
  let total = req.total;
  let expected = req.expected ? validateDigest(req.expected, 'expected digest') : '';

  // AlreadyExists here (the expected blob is already in this namespace) ends the call; clients take it as done.
  const writer = await store.writer(ctx, { ref, total, expected });
  try {
    for (;;) {
      const status = await writer.status();
      const response: { -readonly [K in keyof WriteResponse]: WriteResponse[K] } = { action: req.action, offset: status.offset };

      if (req.expected) {
        expected = validateDigest(req.expected, 'expected digest');
        if (await exists(store, ctx, expected)) {
          await writer.close().catch(() => undefined);
          await store.abort(ctx, ref).catch(() => undefined);
          throw new AlreadyExistsError(`blob with expected digest ${expected} exists`);
        }
      }
      if (req.total > 0) total = req.total;

      if (req.action === 'STAT') {
        response.digest = writer.digest();
        response.started_at = toTimestamp(status.startedAt);
        response.updated_at = toTimestamp(status.updatedAt);
        response.total = total;
      } else if (req.action === 'WRITE' || req.action === 'COMMIT') {
        response.offset = await append(writer, req, status.offset);
        if (req.action === 'COMMIT') {
          const labels = Object.keys(req.labels).length > 0 ? { labels: { ...req.labels } } : {};
          await writer.commit(total, expected, labels);
        }
        response.digest = writer.digest();
      }
      // Any other action (a newer client's) is answered with an empty message, as containerd's switch does.

      yield response;
      if (req.action === 'COMMIT') return;
      req = await receive(incoming, call.signal);
      if (!req) return;
    }
  } finally {
    // Commit already released the writer; otherwise this keeps the ingest for a later resume.
    await writer.close().catch(() => undefined);
  }
}

/** Applies the offset rules and the data of a WRITE or COMMIT; returns the offset after it. */
async function append(writer: ContentWriter, req: WriteRequest, current: number): Promise<number> {
  let offset = current;
  if (req.offset > 0 && req.offset !== offset) {
    throw new OutOfRangeError(`write @${req.offset} must occur at current offset ${offset}`);
  }
  if (req.offset === 0 && offset > 0) {
    await writer.truncate(0);
    offset = 0;
  }
  if (req.data.length > 0) {
    await writer.write(req.data);
    // The writer's own offset, not offset + length: a writer shared from another namespace stands at the blob's
    // full size and starts a fresh ingest when it is written to, so the bytes may land at 0.
    offset = (await writer.status()).offset;
  }
  return offset;
}

async function exists(store: ContentStore, ctx: OpContext, digest: string): Promise<boolean> {
  try {
    await store.info(ctx, digest);
    return true;
  } catch {
    return false;
  }
}

/**
 * The next request, undefined at the end of the stream, or CancelledError as soon as the call is cancelled: a
 * client that disappears mid-stream may leave the request stream neither ended nor failed.
 */
async function receive<T>(incoming: AsyncIterator<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) throw new CancelledError('write cancelled by the client');
  const next = incoming.next();
  // Once cancelled nobody waits for this any more; a late failure of the stream must not go unhandled.
  next.catch(() => undefined);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(new CancelledError('write cancelled by the client'));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const result = await Promise.race([next, aborted]);
    return result.done ? undefined : result.value;
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
