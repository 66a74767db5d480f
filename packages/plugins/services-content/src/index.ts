export * from './plugin.js';
export { default } from './plugin.js';
export { ContentService, READ_CHUNK_SIZE, LIST_BATCH_COUNT, LIST_BATCH_BYTES } from './content-service.js';
