export { default, differWalkingPlugin } from './plugin.js';
export { WalkingDiffer, UNCOMPRESSED_LABEL, uniqueRef, type WalkingDifferOptions } from './walking-differ.js';
export { openWalkingDiffer, WalkingDifferInstance } from './open.js';
export { differWalkingConfigDefaults, differWalkingConfigSchema, type DifferWalkingConfig } from './config.js';
export { MediaType, compressionOf } from './media-types.js';
export { TarReader, type TarSink } from './tar/reader.js';
export { type TarEntry } from './tar/header.js';
