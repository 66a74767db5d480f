export * from './plugin.js';
export { default } from './plugin.js';
export { SnapshotsService, LIST_BATCH_BYTES, LIST_BATCH_COUNT, toWireInfo, toWireMounts } from './snapshots-service.js';
