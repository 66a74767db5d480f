// Layer media types and their compression, by containerd's rules (images.DiffCompression): OCI and Docker layer
// types, the non-distributable and foreign variants; anything else is not a layer this differ can apply.

export const MediaType = {
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciNonDistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerForeign: 'application/vnd.docker.image.rootfs.foreign.diff.tar',
  DockerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/**
 * How a layer's bytes are compressed: 'none' for a plain tar; 'detect' where containerd sniffs the stream
 * (every compressed type, and Docker's plain `tar`, which "may have been compressed" by tools that got the type
 * wrong): gzip, zstd or none by the first bytes. undefined: not a layer type (containerd: not implemented).
 */
export type Compression = 'none' | 'detect';

export function compressionOf(mediaType: string): Compression | undefined {
  const [base, ...ext] = mediaType.split('+');
  switch (base) {
    case MediaType.DockerLayer:
    case MediaType.DockerForeign:
    case MediaType.DockerLayerGzip:
    case MediaType.DockerForeignGzip:
      return ext.length === 0 ? 'detect' : undefined;
    case MediaType.OciLayer:
    case MediaType.OciNonDistributable:
      if (ext.length === 0) return 'none';
      if (ext.length === 1 && (ext[0] === 'gzip' || ext[0] === 'zstd')) return 'detect';
      return undefined; // +encrypted and other wrappers need a stream processor berth does not have
    default:
      return undefined;
  }
}

export type Codec = 'gzip' | 'zstd' | 'none';

/** The codec of a stream by its magic bytes (gzip 1f 8b, zstd 28 b5 2f fd), as containerd's DecompressStream. */
export function sniff(head: Uint8Array): Codec {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}
