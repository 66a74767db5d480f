// The contract of image handling that berthd's Transfer service, the CLI's `berth pull --local` and the import and
// export commands share. One implementation (pull.ts, archive/) serves both compositions: what it needs arrives as
// the roles below, resolved from tokens by whichever composition calls it (plugins in berthd, proxies in the CLI).
import type {
  Applier,
  ContentStore,
  Descriptor,
  Image,
  ImageStore,
  LeaseManager,
  OpContext,
  SnapshotterSet,
} from '@berth/core';
import type { Resolver } from '@berth/registry';

/** An OCI platform (containerd's specs.Platform), normalized as containerd's platforms package does. */
export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
  readonly osVersion?: string;
  readonly osFeatures?: readonly string[];
}

/** What pulling, unpacking, importing and exporting work with. */
export interface ImageServices {
  readonly content: ContentStore;
  readonly images: ImageStore;
  readonly leases: LeaseManager;
  readonly snapshotters: SnapshotterSet;
  readonly applier: Applier;
}

/** Where a layer stands in a pull, as `berth pull` and the Transfer service's progress report it. */
export type LayerState = 'waiting' | 'downloading' | 'unpacking' | 'done' | 'exists';

/** One progress event: a blob of the pull (manifest, config or layer) and how far it is. */
export interface PullProgress {
  readonly descriptor: Descriptor;
  readonly state: LayerState;
  /** Bytes of the blob in the content store so far (its size when done or exists). */
  readonly offset: number;
}

export interface PullOptions {
  /** `host[:port]/repository[:tag][@digest]`. */
  readonly ref: string;
  readonly resolver: Resolver;
  /** The platforms to fetch and unpack (default: the host's); `all` fetches every manifest of an index. */
  readonly platforms?: readonly Platform[] | 'all';
  /** Unpack the layers into `snapshotter` (default true; containerd's ctr default snapshotter is `overlayfs`). */
  readonly unpack?: boolean;
  /**
   * Which of the fetched platforms to unpack (containerd 2's ImageStore unpacks), when not all of them: the others
   * are fetched and left packed. Absent: every fetched platform.
   */
  readonly unpackPlatforms?: readonly Platform[];
  readonly snapshotter?: string;
  /** Image labels to set on create or update. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Parallel layer downloads (default 3). */
  readonly concurrency?: number;
  readonly onProgress?: (event: PullProgress) => void;
  readonly signal?: AbortSignal;
}

/** The image record created or updated, and the platforms unpacked. */
export interface PullResult {
  readonly image: Image;
  readonly unpacked: readonly { readonly platform: Platform; readonly chainId: string; readonly snapshotter: string }[];
}

/** `pull(services, ctx, options)`: what pull.ts exports with this signature. */
export type PullFunction = (services: ImageServices, ctx: OpContext, options: PullOptions) => Promise<PullResult>;

/** Where a blob stands in a push: the registry had it, it was mounted from another repository, or uploaded. */
export type PushState = 'waiting' | 'uploading' | 'exists' | 'mounted' | 'done';

/** One progress event of a push: a blob or manifest and the bytes sent so far (its size once settled). */
export interface PushProgress {
  readonly descriptor: Descriptor;
  readonly state: PushState;
  readonly offset: number;
}

export interface PushOptions {
  /** Where to push: `host[:port]/repository[:tag]`. */
  readonly ref: string;
  readonly resolver: Resolver;
  /** The local image to push when its name differs from `ref` (ctr push's second argument). */
  readonly image?: string;
  /**
   * One platform pushes that platform's manifest of an index as the tag (as ctr push --platform); several push the
   * index with only their manifests; `all` or none pushes the image as it is, with every manifest of an index.
   */
  readonly platforms?: readonly Platform[] | 'all';
  /** Parallel blob uploads (default 3). */
  readonly concurrency?: number;
  readonly onProgress?: (event: PushProgress) => void;
  readonly signal?: AbortSignal;
}

/** What was pushed: the normalized reference, the root descriptor it names, and each descriptor's outcome. */
export interface PushResult {
  readonly name: string;
  readonly descriptor: Descriptor;
  readonly pushed: readonly { readonly descriptor: Descriptor; readonly outcome: 'exists' | 'mounted' | 'uploaded' }[];
}

/** `push(services, ctx, options)`: what push.ts exports with this signature (it needs only content and images). */
export type PushFunction = (services: Pick<ImageServices, 'content' | 'images'>, ctx: OpContext, options: PushOptions) => Promise<PushResult>;
