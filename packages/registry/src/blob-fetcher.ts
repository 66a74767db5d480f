// The single-blob reader of the first registry issue, now a thin layer over the HTTP Resolver (resolver.ts): HEAD
// and GET of `/v2/<repository>/blobs/<digest>` with everything the resolver does (auth, hosts.toml, retries,
// resume after a stall). Kept for callers that know a host and a repository but no descriptor.
import type { CredentialsFunction } from './auth.js';
import type { BlobBody, BlobHead } from './blob.js';
import { createResolver, type HttpFetcher, type HttpResolver } from './resolver.js';

export { BlobNotFoundError, type BlobBody, type BlobHead } from './blob.js';

export interface BlobFetcherOptions {
  /** `host[:port]` of the registry. */
  readonly host: string;
  readonly repository: string;
  /** http instead of https (loopback hosts are http anyway, as in containerd). */
  readonly plainHttp?: boolean;
  /** Sent first in Accept (followed by any type), as containerd's fetcher does. */
  readonly mediaType?: string;
  readonly hostsDir?: string;
  readonly credentials?: CredentialsFunction;
  /** Use this resolver (its connections and tokens) instead of one of its own. */
  readonly resolver?: HttpResolver;
}

export class BlobFetcher {
  private fetcher: Promise<HttpFetcher> | undefined;
  private owned: HttpResolver | undefined;

  constructor(private readonly options: BlobFetcherOptions) {}

  private get(): Promise<HttpFetcher> {
    this.fetcher ??= (async () => {
      let resolver = this.options.resolver;
      if (!resolver) {
        resolver = this.owned = createResolver({
          ...(this.options.plainHttp !== undefined ? { plainHttp: this.options.plainHttp } : {}),
          ...(this.options.hostsDir !== undefined ? { hostsDir: this.options.hostsDir } : {}),
          ...(this.options.credentials ? { credentials: this.options.credentials } : {}),
        });
      }
      return resolver.fetcher(`${this.options.host}/${this.options.repository}`);
    })();
    return this.fetcher;
  }

  /** HEAD of the blob: whether it is there, and its size. */
  async head(digest: string): Promise<BlobHead> {
    return (await this.get()).stat(digest, this.options.mediaType ? { mediaType: this.options.mediaType } : {});
  }

  /**
   * GET of the blob from `offset` on. A registry that ignores the Range header answers 200 with the whole blob:
   * the bytes before `offset` are then dropped, so `chunks` always starts at `offset`.
   */
  async open(digest: string, offset = 0, size = 0): Promise<BlobBody> {
    return (await this.get()).fetch({ mediaType: this.options.mediaType ?? 'application/octet-stream', digest, size }, { offset });
  }

  /** Drops the connections of the resolver it made for itself (not of one it was given). */
  close(): void {
    this.owned?.close();
  }
}
