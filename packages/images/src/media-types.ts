// The media types an image is made of (OCI image-spec and Docker's distribution formats), and how containerd's
// images package classifies them: what has children, what is a layer, what is a config.

export const MediaType = {
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  /** Docker's schema 1 (signed or not): converted to an OCI manifest and config on pull, as containerd does. */
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ContainerdCheckpoint: 'application/vnd.containerd.container.criu.checkpoint.criu.tar',
  ContainerdCheckpointConfig: 'application/vnd.containerd.container.checkpoint.config.v1+proto',
} as const;

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
