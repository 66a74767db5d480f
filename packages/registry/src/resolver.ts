// The HTTP Resolver of remotes.ts, as containerd 1.6's remotes/docker does it: resolve with HEAD then GET on each
// endpoint (mirrors first), fetch by descriptor with Range resume that survives dropped and stalled connections,
// and push (existence check, cross-repository mount, monolithic or chunked upload, manifests by tag or digest).
import type { Descriptor } from '@berth/core';
import { DataLossError, DeadlineExceededError, InvalidArgumentError, isDeadlineExceeded, isUnavailable, NotFoundError, rechunk, sha256Digest, UnavailableError, validateDigest } from '@berth/core';
import { BlobNotFoundError, type BlobBody } from './blob.js';
import { describeConnectionError, isRetryableError, RegistryClient, sleep, type ClientTuning, type Endpoint, type RegistryRequest } from './client.js';
import { discard, header, IdleTimeoutError, readBody, type HttpResponse } from './http.js';
import { MediaType } from './media-types.js';
import { parseRemoteRef, type RemoteRef } from './remote.js';
import type { FetchOptions, Fetcher, PushOptions, PushOutcome, Pusher, Resolved, Resolver, ResolverOptions } from './remotes.js';

/** Every manifest and index type a resolve accepts (sent in Accept, then any type, as containerd does). */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerSchema1Signed,
];
const RESOLVE_ACCEPT = [...MANIFEST_MEDIA_TYPES, '*/*'].join(', ');
const MANIFESTS = new Set([...MANIFEST_MEDIA_TYPES, MediaType.DockerSchema1]);

/** containerd's MaxManifestSize: a resolve refuses anything larger. */
export const MAX_MANIFEST_SIZE = 4 << 20;

export function isManifestType(mediaType: string): boolean {
  return MANIFESTS.has(mediaType.split(';')[0]!.trim());
}

export interface HttpResolverOptions extends ResolverOptions, ClientTuning {
  /** Blobs up to this size are pushed with one PUT; larger ones in PATCH chunks of `chunkSize` (default 16 MiB). */
  readonly monolithicLimit?: number;
  /** Chunk size of a chunked upload (default 16 MiB). */
  readonly chunkSize?: number;
}

/** A fetcher that can also HEAD a blob (`berth content fetch-blob` learns a blob's size that way). */
export interface HttpFetcher extends Fetcher {
  /** HEAD of `blobs/<digest>` on the pull endpoints: its size when the registry sent one. */
  stat(digest: string, options?: { mediaType?: string; signal?: AbortSignal }): Promise<{ size?: number }>;
}

/** One answer of the referrers API (OCI distribution spec 1.1), every page followed. */
export interface ReferrersListing {
  /** The `manifests` of the image indexes the registry answered with. */
  readonly manifests: readonly (Descriptor & { readonly artifactType?: string })[];
  /** Whether the registry applied the `artifactType` filter (`OCI-Filters-Applied: artifactType`). */
  readonly filtered: boolean;
}

/** The Resolver over HTTP. `close()` drops the kept-alive connections (call it when done). */
export interface HttpResolver extends Resolver {
  fetcher(ref: string): HttpFetcher;
  /**
   * GET /v2/<name>/referrers/<digest> (with `?artifactType=` when given), following `Link: <…>; rel="next"`.
   * Undefined when the registry has no referrers API (a 404 that is not NAME_UNKNOWN, or an answer that is not an
   * OCI image index): the caller then reads the `<alg>-<hex>` tag instead, as the spec's fallback says.
   */
  referrers(ref: string, digest: string, options?: { artifactType?: string; signal?: AbortSignal }): Promise<ReferrersListing | undefined>;
  /** DELETE /v2/<name>/manifests/<digest>; false when the registry refuses deletes (405, or 404: already gone). */
  deleteManifest(ref: string, digest: string, options?: { signal?: AbortSignal }): Promise<boolean>;
  close(): void;
}

/** Pages of a referrers listing a client follows at most (a registry that links in circles ends there). */
export const MAX_REFERRERS_PAGES = 100;

export function createResolver(options: HttpResolverOptions = {}): HttpResolver {
  return new RegistryResolver(options);
}

const pullScope = (repo: string) => `repository:${repo}:pull`;
const pushScope = (repo: string) => `repository:${repo}:pull,push`;

