// Docker schema1 (signed) manifests of a built image: see buildSchema1.
/**
 * @param {import('./layout.mjs').LayoutWriter} _writer
 * @param {import('./build.mjs').BuiltManifest} _image
 * @param {{ name: string, tag: string }} _ref
 * @returns {Promise<{ manifest: Buffer, blobs: import('./layout.mjs').Descriptor[] }>}
 */
export async function buildSchema1(_writer, _image, _ref) {
  throw new Error('schema1: not built yet');
}
