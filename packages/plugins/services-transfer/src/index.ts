export { default, transferServicePlugin } from './plugin.js';
export { IMAGE_STORE, OCI_REGISTRY, pullOptionsOf, TransferService, type TransferDeps } from './transfer-service.js';
export { PROGRESS_EVENTS, progressMessage, ProgressSender } from './progress.js';
export { resolverOptionsOf } from './registry-source.js';