/** `host/repo[:tag][@digest]`; a reference with neither a tag nor a digest means `:latest`. */
function normalize(ref: RemoteRef): string {
  const base = `${ref.host}/${ref.repository}`;
  if (ref.digest !== undefined) return `${base}${ref.tag !== undefined ? `:${ref.tag}` : ''}@${ref.digest}`;
  return `${base}:${ref.tag ?? 'latest'}`;
}

/** containerd adds `?ns=<registry>` when a request goes to a mirror (so a pull-through proxy knows the upstream). */
function withNamespace(ep: Endpoint, registry: string, path: string): string {
  const isProxy = ep.host !== registry && !(registry === 'docker.io' && ep.host === 'registry-1.docker.io');
  return isProxy ? `${path}${path.includes('?') ? '&' : '?'}ns=${encodeURIComponent(registry)}` : path;
}

function mediaTypeOf(res: HttpResponse): string {
  const type = (header(res, 'content-type') ?? '').split(';')[0]!.trim();
  // registries that send schema1 manifests as text/plain (containerd's workaround)
  return type === 'text/plain' ? MediaType.DockerSchema1Signed : type;
}

function lengthOf(res: HttpResponse): number | undefined {
  const text = header(res, 'content-length');
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
}

class RegistryResolver implements HttpResolver {
  readonly client: RegistryClient;

  constructor(readonly options: HttpResolverOptions) {
    this.client = new RegistryClient(options);
  }

  close(): void {
    this.client.close();
  }

  async resolve(refText: string, options: { signal?: AbortSignal } = {}): Promise<Resolved> {
    const ref = parseRemoteRef(refText);
    const name = normalize(ref);
    const object = ref.digest ?? ref.tag ?? 'latest';
    // by digest: any pull endpoint, manifests then blobs; by tag: only endpoints trusted to resolve
    const paths = ref.digest !== undefined ? [`manifests/${ref.digest}`, `blobs/${ref.digest}`] : [`manifests/${object}`];
    const hosts = this.client.hosts(ref.host, ref.digest !== undefined ? ['pull'] : ['pull', 'resolve']);
    if (hosts.length === 0) throw new NotFoundError(`${name}: no endpoint of ${ref.host} may resolve it (capabilities in hosts.toml)`);
    const scopes = [pullScope(ref.repository)];
    let firstError: Error | undefined;
    for (const path of paths) {
      for (const ep of hosts) {
        const base = withNamespace(ep, ref.host, `${ep.path}/${ref.repository}/${path}`);
        const what = `reference ${name}`;
        const common = { path: base, headers: { accept: RESOLVE_ACCEPT }, scopes, what, ...(options.signal ? { signal: options.signal } : {}) };
        let res: HttpResponse;
        let method: 'HEAD' | 'GET' = 'HEAD';
        try {
          res = await this.client.request(ep, { method, ...common });
          // registries that do not implement HEAD on manifests
          if (res.status === 405) {
            discard(res);
            method = 'GET';
            res = await this.client.request(ep, { method, ...common });
          }
        } catch (err) {
          firstError ??= err as Error;
          continue;
        }
        if (res.status === 404) {
          discard(res);
          continue;
        }
        if (res.status < 200 || res.status > 299) {
          firstError ??= await this.client.failure(ep, { method, what }, res);
          discard(res);
          continue;
        }
        let size = lengthOf(res);
        let mediaType = mediaTypeOf(res);
        let digest = ref.digest;
        if (digest === undefined) {
          const sent = header(res, 'docker-content-digest');
          if (sent !== undefined && size !== undefined) digest = validateDigest(sent, `Docker-Content-Digest of ${name}`);
        }
        if (method === 'GET' || digest === undefined || size === undefined) {
          // no digest header (or no length): GET the manifest and digest its bytes
          if (method === 'HEAD') {
            discard(res);
            try {
              res = await this.client.request(ep, { method: 'GET', ...common });
            } catch (err) {
              firstError ??= err as Error;
              continue;
            }
            if (res.status < 200 || res.status > 299) {
              firstError ??= await this.client.failure(ep, { method: 'GET', what }, res);
              continue;
            }
            mediaType = mediaTypeOf(res);
          }
          let body: Buffer;
          try {
            body = await readBody(res, MAX_MANIFEST_SIZE);
          } catch (err) {
            firstError ??= err as Error;
            continue;
          }
          size = body.length;
          digest ??= sha256Digest(body);
        } else {
          discard(res);
        }
        if (size > MAX_MANIFEST_SIZE) {
          firstError ??= new NotFoundError(`${name}: rejecting a ${size}-byte manifest (more than ${MAX_MANIFEST_SIZE})`);
          continue;
        }
        return { name, descriptor: { mediaType, digest, size } };
      }
    }
    throw firstError ?? new NotFoundError(`${name}: not found`);
  }

