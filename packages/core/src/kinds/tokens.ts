// The tokens and contribution points of the kinds core defines. docs/plugins.md lists them with who provides each.
import type { MetricsCollector } from '../metrics/metrics.js';
import { createContributionPoint, createToken } from '../registry/token.js';
import type { ContentIngester, ContentManager, ContentProvider, ContentStore, IngestManager, RawContentStore } from './content.js';
import type { Applier, Comparer, Differ } from './diff.js';
import type { RawSnapshotter, SnapshotterSet } from './snapshots.js';
import type { EventExchange, EventForwarder, EventPublisher, EventSubscriber } from './events.js';
import type { GarbageCollectable, GarbageCollector } from './gc.js';
import type { ContainerExtensionPolicy, ContainerStore, ExtensionSchemaRegistry } from './containers.js';
import type { ImageStore } from './images.js';
import type { LeaseManager } from './leases.js';
import type { NamespaceStore } from './namespaces.js';
import type { RpcServices } from './rpc.js';
import type { StreamManager } from './streaming.js';
import type { PlatformRuntime, TaskMonitor } from './tasks.js';

/** Every blob on disk, not namespaced: io.containerd.content.v1 provides it; the metadata plugin builds on it. */
export const rawContentStoreToken = createToken<RawContentStore>('content.raw');

/** Namespaced content roles (containerd's content.Provider, Ingester, Manager, IngestManager). */
export const contentProviderToken = createToken<ContentProvider>('content.provider');
export const contentIngesterToken = createToken<ContentIngester>('content.ingester');
export const contentManagerToken = createToken<ContentManager>('content.manager');
export const ingestManagerToken = createToken<IngestManager>('content.ingest-manager');
/** The namespaced content store, every role at once: the metadata plugin provides it (the CLI, a proxy). */
export const contentStoreToken = createToken<ContentStore>('content.store', {
  roles: [contentProviderToken, contentIngesterToken, contentManagerToken, ingestManagerToken],
});

/** Namespaces and their labels (metadata plugin). */
export const namespacesToken = createToken<NamespaceStore>('metadata.namespaces');
/** Leases and their resources (metadata plugin). */
export const leasesToken = createToken<LeaseManager>('metadata.leases');
/** Images by name, per namespace (metadata plugin). */
export const imagesToken = createToken<ImageStore>('metadata.images');
/** Containers by id, per namespace, with their extensions (metadata plugin). */
export const containersToken = createToken<ContainerStore>('metadata.containers');
/** Extension policies (validation, index terms) the containers store applies: io.berth.extensions.v1 plugins contribute. */
export const containerExtensionsPoint = createContributionPoint<ContainerExtensionPolicy>('containers.extensions');
/** JSON Schemas of container extensions, by type URL (the json extensions plugin). */
export const extensionSchemasToken = createToken<ExtensionSchemaRegistry>('extensions.schemas');
/** What garbage collection marks and sweeps (metadata plugin). */
export const collectableToken = createToken<GarbageCollectable>('gc.collectable');
/** The garbage-collection scheduler: io.containerd.gc.v1. */
export const gcToken = createToken<GarbageCollector>('gc.scheduler');

/** Event roles, and the exchange that plays all three: io.containerd.event.v1. */
export const eventPublisherToken = createToken<EventPublisher>('events.publisher');
export const eventForwarderToken = createToken<EventForwarder>('events.forwarder');
export const eventSubscriberToken = createToken<EventSubscriber>('events.subscriber');
export const eventsToken = createToken<EventExchange>('events.exchange', {
  roles: [eventPublisherToken, eventForwarderToken, eventSubscriberToken],
});

/** A snapshotter plugin's own store: io.containerd.snapshotter.v1 plugins provide it; `.all` gives them by id. */
export const rawSnapshotterToken = createToken<RawSnapshotter>('snapshots.raw');
/** Every namespaced snapshotter by name (the metadata plugin's views over the raw ones). */
export const snapshottersToken = createToken<SnapshotterSet>('snapshots.namespaced');

/** Differ roles, and the differ that plays both: io.containerd.differ.v1; `.all` gives them by id. */
export const applierToken = createToken<Applier>('diff.applier');
export const comparerToken = createToken<Comparer>('diff.comparer');
export const differToken = createToken<Differ>('diff.differ', { roles: [applierToken, comparerToken] });

/** The streams clients opened with containerd.services.streaming.v1 (io.containerd.streaming.v1). */
export const streamManagerToken = createToken<StreamManager>('streaming.manager');

/** Tasks through runtime v2 shims: io.containerd.runtime.v2 plugins provide it; `.all` gives them by id. */
export const runtimeToken = createToken<PlatformRuntime>('runtime.platform');
/** Per-task statistics outside the shim (io.containerd.monitor.v1): Tasks.Metrics uses it when one is loaded. */
export const taskMetricsToken = createToken<TaskMonitor>('tasks.metrics');

/** gRPC/ttrpc services, contributed by io.containerd.grpc.v1 plugins (and third parties) to the daemon's servers. */
export const rpcServicesPoint = createContributionPoint<RpcServices>('rpc.services');
/** Collectors read at every scrape of `/v1/metrics`. */
export const metricsCollectorsPoint = createContributionPoint<MetricsCollector>('metrics.collectors');
