export { importArchive, importIndex, type ImportOptions, type ImportResult } from './import.js';
export { exportArchive, type ExportOptions } from './export.js';
export { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, children, readDocument, readIndex, readManifest } from './documents.js';
export { familiarizeReference, normalizeReference, ociReferenceName } from './reference.js';
export { unpackImage, type UnpackImageOptions, type UnpackImageResult } from './unpack-image.js';