  fetcher(refText: string): HttpFetcher {
    return new RegistryFetcher(this.client, parseRemoteRef(refText), this.options);
  }

  async referrers(refText: string, digest: string, options: { artifactType?: string; signal?: AbortSignal } = {}): Promise<ReferrersListing | undefined> {
    const ref = parseRemoteRef(refText);
    validateDigest(digest);
    const ep = this.client.hosts(ref.host, 'pull')[0];
    if (!ep) throw new NotFoundError(`${ref.host}/${ref.repository}: no endpoint may pull (capabilities in hosts.toml)`);
    const what = `referrers of ${ref.host}/${ref.repository}@${digest}`;
    const query = options.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : '';
    let path: string | undefined = withNamespace(ep, ref.host, `${ep.path}/${ref.repository}/referrers/${digest}${query}`);
    const manifests: (Descriptor & { artifactType?: string })[] = [];
    let filtered = options.artifactType !== undefined;
    for (let page = 0; path !== undefined; page++) {
      if (page >= MAX_REFERRERS_PAGES) throw new UnavailableError(`${what}: more than ${MAX_REFERRERS_PAGES} pages`);
      const req: RegistryRequest = { method: 'GET', path, headers: { accept: MediaType.OciIndex }, scopes: [pullScope(ref.repository)], what, ...(options.signal ? { signal: options.signal } : {}) };
      const res = await this.client.request(ep, req);
      if (res.status === 404) {
        const body = await readBody(res, 64 << 10).catch(() => Buffer.alloc(0));
        // the repository is unknown: the API may well exist, the subject does not
        if (/"code"\s*:\s*"NAME_UNKNOWN"/.test(body.toString())) throw new NotFoundError(`${what}: repository not found in registry ${ep.host}`);
        if (page === 0) return undefined;
        throw new NotFoundError(`${what}: page ${page + 1} is gone`);
      }
      if (res.status !== 200) throw await this.client.failure(ep, req, res);
      if (mediaTypeOf(res) !== MediaType.OciIndex) {
        discard(res);
        if (page === 0) return undefined;
        throw new DataLossError(`${what}: page ${page + 1} is ${mediaTypeOf(res) || 'untyped'}, not an OCI image index`);
      }
      const body = await readBody(res, MAX_MANIFEST_SIZE);
      let index: { manifests?: unknown };
      try {
        index = JSON.parse(body.toString()) as { manifests?: unknown };
      } catch (err) {
        throw new DataLossError(`${what}: the registry answered with an index that is not JSON`, { cause: err });
      }
      if (!Array.isArray(index.manifests)) throw new DataLossError(`${what}: the registry's index has no manifests array`);
      manifests.push(...(index.manifests as (Descriptor & { artifactType?: string })[]));
      const applied = (header(res, 'oci-filters-applied') ?? '').split(',').map((f) => f.trim());
      if (!applied.includes('artifactType')) filtered = false;
      path = nextLink(header(res, 'link'), res.url);
    }
    return { manifests, filtered: options.artifactType !== undefined && filtered };
  }

  async deleteManifest(refText: string, digest: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const ref = parseRemoteRef(refText);
    validateDigest(digest);
    const ep = this.client.hosts(ref.host, 'push')[0];
    if (!ep) throw new NotFoundError(`${ref.host}/${ref.repository}: no endpoint may push (capabilities in hosts.toml)`);
    const req: RegistryRequest = {
      method: 'DELETE',
      path: `${ep.path}/${ref.repository}/manifests/${digest}`,
      scopes: [`repository:${ref.repository}:delete`, pushScope(ref.repository)],
      what: `manifest ${digest} of ${ref.host}/${ref.repository}`,
      redirects: false,
      ...(options.signal ? { signal: options.signal } : {}),
    };
    const res = await this.client.request(ep, req);
    if (res.status === 202 || res.status === 200 || res.status === 204) {
      discard(res);
      return true;
    }
    if (res.status === 404 || res.status === 405) {
      discard(res);
      return false;
    }
    throw await this.client.failure(ep, req, res);
  }

