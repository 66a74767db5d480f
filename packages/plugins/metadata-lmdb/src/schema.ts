/**
 * The key schema of the metadata database. One LMDB named database (`meta`) holds every record; keys are arrays of
 * strings (lmdb's ordered-binary encoding keeps arrays ordered element by element, so every sub-tree is a contiguous
 * key range) and values are msgpack maps (version 1 wrote msgpackr records, which read the same). The layout mirrors containerd's bolt buckets (metadata/buckets.go):
 *
 * ```
 * ['version']                                              -> SCHEMA_VERSION
 * ['seq', 'ingest']                                        -> last backend ingest counter
 * ['seq', 'snapshot']                                      -> last backend snapshot counter
 * ['v1', ns]                                               -> NamespaceRecord (presence = the namespace exists)
 * ['v1', ns, 'labels']                                     -> Labels of the namespace
 * ['v1', ns, 'images', name]                               -> ImageRecord
 * ['v1', ns, 'containers', id]                             -> ContainerRecord
 * ['v1', ns, 'ext-holders', name, id]                      -> true             (container id holds extension `name`)
 * ['v1', ns, 'ext-terms', name, path, value, id]           -> true             (an index term of that extension)
 * ['v1', ns, 'snapshots', snapshotter, key]                -> SnapshotRecord
 * ['v1', ns, 'snapshots', snapshotter, key, 'children', c] -> true             (c names `key` as its parent)
 * ['v1', ns, 'content', 'blob', digest]                    -> BlobRecord
 * ['v1', ns, 'content', 'ingests', ref]                    -> IngestRecord
 * ['v1', ns, 'leases', id]                                 -> LeaseRecord
 * ['v1', ns, 'leases', id, 'content', digest]              -> true
 * ['v1', ns, 'leases', id, 'ingests', ref]                 -> true
 * ['v1', ns, 'leases', id, 'snapshots', snapshotter, key]  -> true
 * ```
 *
 * Records sit at a fixed depth; scanners of a range skip keys of any other depth, so additions below a record (the
 * per-snapshot children) never confuse them. Times are epoch milliseconds. The snapshot keys (children, the
 * snapshot counter) came after version 1 without changing what was there: version 1 never wrote snapshot records,
 * and a store that does not know them only leaves them alone, so the version stays 1.
 *
 * The extension index (`ext-holders`, `ext-terms`) came later the same way: it only ever holds what container
 * records name. Its key parts `name`, `path` and `value` are encoded by `indexPart` (`s<text>` for short text,
 * `h<sha256 hex>` for text over INDEX_PART_MAX bytes or with a NUL), so that every key stays far below LMDB's key
 * limit whatever an extension holds; a hashed part can only yield candidates, which queries check on the record.
 * Every write of a container rewrites, in its own transaction, its holder keys and the terms the extension
 * policies give for its values; the record keeps those terms (`ContainerRecord.terms`, the back-references) so the
 * next write removes exactly the stale ones, and a crash can never leave an index that disagrees with a record.
 */
import { createHash } from 'node:crypto';
import type { Labels } from '@berth/core';

/**
 * Bumped only for incompatible layout changes; a database with a newer version is refused. Version 2 writes records
 * as plain msgpack maps where version 1 wrote msgpackr records (database.ts); a version 1 database opens as is and is
 * marked 2.
 */
export const SCHEMA_VERSION = 2;

export type Key = readonly (string | number)[];

export const VERSION_KEY: Key = ['version'];
export const INGEST_SEQ_KEY: Key = ['seq', 'ingest'];
/**
 * One counter for the backend keys of every namespace and snapshotter (`<namespace>/<counter>/<key>`). containerd
 * counts per snapshotter bucket of a namespace, so a namespace deleted and made again restarts at 1 and can name a
 * backend snapshot that garbage collection has not removed yet; a global counter never repeats.
 */
export const SNAPSHOT_SEQ_KEY: Key = ['seq', 'snapshot'];

export interface NamespaceRecord {
  readonly createdAt: number;
}

export interface BlobRecord {
  readonly size: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly labels: Labels;
}

export interface IngestRecord {
  /** The backend ref in the raw content store: `<namespace>/<counter>/<client ref>`. */
  readonly ref: string;
  /** The digest the client expects (reported by status). */
  readonly expected?: string;
  /** A shared ingest: `expected` already exists in the backend and commit only links it; GC keeps that blob. */
  readonly shared?: boolean;
  /** The size of the blob of a shared ingest. */
  readonly size?: number;
  /** Epoch ms after which an unleased ingest may be collected. */
  readonly expireAt?: number;
  readonly startedAt: number;
}

export interface LeaseRecord {
  readonly createdAt: number;
  readonly labels: Labels;
}

