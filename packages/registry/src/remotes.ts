// The shape of the registry client, as the image code uses it (containerd's remotes.Resolver/Fetcher/Pusher). The
// HTTP implementation lives beside it; @berth/images codes against these interfaces only, so a test can hand it an
// in-memory source and an OCI layout can stand in for a registry.
import type { Descriptor } from '@berth/core';
import type { BlobBody } from './blob.js';

/** A reference resolved to the descriptor of what it names (an index or a manifest, usually). */
export interface Resolved {
  /** The normalized reference (`host/repository:tag` or `host/repository@digest`): what an image is named after. */
  readonly name: string;
  readonly descriptor: Descriptor;
}

export interface FetchOptions {
  /** Resume from this byte: the body then starts there (the fetcher drops bytes a server sends before it). */
  readonly offset?: number;
  readonly signal?: AbortSignal;
}

/** Reads manifests, indexes, configs and layers of one repository by descriptor. */
export interface Fetcher {
  fetch(desc: Descriptor, options?: FetchOptions): Promise<BlobBody>;
}

export interface PushOptions {
  readonly signal?: AbortSignal;
  /** Repositories of the same registry the blob may be mounted from (cross-repository mount) instead of uploaded. */
  readonly mountFrom?: readonly string[];
  /** Called with the bytes sent so far. */
  readonly onProgress?: (sent: number) => void;
}

/** What a push did with one descriptor. */
export type PushOutcome = 'exists' | 'mounted' | 'uploaded';

/** Writes blobs and manifests to one repository. `reference` names a manifest's tag (blobs ignore it). */
export interface Pusher {
  /** Whether the registry already has it (HEAD). */
  exists(desc: Descriptor, options?: { signal?: AbortSignal }): Promise<boolean>;
  /** Uploads `content` (exactly `desc.size` bytes, digest-checked by the registry) unless it is there already. */
  push(desc: Descriptor, content: () => AsyncIterable<Uint8Array>, options?: PushOptions & { reference?: string }): Promise<PushOutcome>;
}

/** Resolves references and hands out fetchers and pushers for them, with the auth and host config applied. */
export interface Resolver {
  resolve(ref: string, options?: { signal?: AbortSignal }): Promise<Resolved>;
  fetcher(ref: string): Fetcher;
  pusher(ref: string): Pusher;
}

/** How to reach registries: what `--plain-http`, `--hosts-dir`, `--user` and the docker config give a resolver. */
export interface ResolverOptions {
  /** http instead of https for every host (loopback hosts are http anyway, as in containerd 1.6). */
  readonly plainHttp?: boolean;
  /** containerd's certs.d layout: `<dir>/<host[:port]>/hosts.toml` with mirrors, CA and client certificates. */
  readonly hostsDir?: string;
  /** Credentials for a host: `user:secret`, or a function (the docker config's is the default). */
  readonly credentials?: (host: string) => Promise<{ username: string; secret: string } | undefined>;
  /** Parallel requests per registry host (default 3, as containerd's max_concurrent_downloads). */
  readonly concurrency?: number;
  /** Extra headers (User-Agent and the like). */
  readonly headers?: Readonly<Record<string, string>>;
}