  pusher(refText: string): Pusher {
    return new RegistryPusher(this.client, parseRemoteRef(refText), this.options);
  }
}

class RegistryFetcher implements HttpFetcher {
  constructor(
    private readonly client: RegistryClient,
    private readonly ref: RemoteRef,
    private readonly options: HttpResolverOptions,
  ) {}

  async stat(digest: string, options: { mediaType?: string; signal?: AbortSignal } = {}): Promise<{ size?: number }> {
    validateDigest(digest);
    const what = `blob ${digest} of ${this.ref.host}/${this.ref.repository}`;
    let firstError: Error | undefined;
    for (const ep of this.client.hosts(this.ref.host, 'pull')) {
      const req: RegistryRequest = {
        method: 'HEAD',
        path: withNamespace(ep, this.ref.host, `${ep.path}/${this.ref.repository}/blobs/${digest}`),
        headers: { accept: options.mediaType ? `${options.mediaType}, */*` : '*/*' },
        scopes: [pullScope(this.ref.repository)],
        what,
        ...(options.signal ? { signal: options.signal } : {}),
      };
      let res: HttpResponse;
      try {
        res = await this.client.request(ep, req);
      } catch (err) {
        firstError ??= err as Error;
        continue;
      }
      discard(res);
      if (res.status === 404) continue;
      if (res.status !== 200) {
        firstError ??= await this.client.failure(ep, req, res);
        continue;
      }
      const size = lengthOf(res);
      return size !== undefined ? { size } : {};
    }
    throw firstError ?? new BlobNotFoundError(`blob ${digest} not found in ${this.ref.host}/${this.ref.repository}`);
  }

