export * from './frame.js';
export * from './client.js';
export * from './server.js';
export { toKeyValues, firstValues, type MetadataInput } from './metadata.js';
