// Reads blobs from an OCI distribution registry (GET/HEAD /v2/<repository>/blobs/<digest>) with Node's fetch:
// no auth, redirects followed, bodies streamed, resumption with a Range request.
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  DataLossError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  UnknownError,
} from '@berth/core';

export interface BlobFetcherOptions {
  /** `host[:port]` of the registry. */
  readonly host: string;
  readonly repository: string;
  /** http instead of https. */
  readonly plainHttp?: boolean;
  /** Sent first in Accept (followed by any type), as containerd's fetcher does. */
  readonly mediaType?: string;
}

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

function contentLength(res: Response): number | undefined {
  const text = res.headers.get('content-length');
  return text !== null && /^\d+$/.test(text) ? Number(text) : undefined;
}

export class BlobFetcher {
  readonly baseUrl: string;

  constructor(private readonly options: BlobFetcherOptions) {
    this.baseUrl = `${options.plainHttp ? 'http' : 'https'}://${options.host}`;
  }

  blobUrl(digest: string): string {
    return `${this.baseUrl}/v2/${this.options.repository}/blobs/${digest}`;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const accept = this.options.mediaType ? `${this.options.mediaType}, */*` : '*/*';
    return { accept, ...extra };
  }

  private async request(method: 'HEAD' | 'GET', digest: string, headers: Record<string, string>): Promise<Response> {
    const url = this.blobUrl(digest);
    let res: Response;
    try {
      res = await fetch(url, { method, headers, redirect: 'follow' });
    } catch (err) {
      // undici wraps the socket's error; TLS errors carry a short `reason` besides OpenSSL's long message
      const cause = (err as { cause?: { message?: string; reason?: string } }).cause;
      const detail = cause?.reason ? `tls: ${cause.reason}` : (cause?.message ?? (err as Error).message).split('\n')[0]!.trim();
      const hint = this.options.plainHttp ? '' : ' (use --plain-http for a registry without TLS)';
      throw new UnavailableError(`cannot reach registry ${this.options.host}: ${method} ${url}: ${detail}${hint}`, { cause: err });
    }
    if (res.ok) return res;
    const body = method === 'GET' ? await res.text().catch(() => '') : '';
    if (res.status === 404) throw new BlobNotFoundError(`blob ${digest} not found in ${this.options.host}/${this.options.repository}`);
    const message = `${method} ${url}: ${res.status} ${res.statusText}${registryMessage(body)}`;
    switch (res.status) {
      case 401:
        throw new UnauthenticatedError(`${message} (registry authentication is not supported)`);
      case 403:
        throw new PermissionDeniedError(message);
      case 429:
        throw new ResourceExhaustedError(message);
      default:
        throw res.status >= 500 ? new UnavailableError(message) : new UnknownError(message);
    }
  }

  /** HEAD of the blob: whether it is there, and its size. */
  async head(digest: string): Promise<BlobHead> {
    const res = await this.request('HEAD', digest, this.headers());
    const size = contentLength(res);
    return size !== undefined ? { size } : {};
  }

  /**
   * GET of the blob from `offset` on. A registry that ignores the Range header answers 200 with the whole blob:
   * the bytes before `offset` are then dropped here, so `chunks` always starts at `offset`.
   */
  async open(digest: string, offset = 0): Promise<BlobBody> {
    const res = await this.request('GET', digest, this.headers(offset > 0 ? { range: `bytes=${offset}-` } : {}));
    if (!res.body) throw new DataLossError(`GET ${this.blobUrl(digest)}: no body`);
    const stream = Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
    let size = contentLength(res);
    let skip = 0;
    if (offset > 0 && res.status === 206) {
      const range = res.headers.get('content-range') ?? '';
      const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(range);
      if (!match || Number(match[1]) !== offset) {
        stream.destroy();
        throw new DataLossError(`GET ${this.blobUrl(digest)}: unexpected content range ${JSON.stringify(range)} for offset ${offset}`);
      }
      size = match[2] === '*' ? undefined : Number(match[2]);
    } else if (offset > 0) {
      skip = offset;
    }
    return { offset, ...(size !== undefined ? { size } : {}), chunks: skip > 0 ? dropFirst(stream, skip) : stream };
  }
}

/** The first `message` of a distribution error body (`{"errors":[{"code","message"}]}`), as `: <message>`. */
function registryMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { errors?: { code?: string; message?: string }[] };
    const first = parsed.errors?.[0];
    return first?.message ? `: ${first.message}` : '';
  } catch {
    return '';
  }
}

async function* dropFirst(source: AsyncIterable<Uint8Array>, count: number): AsyncGenerator<Uint8Array> {
  let left = count;
  for await (const chunk of source) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
  if (left > 0) throw new DataLossError(`blob ended ${left} bytes before the resume offset`);
}
