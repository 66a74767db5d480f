// How containerd's images package classifies media types (the table is @berth/registry's): what has children, what
// is a layer, what is a config.

import { MediaType } from '@berth/registry';

export { MediaType };

/** The media type without parameters (`; charset=…`). */
export function baseMediaType(mediaType: string): string {
  return mediaType.split(';')[0]!.trim();
}

export function isIndexType(mediaType: string): boolean {
  const mt = baseMediaType(mediaType);
  return mt === MediaType.OciIndex || mt === MediaType.DockerManifestList;
}

export function isManifestType(mediaType: string): boolean {
  const mt = baseMediaType(mediaType);
  return mt === MediaType.OciManifest || mt === MediaType.DockerManifest;
}

export function isSchema1Type(mediaType: string): boolean {
  const mt = baseMediaType(mediaType);
  return mt === MediaType.DockerSchema1 || mt === MediaType.DockerSchema1Signed;
}

/** containerd's images.IsKnownConfig. */
export function isConfigType(mediaType: string): boolean {
  const mt = baseMediaType(mediaType);
  return mt === MediaType.OciConfig || mt === MediaType.DockerConfig || mt === MediaType.ContainerdCheckpoint || mt === MediaType.ContainerdCheckpointConfig;
}

/** containerd's images.IsLayerType: OCI layers (any compression, non-distributable too) and Docker's rootfs diffs. */
export function isLayerType(mediaType: string): boolean {
  const mt = baseMediaType(mediaType);
  if (mt.startsWith('application/vnd.oci.image.layer.')) return true;
  // Docker's types, with an eventual +suffix dropped (containerd compares the part before '+')
  const base = mt.replace(/\+.*$/, '');
  return (
    base === MediaType.DockerLayer ||
    base === MediaType.DockerLayerGzip ||
    base === 'application/vnd.docker.image.rootfs.foreign.diff.tar' ||
    base === MediaType.DockerForeignLayerGzip
  );
}

/** A layer that registries do not serve (Windows base layers): containerd skips fetching it when it has URLs. */
export function isNonDistributable(mediaType: string): boolean {
  const mt = baseMediaType(mediaType);
  return mt.startsWith('application/vnd.oci.image.layer.nondistributable.') || mt.startsWith('application/vnd.docker.image.rootfs.foreign.');
}
