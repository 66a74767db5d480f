// An in-memory registry behind the Resolver contract: blobs and tags per repository, counted reads, and faults to
// inject (a blob served with other bytes, a body that stalls or fails after some bytes). Tests of the image code
// use it where a real registry would only add HTTP; the loopback docker-registry covers that part.
import { InvalidArgumentError, NotFoundError, sha256Digest, type Descriptor } from '@berth/core';
import { isIndexType, isManifestType } from './media-types.js';
import { parseRemoteRef, type BlobBody, type Fetcher, type FetchOptions, type Pusher, type PushOutcome, type Resolved, type Resolver } from '@berth/registry';

export interface BlobFault {
  /** Serve these bytes instead (a registry returning a blob whose digest does not match). */
  readonly replace?: Uint8Array;
  /** Fail the body after this many bytes of one GET (counted from the GET's start), with `error` or a reset. */
  readonly failAfter?: number;
  readonly error?: () => Error;
  /** Stall the body after this many bytes of one GET until `hold` settles (or the fetch is aborted). */
  readonly holdAfter?: number;
  readonly hold?: Promise<void>;
  /** Only for the next `times` GETs (default: every one). */
  times?: number;
}

/** Bytes per chunk of a body. */
const CHUNK = 64 * 1024;

export class MemoryRegistry implements Resolver {
  readonly host: string;
  private readonly blobs = new Map<string, Uint8Array>();
  private readonly tags = new Map<string, Descriptor>();
  private readonly faults = new Map<string, BlobFault>();
  /** Bytes served per digest (all GETs). */
  readonly served = new Map<string, number>();
  /** GETs per digest, with the offset each started at. */
  readonly gets: { digest: string; offset: number }[] = [];

  constructor(host = 'registry.test') {
    this.host = host;
  }

  /** Stores a blob and returns its descriptor. */
  put(bytes: Uint8Array | string, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
    const data = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
    const digest = sha256Digest(data);
    this.blobs.set(digest, data);
    return { mediaType, digest, size: data.length, ...extra };
  }

  /** Stores a JSON document (manifest, index, config) and returns its descriptor. */
  putJson(doc: unknown, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
    return this.put(Buffer.from(JSON.stringify(doc)), mediaType, extra);
  }

  /** Points `repository:tag` at a descriptor. */
  tag(repository: string, tag: string, desc: Descriptor): string {
    this.tags.set(`${repository}:${tag}`, desc);
    this.hold(repository, desc.digest);
    return `${this.host}/${repository}:${tag}`;
  }