/** The shape later image records must have for GC to see them (containerd's images bucket). */
export interface ImageRecord {
  readonly target: {
    readonly digest: string;
    readonly mediaType: string;
    readonly size: number;
    /** The target descriptor's annotations (containerd keeps them beside the labels); absent when none. */
    readonly annotations?: Labels;
  };
  readonly labels: Labels;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A protobuf Any as stored: its type URL and its bytes (msgpack keeps them binary). */
export interface StoredAny {
  readonly typeUrl: string;
  readonly value: Uint8Array;
}

/** One index term of a stored extension value: [JSON path, scalar value as text]. */
export type StoredTerm = readonly [path: string, value: string];

/**
 * A container (containerd's containers bucket). GC reads `snapshotter`, `snapshotKey` and `labels`; the fields after
 * them came with the containers store (a record written before them reads as a container with no image, runtime or
 * spec). Empty strings are not stored.
 */
export interface ContainerRecord {
  readonly snapshotter?: string;
  readonly snapshotKey?: string;
  readonly labels: Labels;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly image?: string;
  readonly runtime?: { readonly name: string; readonly options?: StoredAny };
  readonly spec?: StoredAny;
  /** By extension name. */
  readonly extensions?: Readonly<Record<string, StoredAny>>;
  /**
   * By extension name, the last revision given to it, kept after the extension is deleted so that setting it again
   * continues the count (a present extension's revision is its entry here).
   */
  readonly revisions?: Readonly<Record<string, number>>;
  /** By extension name, the index terms written for its value (what the next write removes); absent when none. */
  readonly terms?: Readonly<Record<string, readonly StoredTerm[]>>;
}

/**
 * A snapshot of one namespace on one snapshotter (containerd's snapshots bucket). The kind is not kept: the backend
 * knows it (containerd reads it from there too). Children are keys below the record (`children`, see above).
 */
export interface SnapshotRecord {
  /** The backend snapshot key, `<namespace>/<counter>/<key>`. */
  readonly name: string;
  /** The parent's key in the same namespace and snapshotter. */
  readonly parent?: string;
  readonly labels: Labels;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export const keys = {
  namespace: (ns: string): Key => ['v1', ns],
  namespaceLabels: (ns: string): Key => ['v1', ns, 'labels'],
  images: (ns: string): Key => ['v1', ns, 'images'],
  image: (ns: string, name: string): Key => ['v1', ns, 'images', name],
  containers: (ns: string): Key => ['v1', ns, 'containers'],
  container: (ns: string, id: string): Key => ['v1', ns, 'containers', id],
  snapshots: (ns: string): Key => ['v1', ns, 'snapshots'],
  snapshotter: (ns: string, snapshotter: string): Key => ['v1', ns, 'snapshots', snapshotter],
  snapshot: (ns: string, snapshotter: string, key: string): Key => ['v1', ns, 'snapshots', snapshotter, key],
  snapshotChildren: (ns: string, snapshotter: string, key: string): Key => ['v1', ns, 'snapshots', snapshotter, key, 'children'],
  snapshotChild: (ns: string, snapshotter: string, key: string, child: string): Key => [
    'v1', ns, 'snapshots', snapshotter, key, 'children', child,
  ],
  blobs: (ns: string): Key => ['v1', ns, 'content', 'blob'],
  blob: (ns: string, digest: string): Key => ['v1', ns, 'content', 'blob', digest],
  ingests: (ns: string): Key => ['v1', ns, 'content', 'ingests'],
  ingest: (ns: string, ref: string): Key => ['v1', ns, 'content', 'ingests', ref],
  leases: (ns: string): Key => ['v1', ns, 'leases'],
  lease: (ns: string, id: string): Key => ['v1', ns, 'leases', id],
  leaseContent: (ns: string, id: string, digest: string): Key => ['v1', ns, 'leases', id, 'content', digest],
  leaseIngest: (ns: string, id: string, ref: string): Key => ['v1', ns, 'leases', id, 'ingests', ref],
  leaseSnapshot: (ns: string, id: string, snapshotter: string, key: string): Key => [
    'v1', ns, 'leases', id, 'snapshots', snapshotter, key,
  ],
  extensionHolders: (ns: string, name: string): Key => ['v1', ns, 'ext-holders', indexPart(name)],
  extensionHolder: (ns: string, name: string, id: string): Key => ['v1', ns, 'ext-holders', indexPart(name), id],
  extensionTerms: (ns: string, name: string, path: string, value?: string): Key =>
    value === undefined ? ['v1', ns, 'ext-terms', indexPart(name), indexPart(path)] : ['v1', ns, 'ext-terms', indexPart(name), indexPart(path), indexPart(value)],
  extensionTerm: (ns: string, name: string, path: string, value: string, id: string): Key => [
    'v1', ns, 'ext-terms', indexPart(name), indexPart(path), indexPart(value), id,
  ],
  /** All namespaces live below this prefix. */
  root: ['v1'] as Key,
};

/** Depths (key lengths) of the records the scanners look for. */
export const depth = {
  namespace: 2,
  image: 4,
  container: 4,
  snapshot: 5,
  snapshotChild: 7,
  blob: 5,
  ingest: 5,
  lease: 4,
  leaseContent: 6,
  leaseIngest: 6,
  leaseSnapshot: 7,
  extensionHolder: 5,
  extensionTerm: 7,
} as const;

/** The longest text an index key part holds as itself (UTF-8 bytes); longer text is hashed (`indexPart`). */
export const INDEX_PART_MAX = 256;

/** An extension name, path or value as an index key part: `s<text>`, or `h<sha256 hex>` when long or holding NUL. */
export function indexPart(text: string): string {
  if (Buffer.byteLength(text) <= INDEX_PART_MAX && !text.includes('\0')) return `s${text}`;
  return `h${createHash('sha256').update(text).digest('hex')}`;
}

/** The text of an index key part, or undefined when it was hashed. */
export function indexPartText(part: string): string | undefined {
  return part.startsWith('s') ? part.slice(1) : undefined;
}
