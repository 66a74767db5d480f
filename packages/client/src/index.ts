export { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';
export { BerthClient, grpcTarget, type BerthClientOptions } from './client.js';
export {
  createServiceClient,
  type CallOptions,
  type ServiceClient,
  type ServiceClientDefaults,
} from './service-client.js';
export { fromGrpc, isServiceError, rebaseMessage } from './errors.js';
export { AsyncQueue } from './async-queue.js';
export { Lockstep } from './lockstep.js';
export { clientToken } from './tokens.js';
export {
  ContentStoreProxy,
  PROXY_WRITE_CHUNK_BYTES,
  callOptionsOf,
  toContentInfo,
  toIngestStatus,
} from './proxy/content-store.js';
export { SnapshotterProxy, toMounts, toSnapshotInfo } from './proxy/snapshotter.js';
export { ApplierProxy, LeaseManagerProxy, SnapshotterSetProxy } from './proxy/image-roles.js';
export { ImageStoreProxy, toImage } from './proxy/images.js';
export {
  ExtensionSchemasProxy,
  ExtensionsProxy,
  toContainerExtension,
  toExtensionSchema,
  type ContainerExtension,
  type ExtensionUpdate,
  type RevisionOptions,
} from './proxy/extensions.js';
export * from './oci/index.js';
export * from './stdio/index.js';
export { TasksProxy, toTaskProcessInfo, OCI_PROCESS_TYPE_URL, type TaskProcessInfo, type CreateTaskRequest, type TaskMetric } from './proxy/tasks.js';
export { ContainersProxy, toContainer, toWireContainer } from './proxy/containers.js';