  async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<BlobBody> {
    validateDigest(desc.digest);
    const offset = options.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0) throw new InvalidArgumentError(`fetch offset must be a non-negative integer, not ${offset}`);
    const hosts = this.client.hosts(this.ref.host, 'pull');
    if (hosts.length === 0) throw new NotFoundError(`${desc.digest}: no endpoint of ${this.ref.host} may pull (capabilities in hosts.toml)`);
    const manifest = isManifestType(desc.mediaType);
    const kinds = manifest ? ['manifests', 'blobs'] : ['blobs'];
    const what = `${manifest ? 'manifest' : 'blob'} ${desc.digest} of ${this.ref.host}/${this.ref.repository}`;
    // everything is there already: a Range past the end would be refused
    if (desc.size > 0 && offset >= desc.size) return { offset, size: desc.size, chunks: (async function* () {})() };
    let firstError: Error | undefined;
    for (const kind of kinds) {
      for (const ep of hosts) {
        const path = withNamespace(ep, this.ref.host, `${ep.path}/${this.ref.repository}/${kind}/${desc.digest}`);
        const req: RegistryRequest = {
          method: 'GET',
          path,
          headers: { accept: desc.mediaType ? `${desc.mediaType}, */*` : '*/*' },
          scopes: [pullScope(this.ref.repository)],
          what,
          ...(options.signal ? { signal: options.signal } : {}),
        };
        let opened: { res: HttpResponse; body: BlobBody } | undefined;
        try {
          opened = await this.open(ep, req, offset, desc);
        } catch (err) {
          firstError ??= err as Error;
          continue;
        }
        if (opened === undefined) continue; // 404: the next endpoint
        return { ...opened.body, chunks: this.resuming(ep, req, opened.res, opened.body, desc, options.signal) };
      }
    }
    throw firstError ?? (manifest ? new NotFoundError(`${what}: not found`) : new BlobNotFoundError(`blob ${desc.digest} not found in ${this.ref.host}/${this.ref.repository}`));
  }

  /** GET from `offset`; undefined on 404. Checks a 206's Content-Range; a 200 is skipped up to offset later. */
  private async open(ep: Endpoint, req: RegistryRequest, offset: number, desc: Descriptor): Promise<{ res: HttpResponse; body: BlobBody } | undefined> {
    const res = await this.client.request(ep, { ...req, headers: { ...req.headers, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) } });
    if (res.status === 404) {
      discard(res);
      return undefined;
    }
    if (res.status !== 200 && res.status !== 206) throw await this.client.failure(ep, req, res);
    let size = lengthOf(res);
    if (res.status === 206) {
      const range = header(res, 'content-range') ?? '';
      const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(range);
      if (!match || Number(match[1]) !== offset) {
        res.body.destroy();
        throw new DataLossError(`${req.what}: unexpected content range ${JSON.stringify(range)} for offset ${offset}`);
      }
      size = match[2] === '*' ? undefined : Number(match[2]);
    }
    size ??= desc.size > 0 ? desc.size : undefined;
    return { res, body: { offset, ...(size !== undefined ? { size } : {}) } as BlobBody };
  }

  /**
   * The body from the requested offset, surviving dropped and stalled connections: after an error it reopens the
   * blob at the byte it got to (Range), with backoff, up to the client's retry count; then it fails, with
   * DeadlineExceededError naming the blob when the last attempt stalled.
   */
  private async *resuming(ep: Endpoint, req: RegistryRequest, first: HttpResponse, body: BlobBody, desc: Descriptor, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    const retries = this.options.retries ?? 4;
    const start = body.offset;
    let position = start;
    let res: HttpResponse | undefined = first;
    let skip = first.status === 200 ? start : 0;
    let failures = 0;
    // reopenings in all: progress resets `failures`, so a registry that trickles a few bytes per connection is
    // still bounded
    let reopened = 0;
    for (;;) {
      try {
        if (res === undefined) {
          const reopened = await this.open(ep, req, position, desc);
          if (reopened === undefined) throw new NotFoundError(`${req.what}: gone from registry ${ep.host} while resuming at ${position}`);
          res = reopened.res;
          skip = res.status === 200 ? position : 0;
        }
        for await (const raw of res.body as AsyncIterable<Buffer>) {
          let chunk = raw;
          if (skip > 0) {
            const dropped = Math.min(skip, chunk.length);
            chunk = chunk.subarray(dropped);
            skip -= dropped;
            if (chunk.length === 0) continue;
          }
          position += chunk.length;
          failures = 0;
          yield chunk;
        }
        if (skip > 0) throw new DataLossError(`${req.what}: body ended ${skip} bytes before the resume offset`);
        return;
      } catch (err) {
        res?.body.destroy();
        res = undefined;
        if (!isRetryableError(err) || failures >= retries || reopened >= Math.max(1, retries) * 5 || signal?.aborted) {
          if (err instanceof IdleTimeoutError) {
            throw new DeadlineExceededError(
              `${req.what}: registry ${ep.host} stalled at byte ${position}${desc.size > 0 ? ` of ${desc.size}` : ''} (no data for ${(err.message.match(/(\d+) ms/) ?? [])[1] ?? '?'} ms, ${failures + 1} attempts)`,
              { cause: err },
            );
          }
          if (isRetryableError(err)) {
            throw new UnavailableError(`${req.what}: connection to ${ep.host} lost at byte ${position}: ${describeConnectionError(err)} (${failures + 1} attempts)`, { cause: err });
          }
          throw err;
        }
        failures++;
        reopened++;
        await sleep(Math.min(this.options.maxRetryDelayMs ?? 30_000, (this.options.retryDelayMs ?? 250) * 2 ** (failures - 1)), signal);
      }
    }
  }
}

class RegistryPusher implements Pusher {
  constructor(
    private readonly client: RegistryClient,
    private readonly ref: RemoteRef,
    private readonly options: HttpResolverOptions,
  ) {}

  private endpoint(): Endpoint {
    const ep = this.client.hosts(this.ref.host, 'push')[0];
    if (!ep) throw new NotFoundError(`${this.ref.host}/${this.ref.repository}: no endpoint may push (capabilities in hosts.toml)`);
    return ep;
  }

  private base(ep: Endpoint): string {
    return `${ep.path}/${this.ref.repository}`;
  }

  /** Best-effort DELETE of an upload session we will not use (the registry would expire it anyway). */
  private async cancelUpload(ep: Endpoint, location: string, what: string): Promise<void> {
    try {
      discard(await this.client.request(ep, { method: 'DELETE', path: uploadUrl(ep, location, {}).href, scopes: [pushScope(this.ref.repository)], what, redirects: false }));
    } catch {
      // nothing to do: an abandoned upload only costs the registry a little until it expires
    }
  }

