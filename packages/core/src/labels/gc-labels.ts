/**
 * The label names containerd's garbage collector and unpacker agree on. The metadata store reads them (roots and
 * references); the image code writes them (on configs, layers and snapshots), so both take them from here.
 */

/** A blob or snapshot with this label is a GC root. */
export const GC_ROOT_LABEL = 'containerd.io/gc.root';
/** A reference to content: the label itself or any key below it (`.<name>` or `/<name>`); the value is a digest. */
export const GC_REF_CONTENT = 'containerd.io/gc.ref.content';
/** A reference to a snapshot: followed by the snapshotter's name (then optionally `/<name>`); the value is a key. */
export const GC_REF_SNAPSHOT = 'containerd.io/gc.ref.snapshot.';
/** On a snapshot: the chain ID its unpack commits it as (containerd's unpacker, read back by the metadata store). */
export const SNAPSHOT_REF_LABEL = 'containerd.io/snapshot.ref';
/** On a compressed layer blob: the digest of its uncompressed tar (the diff ID). */
export const UNCOMPRESSED_LABEL = 'containerd.io/uncompressed';
