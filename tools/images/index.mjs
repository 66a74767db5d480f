// The test images (build.mjs), OCI layouts (layout.mjs), the tar writer (tar.mjs), what the images contain
// (content.mjs) and the reference tree tools (tree.mjs). See README.md.
export * from './build.mjs';
export * from './content.mjs';
export * from './layout.mjs';
export * from './push.mjs';
export * from './schema1.mjs';
export * from './tar.mjs';
export * from './tree.mjs';