  async exists(desc: Descriptor, options: { signal?: AbortSignal; reference?: string } = {}): Promise<boolean> {
    validateDigest(desc.digest);
    const ep = this.endpoint();
    const manifest = isManifestType(desc.mediaType);
    const object = manifest ? (options.reference ?? desc.digest) : desc.digest;
    const what = `${manifest ? 'manifest' : 'blob'} ${desc.digest} in ${this.ref.host}/${this.ref.repository}`;
    const req: RegistryRequest = {
      method: 'HEAD',
      path: `${this.base(ep)}/${manifest ? 'manifests' : 'blobs'}/${object}`,
      headers: { accept: `${desc.mediaType}, */*` },
      scopes: [pushScope(this.ref.repository)],
      what,
      ...(options.signal ? { signal: options.signal } : {}),
    };
    const res = await this.client.request(ep, req);
    discard(res);
    if (res.status === 404) return false;
    if (res.status !== 200) throw await this.client.failure(ep, req, res);
    // a tag exists as this manifest only if it points at this digest
    if (object !== desc.digest) return header(res, 'docker-content-digest') === desc.digest;
    return true;
  }

  async push(desc: Descriptor, content: () => AsyncIterable<Uint8Array>, options: PushOptions & { reference?: string } = {}): Promise<PushOutcome> {
    validateDigest(desc.digest);
    if (!Number.isInteger(desc.size) || desc.size < 0) throw new InvalidArgumentError(`push of ${desc.digest}: bad size ${desc.size}`);
    const ep = this.endpoint();
    const signal = options.signal;
    const manifest = isManifestType(desc.mediaType);
    const reference = options.reference ?? this.ref.tag;
    if (await this.exists(desc, { ...(signal ? { signal } : {}), ...(manifest && reference ? { reference } : {}) })) return 'exists';
    if (manifest) {
      const body = await collect(content(), desc.size, desc.digest);
      const what = `manifest ${desc.digest} to ${this.ref.host}/${this.ref.repository}${reference ? `:${reference}` : ''}`;
      const req: RegistryRequest = {
        method: 'PUT',
        path: `${this.base(ep)}/manifests/${reference ?? desc.digest}`,
        headers: { 'content-type': desc.mediaType },
        body,
        scopes: [pushScope(this.ref.repository)],
        what,
        redirects: false,
        ...(signal ? { signal } : {}),
      };
      const res = await this.client.request(ep, req);
      if (res.status !== 201 && res.status !== 200 && res.status !== 204) throw await this.client.failure(ep, req, res);
      discard(res);
      options.onProgress?.(desc.size);
      return 'uploaded';
    }
    // a blob upload is started again from its POST when it fails on the way (a dropped or stalled connection,
    // a 5xx): a streamed body cannot be replayed by the request engine, but `content` can be read again
    const retries = this.options.retries ?? 4;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.uploadBlob(ep, desc, content, options);
      } catch (err) {
        if (attempt >= retries || signal?.aborted || !(isUnavailable(err) || isDeadlineExceeded(err))) throw err;
        await sleep(Math.min(this.options.maxRetryDelayMs ?? 30_000, (this.options.retryDelayMs ?? 250) * 2 ** attempt), signal);
      }
    }
  }

  private async uploadBlob(ep: Endpoint, desc: Descriptor, content: () => AsyncIterable<Uint8Array>, options: PushOptions): Promise<PushOutcome> {
    const signal = options.signal;
    const what = `blob ${desc.digest} to ${this.ref.host}/${this.ref.repository}`;
    const scopes = [pushScope(this.ref.repository)];
    /** A request of this upload: its scopes, no redirects, the caller's signal. */
    const request = (method: string, path: string, rest: Partial<RegistryRequest> = {}, extraScopes: readonly string[] = []): RegistryRequest => ({
      method,
      path,
      scopes: [...scopes, ...extraScopes],
      what,
      redirects: false,
      ...(signal ? { signal } : {}),
      ...rest,
    });
    /** Sends a request whose answer must be one of `ok` (else the registry's failure), its body discarded. */
    const send = async (req: RegistryRequest, ok: readonly number[]): Promise<HttpResponse> => {
      const res = await this.client.request(ep, req);
      if (!ok.includes(res.status)) throw await this.client.failure(ep, req, res);
      discard(res);
      return res;
    };
    const post = (query: string, extraScopes: readonly string[] = []): RegistryRequest =>
      request('POST', `${this.base(ep)}/blobs/uploads/${query}`, {}, extraScopes);
    let location: string | undefined;
    for (const from of options.mountFrom ?? []) {
      if (from === this.ref.repository) continue;
      const req = post(`?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`, [pullScope(from)]);
      const res = await this.client.request(ep, req);
      discard(res);
      if (res.status === 201) {
        // an upload a refused mount opened before is of no use now
        if (location !== undefined) await this.cancelUpload(ep, location, what);
        options.onProgress?.(desc.size);
        return 'mounted';
      }
      // 202: the registry could not mount and opened an upload instead (kept for the upload if no other source
      // mounts); 401/403/404: the next source
      if (res.status === 202) {
        const opened = header(res, 'location');
        if (location === undefined) location = opened;
        else if (opened !== undefined) await this.cancelUpload(ep, opened, what);
      }
    }
    if (location === undefined) {
      const req = post('');
      const res = await this.client.request(ep, req);
      discard(res);
      if (res.status === 201) return 'exists';
      if (res.status !== 202) throw await this.client.failure(ep, req, res);
      location = header(res, 'location');
    }
    if (location === undefined) throw new UnavailableError(`${what}: the registry opened an upload without a Location`);
    const monolithic = this.options.monolithicLimit ?? 16 << 20;
    if (desc.size <= monolithic) {
      let sent = 0;
      const req = request('PUT', uploadUrl(ep, location, { digest: desc.digest }).href, {
        headers: { 'content-type': 'application/octet-stream' },
        body: () =>
          (async function* () {
            for await (const chunk of content()) {
              sent += chunk.length;
              yield chunk;
              options.onProgress?.(sent);
            }
          })(),
        contentLength: desc.size,
      });
      await send(req, UPLOAD_DONE);
      return 'uploaded';
    }
    // chunked: PATCH each chunk with its Content-Range, following the Location each answer gives, then PUT
    const chunkSize = this.options.chunkSize ?? 16 << 20;
    let sent = 0;
    for await (const chunk of rechunk(content(), chunkSize)) {
      const req = request('PATCH', uploadUrl(ep, location, {}).href, {
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${sent}-${sent + chunk.length - 1}` },
        body: chunk,
      });
      const res = await send(req, [202, 204]);
      location = header(res, 'location') ?? location;
      sent += chunk.length;
      options.onProgress?.(sent);
    }
    if (sent !== desc.size) throw new InvalidArgumentError(`${what}: content has ${sent} bytes, the descriptor says ${desc.size}`);
    await send(request('PUT', uploadUrl(ep, location, { digest: desc.digest }).href), UPLOAD_DONE);
    return 'uploaded';
  }
}

/** The `rel="next"` target of a Link header, resolved against the request's URL (as an absolute URL). */
export function nextLink(link: string | undefined, base: URL): string | undefined {
  if (link === undefined) return undefined;
  for (const part of link.split(',')) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (match && /(?:^|;)\s*rel="?next"?\s*(?:;|$)/.test(match[2]!)) return new URL(match[1]!, base).href;
  }
  return undefined;
}

/** The answers that complete an upload's final PUT. */
const UPLOAD_DONE: readonly number[] = [201, 204, 200];

/** An upload Location (relative or absolute) with query parameters added. */
function uploadUrl(ep: Endpoint, location: string, params: Record<string, string>): URL {
  const url = new URL(location, `${ep.origin}/`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url;
}

async function collect(source: AsyncIterable<Uint8Array>, size: number, digest: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of source) {
    length += chunk.length;
    if (length > MAX_MANIFEST_SIZE) throw new InvalidArgumentError(`manifest ${digest} is larger than ${MAX_MANIFEST_SIZE} bytes`);
    parts.push(Buffer.from(chunk));
  }
  if (length !== size) throw new InvalidArgumentError(`manifest ${digest}: content has ${length} bytes, the descriptor says ${size}`);
  return Buffer.concat(parts, length);
}