  fault(digest: string, fault: BlobFault): void {
    this.faults.set(digest, fault);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Total bytes served for `digests` (all of them without an argument). */
  bytesServed(digests?: readonly string[]): number {
    let n = 0;
    for (const [d, v] of this.served) if (!digests || digests.includes(d)) n += v;
    return n;
  }

  async resolve(ref: string): Promise<Resolved> {
    const r = parseRemoteRef(ref);
    if (r.host !== this.host) throw new NotFoundError(`${ref}: unknown registry host ${r.host}`);
    if (r.digest) {
      const tagged = [...this.tags.values()].find((d) => d.digest === r.digest);
      const blob = this.blobs.get(r.digest);
      if (!blob) throw new NotFoundError(`${ref}: not found`);
      return { name: ref, descriptor: tagged ?? { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: r.digest, size: blob.length } };
    }
    const tag = r.tag ?? 'latest';
    const desc = this.tags.get(`${r.repository}:${tag}`);
    if (!desc) throw new NotFoundError(`${ref}: not found`);
    return { name: `${r.host}/${r.repository}:${tag}`, descriptor: desc };
  }

  fetcher(ref: string): Fetcher {
    parseRemoteRef(ref);
    return { fetch: (desc, options) => this.open(desc, options) };
  }

  /** Which digests each repository holds (pushed, mounted or tagged there). */
  readonly repositories = new Map<string, Set<string>>();
  /** Every push, in order, with what it did. */
  readonly pushes: { repository: string; digest: string; outcome: PushOutcome; reference?: string }[] = [];

  /** Whether `repository` holds `digest`. */
  has(repository: string, digest: string): boolean {
    return this.repositories.get(repository)?.has(digest) ?? false;
  }

  private hold(repository: string, digest: string): void {
    let set = this.repositories.get(repository);
    if (!set) this.repositories.set(repository, (set = new Set()));
    set.add(digest);
  }

  pusher(ref: string): Pusher {
    const r = parseRemoteRef(ref);
    if (r.host !== this.host) throw new NotFoundError(`${ref}: unknown registry host ${r.host}`);
    const isTag = (reference: string | undefined): reference is string => reference !== undefined && !reference.includes(':');
    const exists = (desc: Descriptor, reference?: string): boolean => {
      if (!this.has(r.repository, desc.digest)) return false;
      // a manifest pushed under a tag exists only if the tag points at it already
      return !isTag(reference) || this.tags.get(`${r.repository}:${reference}`)?.digest === desc.digest;
    };
    return {
      exists: async (desc) => exists(desc),
      push: async (desc, content, options = {}) => {
        options.signal?.throwIfAborted();
        const manifest = isManifestType(desc.mediaType) || isIndexType(desc.mediaType);
        // only manifests go by a reference; blobs by digest
        const reference = manifest ? (options.reference ?? r.tag) : undefined;
        const record = (outcome: PushOutcome) => {
          this.pushes.push({ repository: r.repository, digest: desc.digest, outcome, ...(reference !== undefined ? { reference } : {}) });
          if (isTag(reference) && outcome !== 'mounted') this.tags.set(`${r.repository}:${reference}`, desc);
          return outcome;
        };
        if (exists(desc, reference)) return record('exists');
        // manifests are PUT, never mounted
        const from = (manifest ? [] : (options.mountFrom ?? [])).find((repo) => repo !== r.repository && this.has(repo, desc.digest));
        if (from !== undefined) {
          this.hold(r.repository, desc.digest);
          options.onProgress?.(desc.size);
          return record('mounted');
        }
        const parts: Uint8Array[] = [];
        let sent = 0;
        for await (const chunk of content()) {
          options.signal?.throwIfAborted();
          parts.push(chunk);
          sent += chunk.length;
          options.onProgress?.(sent);
        }
        const bytes = Buffer.concat(parts);
        if (bytes.length !== desc.size || sha256Digest(bytes) !== desc.digest) {
          throw new InvalidArgumentError(`push of ${desc.digest}: ${bytes.length} bytes of ${sha256Digest(bytes)} do not match the descriptor`);
        }
        this.blobs.set(desc.digest, bytes);
        this.hold(r.repository, desc.digest);
        return record('uploaded');
      },
    };
  }

  private async open(desc: Descriptor, options: FetchOptions = {}): Promise<BlobBody> {
    options.signal?.throwIfAborted();
    let data = this.blobs.get(desc.digest);
    if (!data) throw new NotFoundError(`blob ${desc.digest} not found in ${this.host}`);
    const offset = options.offset ?? 0;
    if (offset < 0 || offset > data.length) throw new InvalidArgumentError(`offset ${offset} out of range`);
    const fault = this.faults.get(desc.digest);
    if (fault && fault.times !== undefined) {
      if (fault.times <= 0) this.faults.delete(desc.digest);
      else fault.times--;
    }
    const active = fault && (fault.times === undefined || fault.times >= 0) ? fault : undefined;
    if (active?.replace) data = active.replace;
    this.gets.push({ digest: desc.digest, offset });
    const served = this.served;
    const signal = options.signal;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let sent = 0;
      for (let at = offset; at < data!.length; at += CHUNK) {
        // a real body arrives over time: let the event loop (and an abort) in between chunks
        await new Promise((resolve) => setImmediate(resolve));
        signal?.throwIfAborted();
        if (active?.holdAfter !== undefined && sent >= active.holdAfter) {
          await stalled(active.hold ?? new Promise<void>(() => undefined), signal);
        }
        const piece = data!.subarray(at, Math.min(at + CHUNK, data!.length));
        if (active?.failAfter !== undefined && sent + piece.length > active.failAfter) {
          throw active.error?.() ?? Object.assign(new Error('connection reset by peer'), { code: 'ECONNRESET' });
        }
        sent += piece.length;
        served.set(desc.digest, (served.get(desc.digest) ?? 0) + piece.length);
        yield piece;
      }
    }
    return { offset, size: data.length, chunks: chunks() };
  }
}

/** Waits for `hold`, or rejects with the abort reason when `signal` aborts first. */
function stalled(hold: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return hold;
  signal.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    hold.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
