export { importArchive, importIndex, type ImportOptions, type ImportResult } from './import.js';
export { exportArchive, type ExportOptions } from './export.js';
export {
  ANNOTATION_IMAGE_NAME,
  ANNOTATION_REF_NAME,
  MediaTypes,
  children,
  defaultPlatform,
  formatPlatform,
  isIndexType,
  isLayerType,
  isManifestType,
  normalizePlatform,
  parsePlatform,
  platformMatcher,
  readIndex,
  readManifest,
  readJsonBlob,
  type OciDescriptor,
  type PlatformMatcher,
} from './oci-minimal.js';
export { familiarizeReference, normalizeReference, ociReferenceName } from './reference.js';
