// resolveArtifact: a reference to its manifest, fetched whole, digest-checked and parsed as an artifact's.
import { InvalidArgumentError, type Descriptor } from '@berth/core';
import { parseRemoteRef, type HttpResolver } from '@berth/registry';
import { fetchManifestBytes, parseArtifactManifest, referrerDescriptor, repositoryOf, withResolver } from './manifest.js';
import { ArtifactMediaType, type ArtifactOptions, type ResolvedArtifact } from './types.js';

/** resolveArtifact with a resolver in hand (pull and fetch share it). */
export async function resolveWith(resolver: HttpResolver, ref: string, signal?: AbortSignal): Promise<ResolvedArtifact> {
  const remote = parseRemoteRef(ref);
  const { name, descriptor } = await resolver.resolve(ref, signal ? { signal } : {});
  if (descriptor.mediaType !== ArtifactMediaType.Manifest) {
    throw new InvalidArgumentError(`${name} is a ${descriptor.mediaType || 'manifest of no media type'}, not an OCI image manifest (an artifact)`);
  }
  const bytes = await fetchManifestBytes(resolver, repositoryOf(remote), descriptor, signal);
  const manifest = parseArtifactManifest(bytes, descriptor.digest);
  return { name, descriptor: referrerDescriptor(descriptor, manifest), manifest, bytes };
}

/** The manifest `ref` names, with its descriptor (artifact type, annotations). */
export async function resolveArtifact(ref: string, options: ArtifactOptions = {}): Promise<ResolvedArtifact> {
  return withResolver(options, (resolver) => resolveWith(resolver, ref, options.signal));
}

/** The descriptor of any manifest or index (an image or an artifact): what `subject` takes. */
export async function resolveSubject(ref: string, options: ArtifactOptions = {}): Promise<Descriptor> {
  return withResolver(options, async (resolver) => {
    const { descriptor } = await resolver.resolve(ref, options.signal ? { signal: options.signal } : {});
    return { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
  });
}
