// What a blob fetch hands out, and its not-found error (shared by the resolver and BlobFetcher).
import { NotFoundError } from '@berth/core';

/** The registry has no such blob (HTTP 404). */
export class BlobNotFoundError extends NotFoundError {}

export interface BlobHead {
  /** Content-Length, when the registry sent one. */
  readonly size?: number;
}

/** One open GET: the body from `offset` on. */
export interface BlobBody {
  /** Where the body starts in the blob (the requested offset: bytes before it are skipped if the range was ignored). */
  readonly offset: number;
  /** Size of the whole blob, when known from Content-Length or Content-Range. */
  readonly size?: number;
  readonly chunks: AsyncIterable<Uint8Array>;
}

