export * from './plugin.js';
export { default } from './plugin.js';
export { LeasesService, generateLeaseId } from './leases-service.js';
