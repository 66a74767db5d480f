import type {
  MetricFamily,
  MetricsCollector,
  ContainerExtensionPolicy,
  ContainerStore,
  ContentStore,
  EventPublisher,
  GarbageCollectable,
  GCStats,
  ImageStore,
  LeaseManager,
  Logger,
  NamespaceStore,
  RawContentStore,
  RawSnapshotter,
  SnapshotterSet,
} from '@berth/core';
import { LmdbContainerStore } from './containers.js';
import { LmdbContentStore } from './content.js';
import { ExtensionPolicies } from './extension-policies.js';
import { Database, type MutationKind } from './database.js';
import { GarbageCollector } from './gc.js';
import { LmdbImageStore } from './images.js';
import { LmdbLeaseManager } from './leases.js';
import { LmdbNamespaceStore } from './namespaces.js';
import { LmdbSnapshotter, LmdbSnapshotterSet } from './snapshots.js';

export interface LmdbMetadataStoreOptions {
  /** The LMDB file, e.g. `<plugin root>/meta.lmdb`. */
  readonly path: string;
  /** The raw (not namespaced) content store. */
  readonly content: RawContentStore;
  /** The raw snapshotters by name (plugin id); each gets a namespaced view in `snapshotters`. */
  readonly snapshotters?: ReadonlyMap<string, RawSnapshotter>;
  /** Where `/content/delete` and `/snapshot/*` go. */
  readonly events?: EventPublisher;
  readonly log: Logger;
  /** `shared` (default): a blob in the backend can be linked into another namespace by its digest. */
  readonly contentSharingPolicy?: 'shared' | 'isolated';
  /** How long an ingest started without a lease survives garbage collection (default 24h, as containerd). */
  readonly ingestExpiryMs?: number;
  /** Initial LMDB map size in bytes; 0 or absent lets lmdb start small and grow. */
  readonly mapSize?: number;
  readonly maxReaders?: number;
  /** What validates and indexes container extensions (the contributions to `containerExtensionsPoint`). */
  readonly extensionPolicies?: Iterable<ContainerExtensionPolicy>;
}

/**
 * The metadata store on one LMDB environment: namespaces, namespaced content, namespaced snapshotters, leases, images
 * and garbage collection. The plugin provides each under its own token; the object itself is what garbage collection
 * marks and sweeps.
 */
export class LmdbMetadataStore implements GarbageCollectable {
  readonly namespaces: NamespaceStore;
  readonly content: ContentStore;
  readonly leases: LeaseManager;
  readonly images: ImageStore;
  private readonly containerStore: LmdbContainerStore;
  private readonly snapshotterMap: ReadonlyMap<string, LmdbSnapshotter>;
  private readonly snapshotterSet: LmdbSnapshotterSet;
  private readonly gc: GarbageCollector;

  private constructor(
    private readonly db: Database,
    raw: RawContentStore,
    options: LmdbMetadataStoreOptions,
  ) {
    this.namespaces = new LmdbNamespaceStore(db);
    this.content = new LmdbContentStore(db, raw, options.events, {
      shared: (options.contentSharingPolicy ?? 'shared') === 'shared',
      ingestExpiryMs: options.ingestExpiryMs ?? 24 * 60 * 60 * 1000,
    });
    this.leases = new LmdbLeaseManager(db);
    this.snapshotterMap = new Map(
      [...(options.snapshotters ?? new Map<string, RawSnapshotter>())].map(([name, sn]) => [name, new LmdbSnapshotter(name, sn, db, options.events)]),
    );
    this.snapshotterSet = new LmdbSnapshotterSet(this.snapshotterMap);
    this.gc = new GarbageCollector(db, raw, this.snapshotterMap);
    this.images = new LmdbImageStore(db, () => this.gc.collect());
    this.containerStore = new LmdbContainerStore(db, new ExtensionPolicies(options.extensionPolicies), options.log);
  }

  /** The containers with their extensions (`containersToken`). */
  get containers(): ContainerStore {
    return this.containerStore;
  }

  /** @internal The container store itself, for its query statistics and re-index waits in tests. */
  get containerInternals(): LmdbContainerStore {
    return this.containerStore;
  }

  static async open(options: LmdbMetadataStoreOptions): Promise<LmdbMetadataStore> {
    const db = await Database.open({
      path: options.path,
      log: options.log,
      mapSize: options.mapSize,
      maxReaders: options.maxReaders,
    });
    return new LmdbMetadataStore(db, options.content, options);
  }

  /**
   * The database's size and readers, and the counts of its records by kind (kept as transactions commit, never
   * counted per scrape), read at each scrape of /v1/metrics (`metricsCollectorsPoint`).
   */
  get metrics(): MetricsCollector {
    return { collect: () => this.collectMetrics() };
  }

  private collectMetrics(): MetricFamily[] {
    if (this.db.isClosed) return [];
    const s = this.db.stats();
    const gauge = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'gauge', samples: [{ value }] });
    return [
      gauge('berth_metadata_records', 'Records in the metadata database.', s.records),
      gauge('berth_metadata_used_bytes', 'Bytes of the LMDB map in use.', s.usedBytes),
      gauge('berth_metadata_map_bytes', 'Size of the LMDB map.', s.mapBytes),
      gauge('berth_metadata_readers', 'LMDB reader slots in use.', s.readers),
      ...this.db.counts.families(),
    ];
  }

  /** The namespaced snapshotters by name (`snapshottersToken`). */
  get snapshotters(): SnapshotterSet {
    return this.snapshotterSet;
  }

  /** This store as what garbage collection marks and sweeps (`collectableToken`). */
  get collectable(): GarbageCollectable {
    return this;
  }

  garbageCollect(): Promise<GCStats> {
    return this.gc.collect();
  }

  onMutation(listener: (kind: MutationKind) => void): () => void {
    return this.db.onMutation(listener);
  }

  /** Deleting mutations since the last collection (containerd's dirty counter). */
  get dirty(): number {
    return this.db.dirty;
  }

  /** @internal The database, for schema-level tests and for the records later kinds (images, containers) add. */
  get database(): Database {
    return this.db;
  }

  /** Waits for running mutations and collections (snapshot ones first), then closes LMDB. */
  async close(): Promise<void> {
    await this.containerStore.close();
    for (const snapshotter of this.snapshotterMap.values()) await snapshotter.close();
    await this.db.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
