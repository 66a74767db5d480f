export { createMemoryImageStore, type MemoryImageStore } from './memory-image-store.js';
export * from './archives.js';
