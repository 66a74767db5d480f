import { createMultiToken, createToken } from '../registry/token.js';
import type { ContentStore } from './content.js';
import type { EventExchange } from './events.js';
import type { GarbageCollector } from './gc.js';
import type { MetadataStore } from './metadata.js';
import type { RpcServices } from './rpc.js';

/** The raw content store (not namespaced): io.containerd.content.v1. */
export const contentStoreToken = createToken<ContentStore>('content-store');
/** The metadata store (namespaces, namespaced content, leases, GC): io.containerd.metadata.v1. */
export const metadataStoreToken = createToken<MetadataStore>('metadata-store');
/** The garbage-collection scheduler: io.containerd.gc.v1. */
export const gcToken = createToken<GarbageCollector>('gc');
/** The events exchange: io.containerd.event.v1. */
export const eventsToken = createToken<EventExchange>('events');
/** gRPC/ttrpc service implementations: every io.containerd.grpc.v1 plugin provides one. */
export const rpcServicesToken = createMultiToken<RpcServices>('rpc-services');
