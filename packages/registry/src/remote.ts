// Registry references and the content-store conventions of a pull: ingest ref keys (containerd's MakeRefKey) and
// the `containerd.io/distribution.source.<host>` label.
import { InvalidArgumentError, validateDigest } from '@berth/core';
import { MediaType } from './media-types.js';

export interface RemoteRef {
  /** `host[:port]` as written: the part before the first `/`. */
  readonly host: string;
  /** The host without its port (and without the brackets of an IPv6 address), as in the distribution label. */
  readonly hostname: string;
  /** `library/busybox` */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

const LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const HOST = new RegExp(`^(?:(${LABEL}(?:\\.${LABEL})*)|\\[([0-9a-fA-F:.]+)\\])(?::([0-9]{1,5}))?$`);
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[\w][\w.-]{0,127}$/;
/** The distribution spec's limit on `host/repository`. */
const MAX_NAME_LENGTH = 255;

/**
 * Parses `host[:port]/repository[:tag][@digest]`. The host is always the part before the first `/` (no Docker Hub
 * defaults): `127.0.0.1:5000/library/busybox`, `registry.example/app:1.0`, `[::1]:5000/test/repo@sha256:…`.
 */
export function parseRemoteRef(text: string): RemoteRef {
  const invalid = (why: string, cause?: unknown) =>
    new InvalidArgumentError(`invalid reference ${JSON.stringify(text)}: ${why}`, cause === undefined ? undefined : { cause });
  const slash = text.indexOf('/');
  if (slash < 0) throw invalid('expected <host>/<repository>[:tag][@digest]');
  const host = text.slice(0, slash);
  const hostMatch = HOST.exec(host);
  if (!hostMatch) throw invalid(`bad registry host ${JSON.stringify(host)}`);
  const port = hostMatch[3];
  if (port !== undefined && Number(port) > 65535) throw invalid(`bad port ${port}`);
  let rest = text.slice(slash + 1);
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    try {
      digest = validateDigest(rest.slice(at + 1));
    } catch (err) {
      throw invalid('bad digest', err);
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(`bad tag ${JSON.stringify(tag)}`);
  }
  if (!REPOSITORY.test(rest)) {
    throw invalid(`bad repository ${JSON.stringify(rest)} (lowercase letters, digits and separators . _ __ - between them, / between components)`);
  }
  if (host.length + 1 + rest.length > MAX_NAME_LENGTH) throw invalid(`name longer than ${MAX_NAME_LENGTH} characters`);
  return {
    host,
    hostname: (hostMatch[1] ?? hostMatch[2]) as string,
    repository: rest,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

const LAYER_DOCKER = new Set<string>([
  MediaType.DockerLayer,
  MediaType.DockerLayerGzip,
  MediaType.DockerForeignLayer,
  MediaType.DockerForeignLayerGzip,
]);
const CONFIGS = new Set<string>([MediaType.OciConfig, MediaType.DockerConfig, MediaType.ContainerdCheckpoint, MediaType.ContainerdCheckpointConfig]);
const MANIFESTS = new Set<string>([MediaType.OciManifest, MediaType.DockerManifest]);
const INDEXES = new Set<string>([MediaType.OciIndex, MediaType.DockerManifestList]);

/** Prefix of the ingest ref when no media type is given. */
export const FETCH_BLOB_REF_PREFIX = 'fetch-blob';

/**
 * The ingest ref of a blob, as a pull names it (`layer-sha256:…`, `manifest-…`, `index-…`, `config-…`, `unknown-…`),
 * so that an interrupted fetch and a later pull resume the same ingest. Without a media type: `fetch-blob-<digest>`.
 */
export function refKeyFor(digest: string, mediaType?: string): string {
  if (mediaType === undefined || mediaType === '') return `${FETCH_BLOB_REF_PREFIX}-${digest}`;
  const base = mediaType.split(';')[0]!.trim();
  if (MANIFESTS.has(base)) return `manifest-${digest}`;
  if (INDEXES.has(base)) return `index-${digest}`;
  if (base.startsWith('application/vnd.oci.image.layer.') || LAYER_DOCKER.has(base.replace(/\+.*$/, ''))) return `layer-${digest}`;
  if (CONFIGS.has(base)) return `config-${digest}`;
  return `unknown-${digest}`;
}

export const DISTRIBUTION_SOURCE_PREFIX = 'containerd.io/distribution.source.';

/** `containerd.io/distribution.source.<hostname>` (the port is not part of it). */
export function distributionSourceKey(hostname: string): string {
  return `${DISTRIBUTION_SOURCE_PREFIX}${hostname}`;
}

/** Adds a repository to a label's comma-separated set of repositories: sorted, without duplicates or empties. */
export function addDistributionSource(existing: string | undefined, repository: string): string {
  const repos = new Set((existing ?? '').split(',').filter((r) => r !== ''));
  repos.add(repository);
  return [...repos].sort().join(',');
}

/** containerd's limit on a label (key and value together). */
export const MAX_LABEL_LENGTH = 4096;
