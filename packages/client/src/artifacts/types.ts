// Media types, annotations and shapes of OCI 1.1 artifacts as ORAS writes them (oras-go's PackManifest with
// PackManifestVersion1_1): an image manifest with `artifactType`, the empty config `{}` unless a config is given,
// one layer per file titled `org.opencontainers.image.title`, `org.opencontainers.image.created` in RFC 3339, and
// `subject` for an attachment. The referrers of a subject are an image index (the referrers API's answer, or the
// `<alg>-<hex>` tag of the distribution spec's fallback).
import type { Descriptor, OpContext } from '@berth/core';
import type { HttpResolver, ResolverOptions } from '@berth/registry';

export const ArtifactMediaType = {
  Manifest: 'application/vnd.oci.image.manifest.v1+json',
  Index: 'application/vnd.oci.image.index.v1+json',
  /** The empty descriptor's type (image-spec 1.1 `application/vnd.oci.empty.v1+json`, content `{}`). */
  Empty: 'application/vnd.oci.empty.v1+json',
  /** What `oras push FILE` gives a file without `:type` (and what `berth artifact push` gives it). */
  DefaultLayer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

export const ANNOTATION_TITLE = 'org.opencontainers.image.title';
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';

/** A descriptor with the image-spec 1.1 fields artifacts use. */
export interface ArtifactDescriptor extends Descriptor {
  readonly artifactType?: string;
  /** Base64 of the content, embedded (the empty descriptor carries `e30=`). */
  readonly data?: string;
}

/** The empty descriptor exactly as image-spec 1.1 (and oras-go's `ocispec.DescriptorEmptyJSON`) spells it. */
export const EMPTY_DESCRIPTOR: ArtifactDescriptor = {
  mediaType: ArtifactMediaType.Empty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30=',
};
export const EMPTY_CONTENT = Buffer.from('{}');

/** An OCI image manifest as an artifact uses it. */
export interface ArtifactManifest {
  readonly schemaVersion: 2;
  readonly mediaType: typeof ArtifactMediaType.Manifest;
  readonly artifactType?: string;
  readonly config: ArtifactDescriptor;
  readonly layers: readonly ArtifactDescriptor[];
  readonly subject?: ArtifactDescriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** One file of an artifact: its bytes (`data`) or a file to stream (`path`), titled as it is pulled back. */
export type ArtifactFile = {
  readonly mediaType?: string;
  /** `org.opencontainers.image.title`: the name `pull` writes it under (a relative path without `..`). */
  readonly title: string;
  readonly annotations?: Readonly<Record<string, string>>;
} & ({ readonly data: Uint8Array | string; readonly path?: never } | { readonly path: string; readonly data?: never });

export interface PushArtifactSpec {
  /** Required unless a config is given (then its media type stands for it, as ORAS requires). */
  readonly artifactType?: string;
  readonly files: readonly ArtifactFile[];
  readonly config?: { readonly mediaType: string; readonly data: Uint8Array | string; readonly annotations?: Readonly<Record<string, string>> };
  /** Manifest annotations; `org.opencontainers.image.created` is added (now, RFC 3339) unless given. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** The manifest this one is attached to (same repository): makes it a referrer of the subject. */
  readonly subject?: Descriptor;
}

/**
 * How to reach the registry: what `berth pull` takes (plain HTTP, hosts dir, credentials), or a resolver to reuse
 * (its connections and tokens; not closed by the call).
 */
export interface ArtifactOptions extends ResolverOptions {
  readonly resolver?: HttpResolver;
  readonly signal?: AbortSignal;
}

export interface ResolvedArtifact {
  /** `host/repository:tag` or `host/repository@digest`. */
  readonly name: string;
  /** The manifest's descriptor, with its `artifactType` (or config media type) and annotations. */
  readonly descriptor: ArtifactDescriptor;
  readonly manifest: ArtifactManifest;
  /** The manifest's bytes as the registry holds them. */
  readonly bytes: Buffer;
}

/** Where `fetchArtifact` writes: the namespace and the lease that holds what it writes. */
export type FetchContext = OpContext & { readonly lease: string };
