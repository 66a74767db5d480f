import type { Labels, OpContext } from './context.js';
import type { Mount } from './snapshots.js';

/** An OCI content descriptor. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ApplyOptions {
  /** containerd's ApplyConfig.ProcessorPayloads, type URL to bytes (stream processors; unused by berth's differ). */
  readonly payloads?: Readonly<Record<string, Uint8Array>>;
}

/** containerd's diff.Applier: applies the layer `desc` (read from the namespaced content store) onto `mounts`. */
export interface Applier {
  /** Returns the descriptor of the uncompressed layer (its digest is the diff ID). */
  apply(ctx: OpContext, desc: Descriptor, mounts: readonly Mount[], options?: ApplyOptions): Promise<Descriptor>;
}

export interface CompareOptions {
  /** Media type of the layer to write (default: application/vnd.oci.image.layer.v1.tar+gzip). */
  readonly mediaType?: string;
  /** Ingest ref of the written layer (default: a random one). */
  readonly ref?: string;
  readonly labels?: Labels;
}

/** containerd's diff.Comparer: writes the difference from `lower` to `upper` to the content store as a layer. */
export interface Comparer {
  compare(ctx: OpContext, lower: readonly Mount[], upper: readonly Mount[], options?: CompareOptions): Promise<Descriptor>;
}

/** Both (an io.containerd.differ.v1 plugin). */
export interface Differ extends Applier, Comparer {}
