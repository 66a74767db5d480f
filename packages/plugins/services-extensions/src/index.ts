export * from './plugin.js';
export { default } from './plugin.js';
export { ExtensionsService, toWireSchema } from './extensions-service.js';
export { applyMergePatch } from './merge-patch.js';
export { whereToFilters } from './where.js';
